//! The streaming, strict JSON scanner a usage file is sniffed with.

use super::*;

/// The UTF-8 byte order mark.
pub(super) const BOM: &[u8] = b"\xEF\xBB\xBF";

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
pub(super) struct Scanner<R: BufRead> {
    pub(super) r: R,
    /// Offset in the input of the next unread byte.
    pub(super) pos: u64,
    pub(super) capture: Option<Vec<u8>>,
}

pub(super) type ScanResult<T> = std::result::Result<T, String>;

/// A byte for an error message: printable ASCII as itself, else in hex.
pub(super) fn show(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02X}")
    }
}

/// A byte that ends a run of plain string content: `"`, `\`, a control
/// character (< 0x20) or a non-ASCII byte (≥ 0x80, checked as UTF-8).
#[inline(always)]
pub(super) fn is_special(b: u8) -> bool {
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
pub(super) fn plain_prefix(buf: &[u8]) -> usize {
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
pub(super) struct Key {
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
    pub(super) fn is(&self, name: &str) -> bool {
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
    pub(super) fn bad(&self, what: &str, at: u64) -> String {
        format!("not valid JSON: {what} at byte {at}")
    }

    pub(super) fn eof(&self) -> String {
        self.bad("unexpected end of input", self.pos)
    }

    pub(super) fn peek(&mut self) -> ScanResult<Option<u8>> {
        Ok(self.fill()?.first().copied())
    }

    /// Consume `n` bytes, all of them already buffered.
    pub(super) fn take(&mut self, n: usize) -> ScanResult<()> {
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
    pub(super) fn ws(&mut self) -> ScanResult<Option<u8>> {
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
    pub(super) fn key(&mut self, key: Option<&mut Key>) -> ScanResult<()> {
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
    pub(super) fn skip_value(&mut self) -> ScanResult<()> {
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

    pub(super) fn users(&mut self) -> ScanResult<Users> {
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
