use super::*;
use crate::appliance::{Backup, SeatsUsed};
use crate::format::manifest::parse_time;

/// A stand-in appliance: answers from its fields, or fails.
struct Fake {
    active: Option<LicenceInfo>,
    check: Option<bool>,
    seats_used: Option<Option<SeatsUsed>>,
    asked: Vec<&'static str>,
}

fn fail(what: &str) -> Error {
    Error::new(
        Code::ApplianceUnreachable,
        format!("{what}: connection refused"),
    )
}

impl Appliance for Fake {
    fn path(&self) -> Path {
        Path::Ssh
    }
    fn describe(&self) -> String {
        "ssh admin@ghes.example -p 122".into()
    }
    fn dry_run(&mut self, _: &[u8]) -> Result<Option<LicenceInfo>> {
        unreachable!("status never dry-runs")
    }
    fn active(&mut self) -> Result<LicenceInfo> {
        self.asked.push("active");
        self.active.clone().ok_or_else(|| fail("active"))
    }
    fn backup(&mut self) -> Result<Backup> {
        unreachable!("status never backs up")
    }
    fn apply(&mut self, _: &[u8]) -> Result<()> {
        unreachable!("status never applies")
    }
    fn check(&mut self) -> Result<bool> {
        self.asked.push("check");
        self.check.ok_or_else(|| fail("check"))
    }
    fn active_sha256(&mut self) -> Result<Option<HexDigest>> {
        Ok(None)
    }
    fn seats_used(&mut self) -> Result<Option<SeatsUsed>> {
        self.asked.push("seats_used");
        self.seats_used.clone().ok_or_else(|| fail("seats"))
    }
}

const NOW: &str = "2026-12-07T12:00:00Z";

/// An appliance whose valid licence `REF-1` (2000 seats) expires
/// `days` days and `extra` seconds after [`NOW`]; 1200 seats in use.
fn fake(days: i64, extra: i64) -> Fake {
    let now = Timestamp::parse(NOW).unwrap().unix_secs() as i64;
    let t = (now + days * DAY + extra) as u64;
    Fake {
        active: Some(LicenceInfo {
            reference: LicenceReference::parse("REF-1").unwrap(),
            seats: Some(2000),
            expire_at: Timestamp::from_system(
                SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(t),
            ),
        }),
        check: Some(true),
        seats_used: Some(Some(SeatsUsed {
            seats: 1200,
            source: "GET /api/v3/enterprise/settings/license".into(),
        })),
        asked: Vec::new(),
    }
}

fn run(f: &mut Fake, th: Thresholds) -> LicenceStatus {
    let clock = Clock::Fixed(parse_time(NOW).unwrap());
    gather(f, &clock, th, None)
}

fn status_of(days: i64, extra: i64) -> Status {
    run(&mut fake(days, extra), Thresholds::default()).status
}

/// The "done when": WARNING at 29 days, CRITICAL at 6.
#[test]
fn defaults_warn_at_30_days_and_are_critical_at_7() {
    assert_eq!(status_of(31, 0), Status::Ok);
    assert_eq!(
        status_of(30, 3600),
        Status::Warning,
        "30 days and an hour: 30"
    );
    assert_eq!(status_of(29, 0), Status::Warning);
    assert_eq!(status_of(8, 0), Status::Warning);
    assert_eq!(status_of(7, 0), Status::Critical);
    assert_eq!(status_of(6, 0), Status::Critical);
    assert_eq!(status_of(0, 1), Status::Critical);
    assert_eq!(status_of(0, 0), Status::Critical, "expired at this second");
    let s = run(&mut fake(29, 0), Thresholds::default());
    assert_eq!(s.days_left, Some(29));
    assert_eq!(
        s.plugin_line(),
        "AIRLOCK LICENCE WARNING - licence REF-1 expires in 29 days (2027-01-05); seats: 1200 used of 2000 | 'days_left'=29;@~:30;@~:7 'seats'=2000;;;0 'seats_used'=1200;2000;;0"
    );
    assert_eq!(s.problems[0].problem, problem::EXPIRES_SOON);
    let s = run(&mut fake(6, 0), Thresholds::default());
    assert_eq!(s.problems[0].problem, problem::EXPIRES_CRITICAL);
    assert!(s
        .plugin_line()
        .starts_with("AIRLOCK LICENCE CRITICAL - licence REF-1 expires in 6 days (2026-12-13)"));
}

#[test]
fn days_round_down_and_go_negative_once_expired() {
    let s = run(&mut fake(0, -1), Thresholds::default());
    assert_eq!((s.days_left, s.expired), (Some(-1), Some(true)));
    assert_eq!(s.problems[0].problem, problem::EXPIRED);
    assert!(
        s.text.contains("expired at 2026-12-07T11:59:59Z"),
        "{}",
        s.text
    );
    let s = run(&mut fake(-3, 0), Thresholds::default());
    assert_eq!(s.days_left, Some(-3));
    assert_eq!(s.status, Status::Critical);
    let s = run(&mut fake(400, 86399), Thresholds::default());
    assert_eq!((s.days_left, s.status), (Some(400), Status::Ok));
}

#[test]
fn thresholds_come_from_flags_then_config_then_defaults() {
    let th = Thresholds::resolve((None, None), (None, None)).unwrap();
    assert_eq!(th, Thresholds::default());
    let th = Thresholds::resolve((Some(60), None), (Some(45), Some(14))).unwrap();
    assert_eq!((th.warning_days, th.critical_days), (60, 14));
    let th = Thresholds::resolve((None, Some(3)), (Some(10), Some(5))).unwrap();
    assert_eq!((th.warning_days, th.critical_days), (10, 3));
    let e = Thresholds::resolve((Some(5), Some(10)), (None, None)).unwrap_err();
    assert_eq!(e.code, Code::Args);
    // Configured limits change the verdict.
    let th = Thresholds {
        warning_days: 60,
        critical_days: 14,
    };
    assert_eq!(run(&mut fake(45, 0), th).status, Status::Warning);
    assert_eq!(run(&mut fake(14, 0), th).status, Status::Critical);
    assert_eq!(run(&mut fake(61, 0), th).status, Status::Ok);
    let th = Thresholds {
        warning_days: 0,
        critical_days: 0,
    };
    assert_eq!(run(&mut fake(1, 0), th).status, Status::Ok);
    let p = run(&mut fake(1, 0), th).perf()[0].to_string();
    assert_eq!(p, "'days_left'=1;@~:0;@~:0");
}

#[test]
fn an_appliance_that_cannot_be_read_is_unknown_and_asked_once() {
    let mut f = fake(100, 0);
    f.active = None;
    let s = run(&mut f, Thresholds::default());
    assert_eq!(s.status, Status::Unknown);
    assert_eq!(f.asked, ["active"], "nothing more is asked");
    assert_eq!(s.error.as_ref().unwrap().code, Code::ApplianceUnreachable);
    assert_eq!(s.problems[0].code, Some("AIRLOCK-E-APPLIANCE-UNREACHABLE"));
    assert_eq!(
        s.plugin_line(),
        "AIRLOCK LICENCE UNKNOWN - cannot read the active licence: active: connection refused (AIRLOCK-E-APPLIANCE-UNREACHABLE) | 'days_left'=U;@~:30;@~:7 'seats'=U;;;0 'seats_used'=U;;;0"
    );
    let m = s.metrics().render();
    assert!(
        m.contains("airlock_check_status{command=\"licence-status\"} 3\n"),
        "{m}"
    );
    assert!(!m.contains("airlock_licence_expiry"), "{m}");
    // A check that cannot be read is UNKNOWN too, above the expiry's
    // verdict, which still leads the text.
    let mut f = fake(3, 0);
    f.check = None;
    let s = run(&mut f, Thresholds::default());
    assert_eq!(s.status, Status::Unknown);
    assert!(
        s.text.starts_with("licence REF-1 expires in 3 days"),
        "{}",
        s.text
    );
}

#[test]
fn an_invalid_check_is_critical_and_too_many_seats_a_warning() {
    let mut f = fake(200, 0);
    f.check = Some(false);
    let s = run(&mut f, Thresholds::default());
    assert_eq!(s.status, Status::Critical);
    assert_eq!(s.problems[0].problem, problem::CHECK_INVALID);
    let mut f = fake(200, 0);
    f.seats_used = Some(Some(SeatsUsed {
        seats: 2001,
        source: "ghe-license usage".into(),
    }));
    let s = run(&mut f, Thresholds::default());
    assert_eq!(s.status, Status::Warning);
    assert_eq!(s.problems[0].problem, problem::SEATS_EXCEEDED);
    assert!(s.plugin_line().contains("'seats_used'=2001;2000;;0"));
    // Unlimited seats and no source: nothing to exceed, said so.
    let mut f = fake(200, 0);
    f.active.as_mut().unwrap().seats = None;
    f.seats_used = Some(None);
    let s = run(&mut f, Thresholds::default());
    assert_eq!(s.status, Status::Ok);
    assert_eq!(s.seats_unlimited, Some(true));
    assert!(s.plugin_line().contains("'seats'=U;;;0 'seats_used'=U;;;0"));
    let h = s.human().join("\n");
    assert!(
        h.contains("seats in use: unknown: no source configured"),
        "{h}"
    );
    assert!(h.contains("seats:        unlimited"), "{h}");
}

#[test]
fn perfdata_follows_the_guidelines() {
    for (days, extra) in [(29, 0), (-3, 0), (400, 0)] {
        let s = run(&mut fake(days, extra), Thresholds::default());
        let line = s.plugin_line();
        assert!(!line.contains('\n'));
        let (_, data) = line.split_once(" | ").unwrap();
        let items = crate::format::monitoring::tests::split_perf(data);
        assert_eq!(items.len(), 3, "{line}");
        for p in &items {
            assert!(crate::format::monitoring::tests::valid_perf(p), "{p}");
        }
    }
}

#[test]
fn json_human_and_metrics_carry_every_source() {
    let clock = Clock::Fixed(parse_time(NOW).unwrap());
    let last = LastApplied {
        reference: LicenceReference::parse("REF-1").unwrap(),
        bundle_sha256: HexDigest::parse(&"a".repeat(64)).unwrap(),
        applied: Timestamp::parse("2026-12-01T09:00:00Z").unwrap(),
        confirmed: true,
    };
    let s = gather(&mut fake(29, 0), &clock, Thresholds::default(), Some(last));
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["status"], "WARNING");
    assert_eq!(v["path"], "ssh");
    assert_eq!(v["appliance"], "ssh admin@ghes.example -p 122");
    assert_eq!(v["active"]["reference"], "REF-1");
    assert_eq!(v["active"]["seats"], 2000);
    assert_eq!(v["days_left"], 29);
    assert_eq!(v["seats_used"], 1200);
    assert_eq!(
        v["seats_used_source"],
        "GET /api/v3/enterprise/settings/license"
    );
    assert_eq!(v["check_valid"], true);
    assert_eq!(v["last_applied"]["confirmed"], true);
    assert_eq!(v["thresholds"]["warning_days"], 30);
    assert_eq!(v["problems"][0]["problem"], "expires-soon");
    assert_eq!(v["problems"][0]["status"], "WARNING");
    let h = s.human();
    assert_eq!(h[0], "status:       WARNING");
    assert!(h
        .iter()
        .any(|l| l == "seats in use: 1200 (from GET /api/v3/enterprise/settings/license)"));
    assert!(h
        .iter()
        .any(|l| l.starts_with("last applied: REF-1 on 2026-12-01T09:00:00Z, confirmed")));
    let m = s.metrics().render();
    for want in [
        "airlock_check_status{command=\"licence-status\"} 1\n",
        "airlock_licence_expiry_timestamp_seconds{command=\"licence-status\"} 1799150400\n",
        "airlock_licence_seats{command=\"licence-status\"} 2000\n",
        "airlock_licence_seats_used{command=\"licence-status\"} 1200\n",
        "airlock_licence_check_valid{command=\"licence-status\"} 1\n",
        "airlock_licence_problem{command=\"licence-status\",problem=\"expires-soon\"} 1\n",
        "airlock_licence_problem{command=\"licence-status\",problem=\"expired\"} 0\n",
        "airlock_licence_last_applied_confirmed{command=\"licence-status\",reference=\"REF-1\"} 1\n",
        "airlock_licence_info{command=\"licence-status\",reference=\"REF-1\",path=\"ssh\",appliance=\"ssh admin@ghes.example -p 122\"} 1\n",
    ] {
        assert!(m.contains(want), "{want}\n{m}");
    }
    // promtool, where installed, accepts the textfile.
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("licence.prom");
    s.metrics().write_textfile(&f).unwrap();
    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&f).unwrap())
        .output()
    {
        Ok(o) => assert!(
            o.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("SKIPPED promtool check metrics: promtool not installed"),
    }
}
