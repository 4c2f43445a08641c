//! The manifest's value types (docs/format.md §3): each one accepts exactly
//! the spellings the format allows, so a `Manifest` that deserialised holds
//! no unchecked string where the format has a fixed set of values or a fixed
//! shape.
//!
//! Serialising writes the same canonical text back, byte for byte: golden
//! bundles re-encode to what they were signed as.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Defines a newtype over `String` whose every value passed `$check`, with
/// serde and `Display` as the bare string.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Check `s` and wrap it.
            pub fn parse(s: &str) -> Option<Self> {
                let check: fn(&str) -> bool = $check;
                check(s).then(|| Self(s.to_string()))
            }
            /// The text as written in the manifest.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(concat!("{:?} is not ", $what), s))
                })
            }
        }
    };
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

checked_string!(
    /// A bundle id: 32 lowercase hex digits.
    BundleId,
    "a bundle id (32 lowercase hex digits)",
    |s| is_lower_hex(s, 32)
);

checked_string!(
    /// A SHA-256 digest as the manifest writes it: 64 lowercase hex digits.
    HexDigest,
    "a SHA-256 digest (64 lowercase hex digits)",
    |s| is_lower_hex(s, 64)
);

checked_string!(
    /// An OpenSSH key fingerprint, `SHA256:` and 43 base64 characters: the
    /// key a sequence number belongs to.
    Fingerprint,
    "an OpenSSH SHA256 fingerprint",
    |s| s.starts_with("SHA256:") && s.len() == 50
);

/// A licence reference number: 1 to 64 ASCII letters, digits and `-`,
/// starting with a letter or digit (the suffix of
/// `github-enterprise-<reference>.ghl`).
fn is_reference(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

/// An enterprise slug as GitHub writes it in `github.com/enterprises/SLUG`:
/// 1 to 64 lowercase ASCII letters, digits and `-`, neither starting nor
/// ending with `-`. One spelling only (no capitals): the slug is a trust
/// principal, matched case-sensitively.
fn is_enterprise_slug(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

checked_string!(
    /// The reference number of a GHES licence file (format version 3).
    LicenceReference,
    "a licence reference number (1 to 64 letters, digits and '-', starting with a letter or digit)",
    is_reference
);

checked_string!(
    /// A GitHub Enterprise Cloud enterprise slug: the principal of a licence
    /// bundle (format version 3).
    EnterpriseSlug,
    "an enterprise slug (1 to 64 lowercase letters, digits and '-', not at either end)",
    is_enterprise_slug
);

impl LicenceReference {
    /// The member name a licence with this reference has in a bundle:
    /// `payload/github-enterprise-<reference>.ghl`.
    pub fn member_name(&self) -> String {
        format!("payload/github-enterprise-{}.ghl", self.0)
    }
}

impl HexDigest {
    /// The lowercase hex of a 32-byte digest.
    pub fn from_bytes(d: &[u8; 32]) -> Self {
        Self(hex::encode(d))
    }
}

/// A manifest time: UTC, whole seconds, written `YYYY-MM-DDTHH:MM:SSZ`
/// (RFC 3339, the one canonical form; every other spelling is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(SystemTime);

impl Timestamp {
    /// The last second the format can write: 9999-12-31T23:59:59Z (RFC 3339
    /// has four-digit years).
    pub const MAX_SECS: u64 = 253_402_300_799;

    /// `t` truncated to whole seconds.
    pub fn from_system(t: SystemTime) -> Self {
        let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Self(UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// Parse the canonical form only.
    pub fn parse(s: &str) -> Option<Self> {
        let t = humantime::parse_rfc3339(s).ok()?;
        let ts = Self(t);
        (ts.to_string() == s).then_some(ts)
    }

    /// The instant.
    pub fn system_time(self) -> SystemTime {
        self.0
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn unix_secs(self) -> u64 {
        self.0
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    }

    /// Within the years the format can write (1970 through 9999).
    pub fn is_writable(self) -> bool {
        self.unix_secs() <= Self::MAX_SECS
    }

    /// Without separators (`20261101T000000Z`), for file names.
    pub fn compact(self) -> String {
        self.to_string()
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect()
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp::from_system(self.0 + d)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Past year 9999 humantime cannot write the time (its Display
        // fails, and a failing Display panics in `to_string`): say the
        // seconds instead. Export refuses such a time before it is signed.
        if !self.is_writable() {
            return write!(f, "{}s after 1970-01-01T00:00:00Z", self.unix_secs());
        }
        write!(f, "{}", humantime::format_rfc3339_seconds(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{s:?} is not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)"
            ))
        })
    }
}

/// What a payload member holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PayloadKind {
    /// A GitHub Enterprise Server license usage file (validated on both sides).
    #[serde(rename = "ghes-license-usage")]
    Usage,
    /// Any other file, carried as bytes.
    #[serde(rename = "file")]
    File,
    /// A GHES licence file (`github-enterprise-<reference>.ghl`), opaque
    /// bytes going into an appliance: format version 3 only (decision 81).
    #[serde(rename = "ghes-license")]
    Licence,
}

impl PayloadKind {
    /// The manifest's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadKind::Usage => "ghes-license-usage",
            PayloadKind::File => "file",
            PayloadKind::Licence => "ghes-license",
        }
    }
}

impl fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a payload member is encrypted. Absent in the manifest means in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Encryption {
    /// An age v1 file (age-encryption.org/v1).
    #[serde(rename = "age")]
    Age,
}

/// The bundle format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FormatVersion {
    /// Every bundle without post-quantum recipients.
    V1,
    /// Version 1 plus the `mlkem768x25519` recipient type, written exactly
    /// when the payload is encrypted to post-quantum recipients (decision 45).
    V2,
    /// A licence bundle: one `ghes-license` member, in clear, from an
    /// enterprise (`source.enterprise`); written exactly for licence bundles,
    /// so that every earlier reader refuses them (decision 81).
    V3,
}

impl FormatVersion {
    /// The number written in the manifest.
    pub fn number(self) -> u32 {
        match self {
            FormatVersion::V1 => 1,
            FormatVersion::V2 => 2,
            FormatVersion::V3 => 3,
        }
    }

    /// The version of this number, if airlock reads it.
    pub fn from_number(n: u64) -> Option<Self> {
        match n {
            1 => Some(FormatVersion::V1),
            2 => Some(FormatVersion::V2),
            3 => Some(FormatVersion::V3),
            _ => None,
        }
    }
}

impl fmt::Display for FormatVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

impl Serialize for FormatVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.number())
    }
}

impl<'de> Deserialize<'de> for FormatVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        Self::from_number(n).ok_or_else(|| {
            serde::de::Error::custom(format!("format version {n} is not one airlock reads"))
        })
    }
}

/// The manifest's `format` field: always `"airlock-bundle"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum FormatName {
    /// The only value.
    #[default]
    #[serde(rename = "airlock-bundle")]
    AirlockBundle,
}

impl FormatName {
    /// The text written in the manifest.
    pub const TEXT: &'static str = "airlock-bundle";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de<T: for<'de> Deserialize<'de>>(json: &str) -> Option<T> {
        serde_json::from_str(json).ok()
    }

    #[test]
    fn timestamps_take_only_the_canonical_form() {
        let t: Timestamp = de("\"2026-11-28T00:00:00Z\"").unwrap();
        assert_eq!(t.to_string(), "2026-11-28T00:00:00Z");
        assert_eq!(t.compact(), "20261128T000000Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-11-28T00:00:00Z\""
        );
        for bad in [
            "\"2026-11-28T00:00:00+00:00\"",
            "\"2026-11-28T00:00:00.5Z\"",
            "\"2026-11-28 00:00:00Z\"",
            "\"2026-11-28t00:00:00z\"",
            "\"2026-02-30T00:00:00Z\"",
            "\"\"",
            "null",
            "1700000000",
        ] {
            assert!(de::<Timestamp>(bad).is_none(), "{bad}");
        }
        // Past year 9999: shown, never a panic; not writable.
        let far = Timestamp::from_system(UNIX_EPOCH + Duration::from_secs(Timestamp::MAX_SECS + 1));
        assert!(!far.is_writable());
        assert_eq!(far.to_string(), "253402300800s after 1970-01-01T00:00:00Z");
        assert!(Timestamp::parse("9999-12-31T23:59:59Z")
            .unwrap()
            .is_writable());
        let later = t + Duration::from_millis(1500);
        assert_eq!(later.to_string(), "2026-11-28T00:00:01Z");
        assert!(later > t);
    }

    #[test]
    fn fixed_value_fields_refuse_everything_else() {
        assert_eq!(de::<PayloadKind>("\"file\""), Some(PayloadKind::File));
        assert_eq!(
            de::<PayloadKind>("\"ghes-license-usage\""),
            Some(PayloadKind::Usage)
        );
        assert!(de::<PayloadKind>("\"File\"").is_none());
        assert_eq!(
            de::<PayloadKind>("\"ghes-license\""),
            Some(PayloadKind::Licence)
        );
        assert!(de::<PayloadKind>("\"ghes-licence\"").is_none());
        for ok in ["ABC123", "0-1", "a"] {
            assert!(LicenceReference::parse(ok).is_some(), "{ok}");
        }
        let long = "A".repeat(65);
        for bad in ["", "-A", "A B", "A_B", "A.B", "ABC (1)", "é", long.as_str()] {
            assert!(LicenceReference::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(
            LicenceReference::parse("ABC123").unwrap().member_name(),
            "payload/github-enterprise-ABC123.ghl"
        );
        for ok in ["octo-corp", "a", "octo2"] {
            assert!(EnterpriseSlug::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "Octo-Corp",
            "-octo",
            "octo-",
            "octo.corp",
            "octo_corp",
            "ghes.example.com",
        ] {
            assert!(EnterpriseSlug::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(de::<Encryption>("\"age\""), Some(Encryption::Age));
        assert!(de::<Encryption>("\"AGE\"").is_none());
        assert!(de::<Encryption>("null").is_none());
        assert_eq!(de::<FormatVersion>("2"), Some(FormatVersion::V2));
        assert_eq!(de::<FormatVersion>("3"), Some(FormatVersion::V3));
        for bad in ["0", "4", "1.0", "-1", "\"1\""] {
            assert!(de::<FormatVersion>(bad).is_none(), "{bad}");
        }
        assert!(de::<FormatName>("\"airlock-bundle\"").is_some());
        assert!(de::<FormatName>("\"airlock\"").is_none());
        assert!(de::<BundleId>(&format!("\"{}\"", "a".repeat(32))).is_some());
        assert!(de::<BundleId>(&format!("\"{}\"", "A".repeat(32))).is_none());
        assert!(de::<HexDigest>(&format!("\"{}\"", "0".repeat(63))).is_none());
        assert!(de::<Fingerprint>(&format!("\"SHA256:{}\"", "A".repeat(43))).is_some());
        assert!(de::<Fingerprint>(&format!("\"MD5:{}\"", "A".repeat(46))).is_none());
    }
}
