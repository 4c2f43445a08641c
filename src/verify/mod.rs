//! Verification: the algorithm of docs/format.md §6, step by step and in that
//! order, and the single verification core that `verify`, `extract`,
//! `import` and export's read-back all call (`verify_bundle`).
//!
//! One read, one decision: the bundle is opened once and that descriptor is
//! kept. The manifest and signatures are read and checked first; then one
//! sequential pass reads the whole file from its first byte to its last.
//! Each payload byte is read once in that pass and, in the same step,
//! CRC-checked, hashed against the signed digest, decrypted when asked, and
//! handed to the destination the core drives (`Destination`: discard, a
//! directory of private temporary files, export's read-back); every structural byte the pass meets
//! (headers, manifest, signatures, central directory) must equal what was
//! checked before, and the bundle's own SHA-256 for the ledger is taken from
//! that pass. A medium that answers differently the second time, or a file
//! that changes size or time meanwhile, fails with `BUNDLE-CHANGED`. Nothing
//! is published until the whole bundle checked out: the caller gets the
//! verified facts and its destination back (say the staged files, which it
//! publishes, or drops, which deletes them).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::base::error::{Code, Error, Result};
use crate::crypto::crypt::Identities;
use crate::crypto::sshsig::{SigError, SshSig, BUNDLE_NAMESPACE, MAX_ARMORED_LEN};
use crate::crypto::trust::TrustStore;
use crate::format::container::{open_bundle, Entry, Medium, Reader};
pub use crate::format::container::{Hashing, ReadFacts};
use crate::format::manifest::{
    BundleKind, HexDigest, Manifest, PayloadEntry, PayloadKind, MANIFEST_NAME, MAX_MANIFEST_LEN,
    MAX_SIGNATURES,
};
use crate::format::rules::{output_name, signature_member_name};
use crate::format::usage::UsageInfo;
use crate::io::fsutil;
use crate::io::sizes::STREAM_BUFFER;

mod destination;
mod inspect;
mod member;
mod opened;
pub(crate) mod tee;

pub use destination::{Destination, Dir, Discard, Naming, Replace, Staged, StagedFile};
pub use inspect::{inspect, InspectedMember, InspectedSignature, Inspection};
use member::MemberRead;
pub use opened::Opened;

pub use crate::base::{clock::Clock, progress::Progress};

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
    /// Where the payload's reading progress goes.
    pub progress: Progress,
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
    pub reference: Option<crate::format::manifest::LicenceReference>,
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
    /// SHA-256 of the whole file as read in the verifying pass (when asked:
    /// `Ask::bundle_sha256`).
    pub bundle_sha256: Option<HexDigest>,
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
    let mut roles = Roles::default();
    for e in reader.entries().to_vec() {
        roles.sort(e)?;
    }
    let Roles {
        payload,
        manifest,
        signatures,
    } = roles;
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

/// The members sorted so far: payload, then the manifest, then the
/// signatures in name order.
#[derive(Default)]
struct Roles {
    payload: Vec<Entry>,
    manifest: Option<Entry>,
    signatures: Vec<Entry>,
}

impl Roles {
    /// The next member in file order, in its role, or why it is out of place.
    fn sort(&mut self, e: Entry) -> Result<()> {
        let misplaced = |why: String| Err(Error::new(Code::ZipStructure, why));
        if e.name == MANIFEST_NAME {
            if !self.signatures.is_empty() {
                return misplaced("manifest.json is not before the signatures".into());
            }
            self.manifest = Some(e);
        } else if e.name.starts_with("signatures/") {
            if self.manifest.is_none() {
                return misplaced("a signature comes before manifest.json".into());
            }
            if self.signatures.last().is_some_and(|l| l.name >= e.name) {
                return misplaced("signatures are not in name order".into());
            }
            self.signatures.push(e);
        } else {
            if self.manifest.is_some() {
                return misplaced(format!("{} comes after manifest.json", e.name));
            }
            self.payload.push(e);
        }
        Ok(())
    }
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
    let mut accepted = Vec::new();
    let mut first_err = None;
    let mut refusals: Vec<String> = Vec::new();
    for s in sigs {
        match accept(manifest, s, trust) {
            Ok(a) => accepted.push(a),
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
        return Err(below_threshold(&accepted, &refusals, required));
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

/// One signature against the trust store.
fn accept(manifest: &Manifest, s: &SshSig, trust: &TrustStore) -> Result<AcceptedSigner> {
    let created = manifest.created.system_time();
    let line = trust.check(&s.public_key, manifest.source.principal(), created)?;
    // User presence is always required (ssh-keygen -Y verify does not
    // check it; airlock is stricter on purpose).
    if !s.user_present() {
        return Err(Error::new(
            Code::SigNoPresence,
            format!(
                "the FIDO signature by {} was made without touching the token",
                s.public_key.fingerprint()
            ),
        ));
    }
    Ok(AcceptedSigner {
        fingerprint: s.public_key.fingerprint(),
        principals: line.principals.clone(),
        trust_line: line.line,
    })
}

/// `SIG-THRESHOLD`: fewer distinct trusted keys signed than the policy
/// requires.
fn below_threshold(accepted: &[AcceptedSigner], refusals: &[String], required: usize) -> Error {
    Error::new(
        Code::SigThreshold,
        format!(
            "{} valid signature(s) from distinct trusted keys ({}); the policy requires {required}{}",
            accepted.len(),
            accepted.iter().map(|a| a.fingerprint.as_str()).collect::<Vec<_>>().join(", "),
            if refusals.is_empty() { String::new() } else { format!("; refused: {}", refusals.join(", ")) }
        ),
    )
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
                crate::format::manifest::format_time(now),
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
                crate::format::manifest::format_time(now)
            ),
        ));
    }
    Ok(())
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
/// use airlock::verify::{verify, Clock, VerifyOptions, DEFAULT_SKEW};
/// use airlock::trust::TrustStore;
///
/// # fn main() -> airlock::Result<()> {
/// // A bundle held in memory, and the trust file of the importing side.
/// let bytes = std::fs::read("fixtures/bundles/golden_clear_users.airlock.zip").unwrap();
/// let trust = TrustStore::load(Path::new("keys/allowed_signers"), None)?;
/// let opts = VerifyOptions {
///     progress: airlock::progress::Progress::none(),
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
    verify_bundle(medium, opts, Ask::default(), Discard)
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
    let replace = if to.overwrite {
        Replace::Always
    } else {
        Replace::Never
    };
    // Extract needs only the signed ciphertext digest.
    let dest = Dir::new(to.dir, &name, replace, Hashing::Skip);
    let (v, dest) = verify_bundle(open_bundle(path)?, opts, Ask::default(), dest)?;
    let written = dest.into_staged().publish(0o600, replace)?;
    Ok((v, written))
}

/// What a verifying read is asked for beyond the verdict.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ask {
    /// Take the SHA-256 of the whole file from the same read (import's and
    /// export's ledgers record it): `Verified::bundle_sha256`.
    pub bundle_sha256: Hashing,
    /// The one kind of bundle this side takes in (`None`: either). A bundle
    /// of the other kind is refused with `WRONG-DIRECTION` as soon as its
    /// manifest's signatures are valid, before trust is looked up and before
    /// any payload byte is read (decision 81). The refusal carries no
    /// manifest: the kind alone decides it, and an untrusted bundle's claims
    /// are never recorded.
    pub kind: Option<BundleKind>,
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
/// trust and the member list, then read the whole file once, driving `dest`
/// with each payload member's content (see [`Destination`]), and judge
/// freshness at the end. `ask` says what else that read takes or refuses.
/// The destination comes back with the verdict; a refusal carries what the
/// read established (`Refusal`), and the destination is dropped with it.
pub fn verify_bundle<M: Medium + 'static, D: Destination>(
    medium: M,
    opts: &VerifyOptions<'_>,
    ask: Ask,
    mut dest: D,
) -> std::result::Result<(Verified, D), Refusal> {
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
    let mut run = Run {
        opts,
        ask,
        dest: &mut dest,
    };
    match run.opened(&mut layout, &mut signed) {
        Ok(v) => Ok((v, dest)),
        Err(error) => Err(Refusal {
            error,
            read: Some(Box::new(layout.reader.facts())),
            signed,
        }),
    }
}

/// One verification: what it trusts and decrypts with, what it is asked
/// for, and the destination it drives.
struct Run<'r, 'o> {
    opts: &'r VerifyOptions<'o>,
    ask: Ask,
    dest: &'r mut dyn Destination,
}

/// What the sequential read produced.
struct PassResult {
    checks: Vec<PayloadCheck>,
    bundle_sha256: Option<HexDigest>,
}

impl Run<'_, '_> {
    /// The core after step 1; `trusted` gets the manifest once trusted keys
    /// signed it.
    fn opened(
        &mut self,
        layout: &mut Layout,
        trusted: &mut Option<Box<Manifest>>,
    ) -> Result<Verified> {
        let opts = self.opts;
        // 2. signatures over the manifest bytes
        let signed = read_signed(layout)?;
        // 3. manifest (signed bytes only), and its kind where one side takes
        //    one kind only
        let manifest = Manifest::parse(&signed.manifest)?;
        if let Some(want) = self.ask.kind {
            check_kind(&manifest, want)?;
        }
        // 4. trust
        let signers = check_trust(&manifest, &signed.sigs, opts.trust, opts.require_signers)
            .map_err(|e| expired_too(e, &manifest, opts.now.now(), opts.skew))?;
        *trusted = Some(Box::new(manifest.clone()));
        // 5. member list
        check_members(&manifest, &layout.payload)?;
        // An expired bundle is refused before its payload is read; freshness
        // is judged again at the moment of decision, below.
        check_freshness(&manifest, opts.now.now(), opts.skew)?;
        self.dest.begin(&manifest)?;
        fsutil::pause_point(fsutil::Pause::VerifySigned);
        // 6. one sequential read: payload digests (and decryption), the
        //    signed members again, the container's tail
        let read = self
            .read_all(&mut layout.reader, &manifest, &signed)
            .map_err(|e| prefer_changed(&layout.reader, e))?;
        fsutil::pause_point(fsutil::Pause::VerifyPayloadRead);
        // 7. freshness, now
        let decided_at = opts.now.now();
        check_freshness(&manifest, decided_at, opts.skew)?;
        let verified = Verified {
            manifest,
            manifest_bytes: signed.manifest,
            signers,
            payload: read.checks,
            bundle_sha256: read.bundle_sha256,
            decided_at,
        };
        self.dest.finish(&verified)?;
        Ok(verified)
    }

    /// Step 6: the whole file, once, from its first byte to its last.
    fn read_all(
        &mut self,
        reader: &mut Reader,
        manifest: &Manifest,
        signed: &Signed,
    ) -> Result<PassResult> {
        let mut pass = reader.pass(self.ask.bundle_sha256)?;
        let mut buf = fsutil::buffer(STREAM_BUFFER)?;
        let ids = self.opts.identities.filter(|i| !i.is_empty());
        let mut checks = Vec::new();
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
            self.dest.member(manifest, p)?;
            let member = MemberRead {
                p,
                m: manifest,
                src: &mut r,
                ids,
                buf: &mut buf,
                progress: &self.opts.progress,
            };
            let check = member.run(&mut *self.dest)?;
            self.dest.checked(&check)?;
            checks.push(check);
        }
        reread_signed(&mut pass, signed)?;
        let whole = pass.finish()?;
        Ok(PassResult {
            checks,
            bundle_sha256: whole.map(|d| HexDigest::from_bytes(&d)),
        })
    }
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

/// The manifest and signatures again, in this pass: the bytes it hashes
/// must be the bytes that were verified.
fn reread_signed(pass: &mut crate::format::container::Pass<'_>, signed: &Signed) -> Result<()> {
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

#[cfg(test)]
mod tests;
