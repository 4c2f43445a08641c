//! The fleet view: every instance the ledger has seen, with its last export,
//! import and confirmed sync, its hand-overs and where each stands with
//! GitHub, warnings, and the health check for monitoring.
//!
//! A view only: it reads the ledger's records and writes nothing. Where a
//! hand-over stands is derived by `crate::state::lifecycle` (decision 30: a
//! successful sync confirms the newest bundle handed over before it, and
//! only that one), which also records GitHub's answers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::base::error::Code;
use crate::base::error::{Error, Result};
use crate::connected::cloud::{
    parse_sync_date, ConsumedLicenses, LicensedUser, SeatCounts, UserSink,
};
use crate::connected::confirm::is_own;
use crate::format::manifest::{
    format_time, BundleId, Fingerprint, HexDigest, LicenceReference, Timestamp,
};
pub use crate::format::monitoring::run_metrics;
use crate::format::monitoring::{self, Metrics, Perf, Range, Status, Unit};
use crate::state::ledger::{Event, Kind, Outcome};
use crate::state::lifecycle::{is_success, standings, HandedOver, Standing};

mod plugin;
mod seats;
pub use plugin::*;
pub use seats::*;

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
    let last_export_created = last_export_created(evs);
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
    let rollback_attempts = rollback_attempts(evs);
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

/// The newest creation time of a bundle of the instance, exported here or
/// imported.
fn last_export_created(evs: &[&Event]) -> Option<Timestamp> {
    evs.iter()
        .filter(|e| {
            is(e, Kind::Import, Outcome::Accepted) || is(e, Kind::Export, Outcome::Exported)
        })
        .filter_map(|e| e.created)
        .max()
}

/// Refusals as a rollback or replay; bundles superseded within a batch are
/// recorded as superseded, not here.
fn rollback_attempts(evs: &[&Event]) -> usize {
    evs.iter()
        .filter(|e| is(e, Kind::Import, Outcome::Rejected))
        .filter(|e| {
            let code = e.code.as_deref();
            code == Some(Code::LedgerRollback.as_str()) || code == Some(Code::LedgerOlder.as_str())
        })
        .count()
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

#[cfg(test)]
mod tests;
