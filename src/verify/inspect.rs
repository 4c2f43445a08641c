//! `inspect`: what a bundle says about itself, trusted nothing.

use std::path::Path;

use serde::Serialize;

use crate::base::error::Result;
use crate::crypto::sshsig::{SshSig, MAX_ARMORED_LEN};
use crate::format::container::{open_bundle, Entry, Reader};
use crate::format::manifest::{Manifest, MANIFEST_NAME, MAX_MANIFEST_LEN};

/// What `inspect` shows: everything, trusted nothing.
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// Every member, in order.
    pub members: Vec<InspectedMember>,
    /// `manifest.json` as text, when it is UTF-8.
    pub manifest_text: Option<String>,
    /// Why the manifest does not parse, when it does not.
    pub manifest_error: Option<String>,
    /// The manifest, when it parses (not trusted).
    pub manifest: Option<Manifest>,
    /// What the manifest says the bundle is (`usage` or `licence`), when it
    /// parses (not trusted).
    pub kind: Option<crate::format::manifest::BundleKind>,
    /// A licence bundle's enterprise and reference (not trusted).
    pub licence: Option<crate::format::licence::LicenceSummary>,
    /// Each signature member.
    pub signatures: Vec<InspectedSignature>,
}

/// A member's name and stored size.
#[derive(Debug, Serialize)]
pub struct InspectedMember {
    /// Member name.
    pub name: String,
    /// Stored size in bytes.
    pub size: u64,
}

/// What a signature member claims, unverified.
#[derive(Debug, Serialize)]
pub struct InspectedSignature {
    /// Member name.
    pub member: String,
    /// The signing key's fingerprint, when the signature parses.
    pub fingerprint: Option<String>,
    /// The signing key, OpenSSH public key form.
    pub public_key: Option<String>,
    /// The SSHSIG namespace.
    pub namespace: Option<String>,
    /// Why the signature does not parse, when it does not.
    pub error: Option<String>,
}

/// Read a bundle's layout, manifest and signatures without trusting them.
/// The container must still be canonical: inspect never parses a malformed
/// zip more loosely than verify does.
pub fn inspect(path: &Path) -> Result<Inspection> {
    let mut reader = Reader::open(open_bundle(path)?)?;
    let entries = reader.entries().to_vec();
    let members = entries
        .iter()
        .map(|e| InspectedMember {
            name: e.name.clone(),
            size: e.size,
        })
        .collect();
    let mut manifest_text = None;
    let mut manifest_error = None;
    let mut manifest = None;
    if let Some(e) = entries.iter().find(|e| e.name == MANIFEST_NAME) {
        match reader.read_small(e, MAX_MANIFEST_LEN) {
            Ok(b) => {
                match Manifest::parse(&b) {
                    Ok(m) => manifest = Some(m),
                    Err(err) => manifest_error = Some(err.to_string()),
                }
                manifest_text = Some(String::from_utf8_lossy(&b).into_owned());
            }
            Err(err) => manifest_error = Some(err.to_string()),
        }
    } else {
        manifest_error = Some("no manifest.json".into());
    }
    let signatures = entries
        .iter()
        .filter(|e| e.name.starts_with("signatures/"))
        .map(|e| inspect_signature(&mut reader, e))
        .collect();
    Ok(Inspection {
        members,
        manifest_text,
        manifest_error,
        kind: manifest.as_ref().map(Manifest::kind),
        licence: manifest
            .as_ref()
            .and_then(crate::format::licence::LicenceSummary::of),
        manifest,
        signatures,
    })
}

/// What a signature member claims, or why it cannot be read.
fn inspect_signature(reader: &mut Reader, e: &Entry) -> InspectedSignature {
    let mut s = InspectedSignature {
        member: e.name.clone(),
        fingerprint: None,
        public_key: None,
        namespace: None,
        error: None,
    };
    match reader.read_small(e, MAX_ARMORED_LEN) {
        Ok(t) => match SshSig::from_armored(&t) {
            Ok(sig) => {
                s.fingerprint = Some(sig.public_key.fingerprint());
                s.public_key = Some(sig.public_key.to_openssh());
                s.namespace = Some(sig.namespace.clone());
            }
            Err(err) => s.error = Some(err.to_string()),
        },
        Err(err) => s.error = Some(err.to_string()),
    }
    s
}
