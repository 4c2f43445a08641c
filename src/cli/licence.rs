//! `airlock licence` (alias `license`): the isolated side's licence in —
//! `import` verifies a licence bundle and applies it to the appliance,
//! `status` reads the active licence (decision 83, docs/licence-in.md).

use std::path::PathBuf;

use airlock::appliance::licence_in::{import_licence, LicenceImport, LicenceReport, SeatDecrease};
use airlock::config::{Config, Settings, TokenSource};
use airlock::error::{Code, Error, Result};
use airlock::import::Opened;
use airlock::names;
use airlock::trust::TrustStore;
use airlock::verify::VerifyOptions;
use airlock::verify::{Clock, DEFAULT_SKEW};
use zeroize::Zeroizing;

use crate::outln;

#[derive(clap::Args, Debug)]
pub struct LicenceArgs {
    #[command(flatten)]
    pub appliance: ApplianceArgs,
    #[command(subcommand)]
    pub command: LicenceCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum LicenceCommand {
    /// Verify a licence bundle, apply the licence rules, back up the active licence, apply and confirm
    Import(ImportArgs),
    /// Watch a drop folder for licence bundles: verify and stage them for a person, or apply them with --licence-auto-apply
    Watch(WatchArgs),
    /// The appliance's active licence, days until it expires, seats, the last licence applied; --check-format plugin for monitoring
    Status(super::licence_status::Args),
}

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// The drop folder: *.airlock.zip files are judged, then moved to DIR/done/ or DIR/quarantine/
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub timing: super::watch::Timing,
    #[arg(help = airlock::config::flag_help("licence_auto_apply", "Apply verified licence bundles without waiting for a person (the apply restarts GHES services; default: stage them)"))]
    #[arg(long)]
    pub licence_auto_apply: bool,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The licence bundle (made on the connected side by `airlock export github-enterprise-REF.ghl`)
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Apply a licence with fewer seats than the active one (the override is recorded)
    #[arg(long)]
    pub allow_seat_decrease: bool,
}

/// How airlock reaches the appliance, and what it trusts: shared by the
/// licence subcommands (each flag may follow the subcommand).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ApplianceArgs {
    /// Configuration file (default: ~/.config/airlock/airlock.toml) [env: AIRLOCK_CONFIG]
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("state_dir", "State directory: the ledger, received licences, backups"))]
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("revoked", "Revoked public keys, one per line, or a KRL"))]
    #[arg(long, value_name = "FILE", global = true)]
    pub revoked: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("licence_trust", "allowed_signers for licence bundles: the connected side's keys, principal = the enterprise slug"))]
    #[arg(long, value_name = "ALLOWED_SIGNERS", global = true)]
    pub licence_trust: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("appliance_host", "The GHES appliance (its primary), over SSH"))]
    #[arg(long, value_name = "HOST", global = true)]
    pub appliance_host: Option<String>,
    #[arg(help = airlock::config::flag_help("appliance_ssh_command", "The SSH command, words split at spaces, airlock's arguments appended (default ssh)"))]
    #[arg(long, value_name = "COMMAND", global = true)]
    pub appliance_ssh_command: Option<String>,
    #[arg(help = airlock::config::flag_help("appliance_ssh_port", "The appliance's administrative SSH port (default 122)"))]
    #[arg(long, value_name = "PORT", global = true)]
    pub appliance_ssh_port: Option<u16>,
    #[arg(help = airlock::config::flag_help("appliance_ssh_user", "The SSH user (default admin)"))]
    #[arg(long, value_name = "USER", global = true)]
    pub appliance_ssh_user: Option<String>,
    #[arg(help = airlock::config::flag_help("appliance_known_hosts", "known_hosts file pinning the appliance's SSH host key (required for SSH)"))]
    #[arg(long, value_name = "FILE", global = true)]
    pub appliance_known_hosts: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("appliance_manage_url", "The Manage GHES API, https://HOST:8443 (GHES 3.12+)"))]
    #[arg(long, value_name = "URL", global = true)]
    pub appliance_manage_url: Option<String>,
    #[arg(help = airlock::config::flag_help("appliance_password_file", "The root site admin password for the Manage API, on the first line of FILE"))]
    #[arg(long, value_name = "FILE", global = true)]
    pub appliance_password_file: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("appliance_api_url", "The appliance's REST API, https://HOST/api/v3, for seats in use"))]
    #[arg(long, value_name = "URL", global = true)]
    pub appliance_api_url: Option<String>,
    #[arg(help = airlock::config::flag_help("appliance_token_file", "A site-admin token for --appliance-api-url, on the first line of FILE"))]
    #[arg(long, value_name = "FILE", global = true)]
    pub appliance_token_file: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("ca_file", "Also trust the CA certificates in this PEM file for the appliance"))]
    #[arg(long, value_name = "FILE", global = true)]
    pub ca_file: Option<PathBuf>,
}

impl ApplianceArgs {
    /// The resolved configuration of these options.
    pub fn settings(&self) -> Result<Settings> {
        let file = super::settings::ConfigFile {
            config: self.config.clone(),
        };
        file.settings(Config {
            state_dir: self.state_dir.clone(),
            revoked: self.revoked.clone(),
            licence_trust: self.licence_trust.clone(),
            appliance_host: self.appliance_host.clone(),
            appliance_ssh_command: self.appliance_ssh_command.clone(),
            appliance_ssh_port: self.appliance_ssh_port,
            appliance_ssh_user: self.appliance_ssh_user.clone(),
            appliance_known_hosts: self.appliance_known_hosts.clone(),
            appliance_manage_url: self.appliance_manage_url.clone(),
            appliance_password_file: self.appliance_password_file.clone(),
            appliance_api_url: self.appliance_api_url.clone(),
            appliance_token_file: self.appliance_token_file.clone(),
            ca_file: self.ca_file.clone(),
            ..Config::default()
        })
    }
}

pub fn run(a: LicenceArgs) -> Result<()> {
    let s = a.appliance.settings()?;
    match a.command {
        LicenceCommand::Import(i) => run_import(&s, &i),
        LicenceCommand::Watch(w) => {
            let appliance = a.appliance;
            super::watch::in_thread(move |stop| run_watch(&appliance, &w, stop))
        }
        LicenceCommand::Status(_) => Ok(()),
    }
}

/// `licence status`: its exit status is the check's (Monitoring Plugins).
pub fn run_status(a: LicenceArgs) -> Result<i32> {
    let LicenceCommand::Status(st) = &a.command else {
        return Ok(0);
    };
    st.monitor().finish((|| {
        let s = a.appliance.settings()?;
        let config = (
            s.pick(|c| &c.licence_warning_days),
            s.pick(|c| &c.licence_critical_days),
        );
        let last = airlock::appliance::licence_in::last_applied(&s.state_dir()?)?;
        let mut appliance = super::licence_connect::connect(&s)?;
        super::licence_status::run(st, config, appliance.as_mut(), last)
    })())
}

/// What the licence watcher did with a bundle.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Watched {
    /// Verified and staged: waiting for `airlock licence import`.
    Staged(airlock::appliance::licence_in::StagedLicence),
    /// Applied and confirmed (`licence_auto_apply`).
    Applied(Box<LicenceReport>),
}

impl super::watch::Shown for Watched {
    const KEY: &'static str = "licence";
    fn what(&self) -> &'static str {
        match self {
            Watched::Staged(_) => {
                "staged (apply with `airlock licence import` of the file in done/)"
            }
            Watched::Applied(_) => "applied",
        }
    }
}

fn run_watch(a: &ApplianceArgs, w: &WatchArgs, stop: &std::sync::atomic::AtomicBool) -> Result<()> {
    // The configuration is read again for every bundle, as `watch` does.
    let mut judge =
        |b: Result<Opened>, _batch: &mut airlock::lifecycle::Batch| -> Result<Result<Watched>> {
            let s = a.settings()?;
            let trust = licence_trust(&s)?;
            let auto = w.licence_auto_apply || s.pick(|c| &c.licence_auto_apply).unwrap_or(false);
            let mut appliance = if auto {
                Some(super::licence_connect::connect(&s)?)
            } else {
                None
            };
            let state = super::import::open_state(&s.state_dir()?, true)?;
            let opened = match b {
                Ok(o) => o,
                Err(e) => return Ok(Err(e)),
            };
            let opts = options(&s, &trust, &state, false);
            Ok(match appliance.as_mut() {
                None => airlock::appliance::licence_in::stage_licence(opened, &opts)
                    .map(Watched::Staged),
                Some(app) => import_licence(opened, &opts, app.as_mut())
                    .map(|r| Watched::Applied(Box::new(r))),
            })
        };
    super::watch::drive(&w.dir, &w.timing, stop, &mut judge)
}

fn options<'a>(
    s: &Settings,
    trust: &'a TrustStore,
    state: &'a airlock::state::StateDir,
    allow_seat_decrease: bool,
) -> LicenceImport<'a> {
    LicenceImport {
        verify: VerifyOptions {
            progress: crate::cli::progress(),
            trust,
            identities: None,
            require_signers: s.require_signers(),
            now: Clock::System,
            skew: DEFAULT_SKEW,
        },
        state,
        seat_decrease: if allow_seat_decrease {
            SeatDecrease::Allow
        } else {
            SeatDecrease::Refuse
        },
    }
}

/// The licence trust file: required, and never the usage trust file by
/// default (the two sides trust different keys for different things).
fn licence_trust(s: &Settings) -> Result<TrustStore> {
    let path = s.pick(|c| &c.licence_trust).ok_or_else(|| {
        Error::new(Code::Args, "no licence trust file: licence bundles are verified with their own allowed_signers")
            .with_hint("pass --licence-trust FILE (or licence_trust in airlock.toml): the connected side's licence keys, each with the enterprise slug as principal (docs/key-management.md)")
    })?;
    TrustStore::load(&path, s.revoked().as_deref())
}

/// Read a secret: from its file's first line, or the variable holding it.
pub fn read_secret(s: &Settings, src: Option<TokenSource>) -> Result<Option<Zeroizing<String>>> {
    Ok(match src {
        Some(TokenSource::File(f)) => Some(airlock::keys::read_passphrase_file(&f)?),
        Some(TokenSource::Env(v)) => s
            .secret_var(v)
            .and_then(|t| std::str::from_utf8(t).ok())
            .map(|t| Zeroizing::new(t.trim().to_string())),
        None => None,
    })
}

fn run_import(s: &Settings, a: &ImportArgs) -> Result<()> {
    let trust = licence_trust(s)?;
    let mut appliance = super::licence_connect::connect(s)?;
    let state = super::import::open_state(&s.state_dir()?, false)?;
    let opened = Opened::open(&a.bundle)?;
    let opts = options(s, &trust, &state, a.allow_seat_decrease);
    let report = import_licence(opened, &opts, appliance.as_mut())
        .map_err(|e| licence_file_given(e, &a.bundle))?;
    print_report(&report);
    Ok(())
}

/// The usual mistake: the `.ghl` file itself given instead of its bundle.
fn licence_file_given(e: Error, path: &std::path::Path) -> Error {
    let ghl = airlock::format::licence::is_licence_name(path.as_os_str().as_encoded_bytes());
    if e.code == Code::NotABundle && ghl {
        return e.with_hint(
            "this is the licence file itself; on the connected side, `airlock export github-enterprise-REF.ghl --enterprise SLUG --key KEY` makes the signed licence bundle to carry in (docs/licence-in.md)",
        );
    }
    e
}

fn print_report(r: &LicenceReport) {
    super::output::emit(&Imported { licence: r });
}

/// `licence import`'s report: `{"ok": true, "licence": …}`.
#[derive(serde::Serialize)]
struct Imported<'a> {
    licence: &'a LicenceReport,
}

impl super::output::Report for Imported<'_> {
    fn human(&self) {
        human(self.licence);
    }
}

fn human(r: &LicenceReport) {
    outln!(
        "applied licence {} of {} to {}",
        r.reference,
        r.enterprise,
        names::one_line(&r.appliance)
    );
    if r.resumed {
        outln!("  finished what an earlier, interrupted licence import had started");
    }
    if let Some(b) = &r.active_before {
        outln!(
            "  replaced     {} (expires {}, {} seats)",
            b.reference,
            b.expire_at,
            seats(b.seats)
        );
    }
    for b in &r.backup {
        outln!("  backup       {}", names::shown(b));
    }
    outln!(
        "  active now   {} (expires {}, {} seats), check: {}",
        r.active_after.reference,
        r.active_after.expire_at,
        seats(r.active_after.seats),
        if r.check_valid { "valid" } else { "NOT valid" }
    );
    if let Some(u) = &r.seats_used {
        outln!("  seats used   {} ({})", u.seats, u.source);
    }
    for o in &r.overrides {
        outln!("  override     {o} (recorded)");
    }
    for w in &r.warnings {
        outln!(
            "  {}: {}",
            super::paint("warning", "33"),
            names::one_line(w)
        );
    }
    outln!("  kept         {}", names::shown(&r.received));
}

fn seats(s: Option<u64>) -> String {
    s.map_or("unlimited".into(), |n| n.to_string())
}
