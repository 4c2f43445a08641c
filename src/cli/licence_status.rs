//! `airlock licence status` (alias `license status`; issue #29, decision
//! 85): the appliance's active licence, days until it expires, seats and
//! seats in use, its own check, and the last licence bundle applied; as
//! text, JSON, one Monitoring Plugins line or a Prometheus textfile.
//!
//! The caller connects the appliance from the configuration and reads the
//! last licence applied from the ledger; this file only judges and prints.

use std::path::PathBuf;

use airlock::appliance::status::{self, LastApplied, LicenceStatus, Thresholds};
use airlock::appliance::Appliance;
use airlock::clock::Clock;
use airlock::error::{Code, Error, Result};
use airlock::names;

use super::cloud::Monitor;
use crate::outln;

/// How `--check-format` reports.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckFormat {
    /// Monitoring Plugins: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; one line with performance data
    Plugin,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Report for a monitoring system: plugin (Nagios, Icinga, Zabbix: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN on any error; one line with performance data)
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub check_format: Option<CheckFormat>,
    /// Write metrics for Prometheus' textfile collector to FILE (replaced atomically, mode 0644)
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("licence_warning_days", "WARNING when the licence expires in N days or fewer (default 30)"))]
    #[arg(long, value_name = "N")]
    pub warning_days: Option<u32>,
    #[arg(help = airlock::config::flag_help("licence_critical_days", "CRITICAL when the licence expires in N days or fewer (default 7)"))]
    #[arg(long, value_name = "N")]
    pub critical_days: Option<u32>,
}

impl Args {
    /// `--check-format plugin`.
    pub fn plugin(&self) -> bool {
        self.check_format == Some(CheckFormat::Plugin)
    }

    /// The limits: these flags, else `config` (`licence_warning_days`,
    /// `licence_critical_days`), else 30 and 7.
    pub fn thresholds(&self, config: (Option<u32>, Option<u32>)) -> Result<Thresholds> {
        Thresholds::resolve((self.warning_days, self.critical_days), config)
    }

    /// How a failure before or during the check is reported: wrap the
    /// whole command (connecting the appliance included) in
    /// `monitor(&a).finish(…)`, so that with `--check-format plugin` any
    /// error is one `AIRLOCK LICENCE UNKNOWN - …` line and exit 3, and
    /// `--metrics` says the check could not run.
    pub fn monitor(&self) -> Monitor {
        Monitor::new(
            self.plugin(),
            self.metrics.clone(),
            status::COMMAND,
            status::SERVICE,
        )
    }
}

/// Ask `appliance`, judge with the flags' or `config`'s limits, and print.
/// Exit status: with `--check-format plugin` the verdict's (0 to 3);
/// otherwise 0 once the status is printed, whatever the verdict, or the
/// read failure's own code and exit class (15, appliance) after the
/// document when something could not be read.
pub fn run(
    args: &Args,
    config: (Option<u32>, Option<u32>),
    appliance: &mut dyn Appliance,
    last: Option<LastApplied>,
) -> Result<i32> {
    run_at(args, config, appliance, last, &Clock::System)
}

fn run_at(
    args: &Args,
    config: (Option<u32>, Option<u32>),
    appliance: &mut dyn Appliance,
    last: Option<LastApplied>,
    clock: &Clock,
) -> Result<i32> {
    if args.plugin() && super::json() {
        return Err(Error::new(
            Code::Args,
            "--json and --check-format plugin each choose what standard output carries",
        )
        .with_hint("leave out --json for a monitoring system's plugin runner, or --check-format plugin for a script reading JSON"));
    }
    let th = args.thresholds(config)?;
    let mut st = status::gather(appliance, clock, th, last);
    if let Some(f) = &args.metrics {
        st.metrics().write_textfile(f)?;
    }
    if args.plugin() {
        super::raw_out(&format!("{}\n", st.plugin_line()));
        return Ok(st.status.exit_code());
    }
    let err = st.error.take();
    print(&st, err.as_ref());
    match err {
        Some(e) => {
            if super::json() {
                super::already_reported();
            }
            Err(e)
        }
        None => Ok(0),
    }
}

/// The JSON document (`ok` false and the `error` object when something
/// could not be read), or the human lines.
fn print(st: &LicenceStatus, err: Option<&Error>) {
    if super::json() {
        let mut v = serde_json::to_value(st).unwrap_or_default();
        v["ok"] = err.is_none().into();
        if let Some(e) = err {
            v["error"] = super::error_json(e, e.exit_code());
        }
        super::print_json(&v);
        return;
    }
    // The appliance's answers are text from elsewhere: one line each, no
    // terminal control.
    for l in st.human() {
        outln!("{}", names::one_line(&l));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock::appliance::{Backup, LicenceInfo, Path, SeatsUsed};
    use airlock::format::manifest::{HexDigest, LicenceReference, Timestamp};
    use std::time::{Duration, SystemTime};

    /// A stand-in appliance whose licence expires `days` days after `NOW`,
    /// or which cannot be reached.
    struct Fake(Option<i64>);

    const NOW: u64 = 1_796_601_600; // 2026-12-07T00:00:00Z

    fn unreachable() -> Error {
        Error::new(
            Code::ApplianceUnreachable,
            "ghes.example:122: connection refused",
        )
    }

    impl Appliance for Fake {
        fn path(&self) -> Path {
            Path::ManageApi
        }
        fn describe(&self) -> String {
            "https://ghes.example:8443".into()
        }
        fn dry_run(&mut self, _: &[u8]) -> Result<Option<LicenceInfo>> {
            Ok(None)
        }
        fn active(&mut self) -> Result<LicenceInfo> {
            let days = self.0.ok_or_else(unreachable)?;
            let t = (NOW as i64 + days * 86400) as u64;
            Ok(LicenceInfo {
                reference: LicenceReference::parse("ABC123").unwrap(),
                seats: Some(100),
                expire_at: Timestamp::from_system(SystemTime::UNIX_EPOCH + Duration::from_secs(t)),
            })
        }
        fn backup(&mut self) -> Result<Backup> {
            Err(unreachable())
        }
        fn apply(&mut self, _: &[u8]) -> Result<()> {
            Err(unreachable())
        }
        fn check(&mut self) -> Result<bool> {
            Ok(true)
        }
        fn active_sha256(&mut self) -> Result<Option<HexDigest>> {
            Ok(None)
        }
        fn seats_used(&mut self) -> Result<Option<SeatsUsed>> {
            Ok(None)
        }
    }

    fn args(plugin: bool, w: Option<u32>, c: Option<u32>) -> Args {
        Args {
            check_format: plugin.then_some(CheckFormat::Plugin),
            metrics: None,
            warning_days: w,
            critical_days: c,
        }
    }

    fn exit(a: &Args, config: (Option<u32>, Option<u32>), days: Option<i64>) -> Result<i32> {
        let clock = Clock::Fixed(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW));
        run_at(a, config, &mut Fake(days), None, &clock)
    }

    #[test]
    fn the_plugin_exits_with_the_verdict() {
        let p = args(true, None, None);
        assert_eq!(exit(&p, (None, None), Some(31)).unwrap(), 0);
        assert_eq!(exit(&p, (None, None), Some(29)).unwrap(), 1);
        assert_eq!(exit(&p, (None, None), Some(6)).unwrap(), 2);
        assert_eq!(exit(&p, (None, None), None).unwrap(), 3);
        // The configuration's limits, and the flags' over them.
        assert_eq!(exit(&p, (Some(60), Some(40)), Some(45)).unwrap(), 1);
        assert_eq!(exit(&p, (Some(60), Some(50)), Some(45)).unwrap(), 2);
        let f = args(true, Some(40), Some(10));
        assert_eq!(exit(&f, (Some(60), Some(50)), Some(45)).unwrap(), 0);
        // Limits that contradict each other are a usage error (the
        // monitor turns it into UNKNOWN).
        let bad = args(true, Some(5), Some(10));
        assert_eq!(
            exit(&bad, (None, None), Some(45)).unwrap_err().code,
            Code::Args
        );
    }

    #[test]
    fn the_human_form_exits_0_whatever_the_verdict_but_fails_when_unread() {
        let h = args(false, None, None);
        assert_eq!(exit(&h, (None, None), Some(-3)).unwrap(), 0);
        let e = exit(&h, (None, None), None).unwrap_err();
        assert_eq!(e.code, Code::ApplianceUnreachable);
        assert_eq!(e.exit_code(), 15);
    }

    #[test]
    fn the_metrics_file_is_written_also_when_unknown() {
        let d = tempfile::tempdir().unwrap();
        let mut a = args(true, None, None);
        a.metrics = Some(d.path().join("licence.prom"));
        assert_eq!(exit(&a, (None, None), None).unwrap(), 3);
        let m = std::fs::read_to_string(d.path().join("licence.prom")).unwrap();
        assert!(
            m.contains("airlock_check_status{command=\"licence-status\"} 3\n"),
            "{m}"
        );
        assert_eq!(exit(&a, (None, None), Some(29)).unwrap(), 1);
        let m = std::fs::read_to_string(d.path().join("licence.prom")).unwrap();
        assert!(
            m.contains("airlock_licence_seats{command=\"licence-status\"} 100\n"),
            "{m}"
        );
    }
}
