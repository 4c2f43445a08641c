//! `airlock licence import`: a licence bundle, verified with the isolated
//! side's licence trust file, judged by the licence rules against the
//! ledger and the appliance, the outgoing licence kept, the new one applied
//! and read back (decision 83, docs/licence-in.md).
//!
//! The steps, each recorded before the next begins, so a re-run resumes
//! where a run stopped: verify (one read; the licence file is kept in the
//! state directory from that read) → the ledger's rules → the appliance's
//! reading of the candidate and of the active licence (no lock held) → the
//! licence rules, recorded as `import accepted` or `rejected` → a lease
//! (`handover started`) → the backup of the outgoing licence → the apply
//! (`handover done` or `failed`) → the read-back (`confirm confirmed` or
//! `failed`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::appliance::{Appliance, Backup, LicenceInfo, SeatsUsed};
use crate::bundle::manifest::{BundleKind, HexDigest, Manifest, PayloadEntry, Timestamp};
use crate::bundle::verify::{check_freshness, verify_bundle, Ask, Dir, Hashing, Replace};
use crate::bundle::verify::{Staged, Verified, VerifyOptions};
use crate::error::{Code, Error, Result};
use crate::import::Opened;
use crate::ledger::{ActiveLicence, Event, Kind, Ledger, LicenceFacts, Outcome, Tx};
use crate::lifecycle::{stage_of, Stage};
use crate::state::StateDir;

/// The state directory's folder for licences: `received/` (each verified
/// licence file, as its bundle carried it) and `backup/` (each outgoing
/// licence, kept before a new one was applied).
pub const LICENCE_DIR: &str = "licence";

/// Whether fewer seats than the active licence may be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatDecrease {
    /// Refuse (`LICENCE-SEATS-FEWER`): the default.
    Refuse,
    /// Allow it, and record the override (`--allow-seat-decrease`).
    Allow,
}

/// What a licence import needs besides the bundle and the appliance.
pub struct LicenceImport<'a> {
    /// How the bundle is verified: the licence trust file, the clock.
    pub verify: VerifyOptions<'a>,
    /// The locked state directory (ledger, received licences, backups).
    pub state: &'a StateDir,
    /// `--allow-seat-decrease`.
    pub seat_decrease: SeatDecrease,
}

/// A licence applied and confirmed (`--json`).
#[derive(Debug, Serialize)]
pub struct LicenceReport {
    /// SHA-256 of the bundle file, from the verifying read.
    pub bundle_sha256: HexDigest,
    /// The enterprise that signed the licence.
    pub enterprise: String,
    /// The signed reference number.
    pub reference: String,
    /// The appliance, and how it was reached.
    pub appliance: String,
    /// Where the verified licence file is kept (`STATE/licence/received/`).
    pub received: String,
    /// True when this run finished what an earlier run had started.
    pub resumed: bool,
    /// The candidate as the appliance read it before the import (SSH only).
    pub candidate: Option<LicenceInfo>,
    /// The licence active before.
    pub active_before: Option<LicenceInfo>,
    /// Seats in use, and their source.
    pub seats_used: Option<SeatsUsed>,
    /// The rules overridden (`allow-seat-decrease`).
    pub overrides: Vec<String>,
    /// Where the outgoing licence was kept.
    pub backup: Vec<String>,
    /// The licence active after the apply.
    pub active_after: LicenceInfo,
    /// The appliance's check of the active licence.
    pub check_valid: bool,
    /// The active file's SHA-256 equals the signed member's (SSH only).
    pub file_matches: Option<bool>,
    /// Warnings: seats below seats in use, a read-back that could not
    /// compare the file.
    pub warnings: Vec<String>,
}

/// Where the bundle stands with the ledger's rules.
enum Verdict {
    /// Not seen before, and the rules let it through.
    New,
    /// Accepted earlier, not applied (or the apply failed): apply now.
    Apply,
    /// Applied earlier, not confirmed: read back now.
    Confirm,
}

/// One verified licence: its manifest's facts and the file's bytes, from
/// the one verifying read.
struct Candidate {
    v: Verified,
    sha: HexDigest,
    enterprise: String,
    reference: crate::bundle::manifest::LicenceReference,
    bytes: Vec<u8>,
    received: PathBuf,
}

/// Import, apply and confirm the licence in `bundle` (module docs).
pub fn import_licence(
    bundle: Opened,
    opts: &LicenceImport<'_>,
    appliance: &mut dyn Appliance,
) -> Result<LicenceReport> {
    let mut ledger = Ledger::open(opts.state.path())?;
    let c = verify_licence(bundle, opts, &mut ledger)?;
    let now = || opts.verify.now.now();
    // The ledger's verdict first: what it refuses never reaches the appliance.
    {
        let tx = ledger.begin()?;
        let verdict = ledger_verdict(&tx, &c, now(), opts.verify.skew);
        if let Err(e) = verdict {
            record_refusal(tx, &c, &e, None, now())?;
            return Err(e);
        }
    }
    let desc = appliance.describe();
    let read = opts
        .state
        .unlocked(|| read_appliance(appliance, &c.bytes))??;
    let (verdict, mut facts) = {
        let tx = ledger.begin()?;
        let verdict = match ledger_verdict(&tx, &c, now(), opts.verify.skew) {
            Ok(v) => v,
            Err(e) => {
                record_refusal(tx, &c, &e, None, now())?;
                return Err(e);
            }
        };
        let mut facts = facts_of(&c, &read, &desc);
        if !matches!(verdict, Verdict::Confirm) {
            if let Err(e) = licence_rules(&c, &read, opts.seat_decrease, &mut facts) {
                record_refusal(tx, &c, &e, Some(facts), now())?;
                return Err(e);
            }
        }
        if matches!(verdict, Verdict::New) {
            tx.append(event(&c, Kind::Import, Outcome::Accepted, now(), &facts))?;
        }
        if !matches!(verdict, Verdict::Confirm) {
            let mut lease = event(&c, Kind::Handover, Outcome::Started, now(), &facts);
            lease.lease_pid = Some(std::process::id());
            tx.append(lease)?;
        }
        tx.commit()?;
        (verdict, facts)
    };
    let mut warnings = seat_warnings(&c, &read);
    let backup = match verdict {
        Verdict::Confirm => backups_recorded(&ledger, &c.sha)?,
        Verdict::New | Verdict::Apply => {
            let backup = apply(opts, &mut ledger, appliance, &c, &read, &mut facts)?;
            backup.iter().map(|p| p.display().to_string()).collect()
        }
    };
    let back = opts.state.unlocked(|| read_back(appliance))??;
    let report = LicenceReport {
        bundle_sha256: c.sha.clone(),
        enterprise: c.enterprise.clone(),
        reference: c.reference.to_string(),
        appliance: desc,
        received: c.received.display().to_string(),
        resumed: !matches!(verdict, Verdict::New),
        candidate: read.candidate.clone(),
        active_before: Some(read.active.clone()),
        seats_used: read.seats_used.clone(),
        overrides: facts.overrides.clone(),
        backup,
        active_after: back.active.clone(),
        check_valid: back.valid,
        file_matches: None,
        warnings: Vec::new(),
    };
    confirm(&mut ledger, &c, facts, report, &mut warnings, back, now())
}

/// A licence bundle staged (the watcher's default, decision 83): verified,
/// accepted by the ledger's rules and recorded, its file kept; applying it
/// waits for a person, because the apply restarts GHES services.
#[derive(Debug, Serialize)]
pub struct StagedLicence {
    /// SHA-256 of the bundle file, from the verifying read.
    pub bundle_sha256: HexDigest,
    /// The enterprise that signed the licence.
    pub enterprise: String,
    /// The signed reference number.
    pub reference: String,
    /// Where the verified licence file is kept.
    pub received: String,
    /// Accepted by an earlier run already (not recorded again).
    pub already: bool,
}

/// Verify the licence bundle and apply the ledger's rules, recording the
/// acceptance, without reaching the appliance: `airlock licence import`
/// of the same bundle later applies it (as a resumed import).
pub fn stage_licence(bundle: Opened, opts: &LicenceImport<'_>) -> Result<StagedLicence> {
    let mut ledger = Ledger::open(opts.state.path())?;
    let c = verify_licence(bundle, opts, &mut ledger)?;
    let now = opts.verify.now.now();
    let tx = ledger.begin()?;
    let already = match ledger_verdict(&tx, &c, now, opts.verify.skew) {
        Err(e) => {
            record_refusal(tx, &c, &e, None, now)?;
            return Err(e);
        }
        Ok(Verdict::New) => {
            let facts = LicenceFacts::new(c.reference.clone());
            tx.append(event(&c, Kind::Import, Outcome::Accepted, now, &facts))?;
            tx.commit()?;
            false
        }
        Ok(Verdict::Apply | Verdict::Confirm) => true,
    };
    Ok(StagedLicence {
        bundle_sha256: c.sha.clone(),
        enterprise: c.enterprise.clone(),
        reference: c.reference.to_string(),
        received: c.received.display().to_string(),
        already,
    })
}

/// The last licence applied, as this state directory's ledger records it
/// (`licence status`): `None` when there is no ledger or no apply yet. The
/// ledger is read without waiting for another process's lock for long.
pub fn last_applied(state: &Path) -> Result<Option<crate::appliance::status::LastApplied>> {
    if !state.join(crate::ledger::LEDGER_FILE).exists() {
        return Ok(None);
    }
    let ledger = Ledger::open_read_only(state, Duration::from_secs(5))?;
    let events = ledger.events()?;
    let Some(done) = events
        .iter()
        .rev()
        .find(|e| e.licence.is_some() && e.kind == Kind::Handover && e.outcome == Outcome::Done)
    else {
        return Ok(None);
    };
    let (Some(sha), Some(facts)) = (&done.bundle_sha256, &done.licence) else {
        return Ok(None);
    };
    let confirmed = stage_of(&events, sha) == Some(Stage::Confirmed);
    Ok(Some(crate::appliance::status::LastApplied {
        reference: facts.reference.clone(),
        bundle_sha256: sha.clone(),
        applied: done.at,
        confirmed,
    }))
}

/// Step 1: the one verifying read, the file kept in `received/` from it.
fn verify_licence(
    bundle: Opened,
    opts: &LicenceImport<'_>,
    ledger: &mut Ledger,
) -> Result<Candidate> {
    let name = bundle.path().to_path_buf();
    let dir = licence_dir(opts.state.path(), "received")?;
    let naming = |m: &Manifest, p: &PayloadEntry| format!("{}-{}", m.bundle_id, file_name(p));
    // The file's own SHA-256 is taken as it is staged: the bytes read
    // back from the stage must be those.
    let dest = Dir::new(&dir, &naming, Replace::IfIdentical, Hashing::Take);
    let ask = Ask {
        bundle_sha256: Hashing::Take,
        kind: Some(BundleKind::Licence),
    };
    let file = bundle.into_file();
    let (v, staged) = match verify_bundle(file, &opts.verify, ask, dest) {
        Ok((v, dest)) => (v, dest.into_staged()),
        Err(refusal) => {
            if refusal.error.code != Code::BundleChanged {
                crate::import::record_rejected(ledger, &name, &refusal, &opts.verify)?;
            }
            return Err(refusal.error);
        }
    };
    let sha = v
        .bundle_sha256
        .clone()
        .ok_or_else(|| Error::new(Code::Internal, "the verifying read took no bundle hash"))?;
    let (enterprise, reference) = v
        .manifest
        .licence()
        .map(|(e, r)| (e.to_string(), r.clone()))
        .ok_or_else(|| Error::new(Code::Internal, "a licence bundle without its licence"))?;
    let (bytes, received) = keep_received(staged)?;
    Ok(Candidate {
        v,
        sha,
        enterprise,
        reference,
        bytes,
        received,
    })
}

/// The member's file name: the last part of its name (`payload/…`).
fn file_name(p: &PayloadEntry) -> String {
    p.name.rsplit('/').next().unwrap_or(&p.name).to_string()
}

/// Read the staged licence (ours, 0600, written by the verifying read),
/// then publish it under its name; a re-run finds the same bytes there.
fn keep_received(staged: Staged) -> Result<(Vec<u8>, PathBuf)> {
    let f = staged
        .files
        .first()
        .ok_or_else(|| Error::new(Code::Internal, "a licence bundle staged no file"))?;
    let bytes = std::fs::read(f.path()).map_err(|e| Error::io_read(f.path(), e))?;
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    if f.sha256.as_ref().map(|d| d.as_str()) != Some(digest.as_str()) {
        return Err(Error::new(
            Code::BundleChanged,
            format!(
                "{}: the staged licence changed after it was verified",
                f.path().display()
            ),
        ));
    }
    let mut published = staged.publish(0o600, Replace::IfIdentical)?;
    let path = published
        .pop()
        .ok_or_else(|| Error::new(Code::Internal, "a licence bundle published no file"))?;
    Ok((bytes, path))
}

/// `STATE/licence/SUB`, made private (0700) when new.
fn licence_dir(state: &Path, sub: &str) -> Result<PathBuf> {
    let top = state.join(LICENCE_DIR);
    let d = top.join(sub);
    for x in [&top, &d] {
        crate::fsutil::real_subdir(x, 0o700).map_err(|e| Error::io_write(x, e))?;
    }
    Ok(d)
}

/// The ledger's rules for the candidate at the moment of decision.
fn ledger_verdict(tx: &Tx<'_>, c: &Candidate, now: SystemTime, skew: Duration) -> Result<Verdict> {
    let m = &c.v.manifest;
    let events = tx.licence_events()?;
    match stage_of(&events, &c.sha) {
        Some(Stage::Confirmed) => return Err(applied_before(c)),
        Some(Stage::HandingOver(l)) if l.is_live(now) => {
            return Err(Error::new(
                Code::HandoverInFlight,
                format!(
                    "process {} is applying licence {} since {}",
                    l.pid, c.reference, l.since
                ),
            ))
        }
        Some(Stage::HandedOver(_)) => return Ok(Verdict::Confirm),
        Some(Stage::Accepted | Stage::HandingOver(_)) => return Ok(Verdict::Apply),
        _ => {}
    }
    let confirmed = events.iter().any(|e| {
        e.kind == Kind::Confirm
            && e.outcome == Outcome::Confirmed
            && e.licence
                .as_ref()
                .is_some_and(|l| l.reference == c.reference)
    });
    if confirmed {
        return Err(applied_before(c));
    }
    let accepted = events
        .iter()
        .filter(|e| e.kind == Kind::Import && e.outcome == Outcome::Accepted);
    for e in accepted {
        if e.signer.as_ref() == Some(&m.sequence.key)
            && e.sequence.is_some_and(|s| s >= m.sequence.number)
        {
            return Err(Error::new(
                Code::LedgerRollback,
                format!(
                    "licence sequence {} from {} is not above {}, already imported: rollback or replay",
                    m.sequence.number,
                    m.sequence.key,
                    e.sequence.unwrap_or(0)
                ),
            ));
        }
        if e.principal.as_deref() == Some(c.enterprise.as_str())
            && e.created.is_some_and(|t| t >= m.created)
        {
            return Err(Error::new(
                Code::LedgerOlder,
                format!(
                    "the licence bundle was created {}, not after {}, a licence bundle of {} already imported",
                    m.created,
                    e.created.map(|t| t.to_string()).unwrap_or_default(),
                    c.enterprise
                ),
            ));
        }
    }
    check_freshness(m, now, skew)?;
    Ok(Verdict::New)
}

fn applied_before(c: &Candidate) -> Error {
    Error::new(
        Code::LicenceApplied,
        format!(
            "licence {} of {} was applied and confirmed before",
            c.reference, c.enterprise
        ),
    )
}

/// What the appliance said before the import.
struct ApplianceRead {
    candidate: Option<LicenceInfo>,
    active: LicenceInfo,
    seats_used: Option<SeatsUsed>,
}

fn read_appliance(a: &mut dyn Appliance, bytes: &[u8]) -> Result<ApplianceRead> {
    Ok(ApplianceRead {
        candidate: a.dry_run(bytes)?,
        active: a.active()?,
        seats_used: a.seats_used()?,
    })
}

fn active_licence(i: &LicenceInfo) -> ActiveLicence {
    ActiveLicence {
        reference: i.reference.clone(),
        expire_at: i.expire_at,
        seats: i.seats,
    }
}

fn facts_of(c: &Candidate, read: &ApplianceRead, desc: &str) -> LicenceFacts {
    LicenceFacts {
        expire_at: read.candidate.as_ref().map(|i| i.expire_at),
        seats: read.candidate.as_ref().and_then(|i| i.seats),
        active_before: Some(active_licence(&read.active)),
        seats_used: read.seats_used.as_ref().map(|s| s.seats),
        appliance: Some(desc.to_string()),
        ..LicenceFacts::new(c.reference.clone())
    }
}

/// The licence rules against the appliance's reading: the reference it
/// reads is the signed one; the expiry not earlier than the active
/// licence's; no fewer seats unless allowed (the override is recorded).
/// Without a dry run (the Manage API) only the reference rule of the
/// ledger has run: docs/licence-in.md names that weaker guarantee.
fn licence_rules(
    c: &Candidate,
    read: &ApplianceRead,
    seat_decrease: SeatDecrease,
    facts: &mut LicenceFacts,
) -> Result<()> {
    let Some(cand) = &read.candidate else {
        return Ok(());
    };
    if cand.reference != c.reference {
        return Err(Error::new(
            Code::LicenceReference,
            format!(
                "the appliance reads reference {} from the file; the bundle signed {}",
                cand.reference, c.reference
            ),
        ));
    }
    let active = &read.active;
    if cand.expire_at < active.expire_at {
        return Err(Error::new(
            Code::LicenceExpiryEarlier,
            format!(
                "licence {} expires {}, before the active licence {} ({})",
                cand.reference, cand.expire_at, active.reference, active.expire_at
            ),
        ));
    }
    // `None` is unlimited seating.
    let fewer = match (cand.seats, active.seats) {
        (Some(_), None) => true,
        (Some(n), Some(a)) => n < a,
        (None, _) => false,
    };
    if fewer {
        if seat_decrease == SeatDecrease::Refuse {
            return Err(Error::new(
                Code::LicenceSeatsFewer,
                format!(
                    "licence {} has {} seats, fewer than the active licence {} ({})",
                    cand.reference,
                    seats_text(cand.seats),
                    active.reference,
                    seats_text(active.seats)
                ),
            ));
        }
        facts.overrides.push("allow-seat-decrease".into());
    }
    Ok(())
}

fn seats_text(s: Option<u64>) -> String {
    s.map_or("unlimited".into(), |n| n.to_string())
}

fn seat_warnings(c: &Candidate, read: &ApplianceRead) -> Vec<String> {
    let seats = read.candidate.as_ref().and_then(|i| i.seats);
    match (seats, &read.seats_used) {
        (Some(n), Some(used)) if n < used.seats => vec![format!(
            "licence {} has {n} seats and {} are in use ({})",
            c.reference, used.seats, used.source
        )],
        _ => Vec::new(),
    }
}

/// A record about the candidate.
fn event(c: &Candidate, kind: Kind, outcome: Outcome, now: SystemTime, f: &LicenceFacts) -> Event {
    let m = &c.v.manifest;
    Event {
        bundle_sha256: Some(c.sha.clone()),
        bundle_id: Some(m.bundle_id.clone()),
        signer: Some(m.sequence.key.clone()),
        principal: Some(c.enterprise.clone()),
        sequence: Some(m.sequence.number),
        created: Some(m.created),
        expires: Some(m.expires),
        licence: Some(f.clone()),
        ..Event::new(kind, outcome, Timestamp::from_system(now))
    }
}

fn record_refusal(
    tx: Tx<'_>,
    c: &Candidate,
    e: &Error,
    facts: Option<LicenceFacts>,
    now: SystemTime,
) -> Result<()> {
    // Another process's hand-over in flight is no verdict on the bundle.
    if e.code == Code::HandoverInFlight {
        return Ok(());
    }
    let facts = facts.unwrap_or_else(|| LicenceFacts::new(c.reference.clone()));
    let mut ev = event(c, Kind::Import, Outcome::Rejected, now, &facts);
    ev.code = Some(e.code.as_str().into());
    ev.detail = Some(e.cause.clone());
    tx.append(ev)?;
    tx.commit()
}

/// Steps 5 and 6: keep the outgoing licence, then apply the new one; the
/// result is recorded either way (a failed apply stays accepted: a re-run
/// resumes it). An appliance already running this licence is not applied
/// again, and its licence is not "backed up" over the real backup.
fn apply(
    opts: &LicenceImport<'_>,
    ledger: &mut Ledger,
    appliance: &mut dyn Appliance,
    c: &Candidate,
    read: &ApplianceRead,
    facts: &mut LicenceFacts,
) -> Result<Vec<PathBuf>> {
    let now = || opts.verify.now.now();
    let already = read.active.reference == c.reference;
    let result = opts.state.unlocked(|| -> Result<Vec<PathBuf>> {
        if already {
            return Ok(Vec::new());
        }
        let kept = keep_backup(opts, ledger_copy_of(ledger, &read.active)?, appliance, read)?;
        appliance.apply(&c.bytes).map_err(|e| {
            let list = kept
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>();
            let hint = format!(
                "{} The outgoing licence is kept in {}.",
                e.hint(),
                list.join(", ")
            );
            e.with_hint(hint)
        })?;
        Ok(kept)
    })?;
    let (outcome, code, detail, kept) = match &result {
        Ok(kept) => (Outcome::Done, None, None, kept.clone()),
        Err(e) => (
            Outcome::Failed,
            Some(e.code.as_str().to_string()),
            Some(e.cause.clone()),
            Vec::new(),
        ),
    };
    facts.backup = kept.first().map(|p| p.display().to_string());
    let mut ev = event(c, Kind::Handover, outcome, now(), facts);
    ev.files = kept.iter().map(|p| p.display().to_string()).collect();
    ev.detail = detail.or_else(|| already.then(|| "already the active licence".to_string()));
    ev.code = code;
    ledger.append(ev)?;
    result
}

/// The file of the active licence, when this ledger applied it (the Manage
/// API cannot return the file itself).
fn ledger_copy_of(ledger: &Ledger, active: &LicenceInfo) -> Result<Option<PathBuf>> {
    let events = ledger.events()?;
    let applied = events.iter().rev().find(|e| {
        e.kind == Kind::Handover
            && e.outcome == Outcome::Done
            && e.licence
                .as_ref()
                .is_some_and(|l| l.reference == active.reference)
    });
    let Some(e) = applied else {
        return Ok(None);
    };
    let Some(sha) = &e.bundle_sha256 else {
        return Ok(None);
    };
    Ok(events
        .iter()
        .find(|x| x.bundle_sha256.as_ref() == Some(sha) && x.bundle_id.is_some())
        .and_then(|x| x.bundle_id.as_ref())
        .map(|id| format!("{id}-github-enterprise-{}.ghl", active.reference))
        .map(|n| {
            ledger
                .path()
                .with_file_name(LICENCE_DIR)
                .join("received")
                .join(n)
        })
        .filter(|p| p.is_file()))
}

/// Keep the outgoing licence in `STATE/licence/backup/`: the file (SSH),
/// or its details and, when this ledger applied it, its file (Manage API).
/// Written and synced before the apply; never replaced.
fn keep_backup(
    opts: &LicenceImport<'_>,
    own_copy: Option<PathBuf>,
    appliance: &mut dyn Appliance,
    read: &ApplianceRead,
) -> Result<Vec<PathBuf>> {
    let dir = licence_dir(opts.state.path(), "backup")?;
    let stamp = Timestamp::from_system(opts.verify.now.now())
        .to_string()
        .replace(':', "");
    let base = format!("{stamp}-github-enterprise-{}", read.active.reference);
    let mut kept = Vec::new();
    match appliance.backup()? {
        Backup::File(bytes) => kept.push(write_backup(&dir, &base, "ghl", &bytes)?),
        Backup::Details(json) => {
            kept.push(write_backup(&dir, &base, "json", json.as_bytes())?);
            if let Some(own) = own_copy {
                let bytes = std::fs::read(&own).map_err(|e| Error::io_read(&own, e))?;
                kept.insert(0, write_backup(&dir, &base, "ghl", &bytes)?);
            }
        }
    }
    Ok(kept)
}

/// Write a backup as `BASE.EXT`, never replacing one: a backup of the same
/// licence with the same bytes kept by an earlier attempt (a retry after a
/// busy appliance) is that backup; other bytes get the next free
/// `BASE-N.EXT`.
fn write_backup(dir: &Path, base: &str, ext: &str, bytes: &[u8]) -> Result<PathBuf> {
    if let Some(p) = same_backup(dir, base, ext, bytes) {
        return Ok(p);
    }
    for n in 1..100 {
        let name = match n {
            1 => format!("{base}.{ext}"),
            n => format!("{base}-{n}.{ext}"),
        };
        let p = dir.join(name);
        match std::fs::read(&p) {
            Ok(have) if have == bytes => return Ok(p),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::fsutil::write_atomic(&p, bytes, 0o600, false)?;
                return Ok(p);
            }
            Err(e) => return Err(Error::io_read(&p, e)),
        }
    }
    Err(Error::new(
        Code::OutputExists,
        format!("{}: 99 backups named {base} exist", dir.display()),
    )
    .with_hint("move old backups out of the state directory's licence/backup/"))
}

/// An earlier backup of the same licence (`…-github-enterprise-REF.EXT`,
/// whatever its time) holding exactly `bytes`.
fn same_backup(dir: &Path, base: &str, ext: &str, bytes: &[u8]) -> Option<PathBuf> {
    let licence = base.split_once("-github-enterprise-").map(|(_, r)| r)?;
    let tail = format!("-github-enterprise-{licence}.{ext}");
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&tail))
        })
        .collect();
    names.sort();
    names.into_iter().find(|p| {
        std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64)
            && std::fs::read(p).is_ok_and(|have| have == bytes)
    })
}

/// The backups an earlier run recorded for this bundle.
fn backups_recorded(ledger: &Ledger, sha: &HexDigest) -> Result<Vec<String>> {
    Ok(ledger
        .events()?
        .into_iter()
        .rev()
        .find(|e| {
            e.bundle_sha256.as_ref() == Some(sha)
                && e.kind == Kind::Handover
                && e.outcome == Outcome::Done
        })
        .map(|e| e.files)
        .unwrap_or_default())
}

/// What the appliance says after the apply.
struct ReadBack {
    active: LicenceInfo,
    valid: bool,
    sha256: Option<HexDigest>,
}

fn read_back(a: &mut dyn Appliance) -> Result<ReadBack> {
    Ok(ReadBack {
        active: a.active()?,
        valid: a.check()?,
        sha256: a.active_sha256()?,
    })
}

/// Step 7: the read-back decides, and is recorded: the active licence must
/// be the candidate (reference, and expiry when the dry run read it) and
/// valid. A different file digest alone is a warning (decision 83).
fn confirm(
    ledger: &mut Ledger,
    c: &Candidate,
    mut facts: LicenceFacts,
    mut report: LicenceReport,
    warnings: &mut Vec<String>,
    back: ReadBack,
    now: SystemTime,
) -> Result<LicenceReport> {
    let member = &c.v.payload.first().map(|p| p.sha256.clone());
    let file_matches = back.sha256.as_ref().map(|s| Some(s) == member.as_ref());
    if file_matches == Some(false) {
        warnings.push(format!(
            "the active licence file's SHA-256 differs from the bundle's {}: to confirm on a real appliance whether it stores the file as uploaded",
            c.reference
        ));
    }
    facts.active_sha256 = back.sha256.clone();
    let same_expiry = report
        .candidate
        .as_ref()
        .is_none_or(|cand| cand.expire_at == back.active.expire_at);
    let ok = back.active.reference == c.reference && same_expiry && back.valid;
    let mut ev = event(
        c,
        Kind::Confirm,
        if ok {
            Outcome::Confirmed
        } else {
            Outcome::Failed
        },
        now,
        &facts,
    );
    let backup = if report.backup.is_empty() {
        "no backup was needed (the licence was already active)".to_string()
    } else {
        format!(
            "the outgoing licence is kept in {}",
            report.backup.join(", ")
        )
    };
    let err = (!ok).then(|| {
        Error::new(
            Code::LicenceNotActive,
            format!(
                "after the apply the appliance reports licence {} (expires {}, check {}), not {}",
                back.active.reference,
                back.active.expire_at,
                if back.valid { "valid" } else { "not valid" },
                c.reference
            ),
        )
        .with_hint(format!(
            "check the appliance (`airlock licence status`); {backup}; docs/licence-in.md shows how to restore it"
        ))
    });
    if let Some(e) = &err {
        ev.code = Some(e.code.as_str().into());
        ev.detail = Some(e.cause.clone());
    } else if !warnings.is_empty() {
        ev.detail = Some(warnings.join("; "));
    }
    ledger.append(ev)?;
    if let Some(e) = err {
        return Err(e);
    }
    report.file_matches = file_matches;
    report.warnings = std::mem::take(warnings);
    Ok(report)
}

#[cfg(test)]
#[path = "licence_in_tests.rs"]
mod tests;
