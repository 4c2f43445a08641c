//! Reading GitHub's response bodies with bounded memory: the body is
//! streamed (never held whole), checked to be UTF-8 as it comes, and parsed
//! into only what airlock keeps — each item of a page's array is handed to
//! the caller as it is read and then dropped. What went wrong with a body is
//! named (too slow, truncated, not UTF-8, not JSON) so it can be retried.

use std::fmt;
use std::io::{self, Read};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::sanitize;

/// Why a response body could not be used. All but `TooLarge` are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyFault {
    /// The body did not arrive within the request's time.
    Slow,
    /// The connection ended before the body did (or the JSON ends early).
    Truncated(String),
    /// A byte sequence that is not UTF-8, at this offset.
    NotUtf8(u64),
    /// UTF-8, but not JSON.
    NotJson(String),
    /// Larger than airlock reads.
    TooLarge(u64),
    /// Any other read error.
    Unreadable(String),
}

impl BodyFault {
    /// Whether asking again may help.
    pub(crate) fn retried(&self) -> bool {
        !matches!(self, BodyFault::TooLarge(_))
    }

    /// Transport trouble (network, proxy, GitHub) or a body in the wrong
    /// form: the code of the error it ends in.
    pub(crate) fn code(&self) -> crate::base::error::Code {
        use crate::base::error::Code;
        match self {
            BodyFault::Slow | BodyFault::Truncated(_) | BodyFault::Unreadable(_) => {
                Code::CloudUnavailable
            }
            BodyFault::NotUtf8(_) | BodyFault::NotJson(_) | BodyFault::TooLarge(_) => {
                Code::CloudResponse
            }
        }
    }
}

impl fmt::Display for BodyFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyFault::Slow => write!(f, "the response body was too slow"),
            BodyFault::Truncated(m) => write!(f, "the response body was truncated ({m})"),
            BodyFault::NotUtf8(at) => write!(f, "the response body is not UTF-8 (at byte {at})"),
            BodyFault::NotJson(m) => write!(f, "the response body is not JSON ({m})"),
            BodyFault::TooLarge(n) => write!(f, "the response body is larger than {n} bytes"),
            BodyFault::Unreadable(m) => write!(f, "the response body could not be read ({m})"),
        }
    }
}

/// A body reader that checks UTF-8 as bytes come and remembers what went
/// wrong, so that a parse error can be told apart from a transport fault.
pub(crate) struct Watched<R> {
    inner: R,
    /// Bytes read so far.
    read: u64,
    /// The start of a UTF-8 sequence split across reads (at most 3 bytes).
    carry: Vec<u8>,
    /// The first fault seen; reads fail after it.
    pub(crate) fault: Option<BodyFault>,
}

impl<R: Read> Watched<R> {
    pub(crate) fn new(inner: R) -> Watched<R> {
        Watched {
            inner,
            read: 0,
            carry: Vec::new(),
            fault: None,
        }
    }

    /// The offset of the first invalid byte in `b` (read at `self.read`),
    /// keeping an incomplete sequence at its end for the next read.
    fn check_utf8(&mut self, b: &[u8]) -> Option<u64> {
        let mut off = 0;
        if let Some(&lead) = self.carry.first() {
            let at = self.read - self.carry.len() as u64;
            let width = match lead {
                0xC2..=0xDF => 2,
                0xE0..=0xEF => 3,
                _ => 4,
            };
            off = (width - self.carry.len()).min(b.len());
            self.carry.extend_from_slice(&b[..off]);
            if self.carry.len() < width {
                // Still incomplete: the prefix must be valid so far.
                return match std::str::from_utf8(&self.carry) {
                    Err(e) if e.error_len().is_some() => Some(at),
                    _ => None,
                };
            }
            if std::str::from_utf8(&self.carry).is_err() {
                return Some(at);
            }
            self.carry.clear();
        }
        match std::str::from_utf8(&b[off..]) {
            Ok(_) => None,
            Err(e) if e.error_len().is_none() => {
                self.carry = b[off + e.valid_up_to()..].to_vec();
                None
            }
            Err(e) => Some(self.read + (off + e.valid_up_to()) as u64),
        }
    }

    fn fail(&mut self, f: BodyFault) -> io::Error {
        let e = io::Error::other(f.to_string());
        self.fault.get_or_insert(f);
        e
    }
}

/// What a read error of ureq's body reader means.
fn read_fault(e: io::Error, read: u64) -> BodyFault {
    match ureq::Error::from(e) {
        ureq::Error::Timeout(_) => BodyFault::Slow,
        ureq::Error::BodyExceedsLimit(n) => BodyFault::TooLarge(n),
        ureq::Error::Io(io) => match io.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => BodyFault::Slow,
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => {
                BodyFault::Truncated(format!("the connection ended after {read} bytes: {io}"))
            }
            _ => BodyFault::Unreadable(io.to_string()),
        },
        other => BodyFault::Unreadable(other.to_string()),
    }
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = &self.fault {
            return Err(io::Error::other(f.to_string()));
        }
        match self.inner.read(buf) {
            Ok(0) if !self.carry.is_empty() => {
                let at = self.read - self.carry.len() as u64;
                Err(self.fail(BodyFault::NotUtf8(at)))
            }
            Ok(n) => {
                if let Some(at) = self.check_utf8(&buf[..n]) {
                    return Err(self.fail(BodyFault::NotUtf8(at)));
                }
                self.read += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let f = read_fault(e, self.read);
                Err(self.fail(f))
            }
        }
    }
}

/// What became of a parse: a JSON error (the body's fault, or the shape's)
/// or an airlock error from the caller's sink.
pub(crate) enum ParseError {
    /// From serde_json: a syntax, EOF, I/O or shape (data) error.
    Json(serde_json::Error),
    /// The caller's own failure (writing the seat file).
    Fatal(crate::base::error::Error),
}

/// Parse the whole body from `r` with `seed`: the JSON value and only
/// whitespace after it.
pub(crate) fn parse<'de, S: DeserializeSeed<'de>>(
    r: &mut dyn Read,
    seed: S,
) -> Result<S::Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_reader(io::BufReader::with_capacity(64 * 1024, r));
    let v = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// A JSON value as airlock reads GitHub's fields: strings (sanitised),
/// numbers, booleans, arrays of those, and objects keeping only the keys
/// airlock reads ([`KEPT`]); anything else is `Other`. Nothing else of the
/// body is kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Loose {
    /// null, or a value of no form airlock reads.
    #[default]
    Other,
    /// A string, sanitised.
    Text(String),
    /// A number that is not a non-negative integer, as text.
    Number(String),
    /// A non-negative integer.
    Count(u64),
    /// A boolean.
    Flag(bool),
    /// An array: its scalar items as text (nested arrays and objects
    /// dropped).
    Texts(Vec<String>),
    /// An object: the kept keys, in order.
    Object(Vec<(String, Loose)>),
}

/// The keys airlock reads in GitHub's items; others are skipped unparsed.
const KEPT: &[&str] = &[
    "server_id",
    "hostname",
    "last_sync",
    "date",
    "status",
    "error",
    "github_com_login",
    "github_com_user",
    "enterprise_server_user",
    "enterprise_server_user_ids",
    "enterprise_server_emails",
    "license_type",
    "total_user_accounts",
];

impl Loose {
    /// The value of `key`, for an object that has it.
    pub(crate) fn get(&self, key: &str) -> Option<&Loose> {
        match self {
            Loose::Object(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A scalar as text: what a string field may hold when GitHub sends a
    /// number or a boolean instead.
    pub(crate) fn text(&self) -> Option<String> {
        match self {
            Loose::Text(s) | Loose::Number(s) => Some(s.clone()),
            Loose::Count(n) => Some(n.to_string()),
            Loose::Flag(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

impl<'de> de::Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Loose, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Loose, E> {
        Ok(Loose::Flag(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose, E> {
        Ok(Loose::Count(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose, E> {
        Ok(Loose::Number(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose, E> {
        Ok(Loose::Number(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose, E> {
        Ok(Loose::Text(sanitize(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Loose, E> {
        Ok(Loose::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Loose, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = a.next_element::<Scalar>()? {
            out.extend(item.0.and_then(|l| l.text()));
        }
        Ok(Loose::Texts(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Loose, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = a.next_key::<String>()? {
            if KEPT.contains(&k.as_str()) {
                out.push((k, a.next_value::<Loose>()?));
            } else {
                a.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Loose::Object(out))
    }
}

/// An array item: a scalar, or `None` for an array or object (skipped).
struct Scalar(Option<Loose>);

impl<'de> de::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(Some(Loose::Flag(v))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(Loose::Count(v))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(Loose::Number(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(Some(Loose::Number(v.to_string()))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(Loose::Text(sanitize(v)))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A response object read key by key: `list` names its array, whose items
/// go to `each` one at a time (with their index) and are not kept; the
/// other keys are kept only when named in `scalars`, as [`Loose`].
pub(crate) struct Page<'a> {
    /// The array's key.
    pub(crate) list: &'static str,
    /// The other keys kept.
    pub(crate) scalars: &'static [&'static str],
    /// Called with each item of the array; an `Err` stops the parse.
    pub(crate) each: &'a mut dyn FnMut(u64, Loose) -> Result<(), String>,
}

/// What [`Page`] gives back: the kept keys and the array's length, or
/// `None` when the array is missing.
pub(crate) struct PageRead {
    /// The kept keys that were there.
    pub(crate) scalars: Vec<(String, Loose)>,
    /// The number of items in the array; `None`: no such key.
    pub(crate) items: Option<u64>,
}

impl<'de> DeserializeSeed<'de> for Page<'_> {
    type Value = PageRead;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PageRead, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Page<'_> {
    type Value = PageRead;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<PageRead, A::Error> {
        let mut out = PageRead {
            scalars: Vec::new(),
            items: None,
        };
        while let Some(k) = a.next_key::<String>()? {
            if k == self.list {
                if out.items.is_some() {
                    return Err(de::Error::custom(format!(
                        "the response has \"{}\" twice",
                        self.list
                    )));
                }
                out.items = Some(a.next_value_seed(Items {
                    key: self.list,
                    each: &mut *self.each,
                })?);
            } else if self.scalars.contains(&k.as_str()) {
                let v = a.next_value::<Loose>()?;
                if !out.scalars.iter().any(|(have, _)| *have == k) {
                    out.scalars.push((k, v));
                }
            } else {
                a.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

/// The array of a [`Page`].
struct Items<'a> {
    key: &'static str,
    each: &'a mut dyn FnMut(u64, Loose) -> Result<(), String>,
}

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\" to be an array", self.key)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<u64, A::Error> {
        let mut n = 0;
        while let Some(item) = a.next_element::<Loose>()? {
            (self.each)(n, item).map_err(de::Error::custom)?;
            n += 1;
        }
        Ok(n)
    }
}

/// The message of a JSON shape error, without serde's position suffix.
pub(crate) fn shape_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(chunks: Vec<Vec<u8>>) -> Result<Vec<u8>, BodyFault> {
        struct Chunks(std::collections::VecDeque<Vec<u8>>);
        impl Read for Chunks {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some(c) = self.0.front_mut() else {
                    return Ok(0);
                };
                let n = c.len().min(buf.len());
                buf[..n].copy_from_slice(&c[..n]);
                c.drain(..n);
                if c.is_empty() {
                    self.0.pop_front();
                }
                Ok(n)
            }
        }
        // An empty read is the end of the body: empty chunks are dropped.
        let chunks = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let mut w = Watched::new(Chunks(chunks));
        let mut out = Vec::new();
        match w.read_to_end(&mut out) {
            Ok(_) => Ok(out),
            Err(_) => Err(w.fault.unwrap()),
        }
    }

    #[test]
    fn utf8_is_checked_across_reads() {
        let s = "aé€😀z".as_bytes().to_vec();
        // Every split of the text into two reads is fine.
        for i in 0..=s.len() {
            assert_eq!(
                watch(vec![s[..i].to_vec(), s[i..].to_vec()]).unwrap(),
                s,
                "{i}"
            );
        }
        // One byte a read.
        assert!(watch(s.iter().map(|b| vec![*b]).collect()).is_ok());
        assert_eq!(
            watch(vec![b"ab\xffcd".to_vec()]),
            Err(BodyFault::NotUtf8(2))
        );
        assert_eq!(
            watch(vec![b"ab\xe2\x82".to_vec(), b"x".to_vec()]),
            Err(BodyFault::NotUtf8(2))
        );
        // A sequence cut by the end of the body.
        assert_eq!(
            watch(vec![b"abc\xe2\x82".to_vec()]),
            Err(BodyFault::NotUtf8(3))
        );
        assert_eq!(
            watch(vec![b"a".to_vec(), b"\xc3".to_vec(), b"\x28".to_vec()]),
            Err(BodyFault::NotUtf8(1))
        );
    }

    #[test]
    fn loose_keeps_only_what_is_read() {
        let v: Loose = serde_json::from_str(
            r#"{"server_id": "a\u001b[31m", "junk": {"deep": [1,2,3]}, "last_sync": {"date": 5, "x": 1},
                "enterprise_server_user_ids": ["h:1", 2, null, ["n"], {"o":1}, true, -1.5]}"#,
        )
        .unwrap();
        assert_eq!(
            v.get("server_id").and_then(Loose::text).as_deref(),
            Some("a\\u{1b}[31m")
        );
        assert_eq!(v.get("junk"), None);
        assert_eq!(
            v.get("last_sync").unwrap(),
            &Loose::Object(vec![("date".into(), Loose::Count(5))])
        );
        assert_eq!(
            v.get("enterprise_server_user_ids").unwrap(),
            &Loose::Texts(vec!["h:1".into(), "2".into(), "true".into(), "-1.5".into()])
        );
    }
}
