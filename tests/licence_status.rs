//! `airlock licence status` through the real binary, against the appliance
//! STAND-IN's SSH face used as the configured SSH command: the Monitoring
//! Plugins verdicts at the thresholds (WARNING at 29 days, CRITICAL
//! at 6, OK beyond 30), configurable limits, and UNKNOWN when the appliance
//! cannot be reached.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use airlock::sample::appliance_licence;
use common::airlock;

/// A stand-in appliance whose active licence expires `days` days and
/// twelve hours from now (the half day keeps the floor of the days left at
/// `days` however long the test takes).
fn appliance(dir: &Path, days: u64) -> std::path::PathBuf {
    let state = dir.join("appliance");
    std::fs::create_dir_all(&state).unwrap();
    let at = SystemTime::now() + Duration::from_secs(days * 86_400 + 12 * 3600);
    let expire = humantime::format_rfc3339_seconds(at).to_string();
    std::fs::write(
        state.join(common::standin::ACTIVE_FILE),
        appliance_licence("STATUS1", Some(50), &expire),
    )
    .unwrap();
    std::fs::write(dir.join("known_hosts"), "").unwrap();
    state
}

fn status(dir: &Path, state: &Path, extra: &[&str]) -> (i32, String) {
    let command = format!(
        "{} standin-appliance --state {}",
        common::airlock_bin().display(),
        state.display()
    );
    let out = airlock()
        .args(["licence", "status", "--check-format", "plugin"])
        .arg("--appliance-host")
        .arg("ghes.test")
        .arg("--appliance-known-hosts")
        .arg(dir.join("known_hosts"))
        .arg("--appliance-ssh-command")
        .arg(command)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(extra)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(text.lines().count(), 1, "one plugin line: {text:?}");
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_plugin_warns_at_29_days_is_critical_at_6_and_ok_beyond_30() {
    for (days, code, word) in [(29, 1, "WARNING"), (6, 2, "CRITICAL"), (31, 0, "OK")] {
        let d = tempfile::tempdir().unwrap();
        let state = appliance(d.path(), days);
        let (rc, line) = status(d.path(), &state, &[]);
        assert_eq!(rc, code, "{days} days: {line}");
        assert!(
            line.starts_with(&format!(
                "AIRLOCK LICENCE {word} - licence STATUS1 expires in {days} days"
            )),
            "{line}"
        );
        assert!(
            line.contains(&format!("'days_left'={days};@~:30;@~:7")),
            "{line}"
        );
    }
}

#[test]
fn the_limits_are_configurable_by_flag_and_by_file() {
    let d = tempfile::tempdir().unwrap();
    let state = appliance(d.path(), 29);
    let (rc, line) = status(
        d.path(),
        &state,
        &["--warning-days", "20", "--critical-days", "5"],
    );
    assert_eq!(rc, 0, "{line}");
    let cfg = d.path().join("airlock.toml");
    std::fs::write(
        &cfg,
        "licence_warning_days = 60\nlicence_critical_days = 30\n",
    )
    .unwrap();
    let (rc, line) = status(d.path(), &state, &["--config", cfg.to_str().unwrap()]);
    assert_eq!(rc, 2, "{line}");
}

#[test]
fn an_unreachable_appliance_is_unknown() {
    let d = tempfile::tempdir().unwrap();
    let state = appliance(d.path(), 100);
    std::fs::write(state.join(common::standin::UNREACHABLE), "").unwrap();
    let (rc, line) = status(d.path(), &state, &[]);
    assert_eq!(rc, 3, "{line}");
    assert!(line.starts_with("AIRLOCK LICENCE UNKNOWN - "), "{line}");
}
