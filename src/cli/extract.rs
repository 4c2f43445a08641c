//! `airlock extract`: verify a bundle and write its payload files.

use std::path::PathBuf;

use airlock::bundle::verify::{extract, Clock, ExtractTo, DEFAULT_SKEW};
use airlock::bundle::VerifyOptions;
use airlock::error::Result;
use airlock::names;
use airlock::trust::TrustStore;

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

pub fn run(a: Args) -> Result<()> {
    let settings = a.trust.settings()?;
    let trust = TrustStore::load(&settings.trust()?, settings.revoked().as_deref())?;
    // One rule for output directories (docs/operator-guide.md).
    airlock::fsutil::ensure_dir(&a.out, "output directory")?;
    let ids = a.trust.ids.load(&settings.identities(), &a.bundle)?;
    let (v, written) = extract(
        &a.bundle,
        &VerifyOptions {
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
    if super::json() {
        let mut doc = serde_json::json!({
            "ok": true,
            "bundle_id": v.manifest.bundle_id,
            "source": v.manifest.source,
            "sequence": v.manifest.sequence,
            "signers": v.signers,
            "payload": v.payload,
        });
        names::insert(&mut doc, "bundle", &a.bundle);
        names::insert_list(&mut doc, "written", &written);
        super::print_json(&doc);
        return Ok(());
    }
    outln!(
        "bundle {} VERIFIED (signed by {})",
        names::shown(&a.bundle),
        v.signers
            .iter()
            .map(|s| s.fingerprint.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (p, w) in v.payload.iter().zip(&written) {
        outln!(
            "  {} -> {} ({}{})",
            p.name,
            names::shown(w),
            super::bytes(p.plaintext_size.unwrap_or(p.size)),
            if p.decrypted { ", decrypted" } else { "" }
        );
    }
    Ok(())
}
