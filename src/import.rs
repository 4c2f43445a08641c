//! Import: everything `verify` checks, then the ledger's freshness rules,
//! then hand-over, with every attempt recorded (docs/import.md).
//!
//! Crash safety: the payload is verified and decrypted into the state
//! directory's spool; an `accepted` record is committed before the hand-over
//! and a `handover done` record after it. An import killed anywhere in
//! between leaves an accepted-but-not-handed-over bundle, which the same
//! import, re-run, hands over (idempotently) instead of refusing it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::bundle::manifest::format_time;
use crate::bundle::verify::{extract, output_name, ExtractTo, Verified, VerifyOptions};
use crate::error::{Code, Error, Result};
use crate::handover::{self, Item, Target};
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

/// SHA-256 of a whole file, as an airlock error on failure.
pub fn file_sha256(path: &Path) -> Result<String> {
    crate::fsutil::sha256_file(path).map_err(|e| Error::io_read(path, e))
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

/// Import a bundle.
pub fn import(bundle: &Path, opts: &ImportOptions<'_>) -> Result<ImportReport> {
    let state = opts.state.path();
    let outbox = match &opts.target {
        Target::Outbox(d) => Some(d.as_path()),
        Target::Http { .. } => None,
    };
    clean_leftovers(state, outbox);
    let mut ledger = Ledger::open(state)?;
    let bundle_sha256 = file_sha256(bundle)?;
    // Plaintext in the spool never outlives this run (a killed run's is
    // removed by the next one, above).
    let _spool = RemoveOnDrop(state.join("spool"));

    // 1. Verify and decrypt into the spool.
    let spool: PathBuf = state.join("spool").join(&bundle_sha256);
    std::fs::create_dir_all(&spool).map_err(|e| Error::io_write(&spool, e))?;
    let verified = extract(
        bundle,
        &opts.verify,
        ExtractTo {
            dir: &spool,
            overwrite: true,
        },
    );
    let (v, written) = match verified {
        Ok(x) => x,
        Err(e) => {
            ledger.append(Event {
                kind: kind::IMPORT.into(),
                at: format_time(SystemTime::now()),
                outcome: outcome::REJECTED.into(),
                bundle_sha256: Some(bundle_sha256),
                code: Some(e.code.as_str().into()),
                detail: Some(e.cause.clone()),
                ..Default::default()
            })?;
            return Err(e);
        }
    };
    let m = &v.manifest;
    crate::fsutil::fault_point("import:verified");

    // 2. Ledger rules, in one exclusive transaction.
    let tx = ledger.begin()?;
    let (accepted, done) = tx.bundle_state(&bundle_sha256)?;
    let refuse = |code: Code, msg: String| -> Result<()> {
        let mut e = event_from(&v, &bundle_sha256, kind::IMPORT, outcome::REJECTED);
        e.code = Some(code.as_str().into());
        e.detail = Some(msg);
        tx.append(e)?;
        Ok(())
    };
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
    if !accepted {
        let sid = m.source.server_id.as_deref();
        let seq = m.sequence.number as i64;
        if let Some(max) = tx.max_sequence(&m.sequence.key, &m.source.host_name, sid)? {
            if seq <= max {
                let msg = format!(
                    "sequence {seq} from {} for {} is not above {max}, already imported: rollback or replay",
                    m.sequence.key, m.source.host_name
                );
                refuse(Code::LedgerRollback, msg.clone())?;
                tx.commit()?;
                return Err(Error::new(Code::LedgerRollback, msg));
            }
        }
        if let Some(newest) = tx.newest_created(&m.source.host_name, sid)? {
            if m.created.as_str() <= newest.as_str() {
                let msg = format!(
                    "the bundle was created {}, not after {newest}, the newest already imported for {} (from any key)",
                    m.created, m.source.host_name
                );
                refuse(Code::LedgerOlder, msg.clone())?;
                tx.commit()?;
                return Err(Error::new(Code::LedgerOlder, msg));
            }
        }
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
    let items: Vec<Item> = m
        .payload
        .iter()
        .zip(&written)
        .map(|(p, w)| Item {
            name: output_name(p).to_string(),
            path: w.clone(),
        })
        .collect();
    let result = match &opts.target {
        Target::Outbox(dir) => {
            handover::to_outbox(dir, m, &items, opts.enterprise.as_deref(), &bundle_sha256).map(
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
            &items,
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
