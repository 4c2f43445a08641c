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
mod tests;
