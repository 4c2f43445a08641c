//! A recipient as the signed manifest lists it (docs/format.md §3,
//! `recipients`): its type and public identity, never a secret.
//!
//! The JSON form is `{"type": T, "recipient": R}` or, for a passphrase,
//! `{"type": "scrypt", "work_factor": N}`. Deserialising accepts exactly the
//! combinations the format allows, in canonical form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::hybrid;

/// Most hybrid post-quantum recipients: each adds a ~1.6 KB stanza, and 32
/// keep the age header under the 64 KiB airlock checks (format §5).
pub const MAX_HYBRID_RECIPIENTS: usize = 32;

/// A recipient the payload was encrypted to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Fields", into = "Fields")]
pub enum ListedRecipient {
    /// An age X25519 recipient, `age1…`.
    X25519(String),
    /// An age hybrid post-quantum recipient (ML-KEM-768 + X25519),
    /// `age1pq1…` in canonical lowercase (format v2).
    MlKem768X25519(String),
    /// An OpenSSH Ed25519 public key, `ssh-ed25519 BASE64` without comment.
    SshEd25519(String),
    /// A passphrase, with its scrypt work factor (log2 N, 1..=30).
    Scrypt {
        /// log2 of scrypt's N.
        work_factor: u8,
    },
}

impl ListedRecipient {
    /// The manifest's `type`.
    fn type_name(&self) -> &'static str {
        match self {
            ListedRecipient::X25519(_) => "x25519",
            ListedRecipient::MlKem768X25519(_) => hybrid::STANZA_TAG,
            ListedRecipient::SshEd25519(_) => "ssh-ed25519",
            ListedRecipient::Scrypt { .. } => "scrypt",
        }
    }

    /// The tag of the age header stanza this recipient produces.
    pub(crate) fn stanza_tag(&self) -> &'static str {
        match self {
            ListedRecipient::X25519(_) => "X25519",
            ListedRecipient::MlKem768X25519(_) => hybrid::STANZA_TAG,
            ListedRecipient::SshEd25519(_) => "ssh-ed25519",
            ListedRecipient::Scrypt { .. } => "scrypt",
        }
    }

    /// The public recipient string; `None` for a passphrase.
    pub fn recipient(&self) -> Option<&str> {
        match self {
            ListedRecipient::X25519(s)
            | ListedRecipient::MlKem768X25519(s)
            | ListedRecipient::SshEd25519(s) => Some(s),
            ListedRecipient::Scrypt { .. } => None,
        }
    }

    /// A hybrid post-quantum recipient.
    pub(crate) fn is_post_quantum(&self) -> bool {
        matches!(self, ListedRecipient::MlKem768X25519(_))
    }

    /// A passphrase.
    pub fn is_passphrase(&self) -> bool {
        matches!(self, ListedRecipient::Scrypt { .. })
    }
}

/// The JSON shape, field order as written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    #[serde(rename = "type")]
    kind: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    recipient: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    work_factor: Option<u8>,
}

/// An optional field is absent or valid: `null` is refused (a second
/// spelling of "absent" that other readers may treat differently).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Refused recipient, shown with the fields it had.
#[derive(Debug)]
pub struct InvalidRecipient(String);

impl fmt::Display for InvalidRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "recipient {} is not valid", self.0)
    }
}

impl TryFrom<Fields> for ListedRecipient {
    type Error = InvalidRecipient;

    fn try_from(f: Fields) -> Result<Self, InvalidRecipient> {
        let r = match (f.kind.as_str(), f.recipient, f.work_factor) {
            ("x25519", Some(s), None)
                if s.starts_with("age1") && !s.starts_with(hybrid::RECIPIENT_PREFIX) =>
            {
                ListedRecipient::X25519(s)
            }
            // Only the canonical (lowercase) form of a valid key: the signed
            // string is what every reader compares.
            (hybrid::STANZA_TAG, Some(s), None)
                if hybrid::Recipient::from_str(&s).is_ok_and(|k| k.to_string() == s) =>
            {
                ListedRecipient::MlKem768X25519(s)
            }
            ("ssh-ed25519", Some(s), None) if s.starts_with("ssh-ed25519 ") => {
                ListedRecipient::SshEd25519(s)
            }
            ("scrypt", None, Some(w)) if (1..=30).contains(&w) => {
                ListedRecipient::Scrypt { work_factor: w }
            }
            (kind, recipient, work_factor) => {
                return Err(InvalidRecipient(format!(
                    "{{type: {kind:?}, recipient: {recipient:?}, work_factor: {work_factor:?}}}"
                )))
            }
        };
        Ok(r)
    }
}

impl From<ListedRecipient> for Fields {
    fn from(r: ListedRecipient) -> Fields {
        Fields {
            kind: r.type_name().to_string(),
            recipient: r.recipient().map(str::to_string),
            work_factor: match r {
                ListedRecipient::Scrypt { work_factor } => Some(work_factor),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de(json: &str) -> Option<ListedRecipient> {
        serde_json::from_str(json).ok()
    }

    #[test]
    fn round_trips_each_type_in_its_json_shape() {
        let pq = crate::crypto::crypt::generate_hybrid_identity("x").1;
        for json in [
            "{\"type\":\"x25519\",\"recipient\":\"age1abc\"}".to_string(),
            format!("{{\"type\":\"mlkem768x25519\",\"recipient\":\"{pq}\"}}"),
            "{\"type\":\"ssh-ed25519\",\"recipient\":\"ssh-ed25519 AAAA\"}".to_string(),
            "{\"type\":\"scrypt\",\"work_factor\":18}".to_string(),
        ] {
            let r = de(&json).unwrap_or_else(|| panic!("{json}"));
            assert_eq!(serde_json::to_string(&r).unwrap(), json);
        }
    }

    #[test]
    fn refuses_what_the_format_refuses() {
        let pq = crate::crypto::crypt::generate_hybrid_identity("x").1;
        for json in [
            "{\"type\":\"X25519\",\"recipient\":\"age1abc\"}".to_string(),
            "{\"type\":\"x25519\",\"recipient\":\"AGE1abc\"}".to_string(),
            format!("{{\"type\":\"x25519\",\"recipient\":\"{pq}\"}}"),
            format!(
                "{{\"type\":\"mlkem768x25519\",\"recipient\":\"{}\"}}",
                pq.to_uppercase()
            ),
            "{\"type\":\"x25519\",\"recipient\":\"age1abc\",\"work_factor\":10}".to_string(),
            "{\"type\":\"x25519\",\"recipient\":null}".to_string(),
            "{\"type\":\"ssh-ed25519\",\"recipient\":\"ssh-rsa AAAA\"}".to_string(),
            "{\"type\":\"scrypt\",\"work_factor\":0}".to_string(),
            "{\"type\":\"scrypt\",\"work_factor\":31}".to_string(),
            "{\"type\":\"scrypt\",\"work_factor\":18,\"recipient\":\"x\"}".to_string(),
            "{\"type\":\"scrypt\"}".to_string(),
            "{\"type\":\"scrypt\",\"work_factor\":18,\"extra\":1}".to_string(),
        ] {
            assert!(de(&json).is_none(), "accepted {json}");
        }
    }
}
