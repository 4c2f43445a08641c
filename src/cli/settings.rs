//! The flags that set keys of `airlock.toml`, grouped as commands take
//! them, and the one place where a command's resolved configuration
//! (`airlock::config::Settings`) is built: flags, then the environment,
//! then the file. Every flag's help names its variable and key as
//! `[env: …; config: …]` (tests/config.rs checks them against
//! `airlock::config::KEYS`).

use std::path::PathBuf;

use airlock::config::{Config, Settings};
use airlock::error::Result;

/// `--config FILE`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigFile {
    /// Configuration file (default: ~/.config/airlock/airlock.toml) [env: AIRLOCK_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigFile {
    /// Resolve `flags` against the environment and this configuration file.
    pub fn settings(&self, flags: Config) -> Result<Settings> {
        Settings::load(flags, self.config.as_deref(), &|k| std::env::var_os(k))
    }
}

/// `--config` and `--state-dir`, for commands that only need the state
/// directory (export, log).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StateArgs {
    #[command(flatten)]
    pub file: ConfigFile,
    #[arg(help = airlock::config::flag_help("state_dir", "State directory: sequence numbers, ledger, default outbox"))]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateArgs {
    pub fn settings(&self) -> Result<Settings> {
        self.file.settings(Config {
            state_dir: self.state_dir.clone(),
            ..Config::default()
        })
    }
}

/// What a verifying command needs: trust, revocation, identities, the
/// signature threshold (verify, extract; import and watch add theirs).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TrustArgs {
    #[command(flatten)]
    pub file: ConfigFile,
    #[arg(help = airlock::config::flag_help("trust", "OpenSSH allowed_signers file: which key may speak for which instance"))]
    #[arg(long, value_name = "ALLOWED_SIGNERS")]
    pub trust: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("revoked", "Revoked public keys, one per line, or a KRL"))]
    #[arg(long, value_name = "FILE")]
    pub revoked: Option<PathBuf>,
    #[command(flatten)]
    pub ids: super::IdentityArgs,
    #[arg(help = airlock::config::flag_help("require_signers", "Require valid signatures from N distinct trusted keys (two-person rule; default 1)"))]
    #[arg(long, value_name = "N", value_parser = super::parse_signers)]
    pub require_signers: Option<usize>,
}

impl TrustArgs {
    /// The flags layer of these options.
    pub fn layer(&self) -> Config {
        Config {
            trust: self.trust.clone(),
            revoked: self.revoked.clone(),
            identities: self.ids.identities.clone(),
            require_signers: self.require_signers,
            ..Config::default()
        }
    }

    pub fn settings(&self) -> Result<Settings> {
        self.file.settings(self.layer())
    }
}
