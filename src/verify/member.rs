//! One payload member's part of the verifying read: its bytes read once
//! and, in the same step, hashed against the signed digest, decrypted when
//! asked, handed to the destination and sniffed for a usage file.

use std::io::{self, Read, Write};

use super::{Destination, PayloadCheck};
use crate::base::error::{Code, Error, Result};
use crate::base::progress::Progress;
use crate::crypto::crypt::{self, Identities};
use crate::format::container::{Hashing, MemberReader, HEAD_LEN};
use crate::format::manifest::{HexDigest, Manifest, PayloadEntry};
use crate::format::rules::output_name;
use crate::format::usage::{Sniff, Sniffer, UsageInfo};
use crate::io::fsutil;
use crate::verify::tee::Tee;

/// One payload member's verifying read: the member, the manifest that
/// lists it, its reader (in the sequential pass) and what decrypts it.
pub(super) struct MemberRead<'r, 'a> {
    /// The member, as listed.
    pub(super) p: &'r PayloadEntry,
    /// The manifest, signed by trusted keys.
    pub(super) m: &'r Manifest,
    /// The member's bytes, from the one sequential read.
    pub(super) src: &'r mut MemberReader<'a>,
    /// Identities to decrypt with (none: ciphertext is checked only).
    pub(super) ids: Option<&'r Identities>,
    /// The buffer decrypted bytes pass through.
    pub(super) buf: &'r mut [u8],
    /// Where the reading progress goes.
    pub(super) progress: &'r Progress,
}

/// The destination as a writer, for the plaintext tee.
struct ToDest<'d>(&'d mut dyn Destination);

impl Write for ToDest<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map(|()| buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl MemberRead<'_, '_> {
    /// Read the member once: digest, and either hand the clear bytes, or
    /// decrypt, into `dest`; validate a usage file on the side.
    pub(super) fn run(mut self, dest: &mut dyn Destination) -> Result<PayloadCheck> {
        let encrypted = self.p.encryption.is_some();
        let mut check = PayloadCheck::unread(self.p);
        self.src.tap()?;
        self.progress
            .begin(&format!("verify {}", self.p.name), Some(self.p.size));
        let verdict = match self.ids {
            _ if !encrypted => self.copy_clear(dest).map(Some),
            Some(ids) => self.decrypt(ids, dest, &mut check).map(Some),
            // Ciphertext only: the digest, then the header against the
            // signed recipients.
            None => self.src.drain().map(|_| None),
        };
        self.progress.end();
        let verdict = verdict.map_err(|err| self.failure(err))?;
        if encrypted && self.ids.is_none() {
            let head = self.src.head().take();
            self.check_digest()?;
            crypt::check_header(&crypt::header_stanzas(&head[..])?, &self.m.recipients)?;
        } else {
            self.check_digest()?;
        }
        if !encrypted {
            check.plaintext_size = Some(self.p.size);
            check.plaintext_sha256 = Some(self.p.sha256.clone());
        }
        // Every member's plaintext was sniffed, whatever its label (decision
        // 70); none only for ciphertext that was not decrypted.
        if let Some(v) = verdict {
            check.usage = validate(self.m, self.p, v)?;
            check.source_checked = true;
        }
        check.validated = !encrypted || check.decrypted;
        Ok(check)
    }

    /// The member's digest, compared with the signed one.
    fn check_digest(&mut self) -> Result<()> {
        let digest = HexDigest::from_bytes(&self.src.digest()?);
        if digest != self.p.sha256 {
            return Err(Error::new(
                Code::MemberDigest,
                format!(
                    "{}: SHA-256 {digest} differs from the manifest's {}",
                    self.p.name, self.p.sha256
                ),
            ));
        }
        Ok(())
    }

    /// Which error a failed member read reports: the container's own
    /// complaint first (CRC, short member), as the rest of the reader
    /// reports it; then a local I/O failure; then the signed digest, so that
    /// a member that was swapped or altered is reported as such, whatever
    /// else went wrong while decrypting or parsing it; else `err` itself.
    fn failure(&mut self, err: Error) -> Error {
        if let Some(container) = self.src.failure() {
            return container;
        }
        if err.code.class() == crate::base::error::Class::Io {
            return err;
        }
        if let Err(e) = self.src.drain() {
            return e;
        }
        self.check_digest().err().unwrap_or(err)
    }

    fn write_error(&self, err: io::Error) -> Error {
        Error::new(
            Code::IoWrite,
            format!("writing {}: {err}", output_name(self.p)),
        )
    }

    /// A clear member: every block to the destination, and to the usage
    /// sniffer (every member, whatever its label: a `file` may be a usage
    /// file too).
    fn copy_clear(&mut self, dest: &mut dyn Destination) -> Result<Sniff> {
        let mut sniffer = Sniffer::spawn()?;
        loop {
            let piece = match self.src.next_piece() {
                Ok(None) => break,
                Ok(Some(piece)) => piece,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(self.src.error(err)),
            };
            self.progress.advance(piece.bytes().len() as u64);
            dest.write(piece.bytes())
                .map_err(|err| self.write_error(err))?;
            sniffer.feed_piece(piece);
        }
        dest.written().map_err(|err| self.write_error(err))?;
        sniffer.finish()
    }

    /// An encrypted member: check the age header against the signed
    /// recipients, then decrypt to the end, plaintext to the destination.
    fn decrypt(
        &mut self,
        ids: &Identities,
        dest: &mut dyn Destination,
        check: &mut PayloadCheck,
    ) -> Result<Sniff> {
        let (m, head) = (self.m, self.src.head());
        let src = &mut *self.src;
        let decryptor = age::Decryptor::new(&mut *src).map_err(crypt::decrypt_error)?;
        // age reads exactly the header: what was kept is the header.
        crypt::check_header(&crypt::header_stanzas(&head.borrow()[..])?, &m.recipients)?;
        let max_wf = max_work_factor(m);
        let nonce = payload_nonce(&head.borrow());
        let mut stream: Box<dyn Read + '_> = match nonce {
            Some(nonce) => {
                let key = ids.unlock_stream(decryptor, max_wf, &nonce);
                let key = key.map_err(|e| hinted(e, ids, m))?;
                Box::new(crypt::stream::StreamReader::new(&mut *src, key)?)
            }
            None => Box::new(
                ids.unlock(decryptor, max_wf)
                    .map_err(|e| hinted(e, ids, m))?,
            ),
        };
        // Every member's plaintext, whatever its label (decision 70).
        let mut sniffer = Sniffer::spawn()?;
        // Decryption on this core, the plaintext's SHA-256 on the other.
        let sha = match dest.plaintext_sha256() {
            Hashing::Take => Some(fsutil::Hasher::side()?),
            Hashing::Skip => None,
        };
        let mut tee = Tee::new(ToDest(dest), sha, &mut sniffer);
        pump(&mut *stream, &mut tee, self.buf, self.p, self.progress)?;
        drop(stream);
        // The age stream ended cleanly; nothing may follow it in the member.
        if self.src.drain()? != 0 {
            return Err(Error::new(
                Code::DecryptFailed,
                format!("{}: data follows the end of the age payload", self.p.name),
            ));
        }
        let (ToDest(dest), size, digest) = tee.finish()?;
        check.decrypted = true;
        check.plaintext_size = Some(size);
        check.plaintext_sha256 = digest.map(|d| HexDigest::from_bytes(&d));
        dest.written().map_err(|err| self.write_error(err))?;
        sniffer.finish()
    }
}

/// The payload nonce, when what age consumed is exactly the header and the
/// nonce (the payload then goes through crypt::stream, ring's
/// ChaCha20-Poly1305); none when it filled the whole head.
fn payload_nonce(consumed: &[u8]) -> Option<[u8; crypt::stream::NONCE_LEN]> {
    consumed
        .len()
        .checked_sub(crypt::stream::NONCE_LEN)
        .filter(|_| consumed.len() < HEAD_LEN)
        .and_then(|at| <[u8; crypt::stream::NONCE_LEN]>::try_from(&consumed[at..]).ok())
}

/// A refusal to unlock, with the hint that names the identity that would.
fn hinted(e: Error, ids: &Identities, m: &Manifest) -> Error {
    match (e.code, ids.no_match_hint(&m.recipients)) {
        (Code::DecryptNoIdentity, Some(hint)) => e.with_hint(hint),
        _ => e,
    }
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
    tee: &mut Tee<'_, ToDest<'_>>,
    buf: &mut [u8],
    p: &PayloadEntry,
    progress: &Progress,
) -> Result<()> {
    loop {
        let n = match stream.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(crypt::stream_error(&p.name, err)),
        };
        progress.advance(n as u64);
        tee.write_all(&buf[..n]).map_err(|err| {
            Error::new(Code::IoWrite, format!("writing {}: {err}", output_name(p)))
        })?;
    }
}

/// What a member's content is, by its label: a `usage` member must be a
/// usage file; a `file` member is judged by export's rule.
fn validate(m: &Manifest, p: &PayloadEntry, verdict: Sniff) -> Result<Option<UsageInfo>> {
    if p.is_usage() {
        validate_usage(m, p, verdict).map(Some)
    } else {
        validate_file(m, p, verdict)
    }
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
pub(super) fn validate_file(
    manifest: &Manifest,
    p: &PayloadEntry,
    verdict: Sniff,
) -> Result<Option<UsageInfo>> {
    match verdict {
        Sniff::Usage(u) => {
            check_source(manifest, p, &u)?;
            Ok(Some(u))
        }
        Sniff::Invalid(why) => Err(crate::format::usage::invalid(&p.name, &why)),
        Sniff::Other => Ok(None),
    }
}

fn validate_usage(manifest: &Manifest, p: &PayloadEntry, verdict: Sniff) -> Result<UsageInfo> {
    match verdict {
        Sniff::Usage(u) => {
            check_source(manifest, p, &u)?;
            Ok(u)
        }
        Sniff::Invalid(why) => Err(crate::format::usage::invalid(&p.name, &why)),
        Sniff::Other => Err(crate::format::usage::invalid(
            &p.name,
            "it is not a JSON object with an instance",
        )),
    }
}
