//! `airlock watch DIR`: the unattended importer for a drop folder (behind a
//! data diode or a cross-domain gateway). Runs until SIGTERM, SIGINT or
//! SIGHUP, acted on within a second in every state: the bundle in hand is
//! finished if it finishes within that second, else abandoned at a safe
//! point (everything the watcher and the import do survives `kill -9`; the
//! claimed file is put back at the next start). Exits 0 then.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock::error::{Code, Error, Result};
use airlock::import::{Disposition, Opened};
use airlock::lifecycle::Batch;
use airlock::names;
use airlock::watch::{watch, Summary, WatchEvent, WatchOptions};

use super::import::{import_in, open_state, ImportArgs};
use super::output::Name;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The drop folder: *.airlock.zip files are imported, then moved to DIR/done/ or DIR/quarantine/
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub opts: ImportArgs,
    #[command(flatten)]
    pub timing: Timing,
}

/// How a drop folder is watched (shared by `watch` and `licence watch`).
#[derive(clap::Args, Debug, Clone)]
pub struct Timing {
    /// A file is complete once unchanged this long and ending in a zip trailer
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = super::parse_duration)]
    pub settle: Duration,
    /// Quarantine a file still incomplete this long after it appeared
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = super::parse_duration)]
    pub incomplete_after: Duration,
    /// Rescan the folder at least this often (needed where inotify sees nothing: NFS, SMB, some removable media)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = super::parse_duration)]
    pub poll: Duration,
    /// After a failure of this host (disk, outbox, endpoint, lock), try the file again after this long
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = super::parse_duration)]
    pub retry_after: Duration,
    /// Judge what is in the folder, then exit (instead of watching): non-zero when a file was quarantined, failed twice or was still changing
    #[arg(long)]
    pub once: bool,
}

/// How long a signal waits for the bundle in hand before it is abandoned.
const STOP_GRACE: Duration = Duration::from_millis(800);

pub fn run(a: Args) -> Result<()> {
    in_thread(move |stop| run_watch(&a, stop))
}

/// Run a watcher on its own thread until it ends or a signal stops it.
pub fn in_thread(f: impl FnOnce(&AtomicBool) -> Result<()> + Send + 'static) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Error::new(Code::Internal, format!("cannot handle signal {sig}: {e}")))?;
    }
    // The watcher runs on its own thread, so that a signal is acted on
    // within a second whatever it is doing (a long verification, a slow
    // endpoint): this thread decides when to stop waiting for it.
    let worker_stop = Arc::clone(&stop);
    let worker =
        airlock::fsutil::spawn_thread("watch", airlock::fsutil::WORKER_STACK, move || {
            f(&worker_stop)
        })?;
    let joined = |w: std::thread::JoinHandle<Result<()>>| {
        w.join()
            .unwrap_or_else(|_| Err(Error::new(Code::Internal, "the watcher thread panicked")))
    };
    loop {
        if worker.is_finished() {
            return joined(worker);
        }
        if stop.load(Ordering::SeqCst) {
            let deadline = Instant::now() + STOP_GRACE;
            while !worker.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if worker.is_finished() {
                return joined(worker);
            }
            eprintln!(
                "airlock watch: stopped with a bundle in hand; it is put back and judged again at the next start"
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_watch(a: &Args, stop: &AtomicBool) -> Result<()> {
    // Options, trust and identities are read again for every bundle, so a
    // changed trust file applies without a restart.
    let mut import = |b: Result<Opened>, batch: &mut Batch| {
        let path = match &b {
            Ok(o) => o.path().to_path_buf(),
            Err(_) => a.dir.clone(),
        };
        let r = a.opts.resolve(&path)?;
        let state = open_state(&r.state_path, true)?;
        Ok(import_in(&r, &state, b, batch))
    };
    drive(&a.dir, &a.timing, stop, &mut import)
}

/// Watch `dir`, printing each event, and with `--once` exit as it says.
pub fn drive<R: Shown>(
    dir: &std::path::Path,
    t: &Timing,
    stop: &AtomicBool,
    import: &mut airlock::watch::ImportFn<'_, R>,
) -> Result<()> {
    let opts = WatchOptions {
        dir: dir.to_path_buf(),
        settle: t.settle,
        incomplete_after: t.incomplete_after,
        poll: t.poll,
        retry_after: t.retry_after,
        once: t.once,
        now: airlock::verify::Clock::System,
    };
    let json = super::json();
    let mut on = |ev: WatchEvent<'_, R>| {
        report(&ev, json, dir);
        // Nobody reads the events any more (`airlock watch … | head`): stop
        // as on SIGTERM.
        if super::stdout_closed() {
            stop.store(true, Ordering::SeqCst);
        }
    };
    let summary = watch(&opts, stop, import, &mut on)?;
    if t.once {
        return once_status(summary, json);
    }
    Ok(())
}

/// `--once`'s status: the counts, then the first failure as the error
/// (its exit code: the class of what happened to that file).
fn once_status(s: Summary, json: bool) -> Result<()> {
    let text = format!(
        "{} done, {} quarantined, {} failed, {} left",
        s.done, s.quarantined, s.failed, s.left
    );
    if json {
        let line: Line<'_, airlock::import::ImportReport> = Line::Finished {
            done: s.done,
            quarantined: s.quarantined,
            failed: s.failed,
            left: s.left,
        };
        print_line(&line);
    } else {
        eprintln!("airlock watch --once: {text}");
    }
    match s.first_failure {
        None => Ok(()),
        Some((name, e)) => {
            let hint = e.hint().to_string();
            let cause = format!("{text}; the first: {}: {}", names::escape(&name), e.cause);
            Err(Error::new(e.code, cause).with_hint(hint))
        }
    }
}

/// One event: a JSON line with `--json`, else a line for people (stdout
/// for files placed, stderr for the rest).
/// What a watcher's report says: its key in `--json`'s `placed` event, and
/// the word for a file judged good.
pub trait Shown: serde::Serialize {
    /// `import`, `licence`.
    const KEY: &'static str;
    /// `imported`, `staged`, `applied`.
    fn what(&self) -> &'static str;
}

impl Shown for airlock::import::ImportReport {
    const KEY: &'static str = "import";
    fn what(&self) -> &'static str {
        "imported"
    }
}

fn report<R: Shown>(ev: &WatchEvent<'_, R>, json: bool, dir: &std::path::Path) {
    if json {
        print_line(&Line::of(ev, dir));
    } else {
        event_text(ev, dir);
    }
}

/// One JSON object on one line, keys sorted as every document's.
fn print_line<T: serde::Serialize>(v: &T) {
    let v = serde_json::to_value(v).unwrap_or_default();
    crate::cli::raw_out(&format!("{v}\n"));
}

/// One event of `--json`'s stream (docs/json-output.md, `watch`).
#[derive(serde::Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
enum Line<'a, R: Shown> {
    Started {
        #[serde(flatten)]
        dir: Name,
        inotify: bool,
    },
    Recovered {
        #[serde(flatten)]
        file: Name,
        #[serde(flatten)]
        to: Name,
    },
    Placed {
        disposition: Disposition,
        #[serde(flatten)]
        file: Name,
        #[serde(flatten)]
        to: Name,
        #[serde(flatten)]
        report: Keyed<'a, R>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<LineError<'a>>,
    },
    Retry {
        #[serde(flatten)]
        file: Name,
        error: LineError<'a>,
    },
    Left {
        #[serde(flatten)]
        file: Name,
        error: LineError<'a>,
    },
    Finished {
        done: usize,
        quarantined: usize,
        failed: usize,
        left: usize,
    },
}

/// A file's error in the stream: its code and cause.
#[derive(serde::Serialize)]
struct LineError<'a> {
    code: &'a str,
    cause: &'a str,
}

impl<'a> LineError<'a> {
    fn of(e: &'a Error) -> LineError<'a> {
        LineError {
            code: e.code.as_str(),
            cause: &e.cause,
        }
    }
}

/// A placed file's report under its watcher's key (`import`, `licence`).
struct Keyed<'a, R>(Option<&'a R>);

impl<R: Shown> serde::Serialize for Keyed<'_, R> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        if let Some(r) = self.0 {
            m.serialize_entry(R::KEY, r)?;
        }
        m.end()
    }
}

impl<'a, R: Shown> Line<'a, R> {
    fn of(ev: &WatchEvent<'a, R>, dir: &std::path::Path) -> Line<'a, R> {
        match *ev {
            WatchEvent::Started { ref inotify } => Line::Started {
                dir: Name::new("dir", dir),
                inotify: inotify.is_ok(),
            },
            WatchEvent::Recovered { name, to } => Line::Recovered {
                file: Name::new("file", name),
                to: Name::new("to", to),
            },
            WatchEvent::Placed {
                name,
                disposition,
                to,
                report,
                error,
            } => Line::Placed {
                disposition,
                file: Name::new("file", name),
                to: Name::new("to", to),
                report: Keyed(report),
                error: error.map(LineError::of),
            },
            WatchEvent::Retry { name, error } => Line::Retry {
                file: Name::new("file", name),
                error: LineError::of(error),
            },
            WatchEvent::Left { name, error } => Line::Left {
                file: Name::new("file", name),
                error: LineError::of(error),
            },
        }
    }
}

fn event_text<R: Shown>(ev: &WatchEvent<'_, R>, dir: &std::path::Path) {
    match ev {
        WatchEvent::Started { inotify } => {
            let how = match inotify {
                Ok(()) => "inotify, and a rescan".to_string(),
                Err(e) => format!("rescans only (no inotify: {e})"),
            };
            eprintln!("airlock watch: watching {} ({how})", names::shown(dir));
        }
        WatchEvent::Recovered { name, to } => eprintln!(
            "airlock watch: {} was claimed by a watcher that stopped; put back as {}",
            names::shown(name),
            names::shown(to)
        ),
        WatchEvent::Placed {
            name,
            disposition,
            to,
            error,
            report,
        } => {
            let what = match disposition {
                Disposition::Imported => report.map_or("imported", |r| r.what()),
                Disposition::AlreadyImported => "already imported",
                Disposition::Superseded => "superseded",
                Disposition::Refused => "QUARANTINED",
                Disposition::Retry => "retry",
            };
            let why = error
                .map(|e| format!(" ({}: {})", e.code.as_str(), names::one_line(&e.cause)))
                .unwrap_or_default();
            crate::outln!(
                "{what}: {} -> {}{why}",
                names::shown(name),
                names::shown(to)
            );
        }
        WatchEvent::Retry { name, error } | WatchEvent::Left { name, error } => {
            let then = match ev {
                WatchEvent::Retry { .. } => "will try again",
                _ => "left in the drop folder",
            };
            eprintln!(
                "airlock watch: {}: {}: {} ({then})",
                names::shown(name),
                error.code.as_str(),
                names::one_line(&error.cause)
            );
        }
    }
}
