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

use crate::appliance::{Appliance, LicenceInfo, SeatsUsed};
use crate::base::error::{Code, Error, Result};
use crate::format::manifest::{BundleKind, HexDigest, Manifest, PayloadEntry, Timestamp};
use crate::state::ledger::{ActiveLicence, Event, Kind, Ledger, LicenceFacts, Outcome, Tx};
use crate::state::lifecycle::{stage_of, Stage};
use crate::state::StateDir;
use crate::verify::Opened;
use crate::verify::{check_freshness, verify_bundle, Ask, Dir, Hashing, Replace};
use crate::verify::{Staged, Verified, VerifyOptions};

mod backup;
mod rules;
use backup::{backups_recorded, keep_backup, ledger_copy_of};
use rules::ledger_verdict;

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
    reference: crate::format::manifest::LicenceReference,
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
    let (verdict, mut facts) = decide(&mut ledger, opts, &c, &read, &desc)?;
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

/// At the moment of decision, with what the appliance said: the ledger's
/// rules again, then the licence rules; the verdict recorded (`import
/// accepted` or `rejected`), and the lease taken (`handover started`)
/// unless only the read-back is left.
fn decide(
    ledger: &mut Ledger,
    opts: &LicenceImport<'_>,
    c: &Candidate,
    read: &ApplianceRead,
    desc: &str,
) -> Result<(Verdict, LicenceFacts)> {
    let now = opts.verify.now.now();
    let tx = ledger.begin()?;
    let verdict = match ledger_verdict(&tx, c, now, opts.verify.skew) {
        Ok(v) => v,
        Err(e) => {
            record_refusal(tx, c, &e, None, now)?;
            return Err(e);
        }
    };
    let mut facts = facts_of(c, read, desc);
    if matches!(verdict, Verdict::Confirm) {
        return Ok((verdict, facts));
    }
    if let Err(e) = licence_rules(c, read, opts.seat_decrease, &mut facts) {
        record_refusal(tx, c, &e, Some(facts), now)?;
        return Err(e);
    }
    if matches!(verdict, Verdict::New) {
        tx.append(event(c, Kind::Import, Outcome::Accepted, now, &facts))?;
    }
    let mut lease = event(c, Kind::Handover, Outcome::Started, now, &facts);
    lease.lease_pid = Some(std::process::id());
    tx.append(lease)?;
    tx.commit()?;
    Ok((verdict, facts))
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
    if !state.join(crate::state::ledger::LEDGER_FILE).exists() {
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
                crate::state::lifecycle::record_rejected(ledger, &name, &refusal, &opts.verify)?;
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
        crate::io::fsutil::real_subdir(x, 0o700).map_err(|e| Error::io_write(x, e))?;
    }
    Ok(d)
}

/// What the appliance said before the import.
struct ApplianceRead {
    candidate: Option<LicenceInfo>,
    active: LicenceInfo,
    seats_used: Option<SeatsUsed>,
    /// Why seats in use could not be read: a warning, never a reason not
    /// to apply (an expired licence stops the very API that counts them).
    seats_error: Option<String>,
}

fn read_appliance(a: &mut dyn Appliance, bytes: &[u8]) -> Result<ApplianceRead> {
    let candidate = a.dry_run(bytes)?;
    let active = a.active()?;
    let (seats_used, seats_error) = match a.seats_used() {
        Ok(s) => (s, None),
        Err(e) => (
            None,
            Some(format!("seats in use could not be read: {}", e.cause)),
        ),
    };
    Ok(ApplianceRead {
        candidate,
        active,
        seats_used,
        seats_error,
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
    let mut w: Vec<String> = read.seats_error.iter().cloned().collect();
    if let (Some(n), Some(used)) = (seats, &read.seats_used) {
        if n < used.seats {
            w.push(format!(
                "licence {} has {n} seats and {} are in use ({})",
                c.reference, used.seats, used.source
            ));
        }
    }
    w
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
    // Already active: an earlier run's apply went through before it could
    // record it; its backups are this one's.
    let already = read.active.reference == c.reference;
    let earlier: Vec<PathBuf> = backups_recorded(ledger, &c.sha)?
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let own_copy = ledger_copy_of(ledger, &read.active)?;
    let (kept, result) = opts.state.unlocked(|| {
        if already {
            return (earlier, Ok(()));
        }
        match keep_backup(opts, own_copy, appliance, read) {
            Err(e) => (Vec::new(), Err(e)),
            Ok(kept) => {
                let r = appliance.apply(&c.bytes).map_err(|e| kept_hint(e, &kept));
                (kept, r)
            }
        }
    })?;
    facts.backup = kept.first().map(|p| p.display().to_string());
    let outcome = match &result {
        Ok(()) => Outcome::Done,
        Err(_) => Outcome::Failed,
    };
    let mut ev = event(c, Kind::Handover, outcome, now(), facts);
    // The backups are recorded even when the apply failed: it may have
    // gone through (a lost connection), and the next run names them.
    ev.files = kept.iter().map(|p| p.display().to_string()).collect();
    ev.detail = match &result {
        Err(e) => Some(e.cause.clone()),
        Ok(()) => already.then(|| "already the active licence".to_string()),
    };
    ev.code = result.as_ref().err().map(|e| e.code.as_str().to_string());
    ledger.append(ev)?;
    result.map(|()| kept)
}

/// An apply's error, its hint naming where the outgoing licence is kept.
fn kept_hint(e: Error, kept: &[PathBuf]) -> Error {
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
}

/// `LICENCE-NOT-ACTIVE`, its hint naming the backup of the outgoing licence.
fn not_active(c: &Candidate, back: &ReadBack, backups: &[String]) -> Error {
    let backup = if backups.is_empty() {
        "no backup was needed (the licence was already active)".to_string()
    } else {
        format!("the outgoing licence is kept in {}", backups.join(", "))
    };
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
    let err = (!ok).then(|| not_active(c, &back, &report.backup));
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
mod tests;
