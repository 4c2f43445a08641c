//! Progress reporting for long streams. The library never prints: it calls
//! the sink the front end installed (the CLI draws an indicatif bar on a
//! terminal); without one, these calls do nothing.

use std::sync::OnceLock;

/// Receives progress of one stream at a time.
pub trait Sink: Send + Sync {
    /// A stream of `total` bytes starts (`None`: its size is unknown, as
    /// on standard input).
    fn begin(&self, label: &str, total: Option<u64>);
    /// `n` more bytes were processed.
    fn advance(&self, n: u64);
    /// The stream ended.
    fn end(&self);
}

static SINK: OnceLock<Box<dyn Sink>> = OnceLock::new();

/// Install the process-wide sink (once; later calls are ignored).
pub fn install(sink: Box<dyn Sink>) {
    let _ = SINK.set(sink);
}

/// Tell the sink a stream of `total` bytes (`None`: unknown) named `label`
/// starts.
pub(crate) fn begin(label: &str, total: Option<u64>) {
    if let Some(s) = SINK.get() {
        s.begin(label, total);
    }
}

/// Tell the sink `n` more bytes of the current stream were processed.
pub(crate) fn advance(n: u64) {
    if let Some(s) = SINK.get() {
        s.advance(n);
    }
}

/// Tell the sink the current stream ended.
pub(crate) fn end() {
    if let Some(s) = SINK.get() {
        s.end();
    }
}

/// A one-line notice for the user about something airlock did or waits for
/// on its own (a stale temporary file removed, a lock being waited for).
type Notes = Box<dyn Fn(&str) + Send + Sync>;

static NOTES: OnceLock<Notes> = OnceLock::new();

/// Install the process-wide receiver of notices (once; later calls are
/// ignored). Without one, notices are dropped.
pub fn install_notes(f: Notes) {
    let _ = NOTES.set(f);
}

/// Tell the user something (the CLI prints it on standard error).
pub fn note(msg: &str) {
    if let Some(f) = NOTES.get() {
        f(msg);
    }
}
