//! Progress of long streams, and notices for the user. The library never
//! prints. A stream's progress goes to the sink its caller passes in
//! ([`Progress`]; the CLI draws an indicatif bar on a terminal). Notices
//! (a stale temporary file removed, a lock waited for) come from deep in
//! the file plumbing, so they go where the binary pointed them once
//! ([`install_notes`]), as a log facade does; without it they are dropped
//! (decision 93).

use std::io::Read;
use std::sync::{Arc, OnceLock};

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

/// Where a stream's progress goes: the caller's sink, or nowhere. The
/// caller owns it and passes it in (`VerifyOptions::progress`,
/// `ExportOptions::progress`); cloning shares the sink.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<dyn Sink>>);

impl Progress {
    /// Progress reported to `sink`.
    pub fn to(sink: Arc<dyn Sink>) -> Progress {
        Progress(Some(sink))
    }

    /// No progress reported (a library caller, a test, a non-terminal).
    pub fn none() -> Progress {
        Progress(None)
    }

    /// A stream of `total` bytes (`None`: unknown) named `label` starts.
    pub(crate) fn begin(&self, label: &str, total: Option<u64>) {
        if let Some(s) = &self.0 {
            s.begin(label, total);
        }
    }

    /// `n` more bytes of the current stream were processed.
    pub(crate) fn advance(&self, n: u64) {
        if let Some(s) = &self.0 {
            s.advance(n);
        }
    }

    /// The current stream ended.
    pub(crate) fn end(&self) {
        if let Some(s) = &self.0 {
            s.end();
        }
    }

    /// `reader`, reporting each read's bytes as they pass.
    pub(crate) fn counting<'r>(&'r self, reader: &'r mut dyn Read) -> Counting<'r> {
        Counting {
            reader,
            progress: self,
        }
    }
}

/// A reader that reports the bytes read through it ([`Progress::counting`]).
pub(crate) struct Counting<'r> {
    reader: &'r mut dyn Read,
    progress: &'r Progress,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(sink)"
        } else {
            "Progress(none)"
        })
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
