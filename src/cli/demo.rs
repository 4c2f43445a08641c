//! `airlock demo`: the whole job on built-in sample data, step by step.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use airlock::bundle::verify::DEFAULT_SKEW;
use airlock::bundle::{self, verify_file, Input, VerifyOptions};
use airlock::error::{Code, Error, Result};
use airlock::handover::Target;
use airlock::import::{import, ImportOptions};
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
    let keep = a.dir.is_some();
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

    outln!("\n[1/8] exporter: make a signing key");
    let key_path = p("exporter/airlock_ed25519");
    let g = keys::generate(&key_path, "demo exporter", None, true)?;
    outln!("      {} ({})", key_path.display(), g.public.fingerprint());

    outln!("\n[2/8] exporter: the GHES license usage file (synthetic sample)");
    let usage_path = p("exporter/license-usage.json");
    let usage = sample::usage_encrypted(sample::SAMPLE_HOST, sample::SAMPLE_SERVER_ID, 64 * 1024);
    fsutil::write_atomic(&usage_path, &usage, 0o600, true)?;
    outln!("      {} ({} bytes)", usage_path.display(), usage.len());

    outln!("\n[3/8] exporter: airlock export license-usage.json --key … --out stick/");
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
        read_back: true,
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

    outln!("\n[4/8] importer: trust the exporter's key for its instance (allowed_signers)");
    let allowed = p("importer/allowed_signers");
    let line = format!(
        "{} namespaces=\"airlock-bundle\" {}\n",
        sample::SAMPLE_HOST,
        g.public_line
    );
    fsutil::write_atomic(&allowed, line.as_bytes(), 0o644, true)?;
    outln!("      {}", line.trim_end());

    outln!("\n[5/8] importer: airlock verify BUNDLE --trust allowed_signers");
    let trust = TrustStore::load(&allowed, None)?;
    let opts = VerifyOptions {
        trust: &trust,
        now: airlock::bundle::verify::Clock::System,
        skew: DEFAULT_SKEW,
        identities: None,
        require_signers: 1,
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

    outln!("\n[6/8] importer: airlock import BUNDLE (ledger rules, then hand-over to the outbox)");
    let istate = StateDir::open(&p("importer/state"))?;
    let outbox = p("importer/outbox");
    let import_opts = |target| ImportOptions {
        verify: VerifyOptions {
            trust: &trust,
            now: airlock::bundle::verify::Clock::System,
            skew: DEFAULT_SKEW,
            identities: None,
            require_signers: 1,
        },
        state: &istate,
        target,
        enterprise: Some("octo-corp".into()),
    };
    let r = import(&report.path, &import_opts(Target::Outbox(outbox.clone())))?;
    for h in &r.handed_over {
        outln!("      handed over {h}");
    }
    match import(&report.path, &import_opts(Target::Outbox(outbox.clone()))) {
        Ok(_) => {
            return Err(Error::new(
                Code::Internal,
                "a second import handed over twice: this is a bug",
            ))
        }
        Err(e) => outln!(
            "      again: {} (nothing handed over twice)",
            e.code.as_str()
        ),
    }

    outln!("\n[7/8] attacker: flip one byte of a bundle on the stick; replay an older bundle");
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
        Err(e) => outln!("      forged: REJECTED {}: {}", e.code.as_str(), e.cause),
    }
    // An older genuine bundle: exported before the one just imported.
    let older = bundle::export(bundle::ExportOptions {
        inputs: vec![Input::path(&usage_path)?],
        signer: &signer,
        host_name: None,
        server_id: None,
        created: SystemTime::now() - Duration::from_secs(3600),
        expires_in: Duration::from_secs(30 * 24 * 3600),
        out: p("stick"),
        overwrite: false,
        state: &state,
        tool: airlock::tool_version(),
        recipients: &Default::default(),
        read_back: true,
    })?;
    match import(&older.path, &import_opts(Target::Outbox(outbox.clone()))) {
        Ok(_) => {
            return Err(Error::new(
                Code::Internal,
                "an older bundle was imported: this is a bug",
            ))
        }
        Err(e) => outln!(
            "      older bundle: REJECTED {}: {}",
            e.code.as_str(),
            e.cause
        ),
    }

    outln!("\n[8/8] auditor: the import ledger, hash-chained");
    let ledger = airlock::ledger::Ledger::open(istate.path())?;
    let (n, head) = ledger.verify_chain()?;
    for e in ledger.events()? {
        outln!(
            "      {:>2} {} {:<8} {:<16} {}",
            e.seq,
            e.at,
            e.kind,
            e.outcome,
            e.code.unwrap_or_default()
        );
    }
    outln!("      chain verified: {n} records, head {}", &head[..16]);

    outln!("\nverdict: the genuine bundle verified and was handed over once; the forged and the older one were refused.");
    if keep {
        outln!("The usage file to upload is in {}", outbox.display());
    } else {
        outln!("(The demo directory is removed now; run `airlock demo --dir DIR` to keep it.)");
    }
    outln!("Check it by hand with standard tools: docs/verify-by-hand.md");
    Ok(())
}
