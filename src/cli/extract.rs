//! `airlock extract`: verify a bundle and write its payload files.

use std::path::PathBuf;

use airlock::error::Result;
use airlock::names;
use airlock::trust::TrustStore;
use airlock::verify::VerifyOptions;
use airlock::verify::{extract, Clock, ExtractTo, DEFAULT_SKEW};

use airlock::format::manifest::{BundleId, Sequence, Source};
use airlock::verify::{AcceptedSigner, PayloadCheck};

use super::output::{emit, Name, Names, Report};
use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The bundle to extract
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: super::settings::TrustArgs,
    /// Directory to write the payload files into (created only inside your home directory)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace existing files in DIR
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let settings = a.trust.settings()?;
    let trust = TrustStore::load(&settings.trust()?, settings.revoked().as_deref())?;
    // One rule for output directories (docs/operator-guide.md).
    airlock::fsutil::ensure_dir(&a.out, "output directory")?;
    let ids = a.trust.ids.load(&settings.identities(), &a.bundle)?;
    let (v, written) = extract(
        &a.bundle,
        &VerifyOptions {
            progress: crate::cli::progress(),
            trust: &trust,
            now: Clock::System,
            skew: DEFAULT_SKEW,
            identities: Some(&ids),
            require_signers: settings.require_signers(),
        },
        ExtractTo {
            dir: &a.out,
            overwrite: a.force,
        },
    )?;
    Ok(emit(&Extracted {
        bundle: Name::new("bundle", &a.bundle),
        bundle_id: &v.manifest.bundle_id,
        source: &v.manifest.source,
        sequence: &v.manifest.sequence,
        signers: &v.signers,
        payload: &v.payload,
        written: Names::new("written", written),
    }))
}

/// What `extract` checked and wrote (docs/json-output.md, `extract`).
#[derive(serde::Serialize)]
struct Extracted<'a> {
    #[serde(flatten)]
    bundle: Name,
    bundle_id: &'a BundleId,
    source: &'a Source,
    sequence: &'a Sequence,
    signers: &'a [AcceptedSigner],
    payload: &'a [PayloadCheck],
    #[serde(flatten)]
    written: Names,
}

impl Report for Extracted<'_> {
    fn human(&self) {
        outln!(
            "bundle {} VERIFIED (signed by {})",
            names::shown(self.bundle.name()),
            self.signers
                .iter()
                .map(|s| s.fingerprint.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (p, w) in self.payload.iter().zip(self.written.iter()) {
            outln!(
                "  {} -> {} ({}{})",
                p.name,
                names::shown(w),
                super::bytes(p.plaintext_size.unwrap_or(p.size)),
                if p.decrypted { ", decrypted" } else { "" }
            );
        }
    }
}
