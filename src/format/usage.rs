//! The GHES license usage file: recognise it, validate its envelope, describe
//! it. Its bytes are opaque cargo and are never re-serialized.
//!
//! A usage file is a JSON object with an `instance` object carrying a UUID
//! `server_id` and a non-empty `host_name`; unknown fields are tolerated.
//! `users` is either a string (the list encrypted to GitHub, the default) or
//! an array of user records (exported in clear).
//!
//! The whole file must be JSON as RFC 8259 defines it (strict: exact
//! literals and number grammar, valid escapes, no raw control characters,
//! valid UTF-8, no byte order mark, nothing after the object), so that what
//! airlock carries is what GitHub will accept; see `Scanner`.
//!
//! Parsing is streamed, in constant memory; `Sniffer` runs it on a second
//! thread fed with the chunks the caller is already reading, so recognising
//! a file costs no extra pass over it.

use std::fmt;
use std::io::{self, BufRead, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use crate::base::error::{Code, Error, Result};
use crate::io::fsutil;

mod scan;
use scan::*;

/// What the user list looks like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "form", rename_all = "snake_case")]
pub enum Users {
    /// Encrypted to GitHub (a base64 blob); airlock cannot count them.
    Encrypted,
    /// In clear: a list of user records.
    Clear {
        /// How many records the list holds.
        count: u64,
    },
    /// No `users` field.
    Absent,
}

impl fmt::Display for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Users::Encrypted => write!(f, "encrypted to GitHub"),
            Users::Clear { count } => write!(f, "in clear, {count} users"),
            Users::Absent => write!(f, "absent"),
        }
    }
}

/// The envelope of a valid usage file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageInfo {
    /// `instance.host_name`: the GHES host the file is from (passes
    /// [`is_host_name`]).
    pub host_name: String,
    /// `instance.server_id`: the instance's UUID, as written (passes
    /// [`is_uuid`]).
    pub server_id: String,
    /// `instance.version` as written (`3.15.2`); a value that is not a
    /// string in its JSON form; `None` when absent or `null`.
    pub version: Option<String>,
    /// What the `users` field holds.
    pub users: Users,
}

/// The verdict on a stream of bytes.
#[derive(Debug)]
pub enum Sniff {
    /// A GHES license usage file with a valid envelope.
    Usage(UsageInfo),
    /// Looks like a usage file (a JSON object with `instance`) but is invalid.
    Invalid(String),
    /// Something else: travels as an opaque file.
    Other,
}

/// `8-4-4-4-12` hexadecimal digits.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A host name as GHES reports it: 1..=253 of letters, digits, '.', '-', '_'.
pub fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

#[derive(Deserialize)]
struct Instance {
    server_id: Option<serde_json::Value>,
    host_name: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

/// Largest `instance` object read into memory.
const MAX_INSTANCE_LEN: usize = 1 << 20;
/// Deepest nesting skipped.
const MAX_DEPTH: usize = 128;
/// Longest top-level key remembered: enough to tell `instance` and `users`
/// apart from the rest; longer keys are validated but not kept.
const MAX_KEY_LEN: usize = 16;
/// Recognise and validate a usage file from a stream.
pub fn sniff<R: Read>(r: R) -> Sniff {
    sniff_buffered(io::BufReader::with_capacity(1 << 16, r))
}

fn sniff_buffered<R: BufRead>(r: R) -> Sniff {
    let mut sc = Scanner {
        r,
        pos: 0,
        capture: None,
    };
    let mut top = TopLevel {
        bom: false,
        saw_instance: false,
        instance_raw: None,
        users: Users::Absent,
        seen_users: false,
    };
    let result = scan_document(&mut sc, &mut top);
    if !top.saw_instance {
        return Sniff::Other;
    }
    if top.bom {
        return Sniff::Invalid(
            "not valid JSON: byte order mark (U+FEFF) at byte 0; GHES writes none".into(),
        );
    }
    if let Err(e) = result {
        return Sniff::Invalid(e);
    }
    let Some(raw) = top.instance_raw else {
        return Sniff::Other;
    };
    envelope(&raw, top.users)
}

/// What the scan of the top-level object found, kept when the scan fails
/// part way (a file with an `instance` is then invalid rather than other).
struct TopLevel {
    /// The input starts with a UTF-8 byte order mark.
    bom: bool,
    /// An `instance` member was met (its value may be broken).
    saw_instance: bool,
    /// The bytes of `instance`'s value, once it was read whole.
    instance_raw: Option<Vec<u8>>,
    /// What the `users` member holds.
    users: Users,
    /// A `users` member was met.
    seen_users: bool,
}

/// The whole input: an optional byte order mark, one JSON object, then
/// nothing but whitespace.
fn scan_document<R: BufRead>(sc: &mut Scanner<R>, top: &mut TopLevel) -> ScanResult<()> {
    // Byte by byte: the first read may be shorter than the mark.
    if sc.peek()? == BOM.first().copied() {
        for &b in BOM {
            if sc.peek()? != Some(b) {
                return Err("not a JSON object".into());
            }
            sc.take(1)?;
        }
        top.bom = true;
    }
    if sc.ws()? != Some(b'{') {
        return Err("not a JSON object".into());
    }
    sc.take(1)?;
    if sc.ws()? == Some(b'}') {
        sc.take(1)?;
    } else {
        while scan_member(sc, top)? {}
    }
    if sc.ws()?.is_some() {
        return Err(sc.bad("trailing data after the object", sc.pos));
    }
    Ok(())
}

/// One `"key": value` of the top-level object and the `,` or `}` after it:
/// `instance` is captured, `users` classified, anything else skipped.
/// Returns whether another member follows.
fn scan_member<R: BufRead>(sc: &mut Scanner<R>, top: &mut TopLevel) -> ScanResult<bool> {
    let mut k = Key::default();
    sc.ws()?;
    let at = sc.pos;
    sc.key(Some(&mut k))?;
    let duplicate = |name: &str| format!("has a duplicate field `{name}` at byte {at}");
    if k.is("instance") {
        if top.saw_instance {
            return Err(duplicate("instance"));
        }
        top.saw_instance = true;
        sc.ws()?;
        sc.capture = Some(Vec::new());
        let r = sc.skip_value();
        top.instance_raw = sc.capture.take();
        r?;
    } else if k.is("users") {
        if top.seen_users {
            return Err(duplicate("users"));
        }
        top.seen_users = true;
        top.users = sc.users()?;
    } else {
        sc.skip_value()?;
    }
    match sc.ws()? {
        Some(b',') => {
            sc.take(1)?;
            Ok(true)
        }
        Some(b'}') => {
            sc.take(1)?;
            Ok(false)
        }
        Some(c) => Err(sc.bad(&format!("expected ',' or '}}', found {}", show(c)), sc.pos)),
        None => Err(sc.eof()),
    }
}

/// Validate the `instance` object (`raw`, its bytes) of a file whose syntax
/// passed: a UUID `server_id` and a host name are required.
fn envelope(raw: &[u8], users: Users) -> Sniff {
    if raw.first() != Some(&b'{') {
        return Sniff::Invalid("instance is not an object".into());
    }
    let inst: Instance = match serde_json::from_slice(raw) {
        Ok(i) => i,
        Err(e) => return Sniff::Invalid(format!("instance is not a valid object: {e}")),
    };
    let server_id = match inst.server_id {
        Some(serde_json::Value::String(s)) if is_uuid(&s) => s,
        Some(v) => return Sniff::Invalid(format!("instance.server_id is not a UUID: {v}")),
        None => return Sniff::Invalid("instance.server_id is missing".into()),
    };
    let host_name = match inst.host_name {
        Some(serde_json::Value::String(s)) if is_host_name(&s) => s,
        Some(v) => return Sniff::Invalid(format!("instance.host_name is not a host name: {v}")),
        None => return Sniff::Invalid("instance.host_name is missing".into()),
    };
    let version = match inst.version {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Null) | None => None,
        Some(v) => Some(v.to_string()),
    };
    Sniff::Usage(UsageInfo {
        host_name,
        server_id,
        version,
        users,
    })
}

/// Turn a `Sniff::Invalid` into an error.
pub fn invalid(name: &str, why: &str) -> Error {
    Error::new(
        Code::UsageFileInvalid,
        format!("{name} looks like a GHES license usage file but {why}"),
    )
}

/// Runs `sniff` on another thread, fed with chunks the caller reads anyway.
pub struct Sniffer {
    tx: Option<SyncSender<crate::io::blocks::Piece>>,
    handle: JoinHandle<Sniff>,
}

struct ChannelReader {
    rx: Receiver<crate::io::blocks::Piece>,
    buf: crate::io::blocks::Piece,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let buf = self.fill_buf()?;
        let n = out.len().min(buf.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The parser reads the chunks in place: no second copy into a `BufReader`.
impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.buf.bytes().len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.buf.bytes()[self.pos..])
    }
    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.bytes().len());
    }
}

impl Sniffer {
    /// Start the parser thread. A system that refuses the thread (memory or
    /// thread limits) gets an error, not a panic.
    pub fn spawn() -> Result<Sniffer> {
        let (tx, rx) = sync_channel::<crate::io::blocks::Piece>(4);
        let handle = fsutil::spawn_thread("usage-parser", fsutil::HELPER_STACK, move || {
            sniff_buffered(ChannelReader {
                rx,
                buf: crate::io::blocks::Piece::owned(Vec::new()),
                pos: 0,
            })
        })?;
        Ok(Sniffer {
            tx: Some(tx),
            handle,
        })
    }

    /// Feed the next chunk. Once the parser has given up, chunks are dropped.
    pub fn feed(&mut self, chunk: &[u8]) {
        // No copy once the parser has given up (most files that are not
        // usage files: verification sniffs every member).
        if self.tx.is_some() {
            self.feed_piece(crate::io::blocks::Piece::owned(chunk.to_vec()));
        }
    }

    /// Feed the next chunk without copying it.
    pub fn feed_piece(&mut self, piece: crate::io::blocks::Piece) {
        if let Some(tx) = &self.tx {
            if tx.send(piece).is_err() {
                self.tx = None;
            }
        }
    }

    /// End of input: wait for the verdict.
    pub fn finish(mut self) -> Result<Sniff> {
        self.tx = None;
        self.handle
            .join()
            .map_err(|_| Error::new(Code::Internal, "usage file parser thread panicked"))
    }
}

#[cfg(test)]
mod tests;
