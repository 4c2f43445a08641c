//! A bundle's life on the connected side after the verifying read: its
//! typed states, and every transition between them, in one place.
//!
//! ```text
//!  (watch only)                       import / import DIR / watch
//!  arrived ──claim──▶ claimed ──open, verify, stage──▶ verified+staged
//!     │                  │                                  │
//!     │ (never a         │ refused by the container,        │ ledger rules
//!     │  trailer)        │ signatures, trust, digests…      ├──────────────▶ refused ──▶ quarantined (watch)
//!     ▼                  ▼                                  │  (older than a bundle accepted in
//!  quarantined        refused ──▶ quarantined (watch)       │   the same batch: superseded)
//!                                                           ▼
//!                                                       accepted
//!                                                           │ outbox: rename (under the state lock)
//!                                                           │ HTTP: lease (pid, time), lock released
//!                                                           ▼
//!                                            handing over ──failed──▶ accepted (a re-run resumes)
//!                                                           │
//!                                                           ▼
//!                                                      handed over (per file: outbox path or HTTP result)
//!                                                           │ GitHub's successful sync (cloud status)
//!                                              ┌────────────┴────────────┐
//!                                              ▼                         ▼
//!                                          confirmed                superseded
//!                                  (file to outbox/confirmed/)  (file to outbox/superseded/)
//! ```
//!
//! The ledger is the only store: each transition that outlives a process
//! is one appended record (`crate::state::ledger`), and a bundle's stage is
//! derived from its records ([`stage_of`]). `arrived`, `claimed` and
//! `quarantined` are places in the drop folder (the watcher), not
//! records. `fleet` and `report` only read what is derived here.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::base::error::{Code, Error, Result};
use crate::format::manifest::{BundleId, HexDigest, Manifest, Timestamp};
use crate::io::fsutil;
use crate::state::ledger::{Event, Kind, Ledger, Outcome, ReadFacts, Tx};
use crate::verify::{check_freshness, Refusal, Verified, VerifyOptions};

/// Where a bundle is in its life, as its ledger records say (the diagram
/// above; arrived, claimed and quarantined are places in the watcher's drop
/// folder, not records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Refused: by verification or by a ledger rule.
    Refused,
    /// Genuine, but not handed over: a newer bundle of its instance was
    /// accepted first.
    NotHandedOver,
    /// Verified and accepted by the ledger rules, not handed over (yet, or
    /// a hand-over failed and a re-run resumes it).
    Accepted,
    /// Being handed over by another process now (HTTP): its lease.
    HandingOver(Lease),
    /// Handed over: outbox paths or HTTP results, one per file.
    HandedOver(Vec<String>),
    /// GitHub's successful sync covers it.
    Confirmed,
    /// Handed over, but GitHub kept a newer hand-over of the instance.
    Superseded,
}

/// A hand-over in flight: the process doing it and since when. It is
/// respected while that process lives and for at most [`LEASE_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The process handing the bundle over.
    pub pid: u32,
    /// When it started.
    pub since: Timestamp,
}

/// The longest a lease is respected, whatever its process: far above any
/// hand-over's deadline, so a live lease always means work in progress.
pub const LEASE_MAX: Duration = Duration::from_secs(3600);

impl Lease {
    /// Still held: its process runs (on this host) and it is younger than
    /// [`LEASE_MAX`]. A lease of this very process is not live (a crash
    /// left it, and this process is the one resuming it).
    pub fn is_live(&self, now: SystemTime) -> bool {
        let young = now
            .duration_since(self.since.system_time())
            .map_or(true, |age| age < LEASE_MAX);
        young && fsutil::other_process_running(self.pid)
    }
}

/// A bundle's stage from the ledger's records (`None`: never seen).
pub fn stage_of(events: &[Event], sha: &HexDigest) -> Option<Stage> {
    let mut stage = None;
    for e in events
        .iter()
        .filter(|e| e.bundle_sha256.as_ref() == Some(sha))
    {
        stage = match (e.kind, &e.outcome, stage) {
            (Kind::Import, Outcome::Rejected, s @ Some(_)) => s,
            (Kind::Import, Outcome::Rejected, None) => Some(Stage::Refused),
            (Kind::Import, Outcome::Accepted, _) => Some(Stage::Accepted),
            (Kind::Import, Outcome::Superseded, Some(Stage::Accepted))
            | (Kind::Import, Outcome::Superseded, None) => Some(Stage::NotHandedOver),
            (Kind::Handover, Outcome::Started, _) => Some(Stage::HandingOver(Lease {
                pid: e.lease_pid.unwrap_or(0),
                since: e.at,
            })),
            (Kind::Handover, Outcome::Failed, _) => Some(Stage::Accepted),
            (Kind::Handover, Outcome::Done, _) => Some(Stage::HandedOver(e.files.clone())),
            (Kind::Confirm, Outcome::Confirmed, _) => Some(Stage::Confirmed),
            (Kind::Confirm, Outcome::Superseded, _) => Some(Stage::Superseded),
            (_, _, s) => s,
        };
    }
    stage
}

/// Where a handed-over bundle stands with GitHub (`fleet`, `report`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standing {
    /// GitHub's successful sync after it covers it: it is the newest
    /// hand-over of the instance before that sync.
    Confirmed,
    /// A newer hand-over of the instance was confirmed: this file was not
    /// the one GitHub kept.
    Superseded,
    /// The newest hand-over of the instance, not yet confirmed: the one
    /// file to upload.
    Pending,
    /// Not settled yet, but a newer hand-over exists: do not upload it.
    Outdated,
}

impl Standing {
    /// The name shown and serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Confirmed => "confirmed",
            Standing::Superseded => "superseded",
            Standing::Pending => "pending",
            Standing::Outdated => "outdated",
        }
    }
}

impl std::fmt::Display for Standing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One hand-over of a bundle, and where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct HandedOver {
    /// The bundle id from the signed manifest.
    pub bundle_id: Option<BundleId>,
    /// SHA-256 of the bundle file: what identifies the hand-over.
    pub bundle_sha256: Option<HexDigest>,
    /// The bundle's creation time.
    pub created: Option<Timestamp>,
    /// When it reached the outbox or endpoint.
    pub handed_over: Timestamp,
    /// The files in the outbox (payload, then the upload steps), or the
    /// HTTP results.
    pub files: Vec<String>,
    /// Where it stands.
    pub state: Standing,
    /// For `confirmed`: the date of the sync that confirmed it, as GitHub
    /// gave it.
    pub sync_date: Option<String>,
}

impl HandedOver {
    pub(crate) fn from_event(h: &Event, state: Standing) -> HandedOver {
        HandedOver {
            bundle_id: h.bundle_id.clone(),
            bundle_sha256: h.bundle_sha256.clone(),
            created: h.created,
            handed_over: h.at,
            files: h.files.clone(),
            state,
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

/// A successful sync status.
pub fn is_success(status: Option<&str>) -> bool {
    status.is_some_and(|s| {
        s.eq_ignore_ascii_case("success")
            || s.eq_ignore_ascii_case("succeeded")
            || s.eq_ignore_ascii_case("completed")
    })
}

/// Newest first by bundle creation time, then ledger order.
pub(crate) fn newest<'a>(hs: impl Iterator<Item = &'a Event>) -> Option<&'a Event> {
    hs.max_by(|a, b| (&a.created, a.seq).cmp(&(&b.created, b.seq)))
}

/// Hand-over records of one instance's records `evs`, once per bundle, in
/// ledger order.
pub fn handovers<'a>(evs: &[&'a Event]) -> Vec<&'a Event> {
    let mut seen = HashSet::new();
    evs.iter()
        .copied()
        .filter(|e| e.kind == Kind::Handover && e.outcome == Outcome::Done)
        .filter(|e| seen.insert(e.bundle_sha256.clone()))
        .collect()
}

/// The hand-overs of one instance (its records `evs`) with where each
/// stands, oldest first (by creation time, then hand-over time): settled by
/// a confirm record, else the newest unsettled one is pending and the rest
/// outdated.
pub fn standings(evs: &[&Event]) -> Vec<HandedOver> {
    let hs = handovers(evs);
    let confirms: HashMap<Option<HexDigest>, &Event> = evs
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
                Some(Outcome::Confirmed) => Standing::Confirmed,
                Some(_) => Standing::Superseded,
                None if Some(h.seq) == unsettled_top => Standing::Pending,
                None => Standing::Outdated,
            };
            let mut ho = HandedOver::from_event(h, st);
            if st == Standing::Confirmed {
                // The sync recorded last before the confirmation is the
                // one that confirmed it (both in one transaction).
                ho.sync_date = c.and_then(|c| {
                    evs.iter()
                        .filter(|s| s.kind == Kind::CloudSync && s.seq < c.seq)
                        .filter(|s| is_success(Some(s.outcome.as_str())))
                        .max_by_key(|s| s.seq)
                        .and_then(|s| s.github_date.clone())
                });
            }
            ho
        })
        .collect();
    handed.sort_by(|a, b| (&a.created, &a.handed_over).cmp(&(&b.created, &b.handed_over)));
    handed
}

/// An earlier hand-over of the same instance, not confirmed by GitHub, that
/// a newer one replaces: its files must not be uploaded any more.
#[derive(Debug, Clone, Serialize)]
pub struct Replaced {
    /// The replaced bundle's id.
    pub bundle_id: Option<BundleId>,
    /// Its creation time, as recorded in the ledger.
    pub created: Option<Timestamp>,
    /// Its files (payload and upload steps) where they were handed over.
    pub files: Vec<String>,
}

/// Earlier hand-overs of `m`'s instance into an outbox that GitHub has not
/// settled: all of them, including those whose files an earlier import
/// already moved aside.
pub(crate) fn replaced_by(events: &[Event], m: &Manifest, sha: &HexDigest) -> Vec<Replaced> {
    let settled: HashSet<&HexDigest> = events
        .iter()
        .filter(|e| e.kind == Kind::Confirm)
        .filter_map(|e| e.bundle_sha256.as_ref())
        .collect();
    let mine: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.host_name.as_deref() == m.source.host_name.as_deref()
                && e.server_id == m.source.server_id
        })
        .collect();
    handovers(&mine)
        .into_iter()
        .filter(|e| {
            e.bundle_sha256
                .as_ref()
                .is_some_and(|s| s != sha && !settled.contains(s))
        })
        .map(|e| Replaced {
            bundle_id: e.bundle_id.clone(),
            created: e.created,
            files: e.files.clone(),
        })
        // Outbox hand-overs record absolute paths; HTTP ones do not.
        .filter(|r| r.files.iter().any(|f| Path::new(f).is_absolute()))
        .collect()
}

/// The bundles accepted so far in one batch (`import DIR`) or one watch
/// pass. A bundle older than one of them is *superseded*, not a rollback:
/// a backlog is not an attack (docs/import.md).
#[derive(Debug, Default)]
pub struct Batch {
    accepted: Vec<HexDigest>,
}

impl Batch {
    /// A batch with nothing accepted yet.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Note a bundle accepted in this batch.
    pub fn accepted(&mut self, sha: HexDigest) {
        self.accepted.push(sha);
    }
}

/// A record about a verified bundle.
fn event_from(
    v: &Verified,
    sha: &HexDigest,
    kind: Kind,
    outcome: Outcome,
    now: SystemTime,
) -> Event {
    let m = &v.manifest;
    let signer = v
        .signers
        .iter()
        .find(|s| s.fingerprint == m.sequence.key)
        .or(v.signers.first());
    Event {
        bundle_sha256: Some(sha.clone()),
        bundle_id: Some(m.bundle_id.clone()),
        signer: Some(m.sequence.key.clone()),
        principal: signer.map(|s| s.principals.clone()),
        sequence: Some(m.sequence.number),
        host_name: m.source.host_name.clone(),
        server_id: m.source.server_id.clone(),
        created: Some(m.created),
        expires: Some(m.expires),
        ..Event::new(kind, outcome, Timestamp::from_system(now))
    }
}

/// Record a bundle refused by the open or the verification, from what that
/// one read established and nothing else (no second read: a refusal costs
/// what `verify` costs). When trusted keys had signed the manifest that
/// read checked (the refusal came later: no identity, expired, a damaged
/// member), the record names the instance, bundle and signer from it; an
/// untrusted bundle's claims are never recorded. The bundle's SHA-256 is
/// recorded only when the read covered the whole file.
pub(crate) fn record_rejected(
    ledger: &mut Ledger,
    bundle: &Path,
    refusal: &Refusal,
    opts: &VerifyOptions<'_>,
) -> Result<()> {
    let read = refusal.read.as_deref();
    let whole = read
        .filter(|r| r.read_offset == 0 && r.read_bytes == r.size)
        .and_then(|r| HexDigest::parse(&r.read_sha256));
    let facts = read.and_then(|r| {
        Some(ReadFacts {
            file_name: crate::base::names::escape(bundle),
            file_size: r.size,
            read_offset: r.read_offset,
            read_bytes: r.read_bytes,
            read_sha256: HexDigest::parse(&r.read_sha256)?,
        })
    });
    refused_unverified(
        ledger,
        &refusal.error,
        whole,
        facts,
        refusal.signed.as_deref(),
        opts.now.now(),
    )
}

/// Record a bundle refused by its verifying read: what that read
/// established (the bundle's SHA-256 only when that read covered the whole
/// file), and the signed manifest's claims only when a trusted key had
/// signed them before the refusal (`signed`).
pub(crate) fn refused_unverified(
    ledger: &mut Ledger,
    e: &Error,
    whole_file_sha256: Option<HexDigest>,
    read: Option<ReadFacts>,
    signed: Option<&Manifest>,
    now: SystemTime,
) -> Result<()> {
    let mut ev = Event {
        bundle_sha256: whole_file_sha256,
        code: Some(e.code.as_str().into()),
        detail: Some(e.cause.clone()),
        read,
        ..Event::new(Kind::Import, Outcome::Rejected, Timestamp::from_system(now))
    };
    if let Some(m) = signed {
        ev.bundle_id = Some(m.bundle_id.clone());
        ev.signer = Some(m.sequence.key.clone());
        ev.sequence = Some(m.sequence.number);
        ev.host_name = m.source.host_name.clone();
        ev.server_id = m.source.server_id.clone();
        ev.created = Some(m.created);
        ev.expires = Some(m.expires);
    }
    ledger.append(ev)?;
    Ok(())
}

/// What the ledger rules decided for a verified bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Accepted now: hand it over.
    Accepted,
    /// Accepted by an earlier run whose hand-over did not finish: hand it
    /// over now.
    Resume,
}

/// The ledger's rules, in one exclusive transaction, at the moment of
/// decision; the verdict is recorded before it is returned. Refused: a
/// bundle already handed over (`ALREADY-IMPORTED`), one another process is
/// handing over now (`HANDOVER-IN-FLIGHT`, nothing recorded), a rollback,
/// one older than what was imported, one superseded (by a newer bundle of
/// the same batch, or overtaken before its hand-over finished), or one
/// expired by now.
pub(crate) fn decide(
    ledger: &mut Ledger,
    v: &Verified,
    sha: &HexDigest,
    batch: &Batch,
    now: SystemTime,
    skew: Duration,
) -> Result<Decision> {
    let m = &v.manifest;
    let tx = ledger.begin()?;
    if let Some(lease) = live_lease(&tx, m, now)? {
        return Err(in_flight(&lease, m));
    }
    let (accepted, done) = tx.bundle_state(sha)?;
    if done {
        let mut e = event_from(v, sha, Kind::Import, Outcome::AlreadyImported, now);
        e.code = Some(Code::AlreadyImported.as_str().into());
        tx.append(e)?;
        tx.commit()?;
        return Err(Error::new(
            Code::AlreadyImported,
            format!(
                "bundle {} (SHA-256 {}) was already imported and handed over",
                m.bundle_id,
                &sha[..16]
            ),
        ));
    }
    let verdict = if accepted {
        check_resume(&tx, m)?.map(|e| (Outcome::Superseded, e))
    } else {
        check_new(&tx, m, sha, batch)?
    };
    let verdict = verdict.or_else(|| {
        check_freshness(m, now, skew)
            .err()
            .map(|e| (Outcome::Rejected, e))
    });
    if let Some((outcome, e)) = verdict {
        let mut ev = event_from(v, sha, Kind::Import, outcome, now);
        ev.code = Some(e.code.as_str().into());
        ev.detail = Some(e.cause.clone());
        tx.append(ev)?;
        tx.commit()?;
        return Err(e);
    }
    if !accepted {
        tx.append(event_from(v, sha, Kind::Import, Outcome::Accepted, now))?;
    }
    tx.commit()?;
    Ok(if accepted {
        Decision::Resume
    } else {
        Decision::Accepted
    })
}

/// The error for a bundle of a host whose hand-over `lease` another
/// process holds.
fn in_flight(lease: &Lease, m: &Manifest) -> Error {
    Error::new(
        Code::HandoverInFlight,
        format!(
            "process {} is handing over a bundle of {} since {}",
            lease.pid,
            m.source.host(),
            lease.since
        ),
    )
}

/// The rules for a bundle not accepted before ([`check_rules`]); one that
/// was judged superseded when first seen gets the same verdict again (a
/// re-run of the same backlog), not a rollback.
fn check_new(
    tx: &Tx<'_>,
    m: &Manifest,
    sha: &HexDigest,
    batch: &Batch,
) -> Result<Option<(Outcome, Error)>> {
    let verdict = check_rules(tx, m, batch)?;
    // Only a refusal asks whether it was superseded when first seen.
    let before = verdict.is_some() && tx.was_superseded(sha)?;
    Ok(verdict.map(|(o, e)| match (o, before) {
        (Outcome::Rejected, true) => (
            Outcome::Superseded,
            Error::new(
                Code::LedgerSuperseded,
                format!(
                    "bundle {} was superseded by a newer bundle of {} when it was first imported; it is not handed over",
                    m.bundle_id,
                    m.source.host()
                ),
            ),
        ),
        (o, _) => (o, e),
    }))
}

/// A live lease on a hand-over of `m`'s instance: one hand-over in flight
/// per instance, so two processes never deliver its files out of order.
fn live_lease(tx: &Tx<'_>, m: &Manifest, now: SystemTime) -> Result<Option<Lease>> {
    // A lease is a bundle's last hand-over record: the instance's
    // hand-over records are enough to tell.
    let events = tx.handovers_of(m.source.host(), m.source.server_id.as_deref())?;
    let mine: HashSet<&HexDigest> = events
        .iter()
        .filter_map(|e| e.bundle_sha256.as_ref())
        .collect();
    Ok(mine
        .into_iter()
        .find_map(|sha| match stage_of(&events, sha) {
            Some(Stage::HandingOver(l)) if l.is_live(now) => Some(l),
            _ => None,
        }))
}

/// The ledger rules for a bundle not yet accepted: no rollback of a
/// signer's sequence, nothing older than what was imported for the
/// instance. Older only than bundles accepted in this batch: superseded.
fn check_rules(tx: &Tx<'_>, m: &Manifest, batch: &Batch) -> Result<Option<(Outcome, Error)>> {
    let Some(e) = rule_error(tx, m, &[])? else {
        return Ok(None);
    };
    if batch.accepted.is_empty() || rule_error(tx, m, &batch.accepted)?.is_some() {
        return Ok(Some((Outcome::Rejected, e)));
    }
    Ok(Some((
        Outcome::Superseded,
        Error::new(
            Code::LedgerSuperseded,
            format!(
                "bundle {} (created {}) is older than a bundle of {} imported in the same run: superseded, not handed over",
                m.bundle_id, m.created, m.source.host()
            ),
        ),
    )))
}

fn rule_error(tx: &Tx<'_>, m: &Manifest, except: &[HexDigest]) -> Result<Option<Error>> {
    let sid = m.source.server_id.as_deref();
    let seq = m.sequence.number;
    let host = m.source.host();
    if let Some(max) = tx.max_sequence(&m.sequence.key, host, sid, except)? {
        if seq <= max {
            return Ok(Some(Error::new(
                Code::LedgerRollback,
                format!(
                    "sequence {seq} from {} for {host} is not above {max}, already imported: rollback or replay",
                    m.sequence.key
                ),
            )));
        }
    }
    if let Some(newest) = tx.newest_created(host, sid, except)? {
        // Same second as the newest: newer only if every bundle of that
        // second came from this key (its lower sequences: checked above).
        let same_second_ok =
            m.created == newest && !tx.other_key_at(host, sid, newest, &m.sequence.key, except)?;
        if m.created <= newest && !same_second_ok {
            return Ok(Some(Error::new(
                Code::LedgerOlder,
                format!(
                    "the bundle was created {}, not after {newest}, the newest already imported for {host} (from any key)",
                    m.created
                ),
            )));
        }
    }
    Ok(None)
}

/// For a bundle accepted earlier whose hand-over did not finish: has a newer
/// bundle for the instance been accepted since? Then handing this one over
/// now would put an older file after a newer one.
fn check_resume(tx: &Tx<'_>, m: &Manifest) -> Result<Option<Error>> {
    let sid = m.source.server_id.as_deref();
    let newer = tx.overtaken_by(
        m.source.host(),
        sid,
        m.created,
        &m.sequence.key,
        m.sequence.number,
    )?;
    Ok(newer.map(|(id, created)| {
        Error::new(
            Code::LedgerSuperseded,
            format!(
                "bundle {} was accepted but not handed over, and bundle {id} (created {created}) for {} was imported since: it is superseded",
                m.bundle_id, m.source.host()
            ),
        )
    }))
}

/// Take the lease on a hand-over that waits on the network (HTTP): from
/// now on no other process hands over a bundle of this instance until this
/// one records the end, or its lease lapses.
pub(crate) fn start_handover(
    ledger: &mut Ledger,
    v: &Verified,
    sha: &HexDigest,
    now: SystemTime,
) -> Result<()> {
    let mut e = event_from(v, sha, Kind::Handover, Outcome::Started, now);
    e.lease_pid = Some(std::process::id());
    ledger.append(e)?;
    Ok(())
}

/// Record the end of a hand-over: `done` with one entry per file (the
/// outbox paths or HTTP results), or `failed` with its code and cause
/// (the bundle stays accepted: a re-run resumes it).
pub(crate) fn end_handover(
    ledger: &mut Ledger,
    v: &Verified,
    sha: &HexDigest,
    now: SystemTime,
    result: Result<Vec<String>>,
) -> Result<Vec<String>> {
    match result {
        Ok(files) => {
            fsutil::fault_point(fsutil::Fault::ImportHandedOver);
            let mut e = event_from(v, sha, Kind::Handover, Outcome::Done, now);
            // `detail` keeps the v1 spelling for readers of `log`.
            e.detail = Some(files.join("; "));
            e.files = files.clone();
            ledger.append(e)?;
            Ok(files)
        }
        Err(err) => {
            let mut e = event_from(v, sha, Kind::Handover, Outcome::Failed, now);
            e.code = Some(err.code.as_str().into());
            e.detail = Some(err.cause.clone());
            ledger.append(e)?;
            Err(err)
        }
    }
}

/// The directory inside the outbox that replaced and superseded hand-overs
/// are moved into.
pub const SUPERSEDED_DIR: &str = "superseded";
/// The directory inside the outbox that confirmed hand-overs are moved
/// into: the top level holds only what is still to upload.
pub const CONFIRMED_DIR: &str = "confirmed";

/// Move outbox files into `sub/` beside them. Files already gone (moved
/// before, or removed by the operator) are skipped; nothing is ever
/// replaced; `sub` must be a real directory (never followed as a link).
/// Only absolute paths are touched (what hand-overs record). Returns the
/// new paths, and one message per file that could not be moved.
pub(crate) fn move_into(files: &[PathBuf], sub: &str) -> (Vec<PathBuf>, Vec<String>) {
    let mut moved = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        if !f.is_absolute() {
            continue;
        }
        let (Some(dir), Some(name)) = (f.parent(), f.file_name()) else {
            continue;
        };
        if dir
            .file_name()
            .is_some_and(|n| n == SUPERSEDED_DIR || n == CONFIRMED_DIR)
        {
            continue;
        }
        match std::fs::symlink_metadata(f) {
            Ok(m) if m.file_type().is_file() => {}
            Ok(_) => {
                errors.push(format!("{}: not a regular file; left alone", f.display()));
                continue;
            }
            Err(_) => continue,
        }
        let aside = dir.join(sub);
        let to = aside.join(name);
        // 0750: the outbox's group (decision 74) reads what is kept there.
        let r = fsutil::real_subdir(&aside, 0o750)
            // A hard link never replaces an existing file; then drop the old name.
            .and_then(|_| std::fs::hard_link(f, &to))
            .and_then(|_| std::fs::remove_file(f));
        match r {
            Ok(()) => moved.push(to),
            Err(e) => errors.push(format!("{}: {e}", f.display())),
        }
    }
    let dirs: std::collections::BTreeSet<&Path> = moved.iter().filter_map(|p| p.parent()).collect();
    for d in dirs {
        let _ = fsutil::sync_dir(d);
        if let Some(p) = d.parent() {
            let _ = fsutil::sync_dir(p);
        }
    }
    (moved, errors)
}

#[cfg(test)]
mod tests;
