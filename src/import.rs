//! Import: everything `verify` checks, then the ledger's freshness rules,
//! then hand-over, with every attempt recorded (docs/import.md).
//!
//! One read: the bundle is verified, decrypted and written into private
//! temporary files in the outbox (or a private spool for HTTP) by the single
//! verification core, and its SHA-256 for the ledger comes from that read.
//!
//! Crash safety: an `accepted` record is committed before the hand-over and
//! a `handover done` record after it. An import killed anywhere in between
//! leaves an accepted-but-not-handed-over bundle, which the same import,
//! re-run, hands over (idempotently) instead of refusing it, unless a newer
//! bundle for the instance was imported meanwhile: then it is recorded as
//! superseded and not handed over.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::bundle::container::open_bundle;
use crate::bundle::manifest::format_time;
use crate::bundle::verify::{
    check_freshness, output_name, verify_bundle, Destination, Verified, VerifyOptions,
};
use crate::error::{Code, Error, Result};
use crate::handover::{self, Target};
use crate::ledger::{kind, outcome, Event, Ledger};
use crate::state::StateDir;

pub struct ImportOptions<'a> {
    pub verify: VerifyOptions<'a>,
    /// Locked state directory: serialises imports on this host.
    pub state: &'a StateDir,
    pub target: Target,
    pub enterprise: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ImportReport {
    pub bundle_sha256: String,
    pub bundle_id: String,
    pub host_name: String,
    pub server_id: Option<String>,
    pub sequence: u64,
    pub signer: String,
    pub created: String,
    /// True when this run finished a hand-over an earlier run had started.
    pub resumed: bool,
    /// Outbox paths, or HTTP results.
    pub handed_over: Vec<String>,
}

/// Remove what a killed run may have left: the spool, and airlock's own
/// temporary files in the outbox. Safe because the state lock is held.
fn clean_leftovers(state: &Path, outbox: Option<&Path>) {
    let _ = std::fs::remove_dir_all(state.join("spool"));
    if let Some(dir) = outbox {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let n = e.file_name();
                let n = n.to_string_lossy();
                if n.starts_with(".airlock-") && n.ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

fn event_from(v: &Verified, bundle_sha256: &str, kind: &str, outcome: &str) -> Event {
    let m = &v.manifest;
    let signer = v
        .signers
        .iter()
        .find(|s| s.fingerprint == m.sequence.key)
        .or(v.signers.first());
    Event {
        kind: kind.into(),
        at: format_time(SystemTime::now()),
        outcome: outcome.into(),
        bundle_sha256: Some(bundle_sha256.into()),
        bundle_id: Some(m.bundle_id.clone()),
        signer: Some(m.sequence.key.clone()),
        principal: signer.map(|s| s.principals.clone()),
        sequence: Some(m.sequence.number as i64),
        host_name: Some(m.source.host_name.clone()),
        server_id: m.source.server_id.clone(),
        created: Some(m.created.clone()),
        expires: Some(m.expires.clone()),
        ..Default::default()
    }
}

/// Removes a directory when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Refuse and record: the bundle verified, a ledger rule says no.
fn refuse(
    tx: &crate::ledger::Tx<'_>,
    v: &Verified,
    sha: &str,
    outcome: &str,
    e: Error,
) -> Result<Error> {
    let mut ev = event_from(v, sha, kind::IMPORT, outcome);
    ev.code = Some(e.code.as_str().into());
    ev.detail = Some(e.cause.clone());
    tx.append(ev)?;
    Ok(e)
}

/// The ledger rules for a bundle not yet accepted: no rollback of a
/// signer's sequence, nothing older than what was imported for the instance.
fn check_rules(tx: &crate::ledger::Tx<'_>, m: &crate::bundle::Manifest) -> Result<Option<Error>> {
    let sid = m.source.server_id.as_deref();
    let seq = m.sequence.number as i64;
    if let Some(max) = tx.max_sequence(&m.sequence.key, &m.source.host_name, sid)? {
        if seq <= max {
            return Ok(Some(Error::new(
                Code::LedgerRollback,
                format!(
                    "sequence {seq} from {} for {} is not above {max}, already imported: rollback or replay",
                    m.sequence.key, m.source.host_name
                ),
            )));
        }
    }
    if let Some(newest) = tx.newest_created(&m.source.host_name, sid)? {
        if m.created.as_str() <= newest.as_str() {
            return Ok(Some(Error::new(
                Code::LedgerOlder,
                format!(
                    "the bundle was created {}, not after {newest}, the newest already imported for {} (from any key)",
                    m.created, m.source.host_name
                ),
            )));
        }
    }
    Ok(None)
}

/// For a bundle accepted earlier whose hand-over did not finish: has a newer
/// bundle for the instance been accepted since? Then handing this one over
/// now would put an older file after a newer one.
fn check_resume(tx: &crate::ledger::Tx<'_>, m: &crate::bundle::Manifest) -> Result<Option<Error>> {
    let sid = m.source.server_id.as_deref();
    let newer = tx.overtaken_by(
        &m.source.host_name,
        sid,
        &m.created,
        &m.sequence.key,
        m.sequence.number as i64,
    )?;
    Ok(newer.map(|(id, created)| {
        Error::new(
            Code::LedgerSuperseded,
            format!(
                "bundle {} was accepted but not handed over, and bundle {id} (created {created}) for {} was imported since: it is superseded",
                m.bundle_id, m.source.host_name
            ),
        )
    }))
}

/// Where the verifying read writes the payload: straight into the outbox
/// (private temporary files, published after the ledger accepted the
/// bundle), or a private spool for HTTP hand-over.
fn staging_dir(state: &Path, target: &Target) -> Result<(PathBuf, Option<RemoveOnDrop>)> {
    match target {
        Target::Outbox(dir) => {
            if !dir.is_dir() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::new(
                        Code::HandoverFailed,
                        format!("cannot create outbox {}: {e}", dir.display()),
                    )
                })?;
            }
            Ok((dir.clone(), None))
        }
        Target::Http { .. } => {
            use std::os::unix::fs::DirBuilderExt;
            let spool = state.join("spool");
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&spool)
                .map_err(|e| Error::io_write(&spool, e))?;
            // Plaintext in the spool never outlives this run (a killed run's
            // is removed by the next one).
            Ok((spool.clone(), Some(RemoveOnDrop(spool))))
        }
    }
}

/// Record a bundle refused by verification. Its SHA-256 is taken from the
/// same descriptor the verification read, when it can be read at all. When
/// a trusted key signed its manifest (the refusal came later: no identity,
/// expired, a damaged member), the record names the instance, bundle and
/// signer from that signed manifest; an untrusted bundle's claims are never
/// recorded.
fn record_rejected(
    ledger: &mut Ledger,
    file: Option<&mut File>,
    e: &Error,
    opts: &VerifyOptions<'_>,
) -> Result<()> {
    let signed = file.as_ref().and_then(|f| {
        let f = f.try_clone().ok()?;
        crate::bundle::verify::trusted_manifest(f, opts).ok()
    });
    let sha = file.and_then(|f| {
        use std::io::{Seek, SeekFrom};
        f.seek(SeekFrom::Start(0)).ok()?;
        crate::fsutil::sha256_reader(f).ok()
    });
    let mut ev = Event {
        kind: kind::IMPORT.into(),
        at: format_time(SystemTime::now()),
        outcome: outcome::REJECTED.into(),
        bundle_sha256: sha,
        code: Some(e.code.as_str().into()),
        detail: Some(e.cause.clone()),
        ..Default::default()
    };
    if let Some(m) = signed {
        ev.bundle_id = Some(m.bundle_id);
        ev.signer = Some(m.sequence.key);
        ev.sequence = Some(m.sequence.number as i64);
        ev.host_name = Some(m.source.host_name);
        ev.server_id = m.source.server_id;
        ev.created = Some(m.created);
        ev.expires = Some(m.expires);
    }
    ledger.append(ev)?;
    Ok(())
}

/// Import a bundle.
pub fn import(bundle: &Path, opts: &ImportOptions<'_>) -> Result<ImportReport> {
    let state = opts.state.path();
    let outbox = match &opts.target {
        Target::Outbox(d) => Some(d.as_path()),
        Target::Http { .. } => None,
    };
    clean_leftovers(state, outbox);
    let mut ledger = Ledger::open(state)?;

    // 1. One read: verify, decrypt and stage the payload where it goes.
    let file = match open_bundle(bundle) {
        Ok(f) => f,
        Err(e) => {
            record_rejected(&mut ledger, None, &e, &opts.verify)?;
            return Err(e);
        }
    };
    let mut keep = file.try_clone().ok();
    let (dir, _spool) = staging_dir(state, &opts.target)?;
    let outbox_name = |m: &crate::bundle::Manifest, p: &crate::bundle::manifest::PayloadEntry| {
        handover::outbox_name(m, p)
    };
    let plain_name = |_: &crate::bundle::Manifest, p: &crate::bundle::manifest::PayloadEntry| {
        output_name(p).to_string()
    };
    let dest = Destination::Dir {
        dir: &dir,
        name: if outbox.is_some() {
            &outbox_name
        } else {
            &plain_name
        },
        refuse_existing: false,
    };
    let (v, staged) = match verify_bundle(file, &opts.verify, &dest, true) {
        Ok(x) => x,
        Err(e) => {
            record_rejected(&mut ledger, keep.as_mut(), &e, &opts.verify)?;
            return Err(e);
        }
    };
    drop(keep);
    let bundle_sha256 = v
        .bundle_sha256
        .clone()
        .ok_or_else(|| Error::new(Code::Internal, "the verifying read took no bundle hash"))?;
    let m = &v.manifest;
    crate::fsutil::fault_point("import:verified");

    // 2. Ledger rules, in one exclusive transaction, at the moment of decision.
    let tx = ledger.begin()?;
    let (accepted, done) = tx.bundle_state(&bundle_sha256)?;
    if done {
        let mut e = event_from(&v, &bundle_sha256, kind::IMPORT, outcome::ALREADY);
        e.code = Some(Code::AlreadyImported.as_str().into());
        tx.append(e)?;
        tx.commit()?;
        return Err(Error::new(
            Code::AlreadyImported,
            format!(
                "bundle {} (SHA-256 {}) was already imported and handed over",
                m.bundle_id,
                &bundle_sha256[..16]
            ),
        ));
    }
    let resumed = accepted;
    let verdict = if accepted {
        check_resume(&tx, m)?.map(|e| (outcome::SUPERSEDED, e))
    } else {
        check_rules(&tx, m)?.map(|e| (outcome::REJECTED, e))
    };
    let verdict = match verdict {
        Some(v) => Some(v),
        None => check_freshness(m, opts.verify.now.now(), opts.verify.skew)
            .err()
            .map(|e| (outcome::REJECTED, e)),
    };
    if let Some((outcome, e)) = verdict {
        let e = refuse(&tx, &v, &bundle_sha256, outcome, e)?;
        tx.commit()?;
        return Err(e);
    }
    if !accepted {
        tx.append(event_from(
            &v,
            &bundle_sha256,
            kind::IMPORT,
            outcome::ACCEPTED,
        ))?;
    }
    tx.commit()?;
    crate::fsutil::fault_point("import:accepted");

    // 3. Hand-over, then record it.
    let result = match &opts.target {
        Target::Outbox(dir) => {
            handover::to_outbox(dir, m, staged, opts.enterprise.as_deref(), &bundle_sha256).map(
                |ps| {
                    ps.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                },
            )
        }
        Target::Http { url, token } => handover::to_http(
            url,
            token.as_ref().map(|t| t.as_str()),
            m,
            &staged,
            &bundle_sha256,
        ),
    };
    match result {
        Ok(handed_over) => {
            crate::fsutil::fault_point("import:handed-over");
            let mut e = event_from(&v, &bundle_sha256, kind::HANDOVER, outcome::DONE);
            e.detail = Some(handed_over.join("; "));
            ledger.append(e)?;
            Ok(ImportReport {
                bundle_sha256,
                bundle_id: m.bundle_id.clone(),
                host_name: m.source.host_name.clone(),
                server_id: m.source.server_id.clone(),
                sequence: m.sequence.number,
                signer: m.sequence.key.clone(),
                created: m.created.clone(),
                resumed,
                handed_over,
            })
        }
        Err(err) => {
            let mut e = event_from(&v, &bundle_sha256, kind::HANDOVER, outcome::FAILED);
            e.code = Some(err.code.as_str().into());
            e.detail = Some(err.cause.clone());
            ledger.append(e)?;
            Err(err)
        }
    }
}
