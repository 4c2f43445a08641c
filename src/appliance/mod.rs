//! The isolated side's hand-over of a GHES licence to the appliance
//! (licence in, decision 83): what airlock asks of the appliance, and the two
//! ways it asks, SSH (`ghe-license` on port 122) and the Manage GHES API
//! (`/manage/v1/config/license` on port 8443). The licence file itself is
//! opaque to airlock; only the appliance reads it.

use std::time::Duration;

use serde::Serialize;

use crate::base::error::{Code, Error, Result};
use crate::format::manifest::{HexDigest, LicenceReference, Timestamp};

mod http;
pub mod licence_in;
pub mod manage;
pub mod seats;
pub mod ssh;
pub mod status;

pub use seats::SeatsSource;

/// What the appliance says about a licence (the active one, or a candidate
/// read without importing it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LicenceInfo {
    /// The licence's reference number (`reference_number` /
    /// `referenceNumber`).
    pub reference: LicenceReference,
    /// Seats licensed; `None` for unlimited seating.
    pub seats: Option<u64>,
    /// When the licence expires (`expire_at` / `expireAt`), in UTC.
    pub expire_at: Timestamp,
}

/// How airlock reaches the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Path {
    /// `ghe-license` over SSH.
    Ssh,
    /// The Manage GHES API over HTTPS.
    ManageApi,
}

/// What the state directory keeps of the outgoing licence before a new one
/// is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backup {
    /// The active licence file itself, byte for byte (SSH).
    File(Vec<u8>),
    /// Only the active licence's details, as the appliance's JSON (Manage
    /// API: no endpoint returns the file).
    Details(String),
}

/// Seats in use and where the figure came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeatsUsed {
    /// Seats consumed on the appliance.
    pub seats: u64,
    /// The source, named for `license status` (e.g.
    /// `GET /api/v3/enterprise/settings/license`).
    pub source: String,
}

/// One appliance, reached one way. Every call has a deadline; none holds a
/// lock of airlock's (the caller releases the state lock first).
pub trait Appliance {
    /// Which way this is.
    fn path(&self) -> Path;
    /// A one-line description for messages and the ledger (`ssh
    /// admin@ghes.example -p 122`, `https://ghes.example:8443`).
    fn describe(&self) -> String;
    /// The candidate's details read by the appliance without importing it
    /// (`ghe-license info --pipe -j`); `None` when this way cannot (the
    /// Manage API has no such endpoint).
    fn dry_run(&mut self, licence: &[u8]) -> Result<Option<LicenceInfo>>;
    /// The active licence's details.
    fn active(&mut self) -> Result<LicenceInfo>;
    /// What can be kept of the active licence before it is replaced.
    fn backup(&mut self) -> Result<Backup>;
    /// Import and apply `licence`. A config-apply in progress is
    /// `APPLIANCE-BUSY` (retry later), never a refusal of the file.
    fn apply(&mut self, licence: &[u8]) -> Result<()>;
    /// The appliance's own check of the active licence (`valid`).
    fn check(&mut self) -> Result<bool>;
    /// The SHA-256 of the active licence file, when this way can read it.
    fn active_sha256(&mut self) -> Result<Option<HexDigest>>;
    /// Seats in use, when a source for them is configured.
    fn seats_used(&mut self) -> Result<Option<SeatsUsed>>;
}

/// The default deadline of one call to the appliance.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The deadline of an apply over SSH: it restarts GHES services, which can
/// take minutes on a large appliance (decision 83).
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Largest JSON answer airlock reads from the appliance.
pub const MAX_JSON_ANSWER: u64 = 1024 * 1024;

/// The field names of one licence description: `ghe-license info -j`
/// writes snake_case, the Manage API camelCase (decision 84).
pub(crate) struct Fields {
    pub reference: &'static str,
    pub seats: &'static str,
    pub expire_at: &'static str,
    pub unlimited: &'static str,
}

/// `ghe-license info -j` (and `--pipe -j`).
pub(crate) const GHE_LICENSE_FIELDS: Fields = Fields {
    reference: "reference_number",
    seats: "seats",
    expire_at: "expire_at",
    unlimited: "unlimited_seating",
};

/// `GET /manage/v1/config/license`.
pub(crate) const MANAGE_FIELDS: Fields = Fields {
    reference: "referenceNumber",
    seats: "seats",
    expire_at: "expireAt",
    unlimited: "unlimitedSeating",
};

fn shape(what: &str, why: String) -> Error {
    // The appliance's values are quoted in `why`: at most 300 characters of
    // it, so a hostile answer cannot fill the terminal or the ledger.
    let mut why = crate::base::names::one_line(&why);
    if why.chars().count() > 300 {
        why = why.chars().take(300).collect::<String>() + "…";
    }
    Error::new(Code::ApplianceResponse, format!("{what}: {why}"))
}

/// Read a licence description from the appliance's JSON: an object (or a
/// one-element array of one, as go-github decodes the Manage API's answer).
/// Unknown fields are ignored; `seats` is a number, or absent / `0` /
/// `"unlimited"` with unlimited seating (`None`).
pub(crate) fn licence_info(json: &[u8], f: &Fields, what: &str) -> Result<LicenceInfo> {
    let v: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| shape(what, format!("not JSON ({e})")))?;
    let obj = match &v {
        serde_json::Value::Array(a) if a.len() == 1 => &a[0],
        other => other,
    };
    let obj = obj
        .as_object()
        .ok_or_else(|| shape(what, "not a JSON object".into()))?;
    let reference = obj
        .get(f.reference)
        .and_then(|r| r.as_str())
        .ok_or_else(|| shape(what, format!("no string {}", f.reference)))?;
    let reference = LicenceReference::parse(reference).ok_or_else(|| {
        shape(
            what,
            format!("{} {reference:?} is not a reference number", f.reference),
        )
    })?;
    let unlimited = obj.get(f.unlimited).and_then(|u| u.as_bool()) == Some(true);
    let seats = match obj.get(f.seats) {
        _ if unlimited => None,
        Some(serde_json::Value::Number(n)) => Some(
            n.as_u64()
                .ok_or_else(|| shape(what, format!("{} {n} is not a seat count", f.seats)))?,
        ),
        Some(serde_json::Value::String(s)) if s.eq_ignore_ascii_case("unlimited") => None,
        other => {
            return Err(shape(
                what,
                format!("{} is {other:?}, not a seat count", f.seats),
            ))
        }
    };
    let expire = obj
        .get(f.expire_at)
        .and_then(|e| e.as_str())
        .ok_or_else(|| shape(what, format!("no string {}", f.expire_at)))?;
    let expire_at = parse_time(expire).ok_or_else(|| {
        shape(
            what,
            format!("{} {expire:?} is not an RFC 3339 time", f.expire_at),
        )
    })?;
    Ok(LicenceInfo {
        reference,
        seats,
        expire_at,
    })
}

/// An RFC 3339 time with any offset (`Z`, `-08:00`), as a UTC
/// [`Timestamp`] (whole seconds); `None` for anything else or a time past year 9999.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let ts = Timestamp::from_system(crate::base::clock::parse_rfc3339(s)?);
    ts.is_writable().then_some(ts)
}

/// The appliance says a config-apply (configuration run) is in progress.
/// The exact wording is not published: these patterns are to confirm on a
/// real appliance (decision 84). Both halves must be there, so a hint like
/// "run ghe-config-apply afterwards" is not taken for busy.
pub fn says_busy(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    let subject = [
        "config-apply",
        "config apply",
        "configuration run",
        "configuration apply",
    ]
    .iter()
    .any(|p| t.contains(p));
    let state = ["running", "in progress", "in-progress", "already"]
        .iter()
        .any(|p| t.contains(p));
    subject && state
}

/// The first meaningful line of an appliance's message, on one line and at
/// most 300 characters, for an error's cause.
pub(crate) fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .unwrap_or("");
    let mut out: String = line.chars().take(300).collect();
    if line.chars().count() > 300 {
        out.push('…');
    }
    crate::base::names::one_line(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ghe_license_json() {
        let j = br#"{"advanced_security_enabled":true,"company":"x","evaluation":false,
            "expire_at":"2026-01-01T23:59:59-08:00","perpetual":false,
            "reference_number":"ABC123","seats":5000,"unlimited_seating":false}"#;
        let i = licence_info(j, &GHE_LICENSE_FIELDS, "t").unwrap();
        assert_eq!(i.reference.as_str(), "ABC123");
        assert_eq!(i.seats, Some(5000));
        assert_eq!(i.expire_at.to_string(), "2026-01-02T07:59:59Z");
        let u = br#"{"reference_number":"R1","seats":0,"unlimited_seating":true,"expire_at":"2026-01-01T00:00:00Z"}"#;
        assert_eq!(
            licence_info(u, &GHE_LICENSE_FIELDS, "t").unwrap().seats,
            None
        );
        let s = br#"{"reference_number":"R1","seats":"unlimited","expire_at":"2026-01-01T00:00:00.5+01:00"}"#;
        let i = licence_info(s, &GHE_LICENSE_FIELDS, "t").unwrap();
        assert_eq!(i.seats, None);
        assert_eq!(i.expire_at.to_string(), "2025-12-31T23:00:00Z");
    }

    #[test]
    fn times_with_offsets() {
        let t = |s| parse_time(s).map(|t| t.to_string());
        assert_eq!(
            t("2026-01-01T00:00:00Z").as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        assert_eq!(
            t("2026-01-01T00:00:00.999+01:00").as_deref(),
            Some("2025-12-31T23:00:00Z")
        );
        assert_eq!(
            t("2025-12-31T20:00:00-08:30").as_deref(),
            Some("2026-01-01T04:30:00Z")
        );
        assert_eq!(
            t("2026-01-01 00:00:00+00:00").as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        for bad in [
            "2026-01-01T00:00:00",
            "2026-01-01",
            "2026-01-01T00:00:00+1:00",
            "2026-01-01T00:00:00+24:00",
            "x2026-01-01T00:00:00Z+01:00",
            "2026-01-01T00:00:00é+01:00",
            "é",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn manage_json_object_or_array() {
        let o = br#"{"referenceNumber":"32a145","seats":25,"expireAt":"2018-01-01T00:00:00Z","unlimitedSeating":false,"sshAllowed":true}"#;
        let i = licence_info(o, &MANAGE_FIELDS, "t").unwrap();
        assert_eq!((i.reference.as_str(), i.seats), ("32a145", Some(25)));
        let a = br#"[{"referenceNumber":"32a145","seats":0,"expireAt":"2018-01-01T00:00:00Z","unlimitedSeating":true}]"#;
        assert_eq!(licence_info(a, &MANAGE_FIELDS, "t").unwrap().seats, None);
    }

    #[test]
    fn bad_json_is_a_response_error() {
        for bad in [
            &b"not json"[..],
            b"[]",
            b"[{},{}]",
            b"{}",
            br#"{"reference_number":"A B","seats":1,"expire_at":"2026-01-01T00:00:00Z"}"#,
            br#"{"reference_number":"R","seats":-1,"expire_at":"2026-01-01T00:00:00Z"}"#,
            br#"{"reference_number":"R","seats":1.5,"expire_at":"2026-01-01T00:00:00Z"}"#,
            br#"{"reference_number":"R","expire_at":"2026-01-01T00:00:00Z"}"#,
            br#"{"reference_number":"R","seats":1,"expire_at":"2026-01-01"}"#,
            br#"{"reference_number":"R","seats":1,"expire_at":"2026-01-01T00:00:00"}"#,
            br#"{"reference_number":"R","seats":1,"expire_at":"99999-01-01T00:00:00Z"}"#,
        ] {
            let e = licence_info(bad, &GHE_LICENSE_FIELDS, "t").unwrap_err();
            assert_eq!(
                e.code,
                Code::ApplianceResponse,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // Snake case is not the Manage API's spelling.
        let snake = br#"{"reference_number":"R","seats":1,"expire_at":"2026-01-01T00:00:00Z"}"#;
        assert!(licence_info(snake, &MANAGE_FIELDS, "t").is_err());
    }

    #[test]
    fn busy_wording() {
        assert!(says_busy(
            "ERROR: a configuration run is already in progress"
        ));
        assert!(says_busy("ghe-config-apply is running, try again later"));
        assert!(says_busy("Config apply in progress"));
        assert!(!says_busy(
            "License imported. Run ghe-config-apply to apply it."
        ));
        assert!(!says_busy("invalid license file"));
    }

    #[test]
    fn first_lines() {
        assert_eq!(
            first_line("Warning: Permanently added 'x' (ED25519)\r\n\nbad\x1b[31m licence\nmore"),
            "bad\\x1b[31m licence"
        );
        assert_eq!(first_line(&"x".repeat(400)).chars().count(), 301);
    }
}
