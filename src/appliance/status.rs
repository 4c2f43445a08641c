//! `airlock licence status` (issue #29, decision 85): what the appliance
//! says of its active licence, judged for a monitoring system.
//!
//! The sources, each named in the output: the active licence and the
//! appliance's own check through the configured way ([`Appliance::active`],
//! [`Appliance::check`]); seats in use from [`Appliance::seats_used`] (its
//! own source, or none configured); the last licence applied from the
//! isolated side's ledger (the caller reads it). The verdict follows the
//! Monitoring Plugins' four states; the renderers are in
//! [`crate::format::monitoring`]. A view only: nothing is written but the metrics
//! file the caller asks for.

use std::time::SystemTime;

use serde::Serialize;

use crate::appliance::{Appliance, LicenceInfo, Path};
use crate::base::clock::Clock;
use crate::base::error::{Code, Error, Result};
use crate::format::manifest::{HexDigest, LicenceReference, Timestamp};
use crate::format::monitoring::{self, Metrics, Perf, Range, Status, Unit};

/// The service name in the Monitoring Plugins status line.
pub const SERVICE: &str = "AIRLOCK LICENCE";

/// The command's name in the metrics' `command` label.
pub const COMMAND: &str = "licence-status";

/// Days left before a warning or a critical verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Thresholds {
    /// WARNING when the licence expires in this many days or fewer.
    pub warning_days: u32,
    /// CRITICAL when the licence expires in this many days or fewer.
    pub critical_days: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            warning_days: 30,
            critical_days: 7,
        }
    }
}

impl Thresholds {
    /// The thresholds from the flags, else the configuration, else the
    /// defaults (30 and 7), each value on its own; refused when the
    /// critical limit is above the warning limit (a WARNING could then
    /// never be seen).
    pub fn resolve(
        flags: (Option<u32>, Option<u32>),
        config: (Option<u32>, Option<u32>),
    ) -> Result<Thresholds> {
        let d = Thresholds::default();
        let th = Thresholds {
            warning_days: flags.0.or(config.0).unwrap_or(d.warning_days),
            critical_days: flags.1.or(config.1).unwrap_or(d.critical_days),
        };
        if th.critical_days > th.warning_days {
            return Err(Error::new(
                Code::Args,
                format!(
                    "the critical limit ({} days) is above the warning limit ({} days)",
                    th.critical_days, th.warning_days
                ),
            )
            .with_hint("give --critical-days no more than --warning-days (config: licence_critical_days, licence_warning_days)"));
        }
        Ok(th)
    }
}

/// The last licence bundle applied, as the isolated side's ledger records
/// it (the caller reads the ledger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastApplied {
    /// The signed reference number of the licence applied.
    pub reference: LicenceReference,
    /// SHA-256 of the licence bundle file.
    pub bundle_sha256: HexDigest,
    /// When it was applied.
    pub applied: Timestamp,
    /// Whether the appliance's read-back confirmed it.
    pub confirmed: bool,
}

/// The problems a status can have, each with its verdict.
pub mod problem {
    /// The active licence has expired (CRITICAL).
    pub const EXPIRED: &str = "expired";
    /// The licence expires within the critical limit (CRITICAL).
    pub const EXPIRES_CRITICAL: &str = "expires-critical";
    /// The licence expires within the warning limit (WARNING).
    pub const EXPIRES_SOON: &str = "expires-soon";
    /// The appliance's check does not say valid (CRITICAL).
    pub const CHECK_INVALID: &str = "check-invalid";
    /// More seats in use than licensed (WARNING).
    pub const SEATS_EXCEEDED: &str = "seats-exceeded";
    /// Something the status needs could not be read (UNKNOWN).
    pub const UNREADABLE: &str = "unreadable";

    /// Every problem, in the order the metrics list them.
    pub const ALL: [&str; 6] = [
        EXPIRED,
        EXPIRES_CRITICAL,
        EXPIRES_SOON,
        CHECK_INVALID,
        SEATS_EXCEEDED,
        UNREADABLE,
    ];
}

/// One thing wrong, with its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Its name ([`problem`]).
    pub problem: &'static str,
    /// Its verdict.
    pub status: Status,
    /// What is wrong, one sentence.
    pub detail: String,
    /// The error code, when something could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
}

/// The licence status: the `--json` form, and what every other output is
/// rendered from.
#[derive(Debug, Serialize)]
pub struct LicenceStatus {
    /// The verdict: the worst of the problems', OK when there are none.
    pub status: Status,
    /// The status line's text (before the performance data).
    pub text: String,
    /// When the appliance was asked.
    pub checked_at: Timestamp,
    /// The way the appliance was asked.
    pub path: Path,
    /// The appliance, as that way describes it.
    pub appliance: String,
    /// The active licence (`None`: it could not be read).
    pub active: Option<LicenceInfo>,
    /// Whole days until the active licence expires, rounded down; negative
    /// once it has expired.
    pub days_left: Option<i64>,
    /// The active licence has expired.
    pub expired: Option<bool>,
    /// The licence has no seat limit.
    pub seats_unlimited: Option<bool>,
    /// Seats in use (`None`: no source configured, or not read).
    pub seats_used: Option<u64>,
    /// Where the seats in use came from (`None`: no source configured).
    pub seats_used_source: Option<String>,
    /// The appliance's own check says valid (`None`: not read).
    pub check_valid: Option<bool>,
    /// The last licence bundle applied, from the ledger.
    pub last_applied: Option<LastApplied>,
    /// The limits the verdict used.
    pub thresholds: Thresholds,
    /// Everything wrong, worst first.
    pub problems: Vec<Problem>,
    /// The first failure to read, for the caller's exit status.
    #[serde(skip)]
    pub error: Option<Error>,
    /// A source of seats in use is configured but could not be read.
    #[serde(skip)]
    pub seats_unreadable: bool,
}

const DAY: i64 = 86_400;

/// Whole days from `now` to `t`, rounded down (towards minus infinity).
fn days_until(t: Timestamp, now: SystemTime) -> i64 {
    let now = Timestamp::from_system(now).unix_secs() as i64;
    let secs = t.unix_secs() as i64 - now;
    secs.div_euclid(DAY)
}

/// The date part of a time (`2027-01-05`).
fn date(t: Timestamp) -> String {
    let s = t.to_string();
    s.get(..10).map(str::to_string).unwrap_or(s)
}

/// A failure as a problem: UNKNOWN, with its code.
fn unreadable(what: &str, e: &Error) -> Problem {
    Problem {
        problem: problem::UNREADABLE,
        status: Status::Unknown,
        detail: format!("cannot read {what}: {} ({})", e.cause, e.code.as_str()),
        code: Some(e.code.as_str()),
    }
}

/// Ask the appliance and judge: the active licence first; when it cannot
/// be read nothing else is asked (each call may wait for its deadline) and
/// the verdict is UNKNOWN.
pub fn gather(
    appliance: &mut dyn Appliance,
    clock: &Clock,
    th: Thresholds,
    last: Option<LastApplied>,
) -> LicenceStatus {
    let now = clock.now();
    let mut st = LicenceStatus {
        status: Status::Ok,
        text: String::new(),
        checked_at: Timestamp::from_system(now),
        path: appliance.path(),
        appliance: appliance.describe(),
        active: None,
        days_left: None,
        expired: None,
        seats_unlimited: None,
        seats_used: None,
        seats_used_source: None,
        check_valid: None,
        last_applied: last,
        thresholds: th,
        problems: Vec::new(),
        error: None,
        seats_unreadable: false,
    };
    let mut errors = Vec::new();
    match appliance.active() {
        Ok(a) => {
            let days = days_until(a.expire_at, now);
            let expired = now >= a.expire_at.system_time();
            st.days_left = Some(days);
            st.expired = Some(expired);
            st.seats_unlimited = Some(a.seats.is_none());
            st.problems.extend(expiry_problem(&a, days, expired, th));
            st.active = Some(a);
            match appliance.check() {
                Ok(valid) => st.check_valid = Some(valid),
                Err(e) => errors.push(("the appliance's licence check", e)),
            }
            match appliance.seats_used() {
                Ok(Some(s)) => {
                    st.seats_used = Some(s.seats);
                    st.seats_used_source = Some(s.source);
                }
                Ok(None) => {}
                Err(e) => {
                    st.seats_unreadable = true;
                    errors.push(("the seats in use", e));
                }
            }
        }
        Err(e) => errors.push(("the active licence", e)),
    }
    judge(&mut st, errors);
    st
}

/// Add the problems the readings show, and the failures to read; then the
/// verdict (the worst problem's) and the text.
fn judge(st: &mut LicenceStatus, errors: Vec<(&str, Error)>) {
    if st.check_valid == Some(false) {
        st.problems.push(Problem {
            problem: problem::CHECK_INVALID,
            status: Status::Critical,
            detail: "the appliance's own check does not say the licence is valid".into(),
            code: None,
        });
    }
    if let (Some(used), Some(Some(seats))) = (st.seats_used, st.active.as_ref().map(|a| a.seats)) {
        if used > seats {
            st.problems.push(Problem {
                problem: problem::SEATS_EXCEEDED,
                status: Status::Warning,
                detail: format!("{used} seats in use, {seats} licensed"),
                code: None,
            });
        }
    }
    for (what, e) in errors {
        st.problems.push(unreadable(what, &e));
        st.error.get_or_insert(e);
    }
    // Worst first: a monitoring system shows the start of the line.
    st.problems.sort_by_key(|p| std::cmp::Reverse(p.status));
    st.status = st.problems.first().map_or(Status::Ok, |p| p.status);
    st.text = text(st);
}

/// The expiry as a problem, if it is one.
fn expiry_problem(a: &LicenceInfo, days: i64, expired: bool, th: Thresholds) -> Option<Problem> {
    let (name, status) = if expired {
        (problem::EXPIRED, Status::Critical)
    } else if days <= i64::from(th.critical_days) {
        (problem::EXPIRES_CRITICAL, Status::Critical)
    } else if days <= i64::from(th.warning_days) {
        (problem::EXPIRES_SOON, Status::Warning)
    } else {
        return None;
    };
    Some(Problem {
        problem: name,
        status,
        detail: expiry_sentence(a, days, expired),
        code: None,
    })
}

/// `licence REF expires in N days (DATE)` or `licence REF expired at TIME`.
fn expiry_sentence(a: &LicenceInfo, days: i64, expired: bool) -> String {
    if expired {
        format!(
            "licence {} expired at {} ({} day(s) ago): GHES stops serving the web and Git",
            a.reference,
            a.expire_at,
            (-days).max(0)
        )
    } else {
        format!(
            "licence {} expires in {days} days ({})",
            a.reference,
            date(a.expire_at)
        )
    }
}

/// The status line's text: the licence and its expiry first (or why it
/// could not be read), then the other problems, then the seats.
fn text(st: &LicenceStatus) -> String {
    let mut parts = Vec::new();
    if let (Some(a), Some(days), Some(expired)) = (&st.active, st.days_left, st.expired) {
        parts.push(expiry_sentence(a, days, expired));
    }
    parts.extend(
        st.problems
            .iter()
            .filter(|p| {
                !matches!(
                    p.problem,
                    problem::EXPIRED | problem::EXPIRES_CRITICAL | problem::EXPIRES_SOON
                )
            })
            .map(|p| p.detail.clone()),
    );
    if let Some(a) = &st.active {
        let licensed = a
            .seats
            .map_or_else(|| "unlimited".to_string(), |s| s.to_string());
        parts.push(match st.seats_used {
            Some(u) => format!("seats: {u} used of {licensed}"),
            None if st.seats_unreadable => format!("seats: {licensed} licensed"),
            None => format!("seats: {licensed} licensed (in use: no source configured)"),
        });
    }
    parts.join("; ")
}

impl LicenceStatus {
    /// The performance data: days left (thresholds as ranges that alert at
    /// or below them), seats licensed (`U` when unlimited or unknown) and
    /// seats in use (warning above the seats licensed; `U` without a
    /// source).
    pub fn perf(&self) -> Vec<Perf> {
        let at_or_below = |d: u32| Range {
            start: None,
            end: Some(f64::from(d)),
            inside: true,
        };
        let seats = self.active.as_ref().and_then(|a| a.seats);
        let mut used = Perf::new("seats_used", self.seats_used.map(|u| u as f64), Unit::None);
        if let Some(s) = seats {
            used = used.warn(Range::at_most(s as f64));
        }
        vec![
            Perf::new("days_left", self.days_left.map(|d| d as f64), Unit::None)
                .warn(at_or_below(self.thresholds.warning_days))
                .crit(at_or_below(self.thresholds.critical_days)),
            Perf::new("seats", seats.map(|s| s as f64), Unit::None).min(0.0),
            used.min(0.0),
        ]
    }

    /// The one line: `AIRLOCK LICENCE STATUS - text | perfdata`.
    pub fn plugin_line(&self) -> String {
        monitoring::plugin_line(SERVICE, self.status, &self.text, &self.perf())
    }

    /// The metrics for Prometheus' textfile collector: the check's status
    /// and time (as every check writes them), then the licence's. Every
    /// sample has the label `command="licence-status"`. Days left are not a
    /// metric (promtool wants base units): alert on
    /// `airlock_licence_expiry_timestamp_seconds - time()`.
    pub fn metrics(&self) -> Metrics {
        let mut m = monitoring::run_metrics(COMMAND, self.status, self.checked_at.system_time());
        let c = [("command", COMMAND)];
        let flag = |b: bool| f64::from(u8::from(b));
        if let Some(a) = &self.active {
            let path = match self.path {
                Path::Ssh => "ssh",
                Path::ManageApi => "manage-api",
            };
            m.gauge(
                "airlock_licence_info",
                "The active licence's reference number and the way airlock reads it (always 1).",
                &[
                    ("command", COMMAND),
                    ("reference", a.reference.as_str()),
                    ("path", path),
                    ("appliance", self.appliance.as_str()),
                ],
                1.0,
            );
            m.gauge(
                "airlock_licence_expiry_timestamp_seconds",
                "When the active licence expires (Unix time).",
                &c,
                a.expire_at.unix_secs() as f64,
            );
            m.gauge(
                "airlock_licence_seats_unlimited",
                "1 when the active licence has no seat limit, else 0.",
                &c,
                flag(a.seats.is_none()),
            );
            if let Some(s) = a.seats {
                m.gauge(
                    "airlock_licence_seats",
                    "Seats the active licence allows.",
                    &c,
                    s as f64,
                );
            }
        }
        if let Some(u) = self.seats_used {
            m.gauge(
                "airlock_licence_seats_used",
                "Seats in use on the appliance, from the configured source.",
                &c,
                u as f64,
            );
        }
        if let Some(v) = self.check_valid {
            m.gauge(
                "airlock_licence_check_valid",
                "1 when the appliance's own licence check says valid, else 0.",
                &c,
                flag(v),
            );
        }
        self.history_metrics(&mut m);
        m
    }

    /// The last licence applied and the problems, for [`Self::metrics`].
    fn history_metrics(&self, m: &mut Metrics) {
        let flag = |b: bool| f64::from(u8::from(b));
        if let Some(l) = &self.last_applied {
            let lr = [("command", COMMAND), ("reference", l.reference.as_str())];
            m.gauge(
                "airlock_licence_last_applied_timestamp_seconds",
                "When airlock last applied a licence bundle (Unix time), from the ledger.",
                &lr,
                l.applied.unix_secs() as f64,
            );
            m.gauge(
                "airlock_licence_last_applied_confirmed",
                "1 when the appliance's read-back confirmed the last licence applied, else 0.",
                &lr,
                flag(l.confirmed),
            );
        }
        for kind in problem::ALL {
            let on = self.problems.iter().any(|p| p.problem == kind);
            m.gauge(
                "airlock_licence_problem",
                "1 when the licence status has the problem (expired, expires-critical, expires-soon, check-invalid, seats-exceeded, unreadable; docs/errors.md), else 0.",
                &[("command", COMMAND), ("problem", kind)],
                flag(on),
            );
        }
    }

    /// The human form: aligned `name: value` lines, then the problems.
    pub fn human(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut line = |k: &str, v: String| out.push(format!("{:<14}{v}", format!("{k}:")));
        line("status", self.status.to_string());
        match (&self.active, self.days_left, self.expired) {
            (Some(a), Some(d), Some(expired)) => {
                line("licence", a.reference.to_string());
                line(
                    "expires",
                    if expired {
                        format!("{} (expired, {} day(s) ago)", a.expire_at, (-d).max(0))
                    } else {
                        format!("{} (in {d} days)", a.expire_at)
                    },
                );
                line(
                    "seats",
                    a.seats
                        .map_or_else(|| "unlimited".into(), |s| s.to_string()),
                );
            }
            _ => line("licence", "not read".into()),
        }
        line("seats in use", self.seats_in_use_text());
        line("check", self.check_text());
        let path = match self.path {
            Path::Ssh => "ssh",
            Path::ManageApi => "manage-api",
        };
        line("appliance", format!("{} ({path})", self.appliance));
        line("last applied", self.last_applied_text());
        line(
            "thresholds",
            format!(
                "warning at {} days, critical at {} days",
                self.thresholds.warning_days, self.thresholds.critical_days
            ),
        );
        for p in &self.problems {
            out.push(format!(
                "{}: {}: {}",
                p.status.as_str().to_lowercase(),
                p.problem,
                p.detail
            ));
        }
        out
    }

    /// The human form's `seats in use` value.
    fn seats_in_use_text(&self) -> String {
        match (&self.seats_used, &self.seats_used_source) {
            (Some(u), Some(src)) => format!("{u} (from {src})"),
            _ if self.active.is_none() || self.seats_unreadable => "not read".into(),
            _ => "unknown: no source configured".into(),
        }
    }

    /// The human form's `check` value.
    fn check_text(&self) -> String {
        match self.check_valid {
            Some(true) => "valid".into(),
            Some(false) => "NOT valid".into(),
            None => "not read".into(),
        }
    }

    /// The human form's `last applied` value.
    fn last_applied_text(&self) -> String {
        match &self.last_applied {
            Some(l) => format!(
                "{} on {}, {} (bundle sha256 {})",
                l.reference,
                l.applied,
                if l.confirmed {
                    "confirmed"
                } else {
                    "NOT confirmed"
                },
                l.bundle_sha256
            ),
            None => "none recorded".into(),
        }
    }
}

#[cfg(test)]
mod tests;
