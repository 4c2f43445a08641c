//! What `cloud`, `fleet` and `report` share: the configuration and state
//! directory options, the health check's options, and how a check reports
//! (decision 78).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use airlock::config::{Config, Settings};
use airlock::error::{Code, Error, Result};
use airlock::fleet::{self, SeatReport, Thresholds, SEATS_FILE};
use airlock::monitoring::Status;
use airlock::names;

use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Common {
    /// Configuration file (default: ~/.config/airlock/airlock.toml) [env: AIRLOCK_CONFIG]
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("state_dir", "State directory holding the ledger"))]
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,
}

impl Common {
    /// The resolved configuration, with `flags` set by the command's other
    /// options.
    pub(super) fn settings(&self, flags: Config) -> Result<Settings> {
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
    pub(super) fn checking(&self) -> bool {
        self.check || self.check_format.is_some()
    }

    /// The plugin format is one line; `--json` is another output.
    pub(super) fn refuse_json_with_plugin(&self) -> Result<()> {
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
    pub(super) fn write_metrics(
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

    pub(super) fn thresholds(&self) -> Thresholds {
        Thresholds {
            unconfirmed_after: Duration::from_secs(self.max_unconfirmed_days.saturating_mul(86400)),
            expected_interval: self.expected_interval,
        }
    }
}

pub(super) fn warn(w: &str) {
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

/// The seat counts kept by the last `cloud seats`, if it ran and its file
/// reads.
pub(super) fn read_seats(dir: &Path) -> Option<SeatReport> {
    std::fs::read(dir.join(SEATS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

pub(super) fn print_health(h: &fleet::Health) {
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
