//! `airlock cloud status|seats`: ask GitHub Enterprise Cloud what it made of
//! the uploads.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use airlock::cloud::{self, Client};
use airlock::config::{Config, TokenSource};
use airlock::confirm::InstanceSync;
use airlock::error::{Code, Error, Result};
use airlock::fleet::{self, Health};
use airlock::ledger::Ledger;
use airlock::monitoring::Status;
use airlock::names;
use airlock::net::Trust;
use airlock::state::Locked;

pub use super::check::Monitor;
use super::check::{print_health, read_seats, warn, CheckArgs, Common};
use super::output::{emit, Report};
use crate::outln;

#[derive(clap::Args, Debug)]
pub struct CloudArgs {
    #[command(subcommand)]
    pub cmd: CloudCmd,
    #[command(flatten)]
    pub common: Common,
    #[arg(help = airlock::config::flag_help("enterprise", "Enterprise slug"))]
    #[arg(long, value_name = "SLUG", global = true)]
    pub enterprise: Option<String>,
    #[arg(help = airlock::config::flag_help("host", "GitHub host, as gh takes it: github.com, or NAME.ghe.com for GHE.com"))]
    #[arg(long, value_name = "HOST", global = true, conflicts_with = "api_url")]
    pub host: Option<String>,
    #[arg(help = airlock::config::flag_help("api_url", "API base URL, for anything --host does not cover"))]
    #[arg(long, value_name = "URL", global = true)]
    pub api_url: Option<String>,
    #[arg(help = airlock::config::flag_help("token_file", "File holding the GitHub token"))]
    #[arg(long, value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("ca_file", "Also trust the CA certificates in this PEM file (TLS-inspecting proxy)"))]
    #[arg(long, value_name = "FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("http_timeout", "The most one request to GitHub may take, its whole answer included (default 30s)"))]
    #[arg(long, value_name = "DURATION", global = true, value_parser = airlock::config::parse_duration)]
    pub http_timeout: Option<Duration>,
    #[arg(help = airlock::config::flag_help("http_deadline", "The most one request to GitHub may take with its retries and pauses (default 5min)"))]
    #[arg(long, value_name = "DURATION", global = true, value_parser = airlock::config::parse_duration)]
    pub http_deadline: Option<Duration>,
}

#[derive(clap::Subcommand, Debug)]
pub enum CloudCmd {
    /// Read license-sync-status; confirm the newest imported bundle of each instance GitHub synced
    Status(StatusArgs),
    /// Read consumed-licenses: seat totals, and server users that match no Cloud account
    Seats,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub check: CheckArgs,
}

/// `airlock cloud …`, a failure reported as its check asks.
pub fn run(a: CloudArgs) -> Result<i32> {
    monitor(&a).finish(run_cloud(a))
}

/// The monitoring of `cloud SUBCOMMAND`.
fn monitor(a: &CloudArgs) -> Monitor {
    match &a.cmd {
        CloudCmd::Status(s) => Monitor::of(Some(&s.check), "cloud-status"),
        CloudCmd::Seats => Monitor::of(None, "cloud-seats"),
    }
}

/// How long `cloud status` waits for another process's state lock before it
/// reports without recording.
const STATUS_LOCK_WAIT: Duration = Duration::from_secs(5);

fn run_cloud(a: CloudArgs) -> Result<i32> {
    let (enterprise, client, dir) = connect(&a)?;
    match a.cmd {
        CloudCmd::Status(s) => run_status(&s, &client, &enterprise, &dir),
        CloudCmd::Seats => run_seats(&client, &enterprise, &dir),
    }
}

/// The resolved enterprise, a client for GitHub's API (token, CAs) and the
/// state directory.
fn connect(a: &CloudArgs) -> Result<(String, Client, PathBuf)> {
    let s = a.common.settings(Config {
        enterprise: a.enterprise.clone(),
        host: a.host.clone(),
        api_url: a.api_url.clone(),
        token_file: a.token_file.clone(),
        ca_file: a.ca_file.clone(),
        http_timeout: a.http_timeout,
        http_deadline: a.http_deadline,
        ..Config::default()
    })?;
    let enterprise = s.enterprise().ok_or_else(|| {
        Error::new(Code::Args, "no enterprise").with_hint(
            "pass --enterprise SLUG, set AIRLOCK_ENTERPRISE, or set enterprise in airlock.toml",
        )
    })?;
    let api = s.api_url()?;
    let token_source = s.github_token();
    let token = cloud::token(
        match &token_source {
            Some(TokenSource::File(f)) => Some(f.as_path()),
            _ => None,
        },
        &["GH_TOKEN", "GITHUB_TOKEN"].map(|v| (v, s.secret_var(v))),
    )?;
    let ca_file = s.ca_file();
    let trust = Trust::load(ca_file.as_deref())?;
    let proxies = s.proxies()?;
    if super::output().verbose > 0 {
        let from = match &token_source {
            Some(TokenSource::File(f)) => names::escape(f),
            Some(TokenSource::Env(v)) => (*v).to_string(),
            None => "none".into(),
        };
        warn_info(&format!(
            "API {api}; token from {from}; trusted CAs: {}; {}",
            airlock::net::describe(&trust, ca_file.as_deref()),
            proxies.describe()
        ));
    }
    let timing = s.http_timing();
    let client = Client::new(
        &api,
        token,
        &trust,
        &proxies,
        airlock::verify::Clock::System,
    )?
    .with_timing(cloud::Timing {
        timeout: timing.timeout,
        deadline: timing.deadline,
    });
    let dir = s.state_dir()?;
    Ok((enterprise, client, dir))
}

/// `cloud status`: GitHub's sync status, recorded in the ledger (which
/// confirms hand-overs), then printed; with `--check`, the health check's
/// exit status; with `--check-format plugin`, one line instead.
fn run_status(s: &StatusArgs, client: &Client, enterprise: &str, dir: &Path) -> Result<i32> {
    s.check.refuse_json_with_plugin()?;
    let status = client.license_sync_status(enterprise)?;
    if !super::json() {
        for w in &status.warnings {
            warn(w);
        }
    }
    let now = SystemTime::now();
    let (res, events, unrecorded) = record_sync(&status, dir, now)?;
    let f = fleet::fleet(&events, now, s.check.thresholds());
    let seats = read_seats(dir);
    let mut report = fleet::plugin_report(&f, seats.as_ref(), now);
    if let Some(why) = &unrecorded {
        // Judged against the ledger as last committed, without GitHub's
        // newest answer: not a verdict (decision 78).
        report.status = Status::Unknown;
        report.text = format!("{why}; as last committed: {}", report.text);
    }
    s.check
        .write_metrics("cloud-status", &f, seats.as_ref(), report.status, now)?;
    if s.check.plugin() {
        super::raw_out(&format!("{}\n", report.line()));
        return Ok(report.status.exit_code());
    }
    let health = s.check.checking().then(|| fleet::health(&f));
    Ok(emit(&SyncReport {
        enterprise: enterprise.to_string(),
        recorded: unrecorded.is_none(),
        unrecorded,
        instances: res,
        warnings: status.warnings,
        health,
    }))
}

/// What `cloud status` found (docs/json-output.md, `cloud status`).
#[derive(serde::Serialize)]
struct SyncReport {
    enterprise: String,
    recorded: bool,
    /// Why nothing was recorded, if so (the human form says it).
    #[serde(skip)]
    unrecorded: Option<String>,
    instances: Vec<InstanceSync>,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<Health>,
}

impl Report for SyncReport {
    fn human(&self) {
        if let Some(why) = &self.unrecorded {
            // Shown even with --quiet: it changes what the rest means.
            super::raw_out(&format!("{why}\n"));
        }
        if self.instances.is_empty() {
            outln!(
                "GitHub reports no Enterprise Server instances for {}.",
                self.enterprise
            );
        }
        for r in &self.instances {
            print_sync(r);
        }
        if let Some(h) = &self.health {
            print_health(h);
        }
    }

    fn exit_status(&self) -> i32 {
        self.health.as_ref().map_or(0, |h| h.exit_code)
    }
}

/// GitHub's answer recorded in the ledger: what it confirmed, the ledger's
/// records, and why nothing was recorded, if so.
type Recorded = (
    Vec<InstanceSync>,
    Vec<airlock::ledger::Event>,
    Option<String>,
);

/// Record GitHub's answer under the state lock. Only the ledger writes need
/// the lock: it is taken after the network call, and waited for only
/// briefly. A run that holds it (say an import waiting on a slow endpoint)
/// does not hold this one up: it reports from the ledger as committed,
/// recording nothing, and says why.
fn record_sync(status: &cloud::SyncStatus, dir: &Path, now: SystemTime) -> Result<Recorded> {
    Ok(
        match airlock::state::StateDir::open_waiting_at_most(dir, STATUS_LOCK_WAIT)? {
            Locked::Yes(_state) => {
                let mut ledger = Ledger::open(dir)?;
                let res = airlock::confirm::apply_sync_status(&mut ledger, status, now)?;
                (res, ledger.events()?, None)
            }
            Locked::No {
                lock_path, holder, ..
            } => {
                // WAL readers do not wait for the writer; no ledger yet
                // means nothing committed.
                let events = if dir.join(airlock::ledger::LEDGER_FILE).exists() {
                    Ledger::open(dir)?.events()?
                } else {
                    Vec::new()
                };
                let holder = holder.map(|p| format!(" (pid {p})")).unwrap_or_default();
                let why = format!(
                    "not recorded: another airlock process{holder} held {} for {} s; this is GitHub's answer beside the ledger as last committed, nothing was confirmed or recorded; run again to record it",
                    lock_path.display(),
                    STATUS_LOCK_WAIT.as_secs()
                );
                (
                    airlock::confirm::sync_view(&events, status),
                    events,
                    Some(why),
                )
            }
        },
    )
}

/// `cloud seats`: the seat counts and the server users that match no Cloud
/// account, kept in the state directory for `report`. The users are
/// written out as GitHub's pages come and printed back from that file, so
/// memory does not grow with them (decision 77).
fn run_seats(client: &Client, enterprise: &str, dir: &Path) -> Result<i32> {
    let mut w = fleet::SeatWriter::create(dir, enterprise, SystemTime::now())?;
    let c = client.consumed_licenses_into(enterprise, &mut w)?;
    let mut file = w.finish(&c)?;
    let warnings = c.warnings.lines();
    if super::json() {
        // {"ok": true, "seats": <the file>, "warnings": [...]}, the file
        // copied line by line.
        let warnings = serde_json::to_string(&warnings).unwrap_or_else(|_| "[]".into());
        super::raw_out("{\n\"ok\": true,\n\"seats\": ");
        let mut first = true;
        file.each_line(&mut |l| {
            if !first {
                super::raw_out("\n");
            }
            first = false;
            super::raw_out(l);
        })?;
        super::raw_out(&format!(",\n\"warnings\": {warnings}\n}}\n"));
        return Ok(0);
    }
    for w in &warnings {
        warn(w);
    }
    let rep = &file.summary;
    outln!(
        "{enterprise}: {} seats consumed of {} purchased",
        rep.total_seats_consumed,
        rep.total_seats_purchased
    );
    if rep.total_seats_consumed > rep.total_seats_purchased {
        outln!(
            "  {}: {} more seats consumed than purchased",
            super::paint("warning", "33"),
            rep.total_seats_consumed - rep.total_seats_purchased
        );
    }
    if file.unmatched == 0 {
        outln!(
            "none of the {} user(s) listed is a server user without a Cloud account",
            c.users
        );
    } else {
        outln!(
            "{} server user(s) match no Cloud account and consume a separate seat:",
            file.unmatched
        );
        file.each_unmatched(&mut |u| {
            outln!(
                "  {}  {}",
                u.server_user_ids.join(","),
                u.server_emails.join(",")
            );
        })?;
        outln!("Fix: make each user's GHES primary email match their Cloud account (SAML/SCIM attribute or a verified email).");
    }
    Ok(0)
}

/// `-v` diagnostics on stderr.
fn warn_info(s: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "airlock: {s}");
}

fn print_sync(r: &InstanceSync) {
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
    if r.date_unreadable {
        outln!(
            "  {}: GitHub's sync date {:?} is in no form airlock reads: nothing is confirmed by it",
            super::paint("warning", "33"),
            r.date.as_deref().unwrap_or("")
        );
    }
    if let Some(c) = &r.confirmed {
        outln!(
            "  confirmed bundle {} (created {}), handed over {}: the newest before this sync",
            c.bundle_id.as_deref().unwrap_or("?"),
            super::or_dash(&c.created),
            c.handed_over
        );
        for f in c.upload_files() {
            outln!("    file {f}");
        }
    }
    if !r.superseded.is_empty() {
        let ids: Vec<&str> = r
            .superseded
            .iter()
            .map(|h| h.bundle_id.as_deref().unwrap_or("?"))
            .collect();
        outln!(
            "  superseded {} earlier hand-over(s), not the file GitHub kept: {}",
            r.superseded.len(),
            ids.join(", ")
        );
    }
    if !r.moved.is_empty() {
        outln!(
            "  moved {} settled outbox file(s) into {}/ and {}/: the outbox's top level holds only what is still to upload",
            r.moved.len(),
            airlock::lifecycle::CONFIRMED_DIR,
            airlock::lifecycle::SUPERSEDED_DIR
        );
    }
    for e in &r.move_errors {
        outln!("  {}: could not move {e}", super::paint("warning", "33"));
    }
    if !r.known {
        outln!("  (this instance was not exported or imported through airlock here)");
    }
}
