//! Verification: the algorithm of docs/format.md §6, step by step and in that
//! order. Nothing is parsed before the layer beneath it has checked out.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bundle::container::{member_read_error, Entry, Reader};
use crate::bundle::export::{signature_member_name, CHUNK};
use crate::bundle::manifest::{
    Manifest, PayloadEntry, KIND_USAGE, MANIFEST_NAME, MAX_MANIFEST_LEN, MAX_SIGNATURES,
};
use crate::crypt::{self, Identities};
use crate::error::{Code, Error, Result};
use crate::fsutil;
use crate::sshsig::{SigError, SshSig, BUNDLE_NAMESPACE, MAX_ARMORED_LEN};
use crate::trust::TrustStore;
use crate::usage::{Sniff, Sniffer, UsageInfo};

/// Allowed clock difference between exporter and verifier.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(5 * 60);

pub struct VerifyOptions<'a> {
    pub trust: &'a TrustStore,
    /// Identities to decrypt encrypted payloads with; without them only the
    /// ciphertext is checked.
    pub identities: Option<&'a Identities>,
    /// Valid signatures needed from distinct trusted keys (at least 1).
    pub require_signers: usize,
    /// The moment to verify as of (now, or `--at`).
    pub now: SystemTime,
    pub skew: Duration,
}

/// A signature that passed crypto and trust.
#[derive(Debug, Clone, Serialize)]
pub struct AcceptedSigner {
    pub fingerprint: String,
    pub principals: String,
    pub trust_line: usize,
}

/// What was checked about one payload member.
#[derive(Debug, Clone, Serialize)]
pub struct PayloadCheck {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub kind: String,
    pub encrypted: bool,
    /// True when an encrypted member was decrypted to its end.
    pub decrypted: bool,
    /// True when the content was validated (clear, or decrypted).
    pub validated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageInfo>,
}

/// A bundle that verified.
#[derive(Debug)]
pub struct Verified {
    pub manifest: Manifest,
    pub manifest_bytes: Vec<u8>,
    pub signers: Vec<AcceptedSigner>,
    pub payload: Vec<PayloadCheck>,
}

/// The container with its members sorted into their roles.
pub struct Layout {
    pub reader: Reader,
    pub payload: Vec<Entry>,
    pub manifest: Entry,
    pub signatures: Vec<Entry>,
}

/// Step 1: strict container, member roles and order.
pub fn open_layout(file: File) -> Result<Layout> {
    let reader = Reader::open(file)?;
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

/// Step 2: read the manifest bytes and every signature; check each
/// signature cryptographically over those bytes. Any bad signature fails the
/// bundle: nothing unexplained rides along.
pub fn read_signed(layout: &mut Layout) -> Result<(Vec<u8>, Vec<SshSig>)> {
    let m = layout.manifest.clone();
    let manifest_bytes = layout.reader.read_small(&m, MAX_MANIFEST_LEN)?;
    let mut sigs = Vec::new();
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
        sig.verify(&manifest_bytes)
            .map_err(|err| sig_error(&e.name, err))?;
        sigs.push(sig);
    }
    Ok((manifest_bytes, sigs))
}

/// Step 4: apply the trust policy to every cryptographically valid signature.
pub fn check_trust(
    manifest: &Manifest,
    sigs: &[SshSig],
    trust: &TrustStore,
    required: usize,
) -> Result<Vec<AcceptedSigner>> {
    let created = manifest.created_time()?;
    let mut accepted = Vec::new();
    let mut first_err = None;
    let mut refusals: Vec<String> = Vec::new();
    for s in sigs {
        let checked = trust
            .check(&s.public_key, &manifest.source.host_name, created)
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
    let created = manifest.created_time()?;
    let expires = manifest.expires_time()?;
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

/// Verify a bundle file. Encrypted members are checked as ciphertext only.
pub fn verify_file(path: &Path, opts: &VerifyOptions<'_>) -> Result<Verified> {
    let file = File::open(path).map_err(|e| Error::io_read(path, e))?;
    verify(file, opts)
}

pub fn verify(file: File, opts: &VerifyOptions<'_>) -> Result<Verified> {
    run(file, opts, None).map(|(v, _)| v)
}

/// Where `extract` writes: a directory, and whether existing files may be
/// replaced.
pub struct ExtractTo<'a> {
    pub dir: &'a Path,
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
    let file = File::open(path).map_err(|e| Error::io_read(path, e))?;
    run(file, opts, Some(to))
}

/// The file name a payload member is extracted to.
pub fn output_name(p: &PayloadEntry) -> &str {
    let base = p.name.strip_prefix("payload/").unwrap_or(&p.name);
    if p.encryption.is_some() {
        base.strip_suffix(".age").unwrap_or(base)
    } else {
        base
    }
}

/// The extraction temp file, written with early writeback (see
/// `fsutil::EarlyWriteback`).
fn writeback(t: &tempfile::NamedTempFile) -> Result<crate::fsutil::EarlyWriteback> {
    let f = t
        .as_file()
        .try_clone()
        .map_err(|e| Error::io_write(t.path(), e))?;
    crate::fsutil::EarlyWriteback::new(f)
}

/// Counts and hashes bytes on their way to another writer, optionally
/// feeding them to the usage-file sniffer too.
pub(crate) struct Tee<'a, W: Write> {
    pub(crate) inner: W,
    pub(crate) sha: crate::fsutil::Hasher,
    pub(crate) size: u64,
    pub(crate) sniffer: Option<&'a mut Sniffer>,
}

/// Where decrypted bytes go: the extraction temp file, or nowhere (verify
/// only: the bytes are hashed and dropped).
struct Dest(Option<crate::fsutil::EarlyWriteback>);

impl Write for Dest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Some(w) => w.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.as_mut().map_or(Ok(()), |w| w.flush())
    }
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.size += n as u64;
        if let Some(s) = self.sniffer.as_mut() {
            s.feed(&buf[..n]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn run(
    file: File,
    opts: &VerifyOptions<'_>,
    to: Option<ExtractTo<'_>>,
) -> Result<(Verified, Vec<PathBuf>)> {
    // 1. container
    let mut layout = open_layout(file)?;
    // 2. signatures over the manifest bytes
    let (manifest_bytes, sigs) = read_signed(&mut layout)?;
    // 3. manifest (signed bytes only)
    let manifest = Manifest::parse(&manifest_bytes)?;
    // 4. trust
    let signers = check_trust(&manifest, &sigs, opts.trust, opts.require_signers)?;
    // 5. member list
    check_members(&manifest, &layout.payload)?;
    if let Some(to) = &to {
        for p in &manifest.payload {
            let target = to.dir.join(output_name(p));
            if !to.overwrite && target.exists() {
                return Err(Error::new(
                    Code::OutputExists,
                    format!("{} already exists", target.display()),
                ));
            }
        }
    }
    // 6. digests, streamed; clear usage files are parsed on the side, and
    //    the age headers of encrypted members checked against the recipients
    let mut sniffed = Vec::new();
    let mut buf = crate::fsutil::buffer(CHUNK)?;
    for (p, e) in manifest.payload.iter().zip(layout.payload.clone()) {
        let encrypted = p.encryption.is_some();
        let mut sniffer = if p.kind == KIND_USAGE && !encrypted {
            Some(Sniffer::spawn()?)
        } else {
            None
        };
        let mut r = layout.reader.member(&e)?;
        let mut sha = Sha256::new();
        crate::progress::begin(&format!("verify {}", p.name), e.size);
        loop {
            let n = r.read(&mut buf).map_err(|err| member_read_error(&e, err))?;
            if n == 0 {
                break;
            }
            crate::progress::advance(n as u64);
            sha.update(&buf[..n]);
            if let Some(s) = sniffer.as_mut() {
                s.feed(&buf[..n]);
            }
        }
        crate::progress::end();
        let digest = hex::encode(sha.finalize());
        if digest != p.sha256 {
            return Err(Error::new(
                Code::MemberDigest,
                format!(
                    "{}: SHA-256 {digest} differs from the manifest's {}",
                    p.name, p.sha256
                ),
            ));
        }
        if encrypted {
            let r = layout.reader.member(&e)?;
            let stanzas = crypt::header_stanzas(r)?;
            crypt::check_header(&stanzas, &manifest.recipients)?;
        }
        sniffed.push(sniffer);
    }
    // 7. freshness
    check_freshness(&manifest, opts.now, opts.skew)?;
    // 8. payload: decrypt (when possible) and validate; write to temporary
    //    files when extracting
    let max_wf = manifest
        .recipients
        .iter()
        .find_map(|r| r.work_factor)
        .unwrap_or(crypt::SCRYPT_MAX_WORK_FACTOR);
    let mut payload = Vec::new();
    let mut staged = Vec::new();
    for ((p, e), sniffer) in manifest
        .payload
        .iter()
        .zip(layout.payload.clone())
        .zip(sniffed)
    {
        let encrypted = p.encryption.is_some();
        let mut temp = match &to {
            Some(to) => Some(fsutil::temp_beside(&to.dir.join(output_name(p)), 0o600)?),
            None => None,
        };
        let mut check = PayloadCheck {
            name: p.name.clone(),
            size: p.size,
            sha256: p.sha256.clone(),
            kind: p.kind.clone(),
            encrypted,
            decrypted: false,
            validated: false,
            plaintext_size: None,
            plaintext_sha256: None,
            usage: None,
        };
        let verdict = if !encrypted {
            if let Some(t) = temp.as_mut() {
                let mut r = layout.reader.member(&e)?;
                let dst = t.path().to_path_buf();
                let mut wb = writeback(t)?;
                std::io::copy(&mut r, &mut wb).map_err(|err| match err.kind() {
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                        member_read_error(&e, err)
                    }
                    _ => Error::io_write(&dst, err),
                })?;
                wb.finish().map_err(|err| Error::io_write(&dst, err))?;
            }
            check.plaintext_size = Some(p.size);
            check.plaintext_sha256 = Some(p.sha256.clone());
            match sniffer {
                Some(s) => Some(s.finish()?),
                None => None,
            }
        } else if let Some(ids) = opts.identities.filter(|i| !i.is_empty()) {
            let r = layout.reader.member(&e)?;
            let mut stream = ids.decrypt(r, max_wf)?;
            let mut sniffer = if p.kind == KIND_USAGE {
                Some(Sniffer::spawn()?)
            } else {
                None
            };
            let dst = Dest(match temp.as_ref() {
                Some(t) => Some(writeback(t)?),
                None => None,
            });
            // Decryption on this core, the plaintext's SHA-256 on the other.
            let mut tee = Tee {
                inner: dst,
                sha: crate::fsutil::Hasher::side()?,
                size: 0,
                sniffer: sniffer.as_mut(),
            };
            crate::progress::begin(&format!("decrypt {}", p.name), p.size);
            loop {
                let n = stream
                    .read(&mut buf)
                    .map_err(|err| crypt::stream_error(&p.name, err))?;
                if n == 0 {
                    break;
                }
                crate::progress::advance(n as u64);
                tee.write_all(&buf[..n]).map_err(|err| {
                    Error::new(Code::IoWrite, format!("writing {}: {err}", output_name(p)))
                })?;
            }
            crate::progress::end();
            let Tee {
                inner, sha, size, ..
            } = tee;
            check.decrypted = true;
            check.plaintext_size = Some(size);
            check.plaintext_sha256 = Some(hex::encode(sha.finish()?));
            if let Some(w) = inner.0 {
                w.finish().map_err(|err| {
                    Error::new(Code::IoWrite, format!("writing {}: {err}", output_name(p)))
                })?;
            }
            match sniffer {
                Some(s) => Some(s.finish()?),
                None => None,
            }
        } else {
            if let Some(to) = &to {
                return Err(Error::new(
                    Code::DecryptNoIdentity,
                    format!("{} is encrypted; extracting to {} needs an identity", p.name, to.dir.display()),
                )
                .with_hint("pass --identity FILE (age identity or OpenSSH key), or --passphrase-file for a passphrase bundle"));
            }
            None
        };
        if let Some(v) = verdict {
            check.usage = Some(validate_usage(&manifest, p, v)?);
        }
        check.validated = !encrypted || check.decrypted;
        if let Some(t) = temp {
            staged.push((t, to.as_ref().map(|t| t.dir.join(output_name(p)))));
        }
        payload.push(check);
    }
    // Everything checked out: publish.
    let mut written = Vec::new();
    if let Some(to) = &to {
        for (t, target) in staged {
            let Some(target) = target else { continue };
            t.as_file()
                .sync_all()
                .map_err(|e| Error::io_write(&target, e))?;
            if to.overwrite {
                t.persist(&target)
                    .map_err(|e| Error::io_write(&target, e.error))?;
            } else {
                t.persist_noclobber(&target)
                    .map_err(|e| Error::io_write(&target, e.error))?;
            }
            written.push(target);
        }
        fsutil::sync_dir(to.dir)?;
    }
    Ok((
        Verified {
            manifest,
            manifest_bytes,
            signers,
            payload,
        },
        written,
    ))
}

fn validate_usage(manifest: &Manifest, p: &PayloadEntry, verdict: Sniff) -> Result<UsageInfo> {
    match verdict {
        Sniff::Usage(u) => {
            if u.host_name != manifest.source.host_name
                || Some(&u.server_id) != manifest.source.server_id.as_ref()
            {
                return Err(Error::new(
                    Code::PayloadSource,
                    format!(
                        "{} is from {} ({}) but the manifest names {} ({})",
                        p.name,
                        u.host_name,
                        u.server_id,
                        manifest.source.host_name,
                        manifest.source.server_id.as_deref().unwrap_or("-")
                    ),
                ));
            }
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
    pub members: Vec<InspectedMember>,
    pub manifest_text: Option<String>,
    pub manifest_error: Option<String>,
    pub manifest: Option<Manifest>,
    pub signatures: Vec<InspectedSignature>,
}

#[derive(Debug, Serialize)]
pub struct InspectedMember {
    pub name: String,
    pub size: u64,
}

#[derive(Debug, Serialize)]
pub struct InspectedSignature {
    pub member: String,
    pub fingerprint: Option<String>,
    pub public_key: Option<String>,
    pub namespace: Option<String>,
    pub error: Option<String>,
}

/// Read a bundle's layout, manifest and signatures without trusting them.
/// The container must still be canonical: inspect never parses a malformed
/// zip more loosely than verify does.
pub fn inspect(path: &Path) -> Result<Inspection> {
    let file = File::open(path).map_err(|e| Error::io_read(path, e))?;
    let mut reader = Reader::open(file)?;
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
        manifest,
        signatures,
    })
}
