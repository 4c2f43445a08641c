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

use serde::Serialize;

use crate::bundle::container::open_bundle;
use crate::bundle::manifest::format_time;
use crate::bundle::rules::output_name;
use crate::bundle::verify::{
    check_freshness, verify_bundle, Clock, Destination, Staged, Verified, VerifyOptions,
};
use crate::error::{Code, Error, Result};
use crate::handover::{self, Target};
use crate::ledger::{Event, Kind, Ledger, Outcome};
use crate::state::StateDir;

/// What an import needs besides the bundle.
pub struct ImportOptions<'a> {
    /// How the bundle is verified (trust, identities, signers, clock); the
    /// clock also dates the ledger records.
    pub verify: VerifyOptions<'a>,
    /// Locked state directory: serialises imports on this host.
    pub state: &'a StateDir,
    /// Where the verified payload is handed over.
    pub target: Target,
    /// The GitHub Enterprise Cloud enterprise slug: the upload steps then
    /// link its licensing page.
    pub enterprise: Option<String>,
}

/// A bundle imported and handed over.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    /// SHA-256 of the bundle file, lowercase hex, from the verifying read.
    pub bundle_sha256: String,
    /// The bundle id from the signed manifest.
    pub bundle_id: String,
    /// The source instance's host name.
    pub host_name: String,
    /// The source instance's server id (a UUID), when the manifest has one.
    pub server_id: Option<String>,
    /// The bundle's per-signer sequence number.
    pub sequence: u64,
    /// Fingerprint of the key that numbers the bundles.
    pub signer: String,
    /// The bundle's signed creation time (RFC 3339).
    pub created: String,
    /// True when this run finished a hand-over an earlier run had started.
    pub resumed: bool,
    /// Outbox paths, or HTTP results.
    pub handed_over: Vec<String>,
    /// The file(s) to upload to GitHub Enterprise Cloud (outbox hand-over):
    /// the usage file, the one file to upload for the instance.
    pub upload: Vec<String>,
    /// Earlier hand-overs of the instance, not confirmed by GitHub, that
    /// this one replaces: not to be uploaded; moved into `superseded/`.
    pub replaced: Vec<handover::Replaced>,
    /// Where their files went.
    pub moved_aside: Vec<String>,
    /// Files that could not be moved aside, with the reason.
    pub move_errors: Vec<String>,
}

/// Earlier hand-overs of the same instance into an outbox that GitHub has
/// not confirmed (nor superseded): all of them, including those whose files
/// an earlier import already moved aside.
fn replaced_by(
    events: &[Event],
    m: &crate::bundle::Manifest,
    sha: &str,
) -> Vec<handover::Replaced> {
    let settled: std::collections::HashSet<&str> = events
        .iter()
        .filter(|e| e.kind == Kind::Confirm)
        .filter_map(|e| e.bundle_sha256.as_deref())
        .collect();
    let mut seen = std::collections::HashSet::new();
    events
        .iter()
        .filter(|e| {
            e.kind == Kind::Handover
                && e.outcome == Outcome::Done
                && e.host_name.as_deref() == Some(m.source.host_name.as_str())
                && e.server_id == m.source.server_id
        })
        .filter(|e| {
            e.bundle_sha256
                .as_deref()
                .is_some_and(|s| s != sha && !settled.contains(s))
        })
        .filter(|e| seen.insert(e.bundle_sha256.clone()))
        .map(|e| handover::Replaced {
            bundle_id: e.bundle_id.clone().unwrap_or_default(),
            created: e.created.clone().unwrap_or_default(),
            files: crate::fleet::handover_files(e),
        })
        // Outbox hand-overs record absolute paths; HTTP ones do not.
        .filter(|r| r.files.iter().any(|f| Path::new(f).is_absolute()))
        .collect()
}

/// Remove what a killed run may have left: the spool, and airlock's own
/// temporary files in the outbox. Safe because the state lock is held.
fn clean_leftovers(state: &Path, outbox: Option<&Path>) {
    let _ = std::fs::remove_dir_all(state.join("spool"));
    if let Some(dir) = outbox {
        crate::fsutil::sweep_stale(dir);
    }
}

/// A record about a verified bundle, dated by `clock`.
fn event_from(
    v: &Verified,
    bundle_sha256: &str,
    kind: Kind,
    outcome: Outcome,
    clock: Clock,
) -> Event {
    let m = &v.manifest;
    let signer = v
        .signers
        .iter()
        .find(|s| s.fingerprint == m.sequence.key)
        .or(v.signers.first());
    Event {
        bundle_sha256: Some(bundle_sha256.into()),
        bundle_id: Some(m.bundle_id.to_string()),
        signer: Some(m.sequence.key.to_string()),
        principal: signer.map(|s| s.principals.clone()),
        sequence: Some(m.sequence.number as i64),
        host_name: Some(m.source.host_name.clone()),
        server_id: m.source.server_id.clone(),
        created: Some(m.created.to_string()),
        expires: Some(m.expires.to_string()),
        ..Event::new(kind, outcome, format_time(clock.now()))
    }
}

/// What a batch or a drop folder does with a bundle after an import attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    /// Verified and handed over now.
    Imported,
    /// The same bundle was handed over before: nothing to do.
    AlreadyImported,
    /// Genuine but not the newest: a newer bundle for its instance (or a
    /// higher sequence from its key) was imported, so it is not handed over.
    Superseded,
    /// Refused: the bundle, or what it needs (trust, identity), is wrong.
    Refused,
    /// Not judged: a failure of this host (disk, lock, outbox, endpoint) or a
    /// file still changing. Try again later.
    Retry,
}

impl Disposition {
    /// Counts as a failure in a batch's exit status.
    pub fn is_failure(self) -> bool {
        matches!(self, Disposition::Refused | Disposition::Retry)
    }
}

/// Sort an import's outcome into a disposition.
pub fn disposition(r: &Result<ImportReport>) -> Disposition {
    use crate::error::Class;
    let Err(e) = r else {
        return Disposition::Imported;
    };
    match e.code {
        Code::AlreadyImported => Disposition::AlreadyImported,
        Code::LedgerOlder | Code::LedgerRollback | Code::LedgerSuperseded => {
            Disposition::Superseded
        }
        Code::BundleChanged | Code::StateLock | Code::LedgerIo | Code::Resources => {
            Disposition::Retry
        }
        Code::NotAFile => Disposition::Refused,
        _ => match e.code.class() {
            Class::Io | Class::Handover | Class::Internal => Disposition::Retry,
            _ => Disposition::Refused,
        },
    }
}

/// The order a batch is imported in: per instance (host name and server id),
/// newest first, so the newest bundle of each instance is handed over and
/// the older ones in the batch are superseded rather than handed over first
/// and replaced a moment later (GitHub keeps only the last upload per
/// server). Files whose manifest cannot be read (they will be refused) come
/// last, in the order given.
pub fn batch_order(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for p in paths {
        let m = crate::bundle::sign::manifest_bytes(&p)
            .and_then(|b| crate::bundle::Manifest::parse(&b));
        match m {
            Ok(m) => known.push((
                (m.source.host_name, m.source.server_id.unwrap_or_default()),
                m.created,
                p,
            )),
            Err(_) => unknown.push(p),
        }
    }
    known.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    known
        .into_iter()
        .map(|(_, _, p)| p)
        .chain(unknown)
        .collect()
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
    outcome: Outcome,
    e: Error,
    clock: Clock,
) -> Result<Error> {
    let mut ev = event_from(v, sha, Kind::Import, outcome, clock);
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
        if m.created.to_string() <= newest {
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
        &m.created.to_string(),
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
            // Absolute, so that the ledger's records of hand-overs name
            // files that later runs (from any directory) can find.
            let dir = std::fs::canonicalize(dir).map_err(|e| {
                Error::new(
                    Code::HandoverFailed,
                    format!("cannot resolve outbox {}: {e}", dir.display()),
                )
            })?;
            Ok((dir, None))
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
        bundle_sha256: sha,
        code: Some(e.code.as_str().into()),
        detail: Some(e.cause.clone()),
        ..Event::new(Kind::Import, Outcome::Rejected, format_time(opts.now.now()))
    };
    if let Some(m) = signed {
        ev.bundle_id = Some(m.bundle_id.to_string());
        ev.signer = Some(m.sequence.key.to_string());
        ev.sequence = Some(m.sequence.number as i64);
        ev.host_name = Some(m.source.host_name);
        ev.server_id = m.source.server_id;
        ev.created = Some(m.created.to_string());
        ev.expires = Some(m.expires.to_string());
    }
    ledger.append(ev)?;
    Ok(())
}

/// What the verifying read left behind: the verified bundle, its payload
/// staged in `dir`, and the bundle file's SHA-256 taken by that read.
struct StagedBundle {
    dir: PathBuf,
    /// Removes the HTTP spool (and the plaintext in it) when dropped.
    spool: Option<RemoveOnDrop>,
    v: Verified,
    staged: Staged,
    sha256: String,
}

/// Step 1, one read: open the bundle, verify it, decrypt and stage the
/// payload where it goes. A refusal by the open or the verification is
/// recorded (`record_rejected`) before it is returned.
fn verify_and_stage(
    bundle: &Path,
    opts: &ImportOptions<'_>,
    ledger: &mut Ledger,
    to_outbox: bool,
) -> Result<StagedBundle> {
    let file = match open_bundle(bundle) {
        Ok(f) => f,
        Err(e) => {
            record_rejected(ledger, None, &e, &opts.verify)?;
            return Err(e);
        }
    };
    let mut keep = file.try_clone().ok();
    let (dir, spool) = staging_dir(opts.state.path(), &opts.target)?;
    let outbox_name = |m: &crate::bundle::Manifest, p: &crate::bundle::manifest::PayloadEntry| {
        handover::outbox_name(m, p)
    };
    let plain_name = |_: &crate::bundle::Manifest, p: &crate::bundle::manifest::PayloadEntry| {
        output_name(p).to_string()
    };
    let dest = Destination::Dir {
        dir: &dir,
        name: if to_outbox { &outbox_name } else { &plain_name },
        refuse_existing: false,
        hash_plaintext: true,
    };
    let (v, staged) = match verify_bundle(file, &opts.verify, &dest, true) {
        Ok(x) => x,
        Err(e) => {
            record_rejected(ledger, keep.as_mut(), &e, &opts.verify)?;
            return Err(e);
        }
    };
    drop(keep);
    let sha256 = v
        .bundle_sha256
        .clone()
        .ok_or_else(|| Error::new(Code::Internal, "the verifying read took no bundle hash"))?;
    Ok(StagedBundle {
        dir,
        spool,
        v,
        staged,
        sha256,
    })
}

/// Step 2, the ledger's rules in one exclusive transaction, at the moment
/// of decision: refuse (and record) a bundle already handed over, a
/// rollback, an older or superseded bundle, or one expired by now; else
/// record it accepted. Returns whether an earlier run had accepted it
/// already (this run resumes its hand-over).
fn apply_rules(
    ledger: &mut Ledger,
    v: &Verified,
    bundle_sha256: &str,
    opts: &ImportOptions<'_>,
) -> Result<bool> {
    let m = &v.manifest;
    let clock = opts.verify.now;
    let tx = ledger.begin()?;
    let (accepted, done) = tx.bundle_state(bundle_sha256)?;
    if done {
        let mut e = event_from(
            v,
            bundle_sha256,
            Kind::Import,
            Outcome::AlreadyImported,
            clock,
        );
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
    let verdict = if accepted {
        check_resume(&tx, m)?.map(|e| (Outcome::Superseded, e))
    } else {
        check_rules(&tx, m)?.map(|e| (Outcome::Rejected, e))
    };
    let verdict = match verdict {
        Some(v) => Some(v),
        None => check_freshness(m, opts.verify.now.now(), opts.verify.skew)
            .err()
            .map(|e| (Outcome::Rejected, e)),
    };
    if let Some((outcome, e)) = verdict {
        let e = refuse(&tx, v, bundle_sha256, outcome, e, clock)?;
        tx.commit()?;
        return Err(e);
    }
    if !accepted {
        tx.append(event_from(
            v,
            bundle_sha256,
            Kind::Import,
            Outcome::Accepted,
            clock,
        ))?;
    }
    tx.commit()?;
    Ok(accepted)
}

/// The file(s) to upload to GitHub from an outbox hand-over: the usage
/// files (every file when the bundle carries none); none for HTTP.
fn upload_files(target: &Target, m: &crate::bundle::Manifest, staged: &Staged) -> Vec<String> {
    match target {
        Target::Outbox(_) => {
            let any_usage = m.payload.iter().any(|p| p.is_usage());
            staged
                .files
                .iter()
                .zip(&m.payload)
                .filter(|(_, p)| !any_usage || p.is_usage())
                .map(|(f, _)| f.target.display().to_string())
                .collect()
        }
        Target::Http { .. } => Vec::new(),
    }
}

/// After step 3: record the hand-over's outcome, `done` (with the paths or
/// HTTP results) or `failed` (with its code and cause), and pass it on.
fn record_handover(
    ledger: &mut Ledger,
    v: &Verified,
    bundle_sha256: &str,
    clock: Clock,
    result: Result<Vec<String>>,
) -> Result<Vec<String>> {
    match result {
        Ok(handed_over) => {
            crate::fsutil::fault_point("import:handed-over");
            let mut e = event_from(v, bundle_sha256, Kind::Handover, Outcome::Done, clock);
            e.detail = Some(handed_over.join("; "));
            ledger.append(e)?;
            Ok(handed_over)
        }
        Err(err) => {
            let mut e = event_from(v, bundle_sha256, Kind::Handover, Outcome::Failed, clock);
            e.code = Some(err.code.as_str().into());
            e.detail = Some(err.cause.clone());
            ledger.append(e)?;
            Err(err)
        }
    }
}

/// The replaced hand-overs' files leave the outbox's top level, so that it
/// holds one file to upload per instance. Returns where they went, and one
/// message per file that could not be moved.
fn move_replaced_aside(replaced: &[handover::Replaced]) -> (Vec<String>, Vec<String>) {
    let files: Vec<PathBuf> = replaced
        .iter()
        .flat_map(|r| r.files.iter().map(PathBuf::from))
        .collect();
    let (moved, move_errors) = handover::move_aside(&files);
    let moved = moved.iter().map(|p| p.display().to_string()).collect();
    (moved, move_errors)
}

/// Import a bundle: verify it in one read (step 1), apply the ledger's
/// rules (step 2), hand it over and record the hand-over (step 3), in that
/// order; each step's refusal or failure is recorded before it is returned.
pub fn import(bundle: &Path, opts: &ImportOptions<'_>) -> Result<ImportReport> {
    let state = opts.state.path();
    let outbox = match &opts.target {
        Target::Outbox(d) => Some(d.as_path()),
        Target::Http { .. } => None,
    };
    clean_leftovers(state, outbox);
    let mut ledger = Ledger::open(state)?;

    // 1. One read: verify, decrypt and stage the payload where it goes.
    let StagedBundle {
        dir,
        spool: _spool,
        v,
        staged,
        sha256: bundle_sha256,
    } = verify_and_stage(bundle, opts, &mut ledger, outbox.is_some())?;
    let m = &v.manifest;
    crate::fsutil::fault_point("import:verified");

    // 2. Ledger rules, in one exclusive transaction, at the moment of decision.
    let clock = opts.verify.now;
    let resumed = apply_rules(&mut ledger, &v, &bundle_sha256, opts)?;
    crate::fsutil::fault_point("import:accepted");

    // 3. Hand-over, then record it.
    let replaced = match &opts.target {
        Target::Outbox(_) => replaced_by(&ledger.events()?, m, &bundle_sha256),
        Target::Http { .. } => Vec::new(),
    };
    let upload = upload_files(&opts.target, m, &staged);
    let result = match &opts.target {
        Target::Outbox(_) => handover::to_outbox(
            &dir,
            m,
            staged,
            opts.enterprise.as_deref(),
            &bundle_sha256,
            &replaced,
        )
        .map(|ps| {
            ps.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        }),
        Target::Http {
            url,
            token,
            ca_file,
            timing,
        } => handover::to_http(
            url,
            token.as_ref().map(|t| t.as_str()),
            ca_file.as_deref(),
            *timing,
            m,
            &staged,
        ),
    };
    let handed_over = record_handover(&mut ledger, &v, &bundle_sha256, clock, result)?;
    let (moved_aside, move_errors) = move_replaced_aside(&replaced);
    Ok(ImportReport {
        bundle_sha256,
        bundle_id: m.bundle_id.to_string(),
        host_name: m.source.host_name.clone(),
        server_id: m.source.server_id.clone(),
        sequence: m.sequence.number,
        signer: m.sequence.key.to_string(),
        created: m.created.to_string(),
        resumed,
        handed_over,
        upload,
        replaced,
        moved_aside,
        move_errors,
    })
}

#[cfg(test)]
mod tests {
    //! Import against the golden fixtures (made 2026-11-01, valid for 30
    //! days), judged at a fixed clock so they stay valid.
    use super::*;
    use crate::bundle::verify::{Clock, DEFAULT_SKEW};
    use crate::trust::TrustStore;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn trust() -> TrustStore {
        let k = root().join("keys");
        TrustStore::load(&k.join("allowed_signers"), Some(&k.join("revoked_keys"))).unwrap()
    }

    fn run(bundle: &str, state: &StateDir, outbox: &Path, at: &str) -> Result<ImportReport> {
        let t = trust();
        import(
            &root().join("fixtures/bundles").join(bundle),
            &ImportOptions {
                verify: VerifyOptions {
                    trust: &t,
                    identities: None,
                    require_signers: 1,
                    now: Clock::Fixed(humantime::parse_rfc3339(at).unwrap()),
                    skew: DEFAULT_SKEW,
                },
                state,
                target: Target::Outbox(outbox.to_path_buf()),
                enterprise: Some("octo".into()),
            },
        )
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    const AT: &str = "2026-11-02T00:00:00Z";

    #[test]
    fn accepted_bundles_land_in_the_outbox_with_their_steps_and_the_ledger_hash_of_the_file() {
        let d = tempfile::tempdir().unwrap();
        let state = StateDir::open(&d.path().join("state")).unwrap();
        let outbox = d.path().join("outbox");
        let r = run("golden_encrypted_users.airlock.zip", &state, &outbox, AT).unwrap();
        let file = root().join("fixtures/bundles/golden_encrypted_users.airlock.zip");
        assert_eq!(r.bundle_sha256, crate::fsutil::sha256_file(&file).unwrap());
        let n = names(&outbox);
        assert_eq!(n.len(), 2, "{n:?}");
        assert!(n.iter().any(|f| f.ends_with(".UPLOAD.txt")));
        // Again: already imported, and nothing changes.
        let e = run("golden_encrypted_users.airlock.zip", &state, &outbox, AT)
            .err()
            .unwrap();
        assert_eq!(e.code, Code::AlreadyImported);
        assert_eq!(names(&outbox), n);
        Ledger::open(state.path()).unwrap().verify_chain().unwrap();
    }

    #[test]
    fn refusals_are_recorded_and_leave_the_outbox_empty() {
        let d = tempfile::tempdir().unwrap();
        let state = StateDir::open(&d.path().join("state")).unwrap();
        let outbox = d.path().join("outbox");
        let e = run("fail_tampered_payload.airlock.zip", &state, &outbox, AT)
            .err()
            .unwrap();
        assert_eq!(e.code, Code::MemberDigest);
        // Expired at the moment of decision.
        let e = run(
            "golden_clear_users.airlock.zip",
            &state,
            &outbox,
            "2027-01-01T00:00:00Z",
        )
        .err()
        .unwrap();
        assert_eq!(e.code, Code::BundleExpired);
        assert!(names(&outbox).is_empty(), "{:?}", names(&outbox));
        let ev = Ledger::open(state.path()).unwrap().events().unwrap();
        let rejected: Vec<_> = ev
            .iter()
            .filter(|e| e.outcome == Outcome::Rejected)
            .collect();
        assert_eq!(rejected.len(), 2);
        // The refused file's hash is recorded, taken from its descriptor.
        let f = root().join("fixtures/bundles/fail_tampered_payload.airlock.zip");
        assert_eq!(
            rejected[0].bundle_sha256.as_deref(),
            Some(crate::fsutil::sha256_file(&f).unwrap().as_str())
        );
    }

    #[test]
    fn resume_is_refused_once_a_newer_bundle_was_accepted() {
        let d = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(d.path()).unwrap();
        let m = crate::bundle::manifest::tests::sample();
        let ev = |created: &str, seq: i64, id: &str| Event {
            bundle_id: Some(id.into()),
            signer: Some(m.sequence.key.to_string()),
            sequence: Some(seq),
            host_name: Some(m.source.host_name.clone()),
            server_id: m.source.server_id.clone(),
            created: Some(created.into()),
            ..Event::new(
                Kind::Import,
                Outcome::Accepted,
                "2026-11-28T00:00:00Z".into(),
            )
        };
        // The sample itself (created 2026-11-28, sequence 1) was accepted.
        l.append(ev(&m.created.to_string(), 1, &m.bundle_id))
            .unwrap();
        {
            let tx = l.begin().unwrap();
            assert!(check_resume(&tx, &m).unwrap().is_none());
            assert!(check_rules(&tx, &m).unwrap().is_some(), "a replay");
        }
        // A newer one for the same instance: the resume is superseded.
        l.append(ev("2026-11-29T00:00:00Z", 2, "newer")).unwrap();
        let tx = l.begin().unwrap();
        let e = check_resume(&tx, &m).unwrap().unwrap();
        assert_eq!(e.code, Code::LedgerSuperseded);
        assert!(e.cause.contains("newer"), "{e}");
        // Another instance's bundles do not count.
        drop(tx);
        let mut other = m.clone();
        other.source.host_name = "other.example.com".into();
        let tx = l.begin().unwrap();
        assert!(check_resume(&tx, &other).unwrap().is_none());
    }
}
