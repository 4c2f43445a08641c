//! Encryption with age: recipients (X25519, ssh-ed25519, passphrase/scrypt),
//! identities (age identity files, OpenSSH Ed25519 keys, passphrases), and
//! the cleartext check of an age header against the signed recipient list.
//!
//! age does not authenticate senders: the bundle signature over the
//! ciphertext digest and the recipient list is what binds an encrypted member
//! to the exporter (docs/format.md §7).

use std::fs;
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use base64::Engine;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::bundle::manifest::Recipient as ListedRecipient;
use crate::error::{Code, Error, Result};
use crate::keys::{self, PassphraseSource};

/// scrypt work factor (log2 N) used for passphrase bundles: N = 2^18 takes
/// about 0.5–1 s and 256 MiB on current hardware, age's own target.
pub const SCRYPT_WORK_FACTOR: u8 = 18;
/// The most a decrypting airlock will spend, whatever a manifest says:
/// 2^20 is ~1 GiB of memory.
pub const SCRYPT_MAX_WORK_FACTOR: u8 = 20;

/// Recipients for an export: what the manifest lists, and what age encrypts to.
#[derive(Default)]
pub struct Recipients {
    pub listed: Vec<ListedRecipient>,
    boxed: Vec<Box<dyn age::Recipient + Send>>,
}

impl Recipients {
    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    /// Add an `age1…` or `ssh-ed25519 AAAA…` recipient.
    pub fn add(&mut self, s: &str) -> Result<()> {
        let s = s.trim();
        if self.listed.iter().any(|r| r.kind == "scrypt") {
            return Err(scrypt_alone());
        }
        if s.starts_with("age1") {
            let r = age::x25519::Recipient::from_str(s).map_err(|e| {
                Error::new(
                    Code::Args,
                    format!("{s:?} is not an age X25519 recipient: {e}"),
                )
            })?;
            let canonical = r.to_string();
            if self
                .listed
                .iter()
                .any(|l| l.recipient.as_deref() == Some(canonical.as_str()))
            {
                return Ok(());
            }
            self.listed.push(ListedRecipient {
                kind: "x25519".into(),
                recipient: Some(canonical),
                work_factor: None,
            });
            self.boxed.push(Box::new(r));
            Ok(())
        } else if s.starts_with("ssh-ed25519 ") {
            // Keep the key type and base64 only: comments are not part of a recipient.
            let mut parts = s.split_whitespace();
            let canonical = format!(
                "{} {}",
                parts.next().unwrap_or(""),
                parts.next().unwrap_or("")
            );
            keys::parse_public_line(&canonical)?;
            let r = age::ssh::Recipient::from_str(&canonical).map_err(|e| {
                Error::new(
                    Code::Args,
                    format!("{s:?} is not an ssh-ed25519 recipient: {e:?}"),
                )
            })?;
            if self
                .listed
                .iter()
                .any(|l| l.recipient.as_deref() == Some(canonical.as_str()))
            {
                return Ok(());
            }
            self.listed.push(ListedRecipient {
                kind: "ssh-ed25519".into(),
                recipient: Some(canonical),
                work_factor: None,
            });
            self.boxed.push(Box::new(r));
            Ok(())
        } else if s.starts_with("ssh-rsa ") {
            Err(Error::new(
                Code::Args,
                "ssh-rsa recipients are not supported; use ssh-ed25519 or age1… recipients",
            ))
        } else {
            Err(Error::new(
                Code::Args,
                format!("{s:?} is not a recipient (age1… or ssh-ed25519 AAAA…)"),
            ))
        }
    }

    /// Read an age recipients file: one recipient per line, `#` comments.
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let text = fs::read_to_string(path).map_err(|e| Error::io_read(path, e))?;
        let mut n = 0;
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            self.add(l).map_err(|e| {
                Error::new(e.code, format!("{}:{}: {}", path.display(), i + 1, e.cause))
            })?;
            n += 1;
        }
        if n == 0 {
            return Err(Error::new(
                Code::Args,
                format!("{} lists no recipients", path.display()),
            ));
        }
        Ok(())
    }

    /// Encrypt with a passphrase. It cannot be combined with other recipients.
    pub fn set_passphrase(&mut self, pass: &str, work_factor: u8) -> Result<()> {
        if !self.listed.is_empty() {
            return Err(scrypt_alone());
        }
        if pass.is_empty() {
            return Err(Error::new(Code::Args, "empty passphrase"));
        }
        let mut r = age::scrypt::Recipient::new(SecretString::from(pass.to_string()));
        r.set_work_factor(work_factor);
        self.listed.push(ListedRecipient {
            kind: "scrypt".into(),
            recipient: None,
            work_factor: Some(work_factor),
        });
        self.boxed.push(Box::new(r));
        Ok(())
    }

    /// An age encryptor for these recipients.
    pub fn encryptor(&self) -> Result<age::Encryptor> {
        age::Encryptor::with_recipients(
            self.boxed.iter().map(|b| b.as_ref() as &dyn age::Recipient),
        )
        .map_err(|e| {
            Error::new(
                Code::Args,
                format!("cannot encrypt to these recipients: {e}"),
            )
        })
    }
}

fn scrypt_alone() -> Error {
    Error::new(
        Code::Args,
        "a passphrase cannot be combined with other recipients (age's rule)",
    )
    .with_hint("use either --passphrase/--passphrase-file or --recipient/--recipients-file")
}

/// Identities for decryption.
#[derive(Default)]
pub struct Identities {
    ids: Vec<Box<dyn age::Identity + Send + Sync>>,
    passphrase: Option<SecretString>,
    /// Names of the files loaded, for messages.
    pub sources: Vec<String>,
}

const OPENSSH_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";

impl Identities {
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.passphrase.is_none()
    }

    /// Load an age identity file (as made by `age-keygen` or
    /// `airlock keygen --age`) or an OpenSSH Ed25519 private key. Like
    /// private keys, identity files readable by others are refused.
    pub fn add_file(&mut self, path: &Path, passphrase: PassphraseSource<'_>) -> Result<()> {
        keys::check_private_permissions(path)?;
        let text = Zeroizing::new(fs::read(path).map_err(|e| Error::io_read(path, e))?);
        if text.starts_with(OPENSSH_BEGIN.as_bytes()) {
            // Decrypt the key with airlock's key loader (one passphrase path
            // for signing and identity keys), then hand age an unencrypted copy.
            let signer = keys::load_signer(path, passphrase)?;
            let pem = keys::unencrypted_openssh(&signer)?;
            let id = age::ssh::Identity::from_buffer(io::Cursor::new(pem.as_bytes()), None)
                .map_err(|e| Error::new(Code::KeyRead, format!("{}: {e}", path.display())))?;
            match id {
                age::ssh::Identity::Unencrypted(_) => self.ids.push(Box::new(id)),
                _ => {
                    return Err(Error::new(
                        Code::KeyType,
                        format!("{} is not a usable SSH identity", path.display()),
                    ))
                }
            }
        } else {
            let file =
                age::IdentityFile::from_buffer(io::BufReader::new(&text[..])).map_err(|e| {
                    Error::new(
                        Code::KeyRead,
                        format!("{} is not an age identity file: {e}", path.display()),
                    )
                })?;
            let ids = file
                .into_identities()
                .map_err(|e| Error::new(Code::KeyRead, format!("{}: {e}", path.display())))?;
            if ids.is_empty() {
                return Err(Error::new(
                    Code::KeyRead,
                    format!("{} holds no age identity", path.display()),
                ));
            }
            self.ids.extend(ids);
        }
        self.sources.push(path.display().to_string());
        Ok(())
    }

    /// Use a passphrase for scrypt-encrypted bundles.
    pub fn set_passphrase(&mut self, pass: &str) {
        self.passphrase = Some(SecretString::from(pass.to_string()));
    }

    pub fn has_passphrase(&self) -> bool {
        self.passphrase.is_some()
    }

    /// Start decrypting one age file. `max_work_factor` caps scrypt.
    pub fn decrypt<R: Read>(
        &self,
        input: R,
        max_work_factor: u8,
    ) -> Result<age::stream::StreamReader<R>> {
        let d = age::Decryptor::new(input).map_err(decrypt_error)?;
        self.unlock(d, max_work_factor)
    }

    /// Unwrap the file key of an age file whose header was already read
    /// (and checked by the caller). `max_work_factor` caps scrypt.
    pub fn unlock<R: Read>(
        &self,
        d: age::Decryptor<R>,
        max_work_factor: u8,
    ) -> Result<age::stream::StreamReader<R>> {
        let mut scrypt_id;
        let mut ids: Vec<&dyn age::Identity> = self
            .ids
            .iter()
            .map(|b| b.as_ref() as &dyn age::Identity)
            .collect();
        if d.is_scrypt() {
            let Some(p) = &self.passphrase else {
                return Err(Error::new(
                    Code::DecryptNoIdentity,
                    "the payload is encrypted with a passphrase and none was given",
                )
                .with_hint("pass --passphrase-file FILE, or run on a terminal to be asked"));
            };
            scrypt_id =
                age::scrypt::Identity::new(SecretString::from(p.expose_secret().to_string()));
            scrypt_id.set_max_work_factor(max_work_factor.min(SCRYPT_MAX_WORK_FACTOR));
            ids = vec![&scrypt_id];
        }
        d.decrypt(ids.into_iter()).map_err(decrypt_error)
    }
}

/// Map age's errors to airlock's codes.
pub fn decrypt_error(e: age::DecryptError) -> Error {
    use age::DecryptError as D;
    match e {
        D::NoMatchingKeys => Error::new(
            Code::DecryptNoIdentity,
            "none of the identities given can decrypt the payload",
        ),
        D::DecryptionFailed => Error::new(
            Code::DecryptFailed,
            "decryption failed: wrong passphrase, or the ciphertext was altered",
        ),
        D::KeyDecryptionFailed => Error::new(
            Code::KeyPassphrase,
            "an encrypted identity could not be unlocked",
        ),
        D::ExcessiveWork { required, target } => Error::new(
            Code::DecryptFailed,
            format!("the passphrase work factor 2^{required} exceeds the allowed 2^{target}"),
        ),
        D::InvalidHeader | D::UnknownFormat => {
            Error::new(Code::DecryptFailed, "the payload is not a valid age file")
        }
        D::InvalidMac => Error::new(
            Code::DecryptFailed,
            "the age header MAC does not match: the file was altered",
        ),
        D::Io(e) => Error::new(Code::IoRead, format!("reading the age file: {e}")),
        #[allow(unreachable_patterns)]
        other => Error::new(Code::DecryptFailed, format!("decryption failed: {other}")),
    }
}

/// Map an error from reading the age payload stream.
pub fn stream_error(name: &str, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => Error::new(
            Code::DecryptFailed,
            format!("{name}: the ciphertext is truncated or altered ({e})"),
        ),
        _ => Error::new(Code::IoRead, format!("{name}: {e}")),
    }
}

/// The recipient stanzas in an age header: their type and first argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    pub kind: String,
    pub args: Vec<String>,
}

/// Read the stanza lines of an age v1 header, without any key. Bounded to
/// 64 KiB and 64 stanzas.
pub fn header_stanzas<R: Read>(r: R) -> Result<Vec<Stanza>> {
    let bad = |m: &str| {
        Error::new(
            Code::RecipientsMismatch,
            format!("the age header is malformed: {m}"),
        )
    };
    let mut r = io::BufReader::new(r.take(64 * 1024));
    let mut line = String::new();
    let mut next = |line: &mut String| -> Result<bool> {
        line.clear();
        let n = r.read_line(line).map_err(|_| bad("not text"))?;
        Ok(n > 0 && line.ends_with('\n'))
    };
    if !next(&mut line)? || line != "age-encryption.org/v1\n" {
        return Err(bad("not an age v1 file"));
    }
    let mut out = Vec::new();
    loop {
        if !next(&mut line)? {
            return Err(bad("header ends early"));
        }
        if line.starts_with("--- ") {
            return Ok(out);
        }
        let Some(rest) = line.strip_prefix("-> ") else {
            // Body lines of the previous stanza.
            if out.is_empty() {
                return Err(bad("body before any stanza"));
            }
            continue;
        };
        let mut parts = rest.trim_end().split(' ');
        let kind = parts.next().unwrap_or("").to_string();
        out.push(Stanza {
            kind,
            args: parts.map(String::from).collect(),
        });
        if out.len() > 64 {
            return Err(bad("too many stanzas"));
        }
    }
}

/// The age ssh-ed25519 stanza tag of a recipient: base64 of the first four
/// bytes of SHA-256 of the SSH key blob.
fn ssh_tag(recipient: &str) -> Option<String> {
    let b64 = recipient.split_whitespace().nth(1)?;
    let blob = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let d = Sha256::digest(blob);
    Some(base64::engine::general_purpose::STANDARD_NO_PAD.encode(&d[..4]))
}

/// Check that an age header was made for exactly the signed recipients:
/// same number of stanzas of each type, ssh-ed25519 tags matching, scrypt
/// work factor as listed. (X25519 stanzas reveal no recipient; their count
/// is what can be checked without a key.)
pub fn check_header(stanzas: &[Stanza], listed: &[ListedRecipient]) -> Result<()> {
    let mismatch = |m: String| Error::new(Code::RecipientsMismatch, m);
    let real: Vec<&Stanza> = stanzas
        .iter()
        .filter(|s| !s.kind.ends_with("-grease"))
        .collect();
    let count = |k: &str| real.iter().filter(|s| s.kind == k).count();
    let want = |k: &str| listed.iter().filter(|r| r.kind == k).count();
    if count("X25519") != want("x25519")
        || count("ssh-ed25519") != want("ssh-ed25519")
        || count("scrypt") != want("scrypt")
        || real.len() != listed.len()
    {
        return Err(mismatch(format!(
            "the age header has {} recipient stanzas ({}), the signed manifest lists {}",
            real.len(),
            real.iter()
                .map(|s| s.kind.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            listed.len()
        )));
    }
    for r in listed {
        match r.kind.as_str() {
            "ssh-ed25519" => {
                let tag = r.recipient.as_deref().and_then(ssh_tag);
                if !real
                    .iter()
                    .any(|s| s.kind == "ssh-ed25519" && s.args.first() == tag.as_ref())
                {
                    return Err(mismatch(format!(
                        "no age stanza for the listed recipient {}",
                        r.recipient.as_deref().unwrap_or("")
                    )));
                }
            }
            "scrypt" => {
                let wf = r.work_factor.map(|w| w.to_string());
                if !real
                    .iter()
                    .any(|s| s.kind == "scrypt" && s.args.get(1) == wf.as_ref())
                {
                    return Err(mismatch(
                        "the scrypt work factor differs from the signed one".into(),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Make a new age X25519 identity, in age-keygen's file format.
pub fn generate_identity(created: &str) -> (Zeroizing<String>, String) {
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let text = Zeroizing::new(format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        id.to_string().expose_secret()
    ));
    (text, recipient)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn encrypt(r: &Recipients, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = r.encryptor().unwrap().wrap_output(&mut out).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap();
        out
    }

    #[test]
    fn x25519_round_trip_and_header_check() {
        let (text, recipient) = generate_identity("2026-11-28T00:00:00Z");
        let mut rs = Recipients::default();
        rs.add(&recipient).unwrap();
        rs.add(&recipient).unwrap(); // duplicates collapse
        assert_eq!(rs.listed.len(), 1);
        let ct = encrypt(&rs, b"secret usage");
        let st = header_stanzas(&ct[..]).unwrap();
        check_header(&st, &rs.listed).unwrap();

        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("id.txt");
        std::fs::write(&p, text.as_bytes()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut ids = Identities::default();
        ids.add_file(&p, &mut || unreachable!()).unwrap();
        let mut pt = Vec::new();
        ids.decrypt(&ct[..], SCRYPT_MAX_WORK_FACTOR)
            .unwrap()
            .read_to_end(&mut pt)
            .unwrap();
        assert_eq!(pt, b"secret usage");

        // Two stanzas against one listed recipient: refused.
        let mut two = Recipients::default();
        two.add(&recipient).unwrap();
        two.add(&generate_identity("x").1).unwrap();
        let ct2 = encrypt(&two, b"x");
        assert!(check_header(&header_stanzas(&ct2[..]).unwrap(), &rs.listed).is_err());
    }

    #[test]
    fn passphrase_cannot_mix_and_truncation_is_detected() {
        let mut rs = Recipients::default();
        rs.set_passphrase("pw", 10).unwrap();
        assert!(rs.add(&generate_identity("x").1).is_err());
        let ct = encrypt(&rs, &vec![7u8; 200_000]);
        check_header(&header_stanzas(&ct[..]).unwrap(), &rs.listed).unwrap();
        let mut ids = Identities::default();
        ids.set_passphrase("pw");
        let mut pt = Vec::new();
        let err = ids
            .decrypt(&ct[..ct.len() - 10], 20)
            .unwrap()
            .read_to_end(&mut pt)
            .unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            ),
            "{err:?}"
        );
        let mut wrong = Identities::default();
        wrong.set_passphrase("nope");
        assert_eq!(
            wrong.decrypt(&ct[..], 20).err().unwrap().code,
            Code::DecryptFailed
        );
        // The cap on the work factor holds.
        let mut capped = Identities::default();
        capped.set_passphrase("pw");
        assert_eq!(
            capped.decrypt(&ct[..], 9).err().unwrap().code,
            Code::DecryptFailed
        );
    }
}
