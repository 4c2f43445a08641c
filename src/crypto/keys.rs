//! Signing keys: OpenSSH Ed25519 private and public key files, as written by
//! `ssh-keygen -t ed25519` or `airlock keygen`.
//!
//! Private key files must be readable by their owner only (OpenSSH's rule).
//! Key material is zeroized when dropped.

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ssh_key::{Algorithm, LineEnding, PrivateKey};
use zeroize::Zeroizing;

use crate::base::error::{Code, Error, Result};
use crate::crypto::sshsig::PublicKey;
use crate::io::fsutil;

/// Something that signs: a loaded key (zeroized on drop), or a key held by
/// ssh-agent (never in airlock's memory).
pub struct Signer {
    secret: Secret,
    /// The public half, which the signatures name.
    pub public: PublicKey,
    /// The key file's comment (empty for an agent key), carried into
    /// [`unencrypted_openssh`].
    comment: String,
}

enum Secret {
    Key(SigningKey),
    Agent(PathBuf),
}

impl Signer {
    /// A key in ssh-agent at `socket`, named by its public half.
    pub fn agent(socket: PathBuf, public: PublicKey) -> Signer {
        Signer {
            secret: Secret::Agent(socket),
            public,
            comment: String::new(),
        }
    }

    /// The public key's fingerprint, `SHA256:` and unpadded base64, as
    /// `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        self.public.fingerprint()
    }

    /// The private key, when airlock holds it.
    fn signing_key(&self) -> Option<&SigningKey> {
        match &self.secret {
            Secret::Key(k) => Some(k),
            Secret::Agent(_) => None,
        }
    }

    /// Make an SSHSIG over `message` in `namespace`.
    pub fn sign(&self, namespace: &str, message: &[u8]) -> Result<crate::crypto::sshsig::SshSig> {
        match &self.secret {
            Secret::Key(k) => Ok(crate::crypto::sshsig::SshSig::sign(k, namespace, message)),
            Secret::Agent(sock) => {
                crate::crypto::agent::sign(sock, &self.public, namespace, message)
            }
        }
    }
}

/// Something that can produce a passphrase when a key turns out to be
/// encrypted (a prompt, a file). Called at most once per key.
pub type PassphraseSource<'a> = &'a mut dyn FnMut() -> Result<Zeroizing<String>>;

/// Refuse private key files that group or others can read, as OpenSSH does.
pub(crate) fn check_private_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|e| Error::io_read(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::new(
            Code::KeyPermissions,
            format!(
                "private key {} has mode {:03o}: others can read it",
                path.display(),
                mode
            ),
        )
        .with_hint(format!("chmod 600 {}", path.display())));
    }
    Ok(())
}

/// The key type word when `text` is an OpenSSH public key or certificate
/// line (`ssh-ed25519 AAAA…`), as a `.pub` file holds it.
pub(crate) fn public_key_type(text: &[u8]) -> Option<&str> {
    let head = text.get(..text.len().min(4096)).unwrap_or_default();
    let head = match std::str::from_utf8(head) {
        Ok(h) => h,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
    };
    let word = head.split_whitespace().next()?;
    let public_types = [
        "ssh-ed25519",
        "ssh-rsa",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    ];
    (public_types.contains(&word) || word.ends_with("-cert-v01@openssh.com")).then_some(word)
}

/// The private key file beside the public key `path` (the same name
/// without `.pub`), if there is one.
pub(crate) fn private_beside(path: &Path) -> Option<&str> {
    path.to_str()
        .and_then(|p| p.strip_suffix(".pub"))
        .filter(|p| Path::new(p).is_file())
}

/// The error for a public key (of type `word`) given where the private key
/// belongs, pointing at the private key beside it if there is one.
fn public_not_private(path: &Path, word: &str) -> Error {
    let shown = path.display();
    let hint = match private_beside(path) {
        Some(p) => format!(
            "pass --key {p} (the same name without .pub); to sign through ssh-agent holding this key, keep {shown} and add --agent"
        ),
        None => "pass the private key (the file without .pub); to sign through ssh-agent holding this key, add --agent".to_string(),
    };
    Error::new(
        Code::KeyRead,
        format!("{shown} is a public key ({word} …); signing needs the private key"),
    )
    .with_hint(hint)
}

/// What a file given as a private key is, when it is plainly something else:
/// a public key, an age identity, a key in another format, nothing.
fn not_a_private_key(path: &Path, text: &[u8]) -> Option<Error> {
    let head = String::from_utf8_lossy(&text[..text.len().min(4096)]);
    let first = head.trim_start();
    let shown = path.display();
    if first.is_empty() {
        return Some(
            Error::new(Code::KeyRead, format!("{shown} is empty")).with_hint(
                "give the private key file written by `airlock keygen` or `ssh-keygen -t ed25519`",
            ),
        );
    }
    if let Some(word) = public_key_type(text) {
        return Some(public_not_private(path, word));
    }
    if first.starts_with("AGE-SECRET-KEY-") || first.starts_with("# created:") {
        return Some(
            Error::new(
                Code::KeyRead,
                format!("{shown} is an age identity (for decrypting), not a signing key"),
            )
            .with_hint("sign with an OpenSSH Ed25519 private key; age identities go to --identity on the importing side"),
        );
    }
    if first.starts_with("-----BEGIN ") && !first.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
    {
        let kind = first
            .lines()
            .next()
            .unwrap_or("")
            .trim_matches('-')
            .trim_start_matches("BEGIN ")
            .to_string();
        return Some(
            Error::new(
                Code::KeyType,
                format!("{shown} is a PEM {} file, not an OpenSSH Ed25519 private key", kind.escape_debug()),
            )
            .with_hint("airlock signs with Ed25519 keys only; make one with `airlock keygen` or `ssh-keygen -t ed25519`"),
        );
    }
    if !first.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
        return Some(Error::new(
            Code::KeyRead,
            format!(
                "{shown} is not an OpenSSH private key (it does not start with -----BEGIN OPENSSH PRIVATE KEY-----)"
            ),
        ));
    }
    None
}

/// Load an OpenSSH Ed25519 private key for signing.
pub fn load_signer(path: &Path, passphrase: PassphraseSource<'_>) -> Result<Signer> {
    let text = Zeroizing::new(fs::read(path).map_err(|e| Error::io_read(path, e))?);
    // A public key or another kind of file gets a message saying so, before
    // its (harmless) permissions are judged.
    if let Some(e) = not_a_private_key(path, &text) {
        return Err(e);
    }
    check_private_permissions(path)?;
    let mut key = PrivateKey::from_openssh(&*text).map_err(|e| {
        Error::new(
            Code::KeyRead,
            format!("{} is not an OpenSSH private key: {e}", path.display()),
        )
    })?;
    if key.is_encrypted() {
        let pass = passphrase()?;
        key = key.decrypt(pass.as_bytes()).map_err(|_| {
            Error::new(
                Code::KeyPassphrase,
                format!("wrong passphrase for {}", path.display()),
            )
        })?;
    }
    let kp = key.key_data().ed25519().ok_or_else(|| {
        Error::new(
            Code::KeyType,
            format!(
                "{} is a {} key, not Ed25519",
                path.display(),
                key.algorithm()
            ),
        )
    })?;
    let seed = Zeroizing::new(kp.private.to_bytes());
    let sk = SigningKey::from_bytes(&seed);
    let public = PublicKey::ed25519(sk.verifying_key().to_bytes());
    if public.key != kp.public.0 {
        return Err(Error::new(
            Code::KeyRead,
            format!(
                "{}: public half does not match private half",
                path.display()
            ),
        ));
    }
    Ok(Signer {
        secret: Secret::Key(sk),
        public,
        comment: key.comment().to_string(),
    })
}

/// The key as an unencrypted OpenSSH private key file, in memory (zeroized
/// on drop). Used to hand a decrypted key to age as an SSH identity.
pub(crate) fn unencrypted_openssh(signer: &Signer) -> Result<Zeroizing<String>> {
    let sk = signer.signing_key().ok_or_else(|| {
        Error::new(
            Code::KeyType,
            "a key held by ssh-agent cannot be used as an age identity",
        )
    })?;
    let seed = Zeroizing::new(sk.to_bytes());
    let kp = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let key = PrivateKey::new(ssh_key::private::KeypairData::Ed25519(kp), &signer.comment)
        .map_err(|e| Error::new(Code::Internal, format!("key encoding failed: {e}")))?;
    key.to_openssh(LineEnding::LF)
        .map_err(|e| Error::new(Code::Internal, format!("key encoding failed: {e}")))
}

/// Read an OpenSSH public key line (`ssh-ed25519 AAAA… comment`).
pub(crate) fn parse_public_line(line: &str) -> Result<PublicKey> {
    let mut parts = line.split_whitespace();
    let (Some(t), Some(b)) = (parts.next(), parts.next()) else {
        return Err(Error::new(Code::KeyRead, "not an OpenSSH public key line"));
    };
    PublicKey::from_openssh_parts(t, b).map_err(|e| Error::new(Code::KeyRead, e.to_string()))
}

/// Load a `.pub` file.
pub fn load_public(path: &Path) -> Result<PublicKey> {
    let text = fs::read_to_string(path).map_err(|e| Error::io_read(path, e))?;
    parse_public_line(text.trim()).map_err(|e| e.context(path.display()))
}

/// What `generate` wrote.
pub struct Generated {
    /// The private key file (mode 0600).
    pub private_path: PathBuf,
    /// The public key file, `private_path` with `.pub` appended.
    pub public_path: PathBuf,
    /// The new public key.
    pub public: PublicKey,
    /// The public key file's line, `ssh-ed25519 AAAA… comment`, without
    /// the newline.
    pub public_line: String,
}

/// Make a new Ed25519 key pair: `path` (0600, optionally encrypted with
/// bcrypt-pbkdf/aes256-ctr like ssh-keygen) and `path.pub`.
/// Existing files are replaced only with `force`.
pub fn generate(
    path: &Path,
    comment: &str,
    passphrase: Option<&str>,
    force: bool,
) -> Result<Generated> {
    let pub_path = {
        let mut s = path.as_os_str().to_owned();
        s.push(".pub");
        PathBuf::from(s)
    };
    if !force {
        for p in [path, pub_path.as_path()] {
            if p.exists() {
                return Err(Error::new(
                    Code::OutputExists,
                    format!("{} already exists", p.display()),
                ));
            }
        }
    }
    let mut rng = ssh_key::rand_core::OsRng;
    let mut key = PrivateKey::random(&mut rng, Algorithm::Ed25519)
        .map_err(|e| Error::new(Code::Internal, format!("key generation failed: {e}")))?;
    key.set_comment(comment);
    // Taken before encryption: an encrypted key's public half has lost its
    // comment, and the .pub line should carry it, as ssh-keygen's does.
    let kp_pub = key.public_key().clone();
    if let Some(p) = passphrase {
        key = key
            .encrypt(&mut rng, p)
            .map_err(|e| Error::new(Code::Internal, format!("key encryption failed: {e}")))?;
    }
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| Error::new(Code::Internal, format!("key encoding failed: {e}")))?;
    let mut public_line = kp_pub
        .to_openssh()
        .map_err(|e| Error::new(Code::Internal, format!("key encoding failed: {e}")))?;
    let public = match kp_pub.key_data().ed25519() {
        Some(p) => PublicKey::ed25519(p.0),
        None => return Err(Error::new(Code::Internal, "generated key is not Ed25519")),
    };
    public_line.push('\n');
    fsutil::write_atomic(path, text.as_bytes(), 0o600, force)?;
    fsutil::write_atomic(&pub_path, public_line.as_bytes(), 0o644, force)?;
    Ok(Generated {
        private_path: path.to_path_buf(),
        public_path: pub_path,
        public,
        public_line: public_line.trim_end().to_string(),
    })
}

/// Read a passphrase from the first line of a file (without its newline).
/// A file that group or others can read is used, with a warning naming the
/// fix (a passphrase or token on a shared host is as good as public).
pub fn read_passphrase_file(path: &Path) -> Result<Zeroizing<String>> {
    let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| Error::io_read(path, e))?);
    if let Some(w) = readable_by_others(path) {
        crate::base::progress::note(&w);
    }
    let line = text.lines().next().unwrap_or("");
    Ok(Zeroizing::new(line.to_string()))
}

/// The warning for a secret file (passphrase, token) that group or others
/// can read, if it is one. Pipes and devices (`<(…)`, /dev/stdin) are not
/// judged: their mode says nothing about who read the secret.
fn readable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let m = fs::metadata(path).ok().filter(|m| m.is_file())?;
    let mode = m.permissions().mode() & 0o777;
    (mode & 0o044 != 0).then(|| {
        format!(
            "{} has mode {mode:03o}: others can read the secret in it; chmod 600 {}",
            path.display(),
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 28, first day 9): a passphrase file at 644 was
    /// accepted without a word.
    #[test]
    fn a_readable_passphrase_file_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pass");
        fs::write(&p, "secret\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(readable_by_others(&p), None);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let w = readable_by_others(&p).unwrap();
        assert!(
            w.contains("has mode 644") && w.contains(&format!("chmod 600 {}", p.display())),
            "{w}"
        );
        assert_eq!(&*read_passphrase_file(&p).unwrap(), "secret");
    }

    #[test]
    fn generate_load_and_permissions() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        let g = generate(&p, "test", None, false).unwrap();
        let s = load_signer(&p, &mut || unreachable!()).unwrap();
        assert_eq!(s.public, g.public);
        assert_eq!(
            generate(&p, "test", None, false).err().unwrap().code,
            Code::OutputExists
        );
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            load_signer(&p, &mut || unreachable!()).err().unwrap().code,
            Code::KeyPermissions
        );
    }

    /// Regression (#16, item 5): a public key, an age identity, a PEM key or
    /// an empty file given as the signing key is named for what it is,
    /// before (and instead of) a complaint about its permissions.
    #[test]
    fn other_files_given_as_private_key_say_what_they_are() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        let g = generate(&p, "test", None, false).unwrap();
        let cases = [
            (
                "k.pub",
                format!("{}\n", g.public_line),
                Code::KeyRead,
                "is a public key",
            ),
            (
                "id.txt",
                "# created: x\nAGE-SECRET-KEY-1XYZ\n".into(),
                Code::KeyRead,
                "is an age identity",
            ),
            (
                "rsa.pem",
                "-----BEGIN RSA PRIVATE KEY-----\nMII\n".into(),
                Code::KeyType,
                "PEM RSA PRIVATE KEY",
            ),
            ("empty", String::new(), Code::KeyRead, "is empty"),
            (
                "junk",
                "hello\n".into(),
                Code::KeyRead,
                "is not an OpenSSH private key",
            ),
        ];
        for (name, text, code, says) in cases {
            let f = d.path().join(name);
            if name != "k.pub" {
                fs::write(&f, text).unwrap();
            }
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
            let e = load_signer(&f, &mut || unreachable!()).err().unwrap();
            assert_eq!(e.code, code, "{name}: {}", e.cause);
            assert!(e.cause.contains(says), "{name}: {}", e.cause);
        }
        let e = load_signer(&d.path().join("k.pub"), &mut || unreachable!())
            .err()
            .unwrap();
        assert!(
            e.hint().contains(&format!("--key {}", p.display())),
            "{}",
            e.hint()
        );
    }

    #[test]
    fn encrypted_key_needs_right_passphrase() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        generate(&p, "test", Some("correct horse"), false).unwrap();
        let mut good = || Ok(Zeroizing::new("correct horse".to_string()));
        assert!(load_signer(&p, &mut good).is_ok());
        let mut bad = || Ok(Zeroizing::new("wrong".to_string()));
        assert_eq!(
            load_signer(&p, &mut bad).err().unwrap().code,
            Code::KeyPassphrase
        );
    }
}
