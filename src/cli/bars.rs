//! Progress bars on standard error for the library's progress events.

/// Streams below this size get no progress bar.
pub const PROGRESS_MIN: u64 = 16 * 1024 * 1024;

/// An indicatif bar on stderr, for large streams only; a stream of unknown
/// size (standard input) gets a byte counter once it is large or slow.
#[derive(Default)]
pub(super) struct Bar {
    bar: std::sync::Mutex<BarState>,
}

/// The bar drawn, or the stream of unknown size not yet worth a counter.
#[derive(Default)]
struct BarState {
    bar: Option<indicatif::ProgressBar>,
    pending: Option<Pending>,
}

/// A stream of unknown size: its label, when it started, bytes so far.
struct Pending {
    label: String,
    since: std::time::Instant,
    bytes: u64,
}

/// How long a stream of unknown size runs before its counter appears.
const COUNTER_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

fn new_bar(label: &str, total: Option<u64>) -> indicatif::ProgressBar {
    let (len, template) = match total {
        Some(t) => (
            Some(t),
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ),
        None => (None, "{msg} {bytes} read, {bytes_per_sec} (size unknown)"),
    };
    let b = indicatif::ProgressBar::with_draw_target(len, indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(label.to_string());
    b
}

impl airlock::progress::Sink for Bar {
    fn begin(&self, label: &str, total: Option<u64>) {
        let Ok(mut g) = self.bar.lock() else {
            return;
        };
        match total {
            Some(t) if t < PROGRESS_MIN => {}
            Some(t) => g.bar = Some(new_bar(label, Some(t))),
            None => {
                g.pending = Some(Pending {
                    label: label.to_string(),
                    since: std::time::Instant::now(),
                    bytes: 0,
                })
            }
        }
    }
    fn advance(&self, n: u64) {
        let Ok(mut g) = self.bar.lock() else {
            return;
        };
        if let Some(p) = g.pending.as_mut() {
            p.bytes += n;
            if p.bytes >= PROGRESS_MIN || p.since.elapsed() >= COUNTER_AFTER {
                let b = new_bar(&p.label, None);
                b.set_position(p.bytes);
                g.pending = None;
                g.bar = Some(b);
            }
            return;
        }
        if let Some(b) = g.bar.as_ref() {
            b.inc(n);
        }
    }
    fn end(&self) {
        if let Ok(mut g) = self.bar.lock() {
            g.pending = None;
            if let Some(b) = g.bar.take() {
                b.finish_with_message(format!("{} done", b.message()));
            }
        }
    }
}
