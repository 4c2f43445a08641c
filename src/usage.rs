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

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

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

struct UsersSeed;

impl<'de> DeserializeSeed<'de> for UsersSeed {
    type Value = Users;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Users, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Users;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string (encrypted user list) or an array of users")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Users, E> {
                Ok(Users::Encrypted)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Users, A::Error> {
                let mut count = 0u64;
                while a.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
                Ok(Users::Clear { count })
            }
        }
        d.deserialize_any(V)
    }
}

struct Top<'a> {
    saw_instance: &'a Cell<bool>,
}

struct Parsed {
    instance: Option<Instance>,
    users: Users,
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = Parsed;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Parsed, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Parsed;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Parsed, A::Error> {
        let mut instance = None;
        let mut users = Users::Absent;
        while let Some(k) = m.next_key::<String>()? {
            match k.as_str() {
                "instance" => {
                    self.saw_instance.set(true);
                    if instance.is_some() {
                        return Err(de::Error::custom("duplicate field `instance`"));
                    }
                    instance = Some(m.next_value::<Instance>()?);
                }
                "users" => {
                    if users != Users::Absent {
                        return Err(de::Error::custom("duplicate field `users`"));
                    }
                    users = m.next_value_seed(UsersSeed)?;
                }
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Parsed { instance, users })
    }
}

/// Recognise and validate a usage file from a stream.
pub fn sniff<R: Read>(r: R) -> Sniff {
    let saw = Cell::new(false);
    let mut de = serde_json::Deserializer::from_reader(io::BufReader::with_capacity(1 << 16, r));
    let parsed = Top { saw_instance: &saw }.deserialize(&mut de);
    let parsed = match parsed.and_then(|p| de.end().map(|_| p)) {
        Ok(p) => p,
        Err(e) if saw.get() => return Sniff::Invalid(format!("not valid JSON: {e}")),
        Err(_) => return Sniff::Other,
    };
    let Some(inst) = parsed.instance else {
        return Sniff::Other;
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
        users: parsed.users,
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
    pub fn spawn() -> Sniffer {
        let (tx, rx) = sync_channel::<Vec<u8>>(4);
        let handle = std::thread::spawn(move || {
            sniff(ChannelReader {
                rx,
                buf: Vec::new(),
                pos: 0,
            })
        });
        Sniffer {
            tx: Some(tx),
            handle,
        }
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
    fn sniffer_thread_matches_direct() {
        let doc =
            format!(r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}},"users":"QUJD"}}"#);
        let mut s = Sniffer::spawn();
        for c in doc.as_bytes().chunks(3) {
            s.feed(c);
        }
        assert!(matches!(s.finish().unwrap(), Sniff::Usage(_)));
    }
}
