//! The fleet view: every instance the ledger has seen, with its last export,
//! import and confirmed sync, its hand-overs and where each stands with
//! GitHub, warnings, and the health check for monitoring.
//!
//! A view only: it reads the ledger's records and writes nothing. Where a
//! hand-over stands is derived by `crate::lifecycle` (decision 30: a
//! successful sync confirms the newest bundle handed over before it, and
//! only that one), which also records GitHub's answers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::bundle::manifest::{
    format_time, BundleId, Fingerprint, HexDigest, LicenceReference, Timestamp,
};
use crate::cloud::{parse_sync_date, ConsumedLicenses, LicensedUser, SeatCounts, UserSink};
use crate::error::Code;
use crate::error::{Error, Result};
use crate::ledger::{Event, Kind, Outcome};
use crate::lifecycle::{is_own, is_success, standings, HandedOver, Standing};
use crate::monitoring::{self, Metrics, Perf, Range, Status, Unit};

/// Thresholds for fleet warnings and the health check.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// The newest import must be confirmed this long after its hand-over.
    pub unconfirmed_after: Duration,
    /// An export must have been seen this recently.
    pub expected_interval: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            unconfirmed_after: Duration::from_secs(3 * 24 * 3600),
            expected_interval: Duration::from_secs(35 * 24 * 3600),
        }
    }
}

/// Health problems, each with its bit in the check's exit status
/// (`16 + the sum of the bits`; docs/errors.md).
mod problem {
    /// GitHub's last sync for the instance failed.
    pub const SYNC_FAILED: &str = "sync-failed";
    /// GitHub's last sync has a date airlock cannot read (or none).
    pub const SYNC_UNREADABLE: &str = "sync-date-unreadable";
    /// The newest import is not confirmed within the limit.
    pub const UNCONFIRMED: &str = "unconfirmed";
    /// No export seen within the expected interval.
    pub const NO_EXPORT: &str = "no-export";

    /// Every problem, in bit order.
    pub const ALL: [&str; 4] = [SYNC_FAILED, SYNC_UNREADABLE, UNCONFIRMED, NO_EXPORT];

    /// The base of every unhealthy exit status.
    pub const BASE: i32 = 16;

    /// The bit of the problem named `kind` in the exit status (0 for an
    /// unknown name).
    pub fn bit(kind: &str) -> i32 {
        match kind {
            SYNC_FAILED | SYNC_UNREADABLE => 1,
            UNCONFIRMED => 2,
            NO_EXPORT => 4,
            _ => 0,
        }
    }
}

/// One health problem of an instance.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Its name: `sync-failed`, `sync-date-unreadable`, `unconfirmed` or
    /// `no-export`.
    pub problem: String,
    /// What is wrong and what to do, one sentence.
    pub detail: String,
}

/// What a mark on the report's timeline shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum MarkKind {
    /// A bundle's creation (seen by the exporter or the importer).
    Export,
    /// A hand-over.
    Import,
    /// GitHub's report of a sync.
    Sync,
    /// An import refused.
    Refused,
}

impl MarkKind {
    /// Its name in the report (CSS class, title).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MarkKind::Export => "export",
            MarkKind::Import => "import",
            MarkKind::Sync => "sync",
            MarkKind::Refused => "refused",
        }
    }
}

/// What happened at a mark.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum MarkState {
    /// An export: the bundle was created.
    Created,
    /// A hand-over: where it stands with GitHub.
    Standing(Standing),
    /// A sync: GitHub's status, and whether it is a success.
    GitHub(String, bool),
    /// A refusal: its error code.
    Refused(String),
}

impl MarkState {
    /// Its text in the report (CSS class, title).
    pub(crate) fn as_str(&self) -> &str {
        match self {
            MarkState::Created => "created",
            MarkState::Standing(s) => s.as_str(),
            MarkState::GitHub(s, _) | MarkState::Refused(s) => s,
        }
    }
}

/// A mark on the report's timeline.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    /// What it shows.
    pub kind: MarkKind,
    /// The exact time (RFC 3339, or GitHub's text for syncs).
    pub time: String,
    /// The bundle it is about (none for syncs).
    pub bundle_id: Option<BundleId>,
    /// What happened.
    pub outcome: MarkState,
}

/// One row of the fleet table.
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    /// The host name: from airlock's own records when any, else GitHub's.
    pub host_name: String,
    /// The server id (a UUID); `None` for an instance known by host name
    /// only.
    pub server_id: Option<String>,
    /// Whether airlock exported or imported this instance; false for an
    /// instance only GitHub reported.
    pub known: bool,
    /// Creation time of the newest bundle exported, or accepted on import,
    /// for the instance.
    pub last_export_created: Option<Timestamp>,
    /// When the newest hand-over happened.
    pub last_import: Option<Timestamp>,
    /// The date of the sync that confirmed the newest confirmed bundle.
    pub last_confirmed_sync: Option<String>,
    /// The newest confirmed hand-over.
    pub last_confirmed: Option<HandedOver>,
    /// The one hand-over to upload (newest, not yet confirmed).
    pub to_upload: Option<HandedOver>,
    /// GitHub's status in the newest sync record (`success`, `failed`, …).
    pub last_sync_status: Option<String>,
    /// The date of that sync, as GitHub gave it.
    pub last_sync_date: Option<String>,
    /// GitHub's error text for that sync.
    pub last_sync_error: Option<String>,
    /// Bundles handed over (each counted once).
    pub imports: usize,
    /// Hand-overs confirmed by a GitHub sync.
    pub confirmed: usize,
    /// Hand-overs settled as superseded (not the file GitHub kept).
    pub superseded: usize,
    /// Imports refused as a rollback or replay (`LEDGER-ROLLBACK`,
    /// `LEDGER-OLDER`).
    pub rollback_attempts: usize,
    /// Every hand-over, oldest first.
    pub handovers: Vec<HandedOver>,
    /// Health problems (what `--check` reports).
    pub problems: Vec<Problem>,
    /// Problems and other things worth a look, as sentences.
    pub warnings: Vec<String>,
    /// Time-ordered marks for the report's timeline.
    #[serde(skip)]
    pub(crate) timeline: Vec<Mark>,
}

fn days(d: Duration) -> u64 {
    d.as_secs() / 86400
}

/// Build the fleet table from a ledger's records.
pub fn fleet(events: &[Event], now: SystemTime, th: Thresholds) -> Vec<Instance> {
    let (by, host_of) = group_by_instance(events);
    by.into_iter()
        .map(|(key, evs)| {
            let host_name = host_of.get(&key).cloned().unwrap_or_else(|| key.clone());
            instance(key, host_name, &evs, now, th)
        })
        .collect()
}

/// Records grouped by instance (the server id when known, else
/// `host:NAME`), in ledger order, and the host name each instance is shown
/// with: the one airlock saw in a bundle over GitHub's.
type Grouped<'a> = (BTreeMap<String, Vec<&'a Event>>, BTreeMap<String, String>);

fn group_by_instance(events: &[Event]) -> Grouped<'_> {
    let mut by: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    let mut host_of: BTreeMap<String, String> = BTreeMap::new();
    for e in events {
        // A licence bundle comes from an enterprise, never an instance
        // (decision 85): it has its own section.
        if e.licence.is_some() {
            continue;
        }
        let key = match (&e.server_id, &e.host_name) {
            (Some(id), _) => id.clone(),
            (None, Some(h)) => format!("host:{h}"),
            _ => continue,
        };
        if let Some(h) = &e.host_name {
            // Prefer the name airlock saw in a bundle over GitHub's.
            if is_own(e) || !host_of.contains_key(&key) {
                host_of.insert(key.clone(), h.clone());
            }
        }
        by.entry(key).or_default().push(e);
    }
    (by, host_of)
}

fn is(e: &Event, k: Kind, o: Outcome) -> bool {
    e.kind == k && e.outcome == o
}

/// One row of the fleet table, from the records of one instance.
fn instance(
    key: String,
    host_name: String,
    evs: &[&Event],
    now: SystemTime,
    th: Thresholds,
) -> Instance {
    let known = evs.iter().any(|e| is_own(e));
    let last_export_created = evs
        .iter()
        .filter(|e| {
            is(e, Kind::Import, Outcome::Accepted) || is(e, Kind::Export, Outcome::Exported)
        })
        .filter_map(|e| e.created)
        .max();
    let handed = standings(evs);
    let syncs: Vec<&Event> = evs
        .iter()
        .copied()
        .filter(|e| e.kind == Kind::CloudSync)
        .collect();
    let last_import = handed.iter().map(|h| h.handed_over).max();
    let last_confirmed = handed
        .iter()
        .rev()
        .find(|h| h.state == Standing::Confirmed)
        .cloned();
    let to_upload = handed
        .iter()
        .find(|h| h.state == Standing::Pending)
        .cloned();
    let latest_sync = syncs.iter().copied().max_by_key(|e| e.seq);
    // Refusals as a rollback or replay; bundles superseded within a batch
    // are recorded as superseded, not here.
    let rollback_attempts = evs
        .iter()
        .filter(|e| is(e, Kind::Import, Outcome::Rejected))
        .filter(|e| {
            let code = e.code.as_deref();
            code == Some(Code::LedgerRollback.as_str()) || code == Some(Code::LedgerOlder.as_str())
        })
        .count();
    let mut problems = sync_problems(latest_sync);
    problems.extend(unconfirmed_problem(to_upload.as_ref(), now, th));
    if known {
        problems.extend(no_export_problem(last_export_created, now, th));
    }
    let warnings = warnings(&problems, &handed, rollback_attempts);
    let timeline = timeline(evs, &handed);
    let count = |st: Standing| handed.iter().filter(|h| h.state == st).count();
    Instance {
        host_name,
        server_id: (!key.starts_with("host:")).then(|| key.clone()),
        known,
        last_export_created,
        last_import,
        last_confirmed_sync: last_confirmed.as_ref().and_then(|c| c.sync_date.clone()),
        last_confirmed,
        to_upload,
        last_sync_status: latest_sync.map(|e| e.outcome.to_string()),
        last_sync_date: latest_sync.and_then(|e| e.github_date.clone()),
        last_sync_error: latest_sync.and_then(|e| e.detail.clone()),
        imports: handed.len(),
        confirmed: count(Standing::Confirmed),
        superseded: count(Standing::Superseded),
        rollback_attempts,
        handovers: handed,
        problems,
        warnings,
        timeline,
    }
}

/// GitHub's newest sync record as a problem: failed, or successful with a
/// date airlock cannot read.
fn sync_problems(latest_sync: Option<&Event>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(s) = latest_sync {
        let date = s.github_date.clone().unwrap_or_else(|| "no date".into());
        if !is_success(Some(s.outcome.as_str())) {
            problems.push(Problem {
                problem: problem::SYNC_FAILED.into(),
                detail: format!(
                    "last sync on GitHub {} ({date}): {}",
                    s.outcome,
                    s.detail.clone().unwrap_or_else(|| "no error text".into())
                ),
            });
        } else if s.github_date.as_deref().and_then(parse_sync_date).is_none() {
            problems.push(Problem {
                problem: problem::SYNC_UNREADABLE.into(),
                detail: format!(
                    "GitHub reports a successful sync dated {date:?}, which airlock cannot read: nothing is confirmed by it"
                ),
            });
        }
    }
    problems
}

/// The pending hand-over, unconfirmed for longer than the limit.
fn unconfirmed_problem(
    to_upload: Option<&HandedOver>,
    now: SystemTime,
    th: Thresholds,
) -> Option<Problem> {
    let p = to_upload?;
    let age = now
        .duration_since(p.handed_over.system_time())
        .unwrap_or_default();
    if age <= th.unconfirmed_after {
        return None;
    }
    let file = p.upload_files().first().map(|f| f.to_string());
    Some(Problem {
        problem: problem::UNCONFIRMED.into(),
        detail: format!(
            "newest import (bundle {}, handed over {}) not confirmed by GitHub after {} days (limit {}): upload {}, then run `airlock cloud status`",
            p.bundle_id.as_deref().unwrap_or("?"),
            p.handed_over,
            days(age),
            days(th.unconfirmed_after),
            file.unwrap_or_else(|| "its file".into())
        ),
    })
}

/// No bundle created within the expected interval.
fn no_export_problem(
    last_export_created: Option<Timestamp>,
    now: SystemTime,
    th: Thresholds,
) -> Option<Problem> {
    let age = now
        .duration_since(last_export_created?.system_time())
        .unwrap_or_default();
    (age > th.expected_interval).then(|| Problem {
        problem: problem::NO_EXPORT.into(),
        detail: format!(
            "no bundle for {} days (expected every {} days)",
            days(age),
            days(th.expected_interval)
        ),
    })
}

/// The problems, then other things worth a look, as sentences.
fn warnings(problems: &[Problem], handed: &[HandedOver], rollback_attempts: usize) -> Vec<String> {
    let mut warnings: Vec<String> = problems.iter().map(|p| p.detail.clone()).collect();
    let outdated = handed
        .iter()
        .filter(|h| h.state == Standing::Outdated)
        .count();
    if outdated > 0 {
        warnings.push(format!(
            "{outdated} earlier hand-over(s) not confirmed and replaced by a newer one: do not upload them"
        ));
    }
    if rollback_attempts > 0 {
        warnings.push(format!(
            "{rollback_attempts} rollback or replay attempt(s) refused"
        ));
    }
    warnings
}

/// The instance's marks for the report's timeline, in time order.
fn timeline(evs: &[&Event], handed: &[HandedOver]) -> Vec<Mark> {
    let mut timeline: Vec<Mark> = Vec::new();
    let sha_state: HashMap<Option<HexDigest>, Standing> = handed
        .iter()
        .map(|h| (h.bundle_sha256.clone(), h.state))
        .collect();
    for e in evs {
        let mark = |kind: MarkKind, time: String, outcome: MarkState| Mark {
            kind,
            time,
            bundle_id: e.bundle_id.clone(),
            outcome,
        };
        match (e.kind, &e.outcome) {
            (Kind::Import, Outcome::Accepted) | (Kind::Export, Outcome::Exported) => {
                if let Some(c) = e.created {
                    timeline.push(mark(MarkKind::Export, c.to_string(), MarkState::Created));
                }
            }
            (Kind::Handover, Outcome::Done) => {
                let st = sha_state
                    .get(&e.bundle_sha256)
                    .copied()
                    .unwrap_or(Standing::Pending);
                timeline.push(mark(
                    MarkKind::Import,
                    e.at.to_string(),
                    MarkState::Standing(st),
                ));
            }
            (Kind::CloudSync, o) => {
                if let Some(c) = &e.github_date {
                    let ok = is_success(Some(o.as_str()));
                    let st = MarkState::GitHub(o.as_str().to_string(), ok);
                    timeline.push(mark(MarkKind::Sync, c.clone(), st));
                }
            }
            (Kind::Import, Outcome::Rejected) => timeline.push(mark(
                MarkKind::Refused,
                e.at.to_string(),
                MarkState::Refused(e.code.clone().unwrap_or_else(|| "rejected".into())),
            )),
            _ => {}
        }
    }
    // Exports seen both by the exporter's and the importer's ledger
    // are one event.
    let mut once = HashSet::new();
    timeline.retain(|m| once.insert((m.kind, m.time.clone(), m.bundle_id.clone())));
    timeline.sort_by(|a, b| a.time.cmp(&b.time));
    timeline
}

/// One licence bundle exported on the connected side (decision 85).
#[derive(Debug, Clone, Serialize)]
pub struct LicenceExport {
    /// The licence's reference number, as the bundle signed it.
    pub reference: LicenceReference,
    /// When the bundle was exported (the ledger record's time).
    pub exported: Timestamp,
    /// The bundle's creation time, from its manifest.
    pub created: Option<Timestamp>,
    /// The bundle's expiry time: it must be imported before.
    pub expires: Option<Timestamp>,
    /// The bundle id.
    pub bundle_id: Option<BundleId>,
    /// SHA-256 of the bundle file.
    pub bundle_sha256: Option<HexDigest>,
    /// The bundle's sequence number (per signing key).
    pub sequence: Option<u64>,
    /// The fingerprint of the key that signed and numbered it.
    pub signer: Option<Fingerprint>,
}

/// The licence bundles of one enterprise: apart from the instances, with
/// no health check of their own (an enterprise exports a licence once a
/// year or at a seat purchase, never on a schedule).
#[derive(Debug, Clone, Serialize)]
pub struct EnterpriseLicences {
    /// The enterprise slug (the bundle's principal).
    pub enterprise: String,
    /// Its licence bundles, oldest first.
    pub licences: Vec<LicenceExport>,
}

/// The licence bundles the ledger records as exported, per enterprise
/// (by slug), each enterprise's oldest first.
pub fn licences(events: &[Event]) -> Vec<EnterpriseLicences> {
    let mut by: BTreeMap<String, Vec<LicenceExport>> = BTreeMap::new();
    for e in events {
        let Some(l) = &e.licence else { continue };
        if !is(e, Kind::Export, Outcome::Exported) {
            continue;
        }
        let enterprise = e.principal.clone().unwrap_or_else(|| "?".into());
        by.entry(enterprise).or_default().push(LicenceExport {
            reference: l.reference.clone(),
            exported: e.at,
            created: e.created,
            expires: e.expires,
            bundle_id: e.bundle_id.clone(),
            bundle_sha256: e.bundle_sha256.clone(),
            sequence: e.sequence,
            signer: e.signer.clone(),
        });
    }
    by.into_iter()
        .map(|(enterprise, licences)| EnterpriseLicences {
            enterprise,
            licences,
        })
        .collect()
}

/// The health check's verdict over a fleet.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// No instance has a problem.
    pub healthy: bool,
    /// 0 when healthy, else 16 + the sum of the problems' bits.
    pub exit_code: i32,
    /// Instances checked.
    pub instances: usize,
    /// Every problem of every instance, in fleet order.
    pub problems: Vec<InstanceProblem>,
}

/// One health problem, with the instance it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceProblem {
    /// The instance's host name (as in [`Instance`]).
    pub host_name: String,
    /// The instance's server id, if known.
    pub server_id: Option<String>,
    /// The problem's name (as in [`Problem`]).
    pub problem: String,
    /// What is wrong and what to do, one sentence.
    pub detail: String,
}

/// Check every instance.
pub fn health(fleet: &[Instance]) -> Health {
    let mut bits = 0;
    let mut problems = Vec::new();
    for i in fleet {
        for p in &i.problems {
            bits |= problem::bit(&p.problem);
            problems.push(InstanceProblem {
                host_name: i.host_name.clone(),
                server_id: i.server_id.clone(),
                problem: p.problem.clone(),
                detail: p.detail.clone(),
            });
        }
    }
    Health {
        healthy: problems.is_empty(),
        exit_code: if problems.is_empty() {
            0
        } else {
            problem::BASE + bits
        },
        instances: fleet.len(),
        problems,
    }
}

/// The seat-leak list kept from the last `cloud seats` run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SeatReport {
    /// The enterprise slug.
    pub enterprise: String,
    /// When GitHub was asked (RFC 3339).
    pub fetched: String,
    /// Seats in use, as GitHub counts them.
    pub total_seats_consumed: u64,
    /// Seats the enterprise bought.
    pub total_seats_purchased: u64,
    /// Server users that match no Cloud account, in GitHub's order.
    pub unmatched: Vec<UnmatchedUser>,
    /// Users GitHub listed, over all pages (absent in files written before
    /// airlock streamed them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u64>,
}

/// A user with a server account that matched no Cloud account, so it
/// consumes a seat of its own (the primary-email mismatch).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct UnmatchedUser {
    /// The server accounts, as GitHub lists them (`HOSTNAME:ID`).
    pub server_user_ids: Vec<String>,
    /// The accounts' emails on the servers.
    pub server_emails: Vec<String>,
    /// GitHub's license type for the user.
    pub license_type: Option<String>,
}

/// The file in the state directory where `cloud seats` keeps its last
/// [`SeatReport`] (JSON), for `report`.
pub const SEATS_FILE: &str = "cloud-seats.json";

/// The users who hold a server account but match no Cloud account.
pub fn seat_report(enterprise: &str, c: &ConsumedLicenses, now: SystemTime) -> SeatReport {
    SeatReport {
        enterprise: enterprise.into(),
        fetched: format_time(now),
        total_seats_consumed: c.total_seats_consumed,
        total_seats_purchased: c.total_seats_purchased,
        unmatched: c
            .users
            .iter()
            .filter(|u| u.is_unmatched_server_user())
            .map(|u| UnmatchedUser {
                server_user_ids: u.enterprise_server_user_ids.clone(),
                server_emails: u.enterprise_server_emails.clone(),
                license_type: u.license_type.clone(),
            })
            .collect(),
        users: Some(c.users.len() as u64),
    }
}

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
fn perf_names(fleet: &[Instance]) -> Vec<String> {
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

/// The metrics every run writes, also one that could not check (UNKNOWN):
/// its status and time, labelled with the command that wrote them.
pub fn run_metrics(command: &str, status: Status, now: SystemTime) -> Metrics {
    let mut m = Metrics::new();
    let c = [("command", command)];
    m.gauge(
        "airlock_check_status",
        "The health check's Monitoring Plugins status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the check could not run; the other metrics are missing or as last committed).",
        &c,
        status.exit_code() as f64,
    );
    m.gauge(
        "airlock_check_timestamp_seconds",
        "When the check ran (Unix time).",
        &c,
        unix(now),
    );
    m
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
        m.gauge(
            "airlock_seats_used",
            "Seats in use as GitHub counted them at the last `airlock cloud seats`.",
            &c,
            s.total_seats_consumed as f64,
        );
        m.gauge(
            "airlock_seats_purchased",
            "Seats purchased as GitHub counted them at the last `airlock cloud seats`.",
            &c,
            s.total_seats_purchased as f64,
        );
        if let Some(t) = crate::bundle::manifest::parse_time(&s.fetched) {
            m.gauge(
                "airlock_seats_timestamp_seconds",
                "When `airlock cloud seats` last asked GitHub (Unix time).",
                &c,
                unix(t),
            );
        }
    }
    for i in fleet {
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
            m.gauge("airlock_last_confirmed_sync_timestamp_seconds", "GitHub's sync that confirmed the instance's newest confirmed hand-over (Unix time).", &l, unix(t));
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
    m
}

/// The unmatched users of a `cloud seats` run, written out as GitHub's
/// pages come (a [`UserSink`]), so that memory does not grow with them: to
/// a temporary file beside [`SEATS_FILE`] in the state directory (published
/// by [`SeatWriter::finish`]), or to an anonymous one when there is no
/// state directory. The file is a [`SeatReport`] in JSON, one unmatched
/// user a line.
pub struct SeatWriter {
    /// The temporary file to publish; `None`: anonymous, not kept.
    named: Option<tempfile::NamedTempFile>,
    target: Option<std::path::PathBuf>,
    out: std::io::BufWriter<std::fs::File>,
    /// Bytes written and unmatched users, as of the last commit.
    committed: (u64, u64),
    /// Bytes written and unmatched users, now.
    now: (u64, u64),
    enterprise: String,
    fetched: String,
}

/// A `cloud seats` run written out: the counts, and the file to read the
/// unmatched users back from ([`SeatFile::each_unmatched`]).
pub struct SeatFile {
    /// The report without its users (`unmatched` is empty).
    pub summary: SeatReport,
    /// How many unmatched users the file holds.
    pub unmatched: u64,
    file: std::fs::File,
}

impl SeatWriter {
    /// Start the file for `enterprise`, fetched at `now`: in `dir` when it
    /// is a directory (then [`SEATS_FILE`] there is replaced at the end).
    pub fn create(dir: &std::path::Path, enterprise: &str, now: SystemTime) -> Result<SeatWriter> {
        let target = dir.join(SEATS_FILE);
        let (named, file) = if dir.is_dir() {
            let t = crate::fsutil::temp_beside(&target, 0o600)?;
            let f = t
                .as_file()
                .try_clone()
                .map_err(|e| Error::io_write(&target, e))?;
            (Some(t), f)
        } else {
            let f = tempfile::tempfile().map_err(|e| {
                Error::new(Code::IoWrite, format!("cannot make a temporary file: {e}"))
            })?;
            (None, f)
        };
        let mut w = SeatWriter {
            target: named.as_ref().map(|_| target),
            named,
            out: std::io::BufWriter::with_capacity(64 * 1024, file),
            committed: (0, 0),
            now: (0, 0),
            enterprise: enterprise.to_string(),
            fetched: format_time(now),
        };
        let head = format!(
            "{{\n  \"enterprise\": {},\n  \"fetched\": {},\n  \"unmatched\": [",
            json_str(&w.enterprise),
            json_str(&w.fetched)
        );
        w.write(head.as_bytes())?;
        w.committed = w.now;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        use std::io::Write;
        self.out.write_all(b).map_err(|e| self.io_error(e))?;
        self.now.0 += b.len() as u64;
        Ok(())
    }

    fn io_error(&self, e: std::io::Error) -> Error {
        match &self.target {
            Some(t) => Error::io_write(t, e),
            None => Error::new(Code::IoWrite, format!("cannot write a temporary file: {e}")),
        }
    }

    /// Close the JSON with the counts, publish the file (when in the state
    /// directory), and return it for reading back.
    pub fn finish(mut self, c: &SeatCounts) -> Result<SeatFile> {
        use std::io::{Seek, Write};
        let tail = format!(
            "{}  ],\n  \"total_seats_consumed\": {},\n  \"total_seats_purchased\": {},\n  \"users\": {}\n}}\n",
            if self.now.1 > 0 { "\n" } else { "" },
            c.total_seats_consumed,
            c.total_seats_purchased,
            c.users
        );
        self.write(tail.as_bytes())?;
        self.out.flush().map_err(|e| self.io_error(e))?;
        let summary = SeatReport {
            enterprise: self.enterprise.clone(),
            fetched: self.fetched.clone(),
            total_seats_consumed: c.total_seats_consumed,
            total_seats_purchased: c.total_seats_purchased,
            unmatched: Vec::new(),
            users: Some(c.users),
        };
        let unmatched = self.now.1;
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| Error::new(Code::IoWrite, format!("cannot write: {}", e.error())))?;
        if let (Some(t), Some(target)) = (self.named, &self.target) {
            crate::fsutil::publish(t, target, true)?;
        }
        file.rewind()
            .map_err(|e| Error::new(Code::IoRead, format!("cannot read back: {e}")))?;
        Ok(SeatFile {
            summary,
            unmatched,
            file,
        })
    }
}

impl UserSink for SeatWriter {
    fn user(&mut self, u: LicensedUser) -> Result<()> {
        if !u.is_unmatched_server_user() {
            return Ok(());
        }
        let line = serde_json::to_string(&UnmatchedUser {
            server_user_ids: u.enterprise_server_user_ids,
            server_emails: u.enterprise_server_emails,
            license_type: u.license_type,
        })
        .unwrap_or_default();
        let sep = if self.now.1 == 0 { "\n    " } else { ",\n    " };
        self.write(sep.as_bytes())?;
        self.write(line.as_bytes())?;
        self.now.1 += 1;
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        self.committed = self.now;
        Ok(())
    }

    fn rollback(&mut self) -> Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        if self.now == self.committed {
            return Ok(());
        }
        self.out.flush().map_err(|e| self.io_error(e))?;
        let at = self.committed.0;
        let f = self.out.get_mut();
        let res = f
            .set_len(at)
            .and_then(|_| f.seek(SeekFrom::Start(at)).map(drop));
        res.map_err(|e| self.io_error(e))?;
        self.now = self.committed;
        Ok(())
    }
}

impl SeatFile {
    /// Call `f` with each unmatched user, in GitHub's order, read back one
    /// at a time.
    pub fn each_unmatched(&mut self, f: &mut dyn FnMut(UnmatchedUser)) -> Result<()> {
        self.each_line(&mut |line| {
            let l = line.trim().trim_end_matches(',');
            if l.starts_with('{') && l.ends_with('}') && !l.starts_with("{\n") && l.len() > 1 {
                if let Ok(u) = serde_json::from_str::<UnmatchedUser>(l) {
                    f(u);
                }
            }
        })
    }

    /// Call `f` with each line of the file (the report's JSON), from the
    /// start.
    pub fn each_line(&mut self, f: &mut dyn FnMut(&str)) -> Result<()> {
        use std::io::{BufRead, Seek};
        let e = |e: std::io::Error| {
            Error::new(Code::IoRead, format!("cannot read back the seat list: {e}"))
        };
        self.file.rewind().map_err(e)?;
        let mut r = std::io::BufReader::new(&self.file);
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(e)? == 0 {
                return Ok(());
            }
            f(line.trim_end_matches('\n'));
        }
    }
}

/// `s` as a JSON string.
fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
mod tests;
