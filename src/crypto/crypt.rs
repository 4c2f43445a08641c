//! Encryption with age: recipients (X25519, hybrid post-quantum ML-KEM-768 +
//! X25519, ssh-ed25519, passphrase/scrypt), identities (age identity files,
//! OpenSSH Ed25519 keys, passphrases), and the cleartext check of an age
//! header against the signed recipient list.
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

use crate::base::error::{Code, Error, Result};
use crate::crypto::keys::{self, PassphraseSource};

pub mod hybrid;
mod listed;
pub(crate) mod stream;

pub use listed::{ListedRecipient, MAX_HYBRID_RECIPIENTS};

/// scrypt work factor (log2 N) used for passphrase bundles: N = 2^18 takes
/// about 0.5–1 s and 256 MiB on current hardware, age's own target.
pub const SCRYPT_WORK_FACTOR: u8 = 18;
/// The most a decrypting airlock will spend, whatever a manifest says:
/// 2^20 is ~1 GiB of memory.
pub const SCRYPT_MAX_WORK_FACTOR: u8 = 20;

/// Recipients for an export: what the manifest lists, and what age encrypts to.
#[derive(Default)]
pub struct Recipients {
    /// The recipients as the manifest lists them, in the order added.
    pub listed: Vec<ListedRecipient>,
    boxed: Vec<Box<dyn age::Recipient + Send>>,
}

impl Recipients {
    /// True when none was added: the export is not encrypted.
    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    /// Add an `age1pq1…`, `age1…` or `ssh-ed25519 AAAA…` recipient.
    pub fn add(&mut self, s: &str) -> Result<()> {
        let s = s.trim();
        if self.listed.iter().any(ListedRecipient::is_passphrase) {
            return Err(scrypt_alone());
        }
        if s.to_ascii_lowercase().starts_with(hybrid::RECIPIENT_PREFIX) {
            let r = hybrid::Recipient::from_str(s).map_err(|e| {
                Error::new(
                    Code::Args,
                    format!(
                        "{} is not an age post-quantum (ML-KEM-768 + X25519) recipient: {e}",
                        abbreviate(s)
                    ),
                )
            })?;
            let canonical = r.to_string();
            self.push(ListedRecipient::MlKem768X25519(canonical), Box::new(r))
        } else if s.starts_with("age1") {
            let r = age::x25519::Recipient::from_str(s).map_err(|e| {
                Error::new(
                    Code::Args,
                    format!("{s:?} is not an age X25519 recipient: {e}"),
                )
            })?;
            let canonical = r.to_string();
            self.push(ListedRecipient::X25519(canonical), Box::new(r))
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
            self.push(ListedRecipient::SshEd25519(canonical), Box::new(r))
        } else if s.starts_with("ssh-rsa ") {
            Err(Error::new(
                Code::Args,
                "ssh-rsa recipients are not supported; use ssh-ed25519 or age1… recipients",
            ))
        } else {
            Err(Error::new(
                Code::Args,
                format!(
                    "{} is not a recipient (age1pq1…, age1… or ssh-ed25519 AAAA…)",
                    abbreviate(s)
                ),
            ))
        }
    }

    /// List a parsed recipient once; refuse what age's rule for mixing
    /// refuses (post-quantum with classical) and more hybrid recipients than
    /// an age header checked by airlock holds.
    fn push(&mut self, listed: ListedRecipient, r: Box<dyn age::Recipient + Send>) -> Result<()> {
        if self
            .listed
            .iter()
            .any(|l| l.recipient() == listed.recipient())
        {
            return Ok(());
        }
        let pq = listed.is_post_quantum();
        if self.listed.iter().any(|l| l.is_post_quantum() != pq) {
            return Err(Error::new(
                Code::Args,
                "post-quantum (age1pq1…) and classical (age1…, ssh-ed25519) recipients cannot be \
                 mixed: the file key would be only as safe as X25519 against a quantum computer \
                 (age's rule)",
            )
            .with_hint(
                "encrypt to age1pq1… recipients only (each importer makes one with \
                 `airlock keygen --age --post-quantum`), or to classical recipients only",
            ));
        }
        if pq && self.listed.iter().filter(|l| l.is_post_quantum()).count() >= MAX_HYBRID_RECIPIENTS
        {
            return Err(Error::new(
                Code::Args,
                format!("at most {MAX_HYBRID_RECIPIENTS} post-quantum recipients per bundle"),
            ));
        }
        self.listed.push(listed);
        self.boxed.push(r);
        Ok(())
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
            self.add(l)
                .map_err(|e| e.context(format!("{}:{}", path.display(), i + 1)))?;
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
        self.listed.push(ListedRecipient::Scrypt { work_factor });
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

/// A recipient for messages: hybrid recipients are nearly 2,000 characters,
/// so long strings show their start and end only (quoted, like `{:?}`).
fn abbreviate(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 80 {
        return format!("{s:?}");
    }
    let head: String = chars[..20].iter().collect();
    let tail: String = chars[chars.len() - 8..].iter().collect();
    format!("\"{head}…{tail}\" ({} characters)", chars.len())
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
    /// Whether a hybrid post-quantum identity was loaded.
    hybrid: bool,
    /// Names of the files loaded, for messages.
    pub sources: Vec<String>,
}

const OPENSSH_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";

/// The error for a public key given as an identity: an OpenSSH `.pub` line
/// or an age recipient (`age1…`), naming the file to give instead.
fn public_key_given(path: &Path, text: &[u8]) -> Option<Error> {
    let shown = path.display();
    if let Some(word) = keys::public_key_type(text) {
        let hint = match keys::private_beside(path) {
            Some(p) => format!(
                "give the private key {p} (the same name without .pub) as the identity: --identity {p}, or identities in airlock.toml"
            ),
            None => "give the private key (the file without .pub) as the identity: --identity FILE, or identities in airlock.toml".to_string(),
        };
        return Some(
            Error::new(
                Code::KeyRead,
                format!("{shown} is a public key ({word} …); decrypting needs the private key"),
            )
            .with_hint(hint),
        );
    }
    let first = text
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty() && !l.starts_with(b"#"))?;
    let lower = first.to_ascii_lowercase();
    if lower.starts_with(b"age1") && !lower.contains(&b' ') {
        return Some(
            Error::new(
                Code::KeyRead,
                format!("{shown} holds an age recipient (a public key, age1…); decrypting needs the identity"),
            )
            .with_hint("give the identity file the recipient was made from (AGE-SECRET-KEY-1… lines, as written by `airlock keygen --age` or age-keygen)"),
        );
    }
    None
}

impl Identities {
    /// True when there is no identity and no passphrase: nothing can be
    /// decrypted.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.passphrase.is_none()
    }

    /// Load an age identity file (as made by `age-keygen` or
    /// `airlock keygen --age`) or an OpenSSH Ed25519 private key. Like
    /// private keys, identity files readable by others are refused.
    pub fn add_file(&mut self, path: &Path, passphrase: PassphraseSource<'_>) -> Result<()> {
        let text = Zeroizing::new(fs::read(path).map_err(|e| Error::io_read(path, e))?);
        // A public key gets a message saying so before its (harmless)
        // permissions are judged: "chmod 600 key.pub" sent people the wrong way.
        if let Some(e) = public_key_given(path, &text) {
            return Err(e);
        }
        keys::check_private_permissions(path)?;
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
            self.add_age_identities(path, &text)?;
        }
        self.sources.push(path.display().to_string());
        Ok(())
    }

    /// The identities of an age identity file: hybrid post-quantum lines
    /// (`AGE-SECRET-KEY-PQ-1…`, which the age crate does not know yet) are
    /// read here, every other line by the age crate, as age-keygen wrote it.
    fn add_age_identities(&mut self, path: &Path, text: &[u8]) -> Result<()> {
        let bad = |m: String| Error::new(Code::KeyRead, format!("{}: {m}", path.display()));
        let text = std::str::from_utf8(text)
            .map_err(|_| bad("is not an age identity file (not UTF-8 text)".into()))?;
        let mut rest = Zeroizing::new(String::new());
        let mut found = 0;
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.to_ascii_uppercase().starts_with(hybrid::IDENTITY_PREFIX) {
                let id = hybrid::Identity::from_str(l)
                    .map_err(|e| bad(format!("line {}: {e}", i + 1)))?;
                self.ids.push(Box::new(id));
                self.hybrid = true;
                found += 1;
            } else {
                rest.push_str(line);
                rest.push('\n');
            }
        }
        let classical = rest
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        if classical || found == 0 {
            let file = age::IdentityFile::from_buffer(io::BufReader::new(rest.as_bytes()))
                .map_err(|e| bad(format!("is not an age identity file: {e}")))?;
            let ids = file.into_identities().map_err(|e| bad(e.to_string()))?;
            if ids.is_empty() && found == 0 {
                return Err(bad("holds no age identity".into()));
            }
            self.ids.extend(ids);
        }
        Ok(())
    }

    /// A hint for "no identity matched", from the signed recipient list:
    /// a bundle for post-quantum recipients needs a post-quantum identity.
    pub(crate) fn no_match_hint(&self, listed: &[ListedRecipient]) -> Option<String> {
        let pq = !listed.is_empty() && listed.iter().all(|r| r.is_post_quantum());
        (pq && !self.hybrid).then(|| {
            "the bundle is encrypted to post-quantum recipients (age1pq1…) only: pass the \
             matching AGE-SECRET-KEY-PQ-1 identity file (`airlock keygen --age --post-quantum`); \
             an X25519 or SSH identity cannot decrypt it"
                .to_string()
        })
    }

    /// Use a passphrase for scrypt-encrypted bundles.
    pub fn set_passphrase(&mut self, pass: &str) {
        self.passphrase = Some(SecretString::from(pass.to_string()));
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
    pub(crate) fn unlock<R: Read>(
        &self,
        d: age::Decryptor<R>,
        max_work_factor: u8,
    ) -> Result<age::stream::StreamReader<R>> {
        self.with_identities(d, max_work_factor, |d, ids| d.decrypt(ids.into_iter()))
    }

    /// Hand `decrypt` the identities that may try this header: the
    /// passphrase alone (scrypt capped at `max_work_factor`) for a
    /// passphrase file, the loaded identities otherwise.
    fn with_identities<R: Read, T>(
        &self,
        d: age::Decryptor<R>,
        max_work_factor: u8,
        decrypt: impl FnOnce(
            age::Decryptor<R>,
            Vec<&dyn age::Identity>,
        ) -> std::result::Result<T, age::DecryptError>,
    ) -> Result<T> {
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
        decrypt(d, ids).map_err(decrypt_error)
    }
}

/// Map age's errors to airlock's codes.
pub(crate) fn decrypt_error(e: age::DecryptError) -> Error {
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
        D::Io(e) => Error::new(Code::IoRead, format!("reading the age file: {e}")).with_source(e),
        #[allow(unreachable_patterns)]
        other => Error::new(Code::DecryptFailed, format!("decryption failed: {other}"))
            .with_source(other),
    }
}

/// Map an error from reading the age payload stream.
pub(crate) fn stream_error(name: &str, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => Error::new(
            Code::DecryptFailed,
            format!("{name}: the ciphertext is truncated or altered ({e})"),
        )
        .with_source(e),
        _ => Error::new(Code::IoRead, format!("{name}: {e}")).with_source(e),
    }
}

/// The recipient stanzas in an age header: their type and first argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    /// The stanza's type, the word after `-> ` (`X25519`, `ssh-ed25519`,
    /// `scrypt`, `mlkem768x25519`, or anything else, grease included).
    pub kind: String,
    /// The space-separated arguments after the type, as written.
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
/// work factor as listed. (X25519 and mlkem768x25519 stanzas reveal no
/// recipient; their count is what can be checked without a key. A classical
/// stanza hidden beside signed post-quantum ones is thus caught here.)
pub(crate) fn check_header(stanzas: &[Stanza], listed: &[ListedRecipient]) -> Result<()> {
    let mismatch = |m: String| Error::new(Code::RecipientsMismatch, m);
    let real: Vec<&Stanza> = stanzas
        .iter()
        .filter(|s| !s.kind.ends_with("-grease"))
        .collect();
    let count = |k: &str| real.iter().filter(|s| s.kind == k).count();
    let want = |k: &str| listed.iter().filter(|r| r.stanza_tag() == k).count();
    if listed
        .iter()
        .any(|r| count(r.stanza_tag()) != want(r.stanza_tag()))
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
        match r {
            ListedRecipient::SshEd25519(key) => {
                let tag = ssh_tag(key);
                if !real
                    .iter()
                    .any(|s| s.kind == r.stanza_tag() && s.args.first() == tag.as_ref())
                {
                    return Err(mismatch(format!(
                        "no age stanza for the listed recipient {key}"
                    )));
                }
            }
            ListedRecipient::Scrypt { work_factor } => {
                let wf = work_factor.to_string();
                if !real
                    .iter()
                    .any(|s| s.kind == r.stanza_tag() && s.args.get(1) == Some(&wf))
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

/// Make a new hybrid post-quantum identity (ML-KEM-768 + X25519), in the
/// file format of age-keygen (`age-keygen -pq`).
pub fn generate_hybrid_identity(created: &str) -> (Zeroizing<String>, String) {
    let id = hybrid::Identity::generate();
    let recipient = id.to_public().to_string();
    let text = Zeroizing::new(format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        id.to_secret_string().as_str()
    ));
    (text, recipient)
}

#[cfg(test)]
mod tests;
