//! The fleet view: every instance the ledger has seen, with its last export,
//! import and confirmed sync, its hand-overs and where each stands with
//! GitHub, warnings, and the health check for monitoring; and recording
//! what GitHub says about syncs into the ledger (confirmations).
//!
//! What a successful sync proves: GitHub processed *an* upload for the
//! instance at that date. GitHub keeps one usage set per server, replaced by
//! each upload, and airlock's outbox tells the operator to upload only the
//! newest file. So a successful sync confirms the newest bundle handed over
//! for that instance before the sync, and only that one; earlier hand-overs
//! of the instance not yet settled are recorded as superseded (decision 30).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::bundle::manifest::{format_time, parse_time};
use crate::cloud::{parse_sync_date, ConsumedLicenses, ServerInstance, SyncStatus};
use crate::error::{Code, Result};
use crate::ledger::{Event, Kind, Ledger, Outcome, Tx};

/// Where a hand-over stands with GitHub.
mod state {
    /// GitHub's successful sync after it covers it: it is the newest
    /// hand-over of the instance before that sync.
    pub const CONFIRMED: &str = "confirmed";
    /// A newer hand-over of the instance was confirmed: this file was not
    /// the one GitHub kept.
    pub const SUPERSEDED: &str = "superseded";
    /// The newest hand-over of the instance, not yet confirmed: the one
    /// file to upload.
    pub const PENDING: &str = "pending";
    /// Not settled yet, but a newer hand-over exists: do not upload it.
    pub const OUTDATED: &str = "outdated";
}

/// One hand-over of a bundle, and where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct HandedOver {
    /// The bundle id from the signed manifest.
    pub bundle_id: Option<String>,
    /// SHA-256 of the bundle file, lowercase hex: what identifies the
    /// hand-over.
    pub bundle_sha256: Option<String>,
    /// The bundle's creation time.
    pub created: Option<String>,
    /// When it reached the outbox or endpoint.
    pub handed_over: String,
    /// The files in the outbox (payload, then the upload steps), or the
    /// HTTP results.
    pub files: Vec<String>,
    /// `confirmed`, `superseded`, `pending` or `outdated`.
    pub state: String,
    /// For `confirmed`: the date of the sync that confirmed it.
    pub sync_date: Option<String>,
}

impl HandedOver {
    fn from_event(h: &Event, state: &str) -> HandedOver {
        HandedOver {
            bundle_id: h.bundle_id.clone(),
            bundle_sha256: h.bundle_sha256.clone(),
            created: h.created.clone(),
            handed_over: h.at.clone(),
            files: handover_files(h),
            state: state.into(),
            sync_date: None,
        }
    }

    /// The files a person uploads: the payload files, without the steps.
    pub fn upload_files(&self) -> Vec<&str> {
        self.files
            .iter()
            .map(String::as_str)
            .filter(|f| !f.ends_with(".UPLOAD.txt"))
            .collect()
    }
}

/// The paths (or HTTP results) a hand-over record lists.
pub(crate) fn handover_files(h: &Event) -> Vec<String> {
    h.detail
        .as_deref()
        .map(|d| {
            d.split("; ")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// What `cloud status` found for one instance.
#[derive(Debug, Serialize)]
pub struct InstanceSync {
    /// The server id GitHub reports.
    pub server_id: String,
    /// The host name GitHub reports.
    pub hostname: Option<String>,
    /// GitHub's status of the last sync (`success`, `failed`, …); `None`:
    /// no sync yet.
    pub status: Option<String>,
    /// The date of the last sync, as GitHub gives it.
    pub date: Option<String>,
    /// GitHub's error text for the last sync.
    pub error: Option<String>,
    /// GitHub gave a date in no form airlock reads: nothing was confirmed.
    pub date_unreadable: bool,
    /// The bundle this run confirmed, if any.
    pub confirmed: Option<HandedOver>,
    /// Hand-overs this run recorded as superseded.
    pub superseded: Vec<HandedOver>,
    /// SHA-256 of the bundle newly confirmed (zero or one entry).
    pub newly_confirmed: Vec<String>,
    /// Outbox files moved into `superseded/` by this run.
    pub moved: Vec<String>,
    /// Files that could not be moved, with the reason.
    pub move_errors: Vec<String>,
    /// Whether airlock exported or imported this instance (records of
    /// GitHub's own reports do not count).
    pub known: bool,
}

/// A successful sync status.
pub(crate) fn is_success(status: Option<&str>) -> bool {
    status.is_some_and(|s| {
        s.eq_ignore_ascii_case("success")
            || s.eq_ignore_ascii_case("succeeded")
            || s.eq_ignore_ascii_case("completed")
    })
}

fn is_own(e: &Event) -> bool {
    matches!(e.kind, Kind::Export | Kind::Import | Kind::Handover)
}

/// Hand-overs of an instance, once per bundle, in ledger order.
fn handovers<'a>(events: &'a [Event], server_id: &str) -> Vec<&'a Event> {
    let mut seen = HashSet::new();
    events
        .iter()
        .filter(|e| {
            e.kind == Kind::Handover
                && e.outcome == Outcome::Done
                && e.server_id.as_deref() == Some(server_id)
        })
        .filter(|e| seen.insert(e.bundle_sha256.clone()))
        .collect()
}

/// Bundles already confirmed or superseded.
fn settled(events: &[Event]) -> HashMap<String, &Event> {
    events
        .iter()
        .filter(|e| e.kind == Kind::Confirm)
        .filter_map(|e| e.bundle_sha256.clone().map(|s| (s, e)))
        .collect()
}

/// Newest first by bundle creation time, then ledger order.
fn newest<'a>(hs: impl Iterator<Item = &'a Event>) -> Option<&'a Event> {
    hs.max_by(|a, b| (&a.created, a.seq).cmp(&(&b.created, b.seq)))
}

/// Record GitHub's sync status in the ledger; for each instance whose last
/// sync succeeded, confirm the newest bundle handed over before the sync
/// and record the earlier unsettled hand-overs as superseded, then move
/// their outbox files into `superseded/`.
pub fn apply_sync_status(
    ledger: &mut Ledger,
    status: &SyncStatus,
    now: SystemTime,
) -> Result<Vec<InstanceSync>> {
    let events = ledger.events()?;
    let done = settled(&events);
    let mut out = Vec::new();
    for inst in &status.server_instances {
        out.push(apply_instance(ledger, &events, &done, inst, now)?);
    }
    Ok(out)
}

/// GitHub's sync status beside the ledger as committed, without recording
/// anything or settling any hand-over: what `cloud status` shows when
/// another process holds the state directory.
pub fn sync_view(events: &[Event], status: &SyncStatus) -> Vec<InstanceSync> {
    status
        .server_instances
        .iter()
        .map(|inst| {
            let id = inst.server_id.as_str();
            let last = inst.last_sync.as_ref();
            let date = last.and_then(|l| l.date.clone());
            InstanceSync {
                server_id: id.into(),
                hostname: inst.hostname.clone(),
                status: last.and_then(|l| l.status.clone()),
                date_unreadable: date.is_some()
                    && date.as_deref().and_then(parse_sync_date).is_none(),
                date,
                error: last.and_then(|l| l.error.clone()),
                confirmed: None,
                superseded: Vec::new(),
                newly_confirmed: Vec::new(),
                moved: Vec::new(),
                move_errors: Vec::new(),
                known: events
                    .iter()
                    .any(|e| is_own(e) && e.server_id.as_deref() == Some(id)),
            }
        })
        .collect()
}

/// One instance of GitHub's answer: in one transaction, record what GitHub
/// said and settle the hand-overs its successful sync covers; then move the
/// superseded hand-overs' files aside.
fn apply_instance(
    ledger: &mut Ledger,
    events: &[Event],
    done: &HashMap<String, &Event>,
    inst: &ServerInstance,
    now: SystemTime,
) -> Result<InstanceSync> {
    let id = inst.server_id.as_str();
    let last = inst.last_sync.as_ref();
    let st = last.and_then(|l| l.status.clone());
    let date = last.and_then(|l| l.date.clone());
    let err = last.and_then(|l| l.error.clone());
    let known = events
        .iter()
        .any(|e| is_own(e) && e.server_id.as_deref() == Some(id));
    let sync_time = date.as_deref().and_then(parse_sync_date);
    let date_unreadable = date.is_some() && sync_time.is_none();
    let mut res = InstanceSync {
        server_id: id.into(),
        hostname: inst.hostname.clone(),
        status: st.clone(),
        date: date.clone(),
        error: err.clone(),
        date_unreadable,
        confirmed: None,
        superseded: Vec::new(),
        newly_confirmed: Vec::new(),
        moved: Vec::new(),
        move_errors: Vec::new(),
        known,
    };
    let tx = ledger.begin()?;
    // Record what GitHub said when it differs from what it said last.
    let previous = events
        .iter()
        .filter(|e| e.kind == Kind::CloudSync && e.server_id.as_deref() == Some(id))
        .max_by_key(|e| e.seq);
    let same = previous.is_some_and(|p| {
        p.created == date && Some(p.outcome.as_str()) == st.as_deref() && p.detail == err
    });
    if let (false, Some(s)) = (same, &st) {
        tx.append(Event {
            host_name: inst.hostname.clone(),
            server_id: Some(id.into()),
            created: date.clone(),
            detail: err.clone(),
            ..Event::new(
                Kind::CloudSync,
                Outcome::GitHub(s.clone()),
                format_time(now),
            )
        })?;
    }
    let mut retire: Vec<PathBuf> = Vec::new();
    if let (true, Some(sync_time)) = (is_success(st.as_deref()), sync_time) {
        let before: Vec<&Event> = handovers(events, id)
            .into_iter()
            .filter(|h| parse_time(&h.at).is_some_and(|t| t < sync_time))
            .collect();
        retire = settle(&tx, &before, done, &date.unwrap_or_default(), now, &mut res)?;
    }
    tx.commit()?;
    let (moved, errors) = crate::handover::move_aside(&retire);
    res.moved = moved.iter().map(|p| p.display().to_string()).collect();
    res.move_errors = errors;
    Ok(res)
}

/// Settle the hand-overs `before` a successful sync dated `d`: the newest
/// is confirmed, the others superseded (each at most once: `done` are
/// settled already). Notes both in `res`; returns the superseded ones'
/// files, to move aside once the transaction is committed.
fn settle(
    tx: &Tx<'_>,
    before: &[&Event],
    done: &HashMap<String, &Event>,
    d: &str,
    now: SystemTime,
    res: &mut InstanceSync,
) -> Result<Vec<PathBuf>> {
    let mut retire = Vec::new();
    let Some(top) = newest(before.iter().copied()) else {
        return Ok(retire);
    };
    let key = |e: &Event| e.bundle_sha256.clone().unwrap_or_default();
    if !done.contains_key(&key(top)) {
        tx.append(confirm_record(
            top,
            Outcome::Confirmed,
            now,
            format!(
                "GitHub reports a successful sync at {d}, after this hand-over ({}), the newest of the instance before it",
                top.at
            ),
        ))?;
        let mut h = HandedOver::from_event(top, state::CONFIRMED);
        h.sync_date = res.date.clone();
        res.newly_confirmed.push(key(top));
        res.confirmed = Some(h);
    }
    for h in before.iter().filter(|h| h.seq != top.seq) {
        if done.contains_key(&key(h)) {
            continue;
        }
        tx.append(confirm_record(
            h,
            Outcome::Superseded,
            now,
            format!(
                "superseded: GitHub's successful sync at {d} covers bundle {} (created {}), handed over after this one",
                top.bundle_id.as_deref().unwrap_or("?"),
                top.created.as_deref().unwrap_or("?")
            ),
        ))?;
        let ho = HandedOver::from_event(h, state::SUPERSEDED);
        retire.extend(ho.files.iter().map(PathBuf::from));
        res.superseded.push(ho);
    }
    Ok(retire)
}

/// The `confirm` record that settles hand-over `h` with `outcome`: its
/// bundle's fields, dated `now`, no error code.
fn confirm_record(h: &Event, outcome: Outcome, now: SystemTime, detail: String) -> Event {
    let mut c = h.clone();
    c.kind = Kind::Confirm;
    c.outcome = outcome;
    c.at = format_time(now);
    c.code = None;
    c.detail = Some(detail);
    c
}

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

/// A mark on the report's timeline.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Mark {
    /// `export`, `import`, `sync` or `refused`.
    pub kind: String,
    /// The exact time (RFC 3339, or GitHub's text for syncs).
    pub time: String,
    /// The bundle it is about (none for syncs).
    pub bundle_id: Option<String>,
    /// For imports the hand-over's state; for syncs GitHub's status; for
    /// refusals the error code; for exports `created`.
    pub outcome: String,
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
    /// for the instance (RFC 3339).
    pub last_export_created: Option<String>,
    /// When the newest hand-over happened (RFC 3339).
    pub last_import: Option<String>,
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
        .filter_map(|e| e.created.clone())
        .max();
    // Hand-overs, once per bundle.
    let mut seen = HashSet::new();
    let hs: Vec<&Event> = evs
        .iter()
        .copied()
        .filter(|e| is(e, Kind::Handover, Outcome::Done))
        .filter(|e| seen.insert(e.bundle_sha256.clone()))
        .collect();
    let syncs: Vec<&Event> = evs
        .iter()
        .copied()
        .filter(|e| e.kind == Kind::CloudSync)
        .collect();
    let handed = handed_over(evs, &hs, &syncs);
    let last_import = hs.iter().map(|e| e.at.clone()).max();
    let last_confirmed = handed
        .iter()
        .rev()
        .find(|h| h.state == state::CONFIRMED)
        .cloned();
    let to_upload = handed.iter().find(|h| h.state == state::PENDING).cloned();
    let latest_sync = syncs.iter().copied().max_by_key(|e| e.seq);
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
        problems.extend(no_export_problem(last_export_created.as_deref(), now, th));
    }
    let warnings = warnings(&problems, &handed, rollback_attempts);
    let timeline = timeline(evs, &handed);
    let count = |st: &str| handed.iter().filter(|h| h.state == st).count();
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
        last_sync_date: latest_sync.and_then(|e| e.created.clone()),
        last_sync_error: latest_sync.and_then(|e| e.detail.clone()),
        imports: hs.len(),
        confirmed: count(state::CONFIRMED),
        superseded: count(state::SUPERSEDED),
        rollback_attempts,
        handovers: handed,
        problems,
        warnings,
        timeline,
    }
}

/// The hand-overs `hs` of an instance with where each stands, oldest first
/// (by creation time, then hand-over time): settled by a confirm record,
/// else the newest unsettled one is pending and the rest outdated.
fn handed_over(evs: &[&Event], hs: &[&Event], syncs: &[&Event]) -> Vec<HandedOver> {
    let confirms: HashMap<Option<String>, &Event> = evs
        .iter()
        .filter(|e| e.kind == Kind::Confirm)
        .map(|e| (e.bundle_sha256.clone(), *e))
        .collect();
    let unsettled_top = newest(
        hs.iter()
            .copied()
            .filter(|h| !confirms.contains_key(&h.bundle_sha256)),
    )
    .map(|h| h.seq);
    let mut handed: Vec<HandedOver> = hs
        .iter()
        .map(|h| {
            let c = confirms.get(&h.bundle_sha256);
            let st = match c.map(|c| &c.outcome) {
                Some(Outcome::Confirmed) => state::CONFIRMED,
                Some(_) => state::SUPERSEDED,
                None if Some(h.seq) == unsettled_top => state::PENDING,
                None => state::OUTDATED,
            };
            let mut ho = HandedOver::from_event(h, st);
            if st == state::CONFIRMED {
                // The sync recorded last before the confirmation is the
                // one that confirmed it (both in one transaction).
                ho.sync_date = c.and_then(|c| {
                    syncs
                        .iter()
                        .filter(|s| s.seq < c.seq && is_success(Some(s.outcome.as_str())))
                        .max_by_key(|s| s.seq)
                        .and_then(|s| s.created.clone())
                });
            }
            ho
        })
        .collect();
    handed.sort_by(|a, b| (&a.created, &a.handed_over).cmp(&(&b.created, &b.handed_over)));
    handed
}

/// GitHub's newest sync record as a problem: failed, or successful with a
/// date airlock cannot read.
fn sync_problems(latest_sync: Option<&Event>) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(s) = latest_sync {
        let date = s.created.clone().unwrap_or_else(|| "no date".into());
        if !is_success(Some(s.outcome.as_str())) {
            problems.push(Problem {
                problem: problem::SYNC_FAILED.into(),
                detail: format!(
                    "last sync on GitHub {} ({date}): {}",
                    s.outcome,
                    s.detail.clone().unwrap_or_else(|| "no error text".into())
                ),
            });
        } else if s.created.as_deref().and_then(parse_sync_date).is_none() {
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
    let t = parse_time(&p.handed_over)?;
    let age = now.duration_since(t).unwrap_or_default();
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
    last_export_created: Option<&str>,
    now: SystemTime,
    th: Thresholds,
) -> Option<Problem> {
    let t = last_export_created.and_then(parse_time)?;
    let age = now.duration_since(t).unwrap_or_default();
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
    let outdated = handed.iter().filter(|h| h.state == state::OUTDATED).count();
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
    let sha_state: HashMap<Option<String>, String> = handed
        .iter()
        .map(|h| (h.bundle_sha256.clone(), h.state.clone()))
        .collect();
    for e in evs {
        let mark = |k: &str, t: &str, o: &str| Mark {
            kind: k.into(),
            time: t.into(),
            bundle_id: e.bundle_id.clone(),
            outcome: o.into(),
        };
        match (&e.kind, &e.outcome) {
            (Kind::Import, Outcome::Accepted) | (Kind::Export, Outcome::Exported) => {
                if let Some(c) = &e.created {
                    timeline.push(mark("export", c, "created"));
                }
            }
            (Kind::Handover, Outcome::Done) => {
                let st = sha_state
                    .get(&e.bundle_sha256)
                    .cloned()
                    .unwrap_or_else(|| state::PENDING.into());
                timeline.push(mark("import", &e.at, &st));
            }
            (Kind::CloudSync, o) => {
                if let Some(c) = &e.created {
                    timeline.push(mark("sync", c, o.as_str()));
                }
            }
            (Kind::Import, Outcome::Rejected) => timeline.push(mark(
                "refused",
                &e.at,
                e.code.as_deref().unwrap_or("rejected"),
            )),
            _ => {}
        }
    }
    // Exports seen both by the exporter's and the importer's ledger
    // are one event.
    let mut once = HashSet::new();
    timeline.retain(|m| once.insert((m.kind.clone(), m.time.clone(), m.bundle_id.clone())));
    timeline.sort_by(|a, b| a.time.cmp(&b.time));
    timeline
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{LastSync, ServerInstance};

    const ID: &str = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

    fn handover(l: &mut Ledger, n: u32, at: &str) {
        let mut e = Event {
            bundle_sha256: Some(format!("sha{n}")),
            bundle_id: Some(format!("b{n}")),
            host_name: Some("ghes.example.com".into()),
            server_id: Some(ID.into()),
            created: Some(format!("2026-11-0{n}T00:00:00Z")),
            detail: Some(format!(
                "/nowhere/out/f{n}.json; /nowhere/out/f{n}.UPLOAD.txt"
            )),
            ..Event::new(Kind::Handover, Outcome::Done, at.into())
        };
        e.kind = Kind::Import;
        e.outcome = Outcome::Accepted;
        l.append(e.clone()).unwrap();
        e.kind = Kind::Handover;
        e.outcome = Outcome::Done;
        l.append(e).unwrap();
    }

    fn status(date: &str, st: &str) -> SyncStatus {
        SyncStatus {
            server_instances: vec![ServerInstance {
                server_id: ID.into(),
                hostname: Some("ghes.example.com".into()),
                last_sync: Some(LastSync {
                    date: Some(date.into()),
                    status: Some(st.into()),
                    error: None,
                }),
            }],
            warnings: vec![],
        }
    }

    fn at(s: &str) -> SystemTime {
        parse_time(s).unwrap()
    }

    #[test]
    fn one_sync_confirms_the_newest_and_supersedes_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(d.path()).unwrap();
        for n in 1..=4 {
            handover(&mut l, n, &format!("2026-11-0{n}T01:00:00Z"));
        }
        // A fifth, handed over after the sync: stays pending.
        handover(&mut l, 6, "2026-11-06T01:00:00Z");
        let now = at("2026-11-07T00:00:00Z");
        let r = apply_sync_status(&mut l, &status("2026-11-05T00:00:00Z", "success"), now).unwrap();
        assert_eq!(
            r[0].confirmed.as_ref().unwrap().bundle_id.as_deref(),
            Some("b4")
        );
        let sup: Vec<_> = r[0]
            .superseded
            .iter()
            .map(|h| h.bundle_id.clone().unwrap())
            .collect();
        assert_eq!(sup, ["b1", "b2", "b3"]);
        // Files not there: reported, nothing else touched.
        assert_eq!(r[0].move_errors.len(), 0, "missing files are not errors");
        // Again: nothing new.
        let r = apply_sync_status(&mut l, &status("2026-11-05T00:00:00Z", "success"), now).unwrap();
        assert!(r[0].confirmed.is_none() && r[0].superseded.is_empty());
        let f = fleet(&l.events().unwrap(), now, Thresholds::default());
        assert_eq!(f.len(), 1);
        let i = &f[0];
        assert_eq!(i.confirmed, 1);
        assert_eq!(i.superseded, 3);
        assert_eq!(
            i.last_confirmed.as_ref().unwrap().bundle_id.as_deref(),
            Some("b4")
        );
        assert_eq!(
            i.last_confirmed_sync.as_deref(),
            Some("2026-11-05T00:00:00Z")
        );
        assert_eq!(
            i.to_upload.as_ref().unwrap().bundle_id.as_deref(),
            Some("b6")
        );
        assert_eq!(
            i.to_upload.as_ref().unwrap().upload_files(),
            ["/nowhere/out/f6.json"]
        );
        assert!(i.problems.is_empty(), "{:?}", i.problems);
        // Past the limit, the pending one is a problem.
        let late = at("2026-11-20T00:00:00Z");
        let f = fleet(&l.events().unwrap(), late, Thresholds::default());
        assert_eq!(f[0].problems[0].problem, problem::UNCONFIRMED);
        let h = health(&f);
        assert_eq!(h.exit_code, 16 + 2);
    }

    #[test]
    fn failed_and_unreadable_syncs_confirm_nothing_and_are_problems() {
        let d = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(d.path()).unwrap();
        handover(&mut l, 1, "2026-11-01T01:00:00Z");
        let now = at("2026-11-02T00:00:00Z");
        let r = apply_sync_status(&mut l, &status("2026-11-01T05:00:00Z", "failed"), now).unwrap();
        assert!(r[0].confirmed.is_none());
        let h = health(&fleet(&l.events().unwrap(), now, Thresholds::default()));
        assert_eq!(h.exit_code, 17);
        let r = apply_sync_status(&mut l, &status("1 Nov 2026", "success"), now).unwrap();
        assert!(r[0].date_unreadable && r[0].confirmed.is_none());
        let f = fleet(&l.events().unwrap(), now, Thresholds::default());
        assert_eq!(f[0].problems[0].problem, problem::SYNC_UNREADABLE);
        // The Ruby form is read.
        let r =
            apply_sync_status(&mut l, &status("2026-11-01 05:00:00 UTC", "success"), now).unwrap();
        assert_eq!(
            r[0].confirmed.as_ref().unwrap().bundle_id.as_deref(),
            Some("b1")
        );
        assert!(health(&fleet(&l.events().unwrap(), now, Thresholds::default())).healthy);
    }
}
