//! The manifest: the signed statement of a bundle (docs/format.md §3).
//!
//! The signature covers the exact bytes of `manifest.json`; this module only
//! parses bytes that already verified, and checks every field against the
//! format's rules (versions 1 to 3) before anything else uses them.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::base::error::{Code, Error, Result};
use crate::format::container::check_name_syntax;
use crate::format::usage::{is_host_name, is_uuid};

pub use crate::crypto::crypt::{ListedRecipient as Recipient, MAX_HYBRID_RECIPIENTS};
pub use crate::format::types::{
    BundleId, Encryption, EnterpriseSlug, Fingerprint, FormatName, FormatVersion, HexDigest,
    LicenceReference, PayloadKind, Timestamp,
};

/// The member holding the manifest.
pub const MANIFEST_NAME: &str = "manifest.json";
/// Largest manifest airlock reads.
pub const MAX_MANIFEST_LEN: u64 = 256 * 1024;
/// Most payload members in one bundle.
pub const MAX_PAYLOAD_MEMBERS: usize = 32;
/// Most signatures in one bundle.
pub const MAX_SIGNATURES: usize = 16;
/// Most recipients in one manifest.
pub const MAX_RECIPIENTS: usize = 64;
/// Largest sequence number: 2^53 - 1, the largest integer every JSON reader
/// (JavaScript's included) represents exactly, so no two readers of a
/// manifest disagree on it.
pub const MAX_SEQUENCE: u64 = (1 << 53) - 1;
/// Largest licence file a licence bundle carries (GHES licences are about
/// 32 KB): a bound, not a parse.
pub const MAX_LICENCE_LEN: u64 = 1024 * 1024;
/// Longest allowed gap between creation and expiry.
pub const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// The signed statement of a bundle. Every value in it passed the format's
/// rules: one that deserialised, or that [`Manifest::check`] accepted, is a
/// valid format-v1/v2/v3 manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "Fields")]
pub struct Manifest {
    /// Always `airlock-bundle`.
    pub format: FormatName,
    /// 3 exactly for a licence bundle, else 2 exactly when the recipients
    /// are post-quantum, else 1.
    pub version: FormatVersion,
    /// Derived from the signer, sequence, time and payload digests.
    pub bundle_id: BundleId,
    /// When the bundle was made (signed).
    pub created: Timestamp,
    /// After this the bundle is refused.
    pub expires: Timestamp,
    /// The exporting tool, `airlock X.Y.Z` (1..=64 characters).
    pub tool: String,
    /// The GHES instance the payload came from, or for a licence bundle the
    /// enterprise.
    pub source: Source,
    /// The signer's sequence number.
    pub sequence: Sequence,
    /// The payload members, in member order.
    pub payload: Vec<PayloadEntry>,
    /// Who can decrypt; empty (and left out) when the payload is in clear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<Recipient>,
}

/// The same fields, before the rules that span several of them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    format: FormatName,
    version: FormatVersion,
    bundle_id: BundleId,
    created: Timestamp,
    expires: Timestamp,
    tool: String,
    source: Source,
    sequence: Sequence,
    payload: Vec<PayloadEntry>,
    #[serde(default, deserialize_with = "non_empty")]
    recipients: Vec<Recipient>,
}

/// A rule that spans fields, broken; serde reports it as a format error.
struct RuleBroken(String);

impl std::fmt::Display for RuleBroken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<Fields> for Manifest {
    type Error = RuleBroken;
    fn try_from(f: Fields) -> std::result::Result<Manifest, RuleBroken> {
        let m = Manifest {
            format: f.format,
            version: f.version,
            bundle_id: f.bundle_id,
            created: f.created,
            expires: f.expires,
            tool: f.tool,
            source: f.source,
            sequence: f.sequence,
            payload: f.payload,
            recipients: f.recipients,
        };
        m.check().map_err(|e| RuleBroken(e.cause))?;
        Ok(m)
    }
}

/// Where the payload came from: a GHES instance (`host_name`, optionally
/// `server_id`; versions 1 and 2) or, for a licence bundle, an enterprise
/// (`enterprise` alone; version 3). Exactly one of `host_name` and
/// `enterprise` is present ([`Manifest::check`]); whichever it is, it is the
/// principal signing keys must be allowed for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The GHES hostname; absent only in a licence bundle.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub host_name: Option<String>,
    /// The GHES server id (a UUID), when the usage file names one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub server_id: Option<String>,
    /// The GitHub Enterprise Cloud enterprise a licence bundle comes from;
    /// present exactly in a licence bundle (decision 81).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub enterprise: Option<EnterpriseSlug>,
}

impl Source {
    /// A GHES instance.
    pub fn instance(host_name: impl Into<String>, server_id: Option<String>) -> Source {
        Source {
            host_name: Some(host_name.into()),
            server_id,
            enterprise: None,
        }
    }

    /// An enterprise, the source of a licence bundle.
    pub fn enterprise(slug: EnterpriseSlug) -> Source {
        Source {
            host_name: None,
            server_id: None,
            enterprise: Some(slug),
        }
    }

    /// The principal signing keys must be allowed for: the host name, or the
    /// enterprise slug of a licence bundle.
    pub fn principal(&self) -> &str {
        match (&self.host_name, &self.enterprise) {
            (Some(h), _) => h,
            (None, Some(e)) => e,
            (None, None) => "",
        }
    }

    /// The instance's host name; empty for a licence bundle, which comes
    /// from no instance (the instance pipelines refuse licence bundles
    /// before they look: `import` with `WRONG-DIRECTION`).
    pub fn host(&self) -> &str {
        self.host_name.as_deref().unwrap_or_default()
    }
}

/// What a bundle carries, as its signed manifest says: it decides which
/// side may take it in (decision 81).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BundleKind {
    /// From a GHES instance to the connected side (usage files, other
    /// files): versions 1 and 2.
    Usage,
    /// A GHES licence from the enterprise into the appliance: version 3.
    Licence,
}

impl BundleKind {
    /// The name `--json` and the docs use: `usage` or `licence`.
    pub fn as_str(self) -> &'static str {
        match self {
            BundleKind::Usage => "usage",
            BundleKind::Licence => "licence",
        }
    }
}

/// The per-signer sequence number and the key it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sequence {
    /// Fingerprint of the signing key the number counts for.
    pub key: Fingerprint,
    /// 1..=2^53-1, increasing per key and instance.
    pub number: u64,
}

/// One payload member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadEntry {
    /// Member name, under `payload/`; ends in `.age` when encrypted.
    pub name: String,
    /// Size of the member as stored (the ciphertext when encrypted).
    pub size: u64,
    /// SHA-256 of the member as stored.
    pub sha256: HexDigest,
    /// What the member holds.
    pub kind: PayloadKind,
    /// The licence's reference number: present exactly when `kind` is
    /// `ghes-license`, and then the name is
    /// `payload/github-enterprise-<reference>.ghl`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub reference: Option<LicenceReference>,
    /// `age` when the member is an age file; absent when in clear.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub encryption: Option<Encryption>,
}

impl PayloadEntry {
    /// A GHES license usage file.
    pub fn is_usage(&self) -> bool {
        self.kind == PayloadKind::Usage
    }
}

/// The format version a manifest with this payload and these recipients is
/// written in: 3 for a licence, else as [`version_for`].
pub fn version_for_payload(payload: &[PayloadEntry], recipients: &[Recipient]) -> FormatVersion {
    if payload.iter().any(|p| p.kind == PayloadKind::Licence) {
        FormatVersion::V3
    } else {
        version_for(recipients)
    }
}

/// The format version a manifest of usage files or other files with these
/// recipients is written in (a licence bundle's is 3:
/// [`version_for_payload`]).
pub fn version_for(recipients: &[Recipient]) -> FormatVersion {
    if recipients.iter().any(Recipient::is_post_quantum) {
        FormatVersion::V2
    } else {
        FormatVersion::V1
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
    Timestamp::from_system(t).to_string()
}

/// Parse a manifest time; only the canonical `YYYY-MM-DDTHH:MM:SSZ` form.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    Timestamp::parse(s).map(Timestamp::system_time)
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
            Some(serde_json::Value::String(f)) if f == FormatName::TEXT => {}
            other => {
                return Err(invalid(format!(
                    "manifest format is {}, expected {:?}",
                    other
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "missing".into()),
                    FormatName::TEXT
                )))
            }
        }
        match probe.version {
            Some(serde_json::Value::Number(n))
                if n.as_u64().and_then(FormatVersion::from_number).is_some() => {}
            // Only a non-negative integer is a version: `1.0` or `-1` is a
            // malformed manifest, not an unknown format.
            Some(serde_json::Value::Number(n)) if n.is_u64() => {
                return Err(Error::new(
                    Code::FormatVersion,
                    format!(
                        "bundle format version {n}; this airlock reads versions {}, {} and {}",
                        FormatVersion::V1,
                        FormatVersion::V2,
                        FormatVersion::V3
                    ),
                ))
            }
            _ => {
                return Err(invalid(
                    "manifest version is missing or not a non-negative integer",
                ))
            }
        }
        // Deserialising runs every rule (`Fields` → `check`).
        serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("manifest.json does not follow the format: {e}")))
    }

    /// The rules that span fields (docs/format.md §3); each field's own
    /// shape is its type's. Deserialising runs this; export runs it on what
    /// it is about to sign.
    pub fn check(&self) -> Result<()> {
        if self.expires <= self.created {
            return Err(invalid("expires is not after created"));
        }
        let lifetime = self
            .expires
            .system_time()
            .duration_since(self.created.system_time())
            .unwrap_or_default();
        if lifetime > MAX_LIFETIME {
            return Err(invalid("the bundle's lifetime exceeds 366 days"));
        }
        if self.tool.is_empty() || self.tool.len() > 64 {
            return Err(invalid("tool must be 1..=64 characters"));
        }
        self.check_source()?;
        if self.sequence.number == 0 {
            return Err(invalid("sequence.number starts at 1"));
        }
        if self.sequence.number > MAX_SEQUENCE {
            return Err(invalid(format!(
                "sequence.number {} is above the format's limit 2^53-1",
                self.sequence.number
            )));
        }
        self.check_payload()?;
        self.check_recipients()?;
        self.check_licence()
    }

    /// A GHES instance (`host_name`, optional `server_id`) or an enterprise
    /// (`enterprise` alone), never both.
    fn check_source(&self) -> Result<()> {
        let s = &self.source;
        match (&s.host_name, &s.enterprise) {
            (Some(h), None) if !is_host_name(h) => {
                return Err(invalid("source.host_name is not a host name"))
            }
            (Some(_), None) => {}
            (None, Some(_)) if s.server_id.is_some() => {
                return Err(invalid(
                    "source.server_id belongs to an instance, not to an enterprise",
                ))
            }
            (None, Some(_)) => {}
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "source names both an instance (host_name) and an enterprise",
                ))
            }
            (None, None) => return Err(invalid("source has neither host_name nor enterprise")),
        }
        if s.server_id.as_deref().is_some_and(|id| !is_uuid(id)) {
            return Err(invalid("source.server_id is not a UUID"));
        }
        Ok(())
    }

    /// Version 3 is exactly a licence bundle: one `ghes-license` member, in
    /// clear, named after its signed reference, from an enterprise; and no
    /// other version has any of these (decision 81).
    fn check_licence(&self) -> Result<()> {
        let licences = self
            .payload
            .iter()
            .filter(|p| p.kind == PayloadKind::Licence)
            .count();
        let is_v3 = self.version == FormatVersion::V3;
        if !is_v3 {
            if licences != 0 || self.source.enterprise.is_some() {
                return Err(invalid(format!(
                    "a licence (kind ghes-license, source.enterprise) in a manifest of format \
                     version {}: licence bundles are version 3",
                    self.version
                )));
            }
            if self.payload.iter().any(|p| p.reference.is_some()) {
                return Err(invalid("a reference outside a ghes-license member"));
            }
            return Ok(());
        }
        if licences != 1 || self.payload.len() != 1 {
            return Err(invalid(
                "format version 3 is a licence bundle: exactly one member, of kind ghes-license",
            ));
        }
        if self.source.enterprise.is_none() {
            return Err(invalid(
                "a licence bundle's source is an enterprise (source.enterprise)",
            ));
        }
        if self.is_encrypted() {
            return Err(invalid("a licence bundle is not encrypted"));
        }
        let p = &self.payload[0];
        let Some(reference) = &p.reference else {
            return Err(invalid(format!(
                "{}: a licence needs its reference",
                p.name
            )));
        };
        if p.size > MAX_LICENCE_LEN {
            return Err(invalid(format!(
                "{}: {} bytes, above the {} bytes a licence may have",
                p.name, p.size, MAX_LICENCE_LEN
            )));
        }
        if p.name != reference.member_name() {
            return Err(invalid(format!(
                "{}: a licence with reference {reference} is named {}",
                p.name,
                reference.member_name()
            )));
        }
        Ok(())
    }

    fn check_payload(&self) -> Result<()> {
        if self.payload.is_empty() || self.payload.len() > MAX_PAYLOAD_MEMBERS {
            return Err(invalid(format!(
                "the payload must list 1..={MAX_PAYLOAD_MEMBERS} members"
            )));
        }
        let mut names = HashSet::new();
        for p in &self.payload {
            check_name_syntax(&p.name).map_err(|e| e.recode(Code::ManifestInvalid))?;
            if !p.name.starts_with("payload/") {
                return Err(invalid(format!("{} is not under payload/", p.name)));
            }
            if !names.insert(p.name.to_ascii_lowercase()) {
                return Err(invalid(format!("{} is listed twice", p.name)));
            }
            if p.encryption.is_some()
                && !(p.name.ends_with(".age") && p.name.len() > "payload/.age".len())
            {
                return Err(invalid(format!(
                    "{}: an encrypted member's name ends in .age",
                    p.name
                )));
            }
        }
        let encrypted = self
            .payload
            .iter()
            .filter(|p| p.encryption.is_some())
            .count();
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
        Ok(())
    }

    fn check_recipients(&self) -> Result<()> {
        if self.recipients.len() > MAX_RECIPIENTS {
            return Err(invalid("too many recipients"));
        }
        if self.recipients.iter().any(Recipient::is_passphrase) && self.recipients.len() != 1 {
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
        if self.version != FormatVersion::V3 && self.version != version_for(&self.recipients) {
            return Err(invalid(format!(
                "format version {} with {}: version 2 is written exactly when the recipients \
                 are post-quantum (mlkem768x25519), version 1 otherwise",
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

    /// `created` without separators (`20261101T000000Z`), for file names.
    pub fn created_compact(&self) -> String {
        self.created.compact()
    }

    /// The payload is encrypted.
    pub fn is_encrypted(&self) -> bool {
        !self.recipients.is_empty()
    }

    /// What the bundle carries, which decides the side that may take it.
    pub fn kind(&self) -> BundleKind {
        if self.version == FormatVersion::V3 {
            BundleKind::Licence
        } else {
            BundleKind::Usage
        }
    }

    /// A licence bundle's enterprise and its licence's reference number.
    pub fn licence(&self) -> Option<(&EnterpriseSlug, &LicenceReference)> {
        match (self.kind(), &self.source.enterprise, self.payload.first()) {
            (BundleKind::Licence, Some(e), Some(p)) => p.reference.as_ref().map(|r| (e, r)),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
