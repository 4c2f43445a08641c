//! Verification: the algorithm of docs/format.md §6, step by step and in that
//! order, and the single verification core that `verify`, `extract`,
//! `import` and export's read-back all call (`verify_bundle`).
//!
//! One read, one decision: the bundle is opened once and that descriptor is
//! kept. The manifest and signatures are read and checked first; then one
//! sequential pass reads the whole file from its first byte to its last.
//! Each payload byte is read once in that pass and, in the same step,
//! CRC-checked, hashed against the signed digest, decrypted when asked, and
//! written to a private temporary file; every structural byte the pass meets
//! (headers, manifest, signatures, central directory) must equal what was
//! checked before, and the bundle's own SHA-256 for the ledger is taken from
//! that pass. A medium that answers differently the second time, or a file
//! that changes size or time meanwhile, fails with `BUNDLE-CHANGED`. Nothing
//! is published until the whole bundle checked out: the caller gets the
//! verified facts and the staged files, and publishes them (or drops them,
//! which deletes them).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tempfile::NamedTempFile;

use crate::blocks::{Piece, SideSha};
pub use crate::bundle::container::ReadFacts;
use crate::bundle::container::{
    member_read_error, open_bundle, Entry, Medium, MemberReader, Reader,
};
use crate::bundle::manifest::{
    BundleKind, HexDigest, Manifest, PayloadEntry, PayloadKind, MANIFEST_NAME, MAX_MANIFEST_LEN,
    MAX_SIGNATURES,
};
use crate::bundle::rules::{output_name, signature_member_name, CHUNK};
use crate::bundle::tee::Tee;
use crate::crypt::{self, Identities};
use crate::error::{Code, Error, Result};
use crate::fsutil;
use crate::sshsig::{SigError, SshSig, BUNDLE_NAMESPACE, MAX_ARMORED_LEN};
use crate::trust::TrustStore;
use crate::usage::{Sniff, Sniffer, UsageInfo};

pub use crate::clock::Clock;

/// Allowed clock difference between exporter and verifier.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(5 * 60);

/// What a verification trusts, decrypts with, and when it decides.
pub struct VerifyOptions<'a> {
    /// The allowed signers and revoked keys.
    pub trust: &'a TrustStore,
    /// Identities to decrypt encrypted payloads with; without them only the
    /// ciphertext is checked.
    pub identities: Option<&'a Identities>,
    /// Valid signatures needed from distinct trusted keys (at least 1).
    pub require_signers: usize,
    /// The clock freshness is judged by, at the moment of decision.
    pub now: Clock,
    /// How far in the future `created` may be (clock difference).
    pub skew: Duration,
}

/// A signature that passed crypto and trust.
#[derive(Debug, Clone, Serialize)]
pub struct AcceptedSigner {
    /// The key's `SHA256:` fingerprint.
    pub fingerprint: String,
    /// The principals of the trust file line that accepted it.
    pub principals: String,
    /// That line's number in the trust file.
    pub trust_line: usize,
}

/// What was checked about one payload member.
#[derive(Debug, Clone, Serialize)]
pub struct PayloadCheck {
    /// Member name, as listed.
    pub name: String,
    /// Member size as stored (the ciphertext when encrypted).
    pub size: u64,
    /// The signed SHA-256 of the member as stored, which it matched.
    pub sha256: HexDigest,
    /// What the member holds.
    pub kind: PayloadKind,
    /// A licence's signed reference number (kind `ghes-license` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<crate::bundle::manifest::LicenceReference>,
    /// The member is an age file.
    pub encrypted: bool,
    /// True when an encrypted member was decrypted to its end.
    pub decrypted: bool,
    /// True when the content was validated (clear, or decrypted).
    pub validated: bool,
    /// Size of the content (clear, or decrypted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext_size: Option<u64>,
    /// SHA-256 of the content, when it was taken (not by extract).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext_sha256: Option<HexDigest>,
    /// What the usage file says, when the member is one and was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageInfo>,
    /// True when the content was read and checked against the manifest's
    /// source: a member that is a GHES usage file, whatever its label, names
    /// that instance (decision 70). False only for an encrypted member that
    /// was not decrypted: extract and import check it when they decrypt.
    pub source_checked: bool,
}

/// A bundle that verified.
#[derive(Debug)]
pub struct Verified {
    /// The manifest, parsed and checked.
    pub manifest: Manifest,
    /// Its exact signed bytes.
    pub manifest_bytes: Vec<u8>,
    /// The signatures that passed crypto and trust.
    pub signers: Vec<AcceptedSigner>,
    /// Each payload member, in member order.
    pub payload: Vec<PayloadCheck>,
    /// SHA-256 of the whole file as read in the verifying pass (when asked).
    pub bundle_sha256: Option<String>,
    /// The moment freshness was decided.
    pub decided_at: SystemTime,
}

/// The container with its members sorted into their roles.
pub struct Layout {
    /// The strict reader, positioned nowhere in particular.
    pub reader: Reader,
    /// The payload members, in order, before the manifest.
    pub payload: Vec<Entry>,
    /// `manifest.json`.
    pub manifest: Entry,
    /// The signature members, in name order, after the manifest.
    pub signatures: Vec<Entry>,
}

/// Step 1: strict container, member roles and order.
pub fn open_layout<M: Medium + 'static>(medium: M) -> Result<Layout> {
    open_layout_noting(medium, &mut None)
}

/// `open_layout`, noting in `facts` what it read, also when it refuses
/// (`Reader::open_noting`; sorting the members reads nothing more).
fn open_layout_noting<M: Medium + 'static>(
    medium: M,
    facts: &mut Option<ReadFacts>,
) -> Result<Layout> {
    let reader = Reader::open_noting(medium, facts)?;
    let entries = reader.entries().to_vec();
    let mut payload = Vec::new();
    let mut manifest = None;
    let mut signatures: Vec<Entry> = Vec::new();
    for e in entries {
        if e.name == MANIFEST_NAME {
            if !signatures.is_empty() {
                return Err(Error::new(
                    Code::ZipStructure,
                    "manifest.json is not before the signatures",
                ));
            }
            manifest = Some(e);
        } else if e.name.starts_with("signatures/") {
            if manifest.is_none() {
                return Err(Error::new(
                    Code::ZipStructure,
                    "a signature comes before manifest.json",
                ));
            }
            if signatures.last().is_some_and(|l| l.name >= e.name) {
                return Err(Error::new(
                    Code::ZipStructure,
                    "signatures are not in name order",
                ));
            }
            signatures.push(e);
        } else {
            if manifest.is_some() {
                return Err(Error::new(
                    Code::ZipStructure,
                    format!("{} comes after manifest.json", e.name),
                ));
            }
            payload.push(e);
        }
    }
    let manifest =
        manifest.ok_or_else(|| Error::new(Code::NotABundle, "the zip has no manifest.json"))?;
    if signatures.is_empty() {
        return Err(Error::new(Code::SigMissing, "the bundle has no signature"));
    }
    if signatures.len() > MAX_SIGNATURES {
        return Err(Error::new(
            Code::ZipLimit,
            format!(
                "{} signatures; the limit is {MAX_SIGNATURES}",
                signatures.len()
            ),
        ));
    }
    Ok(Layout {
        reader,
        payload,
        manifest,
        signatures,
    })
}

fn sig_error(name: &str, e: SigError) -> Error {
    Error::new(Code::SigInvalid, format!("{name}: {e}"))
}

/// The signed part of a bundle, as read and checked.
pub struct Signed {
    /// The exact bytes of `manifest.json`.
    pub manifest: Vec<u8>,
    /// The signatures, parsed, in member order.
    pub sigs: Vec<SshSig>,
    /// The armored text of each signature member, in member order.
    pub texts: Vec<Vec<u8>>,
}

/// Step 2: read the manifest bytes and every signature; check each
/// signature cryptographically over those bytes. Any bad signature fails the
/// bundle: nothing unexplained rides along.
pub fn read_signed(layout: &mut Layout) -> Result<Signed> {
    let m = layout.manifest.clone();
    let manifest = layout.reader.read_small(&m, MAX_MANIFEST_LEN)?;
    let mut sigs = Vec::new();
    let mut texts = Vec::new();
    for e in layout.signatures.clone() {
        let text = layout.reader.read_small(&e, MAX_ARMORED_LEN)?;
        let sig = SshSig::from_armored(&text).map_err(|err| sig_error(&e.name, err))?;
        if signature_member_name(&sig) != e.name {
            return Err(Error::new(
                Code::SigInvalid,
                format!(
                    "{} holds a signature by another key ({})",
                    e.name,
                    sig.public_key.fingerprint()
                ),
            ));
        }
        if sig.namespace != BUNDLE_NAMESPACE {
            return Err(Error::new(
                Code::SigNamespace,
                format!(
                    "{} was made for namespace {:?}, not {BUNDLE_NAMESPACE:?}",
                    e.name, sig.namespace
                ),
            ));
        }
        sig.verify(&manifest)
            .map_err(|err| sig_error(&e.name, err))?;
        sigs.push(sig);
        texts.push(text);
    }
    Ok(Signed {
        manifest,
        sigs,
        texts,
    })
}

/// Step 4: apply the trust policy to every cryptographically valid signature.
pub fn check_trust(
    manifest: &Manifest,
    sigs: &[SshSig],
    trust: &TrustStore,
    required: usize,
) -> Result<Vec<AcceptedSigner>> {
    let created = manifest.created.system_time();
    let mut accepted = Vec::new();
    let mut first_err = None;
    let mut refusals: Vec<String> = Vec::new();
    for s in sigs {
        let checked = trust
            .check(&s.public_key, manifest.source.principal(), created)
            .and_then(|line| {
                // User presence is always required (ssh-keygen -Y verify
                // does not check it; airlock is stricter on purpose).
                if s.user_present() {
                    Ok(line)
                } else {
                    Err(Error::new(
                        Code::SigNoPresence,
                        format!(
                            "the FIDO signature by {} was made without touching the token",
                            s.public_key.fingerprint()
                        ),
                    ))
                }
            });
        match checked {
            Ok(line) => accepted.push(AcceptedSigner {
                fingerprint: s.public_key.fingerprint(),
                principals: line.principals.clone(),
                trust_line: line.line,
            }),
            Err(e) => {
                refusals.push(format!(
                    "{} {}",
                    s.public_key.fingerprint(),
                    e.code.as_str()
                ));
                // Report the refusal of the numbering key first: it is the
                // exporter's own signature.
                if first_err.is_none() || s.public_key.fingerprint() == manifest.sequence.key {
                    first_err = Some(e);
                }
            }
        }
    }
    if accepted.is_empty() {
        return Err(first_err.unwrap_or_else(|| Error::new(Code::SigMissing, "no signature")));
    }
    // Keys are distinct: each signature member is named after its key, and
    // duplicate names are rejected with the container.
    if accepted.len() < required.max(1) {
        return Err(Error::new(
            Code::SigThreshold,
            format!(
                "{} valid signature(s) from distinct trusted keys ({}); the policy requires {required}{}",
                accepted.len(),
                accepted.iter().map(|a| a.fingerprint.as_str()).collect::<Vec<_>>().join(", "),
                if refusals.is_empty() { String::new() } else { format!("; refused: {}", refusals.join(", ")) }
            ),
        ));
    }
    if !accepted
        .iter()
        .any(|a| a.fingerprint == manifest.sequence.key)
    {
        return Err(first_err.unwrap_or_else(|| {
            Error::new(
                Code::SigUntrusted,
                format!(
                    "the key that numbered this bundle ({}) did not sign it",
                    manifest.sequence.key
                ),
            )
        }));
    }
    Ok(accepted)
}

/// A SIG-WINDOW refusal of a bundle that has expired as well keeps its code
/// (format.md §6: trust is step 4, freshness step 7), but its hint must not
/// send the importer to widen the trust line's window only to meet
/// BUNDLE-EXPIRED next: the fix is a fresh bundle.
fn expired_too(e: Error, manifest: &Manifest, now: SystemTime, skew: Duration) -> Error {
    if e.code != Code::SigWindow {
        return e;
    }
    match check_freshness(manifest, now, skew) {
        Err(x) if x.code == Code::BundleExpired => e.with_hint(format!(
            "the bundle has also expired (at {}): ask the exporter for a fresh bundle, signed with a key in service; \
             do not change valid-after or valid-before in the trust file to admit it",
            manifest.expires
        )),
        _ => e,
    }
}

/// Step 5: the members in the container are exactly those of the manifest,
/// in its order, with its sizes.
pub fn check_members(manifest: &Manifest, payload: &[Entry]) -> Result<()> {
    for p in &manifest.payload {
        if !payload.iter().any(|e| e.name == p.name) {
            return Err(Error::new(
                Code::MemberMissing,
                format!("{} is in the manifest but not in the bundle", p.name),
            ));
        }
    }
    for e in payload {
        if !manifest.payload.iter().any(|p| p.name == e.name) {
            return Err(Error::new(
                Code::MemberUnlisted,
                format!("{} is in the bundle but not in the manifest", e.name),
            ));
        }
    }
    for (p, e) in manifest.payload.iter().zip(payload) {
        if p.name != e.name {
            return Err(Error::new(
                Code::ZipStructure,
                "payload members are not in manifest order",
            ));
        }
        if p.size != e.size {
            return Err(Error::new(
                Code::MemberDigest,
                format!(
                    "{} is {} bytes; the manifest says {}",
                    e.name, e.size, p.size
                ),
            ));
        }
    }
    Ok(())
}

/// Step 7: freshness against `now`.
pub fn check_freshness(manifest: &Manifest, now: SystemTime, skew: Duration) -> Result<()> {
    let created = manifest.created.system_time();
    let expires = manifest.expires.system_time();
    if created > now + skew {
        return Err(Error::new(
            Code::BundleFuture,
            format!(
                "the bundle is dated {}, later than now ({}) by more than {}s",
                manifest.created,
                crate::bundle::manifest::format_time(now),
                skew.as_secs()
            ),
        ));
    }
    if now >= expires {
        return Err(Error::new(
            Code::BundleExpired,
            format!(
                "the bundle expired at {} (checked as of {})",
                manifest.expires,
                crate::bundle::manifest::format_time(now)
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Destinations and staged files

/// Names the file a payload member becomes in a destination directory.
pub type Naming<'a> = &'a dyn Fn(&Manifest, &PayloadEntry) -> String;

/// Where the payload of a verified bundle goes.
pub enum Destination<'a> {
    /// Verify only: bytes are hashed, checked and dropped.
    Discard,
    /// Private (0600) temporary files in `dir`, one per member, to be
    /// published by the caller under the names `name` gives.
    Dir {
        /// The directory the files will be published in.
        dir: &'a Path,
        /// The file name of each member.
        name: Naming<'a>,
        /// Refuse up front when a target exists (extract without --force).
        refuse_existing: bool,
        /// Hash decrypted plaintext (import lists it and checks re-runs by
        /// it); extract needs only the signed ciphertext digest.
        hash_plaintext: bool,
    },
}

/// How `Staged::publish` treats a target that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Fail with `OUTPUT-EXISTS` and leave it alone.
    Never,
    /// Replace it.
    Always,
    /// Leave it when it holds the same bytes (a re-run); fail otherwise.
    IfIdentical,
}

/// One payload file, written and synced in a private temporary file.
pub struct StagedFile {
    temp: NamedTempFile,
    /// Where it will be published.
    pub target: PathBuf,
    /// Its content's SHA-256, hex (empty when it was not taken).
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

impl StagedFile {
    /// The temporary file (for hand-overs that read it, such as HTTP).
    pub fn path(&self) -> &Path {
        self.temp.path()
    }
}

/// The payload files of a verified bundle, not yet published. Dropping it
/// deletes them.
#[derive(Default)]
pub struct Staged {
    /// One per payload member, in member order.
    pub files: Vec<StagedFile>,
}

impl Staged {
    /// Give every file the outbox's group when it has one (decision 74);
    /// the mode to publish them with: 0640 only when every file has it.
    pub(crate) fn grant(&self, access: fsutil::OutboxAccess) -> u32 {
        self.files
            .iter()
            .fold(0o640, |mode, f| mode & access.grant(f.temp.as_file()))
    }

    /// Publish every file: mode, fsync, rename, then fsync of each
    /// directory. Returns the published paths (also those left in place by
    /// `IfIdentical`).
    pub fn publish(self, mode: u32, replace: Replace) -> Result<Vec<PathBuf>> {
        use std::os::unix::fs::PermissionsExt;
        let mut out = Vec::new();
        let mut dirs: Vec<PathBuf> = Vec::new();
        for f in self.files {
            if replace == Replace::IfIdentical && f.target.exists() {
                match fsutil::sha256_file(&f.target) {
                    Ok(have) if have == f.sha256 => {
                        out.push(f.target);
                        continue;
                    }
                    _ => {
                        return Err(Error::new(
                            Code::OutputExists,
                            format!("{} exists with other content", f.target.display()),
                        ))
                    }
                }
            }
            let file = f.temp.as_file();
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .and_then(|_| file.sync_all())
                .map_err(|e| Error::io_write(&f.target, e))?;
            fsutil::fault_point("publish:synced");
            let result = if replace == Replace::Always {
                f.temp.persist(&f.target).map(drop).map_err(|e| e.error)
            } else {
                fsutil::persist_noclobber(f.temp, &f.target)
            };
            result.map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    Error::new(
                        Code::OutputExists,
                        format!("{} already exists", f.target.display()),
                    )
                } else {
                    Error::io_write(&f.target, e)
                }
            })?;
            let dir = fsutil::parent_dir(&f.target);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
            out.push(f.target);
        }
        for d in dirs {
            fsutil::sync_dir(&d)?;
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// The core

/// Verify a bundle file. Encrypted members are checked as ciphertext only
/// unless identities are given.
pub fn verify_file(path: &Path, opts: &VerifyOptions<'_>) -> Result<Verified> {
    verify(open_bundle(path)?, opts)
}

/// Verify a bundle read from `medium`: an open regular file, or the bytes
/// in memory. Nothing is written anywhere.
///
/// ```
/// use std::io::Cursor;
/// use std::path::Path;
/// use airlock::bundle::verify::{verify, Clock, VerifyOptions, DEFAULT_SKEW};
/// use airlock::trust::TrustStore;
///
/// # fn main() -> airlock::Result<()> {
/// // A bundle held in memory, and the trust file of the importing side.
/// let bytes = std::fs::read("fixtures/bundles/golden_clear_users.airlock.zip").unwrap();
/// let trust = TrustStore::load(Path::new("keys/allowed_signers"), None)?;
/// let opts = VerifyOptions {
///     trust: &trust,
///     identities: None,
///     require_signers: 1,
///     // The fixture was made for this moment; a real caller passes Clock::System.
///     now: Clock::Fixed(humantime::parse_rfc3339("2026-11-01T00:00:00Z").unwrap()),
///     skew: DEFAULT_SKEW,
/// };
/// let v = verify(Cursor::new(bytes), &opts)?;
/// assert_eq!(v.manifest.source.principal(), "ghes.example.com");
/// assert!(v.payload.iter().all(|p| p.validated));
/// # Ok(())
/// # }
/// ```
pub fn verify<M: Medium + 'static>(medium: M, opts: &VerifyOptions<'_>) -> Result<Verified> {
    verify_bundle(medium, opts, &Destination::Discard, false)
        .map(|(v, _)| v)
        .map_err(Error::from)
}

/// Where `extract` writes: a directory, and whether existing files may be
/// replaced.
pub struct ExtractTo<'a> {
    /// The directory (it must exist).
    pub dir: &'a Path,
    /// Replace files that exist there.
    pub overwrite: bool,
}

/// Verify a bundle and write its payload files, byte-identical to what was
/// exported, into `to.dir`. Each file is written to a temporary file in that
/// directory; only when every member verified, decrypted to its end and
/// validated are they renamed into place. On any failure nothing is left.
pub fn extract(
    path: &Path,
    opts: &VerifyOptions<'_>,
    to: ExtractTo<'_>,
) -> Result<(Verified, Vec<PathBuf>)> {
    let name = |_: &Manifest, p: &PayloadEntry| output_name(p).to_string();
    let dest = Destination::Dir {
        dir: to.dir,
        name: &name,
        refuse_existing: !to.overwrite,
        hash_plaintext: false,
    };
    let (v, staged) = verify_bundle(open_bundle(path)?, opts, &dest, false)?;
    let replace = if to.overwrite {
        Replace::Always
    } else {
        Replace::Never
    };
    let written = staged.publish(0o600, replace)?;
    Ok((v, written))
}

/// A bundle the verification core refused, with what its one read
/// established: import records these, and reads nothing again.
#[derive(Debug)]
pub struct Refusal {
    /// Why it was refused.
    pub error: Error,
    /// Size and the bytes read (`None` when the file could not be stat'ed).
    pub read: Option<Box<ReadFacts>>,
    /// The manifest, when trusted signatures over these very bytes had been
    /// checked before the refusal (say the payload was damaged, or no
    /// identity decrypts it): it may name the bundle. Never an untrusted
    /// bundle's claims.
    pub signed: Option<Box<Manifest>>,
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        r.error
    }
}

/// The single verification core: open the container, check signatures,
/// trust and the member list, then read the whole file once, streaming each
/// payload member into `dest`, and judge freshness at the end. With
/// `hash_bundle`, the SHA-256 of the whole file is taken from that same read.
/// A refusal carries what that read established (`Refusal`).
pub fn verify_bundle<M: Medium + 'static>(
    medium: M,
    opts: &VerifyOptions<'_>,
    dest: &Destination<'_>,
    hash_bundle: bool,
) -> std::result::Result<(Verified, Staged), Refusal> {
    verify_bundle_of(medium, opts, dest, hash_bundle, None)
}

/// [`verify_bundle`] for a side that takes in one kind of bundle only
/// (`accept`): a bundle of the other kind is refused with
/// `WRONG-DIRECTION` as soon as its manifest's signatures are valid, before
/// trust is looked up and before any payload byte is read (decision 81).
/// The refusal carries no manifest: the kind alone decides it, and an
/// untrusted bundle's claims are never recorded.
pub fn verify_bundle_of<M: Medium + 'static>(
    medium: M,
    opts: &VerifyOptions<'_>,
    dest: &Destination<'_>,
    hash_bundle: bool,
    accept: Option<BundleKind>,
) -> std::result::Result<(Verified, Staged), Refusal> {
    // 1. container
    let mut read = None;
    let mut layout = match open_layout_noting(medium, &mut read) {
        Ok(l) => l,
        Err(error) => {
            return Err(Refusal {
                error,
                read: read.map(Box::new),
                signed: None,
            })
        }
    };
    let mut signed = None;
    verify_opened(&mut layout, opts, dest, (hash_bundle, accept), &mut signed).map_err(|error| {
        Refusal {
            error,
            read: Some(Box::new(layout.reader.facts())),
            signed,
        }
    })
}

/// The core after step 1; `trusted` gets the manifest once trusted keys
/// signed it.
fn verify_opened(
    layout: &mut Layout,
    opts: &VerifyOptions<'_>,
    dest: &Destination<'_>,
    (hash_bundle, accept): (bool, Option<BundleKind>),
    trusted: &mut Option<Box<Manifest>>,
) -> Result<(Verified, Staged)> {
    // 2. signatures over the manifest bytes
    let signed = read_signed(layout)?;
    // 3. manifest (signed bytes only), and its kind where one side takes
    //    one kind only
    let manifest = Manifest::parse(&signed.manifest)?;
    if let Some(want) = accept {
        check_kind(&manifest, want)?;
    }
    // 4. trust
    let signers = check_trust(&manifest, &signed.sigs, opts.trust, opts.require_signers)
        .map_err(|e| expired_too(e, &manifest, opts.now.now(), opts.skew))?;
    *trusted = Some(Box::new(manifest.clone()));
    // 5. member list
    check_members(&manifest, &layout.payload)?;
    // An expired bundle is refused before its payload is read; freshness is
    // judged again at the moment of decision, below.
    check_freshness(&manifest, opts.now.now(), opts.skew)?;
    check_destination(&manifest, dest)?;
    fsutil::pause_point("verify:signed");
    // 6. one sequential read: payload digests (and decryption), the signed
    //    members again, the container's tail
    let read = read_all(
        &mut layout.reader,
        &manifest,
        &signed,
        opts,
        dest,
        hash_bundle,
    )
    .map_err(|e| prefer_changed(&layout.reader, e))?;
    fsutil::pause_point("verify:payload-read");
    // 7. freshness, now
    let decided_at = opts.now.now();
    check_freshness(&manifest, decided_at, opts.skew)?;
    Ok((
        Verified {
            manifest,
            manifest_bytes: signed.manifest,
            signers,
            payload: read.checks,
            bundle_sha256: read.bundle_sha256,
            decided_at,
        },
        read.staged,
    ))
}

/// A bundle of the kind this side takes in, or `WRONG-DIRECTION`. The
/// cause names only the kind, which the signed manifest's format version
/// decides, not its claims (enterprise, reference, instance): they are not
/// trusted yet, and refusals are recorded.
pub fn check_kind(m: &Manifest, want: BundleKind) -> Result<()> {
    let got = m.kind();
    if got == want {
        return Ok(());
    }
    let cause = match got {
        BundleKind::Licence => {
            "this is a GHES licence bundle (format version 3, kind ghes-license): it goes into \
             a GHES appliance on the isolated side, never to GitHub Enterprise Cloud; nothing \
             was handed over"
        }
        BundleKind::Usage => {
            // A usage bundle given to the licence import: not a licence
            // (whichever side it is on), decision 83.
            return Err(Error::new(
                Code::NotALicence,
                "this is a usage bundle (from a GHES instance, for GitHub Enterprise Cloud), not a \
                 licence bundle: it is never applied to an appliance; nothing was applied",
            ));
        }
    };
    Err(Error::new(Code::WrongDirection, cause))
}

/// A failure while the file changed under us is reported as the change.
fn prefer_changed(reader: &Reader, e: Error) -> Error {
    if e.code == Code::BundleChanged {
        return e;
    }
    match reader.check_unchanged() {
        Err(changed) if changed.code == Code::BundleChanged => changed,
        _ => e,
    }
}

/// Before any payload byte is read: targets that must not exist.
fn check_destination(m: &Manifest, dest: &Destination<'_>) -> Result<()> {
    let Destination::Dir {
        dir,
        name,
        refuse_existing,
        ..
    } = dest
    else {
        return Ok(());
    };
    for p in &m.payload {
        let target = dir.join(name(m, p));
        if *refuse_existing && target.exists() {
            return Err(Error::new(
                Code::OutputExists,
                format!("{} already exists", target.display()),
            ));
        }
    }
    Ok(())
}

/// What the sequential read produced.
struct PassResult {
    checks: Vec<PayloadCheck>,
    staged: Staged,
    bundle_sha256: Option<String>,
}

fn read_all(
    reader: &mut Reader,
    manifest: &Manifest,
    signed: &Signed,
    opts: &VerifyOptions<'_>,
    dest: &Destination<'_>,
    hash_bundle: bool,
) -> Result<PassResult> {
    let mut pass = reader.pass(hash_bundle)?;
    let mut buf = fsutil::buffer(CHUNK)?;
    let mut checks = Vec::new();
    let mut staged = Staged::default();
    for p in &manifest.payload {
        let (e, mut r) = pass.next_member()?.ok_or_else(|| {
            Error::new(Code::Internal, "the bundle has fewer members than listed")
        })?;
        if e.name != p.name {
            return Err(Error::new(
                Code::Internal,
                "member order changed after checking",
            ));
        }
        let temp = staging_file(dest, manifest, p)?;
        let sink = match &temp {
            Some((t, _)) => Some(writeback(t)?),
            None => None,
        };
        let hash_plaintext = match dest {
            Destination::Discard => true,
            Destination::Dir { hash_plaintext, .. } => *hash_plaintext,
        };
        let check = read_member(
            p,
            &e,
            &mut r,
            manifest,
            opts,
            sink,
            hash_plaintext,
            &mut buf,
        )?;
        if let Some((temp, target)) = temp {
            staged.files.push(StagedFile {
                temp,
                target,
                sha256: check
                    .plaintext_sha256
                    .as_ref()
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                size: check.plaintext_size.unwrap_or_default(),
            });
        }
        checks.push(check);
    }
    reread_signed(&mut pass, signed)?;
    let whole = pass.finish()?;
    Ok(PassResult {
        checks,
        staged,
        bundle_sha256: whole.map(hex::encode),
    })
}

/// The temporary file a member is staged in (0600, in the destination
/// directory), and the name it will be published under; none when the
/// payload is discarded.
fn staging_file(
    dest: &Destination<'_>,
    manifest: &Manifest,
    p: &PayloadEntry,
) -> Result<Option<(NamedTempFile, PathBuf)>> {
    match dest {
        Destination::Discard => Ok(None),
        Destination::Dir { dir, name, .. } => {
            let target = dir.join(name(manifest, p));
            Ok(Some((fsutil::temp_beside(&target, 0o600)?, target)))
        }
    }
}

/// The manifest and signatures again, in this pass: the bytes it hashes
/// must be the bytes that were verified.
fn reread_signed(pass: &mut crate::bundle::container::Pass<'_>, signed: &Signed) -> Result<()> {
    let signed_members = std::iter::once(&signed.manifest).chain(signed.texts.iter());
    for want in signed_members {
        let (e, mut r) = pass
            .next_member()?
            .ok_or_else(|| Error::new(Code::Internal, "the bundle has fewer members than read"))?;
        let mut got = Vec::with_capacity(want.len());
        // These bytes read fine before: any failure now is the medium
        // answering differently.
        let reread = r.read_to_end(&mut got);
        if reread.is_err() || &got != want {
            return Err(Error::new(
                Code::BundleChanged,
                format!(
                    "the medium returned different bytes for {} on a second read",
                    e.name
                ),
            ));
        }
    }
    Ok(())
}

/// The extraction temp file, written with early writeback (see
/// `fsutil::EarlyWriteback`).
fn writeback(t: &NamedTempFile) -> Result<fsutil::EarlyWriteback> {
    let f = t
        .as_file()
        .try_clone()
        .map_err(|e| Error::io_write(t.path(), e))?;
    fsutil::EarlyWriteback::new(f)
}

/// Where a member's plaintext goes: a staged temp file, or nowhere (verify
/// only: the bytes are hashed and dropped).
struct Sink(Option<fsutil::EarlyWriteback>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(w) => w.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.as_mut().map_or(Ok(()), |w| w.flush())
    }
}

impl Sink {
    fn finish(self, what: &str) -> Result<()> {
        match self.0 {
            Some(w) => w
                .finish()
                .map(|_| ())
                .map_err(|e| Error::new(Code::IoWrite, format!("writing {what}: {e}"))),
            None => Ok(()),
        }
    }
}

/// A member's bytes on their way out of the container: SHA-256 against the
/// signed digest (on a thread of its own, fed the container's blocks
/// without a copy), and the first 64 KiB kept for the age header check.
struct Digesting<'r, 'a> {
    inner: &'r mut MemberReader<'a>,
    entry: &'r Entry,
    sha: SideSha,
    /// Shared so the age header can be read while age holds the reader.
    head: std::rc::Rc<std::cell::RefCell<Vec<u8>>>,
    /// The container's own complaint (CRC, short member, I/O), kept even
    /// when age or another consumer reported it under its own name.
    failed: Option<Error>,
    /// The block `Read` is serving, and how much of it was served.
    current: Option<(Piece, usize)>,
}

const HEAD_LEN: usize = 64 * 1024;

impl<'r, 'a> Digesting<'r, 'a> {
    fn new(inner: &'r mut MemberReader<'a>, entry: &'r Entry) -> Result<Digesting<'r, 'a>> {
        Ok(Digesting {
            inner,
            entry,
            sha: SideSha::spawn("sha256")?,
            head: Default::default(),
            failed: None,
            current: None,
        })
    }

    fn keep_head(&self, bytes: &[u8]) {
        let mut head = self.head.borrow_mut();
        if head.len() < HEAD_LEN {
            let take = bytes.len().min(HEAD_LEN - head.len());
            head.extend_from_slice(&bytes[..take]);
        }
    }

    /// The member's next block, hashed; `None` at its end.
    fn next_piece(&mut self) -> io::Result<Option<Piece>> {
        match self.inner.next_piece() {
            Ok(Some(p)) => {
                self.sha.feed(p.clone());
                Ok(Some(p))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted && self.failed.is_none() {
                    self.failed = Some(member_read_error(
                        self.entry,
                        io::Error::new(e.kind(), e.to_string()),
                    ));
                }
                Err(e)
            }
        }
    }
}

impl Read for Digesting<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (piece, at) = match self.current.take() {
            Some((p, at)) if at < p.bytes().len() => (p, at),
            used => {
                drop(used);
                match self.next_piece()? {
                    Some(p) => (p, 0),
                    None => return Ok(0),
                }
            }
        };
        let rest = &piece.bytes()[at..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        // What was served, exactly: age reads the header through here.
        self.keep_head(&rest[..n]);
        self.current = Some((piece, at + n));
        Ok(n)
    }
}

impl Digesting<'_, '_> {
    /// Read what is left of the member (hashing it). Returns the byte count.
    fn drain(&mut self) -> Result<u64> {
        let mut n = 0u64;
        if let Some((p, at)) = self.current.take() {
            let rest = &p.bytes()[at.min(p.bytes().len())..];
            self.keep_head(rest);
            n += rest.len() as u64;
        }
        loop {
            match self.next_piece() {
                Ok(None) => return Ok(n),
                Ok(Some(p)) => {
                    self.keep_head(p.bytes());
                    n += p.bytes().len() as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(member_read_error(self.entry, err)),
            }
        }
    }

    /// The digest, compared with the signed one.
    fn check(self, p: &PayloadEntry) -> Result<()> {
        let digest = HexDigest::from_bytes(&self.sha.finish()?);
        if digest != p.sha256 {
            return Err(Error::new(
                Code::MemberDigest,
                format!(
                    "{}: SHA-256 {digest} differs from the manifest's {}",
                    p.name, p.sha256
                ),
            ));
        }
        Ok(())
    }
}

impl PayloadCheck {
    /// Nothing checked yet about member `p`.
    fn unread(p: &PayloadEntry) -> PayloadCheck {
        PayloadCheck {
            name: p.name.clone(),
            size: p.size,
            sha256: p.sha256.clone(),
            kind: p.kind,
            reference: p.reference.clone(),
            encrypted: p.encryption.is_some(),
            decrypted: false,
            validated: false,
            plaintext_size: None,
            plaintext_sha256: None,
            usage: None,
            source_checked: false,
        }
    }
}

/// Which error a failed member read reports: the container's own complaint
/// first (CRC, short member), as the rest of the reader reports it; then a
/// local I/O failure; then the signed digest, so that a member that was
/// swapped or altered is reported as such, whatever else went wrong while
/// decrypting or parsing it; else `err` itself.
fn member_failure(mut src: Digesting<'_, '_>, p: &PayloadEntry, err: Error) -> Error {
    if let Some(container) = src.failed.take() {
        return container;
    }
    if err.code.class() == crate::error::Class::Io {
        return err;
    }
    if let Err(e) = src.drain() {
        return e;
    }
    src.check(p).err().unwrap_or(err)
}

/// Read one payload member once: digest, and either copy the clear bytes,
/// or decrypt, into `sink`; validate a usage file on the side.
#[allow(clippy::too_many_arguments)]
fn read_member(
    p: &PayloadEntry,
    e: &Entry,
    r: &mut MemberReader<'_>,
    m: &Manifest,
    opts: &VerifyOptions<'_>,
    sink: Option<fsutil::EarlyWriteback>,
    hash_plaintext: bool,
    buf: &mut [u8],
) -> Result<PayloadCheck> {
    let encrypted = p.encryption.is_some();
    let mut check = PayloadCheck::unread(p);
    let identities = opts.identities.filter(|i| !i.is_empty());
    let mut src = Digesting::new(r, e)?;
    let extracting = sink.is_some();
    let sink = Sink(sink);
    crate::progress::begin(&format!("verify {}", p.name), Some(p.size));
    let verdict = if !encrypted {
        copy_clear(p, &mut src, sink).map(Some)
    } else if let Some(ids) = identities {
        decrypt_member(p, &mut src, m, ids, sink, hash_plaintext, buf, &mut check)
    } else {
        // Ciphertext only: the digest, then the header against the signed
        // recipients.
        src.drain().map(|_| None)
    };
    crate::progress::end();
    let verdict = match verdict {
        Ok(v) => v,
        Err(err) => return Err(member_failure(src, p, err)),
    };
    if encrypted && identities.is_none() {
        let head = src.head.take();
        src.check(p)?;
        crypt::check_header(&crypt::header_stanzas(&head[..])?, &m.recipients)?;
        if extracting {
            return Err(Error::new(
                Code::DecryptNoIdentity,
                format!("{} is encrypted; writing it out needs an identity", p.name),
            )
            .with_hint("pass --identity FILE (age identity or OpenSSH key), or --passphrase-file for a passphrase bundle"));
        }
    } else {
        src.check(p)?;
    }
    if !encrypted {
        check.plaintext_size = Some(p.size);
        check.plaintext_sha256 = Some(p.sha256.clone());
    }
    // Every member's plaintext was sniffed, whatever its label (decision
    // 70); none only for ciphertext that was not decrypted.
    if let Some(v) = verdict {
        check.usage = if p.is_usage() {
            Some(validate_usage(m, p, v)?)
        } else {
            validate_file(m, p, v)?
        };
        check.source_checked = true;
    }
    check.validated = !encrypted || check.decrypted;
    Ok(check)
}

/// A clear member: every block to the sink, and to the usage sniffer
/// (every member, whatever its label: a `file` may be a usage file too).
fn copy_clear(p: &PayloadEntry, src: &mut Digesting<'_, '_>, mut sink: Sink) -> Result<Sniff> {
    let mut sniffer = Sniffer::spawn()?;
    loop {
        let piece = match src.next_piece() {
            Ok(None) => break,
            Ok(Some(piece)) => piece,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(member_read_error(src.entry, err)),
        };
        crate::progress::advance(piece.bytes().len() as u64);
        sink.write_all(piece.bytes()).map_err(|err| {
            Error::new(Code::IoWrite, format!("writing {}: {err}", output_name(p)))
        })?;
        sniffer.feed_piece(piece);
    }
    sink.finish(output_name(p))?;
    sniffer.finish()
}

/// The scrypt work factor the manifest signed (unlocking caps it at
/// airlock's limit), or that limit when no passphrase is listed.
fn max_work_factor(m: &Manifest) -> u8 {
    m.recipients
        .iter()
        .find_map(|r| match r {
            crypt::ListedRecipient::Scrypt { work_factor } => Some(*work_factor),
            _ => None,
        })
        .unwrap_or(crypt::SCRYPT_MAX_WORK_FACTOR)
}

/// Decrypted bytes from `stream` into `tee` until the age stream ends.
fn pump(
    stream: &mut dyn Read,
    tee: &mut Tee<'_, Sink>,
    buf: &mut [u8],
    p: &PayloadEntry,
) -> Result<()> {
    loop {
        let n = match stream.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(crypt::stream_error(&p.name, err)),
        };
        crate::progress::advance(n as u64);
        tee.write_all(&buf[..n]).map_err(|err| {
            Error::new(Code::IoWrite, format!("writing {}: {err}", output_name(p)))
        })?;
    }
}

/// An encrypted member: check the age header against the signed recipients,
/// then decrypt to the end, plaintext to the sink.
#[allow(clippy::too_many_arguments)]
fn decrypt_member(
    p: &PayloadEntry,
    src: &mut Digesting<'_, '_>,
    m: &Manifest,
    ids: &Identities,
    sink: Sink,
    hash_plaintext: bool,
    buf: &mut [u8],
    check: &mut PayloadCheck,
) -> Result<Option<Sniff>> {
    let head = src.head.clone();
    let decryptor = age::Decryptor::new(&mut *src).map_err(crypt::decrypt_error)?;
    // age reads exactly the header: what was kept is the header.
    crypt::check_header(&crypt::header_stanzas(&head.borrow()[..])?, &m.recipients)?;
    let max_wf = max_work_factor(m);
    let hint = |e: Error| match (e.code, ids.no_match_hint(&m.recipients)) {
        (Code::DecryptNoIdentity, Some(hint)) => e.with_hint(hint),
        _ => e,
    };
    // The payload through crypt::stream (ring's ChaCha20-Poly1305) when the
    // nonce is at hand: what was kept is exactly the header and the nonce
    // unless it filled the whole head.
    let consumed = head.borrow().clone();
    let nonce = consumed
        .len()
        .checked_sub(crypt::stream::NONCE_LEN)
        .filter(|_| consumed.len() < HEAD_LEN)
        .and_then(|at| <[u8; crypt::stream::NONCE_LEN]>::try_from(&consumed[at..]).ok());
    let mut stream: Box<dyn Read + '_> = match nonce {
        Some(nonce) => {
            let key = ids.unlock_stream(decryptor, max_wf, &nonce).map_err(hint)?;
            Box::new(crypt::stream::StreamReader::new(&mut *src, key)?)
        }
        None => Box::new(ids.unlock(decryptor, max_wf).map_err(hint)?),
    };
    // Every member's plaintext, whatever its label (decision 70).
    let mut sniffer = Sniffer::spawn()?;
    // Decryption on this core, the plaintext's SHA-256 on the other.
    let mut tee = Tee {
        inner: sink,
        sha: if hash_plaintext {
            fsutil::Hasher::side()?
        } else {
            fsutil::Hasher::Off
        },
        size: 0,
        sniffer: Some(&mut sniffer),
    };
    pump(&mut *stream, &mut tee, buf, p)?;
    drop(stream);
    // The age stream ended cleanly; nothing may follow it in the member.
    if src.drain()? != 0 {
        return Err(Error::new(
            Code::DecryptFailed,
            format!("{}: data follows the end of the age payload", p.name),
        ));
    }
    let Tee {
        inner, sha, size, ..
    } = tee;
    check.decrypted = true;
    check.plaintext_size = Some(size);
    let digest = sha.finish()?;
    check.plaintext_sha256 = hash_plaintext.then(|| HexDigest::from_bytes(&digest));
    inner.finish(output_name(p))?;
    Ok(Some(sniffer.finish()?))
}

/// A usage file (under either label) must name the manifest's source: the
/// instance the signing key is trusted for.
fn check_source(manifest: &Manifest, p: &PayloadEntry, u: &UsageInfo) -> Result<()> {
    if manifest.source.host_name.as_ref() != Some(&u.host_name)
        || Some(&u.server_id) != manifest.source.server_id.as_ref()
    {
        let label = if p.is_usage() {
            String::new()
        } else {
            " (a GHES license usage file labelled `file`)".to_string()
        };
        return Err(Error::new(
            Code::PayloadSource,
            format!(
                "{}{label} is from {} ({}) but the manifest names {} ({})",
                p.name,
                u.host_name,
                u.server_id,
                manifest.source.principal(),
                manifest.source.server_id.as_deref().unwrap_or("-")
            ),
        ));
    }
    Ok(())
}

/// A `file` member, judged by export's rule (bundle/export.rs): content that
/// is a usage file must name the source, content that looks like one but is
/// not valid is refused as export refuses it, anything else is a file.
fn validate_file(
    manifest: &Manifest,
    p: &PayloadEntry,
    verdict: Sniff,
) -> Result<Option<UsageInfo>> {
    match verdict {
        Sniff::Usage(u) => {
            check_source(manifest, p, &u)?;
            Ok(Some(u))
        }
        Sniff::Invalid(why) => Err(crate::usage::invalid(&p.name, &why)),
        Sniff::Other => Ok(None),
    }
}

fn validate_usage(manifest: &Manifest, p: &PayloadEntry, verdict: Sniff) -> Result<UsageInfo> {
    match verdict {
        Sniff::Usage(u) => {
            check_source(manifest, p, &u)?;
            Ok(u)
        }
        Sniff::Invalid(why) => Err(crate::usage::invalid(&p.name, &why)),
        Sniff::Other => Err(crate::usage::invalid(
            &p.name,
            "it is not a JSON object with an instance",
        )),
    }
}

/// What `inspect` shows: everything, trusted nothing.
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// Every member, in order.
    pub members: Vec<InspectedMember>,
    /// `manifest.json` as text, when it is UTF-8.
    pub manifest_text: Option<String>,
    /// Why the manifest does not parse, when it does not.
    pub manifest_error: Option<String>,
    /// The manifest, when it parses (not trusted).
    pub manifest: Option<Manifest>,
    /// What the manifest says the bundle is (`usage` or `licence`), when it
    /// parses (not trusted).
    pub kind: Option<crate::bundle::manifest::BundleKind>,
    /// A licence bundle's enterprise and reference (not trusted).
    pub licence: Option<crate::bundle::licence::LicenceSummary>,
    /// Each signature member.
    pub signatures: Vec<InspectedSignature>,
}

/// A member's name and stored size.
#[derive(Debug, Serialize)]
pub struct InspectedMember {
    /// Member name.
    pub name: String,
    /// Stored size in bytes.
    pub size: u64,
}

/// What a signature member claims, unverified.
#[derive(Debug, Serialize)]
pub struct InspectedSignature {
    /// Member name.
    pub member: String,
    /// The signing key's fingerprint, when the signature parses.
    pub fingerprint: Option<String>,
    /// The signing key, OpenSSH public key form.
    pub public_key: Option<String>,
    /// The SSHSIG namespace.
    pub namespace: Option<String>,
    /// Why the signature does not parse, when it does not.
    pub error: Option<String>,
}

/// Read a bundle's layout, manifest and signatures without trusting them.
/// The container must still be canonical: inspect never parses a malformed
/// zip more loosely than verify does.
pub fn inspect(path: &Path) -> Result<Inspection> {
    let mut reader = Reader::open(open_bundle(path)?)?;
    let entries = reader.entries().to_vec();
    let members = entries
        .iter()
        .map(|e| InspectedMember {
            name: e.name.clone(),
            size: e.size,
        })
        .collect();
    let mut manifest_text = None;
    let mut manifest_error = None;
    let mut manifest = None;
    if let Some(e) = entries.iter().find(|e| e.name == MANIFEST_NAME) {
        match reader.read_small(e, MAX_MANIFEST_LEN) {
            Ok(b) => {
                match Manifest::parse(&b) {
                    Ok(m) => manifest = Some(m),
                    Err(err) => manifest_error = Some(err.to_string()),
                }
                manifest_text = Some(String::from_utf8_lossy(&b).into_owned());
            }
            Err(err) => manifest_error = Some(err.to_string()),
        }
    } else {
        manifest_error = Some("no manifest.json".into());
    }
    let mut signatures = Vec::new();
    for e in entries.iter().filter(|e| e.name.starts_with("signatures/")) {
        let mut s = InspectedSignature {
            member: e.name.clone(),
            fingerprint: None,
            public_key: None,
            namespace: None,
            error: None,
        };
        match reader.read_small(e, MAX_ARMORED_LEN) {
            Ok(t) => match SshSig::from_armored(&t) {
                Ok(sig) => {
                    s.fingerprint = Some(sig.public_key.fingerprint());
                    s.public_key = Some(sig.public_key.to_openssh());
                    s.namespace = Some(sig.namespace.clone());
                }
                Err(err) => s.error = Some(err.to_string()),
            },
            Err(err) => s.error = Some(err.to_string()),
        }
        signatures.push(s);
    }
    Ok(Inspection {
        members,
        manifest_text,
        manifest_error,
        kind: manifest.as_ref().map(Manifest::kind),
        licence: manifest
            .as_ref()
            .and_then(crate::bundle::licence::LicenceSummary::of),
        manifest,
        signatures,
    })
}

#[cfg(test)]
mod tests {
    //! The core against a medium that lies: each branch (discard, directory,
    //! bundle hash, decryption) with the second read differing from the first.
    use super::*;
    use crate::bundle::container::Stamp;
    use sha2::{Digest, Sha256};
    use std::io::{Seek, SeekFrom};
    use std::path::PathBuf;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn golden(name: &str) -> Vec<u8> {
        std::fs::read(root().join("fixtures/bundles").join(name)).unwrap()
    }

    fn trust() -> TrustStore {
        let k = root().join("keys");
        TrustStore::load(&k.join("allowed_signers"), Some(&k.join("revoked_keys"))).unwrap()
    }

    fn opts<'a>(trust: &'a TrustStore, ids: Option<&'a Identities>) -> VerifyOptions<'a> {
        VerifyOptions {
            trust,
            identities: ids,
            require_signers: 1,
            now: Clock::Fixed(humantime::parse_rfc3339("2026-11-01T00:00:00Z").unwrap()),
            skew: DEFAULT_SKEW,
        }
    }

    /// Returns `first` until the `switch`-th seek to offset 0, then `second`;
    /// the stamp changes when `restamp` is set, after the switch.
    struct Lying {
        first: Vec<u8>,
        second: Vec<u8>,
        pos: u64,
        zero_seeks: usize,
        switch: usize,
        restamp: bool,
    }

    impl Lying {
        fn new(first: Vec<u8>, second: Vec<u8>) -> Lying {
            // Reader::open reads the first local header at offset 0 (one
            // seek); the sequential pass is the second.
            Lying {
                first,
                second,
                pos: 0,
                zero_seeks: 0,
                switch: 2,
                restamp: false,
            }
        }
        fn data(&self) -> &[u8] {
            if self.zero_seeks >= self.switch {
                &self.second
            } else {
                &self.first
            }
        }
    }

    impl Read for Lying {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let d = self.data();
            let start = (self.pos as usize).min(d.len());
            let n = buf.len().min(d.len() - start);
            buf[..n].copy_from_slice(&d[start..start + n]);
            self.pos += n as u64;
            Ok(n)
        }
    }

    impl Seek for Lying {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.pos = match to {
                SeekFrom::Start(p) => p,
                SeekFrom::End(d) => (self.data().len() as i64 + d) as u64,
                SeekFrom::Current(d) => (self.pos as i64 + d) as u64,
            };
            if self.pos == 0 {
                self.zero_seeks += 1;
            }
            Ok(self.pos)
        }
    }

    impl Medium for Lying {
        fn stamp(&self) -> io::Result<Stamp> {
            let moved = self.restamp && self.zero_seeks >= self.switch;
            Ok(Stamp {
                len: self.first.len() as u64,
                mtime: (if moved { 2 } else { 1 }, 0),
                ctime: (1, 0),
            })
        }
    }

    fn flip(mut b: Vec<u8>, at: usize) -> Vec<u8> {
        b[at] ^= 0x20;
        b
    }

    fn find(hay: &[u8], needle: &[u8]) -> usize {
        hay.windows(needle.len()).position(|w| w == needle).unwrap()
    }

    fn run(
        medium: Lying,
        ids: Option<&Identities>,
        dir: Option<&Path>,
        hash: bool,
    ) -> Result<(Verified, Staged)> {
        let t = trust();
        let name = |_: &Manifest, p: &PayloadEntry| output_name(p).to_string();
        let dest = match dir {
            Some(dir) => Destination::Dir {
                dir,
                name: &name,
                refuse_existing: true,
                hash_plaintext: true,
            },
            None => Destination::Discard,
        };
        verify_bundle(medium, &opts(&t, ids), &dest, hash).map_err(Error::from)
    }

    #[test]
    fn an_honest_medium_verifies_and_the_bundle_hash_is_of_its_bytes() {
        let b = golden("golden_encrypted_users.airlock.zip");
        let (v, staged) = run(Lying::new(b.clone(), b.clone()), None, None, true).unwrap();
        assert_eq!(v.bundle_sha256.unwrap(), hex::encode(Sha256::digest(&b)));
        assert!(staged.files.is_empty());
        // Without the hash asked for, none is taken.
        let (v, _) = run(Lying::new(b.clone(), b), None, None, false).unwrap();
        assert!(v.bundle_sha256.is_none());
    }

    #[test]
    fn payload_bytes_that_differ_on_the_second_read_are_refused_and_nothing_is_left() {
        let b = golden("golden_encrypted_users.airlock.zip");
        let at = find(&b, b"\"users\"") + 20;
        for hash in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let err = run(
                Lying::new(b.clone(), flip(b.clone(), at)),
                None,
                Some(dir.path()),
                hash,
            )
            .err()
            .unwrap();
            assert!(
                matches!(err.code, Code::ZipCrc | Code::MemberDigest),
                "{err}"
            );
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }

    #[test]
    fn structure_that_differs_on_the_second_read_is_bundle_changed() {
        let b = golden("golden_encrypted_users.airlock.zip");
        let manifest_at = find(&b, b"\"bundle_id\"");
        let header_at = 10; // inside the first local header
        let cd_at = b.len() - 98 - 20; // inside the central directory
        for at in [manifest_at, header_at, cd_at] {
            let err = run(Lying::new(b.clone(), flip(b.clone(), at)), None, None, true)
                .err()
                .unwrap();
            assert_eq!(err.code, Code::BundleChanged, "byte {at}: {err}");
        }
        // A second read that finds more bytes after the end.
        let mut longer = b.clone();
        longer.extend_from_slice(b"tail");
        let err = run(Lying::new(b.clone(), longer), None, None, false)
            .err()
            .unwrap();
        assert_eq!(err.code, Code::BundleChanged, "{err}");
        // A second read that ends early.
        let err = run(
            Lying::new(b.clone(), b[..b.len() - 50].to_vec()),
            None,
            None,
            false,
        )
        .err()
        .unwrap();
        assert_eq!(err.code, Code::BundleChanged, "{err}");
    }

    #[test]
    fn a_file_whose_time_changes_during_the_run_is_bundle_changed() {
        let b = golden("golden_clear_users.airlock.zip");
        let mut m = Lying::new(b.clone(), b);
        m.restamp = true;
        let dir = tempfile::tempdir().unwrap();
        let err = run(m, None, Some(dir.path()), false).err().unwrap();
        assert_eq!(err.code, Code::BundleChanged, "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    fn identity() -> (tempfile::TempDir, Identities) {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("id.txt");
        std::fs::copy(root().join("keys/age_identity.txt"), &p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut ids = Identities::default();
        ids.add_file(&p, &mut || unreachable!()).unwrap();
        (d, ids)
    }

    #[test]
    fn decryption_reads_the_ciphertext_once_and_stages_the_plaintext() {
        let b = golden("golden_enc_x25519.airlock.zip");
        let plain = std::fs::read(root().join("fixtures/usage/ghes-clear-users.json")).unwrap();
        let (_d, ids) = identity();
        let dir = tempfile::tempdir().unwrap();
        let (v, staged) = run(
            Lying::new(b.clone(), b.clone()),
            Some(&ids),
            Some(dir.path()),
            true,
        )
        .unwrap();
        assert!(v.payload[0].decrypted);
        assert_eq!(
            v.payload[0].plaintext_sha256.as_deref().unwrap(),
            hex::encode(Sha256::digest(&plain))
        );
        // Staged, not published: nothing under its own name yet.
        let target = staged.files[0].target.clone();
        assert!(!target.exists());
        assert_eq!(std::fs::read(staged.files[0].path()).unwrap(), plain);
        let written = staged.publish(0o600, Replace::Never).unwrap();
        assert_eq!(written, vec![target.clone()]);
        assert_eq!(std::fs::read(&target).unwrap(), plain);

        // Ciphertext that differs on the second read: refused, nothing left.
        let dir = tempfile::tempdir().unwrap();
        let at = 1000; // inside the ciphertext (1583 bytes from offset 83)
        let err = run(
            Lying::new(b.clone(), flip(b.clone(), at)),
            Some(&ids),
            Some(dir.path()),
            true,
        )
        .err()
        .unwrap();
        assert!(
            matches!(err.code, Code::ZipCrc | Code::MemberDigest),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn encrypted_members_need_an_identity_to_be_written_out() {
        let b = golden("golden_enc_x25519.airlock.zip");
        let dir = tempfile::tempdir().unwrap();
        let err = run(Lying::new(b.clone(), b), None, Some(dir.path()), false)
            .err()
            .unwrap();
        assert_eq!(err.code, Code::DecryptNoIdentity);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn freshness_is_judged_at_the_moment_of_decision() {
        let b = golden("golden_clear_users.airlock.zip");
        let t = trust();
        let mut o = opts(&t, None);
        o.now = Clock::Fixed(humantime::parse_rfc3339("2027-01-01T00:00:00Z").unwrap());
        let err = verify_bundle(Lying::new(b.clone(), b), &o, &Destination::Discard, false)
            .err()
            .unwrap();
        assert_eq!(err.error.code, Code::BundleExpired);
    }

    #[test]
    fn publishing_respects_the_replace_rule() {
        let b = golden("golden_clear_users.airlock.zip");
        let name = |_: &Manifest, p: &PayloadEntry| output_name(p).to_string();
        let t = trust();
        let stage = |dir: &Path| {
            let dest = Destination::Dir {
                dir,
                name: &name,
                refuse_existing: false,
                hash_plaintext: true,
            };
            verify_bundle(
                Lying::new(b.clone(), b.clone()),
                &opts(&t, None),
                &dest,
                false,
            )
            .unwrap()
            .1
        };
        let dir = tempfile::tempdir().unwrap();
        let first = stage(dir.path()).publish(0o644, Replace::Never).unwrap();
        // The same bytes again: fine with IfIdentical, refused with Never.
        assert_eq!(
            stage(dir.path())
                .publish(0o644, Replace::IfIdentical)
                .unwrap(),
            first
        );
        assert_eq!(
            stage(dir.path())
                .publish(0o644, Replace::Never)
                .err()
                .unwrap()
                .code,
            Code::OutputExists
        );
        // Other bytes under the name: refused with IfIdentical.
        std::fs::write(&first[0], b"other").unwrap();
        assert_eq!(
            stage(dir.path())
                .publish(0o644, Replace::IfIdentical)
                .err()
                .unwrap()
                .code,
            Code::OutputExists
        );
        stage(dir.path()).publish(0o644, Replace::Always).unwrap();
        assert_ne!(std::fs::read(&first[0]).unwrap(), b"other");
        // Only the published file is left: no temporary files.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Decision 70: every member is sniffed, whatever its label; a usage
    /// file labelled `file` must name the source. Only ciphertext that was
    /// not decrypted goes unchecked, and says so.
    #[test]
    fn every_member_is_checked_against_the_source_whatever_its_label() {
        let t = trust();
        let at = |name: &str, ids| verify(std::io::Cursor::new(golden(name)), &opts(&t, ids));
        let e = at("fail_file_member_other_source.airlock.zip", None).unwrap_err();
        assert_eq!(e.code, Code::PayloadSource, "{e}");
        let v = at("golden_usage_and_file.airlock.zip", None).unwrap();
        assert!(v.payload.iter().all(|p| p.source_checked));
        assert_eq!(v.payload[1].kind, PayloadKind::File);
        assert!(v.payload[1].usage.is_none());
        let v = at("golden_enc_x25519.airlock.zip", None).unwrap();
        assert!(!v.payload[0].source_checked);
        let (_d, ids) = identity();
        let v = at("golden_enc_x25519.airlock.zip", Some(&ids)).unwrap();
        assert!(v.payload[0].source_checked);
    }

    #[test]
    fn a_file_member_is_judged_by_exports_rule() {
        let v = verify(
            std::io::Cursor::new(golden("golden_usage_and_file.airlock.zip")),
            &opts(&trust(), None),
        )
        .unwrap();
        let (m, file) = (&v.manifest, &v.manifest.payload[1]);
        assert!(matches!(validate_file(m, file, Sniff::Other), Ok(None)));
        let e = validate_file(m, file, Sniff::Invalid("broken".into())).unwrap_err();
        assert_eq!(e.code, Code::UsageFileInvalid);
        let own = v.payload[0].usage.clone().unwrap();
        assert!(validate_file(m, file, Sniff::Usage(own.clone())).is_ok());
        let mut theirs = own;
        theirs.server_id = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f".into();
        let e = validate_file(m, file, Sniff::Usage(theirs)).unwrap_err();
        assert_eq!(e.code, Code::PayloadSource);
    }
}
