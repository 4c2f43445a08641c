//! The GHES license usage file: recognise it, validate its envelope, describe
//! it. Its bytes are opaque cargo and are never re-serialized.
//!
//! A usage file is a JSON object with an `instance` object carrying a UUID
//! `server_id` and a non-empty `host_name`; unknown fields are tolerated.
//! `users` is either a string (the list encrypted to GitHub, the default) or
//! an array of user records (exported in clear).
//!
//! Parsing is streamed; `Sniffer` runs it on a second thread fed with the
//! chunks the caller is already reading, so recognising a file costs no
//! extra pass over it.

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
    /// In clear: a list of this many user records.
    Clear { count: u64 },
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
    pub host_name: String,
    pub server_id: String,
    pub version: Option<String>,
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

/// A minimal streaming JSON scanner over a `BufRead`: it walks the top-level
/// object, skips values without keeping them (strings are skipped with
/// memchr, so a gigabyte-long `users` blob costs no memory), and captures the
/// small `instance` value for serde_json to parse.
struct Scanner<R: BufRead> {
    r: R,
    capture: Option<Vec<u8>>,
}

type ScanResult<T> = std::result::Result<T, String>;

impl<R: BufRead> Scanner<R> {
    fn peek(&mut self) -> ScanResult<Option<u8>> {
        loop {
            match self.r.fill_buf() {
                Ok(b) => return Ok(b.first().copied()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
    }

    fn bump(&mut self) -> ScanResult<u8> {
        let b = self.peek()?.ok_or("unexpected end of input")?;
        self.r.consume(1);
        if let Some(c) = self.capture.as_mut() {
            c.push(b);
            if c.len() > MAX_INSTANCE_LEN {
                return Err("instance is too large".into());
            }
        }
        Ok(b)
    }

    fn ws(&mut self) -> ScanResult<Option<u8>> {
        while let Some(b) = self.peek()? {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                self.bump()?;
            } else {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    fn expect(&mut self, want: u8) -> ScanResult<()> {
        match self.ws()? {
            Some(b) if b == want => {
                self.bump()?;
                Ok(())
            }
            Some(b) => Err(format!(
                "expected '{}', found '{}'",
                want as char, b as char
            )),
            None => Err("unexpected end of input".into()),
        }
    }

    /// Skip a string whose opening quote was consumed.
    fn skip_string_body(&mut self) -> ScanResult<()> {
        loop {
            let (n, hit) = {
                let buf = match self.r.fill_buf() {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("read error: {e}")),
                };
                if buf.is_empty() {
                    return Err("unterminated string".into());
                }
                match memchr::memchr2(b'"', b'\\', buf) {
                    Some(i) => (i, Some(buf[i])),
                    None => (buf.len(), None),
                }
            };
            if let Some(c) = self.capture.as_mut() {
                // Only ever small: the instance object is bounded.
                let buf = self.r.fill_buf().map_err(|e| e.to_string())?;
                c.extend_from_slice(&buf[..n]);
                if c.len() > MAX_INSTANCE_LEN {
                    return Err("instance is too large".into());
                }
            }
            self.r.consume(n);
            match hit {
                Some(b'"') => {
                    self.bump()?;
                    return Ok(());
                }
                Some(_) => {
                    self.bump()?; // backslash
                    self.bump()?; // escaped character (\uXXXX digits are plain bytes)
                }
                None => {}
            }
        }
    }

    /// Read a short string (a key), decoding escapes with serde_json.
    fn key(&mut self) -> ScanResult<String> {
        self.expect(b'"')?;
        let mut raw = vec![b'"'];
        loop {
            let b = self.bump()?;
            raw.push(b);
            if raw.len() > 4096 {
                return Err("key too long".into());
            }
            match b {
                b'"' => break,
                b'\\' => raw.push(self.bump()?),
                _ => {}
            }
        }
        serde_json::from_slice(&raw).map_err(|e| format!("bad key: {e}"))
    }

    /// Skip one value of any kind, iteratively.
    fn skip_value(&mut self) -> ScanResult<()> {
        let mut stack: Vec<u8> = Vec::new();
        loop {
            let b = self.ws()?.ok_or("unexpected end of input")?;
            match b {
                b'{' | b'[' => {
                    self.bump()?;
                    if stack.len() >= MAX_DEPTH {
                        return Err("nesting too deep".into());
                    }
                    stack.push(if b == b'{' { b'}' } else { b']' });
                    if self.ws()? == stack.last().copied() {
                        self.bump()?;
                        stack.pop();
                    } else if b == b'{' {
                        self.expect(b'"')?;
                        self.skip_string_body()?;
                        self.expect(b':')?;
                        continue;
                    } else {
                        continue;
                    }
                }
                b'"' => {
                    self.bump()?;
                    self.skip_string_body()?;
                }
                b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                    while let Some(c) = self.peek()? {
                        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.') {
                            self.bump()?;
                        } else {
                            break;
                        }
                    }
                }
                other => return Err(format!("unexpected '{}'", other as char)),
            }
            // After a complete value: close containers or move to the next element.
            loop {
                let Some(&close) = stack.last() else {
                    return Ok(());
                };
                match self.ws()? {
                    Some(b',') => {
                        self.bump()?;
                        if close == b'}' {
                            self.expect(b'"')?;
                            self.skip_string_body()?;
                            self.expect(b':')?;
                        }
                        break;
                    }
                    Some(c) if c == close => {
                        self.bump()?;
                        stack.pop();
                    }
                    Some(c) => return Err(format!("unexpected '{}'", c as char)),
                    None => return Err("unexpected end of input".into()),
                }
            }
        }
    }

    fn users(&mut self) -> ScanResult<Users> {
        match self.ws()? {
            Some(b'"') => {
                self.bump()?;
                self.skip_string_body()?;
                Ok(Users::Encrypted)
            }
            Some(b'[') => {
                self.bump()?;
                let mut count = 0u64;
                if self.ws()? == Some(b']') {
                    self.bump()?;
                    return Ok(Users::Clear { count });
                }
                loop {
                    if self.ws()? != Some(b'{') {
                        return Err("a user record is not an object".into());
                    }
                    self.skip_value()?;
                    count += 1;
                    match self.ws()? {
                        Some(b',') => {
                            self.bump()?;
                        }
                        Some(b']') => {
                            self.bump()?;
                            return Ok(Users::Clear { count });
                        }
                        _ => return Err("malformed users array".into()),
                    }
                }
            }
            Some(b'n') => {
                self.skip_value()?;
                Ok(Users::Absent)
            }
            _ => Err("users is neither a string nor an array".into()),
        }
    }
}

/// Recognise and validate a usage file from a stream.
pub fn sniff<R: Read>(r: R) -> Sniff {
    let mut sc = Scanner {
        r: io::BufReader::with_capacity(1 << 16, r),
        capture: None,
    };
    let mut saw_instance = false;
    let mut instance_raw = None;
    let mut users = Users::Absent;
    let mut seen_users = false;
    let result: ScanResult<()> = (|| {
        if sc.ws()? != Some(b'{') {
            return Err("not a JSON object".into());
        }
        sc.bump()?;
        if sc.ws()? == Some(b'}') {
            sc.bump()?;
        } else {
            loop {
                let k = sc.key()?;
                sc.expect(b':')?;
                match k.as_str() {
                    "instance" => {
                        if saw_instance {
                            return Err("duplicate field `instance`".into());
                        }
                        saw_instance = true;
                        sc.ws()?;
                        sc.capture = Some(Vec::new());
                        let r = sc.skip_value();
                        instance_raw = sc.capture.take();
                        r?;
                    }
                    "users" => {
                        if seen_users {
                            return Err("duplicate field `users`".into());
                        }
                        seen_users = true;
                        users = sc.users()?;
                    }
                    _ => sc.skip_value()?,
                }
                match sc.ws()? {
                    Some(b',') => {
                        sc.bump()?;
                    }
                    Some(b'}') => {
                        sc.bump()?;
                        break;
                    }
                    _ => return Err("expected ',' or '}'".into()),
                }
            }
        }
        if sc.ws()?.is_some() {
            return Err("trailing data after the JSON object".into());
        }
        Ok(())
    })();
    if let Err(e) = result {
        return if saw_instance {
            Sniff::Invalid(format!("not valid JSON: {e}"))
        } else {
            Sniff::Other
        };
    }
    let Some(raw) = instance_raw else {
        return Sniff::Other;
    };
    let inst: Instance = match serde_json::from_slice(&raw) {
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
    tx: Option<SyncSender<Vec<u8>>>,
    handle: JoinHandle<Sniff>,
}

struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Sniffer {
    /// Start the parser thread. A system that refuses the thread (memory or
    /// thread limits) gets an error, not a panic.
    pub fn spawn() -> Result<Sniffer> {
        let (tx, rx) = sync_channel::<Vec<u8>>(4);
        let handle = std::thread::Builder::new()
            .name("usage-parser".into())
            .spawn(move || {
                sniff(ChannelReader {
                    rx,
                    buf: Vec::new(),
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
        if let Some(tx) = &self.tx {
            if tx.send(chunk.to_vec()).is_err() {
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
}
