//! What Cloud's sync status says of the hand-overs: each instance's view, and the confirmations it settles (the one move of a bundle's life that needs the Cloud client; the stages are `state::lifecycle`'s).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;

use crate::base::error::Result;
use crate::connected::cloud::{parse_sync_date, ServerInstance, SyncStatus};
use crate::format::manifest::{HexDigest, Timestamp};
use crate::state::ledger::{Event, Kind, Ledger, Outcome, Tx};
use crate::state::lifecycle::*;

/// What `cloud status` found and recorded for one instance.
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
    pub newly_confirmed: Vec<HexDigest>,
    /// Outbox files moved into `superseded/` or `confirmed/` by this run.
    pub moved: Vec<String>,
    /// Files that could not be moved, with the reason.
    pub move_errors: Vec<String>,
    /// Whether airlock exported or imported this instance (records of
    /// GitHub's own reports do not count).
    pub known: bool,
}

/// airlock's own records (not GitHub's reports).
pub fn is_own(e: &Event) -> bool {
    matches!(e.kind, Kind::Export | Kind::Import | Kind::Handover)
}

/// Record GitHub's sync status in the ledger; for each instance whose last
/// sync succeeded, confirm the newest bundle handed over before the sync
/// and record the earlier unsettled hand-overs as superseded, then move
/// their outbox files into `confirmed/` and `superseded/` (decision 30).
pub fn apply_sync_status(
    ledger: &mut Ledger,
    status: &SyncStatus,
    now: SystemTime,
) -> Result<Vec<InstanceSync>> {
    let events = ledger.events()?;
    let settled: HashSet<HexDigest> = events
        .iter()
        .filter(|e| e.kind == Kind::Confirm)
        .filter_map(|e| e.bundle_sha256.clone())
        .collect();
    let mut out = Vec::new();
    for inst in &status.server_instances {
        out.push(apply_instance(ledger, &events, &settled, inst, now)?);
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
/// said and settle the hand-overs its successful sync covers; then move
/// the settled hand-overs' files out of the outbox's top level.
fn apply_instance(
    ledger: &mut Ledger,
    events: &[Event],
    settled: &HashSet<HexDigest>,
    inst: &ServerInstance,
    now: SystemTime,
) -> Result<InstanceSync> {
    let id = inst.server_id.as_str();
    let last = inst.last_sync.as_ref();
    let st = last.and_then(|l| l.status.clone());
    let date = last.and_then(|l| l.date.clone());
    let err = last.and_then(|l| l.error.clone());
    let mine: Vec<&Event> = events
        .iter()
        .filter(|e| e.server_id.as_deref() == Some(id))
        .collect();
    let sync_time = date.as_deref().and_then(parse_sync_date);
    let mut res = InstanceSync {
        server_id: id.into(),
        hostname: inst.hostname.clone(),
        status: st.clone(),
        date: date.clone(),
        error: err.clone(),
        date_unreadable: date.is_some() && sync_time.is_none(),
        confirmed: None,
        superseded: Vec::new(),
        newly_confirmed: Vec::new(),
        moved: Vec::new(),
        move_errors: Vec::new(),
        known: mine.iter().any(|e| is_own(e)),
    };
    let tx = ledger.begin()?;
    record_sync(&tx, &mine, inst, &res, sync_time, now)?;
    let mut retire = (Vec::new(), Vec::new());
    if let (true, Some(sync_time)) = (is_success(st.as_deref()), sync_time) {
        let before: Vec<&Event> = handovers(&mine)
            .into_iter()
            .filter(|h| h.at.system_time() < sync_time)
            .collect();
        retire = settle(
            &tx,
            &before,
            settled,
            &date.unwrap_or_default(),
            now,
            &mut res,
        )?;
    }
    tx.commit()?;
    for (files, sub) in [(retire.0, CONFIRMED_DIR), (retire.1, SUPERSEDED_DIR)] {
        let (moved, errors) = move_into(&files, sub);
        res.moved
            .extend(moved.iter().map(|p| p.display().to_string()));
        res.move_errors.extend(errors);
    }
    Ok(res)
}

/// Record what GitHub said of `inst` when it differs from what it said last.
fn record_sync(
    tx: &Tx<'_>,
    mine: &[&Event],
    inst: &ServerInstance,
    res: &InstanceSync,
    sync_time: Option<SystemTime>,
    now: SystemTime,
) -> Result<()> {
    let (st, date, err) = (&res.status, &res.date, &res.error);
    let previous = mine
        .iter()
        .filter(|e| e.kind == Kind::CloudSync)
        .max_by_key(|e| e.seq);
    let same = previous.is_some_and(|p| {
        p.github_date == *date && Some(p.outcome.as_str()) == st.as_deref() && p.detail == *err
    });
    if let (false, Some(s)) = (same, st) {
        tx.append(Event {
            host_name: inst.hostname.clone(),
            server_id: Some(res.server_id.clone()),
            github_date: date.clone(),
            sync_time: sync_time.map(Timestamp::from_system),
            detail: err.clone(),
            ..Event::new(
                Kind::CloudSync,
                Outcome::GitHub(s.clone()),
                Timestamp::from_system(now),
            )
        })?;
    }
    Ok(())
}

/// Settle the hand-overs `before` a successful sync dated `d`: the newest
/// is confirmed, the others superseded (each at most once). Notes both in
/// `res`; returns the confirmed and the superseded ones' files, to move
/// once the transaction is committed.
fn settle(
    tx: &Tx<'_>,
    before: &[&Event],
    settled: &HashSet<HexDigest>,
    d: &str,
    now: SystemTime,
    res: &mut InstanceSync,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut confirmed, mut superseded) = (Vec::new(), Vec::new());
    let Some(top) = newest(before.iter().copied()) else {
        return Ok((confirmed, superseded));
    };
    let is_settled = |e: &Event| {
        e.bundle_sha256
            .as_ref()
            .is_some_and(|s| settled.contains(s))
    };
    if !is_settled(top) {
        tx.append(confirm_record(
            top,
            Outcome::Confirmed,
            now,
            format!(
                "GitHub reports a successful sync at {d}, after this hand-over ({}), the newest of the instance before it",
                top.at
            ),
        ))?;
        let mut h = HandedOver::from_event(top, Standing::Confirmed);
        h.sync_date = res.date.clone();
        confirmed.extend(h.files.iter().map(PathBuf::from));
        res.newly_confirmed.extend(top.bundle_sha256.clone());
        res.confirmed = Some(h);
    }
    for h in before.iter().filter(|h| h.seq != top.seq && !is_settled(h)) {
        tx.append(confirm_record(
            h,
            Outcome::Superseded,
            now,
            format!(
                "superseded: GitHub's successful sync at {d} covers bundle {} (created {}), handed over after this one",
                top.bundle_id.as_deref().unwrap_or("?"),
                top.created.map(|c| c.to_string()).unwrap_or_else(|| "?".into())
            ),
        ))?;
        let ho = HandedOver::from_event(h, Standing::Superseded);
        superseded.extend(ho.files.iter().map(PathBuf::from));
        res.superseded.push(ho);
    }
    Ok((confirmed, superseded))
}

/// The `confirm` record that settles hand-over `h` with `outcome`: its
/// bundle's fields, dated `now`, no error code.
fn confirm_record(h: &Event, outcome: Outcome, now: SystemTime, detail: String) -> Event {
    Event {
        bundle_sha256: h.bundle_sha256.clone(),
        bundle_id: h.bundle_id.clone(),
        signer: h.signer.clone(),
        principal: h.principal.clone(),
        sequence: h.sequence,
        host_name: h.host_name.clone(),
        server_id: h.server_id.clone(),
        created: h.created,
        expires: h.expires,
        detail: Some(detail),
        ..Event::new(Kind::Confirm, outcome, Timestamp::from_system(now))
    }
}
