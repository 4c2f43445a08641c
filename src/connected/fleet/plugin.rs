//! The monitoring-plugin report and metrics of the fleet.

use super::*;

/// The service name in the Monitoring Plugins status line.
pub const SERVICE: &str = "AIRLOCK";

/// The health check for a monitoring system (decision 78): the Monitoring
/// Plugins verdict, its text and its performance data.
#[derive(Debug, Clone)]
pub struct PluginReport {
    /// OK; WARNING for an unconfirmed import; CRITICAL for a failed or
    /// unreadable sync, or exports that stopped.
    pub status: Status,
    /// The text of the status line, before the performance data.
    pub text: String,
    /// The performance data.
    pub perf: Vec<Perf>,
}

impl PluginReport {
    /// The one line: `AIRLOCK STATUS - text | perfdata`.
    pub fn line(&self) -> String {
        monitoring::plugin_line(SERVICE, self.status, &self.text, &self.perf)
    }
}

/// The Monitoring Plugins status of a problem: an unconfirmed import can
/// still be uploaded in time (WARNING); a failed or unreadable sync and
/// stopped exports need someone now (CRITICAL).
pub fn problem_status(kind: &str) -> Status {
    match kind {
        problem::UNCONFIRMED => Status::Warning,
        _ => Status::Critical,
    }
}

/// Unix seconds of `t` (0 before 1970).
fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as f64
}

/// When GitHub's sync that confirmed the instance's newest confirmed
/// hand-over happened, if airlock reads its date.
fn confirmed_sync_time(i: &Instance) -> Option<SystemTime> {
    i.last_confirmed_sync.as_deref().and_then(parse_sync_date)
}

/// Each instance's name in performance data: its host name, followed by
/// its server id when another instance shows the same host name, so labels
/// stay unique.
pub(super) fn perf_names(fleet: &[Instance]) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for i in fleet {
        *count.entry(i.host_name.as_str()).or_default() += 1;
    }
    fleet
        .iter()
        .map(|i| match (&i.server_id, count[i.host_name.as_str()] > 1) {
            (Some(id), true) => format!("{} {id}", i.host_name),
            _ => i.host_name.clone(),
        })
        .collect()
}

/// How many instances have one of the problems `kinds`.
fn instances_with(fleet: &[Instance], kinds: &[&str]) -> f64 {
    fleet
        .iter()
        .filter(|i| {
            i.problems
                .iter()
                .any(|p| kinds.contains(&p.problem.as_str()))
        })
        .count() as f64
}

/// The health check as a Monitoring Plugins report: the worst problem's
/// status, every problem in the text (worst first: a monitoring system
/// shows the start of the line), the seat counts of the last `cloud seats`
/// (or that there are none), and performance data.
pub fn plugin_report(
    fleet: &[Instance],
    seats: Option<&SeatReport>,
    now: SystemTime,
) -> PluginReport {
    let mut found: Vec<(Status, String)> = fleet
        .iter()
        .flat_map(|i| {
            i.problems.iter().map(move |p| {
                let s = problem_status(&p.problem);
                (s, format!("{}: {}: {}", i.host_name, p.problem, p.detail))
            })
        })
        .collect();
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    let status = found.first().map_or(Status::Ok, |f| f.0);
    let mut text = match found.is_empty() {
        true => format!("{} instance(s) healthy", fleet.len()),
        false => format!(
            "{} problem(s), {} instance(s) checked: {}",
            found.len(),
            fleet.len(),
            found
                .iter()
                .map(|f| f.1.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    text.push_str(&match seats {
        Some(s) => format!(
            "; seats: {} used of {} purchased (cloud seats of {})",
            s.total_seats_consumed, s.total_seats_purchased, s.fetched
        ),
        None => "; seats: not known, run `airlock cloud seats`".into(),
    });
    PluginReport {
        status,
        text,
        perf: plugin_perf(fleet, seats, now),
    }
}

/// The performance data: counts (stale = no export within the expected
/// interval), seats (`U` when `cloud seats` never ran), and each instance's
/// age of its last confirmed sync in seconds (`U` when none).
fn plugin_perf(fleet: &[Instance], seats: Option<&SeatReport>, now: SystemTime) -> Vec<Perf> {
    let zero = Range::at_most(0.0);
    let count = |label: &str, v: f64| Perf::new(label, Some(v), Unit::None).min(0.0);
    let mut perf = vec![
        count("instances", fleet.len() as f64),
        count(
            "stale_instances",
            instances_with(fleet, &[problem::NO_EXPORT]),
        )
        .crit(zero),
        count(
            "unconfirmed_instances",
            instances_with(fleet, &[problem::UNCONFIRMED]),
        )
        .warn(zero),
        count(
            "sync_failed_instances",
            instances_with(fleet, &[problem::SYNC_FAILED, problem::SYNC_UNREADABLE]),
        )
        .crit(zero),
        Perf::new(
            "seats_used",
            seats.map(|s| s.total_seats_consumed as f64),
            Unit::None,
        )
        .min(0.0),
        Perf::new(
            "seats_purchased",
            seats.map(|s| s.total_seats_purchased as f64),
            Unit::None,
        )
        .min(0.0),
    ];
    for (i, name) in fleet.iter().zip(perf_names(fleet)) {
        let age = confirmed_sync_time(i).map(|t| unix(now) - unix(t).min(unix(now)));
        perf.push(Perf::new(format!("{name} last_sync_age"), age, Unit::Seconds).min(0.0));
    }
    perf
}

/// The fleet's metrics for Prometheus' textfile collector. Every sample
/// has the label `command` (so `fleet` and `cloud status` may both write
/// to one collector); per-instance samples also `host_name` and
/// `server_id` (empty when not known).
pub fn metrics(
    fleet: &[Instance],
    seats: Option<&SeatReport>,
    status: Status,
    command: &str,
    now: SystemTime,
) -> Metrics {
    let mut m = run_metrics(command, status, now);
    let c = [("command", command)];
    m.gauge(
        "airlock_instances",
        "Instances in the ledger: exported, imported or reported by GitHub.",
        &c,
        fleet.len() as f64,
    );
    m.gauge(
        "airlock_stale_instances",
        "Instances with no bundle created within the expected interval.",
        &c,
        instances_with(fleet, &[problem::NO_EXPORT]),
    );
    if let Some(s) = seats {
        seat_metrics(&mut m, s, &c);
    }
    for i in fleet {
        instance_metrics(&mut m, i, command);
    }
    m
}

/// The seat totals of the last `airlock cloud seats`.
fn seat_metrics(m: &mut Metrics, s: &SeatReport, c: &[(&str, &str)]) {
    m.gauge(
        "airlock_seats_used",
        "Seats in use as GitHub counted them at the last `airlock cloud seats`.",
        c,
        s.total_seats_consumed as f64,
    );
    m.gauge(
        "airlock_seats_purchased",
        "Seats purchased as GitHub counted them at the last `airlock cloud seats`.",
        c,
        s.total_seats_purchased as f64,
    );
    if let Some(t) = crate::format::manifest::parse_time(&s.fetched) {
        m.gauge(
            "airlock_seats_timestamp_seconds",
            "When `airlock cloud seats` last asked GitHub (Unix time).",
            c,
            unix(t),
        );
    }
}

/// One instance's samples.
fn instance_metrics(m: &mut Metrics, i: &Instance, command: &str) {
    let id = i.server_id.as_deref().unwrap_or("");
    let l = [
        ("command", command),
        ("host_name", i.host_name.as_str()),
        ("server_id", id),
    ];
    for kind in problem::ALL {
        let on = i.problems.iter().any(|p| p.problem == kind);
        let mut pl = l.to_vec();
        pl.push(("problem", kind));
        m.gauge("airlock_instance_problem", "1 when the instance has the problem (sync-failed, sync-date-unreadable, unconfirmed, no-export; docs/errors.md), else 0.", &pl, f64::from(u8::from(on)));
    }
    m.gauge("airlock_upload_pending", "1 when a hand-over of the instance waits for its upload to GitHub to be confirmed, else 0.", &l, f64::from(u8::from(i.to_upload.is_some())));
    if let Some(t) = confirmed_sync_time(i) {
        m.gauge(
            "airlock_last_confirmed_sync_timestamp_seconds",
            "GitHub's sync that confirmed the instance's newest confirmed hand-over (Unix time).",
            &l,
            unix(t),
        );
    }
    if let Some(t) = i.last_export_created {
        m.gauge(
            "airlock_last_export_timestamp_seconds",
            "Creation time of the instance's newest bundle (Unix time).",
            &l,
            unix(t.system_time()),
        );
    }
}
