//! The manifest: the signed statement of a bundle (docs/format.md §3).
//!
//! The signature covers the exact bytes of `manifest.json`; this module only
//! parses bytes that already verified, and checks every field against the
//! format-v1 rules before anything else uses them.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use std::str::FromStr;

use crate::bundle::container::check_name_syntax;
use crate::crypt::hybrid;
use crate::error::{Code, Error, Result};
use crate::usage::{is_host_name, is_uuid};

pub const FORMAT: &str = "airlock-bundle";
/// Format version 1: every bundle without post-quantum recipients.
pub const VERSION: u32 = 1;
/// Format version 2: version 1 plus the `mlkem768x25519` recipient type,
/// written exactly when the payload is encrypted to post-quantum recipients
/// (docs/format.md §9, decision 45).
pub const VERSION_HYBRID: u32 = 2;
pub const MANIFEST_NAME: &str = "manifest.json";
pub const MAX_MANIFEST_LEN: u64 = 256 * 1024;
pub const MAX_PAYLOAD_MEMBERS: usize = 32;
pub const MAX_SIGNATURES: usize = 16;
pub const MAX_RECIPIENTS: usize = 64;
/// Most hybrid post-quantum recipients: each adds a ~1.6 KB stanza, and 32
/// keep the age header under the 64 KiB airlock checks (§5).
pub const MAX_HYBRID_RECIPIENTS: usize = 32;
/// The recipient type of age's hybrid post-quantum recipients (ML-KEM-768 +
/// X25519, `age1pq1…`), named after its age stanza.
pub const RECIPIENT_MLKEM768X25519: &str = "mlkem768x25519";
/// Largest sequence number: 2^53 - 1, the largest integer every JSON reader
/// (JavaScript's included) represents exactly, so no two readers of a
/// manifest disagree on it.
pub const MAX_SEQUENCE: u64 = (1 << 53) - 1;
/// Longest allowed gap between creation and expiry.
pub const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// Payload kinds.
pub const KIND_USAGE: &str = "ghes-license-usage";
pub const KIND_FILE: &str = "file";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub bundle_id: String,
    pub created: String,
    pub expires: String,
    pub tool: String,
    pub source: Source,
    pub sequence: Sequence,
    pub payload: Vec<PayloadEntry>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "non_empty"
    )]
    pub recipients: Vec<Recipient>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub host_name: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub server_id: Option<String>,
}

/// The per-signer sequence number and the key it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sequence {
    pub key: String,
    pub number: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub kind: String,
    /// `"age"` when the member is an age file; absent when in clear.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub encryption: Option<String>,
}

/// A recipient the payload was encrypted to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// `x25519`, `mlkem768x25519` (format v2), `ssh-ed25519` or `scrypt`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The recipient string (`age1…`, `age1pq1…`, `ssh-ed25519 AAAA…`);
    /// absent for scrypt.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub recipient: Option<String>,
    /// scrypt work factor (log2 N).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub work_factor: Option<u8>,
}

impl Recipient {
    /// A hybrid post-quantum recipient (`mlkem768x25519`).
    pub fn is_post_quantum(&self) -> bool {
        self.kind == RECIPIENT_MLKEM768X25519
    }
}

/// The format version a manifest with these recipients is written in.
pub fn version_for(recipients: &[Recipient]) -> u32 {
    if recipients.iter().any(Recipient::is_post_quantum) {
        VERSION_HYBRID
    } else {
        VERSION
    }
}

/// An optional field is absent or valid: `null` is refused (it would be a
/// second spelling of "absent" that other readers may treat differently).
fn present<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A list that is absent or non-empty (`[]` would be a second spelling of
/// "absent").
fn non_empty<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let v = Vec::<T>::deserialize(d)?;
    if v.is_empty() {
        return Err(serde::de::Error::custom("an empty list must be left out"));
    }
    Ok(v)
}

/// Only `format` and `version`, read first so a newer format gets a clear
/// error instead of a schema complaint.
#[derive(Deserialize)]
struct Probe {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(Code::ManifestInvalid, msg)
}

/// Format a time as the manifest does: RFC 3339, UTC, whole seconds.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Parse a manifest time; only the canonical `YYYY-MM-DDTHH:MM:SSZ` form.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let t = humantime::parse_rfc3339(s).ok()?;
    (format_time(t) == s).then_some(t)
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Manifest {
    /// Serialize as airlock writes it: pretty JSON with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parse and check verified manifest bytes.
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        let probe: Probe = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("manifest.json is not a JSON object: {e}")))?;
        match probe.format {
            Some(serde_json::Value::String(f)) if f == FORMAT => {}
            other => {
                return Err(invalid(format!(
                    "manifest format is {}, expected {FORMAT:?}",
                    other
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "missing".into())
                )))
            }
        }
        match probe.version {
            Some(serde_json::Value::Number(n))
                if n.as_u64() == Some(VERSION as u64)
                    || n.as_u64() == Some(VERSION_HYBRID as u64) => {}
            // Only a non-negative integer is a version: `1.0` or `-1` is a
            // malformed manifest, not an unknown format.
            Some(serde_json::Value::Number(n)) if n.is_u64() => {
                return Err(Error::new(
                    Code::FormatVersion,
                    format!(
                        "bundle format version {n}; this airlock reads versions \
                         {VERSION} and {VERSION_HYBRID}"
                    ),
                ))
            }
            _ => {
                return Err(invalid(
                    "manifest version is missing or not a non-negative integer",
                ))
            }
        }
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("manifest.json does not follow the format: {e}")))?;
        m.check()?;
        Ok(m)
    }

    /// Field rules of formats v1 and v2 (docs/format.md §3).
    pub fn check(&self) -> Result<()> {
        if !is_lower_hex(&self.bundle_id, 32) {
            return Err(invalid("bundle_id must be 32 lowercase hex digits"));
        }
        let created = self.created_time()?;
        let expires = self.expires_time()?;
        if expires <= created {
            return Err(invalid("expires is not after created"));
        }
        if expires.duration_since(created).unwrap_or_default() > MAX_LIFETIME {
            return Err(invalid("the bundle's lifetime exceeds 366 days"));
        }
        if self.tool.is_empty() || self.tool.len() > 64 {
            return Err(invalid("tool must be 1..=64 characters"));
        }
        if !is_host_name(&self.source.host_name) {
            return Err(invalid("source.host_name is not a host name"));
        }
        if let Some(id) = &self.source.server_id {
            if !is_uuid(id) {
                return Err(invalid("source.server_id is not a UUID"));
            }
        }
        if !(self.sequence.key.starts_with("SHA256:") && self.sequence.key.len() == 50) {
            return Err(invalid("sequence.key is not an OpenSSH SHA256 fingerprint"));
        }
        if self.sequence.number == 0 {
            return Err(invalid("sequence.number starts at 1"));
        }
        if self.sequence.number > MAX_SEQUENCE {
            return Err(invalid(format!(
                "sequence.number {} is above the format's limit 2^53-1",
                self.sequence.number
            )));
        }
        if self.payload.is_empty() || self.payload.len() > MAX_PAYLOAD_MEMBERS {
            return Err(invalid(format!(
                "the payload must list 1..={MAX_PAYLOAD_MEMBERS} members"
            )));
        }
        let mut names = HashSet::new();
        let mut encrypted = 0;
        for p in &self.payload {
            check_name_syntax(&p.name).map_err(|e| invalid(e.cause))?;
            if !p.name.starts_with("payload/") {
                return Err(invalid(format!("{} is not under payload/", p.name)));
            }
            if !names.insert(p.name.to_ascii_lowercase()) {
                return Err(invalid(format!("{} is listed twice", p.name)));
            }
            if !is_lower_hex(&p.sha256, 64) {
                return Err(invalid(format!(
                    "{}: sha256 must be 64 lowercase hex digits",
                    p.name
                )));
            }
            if p.kind != KIND_USAGE && p.kind != KIND_FILE {
                return Err(invalid(format!("{}: unknown kind {:?}", p.name, p.kind)));
            }
            match p.encryption.as_deref() {
                None => {}
                Some("age") if p.name.ends_with(".age") && p.name.len() > "payload/.age".len() => {
                    encrypted += 1
                }
                Some(other) => {
                    return Err(invalid(format!(
                        "{}: unsupported encryption {other:?}",
                        p.name
                    )))
                }
            }
        }
        if encrypted != 0 && encrypted != self.payload.len() {
            return Err(invalid(
                "either every payload member is encrypted or none is",
            ));
        }
        if (encrypted == 0) != self.recipients.is_empty() {
            return Err(invalid(
                "recipients must be listed exactly when the payload is encrypted",
            ));
        }
        if self.recipients.len() > MAX_RECIPIENTS {
            return Err(invalid("too many recipients"));
        }
        for r in &self.recipients {
            let ok = match r.kind.as_str() {
                "x25519" => {
                    r.recipient.as_ref().is_some_and(|s| {
                        s.starts_with("age1") && !s.starts_with(hybrid::RECIPIENT_PREFIX)
                    }) && r.work_factor.is_none()
                }
                RECIPIENT_MLKEM768X25519 => {
                    // Only the canonical (lowercase) form of a valid key: the
                    // signed string is what every reader compares.
                    r.recipient.as_ref().is_some_and(|s| {
                        hybrid::Recipient::from_str(s).is_ok_and(|k| k.to_string() == *s)
                    }) && r.work_factor.is_none()
                }
                "ssh-ed25519" => {
                    r.recipient
                        .as_ref()
                        .is_some_and(|s| s.starts_with("ssh-ed25519 "))
                        && r.work_factor.is_none()
                }
                "scrypt" => {
                    r.recipient.is_none() && r.work_factor.is_some_and(|w| (1..=30).contains(&w))
                }
                _ => false,
            };
            if !ok {
                return Err(invalid(format!("recipient {:?} is not valid", r)));
            }
        }
        if self.recipients.iter().any(|r| r.kind == "scrypt") && self.recipients.len() != 1 {
            return Err(invalid(
                "a passphrase (scrypt) recipient cannot be mixed with others",
            ));
        }
        let pq = self
            .recipients
            .iter()
            .filter(|r| r.is_post_quantum())
            .count();
        if pq != 0 && pq != self.recipients.len() {
            return Err(invalid(
                "a post-quantum (mlkem768x25519) recipient cannot be mixed with classical ones",
            ));
        }
        if pq > MAX_HYBRID_RECIPIENTS {
            return Err(invalid(format!(
                "more than {MAX_HYBRID_RECIPIENTS} post-quantum recipients"
            )));
        }
        if self.version != version_for(&self.recipients) {
            return Err(invalid(format!(
                "format version {} with {}: version {VERSION_HYBRID} is written exactly when \
                 the recipients are post-quantum (mlkem768x25519), version {VERSION} otherwise",
                self.version,
                if pq == 0 {
                    "no post-quantum recipient"
                } else {
                    "post-quantum recipients"
                }
            )));
        }
        Ok(())
    }

    pub fn created_time(&self) -> Result<SystemTime> {
        parse_time(&self.created).ok_or_else(|| invalid("created is not an RFC 3339 UTC time"))
    }

    pub fn expires_time(&self) -> Result<SystemTime> {
        parse_time(&self.expires).ok_or_else(|| invalid("expires is not an RFC 3339 UTC time"))
    }

    /// `created` without separators (`20261101T000000Z`), for file names.
    pub fn created_compact(&self) -> String {
        self.created
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect()
    }

    pub fn is_encrypted(&self) -> bool {
        !self.recipients.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            bundle_id: "0123456789abcdef0123456789abcdef".into(),
            created: "2026-11-28T00:00:00Z".into(),
            expires: "2026-12-28T00:00:00Z".into(),
            tool: "airlock 0.1.0".into(),
            source: Source {
                host_name: "ghes.example.com".into(),
                server_id: Some("6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into()),
            },
            sequence: Sequence {
                key: format!("SHA256:{}", "A".repeat(43)),
                number: 1,
            },
            payload: vec![PayloadEntry {
                name: "payload/license-usage.json".into(),
                size: 3,
                sha256: "0".repeat(64),
                kind: KIND_USAGE.into(),
                encryption: None,
            }],
            recipients: vec![],
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(Manifest::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn rejects_bad_fields() {
        let mut m = sample();
        m.created = "2026-11-28T00:00:00+00:00".into();
        assert!(Manifest::parse(&m.to_bytes()).is_err());
        let mut m = sample();
        m.expires = m.created.clone();
        assert!(Manifest::parse(&m.to_bytes()).is_err());
        let mut m = sample();
        m.payload.push(m.payload[0].clone());
        assert!(Manifest::parse(&m.to_bytes()).is_err());
        let mut m = sample();
        m.version = 3;
        assert_eq!(
            Manifest::parse(&m.to_bytes()).err().unwrap().code,
            Code::FormatVersion
        );
        let extra =
            String::from_utf8(sample().to_bytes())
                .unwrap()
                .replacen('{', "{\"evil\":1,", 1);
        assert_eq!(
            Manifest::parse(extra.as_bytes()).err().unwrap().code,
            Code::ManifestInvalid
        );
    }

    /// Regression (outside test): `null` optional fields, an empty
    /// recipient list, a non-integer version and sequence numbers past 2^53
    /// were accepted or misreported.
    #[test]
    fn strict_optional_fields_versions_and_sequences() {
        let text = String::from_utf8(sample().to_bytes()).unwrap();
        for (from, to) in [
            (
                "\"server_id\": \"6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\"",
                "\"server_id\": null",
            ),
            (
                "\"kind\": \"ghes-license-usage\"",
                "\"kind\": \"ghes-license-usage\", \"encryption\": null",
            ),
            ("\"payload\": [", "\"recipients\": [], \"payload\": ["),
            ("\"version\": 1", "\"version\": 1.0"),
            ("\"version\": 1", "\"version\": -1"),
            ("\"version\": 1", "\"version\": \"1\""),
            ("\"number\": 1", "\"number\": 9007199254740992"),
            ("\"number\": 1", "\"number\": 9223372036854775808"),
            ("\"number\": 1", "\"number\": 18446744073709551615"),
            ("\"number\": 1", "\"number\": 18446744073709551616"),
        ] {
            assert!(text.contains(from), "{from}");
            let bad = text.replacen(from, to, 1);
            let err = Manifest::parse(bad.as_bytes())
                .err()
                .unwrap_or_else(|| panic!("accepted {to}"));
            assert_eq!(err.code, Code::ManifestInvalid, "{to}: {err}");
        }
        let ok = text.replacen("\"number\": 1", "\"number\": 9007199254740991", 1);
        assert_eq!(
            Manifest::parse(ok.as_bytes()).unwrap().sequence.number,
            MAX_SEQUENCE
        );
    }

    fn hybrid(m: &mut Manifest) -> String {
        let r = crate::crypt::generate_hybrid_identity("x").1;
        m.payload[0].name = "payload/license-usage.json.age".into();
        m.payload[0].encryption = Some("age".into());
        m.recipients = vec![Recipient {
            kind: RECIPIENT_MLKEM768X25519.into(),
            recipient: Some(r.clone()),
            work_factor: None,
        }];
        m.version = VERSION_HYBRID;
        r
    }

    /// Format v2 is v1 plus post-quantum recipients, written exactly when
    /// they are listed; mixing and non-canonical keys are refused.
    #[test]
    fn version_2_is_for_post_quantum_recipients_only() {
        let mut m = sample();
        let r = hybrid(&mut m);
        assert_eq!(Manifest::parse(&m.to_bytes()).unwrap(), m);
        assert_eq!(version_for(&m.recipients), VERSION_HYBRID);
        assert_eq!(version_for(&[]), VERSION);

        let code = |m: &Manifest| Manifest::parse(&m.to_bytes()).err().map(|e| e.code);
        // Version 1 with a hybrid recipient; version 2 without one.
        let mut v1 = m.clone();
        v1.version = VERSION;
        assert_eq!(code(&v1), Some(Code::ManifestInvalid));
        let mut v2 = sample();
        v2.version = VERSION_HYBRID;
        assert_eq!(code(&v2), Some(Code::ManifestInvalid));
        // Version 3 is a format this airlock does not know.
        let mut v3 = m.clone();
        v3.version = 3;
        assert_eq!(code(&v3), Some(Code::FormatVersion));
        // Mixed with a classical recipient.
        let mut mixed = m.clone();
        mixed.recipients.push(Recipient {
            kind: "x25519".into(),
            recipient: Some(crate::crypt::generate_identity("x").1),
            work_factor: None,
        });
        assert_eq!(code(&mixed), Some(Code::ManifestInvalid));
        // A hybrid key listed as x25519, an uppercase or damaged one, a work factor.
        for (kind, recipient, wf) in [
            ("x25519", r.clone(), None),
            (RECIPIENT_MLKEM768X25519, r.to_ascii_uppercase(), None),
            (RECIPIENT_MLKEM768X25519, r[..r.len() - 1].to_string(), None),
            (RECIPIENT_MLKEM768X25519, r.clone(), Some(10)),
        ] {
            let mut bad = m.clone();
            bad.recipients[0] = Recipient {
                kind: kind.into(),
                recipient: Some(recipient),
                work_factor: wf,
            };
            assert_eq!(code(&bad), Some(Code::ManifestInvalid), "{kind} {wf:?}");
        }
        // At most MAX_HYBRID_RECIPIENTS.
        let mut many = m.clone();
        many.recipients = (0..=MAX_HYBRID_RECIPIENTS)
            .map(|_| Recipient {
                kind: RECIPIENT_MLKEM768X25519.into(),
                recipient: Some(crate::crypt::generate_hybrid_identity("x").1),
                work_factor: None,
            })
            .collect();
        assert_eq!(code(&many), Some(Code::ManifestInvalid));
        many.recipients.pop();
        assert!(Manifest::parse(&many.to_bytes()).is_ok());
    }

    #[test]
    fn schema_lists_every_field() {
        // docs/manifest.schema.json must describe exactly what we write.
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/manifest.schema.json")).unwrap();
        let props = schema["properties"].as_object().unwrap();
        let mut m = sample();
        m.recipients.push(Recipient {
            kind: "x25519".into(),
            recipient: Some("age1x".into()),
            work_factor: None,
        });
        let v = serde_json::to_value(&m).unwrap();
        for k in v.as_object().unwrap().keys() {
            assert!(props.contains_key(k), "schema lacks {k}");
        }
        for k in props.keys() {
            assert!(v.get(k).is_some(), "schema has {k} that the manifest lacks");
        }
    }
}
