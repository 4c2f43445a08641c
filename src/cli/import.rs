//! `airlock import`: verify, apply the ledger rules, hand over.

use std::path::PathBuf;

use airlock::bundle::verify::{Clock, DEFAULT_SKEW};
use airlock::bundle::VerifyOptions;
use airlock::config::Config;
use airlock::error::{Code, Error, Result};
use airlock::handover::Target;
use airlock::import::{import, ImportOptions};
use airlock::state::{default_state_dir, StateDir};
use airlock::trust::TrustStore;
use zeroize::Zeroizing;

use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The bundle to import
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Configuration file (default: ~/.config/airlock/airlock.toml)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// OpenSSH allowed_signers file [env: AIRLOCK_TRUST; config: trust]
    #[arg(
        long,
        value_name = "ALLOWED_SIGNERS",
        env = "AIRLOCK_TRUST",
        hide_env = true
    )]
    pub trust: Option<PathBuf>,
    /// Revoked public keys [env: AIRLOCK_REVOKED; config: revoked]
    #[arg(long, value_name = "FILE", env = "AIRLOCK_REVOKED", hide_env = true)]
    pub revoked: Option<PathBuf>,
    #[command(flatten)]
    pub ids: super::IdentityArgs,
    /// Require valid signatures from N distinct trusted keys (two-person rule) [config: require_signers]
    #[arg(long, value_name = "N", value_parser = super::parse_signers)]
    pub require_signers: Option<usize>,
    /// State directory holding the ledger [env: AIRLOCK_STATE_DIR; config: state_dir]
    #[arg(long, value_name = "DIR", env = "AIRLOCK_STATE_DIR", hide_env = true)]
    pub state_dir: Option<PathBuf>,
    /// Outbox directory (default: STATE_DIR/outbox) [env: AIRLOCK_OUTBOX; config: outbox]
    #[arg(long, value_name = "DIR", env = "AIRLOCK_OUTBOX", hide_env = true)]
    pub outbox: Option<PathBuf>,
    /// GitHub Enterprise Cloud enterprise slug, for the upload page URL [env: AIRLOCK_ENTERPRISE; config: enterprise]
    #[arg(long, value_name = "SLUG", env = "AIRLOCK_ENTERPRISE", hide_env = true)]
    pub enterprise: Option<String>,
    /// POST the payload to this internal endpoint instead of the outbox [env: AIRLOCK_SUBMIT_URL; config: submit_url]
    #[arg(long, value_name = "URL", env = "AIRLOCK_SUBMIT_URL", hide_env = true)]
    pub submit_url: Option<String>,
    /// Bearer token for --submit-url, on the first line of FILE (or env AIRLOCK_SUBMIT_TOKEN) [config: submit_token_file]
    #[arg(long, value_name = "FILE")]
    pub submit_token_file: Option<PathBuf>,
}

pub fn run(mut a: Args) -> Result<()> {
    let (cfg, _) = Config::load(a.config.as_deref())?;
    let trust_path = a.trust.or(cfg.trust).ok_or_else(|| {
        Error::new(Code::Args, "no trust file").with_hint(
            "pass --trust ALLOWED_SIGNERS, set AIRLOCK_TRUST, or set trust in airlock.toml",
        )
    })?;
    let revoked = a.revoked.or(cfg.revoked);
    let trust = TrustStore::load(&trust_path, revoked.as_deref())?;
    if a.ids.identities.is_empty() {
        a.ids.identities = std::env::var_os("AIRLOCK_IDENTITY")
            .filter(|v| !v.is_empty())
            .map(|v| std::env::split_paths(&v).collect())
            .unwrap_or(cfg.identities);
    }
    let ids = a.ids.load(&a.bundle)?;
    let state_path = match a.state_dir.or(cfg.state_dir) {
        Some(d) => d,
        None => default_state_dir()?,
    };
    let state = StateDir::open(&state_path)?;
    let enterprise = a.enterprise.or(cfg.enterprise);
    let target = match a.submit_url.or(cfg.submit_url) {
        Some(url) => {
            let token = match (
                std::env::var("AIRLOCK_SUBMIT_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty()),
                a.submit_token_file.or(cfg.submit_token_file),
            ) {
                (_, Some(f)) => Some(airlock::keys::read_passphrase_file(&f)?),
                (Some(t), None) => Some(Zeroizing::new(t)),
                (None, None) => None,
            };
            Target::Http { url, token }
        }
        None => {
            // One rule for output directories (docs/operator-guide.md): the
            // default outbox is airlock's own (created with the state
            // directory); one you name is created only inside your home.
            let outbox = match a.outbox.or(cfg.outbox) {
                Some(o) => {
                    airlock::fsutil::ensure_dir(&o, "outbox")?;
                    o
                }
                None => state_path.join("outbox"),
            };
            Target::Outbox(outbox)
        }
    };
    let report = import(
        &a.bundle,
        &ImportOptions {
            verify: VerifyOptions {
                trust: &trust,
                now: Clock::System,
                skew: DEFAULT_SKEW,
                identities: Some(&ids),
                require_signers: a.require_signers.or(cfg.require_signers).unwrap_or(1),
            },
            state: &state,
            target,
            enterprise,
        },
    )?;
    if super::json() {
        super::print_json(&serde_json::json!({ "ok": true, "import": report }));
        return Ok(());
    }
    outln!(
        "imported {} from {} ({})",
        report.bundle_id,
        report.host_name,
        report.server_id.as_deref().unwrap_or("-")
    );
    outln!(
        "  signed by    {} (sequence {})",
        report.signer,
        report.sequence
    );
    outln!("  created      {}", report.created);
    if report.resumed {
        outln!("  finished the hand-over of an earlier, interrupted import");
    }
    for h in &report.handed_over {
        outln!("  handed over  {h}");
    }
    outln!(
        "  recorded in  {}",
        state_path.join(airlock::ledger::LEDGER_FILE).display()
    );
    Ok(())
}
