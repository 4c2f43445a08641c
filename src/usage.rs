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

use crate::error::{Code, Error, Result};

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
/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A streaming, strict RFC 8259 validator over a `BufRead` that walks the
/// top-level object, skips values without keeping them, and captures the
/// small `instance` value for serde_json to parse. Memory is constant: the
/// bounded capture, a bounded key, a nesting stack of at most `MAX_DEPTH`.
///
/// Everything is checked, however long: the exact literals, the number
/// grammar, the string escapes, the absence of raw control characters in
/// strings, UTF-8 (incrementally, so a sequence may straddle two reads),
/// whitespace, and that nothing follows the object. Runs of plain ASCII in
/// strings (a gigabyte-long base64 `users` blob) are skipped a block at a
/// time (see `plain_prefix`).
///
/// Decisions:
/// - A `\u` escape of a lone surrogate (`"\ud800"`, `"\udc00"`, a high
///   surrogate not followed by a `\u` low one) is rejected: it encodes no
///   Unicode scalar value, RFC 8259 §8.2 says its behaviour is unpredictable,
///   RFC 7493 (I-JSON) forbids it, and serde_json (our own manifest
///   parser) rejects it when reading strings. A strict receiver may refuse
///   it; no GHES export needs it (a character is escaped as a pair).
/// - A UTF-8 byte order mark at the start is not JSON whitespace (RFC 8259
///   §8.1: generators MUST NOT add one; GHES does not). The document is read
///   on past it, so that a usage file with a BOM is reported as invalid
///   rather than silently carried as an opaque file; a BOM in front of
///   anything else leaves it an opaque file.
struct Scanner<R: BufRead> {
    r: R,
    /// Offset in the input of the next unread byte.
    pos: u64,
    capture: Option<Vec<u8>>,
}

type ScanResult<T> = std::result::Result<T, String>;

/// A byte for an error message: printable ASCII as itself, else in hex.
fn show(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02X}")
    }
}

/// A byte that ends a run of plain string content: `"`, `\`, a control
/// character (< 0x20) or a non-ASCII byte (≥ 0x80, checked as UTF-8).
#[inline(always)]
fn is_special(b: u8) -> bool {
    b.wrapping_sub(0x20) >= 0x60 || b == b'"' || b == b'\\'
}

/// The first byte of `block` that `is_special`, eight bytes at a time
/// (SWAR: each test sets the high bit of the bytes it matches, and stray
/// borrows only ever mark bytes above a true match).
#[inline(always)]
fn first_special(block: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    for w in block.chunks_exact(8) {
        let mut b = [0; 8];
        b.copy_from_slice(w);
        let x = u64::from_le_bytes(b);
        let ctl = x.wrapping_sub(LO * 0x20) & !x;
        let q = x ^ (LO * u64::from(b'"'));
        let q = q.wrapping_sub(LO) & !q;
        let bs = x ^ (LO * u64::from(b'\\'));
        let bs = bs.wrapping_sub(LO) & !bs;
        let m = (ctl | q | bs | x) & HI;
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + block[i..]
        .iter()
        .position(|&b| is_special(b))
        .unwrap_or(block.len() - i)
}

/// How many leading bytes of `buf` are plain string content. Blocks are
/// tested with no early exit inside them, which the compiler turns into SIMD
/// compares (no `unsafe`, no target features); the block that holds a
/// special byte is then searched a word at a time.
#[inline]
fn plain_prefix(buf: &[u8]) -> usize {
    const BLOCK: usize = 64;
    let mut i = 0;
    for block in buf.chunks_exact(BLOCK) {
        if block.iter().fold(false, |acc, &b| acc | is_special(b)) {
            return i + first_special(block);
        }
        i += BLOCK;
    }
    i + first_special(&buf[i..])
}

/// The byte a two-character escape `\c` stands for.
fn simple_escape(c: u8) -> Option<u8> {
    Some(match c {
        b'"' | b'\\' | b'/' => c,
        b'b' => 0x08,
        b'f' => 0x0C,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        _ => return None,
    })
}

/// The length of the UTF-8 sequence that `lead` starts, and the range of its
/// second byte (RFC 3629 §4: this excludes overlongs, UTF-16 surrogates and
/// code points above U+10FFFF).
fn utf8_lead(lead: u8) -> Option<(usize, u8, u8)> {
    Some(match lead {
        0xC2..=0xDF => (2, 0x80, 0xBF),
        0xE0 => (3, 0xA0, 0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80, 0xBF),
        0xED => (3, 0x80, 0x9F),
        0xF0 => (4, 0x90, 0xBF),
        0xF1..=0xF3 => (4, 0x80, 0xBF),
        0xF4 => (4, 0x80, 0x8F),
        _ => return None,
    })
}

/// The decoded start of a top-level key, for matching only.
#[derive(Default)]
struct Key {
    bytes: Vec<u8>,
    long: bool,
}

impl Key {
    fn push(&mut self, s: &[u8]) {
        if self.bytes.len() + s.len() <= MAX_KEY_LEN {
            self.bytes.extend_from_slice(s);
        } else {
            self.long = true;
        }
    }
    fn is(&self, name: &str) -> bool {
        !self.long && self.bytes == name.as_bytes()
    }
}

fn push_key(key: &mut Option<&mut Key>, s: &[u8]) {
    if let Some(k) = key.as_deref_mut() {
        k.push(s);
    }
}

impl<R: BufRead> Scanner<R> {
    fn fill(&mut self) -> ScanResult<&[u8]> {
        loop {
            match self.r.fill_buf() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
        // Buffered now: this returns without reading.
        self.r.fill_buf().map_err(|e| format!("read error: {e}"))
    }

    /// A JSON syntax error at `at`.
    fn bad(&self, what: &str, at: u64) -> String {
        format!("not valid JSON: {what} at byte {at}")
    }

    fn eof(&self) -> String {
        self.bad("unexpected end of input", self.pos)
    }

    fn peek(&mut self) -> ScanResult<Option<u8>> {
        Ok(self.fill()?.first().copied())
    }

    /// Consume `n` bytes, all of them already buffered.
    fn take(&mut self, n: usize) -> ScanResult<()> {
        if let Some(c) = self.capture.as_mut() {
            let buf = self.r.fill_buf().map_err(|e| format!("read error: {e}"))?;
            c.extend_from_slice(&buf[..n]);
            if c.len() > MAX_INSTANCE_LEN {
                return Err("instance is larger than 1 MiB".into());
            }
        }
        self.r.consume(n);
        self.pos += n as u64;
        Ok(())
    }

    fn bump(&mut self) -> ScanResult<u8> {
        let b = self.peek()?.ok_or_else(|| self.eof())?;
        self.take(1)?;
        Ok(b)
    }

    /// Skip whitespace (space, tab, LF, CR only); the next byte, unconsumed.
    fn ws(&mut self) -> ScanResult<Option<u8>> {
        loop {
            let (n, next) = {
                let buf = self.fill()?;
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = buf
                    .iter()
                    .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                    .unwrap_or(buf.len());
                (n, buf.get(n).copied())
            };
            self.take(n)?;
            if next.is_some() {
                return Ok(next);
            }
        }
    }

    fn expect(&mut self, want: u8, what: &str) -> ScanResult<()> {
        match self.ws()? {
            Some(b) if b == want => self.take(1),
            Some(b) => Err(self.bad(&format!("expected {what}, found {}", show(b)), self.pos)),
            None => Err(self.eof()),
        }
    }

    /// A string whose opening quote was consumed, up to and including the
    /// closing quote. Its decoded bytes go to `key`, if any.
    fn string(&mut self, mut key: Option<&mut Key>) -> ScanResult<()> {
        let start = self.pos - 1;
        loop {
            // Within the buffer: runs of plain bytes and two-byte escapes.
            let (n, next) = {
                let buf = self.fill()?;
                let mut i = 0;
                loop {
                    let run = plain_prefix(&buf[i..]);
                    push_key(&mut key, &buf[i..i + run]);
                    i += run;
                    match (buf.get(i), buf.get(i + 1).and_then(|&c| simple_escape(c))) {
                        (Some(b'\\'), Some(d)) => {
                            push_key(&mut key, &[d]);
                            i += 2;
                        }
                        _ => break,
                    }
                }
                (i, buf.get(i).copied())
            };
            if n > 0 {
                self.take(n)?;
            }
            match next {
                None if n == 0 => return Err(self.bad("unterminated string", start)),
                None => {}
                Some(b'"') => return self.take(1),
                Some(b'\\') => self.escape(&mut key)?,
                Some(b) if b < 0x20 => {
                    return Err(self.bad(
                        &format!("raw control character U+{b:04X} in a string"),
                        self.pos,
                    ))
                }
                Some(_) => self.utf8(&mut key)?,
            }
        }
    }

    /// An escape sequence, at its backslash, that `string` did not take in
    /// its stride: `\u`, one split between two reads, or an invalid one.
    fn escape(&mut self, key: &mut Option<&mut Key>) -> ScanResult<()> {
        let start = self.pos;
        let invalid = |s: &Self| s.bad("invalid escape", start);
        self.take(1)?;
        let c = self.peek()?.ok_or_else(|| invalid(self))?;
        if let Some(d) = simple_escape(c) {
            push_key(key, &[d]);
            return self.take(1);
        }
        if c != b'u' {
            return Err(invalid(self));
        }
        self.take(1)?;
        let lone = |s: &Self| s.bad("lone UTF-16 surrogate in a \\u escape", start);
        let hi = self.hex4(start)?;
        let cp = match hi {
            0xD800..=0xDBFF => {
                if self.peek()? != Some(b'\\') {
                    return Err(lone(self));
                }
                self.take(1)?;
                if self.peek()? != Some(b'u') {
                    return Err(lone(self));
                }
                self.take(1)?;
                let lo = self.hex4(start)?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return Err(lone(self));
                }
                0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(lone(self)),
            _ => u32::from(hi),
        };
        let ch = char::from_u32(cp).ok_or_else(|| lone(self))?;
        push_key(key, ch.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }

    /// Four hex digits of a `\u` escape that started at `start`.
    fn hex4(&mut self, start: u64) -> ScanResult<u16> {
        let mut v = 0u16;
        for _ in 0..4 {
            let d = self
                .peek()?
                .and_then(|b| (b as char).to_digit(16))
                .ok_or_else(|| self.bad("invalid escape", start))?;
            self.take(1)?;
            v = v << 4 | d as u16;
        }
        Ok(v)
    }

    /// UTF-8 in a string, at a byte ≥ 0x80.
    fn utf8(&mut self, key: &mut Option<&mut Key>) -> ScanResult<()> {
        // Fast path: whole valid sequences inside the buffer.
        let n = {
            let buf = self.fill()?;
            let mut i = 0;
            while let Some(&lead) = buf.get(i).filter(|&&b| b >= 0x80) {
                let Some((len, lo, hi)) = utf8_lead(lead) else {
                    break;
                };
                let Some(seq) = buf.get(i..i + len) else {
                    break;
                };
                if !(lo..=hi).contains(&seq[1]) || seq[2..].iter().any(|&c| c & 0xC0 != 0x80) {
                    break;
                }
                i += len;
            }
            push_key(key, &buf[..i]);
            i
        };
        if n > 0 {
            return self.take(n);
        }
        // Byte by byte: an invalid sequence, or one that straddles two reads.
        let start = self.pos;
        let invalid = |s: &Self| s.bad("invalid UTF-8", start);
        let lead = self.bump()?;
        let (len, lo, hi) = utf8_lead(lead).ok_or_else(|| invalid(self))?;
        let mut seq = [lead, 0, 0, 0];
        for (k, slot) in seq.iter_mut().enumerate().take(len).skip(1) {
            let (lo, hi) = if k == 1 { (lo, hi) } else { (0x80, 0xBF) };
            match self.peek()? {
                Some(c) if (lo..=hi).contains(&c) => {
                    *slot = c;
                    self.take(1)?;
                }
                _ => return Err(invalid(self)),
            }
        }
        push_key(key, &seq[..len]);
        Ok(())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, not followed by
    /// anything that could continue a number or a word.
    fn number(&mut self) -> ScanResult<()> {
        let start = self.pos;
        let invalid = |s: &Self| s.bad("invalid number", start);
        if self.peek()? == Some(b'-') {
            self.take(1)?;
        }
        match self.peek()? {
            Some(b'0') => self.take(1)?,
            Some(b'1'..=b'9') => self.digits()?,
            _ => return Err(invalid(self)),
        }
        if self.peek()? == Some(b'.') {
            self.take(1)?;
            if !matches!(self.peek()?, Some(b'0'..=b'9')) {
                return Err(invalid(self));
            }
            self.digits()?;
        }
        if matches!(self.peek()?, Some(b'e' | b'E')) {
            self.take(1)?;
            if matches!(self.peek()?, Some(b'+' | b'-')) {
                self.take(1)?;
            }
            if !matches!(self.peek()?, Some(b'0'..=b'9')) {
                return Err(invalid(self));
            }
            self.digits()?;
        }
        match self.peek()? {
            Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-' | b'_') => {
                Err(invalid(self))
            }
            _ => Ok(()),
        }
    }

    fn digits(&mut self) -> ScanResult<()> {
        loop {
            let (n, more) = {
                let buf = self.fill()?;
                let n = buf
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(buf.len());
                (n, n == buf.len() && n > 0)
            };
            self.take(n)?;
            if !more {
                return Ok(());
            }
        }
    }

    /// Exactly `word` (`true`, `false`, `null`), not followed by a letter,
    /// digit or underscore.
    fn literal(&mut self, word: &[u8]) -> ScanResult<()> {
        let start = self.pos;
        for &w in word {
            if self.peek()? != Some(w) {
                return Err(self.bad("invalid literal", start));
            }
            self.take(1)?;
        }
        match self.peek()? {
            Some(c) if c.is_ascii_alphanumeric() || c == b'_' => {
                Err(self.bad("invalid literal", start))
            }
            _ => Ok(()),
        }
    }

    /// An object key (at its opening quote, after whitespace) and the colon.
    fn key(&mut self, key: Option<&mut Key>) -> ScanResult<()> {
        self.expect(b'"', "'\"' (an object key)")?;
        self.string(key)?;
        self.expect(b':', "':'")
    }

    /// One scalar value, at its first byte `b`.
    fn scalar(&mut self, b: u8) -> ScanResult<()> {
        match b {
            b'"' => {
                self.take(1)?;
                self.string(None)
            }
            b'-' | b'0'..=b'9' | b'+' | b'.' => self.number(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b if b.is_ascii_alphabetic() => Err(self.bad("invalid literal", self.pos)),
            b => Err(self.bad(&format!("unexpected {}", show(b)), self.pos)),
        }
    }

    /// Skip one value of any kind, iteratively.
    fn skip_value(&mut self) -> ScanResult<()> {
        let mut stack: Vec<u8> = Vec::new();
        loop {
            let b = self.ws()?.ok_or_else(|| self.eof())?;
            match b {
                b'{' | b'[' => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(format!(
                            "is nested deeper than {MAX_DEPTH} levels at byte {}",
                            self.pos
                        ));
                    }
                    self.take(1)?;
                    let close = if b == b'{' { b'}' } else { b']' };
                    stack.push(close);
                    if self.ws()? == Some(close) {
                        self.take(1)?;
                        stack.pop();
                    } else {
                        if b == b'{' {
                            self.key(None)?;
                        }
                        continue;
                    }
                }
                b => self.scalar(b)?,
            }
            // After a complete value: close containers or move to the next element.
            loop {
                let Some(&close) = stack.last() else {
                    return Ok(());
                };
                match self.ws()? {
                    Some(b',') => {
                        self.take(1)?;
                        if close == b'}' {
                            self.key(None)?;
                        }
                        break;
                    }
                    Some(c) if c == close => {
                        self.take(1)?;
                        stack.pop();
                    }
                    Some(c) => {
                        return Err(self.bad(
                            &format!("expected ',' or '{}', found {}", close as char, show(c)),
                            self.pos,
                        ))
                    }
                    None => return Err(self.eof()),
                }
            }
        }
    }

    fn users(&mut self) -> ScanResult<Users> {
        match self.ws()? {
            Some(b'"') => {
                self.take(1)?;
                self.string(None)?;
                Ok(Users::Encrypted)
            }
            Some(b'[') => {
                self.take(1)?;
                let mut count = 0u64;
                if self.ws()? == Some(b']') {
                    self.take(1)?;
                    return Ok(Users::Clear { count });
                }
                loop {
                    if self.ws()? != Some(b'{') {
                        return Err(format!(
                            "a user record is not an object (at byte {})",
                            self.pos
                        ));
                    }
                    self.skip_value()?;
                    count += 1;
                    match self.ws()? {
                        Some(b',') => self.take(1)?,
                        Some(b']') => {
                            self.take(1)?;
                            return Ok(Users::Clear { count });
                        }
                        Some(c) => {
                            return Err(self
                                .bad(&format!("expected ',' or ']', found {}", show(c)), self.pos))
                        }
                        None => return Err(self.eof()),
                    }
                }
            }
            Some(b'n') => {
                self.literal(b"null")?;
                Ok(Users::Absent)
            }
            Some(_) => Err(format!(
                "users is neither a string nor an array (at byte {})",
                self.pos
            )),
            None => Err(self.eof()),
        }
    }
}

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
    tx: Option<SyncSender<crate::blocks::Piece>>,
    handle: JoinHandle<Sniff>,
}

struct ChannelReader {
    rx: Receiver<crate::blocks::Piece>,
    buf: crate::blocks::Piece,
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
        let (tx, rx) = sync_channel::<crate::blocks::Piece>(4);
        let handle = crate::fsutil::helper_thread("usage-parser")?
            .spawn(move || {
                sniff_buffered(ChannelReader {
                    rx,
                    buf: crate::blocks::Piece::owned(Vec::new()),
                    pos: 0,
                })
            })
            .map_err(|e| {
                Error::new(
                    Code::Resources,
                    format!("cannot start the usage-file parser thread: {e}"),
                )
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
            self.feed_piece(crate::blocks::Piece::owned(chunk.to_vec()));
        }
    }

    /// Feed the next chunk without copying it.
    pub fn feed_piece(&mut self, piece: crate::blocks::Piece) {
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
mod tests {
    use super::*;

    const ID: &str = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

    #[test]
    fn recognises_both_forms() {
        let enc = format!(
            r#"{{"instance":{{"server_id":"{ID}","host_name":"ghes.example.com","version":"3.15.2","extra":1}},"users":"QUJD"}}"#
        );
        match sniff(enc.as_bytes()) {
            Sniff::Usage(u) => {
                assert_eq!(u.host_name, "ghes.example.com");
                assert_eq!(u.users, Users::Encrypted);
                assert_eq!(u.version.as_deref(), Some("3.15.2"));
            }
            s => panic!("{s:?}"),
        }
        let clear = format!(
            r#"{{"users":[{{"login":"a"}},{{"login":"b"}}],"instance":{{"server_id":"{ID}","host_name":"h"}}}}"#
        );
        match sniff(clear.as_bytes()) {
            Sniff::Usage(u) => assert_eq!(u.users, Users::Clear { count: 2 }),
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn other_and_invalid() {
        assert!(matches!(sniff(&b"hello"[..]), Sniff::Other));
        assert!(matches!(sniff(&b"{\"a\":1}"[..]), Sniff::Other));
        assert!(matches!(sniff(&b"[1,2]"[..]), Sniff::Other));
        let bad_id = r#"{"instance":{"server_id":"nope","host_name":"h"}}"#;
        assert!(matches!(sniff(bad_id.as_bytes()), Sniff::Invalid(_)));
        let truncated =
            format!(r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}},"users":[1,2"#);
        assert!(matches!(sniff(truncated.as_bytes()), Sniff::Invalid(_)));
        let trailing = format!(r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}}}} x"#);
        assert!(matches!(sniff(trailing.as_bytes()), Sniff::Invalid(_)));
    }

    #[test]
    fn scanner_handles_escapes_nesting_and_odd_layout() {
        let doc = format!(
            "  {{ \"a\\\"b\" : [1, {{\"x\": [true, null, -1.5e3]}}, \"s\\\\\"],\n \"users\" : [ {{\"emails\":[{{\"primary\":true}}]}} , {{}} ] ,\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\",\"features\":[{{\"n\":\"\\u0041\"}}]}} }}\n"
        );
        match sniff(doc.as_bytes()) {
            Sniff::Usage(u) => assert_eq!(u.users, Users::Clear { count: 2 }),
            s => panic!("{s:?} for {doc}"),
        }
        // Unbalanced or truncated structures after `instance` are invalid.
        for bad in [
            format!("{{\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\"}},\"x\":[1,2}}"),
            format!(
                "{{\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\"}},\"users\":\"abc"
            ),
            format!("{{\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\"}},\"users\":5}}"),
            format!(
                "{{\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\"}},\"instance\":{{}}}}"
            ),
        ] {
            assert!(matches!(sniff(bad.as_bytes()), Sniff::Invalid(_)), "{bad}");
        }
        let deep = format!(
            "{{\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\"}},\"x\":{}{}}}",
            "[".repeat(1000),
            "]".repeat(1000)
        );
        assert!(matches!(sniff(deep.as_bytes()), Sniff::Invalid(_)));
    }

    #[test]
    fn sniffer_thread_matches_direct() {
        let doc =
            format!(r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}},"users":"QUJD"}}"#);
        let mut s = Sniffer::spawn().unwrap();
        for c in doc.as_bytes().chunks(3) {
            s.feed(c);
        }
        assert!(matches!(s.finish().unwrap(), Sniff::Usage(_)));
    }

    /// The block and word scans find exactly the first special byte: every
    /// byte value at every position of buffers of lengths around the word
    /// and block sizes (up to two blocks and a tail), alone and before
    /// another special byte.
    #[test]
    fn plain_prefix_finds_the_first_special_byte() {
        let naive = |b: &[u8]| b.iter().position(|&c| is_special(c)).unwrap_or(b.len());
        for c in 0..=255u8 {
            assert_eq!(
                is_special(c),
                !(0x20..0x80).contains(&c) || c == b'"' || c == b'\\',
                "{c:#x}"
            );
        }
        for len in (0..=17).chain(30..=34).chain(62..=66).chain(126..=140) {
            let plain = vec![b'A'; len];
            assert_eq!(plain_prefix(&plain), len);
            for at in 0..len {
                for c in 0..=255u8 {
                    let mut b = plain.clone();
                    b[at] = c;
                    assert_eq!(plain_prefix(&b), naive(&b), "{c:#x} at {at} of {len}");
                    if at + 1 < len {
                        // A second special byte after the first.
                        b[len - 1] = 0x00;
                        assert_eq!(plain_prefix(&b), naive(&b), "{c:#x} at {at} of {len}");
                    }
                }
            }
        }
    }

    /// Hands out 1, 2, 3, 1, 2, 3… bytes per read, so that every multi-byte
    /// token (UTF-8 sequences, escapes, literals, the BOM) straddles reads.
    struct Trickle<'a> {
        data: &'a [u8],
        n: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let k = (self.n % 3 + 1).min(out.len()).min(self.data.len());
            self.n += 1;
            out[..k].copy_from_slice(&self.data[..k]);
            self.data = &self.data[k..];
            Ok(k)
        }
    }

    /// The verdict on `doc`, read whole and trickled (which must agree).
    fn verdict(doc: &[u8]) -> Sniff {
        let whole = sniff(doc);
        for skip in 0..3 {
            let trickled = sniff(Trickle { data: doc, n: skip });
            assert_eq!(
                format!("{whole:?}"),
                format!("{trickled:?}"),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
        whole
    }

    /// The verdict from `sniff`, trickled reads and a `Sniffer` fed in
    /// chunks of 1, 2, … 7 bytes: all must agree.
    fn verdict_threaded(doc: &[u8]) -> Sniff {
        let whole = verdict(doc);
        let mut s = Sniffer::spawn().unwrap();
        let (mut rest, mut n) = (doc, 0);
        while !rest.is_empty() {
            let k = (n % 7 + 1).min(rest.len());
            s.feed(&rest[..k]);
            rest = &rest[k..];
            n += 1;
        }
        let threaded = s.finish().unwrap();
        assert_eq!(format!("{whole:?}"), format!("{threaded:?}"));
        whole
    }

    fn head() -> String {
        format!(r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}},"x":"#)
    }

    /// A usage file with `value` as a field after `instance`.
    fn after(value: &[u8]) -> Vec<u8> {
        let mut d = head().into_bytes();
        d.extend_from_slice(value);
        d.push(b'}');
        d
    }

    /// The same, with `value` as a field before `instance`.
    fn before(value: &[u8]) -> Vec<u8> {
        let mut d = b"{\"x\":".to_vec();
        d.extend_from_slice(value);
        d.extend_from_slice(
            format!(r#","instance":{{"server_id":"{ID}","host_name":"h"}}}}"#).as_bytes(),
        );
        d
    }

    fn invalid_reason(doc: &[u8]) -> String {
        match verdict_threaded(doc) {
            Sniff::Invalid(why) => why,
            s => panic!("{s:?} for {}", String::from_utf8_lossy(doc)),
        }
    }

    /// `value` (after `instance`) is refused for `what`, at byte `at` of the
    /// value; the same value before `instance` makes the file opaque.
    fn refused(value: &[u8], what: &str, at: usize) {
        let why = invalid_reason(&after(value));
        let want = format!("not valid JSON: {what} at byte {}", head().len() + at);
        assert_eq!(why, want, "{}", String::from_utf8_lossy(value));
        assert!(
            matches!(verdict(&before(value)), Sniff::Other),
            "{}",
            String::from_utf8_lossy(value)
        );
    }

    #[test]
    fn invalid_literals_are_refused() {
        for v in [
            "tru", "nul", "fals", "falsey", "truex", "true_", "nulll", "True", "NaN", "x",
        ] {
            refused(v.as_bytes(), "invalid literal", 0);
        }
        refused(b"[1,tru]", "invalid literal", 3);
        refused(b"{\"a\":nul}", "invalid literal", 5);
        // Accepted: each literal, followed by a delimiter.
        for v in ["true", "false", "null", "[true,false,null]", "{\"a\":true}"] {
            assert!(
                matches!(verdict(&after(v.as_bytes())), Sniff::Usage(_)),
                "{v}"
            );
        }
    }

    #[test]
    fn invalid_numbers_are_refused() {
        for v in [
            "01",
            "-01",
            "00",
            "1.",
            "-",
            "--1",
            "1e",
            "1e+",
            "1E-",
            "+1",
            ".5",
            "-.5",
            "0x10",
            "1.5.2",
            "1e5e5",
            "1.e3",
            "0b1",
            "1_000",
            "Infinity",
            "-Infinity",
        ] {
            let why = invalid_reason(&after(v.as_bytes()));
            let lit = v
                .trim_start_matches('-')
                .starts_with(|c: char| c.is_ascii_alphabetic());
            let want = if lit && !v.starts_with('-') {
                "invalid literal"
            } else {
                "invalid number"
            };
            assert_eq!(
                why,
                format!("not valid JSON: {want} at byte {}", head().len()),
                "{v}"
            );
            assert!(
                matches!(verdict(&before(v.as_bytes())), Sniff::Other),
                "{v}"
            );
        }
        refused(b"[0,01]", "invalid number", 3);
    }

    #[test]
    fn invalid_escapes_are_refused() {
        for (v, at) in [
            (&br#""\x""#[..], 1),
            (br#""\u12""#, 1),
            (br#""\u12"#, 1),
            (br#""\uZZZZ""#, 1),
            (br#""\u00G0""#, 1),
            (br#""ab\'""#, 3),
            (br#""\a""#, 1),
            (br#""\U0041""#, 1),
            (b"\"\\\x00\"", 1),
            (b"\"\\\xc3\xa9\"", 1),
        ] {
            refused(v, "invalid escape", at);
        }
    }

    #[test]
    fn lone_surrogates_are_refused() {
        for (v, at) in [
            (&br#""\ud800""#[..], 1),
            (br#""\uDBFF x""#, 1),
            (br#""a\udc00""#, 2),
            (br#""\ud800\n""#, 1),
            (br#""\ud800\u0041""#, 1),
            (br#""\ud800\ud800""#, 1),
            (br#""\udfff\ud800""#, 1),
        ] {
            refused(v, "lone UTF-16 surrogate in a \\u escape", at);
        }
        // serde_json agrees.
        assert!(serde_json::from_slice::<serde_json::Value>(br#""\ud800""#).is_err());
        assert!(serde_json::from_slice::<serde_json::Value>(br#""\udc00""#).is_err());
        // A pair is a character.
        assert!(matches!(
            verdict(&after(br#""\ud834\udd1e \uD83D\uDE00""#)),
            Sniff::Usage(_)
        ));
    }

    #[test]
    fn raw_control_characters_in_strings_are_refused() {
        for c in 0u8..0x20 {
            let v = [b'"', b'a', c, b'"'];
            refused(
                &v,
                &format!("raw control character U+{c:04X} in a string"),
                2,
            );
        }
        // Also in keys, and in the instance.
        let key = after(b"{\"a\tb\":1}");
        assert!(invalid_reason(&key).contains("raw control character U+0009"));
        let inst = format!(
            "{{\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\",\"n\":\"a\nb\"}}}}"
        );
        assert!(invalid_reason(inst.as_bytes()).contains("raw control character U+000A"));
        // DEL is not a control character in JSON.
        assert!(matches!(verdict(&after(b"\"\x7f\"")), Sniff::Usage(_)));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        for (v, at) in [
            (&b"\"\x80\""[..], 1),        // stray continuation byte
            (b"\"ab\xbf\"", 3),           // stray continuation byte
            (b"\"\xc3\"", 1),             // truncated, then the quote
            (b"\"\xe2\x82\"", 1),         // truncated
            (b"\"\xf0\x9f\x98\"", 1),     // truncated
            (b"\"\xc0\x80\"", 1),         // overlong NUL
            (b"\"\xc1\xbf\"", 1),         // overlong
            (b"\"\xe0\x80\xaf\"", 1),     // overlong '/'
            (b"\"\xf0\x8f\xbf\xbf\"", 1), // overlong U+FFFF
            (b"\"\xed\xa0\x80\"", 1),     // UTF-8 encoded surrogate U+D800
            (b"\"\xed\xbf\xbf\"", 1),     // U+DFFF
            (b"\"\xf4\x90\x80\x80\"", 1), // U+110000
            (b"\"\xf5\x80\x80\x80\"", 1), // beyond
            (b"\"\xff\"", 1),
            (b"\"\xfe\"", 1),
            (b"\"ok \xc3\xa9 \xe2\x82\xac \xc3(\"", 11), // after valid ones
            (b"\"\xc3\xa9", 3),                          // valid, then EOF: unterminated
        ] {
            if v.ends_with(b"\xa9") {
                // The string runs into the closing brace and the end.
                let why = invalid_reason(&after(v));
                assert!(why.contains("unterminated string"), "{why}");
                continue;
            }
            refused(v, "invalid UTF-8", at);
        }
        // A sequence cut by the end of input.
        let mut d = head().into_bytes();
        d.extend_from_slice(b"\"\xe2\x82");
        assert_eq!(
            invalid_reason(&d),
            format!("not valid JSON: invalid UTF-8 at byte {}", head().len() + 1)
        );
        // Outside strings, any non-ASCII byte is unexpected.
        let why = invalid_reason(&after(b"\xc3\xa9"));
        assert!(why.contains("unexpected byte 0xC3"), "{why}");
        let why = invalid_reason(&after(b"[1,\xe2\x80\x83 2]"));
        assert!(why.contains("unexpected byte 0xE2"), "{why}");
        // In keys and in the instance too.
        assert!(invalid_reason(&after(b"{\"\xc0\xaf\":1}")).contains("invalid UTF-8"));
        let mut inst =
            format!("{{\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\",\"n\":\"")
                .into_bytes();
        inst.extend_from_slice(b"\xed\xa0\x80\"}}");
        assert!(invalid_reason(&inst).contains("invalid UTF-8"));
    }

    #[test]
    fn utf8_split_across_reads_is_accepted() {
        // Every length of sequence, at every alignment against 1–3 byte reads
        // (verdict() reads each document three ways), in values and keys.
        let text = "é€𝄞\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}\u{d7ff}\u{e000}";
        for pad in 0..4 {
            let p = "a".repeat(pad);
            let v = format!(r#"{{"{p}{text}":"{p}{text}","users":"{text}"}}"#);
            assert!(
                matches!(verdict_threaded(&after(v.as_bytes())), Sniff::Usage(_)),
                "{v}"
            );
            let users = format!(
                r#"{{"users":[{{"n":"{p}{text}"}}],"instance":{{"server_id":"{ID}","host_name":"h","v":"{p}{text}"}}}}"#
            );
            match verdict_threaded(users.as_bytes()) {
                Sniff::Usage(u) => assert_eq!(u.users, Users::Clear { count: 1 }),
                s => panic!("{s:?}"),
            }
        }
    }

    #[test]
    fn every_escape_and_number_form_is_accepted() {
        let doc = format!(
            concat!(
                "\t\r\n {{ \"instance\" : {{\"server_id\":\"{}\",\"host_name\":\"h\",",
                "\"version\":\"3.15.2\\u0020\",\"e\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\\u00e9\\u20AC\\uFFFF\\ud834\\udd1e\"}},",
                "\"esc\\u0041pe\\n\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\uD7FF\\uE000\",",
                "\"n\":[0,-0,1,-1,10,1234567890,0.0,-0.5,3.25,1e5,1E5,1e+5,1e-5,1E+05,0e0,-0E-0,",
                "1.5e300,123456789012345678901234567890,0.000001,2.5E-3],",
                "\"l\":[true,false,null,{{}},[],\"\",{{\"\":[[]]}}],",
                "\"u\\u0073ers\" :\"QUJD+/==\"\r\n}}\n\n"
            ),
            ID
        );
        assert!(
            serde_json::from_str::<serde_json::Value>(&doc).is_ok(),
            "{doc}"
        );
        match verdict_threaded(doc.as_bytes()) {
            Sniff::Usage(u) => {
                assert_eq!(u.users, Users::Encrypted); // the escaped key is `users`
                assert_eq!(u.version.as_deref(), Some("3.15.2 "));
            }
            s => panic!("{s:?}"),
        }
        // An escaped `instance` key is `instance`, and a second one is refused.
        let dup = format!(
            r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}},"inst\u0061nce":{{}}}}"#
        );
        assert!(invalid_reason(dup.as_bytes()).contains("duplicate field `instance`"));
    }

    #[test]
    fn whitespace_bom_and_trailing_data() {
        let ok = format!(r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}}}}"#);
        assert!(matches!(verdict(ok.as_bytes()), Sniff::Usage(_)));
        assert!(matches!(
            verdict(format!(" \t\r\n{ok} \t\r\n").as_bytes()),
            Sniff::Usage(_)
        ));
        // Only space, tab, LF and CR are whitespace.
        for ws in [&b"\x0c"[..], b"\x0b", b"\xc2\xa0", b"\xe2\x80\x83", b"\x00"] {
            let mut d = head().into_bytes();
            d.extend_from_slice(ws);
            d.extend_from_slice(b"1}");
            assert!(invalid_reason(&d).starts_with("not valid JSON: unexpected byte"));
            let mut d = ok.clone().into_bytes();
            d.extend_from_slice(ws);
            assert!(invalid_reason(&d).contains("trailing data"));
        }
        for t in [&b"x"[..], b"{}", b"\x00", b"\n\n}"] {
            let mut d = ok.clone().into_bytes();
            d.extend_from_slice(t);
            assert!(invalid_reason(&d).contains("trailing data after the object"));
        }
        // A byte order mark: a usage file behind it is refused, anything else
        // behind it is opaque.
        let mut bom = b"\xef\xbb\xbf".to_vec();
        bom.extend_from_slice(ok.as_bytes());
        assert_eq!(
            invalid_reason(&bom),
            "not valid JSON: byte order mark (U+FEFF) at byte 0; GHES writes none"
        );
        assert!(matches!(verdict(b"\xef\xbb\xbf{\"a\":1}"), Sniff::Other));
        assert!(matches!(verdict(b"\xef\xbb{\"a\":1}"), Sniff::Other));
        assert!(matches!(verdict(b"\xef\xbb\xbf"), Sniff::Other));
        assert!(matches!(verdict(b""), Sniff::Other));
    }

    #[test]
    fn structure_rules() {
        // Long keys are valid JSON: validated, not kept.
        let long = format!("{{\"{}\":1}}", "k".repeat(100_000));
        assert!(matches!(verdict(&after(long.as_bytes())), Sniff::Usage(_)));
        // `instance` must be an object; user records must be objects.
        let arr = format!(r#"{{"instance":["{ID}","h"]}}"#);
        assert_eq!(invalid_reason(arr.as_bytes()), "instance is not an object");
        assert!(invalid_reason(&after(b"1,\"users\":[{},1]")).contains("user record"));
        assert!(invalid_reason(&after(b"1,\"users\":{}")).contains("neither"));
        // The first problem is named.
        assert!(invalid_reason(&after(b"1,\"users\":[tru]")).contains("user record"));
        assert!(invalid_reason(&after(b"1,\"users\":[{},]")).contains("user record"));
        assert!(invalid_reason(&after(b"1,\"users\":{\"a\":tru}")).contains("neither"));
        assert!(invalid_reason(&after(b"1,\"users\":[{\"a\":tru}]")).contains("invalid literal"));
        // Missing separators and stray ones.
        for v in [
            &b"[1 2]"[..],
            b"[1,]",
            b"[,1]",
            b"{\"a\" 1}",
            b"{\"a\":1,}",
            b"{,}",
            b"{\"a\":1 \"b\":2}",
            b"{1:2}",
            b"[}",
            b"{]",
            b"",
        ] {
            assert!(
                invalid_reason(&after(v)).starts_with("not valid JSON:"),
                "{}",
                String::from_utf8_lossy(v)
            );
        }
        let missing_colon =
            format!(r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}},"a" 1}}"#);
        assert!(invalid_reason(missing_colon.as_bytes()).contains("expected ':'"));
    }

    /// A deterministic xorshift64* generator.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Whether serde_json's reading of a document makes it a usage file
    /// (`sniff` must then say `Usage`): `None` when the raw text could hold
    /// duplicate keys, which serde_json's `Value` silently merges.
    fn usage_per_serde(v: &serde_json::Value, raw: &[u8]) -> Option<bool> {
        for k in ["instance", "users", "server_id", "host_name", "version"] {
            let needle = format!("\"{k}\"");
            if raw
                .windows(needle.len())
                .filter(|w| *w == needle.as_bytes())
                .count()
                > 1
            {
                return None;
            }
        }
        let Some(top) = v.as_object() else {
            return Some(false);
        };
        let Some(inst) = top.get("instance").and_then(|i| i.as_object()) else {
            return Some(false);
        };
        let id_ok = inst
            .get("server_id")
            .and_then(|s| s.as_str())
            .is_some_and(is_uuid);
        let host_ok = inst
            .get("host_name")
            .and_then(|s| s.as_str())
            .is_some_and(is_host_name);
        let users_ok = match top.get("users") {
            None | Some(serde_json::Value::Null) | Some(serde_json::Value::String(_)) => true,
            Some(serde_json::Value::Array(a)) => a.iter().all(|u| u.is_object()),
            Some(_) => false,
        };
        Some(id_ok && host_ok && users_ok)
    }

    /// Random byte mutations of small valid usage files, differential
    /// against serde_json: what serde_json rejects is never a usage file;
    /// what it accepts is never called invalid JSON, and is a usage file when
    /// its envelope is right.
    #[test]
    fn mutations_agree_with_serde_json() {
        let seeds = [
            format!(
                concat!(
                    "{{\"instance\":{{\"server_id\":\"{}\",\"host_name\":\"ghes.example.com\",",
                    "\"version\":\"3.15.2\",\"f\":[{{\"n\":\"d\\u00e9p\\n\",\"on\":true}}],\"z\":null}},",
                    "\"k\":[0,-1.5e3,2E-2,10,0.25],\"s\":\"é€𝄞\\ud834\\udd1e\\\"\\\\\\/\",",
                    "\"users\":[{{\"login\":\"a\",\"id\":1,\"ghas\":false}},{{\"e\":[{{\"p\":true}}]}}]}}"
                ),
                ID
            ),
            format!(
                "{{\"users\":\"QUJDRA==\\n+/9\",\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h-1\"}},\"n\":-0.0e+1}}\n"
            ),
        ];
        const INTERESTING: &[u8] =
            b"\"\\{}[],:0123456789.eE+-tfnrlsu \t\n\r\x00\x1f\x7f\x80\xbf\xc3\xa9\xe2\xed\xa0\xf0\xf4\x90\xff";
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut usage, mut invalid, mut other, mut serde_ok) = (0, 0, 0, 0);
        for (i, seed) in seeds.iter().enumerate() {
            assert!(
                matches!(verdict(seed.as_bytes()), Sniff::Usage(_)),
                "{seed}"
            );
            for case in 0..2500 {
                let mut d = seed.as_bytes().to_vec();
                for _ in 0..1 + rng.below(3) {
                    let byte = if rng.below(2) == 0 {
                        INTERESTING[rng.below(INTERESTING.len())]
                    } else {
                        rng.next() as u8
                    };
                    let at = rng.below(d.len() + 1);
                    match rng.below(3) {
                        0 if at < d.len() => d[at] = byte,
                        1 if at < d.len() => {
                            d.remove(at);
                        }
                        _ => d.insert(at, byte),
                    }
                }
                let got = if case % 50 == 0 {
                    verdict_threaded(&d)
                } else {
                    verdict(&d)
                };
                let show = || format!("seed {i} case {case}: {}", String::from_utf8_lossy(&d));
                match serde_json::from_slice::<serde_json::Value>(&d) {
                    Err(e) => {
                        // serde_json refuses numbers beyond f64; JSON does not.
                        if !e.to_string().contains("number out of range") {
                            assert!(!matches!(got, Sniff::Usage(_)), "{e}: {}", show());
                        }
                    }
                    Ok(v) => {
                        serde_ok += 1;
                        if let Sniff::Invalid(why) = &got {
                            assert!(!why.starts_with("not valid JSON"), "{why}: {}", show());
                        }
                        if usage_per_serde(&v, &d) == Some(true) {
                            assert!(matches!(got, Sniff::Usage(_)), "{got:?}: {}", show());
                        }
                    }
                }
                match got {
                    Sniff::Usage(_) => usage += 1,
                    Sniff::Invalid(_) => invalid += 1,
                    Sniff::Other => other += 1,
                }
            }
        }
        // The mutations reach every verdict.
        assert!(
            usage > 100 && invalid > 1000 && other > 100 && serde_ok > 200,
            "usage {usage}, invalid {invalid}, other {other}, serde_json ok {serde_ok}"
        );
    }

    /// Throughput of `sniff` on a 256 MiB encrypted-users document (and on
    /// the same blob with a `\n` escape every 60 characters, as Ruby's
    /// `Base64.encode64` writes, and on users in clear):
    /// `cargo test --release --lib usage::tests::throughput -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn throughput() {
        fn time(what: &str, doc: &[u8]) {
            let mut best = f64::MAX;
            for _ in 0..3 {
                let t = std::time::Instant::now();
                assert!(matches!(sniff(doc), Sniff::Usage(_)), "{what}");
                best = best.min(t.elapsed().as_secs_f64());
            }
            eprintln!(
                "sniff, {what}: {} bytes in {best:.3} s = {:.0} MB/s",
                doc.len(),
                doc.len() as f64 / best / 1e6
            );
        }
        let doc = crate::sample::usage_encrypted(
            crate::sample::SAMPLE_HOST,
            crate::sample::SAMPLE_SERVER_ID,
            256 << 20,
        );
        time("encrypted users", &doc);
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let mut sn = Sniffer::spawn().unwrap();
            for c in doc.chunks(1 << 20) {
                sn.feed(c);
            }
            assert!(matches!(sn.finish().unwrap(), Sniff::Usage(_)));
            best = best.min(t.elapsed().as_secs_f64());
        }
        eprintln!(
            "Sniffer, encrypted users, 1 MiB chunks: {best:.3} s = {:.0} MB/s",
            doc.len() as f64 / best / 1e6
        );
        let users = doc.windows(9).position(|w| w == b"\"users\":\"").unwrap() + 9;
        let mut wrapped = doc[..users].to_vec();
        let body_end = doc.len() - 3; // "}\n
        for line in doc[users..body_end].chunks(60) {
            wrapped.extend_from_slice(line);
            wrapped.extend_from_slice(b"\\n");
        }
        wrapped.extend_from_slice(&doc[body_end..]);
        time("encrypted users, \\n every 60 bytes", &wrapped);
        let clear = crate::sample::usage_clear(
            crate::sample::SAMPLE_HOST,
            crate::sample::SAMPLE_SERVER_ID,
            1_000_000,
        );
        time("1,000,000 users in clear", &clear);
    }
}
