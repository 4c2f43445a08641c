//! `airlock cloud status|seats`: ask GitHub Enterprise Cloud what it made of
//! the uploads; `airlock fleet` and `airlock report`: what the ledger knows.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use airlock::cloud::{self, Client};
use airlock::config::Config;
use airlock::error::{Code, Error, Result};
use airlock::fleet::{self, SeatReport, Thresholds, SEATS_FILE};
use airlock::ledger::Ledger;
use airlock::state::default_state_dir;

use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Common {
    /// Configuration file (default: ~/.config/airlock/airlock.toml)
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// State directory holding the ledger [env: AIRLOCK_STATE_DIR; config: state_dir]
    #[arg(
        long,
        value_name = "DIR",
        env = "AIRLOCK_STATE_DIR",
        hide_env = true,
        global = true
    )]
    pub state_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct CloudArgs {
    #[command(subcommand)]
    pub cmd: CloudCmd,
    #[command(flatten)]
    pub common: Common,
    /// Enterprise slug [env: AIRLOCK_ENTERPRISE; config: enterprise]
    #[arg(
        long,
        value_name = "SLUG",
        env = "AIRLOCK_ENTERPRISE",
        hide_env = true,
        global = true
    )]
    pub enterprise: Option<String>,
    /// API base URL: https://api.github.com, or https://api.SUBDOMAIN.ghe.com for GHE.com [config: api_url]
    #[arg(long, value_name = "URL", global = true)]
    pub api_url: Option<String>,
    /// File holding the GitHub token (else GH_TOKEN or GITHUB_TOKEN) [config: token_file]
    #[arg(long, value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum CloudCmd {
    /// Read license-sync-status; mark imported bundles confirmed once GitHub synced them
    Status,
    /// Read consumed-licenses: seat totals, and server users that match no Cloud account
    Seats,
}

#[derive(clap::Args, Debug)]
pub struct FleetArgs {
    #[command(flatten)]
    pub common: Common,
    /// Warn when an import is not confirmed this long after it
    #[arg(long, value_name = "DURATION", default_value = "3d", value_parser = humantime::parse_duration)]
    pub unconfirmed_after: Duration,
    /// Warn when an instance sent no bundle for this long
    #[arg(long, value_name = "DURATION", default_value = "35d", value_parser = humantime::parse_duration)]
    pub expected_interval: Duration,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Write a self-contained HTML page here
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
    /// Replace an existing file
    #[arg(long)]
    pub force: bool,
}

fn state_dir(c: &Common, cfg: &Config) -> Result<PathBuf> {
    match c.state_dir.clone().or(cfg.state_dir.clone()) {
        Some(d) => Ok(d),
        None => default_state_dir(),
    }
}

pub fn run_cloud(a: CloudArgs) -> Result<()> {
    let (cfg, _) = Config::load(a.common.config.as_deref())?;
    let enterprise = a.enterprise.or(cfg.enterprise.clone()).ok_or_else(|| {
        Error::new(Code::Args, "no enterprise").with_hint(
            "pass --enterprise SLUG, set AIRLOCK_ENTERPRISE, or set enterprise in airlock.toml",
        )
    })?;
    let api = a
        .api_url
        .or(cfg.api_url.clone())
        .unwrap_or_else(|| cloud::DEFAULT_API_URL.into());
    let token = cloud::token(a.token_file.or(cfg.token_file.clone()).as_deref())?;
    let client = Client::new(&api, token)?;
    let dir = state_dir(&a.common, &cfg)?;
    match a.cmd {
        CloudCmd::Status => {
            let status = client.license_sync_status(&enterprise)?;
            // Only the ledger writes need the lock: take it after the network call.
            let _state = airlock::state::StateDir::open(&dir)?;
            let mut ledger = Ledger::open(&dir)?;
            let res = fleet::apply_sync_status(&mut ledger, &status)?;
            if super::json() {
                super::print_json(
                    &serde_json::json!({"ok": true, "enterprise": enterprise, "instances": res}),
                );
                return Ok(());
            }
            if res.is_empty() {
                outln!("GitHub reports no Enterprise Server instances for {enterprise}.");
            }
            for r in &res {
                let host = r.hostname.as_deref().unwrap_or("?");
                let st = r.status.as_deref().unwrap_or("no sync yet");
                outln!(
                    "{host} ({}): last sync {} {st}",
                    r.server_id,
                    r.date.as_deref().unwrap_or("-")
                );
                if let Some(e) = &r.error {
                    outln!("  GitHub says: {e}");
                }
                if !r.newly_confirmed.is_empty() {
                    outln!(
                        "  confirmed {} imported bundle(s) in the ledger",
                        r.newly_confirmed.len()
                    );
                }
                if !r.known {
                    outln!("  (this instance is not in the ledger: its usage did not come through airlock here)");
                }
            }
        }
        CloudCmd::Seats => {
            let c = client.consumed_licenses(&enterprise)?;
            let rep = fleet::seat_report(&enterprise, &c, SystemTime::now());
            if dir.is_dir() {
                let text = serde_json::to_vec_pretty(&rep).unwrap_or_default();
                airlock::fsutil::write_atomic(&dir.join(SEATS_FILE), &text, 0o600, true)?;
            }
            if super::json() {
                super::print_json(&serde_json::json!({"ok": true, "seats": rep}));
                return Ok(());
            }
            outln!(
                "{enterprise}: {} seats consumed of {} purchased",
                rep.total_seats_consumed,
                rep.total_seats_purchased
            );
            if rep.unmatched.is_empty() {
                outln!("every server user matches a GitHub Enterprise Cloud account");
            } else {
                outln!(
                    "{} server user(s) match no Cloud account and consume a separate seat:",
                    rep.unmatched.len()
                );
                for u in &rep.unmatched {
                    outln!(
                        "  {}  {}",
                        u.server_user_ids.join(","),
                        u.server_emails.join(",")
                    );
                }
                outln!("Fix: make each user's GHES primary email match their Cloud account (SAML/SCIM attribute or a verified email).");
            }
        }
    }
    Ok(())
}

fn load_fleet(a: &FleetArgs) -> Result<(Vec<fleet::Instance>, Option<SeatReport>)> {
    let (cfg, _) = Config::load(a.common.config.as_deref())?;
    let dir = state_dir(&a.common, &cfg)?;
    super::require_ledger(&dir)?;
    let ledger = Ledger::open(&dir)?;
    let th = Thresholds {
        unconfirmed_after: a.unconfirmed_after,
        expected_interval: a.expected_interval,
    };
    let f = fleet::fleet(&ledger.events()?, SystemTime::now(), th);
    let seats = std::fs::read(dir.join(SEATS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    Ok((f, seats))
}

pub fn run_fleet(a: FleetArgs) -> Result<()> {
    let (f, _) = load_fleet(&a)?;
    if super::json() {
        super::print_json(&serde_json::json!({"ok": true, "instances": f}));
        return Ok(());
    }
    outln!(
        "{:<28} {:<36} {:<20} {:<20} {:<20} {}",
        "HOST",
        "SERVER ID",
        "LAST EXPORT",
        "LAST IMPORT",
        "LAST CONFIRMED",
        "SYNC"
    );
    for i in &f {
        let d = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
        outln!(
            "{:<28} {:<36} {:<20} {:<20} {:<20} {}",
            i.host_name,
            d(&i.server_id),
            d(&i.last_export_created),
            d(&i.last_import),
            d(&i.last_confirmed_sync),
            d(&i.last_sync_status)
        );
        for w in &i.warnings {
            outln!("  {}: {w}", super::paint("warning", "33"));
        }
    }
    Ok(())
}

pub fn run_report(a: ReportArgs) -> Result<()> {
    let (f, seats) = load_fleet(&a.fleet)?;
    let page = airlock::report::html(&f, seats.as_ref(), SystemTime::now());
    if !a.force && a.html.exists() {
        return Err(Error::new(
            Code::OutputExists,
            format!("{} already exists", a.html.display()),
        ));
    }
    airlock::fsutil::ensure_dir(&airlock::fsutil::parent_dir(&a.html), "report directory")?;
    airlock::fsutil::write_atomic(&a.html, page.as_bytes(), 0o644, a.force)?;
    if super::json() {
        super::print_json(&serde_json::json!({"ok": true, "report": a.html, "instances": f.len()}));
    } else {
        outln!("wrote {} ({} instance(s))", a.html.display(), f.len());
    }
    Ok(())
}
