//! `airlock demo`: the whole job on built-in sample data, step by step.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use airlock::bundle::verify::DEFAULT_SKEW;
use airlock::bundle::{self, verify_file, Input, VerifyOptions};
use airlock::error::{Code, Error, Result};
use airlock::sample;
use airlock::state::StateDir;
use airlock::trust::TrustStore;
use airlock::{fsutil, keys};

use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Work in DIR (kept afterwards) instead of a temporary directory
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let tmp;
    let dir = match a.dir {
        Some(d) => {
            std::fs::create_dir_all(&d).map_err(|e| Error::io_write(&d, e))?;
            d
        }
        None => {
            tmp = tempfile::tempdir().map_err(|e| Error::io_write(&std::env::temp_dir(), e))?;
            tmp.path().to_path_buf()
        }
    };
    let p = |s: &str| dir.join(s);
    for sub in ["exporter", "stick", "importer"] {
        std::fs::create_dir_all(p(sub)).map_err(|e| Error::io_write(&p(sub), e))?;
    }
    outln!("airlock demo in {}", dir.display());

    outln!("\n[1/6] exporter: make a signing key");
    let key_path = p("exporter/airlock_ed25519");
    let g = keys::generate(&key_path, "demo exporter", None, true)?;
    outln!("      {} ({})", key_path.display(), g.public.fingerprint());

    outln!("\n[2/6] exporter: the GHES license usage file (synthetic sample)");
    let usage_path = p("exporter/license-usage.json");
    let usage = sample::usage_encrypted(sample::SAMPLE_HOST, sample::SAMPLE_SERVER_ID, 64 * 1024);
    fsutil::write_atomic(&usage_path, &usage, 0o600, true)?;
    outln!("      {} ({} bytes)", usage_path.display(), usage.len());

    outln!("\n[3/6] exporter: airlock export license-usage.json --key … --out stick/");
    let signer = keys::load_signer(&key_path, &mut || {
        Err(Error::new(Code::Internal, "demo key has no passphrase"))
    })?;
    let state = StateDir::open(&p("exporter/state"))?;
    let report = bundle::export(bundle::ExportOptions {
        inputs: vec![Input::path(&usage_path)?],
        signer: &signer,
        host_name: None,
        server_id: None,
        created: SystemTime::now(),
        expires_in: Duration::from_secs(30 * 24 * 3600),
        out: p("stick"),
        overwrite: false,
        state: &state,
        tool: airlock::tool_version(),
        recipients: &Default::default(),
    })?;
    for (_, u) in &report.usage {
        outln!(
            "      recognised GHES {} usage of {} ({}), users {}",
            u.version.as_deref().unwrap_or("?"),
            u.host_name,
            u.server_id,
            u.users
        );
    }
    outln!(
        "      wrote {} ({} bytes), read it back from disk: OK",
        report.path.display(),
        report.bundle_size
    );

    outln!("\n[4/6] importer: trust the exporter's key for its instance (allowed_signers)");
    let allowed = p("importer/allowed_signers");
    let line = format!(
        "{} namespaces=\"airlock-bundle\" {}\n",
        sample::SAMPLE_HOST,
        g.public_line
    );
    fsutil::write_atomic(&allowed, line.as_bytes(), 0o644, true)?;
    outln!("      {}", line.trim_end());

    outln!("\n[5/6] importer: airlock verify BUNDLE --trust allowed_signers");
    let trust = TrustStore::load(&allowed, None)?;
    let opts = VerifyOptions {
        trust: &trust,
        now: SystemTime::now(),
        skew: DEFAULT_SKEW,
        identities: None,
    };
    let v = verify_file(&report.path, &opts)?;
    outln!(
        "      container canonical; signature {} trusted for {}",
        v.signers[0].fingerprint,
        v.manifest.source.host_name
    );
    outln!(
        "      payload {} sha256 {}: matches",
        v.payload[0].name,
        v.payload[0].sha256
    );
    outln!(
        "      created {}, expires {}: fresh",
        v.manifest.created,
        v.manifest.expires
    );
    outln!("      VERIFIED");

    outln!("\n[6/6] attacker: flip one byte of the payload on the stick, verify again");
    let mut bytes = std::fs::read(&report.path).map_err(|e| Error::io_read(&report.path, e))?;
    let i = 200.min(bytes.len() / 2);
    bytes[i] ^= 0x20;
    let forged = p("stick/forged.airlock.zip");
    fsutil::write_atomic(&forged, &bytes, 0o644, true)?;
    match verify_file(&forged, &opts) {
        Ok(_) => {
            return Err(Error::new(
                Code::Internal,
                "the forged bundle verified: this is a bug",
            ))
        }
        Err(e) => outln!("      REJECTED {}: {}", e.code.as_str(), e.cause),
    }

    outln!("\nverdict: the genuine bundle verified, the forged one was rejected.");
    outln!("Check it by hand with standard tools: docs/verify-by-hand.md");
    Ok(())
}
