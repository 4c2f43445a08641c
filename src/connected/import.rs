//! Import: everything `verify` checks, then the ledger's freshness rules,
//! then hand-over, with every attempt recorded (docs/import.md). The
//! bundle's states and transitions are `crate::state::lifecycle`'s; this module
//! drives them for one bundle.
//!
//! One open, one read: the bundle is opened once (`O_NOFOLLOW|O_NONBLOCK`,
//! checked with `fstat`; [`Opened`]), and only that descriptor is read:
//! batch ordering included. The source is never modified. The bundle is
//! verified, decrypted and written into private temporary files in the
//! outbox (or a private spool for HTTP) by the single verification core,
//! and its SHA-256 for the ledger comes from that read.
//!
//! Crash safety: an `accepted` record is committed before the hand-over and
//! a `handover done` record after it. An import killed anywhere in between
//! leaves an accepted-but-not-handed-over bundle, which the same import,
//! re-run, hands over (idempotently) instead of refusing it, unless a newer
//! bundle for the instance was imported meanwhile: then it is recorded as
//! superseded and not handed over. An HTTP hand-over waits on the network
//! with the state lock released, under a lease (`handover started`, with
//! its pid) that keeps other runs from handing over the instance meanwhile.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::base::error::{Code, Error, Result};
use crate::connected::handover::{self, Target};
use crate::format::manifest::{BundleId, Fingerprint, HexDigest, Manifest, Timestamp};
use crate::format::rules::output_name;
use crate::state::ledger::Ledger;
use crate::state::lifecycle::{self, Batch, Decision, Replaced};
use crate::state::StateDir;
pub use crate::verify::Opened;
use crate::verify::{
    verify_bundle, Ask, Dir, Hashing, Naming, Replace, Staged, Verified, VerifyOptions,
};

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
    /// How the upload steps' confirm step runs `cloud status` against this
    /// state directory.
    pub status: handover::StatusCommand,
}

/// A bundle imported and handed over.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    /// SHA-256 of the bundle file, from the verifying read.
    pub bundle_sha256: HexDigest,
    /// The bundle id from the signed manifest.
    pub bundle_id: BundleId,
    /// The source instance's host name.
    pub host_name: String,
    /// The source instance's server id (a UUID), when the manifest has one.
    pub server_id: Option<String>,
    /// The bundle's per-signer sequence number.
    pub sequence: u64,
    /// Fingerprint of the key that numbers the bundles.
    pub signer: Fingerprint,
    /// The bundle's signed creation time.
    pub created: Timestamp,
    /// True when this run finished a hand-over an earlier run had started.
    pub resumed: bool,
    /// Outbox paths, or HTTP results.
    pub handed_over: Vec<String>,
    /// The file(s) to upload to GitHub Enterprise Cloud (outbox hand-over):
    /// the usage file, the one file to upload for the instance.
    pub upload: Vec<String>,
    /// Earlier hand-overs of the instance, not confirmed by GitHub, that
    /// this one replaces: not to be uploaded; moved into `superseded/`.
    pub replaced: Vec<Replaced>,
    /// Where their files went.
    pub moved_aside: Vec<String>,
    /// Files that could not be moved aside, with the reason.
    pub move_errors: Vec<String>,
}

/// Remove what a killed run may have left: spools of processes that are
/// gone, and airlock's own temporary files in the outbox. Safe because the
/// state lock is held (a live HTTP hand-over's spool is its own process's).
fn clean_leftovers(state: &Path, outbox: Option<&Path>) {
    if let Ok(rd) = std::fs::read_dir(state.join("spool")) {
        for e in rd.flatten() {
            let live = e
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(crate::io::fsutil::other_process_running);
            if !live {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    if let Some(dir) = outbox {
        crate::io::fsutil::sweep_stale(dir);
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
    /// Genuine but not the newest: a newer bundle for its instance was
    /// imported in the same run (or overtook it before its hand-over), so
    /// it is not handed over.
    Superseded,
    /// Refused: the bundle, or what it needs (trust, identity), is wrong;
    /// a rollback or replay is refused too.
    Refused,
    /// Not judged: a failure of this host (disk, lock, outbox, endpoint),
    /// a hand-over in flight in another process, or a file still changing.
    /// Try again later.
    Retry,
}

impl Disposition {
    /// Counts as a failure in a batch's exit status.
    pub fn is_failure(self) -> bool {
        matches!(self, Disposition::Refused | Disposition::Retry)
    }
}

/// Sort an import's outcome into a disposition.
pub fn disposition<R>(r: &Result<R>) -> Disposition {
    use crate::base::error::Class;
    let Err(e) = r else {
        return Disposition::Imported;
    };
    match e.code {
        Code::AlreadyImported | Code::LicenceApplied => Disposition::AlreadyImported,
        Code::LedgerSuperseded => Disposition::Superseded,
        Code::LedgerOlder | Code::LedgerRollback => Disposition::Refused,
        Code::BundleChanged | Code::StateLock | Code::LedgerIo | Code::Resources => {
            Disposition::Retry
        }
        Code::NotAFile => Disposition::Refused,
        _ => match e.code.class() {
            Class::Io | Class::Handover | Class::Internal => Disposition::Retry,
            // An appliance that is busy or unreachable: try again later; one
            // that reports another licence after the apply is a verdict.
            Class::Appliance if e.code != Code::LicenceNotActive => Disposition::Retry,
            _ => Disposition::Refused,
        },
    }
}

/// The order a batch is imported in: per instance (host name and server id),
/// newest first, so the newest bundle of each instance is handed over and
/// the older ones in the batch are superseded rather than handed over first
/// and replaced a moment later (GitHub keeps only the last upload per
/// server). Files whose manifest cannot be read (they will be refused) come
/// last, in the order given. Each bundle is read through its descriptor.
pub fn batch_order(bundles: Vec<Opened>) -> Vec<Opened> {
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for b in bundles {
        match b.sort_key() {
            Some((inst, created)) => known.push((inst, created, b)),
            None => unknown.push(b),
        }
    }
    known.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(b.1.cmp(&a.1))
            .then(a.2.path().cmp(b.2.path()))
    });
    known
        .into_iter()
        .map(|(_, _, b)| b)
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

/// Where the verifying read writes the payload: straight into the outbox
/// (private temporary files, published after the ledger accepted the
/// bundle), or this process's private spool for HTTP hand-over.
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
            // Per process: an HTTP hand-over releases the state lock while
            // it waits, and another run's clean-up must not take its files.
            let spool = state.join("spool").join(std::process::id().to_string());
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

/// What the verifying read left behind: the verified bundle, its payload
/// staged in `dir`, and the bundle file's SHA-256 taken by that read.
struct StagedBundle {
    dir: PathBuf,
    /// Removes the HTTP spool (and the plaintext in it) when dropped.
    spool: Option<RemoveOnDrop>,
    v: Verified,
    staged: Staged,
    sha256: HexDigest,
}

/// Step 1, one read: verify the opened bundle, decrypt and stage the
/// payload where it goes. A refusal by the verification is recorded
/// (`record_rejected`) before it is returned.
fn verify_and_stage(
    bundle: Opened,
    opts: &ImportOptions<'_>,
    ledger: &mut Ledger,
    to_outbox: bool,
) -> Result<StagedBundle> {
    let (file, name) = bundle.into_parts();
    let (dir, spool) = staging_dir(opts.state.path(), &opts.target)?;
    let outbox_name =
        |m: &Manifest, p: &crate::format::manifest::PayloadEntry| handover::outbox_name(m, p);
    let plain_name =
        |_: &Manifest, p: &crate::format::manifest::PayloadEntry| output_name(p).to_string();
    let naming: Naming<'_> = if to_outbox { &outbox_name } else { &plain_name };
    let dest = Dir::new(&dir, naming, Replace::IfIdentical, Hashing::Take);
    let ask = Ask {
        bundle_sha256: Hashing::Take,
        // The connected side takes in usage bundles only: a licence bundle
        // is refused by its signed kind (decision 81).
        kind: Some(crate::format::manifest::BundleKind::Usage),
    };
    let (v, staged) = match verify_bundle(file, &opts.verify, ask, dest) {
        Ok((v, dest)) => (v, dest.into_staged()),
        Err(refusal) => {
            // Tests change the file here: the record must not follow.
            crate::io::fsutil::pause_point(crate::io::fsutil::Pause::ImportRefused);
            // A file that changed while it was read is no verdict on a
            // bundle: tried again later, without a record per attempt.
            if refusal.error.code != Code::BundleChanged {
                lifecycle::record_rejected(ledger, &name, &refusal, &opts.verify)?;
            }
            return Err(refusal.error);
        }
    };
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

/// The file(s) to upload to GitHub from an outbox hand-over: the usage
/// files (every file when the bundle carries none); none for HTTP.
fn upload_files(target: &Target, m: &Manifest, staged: &Staged) -> Vec<String> {
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

/// The replaced hand-overs' files leave the outbox's top level, so that it
/// holds one file to upload per instance. Returns where they went, and one
/// message per file that could not be moved.
fn move_replaced_aside(replaced: &[Replaced]) -> (Vec<String>, Vec<String>) {
    let files: Vec<PathBuf> = replaced
        .iter()
        .flat_map(|r| r.files.iter().map(PathBuf::from))
        .collect();
    let (moved, move_errors) = lifecycle::move_into(&files, lifecycle::SUPERSEDED_DIR);
    let moved = moved.iter().map(|p| p.display().to_string()).collect();
    (moved, move_errors)
}

/// Import a bundle by name: open it once ([`Opened::open`]), then
/// [`import_result`] as a batch of one.
pub fn import(bundle: &Path, opts: &ImportOptions<'_>) -> Result<ImportReport> {
    import_result(Opened::open(bundle), opts, &mut Batch::new())
}

/// Import what [`Opened::open`] gave: a refusal to open (not a regular
/// file, a symbolic link, unreadable) is recorded like any refusal.
pub fn import_result(
    opened: Result<Opened>,
    opts: &ImportOptions<'_>,
    batch: &mut Batch,
) -> Result<ImportReport> {
    match opened {
        Ok(b) => import_opened(b, opts, batch),
        Err(e) => {
            let mut ledger = Ledger::open(opts.state.path())?;
            lifecycle::refused_unverified(
                &mut ledger,
                &e,
                None,
                None,
                None,
                opts.verify.now.now(),
            )?;
            Err(e)
        }
    }
}

/// Step 3: hand the staged payload over. Into the outbox under the state
/// lock; by HTTP under a lease, with the state lock released while it waits
/// on the network. The outer error: the lease could not be taken or the
/// lock taken again; the inner result is the hand-over's.
fn hand_over(
    opts: &ImportOptions<'_>,
    ledger: &mut Ledger,
    v: &Verified,
    sha256: &HexDigest,
    dir: &Path,
    staged: Staged,
    replaced: &[Replaced],
) -> Result<Result<Vec<String>>> {
    let m = &v.manifest;
    Ok(match &opts.target {
        Target::Outbox(_) => handover::to_outbox(
            dir,
            m,
            staged,
            opts.enterprise.as_deref(),
            &opts.status,
            sha256,
            replaced,
        )
        .map(|ps| ps.iter().map(|p| p.display().to_string()).collect()),
        Target::Http {
            url,
            token,
            ca_file,
            proxies,
            timing,
        } => {
            // The lease first, then the network without the state lock.
            lifecycle::start_handover(ledger, v, sha256, opts.verify.now.now())?;
            opts.state.unlocked(|| {
                handover::to_http(
                    url,
                    token.as_ref().map(|t| t.as_str()),
                    ca_file.as_deref(),
                    proxies,
                    *timing,
                    m,
                    &staged,
                )
            })?
        }
    })
}

/// Import an opened bundle: verify it in one read (step 1), apply the
/// ledger's rules with the batch's acceptances (step 2), hand it over and
/// record the hand-over (step 3), in that order; each step's refusal or
/// failure is recorded before it is returned.
pub fn import_opened(
    bundle: Opened,
    opts: &ImportOptions<'_>,
    batch: &mut Batch,
) -> Result<ImportReport> {
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
        sha256,
    } = verify_and_stage(bundle, opts, &mut ledger, outbox.is_some())?;
    let m = &v.manifest;
    crate::io::fsutil::fault_point(crate::io::fsutil::Fault::ImportVerified);

    // 2. Ledger rules, in one exclusive transaction, at the moment of decision.
    let now = || opts.verify.now.now();
    let decision = lifecycle::decide(&mut ledger, &v, &sha256, batch, now(), opts.verify.skew)?;
    batch.accepted(sha256.clone());
    crate::io::fsutil::fault_point(crate::io::fsutil::Fault::ImportAccepted);

    // 3. Hand-over, then record it.
    let replaced = match &opts.target {
        Target::Outbox(_) => lifecycle::replaced_by(&ledger.events()?, m, &sha256),
        Target::Http { .. } => Vec::new(),
    };
    let upload = upload_files(&opts.target, m, &staged);
    // The replaced files leave the top level first: a bundle of the same
    // second (a higher sequence from the same key) has the same names.
    let (moved_aside, move_errors) = move_replaced_aside(&replaced);
    let result = hand_over(opts, &mut ledger, &v, &sha256, &dir, staged, &replaced)?;
    let handed_over = lifecycle::end_handover(&mut ledger, &v, &sha256, now(), result)?;
    Ok(ImportReport {
        bundle_sha256: sha256.clone(),
        bundle_id: m.bundle_id.clone(),
        host_name: m.source.host().to_string(),
        server_id: m.source.server_id.clone(),
        sequence: m.sequence.number,
        signer: m.sequence.key.clone(),
        created: m.created,
        resumed: decision == Decision::Resume,
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
    use crate::crypto::trust::TrustStore;
    use crate::verify::{Clock, DEFAULT_SKEW};

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
                    progress: crate::base::progress::Progress::none(),
                    trust: &t,
                    identities: None,
                    require_signers: 1,
                    now: Clock::Fixed(humantime::parse_rfc3339(at).unwrap()),
                    skew: DEFAULT_SKEW,
                },
                state,
                target: Target::Outbox(outbox.to_path_buf()),
                enterprise: Some("octo".into()),
                status: Default::default(),
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
        assert_eq!(
            r.bundle_sha256,
            crate::io::fsutil::sha256_file(&file).unwrap()
        );
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
            .filter(|e| e.outcome == crate::state::ledger::Outcome::Rejected)
            .collect();
        assert_eq!(rejected.len(), 2);
        // What the one read got (issue 27: no second read): the tampered
        // bundle's prefix up to the member that failed, and its names from
        // the manifest that read checked; the expired one was refused before
        // its payload was read: the end of the file the trailer check read.
        use sha2::Digest;
        let f = root().join("fixtures/bundles/fail_tampered_payload.airlock.zip");
        let bytes = std::fs::read(&f).unwrap();
        let r = rejected[0].read.as_ref().unwrap();
        assert_eq!((r.file_size, r.read_offset), (bytes.len() as u64, 0));
        assert!(r.read_bytes > 0 && r.read_bytes < r.file_size, "{r:?}");
        let prefix = &bytes[..r.read_bytes as usize];
        assert_eq!(
            r.read_sha256.as_str(),
            hex::encode(sha2::Sha256::digest(prefix))
        );
        assert_eq!(rejected[0].bundle_sha256, None);
        assert!(rejected[0].bundle_id.is_some());
        assert!(r.file_name.ends_with("fail_tampered_payload.airlock.zip"));
        let g =
            std::fs::read(root().join("fixtures/bundles/golden_clear_users.airlock.zip")).unwrap();
        let r = rejected[1].read.as_ref().unwrap();
        assert_eq!(r.read_offset + r.read_bytes, g.len() as u64);
        let tail = &g[r.read_offset as usize..];
        assert_eq!(
            r.read_sha256.as_str(),
            hex::encode(sha2::Sha256::digest(tail))
        );
        assert_eq!(rejected[1].bundle_sha256, None);
        assert!(rejected[1].bundle_id.is_some());
    }
}
