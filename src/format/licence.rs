//! Licence bundles (format version 3, decision 81): a GHES licence file
//! (`github-enterprise-<reference>.ghl`) signed on the connected side for the
//! enterprise, going into the appliance. The file is opaque: airlock never
//! parses it, only bounds its size and binds its reference number, taken
//! from the file's name, and its digest in the signed manifest.

use std::path::Path;

use serde::Serialize;

use crate::base::error::{Code, Error, Result};
use crate::format::manifest::{EnterpriseSlug, HexDigest, LicenceReference, Manifest};

/// The extension of a GHES licence file: a file with this name is exported
/// as a licence.
pub const EXTENSION: &str = ".ghl";
/// The name GitHub gives a licence file before its reference number.
pub const PREFIX: &str = "github-enterprise-";
pub use crate::format::manifest::MAX_LICENCE_LEN;

/// What makes an export a licence bundle: the enterprise that signs for it
/// and the licence's reference number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceInput {
    /// The enterprise: the bundle's source and trust principal.
    pub enterprise: EnterpriseSlug,
    /// The reference number the manifest binds (and names the member by).
    pub reference: LicenceReference,
}

/// The file name is a licence's: it ends in `.ghl`.
pub fn is_licence_name(name: &[u8]) -> bool {
    name.ends_with(EXTENSION.as_bytes())
}

/// The reference number in a licence file's name:
/// `github-enterprise-<reference>.ghl`, where a browser's second download
/// of the same file, `github-enterprise-<reference> (1).ghl`, gives the
/// same reference. `None` when the name does not have that shape.
pub fn reference_from_name(name: &str) -> Option<LicenceReference> {
    let stem = name.strip_suffix(EXTENSION)?.strip_prefix(PREFIX)?;
    LicenceReference::parse(strip_copy_number(stem))
}

/// `REF (N)` → `REF`, for N of one or more digits; anything else as it is.
fn strip_copy_number(stem: &str) -> &str {
    let Some(open) = stem.strip_suffix(')').and_then(|s| s.rfind(" (")) else {
        return stem;
    };
    let digits = &stem[open + 2..stem.len() - 1];
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        &stem[..open]
    } else {
        stem
    }
}

impl LicenceInput {
    /// The licence in the file at `path`, for `enterprise`: its reference
    /// is `reference` when given, else taken from the file's name (refused
    /// when the name has none).
    pub fn new(path: &Path, enterprise: &str, reference: Option<&str>) -> Result<LicenceInput> {
        let enterprise = EnterpriseSlug::parse(enterprise).ok_or_else(|| {
            Error::new(
                Code::Args,
                format!("enterprise {enterprise:?} is not an enterprise slug"),
            )
            .with_hint(
                "give the slug as in github.com/enterprises/SLUG: lowercase letters, digits and '-'",
            )
        })?;
        let reference = match reference {
            Some(r) => LicenceReference::parse(r).ok_or_else(|| {
                Error::new(
                    Code::Args,
                    format!("--reference {r:?} is not a licence reference number"),
                )
                .with_hint("a reference number is 1 to 64 letters, digits and '-'")
            })?,
            None => path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(reference_from_name)
                .ok_or_else(|| {
                    Error::new(
                        Code::Args,
                        format!(
                            "{}: the file name carries no licence reference number",
                            crate::base::names::escape(path)
                        ),
                    )
                    .with_hint(
                        "keep the name GitHub gave the download (github-enterprise-REFERENCE.ghl), \
                         or pass --reference REFERENCE (shown next to the licence on GitHub)",
                    )
                })?,
        };
        Ok(LicenceInput {
            enterprise,
            reference,
        })
    }

    /// The file name the licence has in the bundle (under `payload/`).
    pub fn file_name(&self) -> String {
        format!("{PREFIX}{}{EXTENSION}", self.reference)
    }
}

/// What a licence bundle's signed manifest says about its licence, as
/// `verify`, `inspect` and `export` show it (docs/json-output.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LicenceSummary {
    /// The enterprise the licence comes from (the trust principal).
    pub enterprise: EnterpriseSlug,
    /// The licence's reference number.
    pub reference: LicenceReference,
    /// The member holding the `.ghl` file.
    pub member: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256: that of the `.ghl` file itself (a licence is never
    /// encrypted), for `sha256sum`.
    pub sha256: HexDigest,
}

impl LicenceSummary {
    /// The licence of a licence bundle; `None` for any other bundle.
    pub fn of(m: &Manifest) -> Option<LicenceSummary> {
        let (enterprise, reference) = m.licence()?;
        let p = m.payload.first()?;
        Some(LicenceSummary {
            enterprise: enterprise.clone(),
            reference: reference.clone(),
            member: p.name.clone(),
            size: p.size,
            sha256: p.sha256.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_comes_from_the_name_without_a_browser_copy_number() {
        let r = |n: &str| reference_from_name(n).map(|r| r.to_string());
        assert_eq!(r("github-enterprise-ABC123.ghl").as_deref(), Some("ABC123"));
        assert_eq!(
            r("github-enterprise-ABC123 (1).ghl").as_deref(),
            Some("ABC123")
        );
        assert_eq!(
            r("github-enterprise-ABC123 (12).ghl").as_deref(),
            Some("ABC123")
        );
        assert_eq!(r("github-enterprise-0-9-x.ghl").as_deref(), Some("0-9-x"));
        for none in [
            "github-enterprise-.ghl",
            "github-enterprise- (1).ghl",
            "github-enterprise-ABC123 (x).ghl",
            "github-enterprise-ABC123 ().ghl",
            "github-enterprise-ABC 123.ghl",
            "github-enterprise-ABC123(1).ghl",
            "github-enterprise-ABC123.ghl.txt",
            "enterprise.ghl",
            "license.ghl",
            "github-enterprise-ABC123.GHL",
            "github-enterprise-../x.ghl",
        ] {
            assert_eq!(r(none), None, "{none}");
        }
        assert!(is_licence_name(b"enterprise.ghl"));
        assert!(!is_licence_name(b"license-usage.json"));
    }

    #[test]
    fn an_explicit_reference_overrides_the_name_and_an_absent_one_is_refused() {
        let p = Path::new("/tmp/github-enterprise-ABC123 (1).ghl");
        let l = LicenceInput::new(p, "octo-corp", None).unwrap();
        assert_eq!(l.reference.as_str(), "ABC123");
        assert_eq!(l.file_name(), "github-enterprise-ABC123.ghl");
        let l = LicenceInput::new(p, "octo-corp", Some("XYZ9")).unwrap();
        assert_eq!(l.reference.as_str(), "XYZ9");
        let none = Path::new("/tmp/enterprise.ghl");
        assert_eq!(
            LicenceInput::new(none, "octo-corp", None).unwrap_err().code,
            Code::Args
        );
        assert!(LicenceInput::new(none, "octo-corp", Some("R1")).is_ok());
        for (ent, r) in [("Octo", None), ("octo-corp", Some("A B"))] {
            assert_eq!(
                LicenceInput::new(p, ent, r).unwrap_err().code,
                Code::Args,
                "{ent} {r:?}"
            );
        }
    }
}
