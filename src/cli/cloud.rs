//! `airlock cloud status|seats`: ask GitHub Enterprise Cloud what it made of
//! the uploads; `airlock fleet` and `airlock report`: what the ledger knows.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use airlock::cloud::{self, Client};
use airlock::config::{Config, Settings, TokenSource};
use airlock::error::{Code, Error, Result};
use airlock::fleet::{self, SeatReport, Thresholds, SEATS_FILE};
use airlock::ledger::Ledger;
use airlock::monitoring::Status;
use airlock::names;
use airlock::net::Trust;
use airlock::state::Locked;

use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Common {
    /// Configuration file (default: ~/.config/airlock/airlock.toml) [env: AIRLOCK_CONFIG]
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// State directory holding the ledger [env: AIRLOCK_STATE_DIR; config: state_dir]
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,
}

impl Common {
    /// The resolved configuration, with `flags` set by the command's other
    /// options.
    fn settings(&self, flags: Config) -> Result<Settings> {
        Settings::load(
            Config {
                state_dir: self.state_dir.clone(),
                ..flags
            },
            self.config.as_deref(),
            &|k| std::env::var_os(k),
        )
    }
}

#[derive(clap::Args, Debug)]
pub struct CloudArgs {
    #[command(subcommand)]
    pub cmd: CloudCmd,
    #[command(flatten)]
    pub common: Common,
    /// Enterprise slug [env: AIRLOCK_ENTERPRISE; config: enterprise]
    #[arg(long, value_name = "SLUG", global = true)]
    pub enterprise: Option<String>,
    /// GitHub host, as gh takes it: github.com, or NAME.ghe.com for GHE.com [env: GH_HOST; config: host]
    #[arg(long, value_name = "HOST", global = true, conflicts_with = "api_url")]
    pub host: Option<String>,
    /// API base URL, for anything --host does not cover [config: api_url]
    #[arg(long, value_name = "URL", global = true)]
    pub api_url: Option<String>,
    /// File holding the GitHub token [env: GH_TOKEN or GITHUB_TOKEN, the token itself; config: token_file]
    #[arg(long, value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// Also trust the CA certificates in this PEM file (TLS-inspecting proxy) [config: ca_file]
    #[arg(long, value_name = "FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// The most one request to GitHub may take, its whole answer included (default 30s) [config: http_timeout]
    #[arg(long, value_name = "DURATION", global = true, value_parser = airlock::config::parse_duration)]
    pub http_timeout: Option<Duration>,
    /// The most one request to GitHub may take with its retries and pauses (default 5min) [config: http_deadline]
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

/// How `--check` reports (decision 78).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckFormat {
    /// Exit 0, or 16 + the problem bits; one line per problem (docs/errors.md)
    Bits,
    /// Monitoring Plugins: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; one line with performance data
    Plugin,
}

/// Health limits and monitoring output, shared by `fleet` and `cloud
/// status`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Exit 0 only when every instance is healthy; else 16 + problem bits (docs/errors.md), one line per problem
    #[arg(long)]
    pub check: bool,
    /// How --check reports: bits (the default, as above) or plugin (Nagios, Icinga, Zabbix: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN on any error; one line with performance data); implies --check
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub check_format: Option<CheckFormat>,
    /// Write metrics for Prometheus' textfile collector to FILE (replaced atomically, mode 0644; labels host_name, server_id)
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Newest import must be confirmed by GitHub within N days of its hand-over
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_unconfirmed_days: u64,
    /// An export must be seen at least this often (e.g. 35d)
    #[arg(long, value_name = "DURATION", default_value = "35d", value_parser = humantime::parse_duration)]
    pub expected_interval: Duration,
}

impl CheckArgs {
    /// `--check-format plugin`.
    pub fn plugin(&self) -> bool {
        self.check_format == Some(CheckFormat::Plugin)
    }

    /// `--check`, or a `--check-format`.
    fn checking(&self) -> bool {
        self.check || self.check_format.is_some()
    }

    /// The plugin format is one line; `--json` is another output.
    fn refuse_json_with_plugin(&self) -> Result<()> {
        if self.plugin() && super::json() {
            return Err(Error::new(
                Code::Args,
                "--json and --check-format plugin each choose what standard output carries",
            )
            .with_hint("leave out --json for a monitoring system's plugin runner, or --check-format plugin for a script reading JSON"));
        }
        Ok(())
    }

    /// Write the metrics file, if asked for.
    fn write_metrics(
        &self,
        command: &str,
        f: &[fleet::Instance],
        seats: Option<&SeatReport>,
        status: Status,
        now: SystemTime,
    ) -> Result<()> {
        match &self.metrics {
            Some(file) => fleet::metrics(f, seats, status, command, now).write_textfile(file),
            None => Ok(()),
        }
    }

    fn thresholds(&self) -> Thresholds {
        Thresholds {
            unconfirmed_after: Duration::from_secs(self.max_unconfirmed_days.saturating_mul(86400)),
            expected_interval: self.expected_interval,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct FleetArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub check: CheckArgs,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub common: Common,
    /// Newest import must be confirmed by GitHub within N days of its hand-over
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_unconfirmed_days: u64,
    /// An export must be seen at least this often (e.g. 35d)
    #[arg(long, value_name = "DURATION", default_value = "35d", value_parser = humantime::parse_duration)]
    pub expected_interval: Duration,
    /// Write a self-contained HTML page here
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
    /// Replace an existing file
    #[arg(long)]
    pub force: bool,
}

fn warn(w: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "airlock: warning: {w}");
}

/// How a check reports a failure of its own (decision 78): with
/// `--check-format plugin`, the error as usual on standard error, then one
/// `AIRLOCK UNKNOWN - …` line on standard output and exit 3; with
/// `--metrics`, a textfile saying the check could not run, so a stale file
/// is never taken for a verdict.
pub struct Monitor {
    plugin: bool,
    metrics: Option<PathBuf>,
    command: &'static str,
}

/// The service the `UNKNOWN` line names, when a check set another than
/// `AIRLOCK` (`licence status`: `AIRLOCK LICENCE`).
static SERVICE: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

impl Monitor {
    /// For a command with check options (`fleet`, `cloud status`);
    /// `command` is its name in the metrics' `command` label.
    pub fn of(check: Option<&CheckArgs>, command: &'static str) -> Monitor {
        Monitor::new(
            check.is_some_and(|c| c.plugin()),
            check.and_then(|c| c.metrics.clone()),
            command,
            fleet::SERVICE,
        )
    }

    /// For any check: `plugin` for `--check-format plugin`, `metrics` the
    /// textfile, `command` the metrics' `command` label and `service` the
    /// status line's service name.
    pub fn new(
        plugin: bool,
        metrics: Option<PathBuf>,
        command: &'static str,
        service: &'static str,
    ) -> Monitor {
        super::set_plugin_mode(plugin);
        let _ = SERVICE.set(service);
        Monitor {
            plugin,
            metrics,
            command,
        }
    }

    /// For `cloud SUBCOMMAND`.
    pub fn of_cloud(a: &CloudArgs) -> Monitor {
        match &a.cmd {
            CloudCmd::Status(s) => Monitor::of(Some(&s.check), "cloud-status"),
            CloudCmd::Seats => Monitor::of(None, "cloud-seats"),
        }
    }

    /// The command's result, with a failure reported as above.
    pub fn finish(&self, r: Result<i32>) -> Result<i32> {
        let Err(e) = r else { return r };
        if let Some(f) = &self.metrics {
            let m = fleet::run_metrics(self.command, Status::Unknown, SystemTime::now());
            if let Err(w) = m.write_textfile(f) {
                warn(&format!("{}: {}", w.code.as_str(), w.cause));
            }
        }
        if !self.plugin {
            return Err(e);
        }
        super::print_error(&e, false);
        super::raw_out(&format!("{}\n", unknown_line(&e)));
        Ok(Status::Unknown.exit_code())
    }
}

/// The plugin line of an error: `AIRLOCK UNKNOWN - cause (CODE); hint`.
pub fn unknown_line(e: &Error) -> String {
    airlock::monitoring::plugin_line(
        SERVICE.get().copied().unwrap_or(fleet::SERVICE),
        Status::Unknown,
        &format!("{} ({}); {}", e.cause, e.code.as_str(), e.hint()),
        &[],
    )
}

/// How long `cloud status` waits for another process's state lock before it
/// reports without recording.
const STATUS_LOCK_WAIT: Duration = Duration::from_secs(5);

pub fn run_cloud(a: CloudArgs) -> Result<i32> {
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
        airlock::bundle::verify::Clock::System,
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
    if super::json() {
        let mut v = serde_json::json!({"ok": true, "enterprise": enterprise, "recorded": unrecorded.is_none(), "instances": res, "warnings": status.warnings});
        if let Some(h) = &health {
            v["health"] = serde_json::to_value(h).unwrap_or_default();
        }
        super::print_json(&v);
        return Ok(health.map(|h| h.exit_code).unwrap_or(0));
    }
    if let Some(why) = &unrecorded {
        // Shown even with --quiet: it changes what the rest means.
        super::raw_out(&format!("{why}\n"));
    }
    if res.is_empty() {
        outln!("GitHub reports no Enterprise Server instances for {enterprise}.");
    }
    for r in &res {
        print_sync(r);
    }
    if let Some(h) = &health {
        print_health(h);
        return Ok(h.exit_code);
    }
    Ok(0)
}

/// GitHub's answer recorded in the ledger: what it confirmed, the ledger's
/// records, and why nothing was recorded, if so.
type Recorded = (
    Vec<airlock::lifecycle::InstanceSync>,
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
                let res = airlock::lifecycle::apply_sync_status(&mut ledger, status, now)?;
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
                    airlock::lifecycle::sync_view(&events, status),
                    events,
                    Some(why),
                )
            }
        },
    )
}

/// The seat counts kept by the last `cloud seats`, if it ran and its file
/// reads.
fn read_seats(dir: &Path) -> Option<SeatReport> {
    std::fs::read(dir.join(SEATS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
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

fn print_sync(r: &airlock::lifecycle::InstanceSync) {
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

fn print_health(h: &fleet::Health) {
    // Problems print even with --quiet: they are the point of --check.
    for p in &h.problems {
        super::raw_out(&format!(
            "{} ({}): {}: {}\n",
            names::one_line(&p.host_name),
            names::one_line(p.server_id.as_deref().unwrap_or("-")),
            p.problem,
            names::one_line(&p.detail)
        ));
    }
    if h.healthy {
        outln!("healthy: {} instance(s) checked", h.instances);
    }
}

/// What `fleet` and `report` show: the instances, the enterprises'
/// licence bundles (apart from them), and the last `cloud seats`.
struct Loaded {
    instances: Vec<fleet::Instance>,
    licences: Vec<fleet::EnterpriseLicences>,
    seats: Option<SeatReport>,
}

fn load_fleet(common: &Common, th: Thresholds, now: SystemTime) -> Result<Loaded> {
    let dir = common.settings(Config::default())?.state_dir()?;
    super::require_ledger(&dir)?;
    let ledger = Ledger::open(&dir)?;
    let events = ledger.events()?;
    Ok(Loaded {
        instances: fleet::fleet(&events, now, th),
        licences: fleet::licences(&events),
        seats: read_seats(&dir),
    })
}

pub fn run_fleet(a: FleetArgs) -> Result<i32> {
    a.check.refuse_json_with_plugin()?;
    let now = SystemTime::now();
    let Loaded {
        instances: f,
        licences,
        seats,
    } = load_fleet(&a.common, a.check.thresholds(), now)?;
    let report = fleet::plugin_report(&f, seats.as_ref(), now);
    a.check
        .write_metrics("fleet", &f, seats.as_ref(), report.status, now)?;
    if a.check.plugin() {
        super::raw_out(&format!("{}\n", report.line()));
        return Ok(report.status.exit_code());
    }
    let health = fleet::health(&f);
    let checking = a.check.checking();
    if super::json() {
        let mut v = serde_json::json!({"ok": true, "instances": f, "enterprises": licences});
        if checking {
            v["healthy"] = health.healthy.into();
            v["exit_code"] = health.exit_code.into();
            v["problems"] = serde_json::to_value(&health.problems).unwrap_or_default();
        }
        super::print_json(&v);
        return Ok(if checking { health.exit_code } else { 0 });
    }
    if checking {
        print_health(&health);
        return Ok(health.exit_code);
    }
    outln!(
        "{:<28} {:<36} {:<20} {:<20} {:<20} {}",
        "HOST",
        "SERVER ID",
        "LAST EXPORT",
        "LAST IMPORT",
        "CONFIRMED BY SYNC",
        "LAST SYNC"
    );
    for i in &f {
        print_instance(i);
    }
    print_licences(&licences);
    Ok(0)
}

/// The licence bundles exported, per enterprise, after the instances
/// (decision 85); nothing when there are none.
fn print_licences(licences: &[fleet::EnterpriseLicences]) {
    if licences.is_empty() {
        return;
    }
    outln!("");
    outln!(
        "{:<28} {:<20} {:<20} {:>8}  {}",
        "ENTERPRISE",
        "LICENCE",
        "EXPORTED",
        "SEQUENCE",
        "BUNDLE SHA256"
    );
    for e in licences {
        for l in &e.licences {
            outln!(
                "{:<28} {:<20} {:<20} {:>8}  {}",
                names::one_line(&e.enterprise),
                l.reference.as_str(),
                l.exported.to_string(),
                super::or_dash(&l.sequence),
                super::or_dash(&l.bundle_sha256)
            );
        }
    }
}

/// One instance of the fleet table, with its hand-overs and warnings.
fn print_instance(i: &fleet::Instance) {
    outln!(
        "{:<28} {:<36} {:<20} {:<20} {:<20} {}",
        names::one_line(&i.host_name),
        names::one_line(&super::or_dash(&i.server_id)),
        super::or_dash(&i.last_export_created),
        super::or_dash(&i.last_import),
        names::one_line(&super::or_dash(&i.last_confirmed_sync)),
        names::one_line(&super::or_dash(&i.last_sync_status))
    );
    if let Some(c) = &i.last_confirmed {
        outln!(
            "  confirmed:  bundle {} (created {}) by GitHub's sync of {}: {}",
            c.bundle_id.as_deref().unwrap_or("?"),
            super::or_dash(&c.created),
            c.sync_date.as_deref().unwrap_or("?"),
            c.upload_files().join(", ")
        );
    }
    if let Some(p) = &i.to_upload {
        outln!(
            "  to upload:  {} (bundle {}, handed over {}; not confirmed yet)",
            p.upload_files().join(", "),
            p.bundle_id.as_deref().unwrap_or("?"),
            p.handed_over
        );
    }
    if i.superseded > 0 {
        outln!(
            "  superseded: {} earlier hand-over(s), not the file GitHub kept",
            i.superseded
        );
    }
    if !i.known {
        outln!("  (reported by GitHub only: not exported or imported through airlock here)");
    }
    // Text from the ledger may be GitHub's, recorded before airlock
    // sanitised it: one line, no terminal control.
    for w in &i.warnings {
        outln!(
            "  {}: {}",
            super::paint("warning", "33"),
            names::one_line(w)
        );
    }
}

pub fn run_report(a: ReportArgs) -> Result<i32> {
    let th = Thresholds {
        unconfirmed_after: Duration::from_secs(a.max_unconfirmed_days.saturating_mul(86400)),
        expected_interval: a.expected_interval,
    };
    let now = SystemTime::now();
    let Loaded {
        instances: f,
        licences,
        seats,
    } = load_fleet(&a.common, th, now)?;
    let page = airlock::report::html(&f, &licences, seats.as_ref(), now);
    if !a.force && a.html.exists() {
        return Err(Error::new(
            Code::OutputExists,
            format!("{} already exists", names::shown(&a.html)),
        ));
    }
    airlock::fsutil::ensure_dir(&airlock::fsutil::parent_dir(&a.html), "report directory")?;
    airlock::fsutil::write_atomic(&a.html, page.as_bytes(), 0o644, a.force)?;
    if super::json() {
        let mut doc =
            serde_json::json!({"ok": true, "instances": f.len(), "enterprises": licences.len()});
        names::insert(&mut doc, "report", &a.html);
        super::print_json(&doc);
    } else {
        let enterprises = match licences.len() {
            0 => String::new(),
            n => format!(", licence bundles of {n} enterprise(s)"),
        };
        outln!(
            "wrote {} ({} instance(s){enterprises})",
            names::shown(&a.html),
            f.len()
        );
    }
    Ok(0)
}
