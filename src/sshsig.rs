//! OpenSSH signatures (SSHSIG, `PROTOCOL.sshsig`) with Ed25519 keys: make,
//! parse strictly, verify with `verify_strict`.
//!
//! Only the canonical armored form is accepted: the exact bytes
//! `ssh-keygen -Y sign` writes. Parsing re-encodes what it read and demands
//! byte equality, so a signature member has no malleable byte.

use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256, Sha512};

pub const MAGIC: &[u8; 6] = b"SSHSIG";
pub const BUNDLE_NAMESPACE: &str = "airlock-bundle";
const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----\n";
const END: &str = "-----END SSH SIGNATURE-----\n";
const ED25519: &str = "ssh-ed25519";
/// OpenSSH's FIDO (security key) Ed25519 type.
pub const SK_ED25519: &str = "sk-ssh-ed25519@openssh.com";
/// FIDO flag: the user touched the token.
pub const SK_USER_PRESENT: u8 = 0x01;
/// Longest armored signature airlock reads (an Ed25519 SSHSIG is ~300 bytes).
pub const MAX_ARMORED_LEN: u64 = 4096;

/// The hash SSHSIG applies to the message before signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha512,
}

impl HashAlg {
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha512 => "sha512",
        }
    }

    pub fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha256 => Sha256::digest(msg).to_vec(),
            HashAlg::Sha512 => Sha512::digest(msg).to_vec(),
        }
    }
}

/// Why a signature was refused. Mapped to error codes by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// Not a canonical armored SSHSIG, or fields out of range.
    Malformed(String),
    /// Key type other than ssh-ed25519.
    UnsupportedKey(String),
    /// A weak (small-order) or non-canonical public key.
    WeakKey,
    /// The cryptographic check failed.
    BadSignature,
}

/// FIDO signature extras: authenticator flags and counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkInfo {
    pub flags: u8,
    pub counter: u32,
}

impl std::fmt::Display for SigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigError::Malformed(m) => write!(f, "malformed SSH signature: {m}"),
            SigError::UnsupportedKey(t) => write!(f, "unsupported key type {t}"),
            SigError::WeakKey => write!(f, "the public key is weak (small order) or not canonical"),
            SigError::BadSignature => write!(f, "the signature does not match"),
        }
    }
}

/// An Ed25519 public key in OpenSSH terms: plain `ssh-ed25519`, or a FIDO
/// `sk-ssh-ed25519@openssh.com` key bound to an application (`ssh:`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey {
    pub key: [u8; 32],
    pub application: Option<String>,
}

impl PublicKey {
    pub fn ed25519(key: [u8; 32]) -> PublicKey {
        PublicKey {
            key,
            application: None,
        }
    }

    pub fn key_type(&self) -> &'static str {
        if self.application.is_some() {
            SK_ED25519
        } else {
            ED25519
        }
    }

    /// The SSH wire blob: string type, string key [, string application].
    pub fn blob(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(80);
        put_string(&mut b, self.key_type().as_bytes());
        put_string(&mut b, &self.key);
        if let Some(a) = &self.application {
            put_string(&mut b, a.as_bytes());
        }
        b
    }

    /// OpenSSH fingerprint, `SHA256:` + unpadded base64.
    pub fn fingerprint(&self) -> String {
        let d = Sha256::digest(self.blob());
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(d)
        )
    }

    /// Hex SHA-256 of the blob, used for signature member names.
    pub fn id_hex(&self) -> String {
        hex::encode(Sha256::digest(self.blob()))
    }

    /// `TYPE AAAA...` as in a .pub or allowed_signers file.
    pub fn to_openssh(&self) -> String {
        format!(
            "{} {}",
            self.key_type(),
            base64::engine::general_purpose::STANDARD.encode(self.blob())
        )
    }

    /// Parse the key type and base64 fields of an OpenSSH public key line.
    pub fn from_openssh_parts(keytype: &str, b64: &str) -> Result<PublicKey, SigError> {
        if keytype != ED25519 && keytype != SK_ED25519 {
            return Err(SigError::UnsupportedKey(keytype.to_string()));
        }
        let blob = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| SigError::Malformed(format!("public key base64: {e}")))?;
        let mut r = Cursor::new(&blob);
        let k = Self::read_blob(&mut r)?;
        r.end()?;
        if k.key_type() != keytype {
            return Err(SigError::Malformed(
                "key type does not match the key".into(),
            ));
        }
        Ok(k)
    }

    fn read_blob(r: &mut Cursor<'_>) -> Result<PublicKey, SigError> {
        let t = r.string()?;
        let sk = match t {
            b"ssh-ed25519" => false,
            b"sk-ssh-ed25519@openssh.com" => true,
            _ => {
                return Err(SigError::UnsupportedKey(
                    String::from_utf8_lossy(t).into_owned(),
                ))
            }
        };
        let k = r.string()?;
        let key: [u8; 32] = k
            .try_into()
            .map_err(|_| SigError::Malformed("Ed25519 key is not 32 bytes".into()))?;
        let application = if sk {
            let a = std::str::from_utf8(r.string()?)
                .map_err(|_| SigError::Malformed("application is not UTF-8".into()))?;
            Some(a.to_string())
        } else {
            None
        };
        Ok(PublicKey { key, application })
    }

    /// A verifying key, refusing non-canonical encodings and small-order points.
    pub fn verifying_key(&self) -> Result<VerifyingKey, SigError> {
        let vk = VerifyingKey::from_bytes(&self.key).map_err(|_| SigError::WeakKey)?;
        if vk.is_weak() || vk.to_bytes() != self.key {
            return Err(SigError::WeakKey);
        }
        Ok(vk)
    }
}

/// A parsed SSHSIG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSig {
    pub public_key: PublicKey,
    pub namespace: String,
    pub hash_alg: HashAlg,
    pub signature: [u8; 64],
    /// Present exactly for FIDO keys.
    pub sk: Option<SkInfo>,
}

pub(crate) fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Self {
        Cursor { b }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], SigError> {
        if self.b.len() < n {
            return Err(SigError::Malformed("truncated".into()));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u32(&mut self) -> Result<u32, SigError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<&'a [u8], SigError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn end(&self) -> Result<(), SigError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(SigError::Malformed("trailing bytes".into()))
        }
    }
}

/// What a FIDO token signs for `data`.
pub fn sk_signed(application: &str, sk: SkInfo, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(32 + 1 + 4 + 32);
    v.extend_from_slice(&Sha256::digest(application.as_bytes()));
    v.push(sk.flags);
    v.extend_from_slice(&sk.counter.to_be_bytes());
    v.extend_from_slice(&Sha256::digest(data));
    v
}

/// The bytes Ed25519 signs: SSHSIG's "signed data" structure.
pub fn signed_data(namespace: &str, hash_alg: HashAlg, message: &[u8]) -> Vec<u8> {
    let h = hash_alg.digest(message);
    let mut d = Vec::with_capacity(6 + 4 + namespace.len() + 4 + 4 + 6 + 4 + h.len());
    d.extend_from_slice(MAGIC);
    put_string(&mut d, namespace.as_bytes());
    put_string(&mut d, b""); // reserved
    put_string(&mut d, hash_alg.name().as_bytes());
    put_string(&mut d, &h);
    d
}

impl SshSig {
    /// Sign `message` in `namespace` with SHA-512, as `ssh-keygen -Y sign` does.
    pub fn sign(key: &SigningKey, namespace: &str, message: &[u8]) -> SshSig {
        let data = signed_data(namespace, HashAlg::Sha512, message);
        let sig: Signature = key.sign(&data);
        SshSig {
            public_key: PublicKey::ed25519(key.verifying_key().to_bytes()),
            namespace: namespace.to_string(),
            hash_alg: HashAlg::Sha512,
            signature: sig.to_bytes(),
            sk: None,
        }
    }

    /// Check the signature over `message` in the namespace it names.
    /// The caller checks that the namespace is the expected one.
    pub fn verify(&self, message: &[u8]) -> Result<(), SigError> {
        let vk = self.public_key.verifying_key()?;
        let data = signed_data(&self.namespace, self.hash_alg, message);
        let sig = Signature::from_bytes(&self.signature);
        let signed = match (&self.public_key.application, self.sk) {
            (None, None) => data,
            // FIDO: the token signs SHA-256(application) || flags || counter || SHA-256(data).
            (Some(app), Some(sk)) => sk_signed(app, sk, &data),
            _ => return Err(SigError::Malformed("signature and key types differ".into())),
        };
        vk.verify_strict(&signed, &sig)
            .map_err(|_| SigError::BadSignature)
    }

    /// Whether the user was present (touched the token); always true for
    /// keys that are not FIDO keys.
    pub fn user_present(&self) -> bool {
        self.sk.is_none_or(|s| s.flags & SK_USER_PRESENT != 0)
    }

    /// The binary SSHSIG blob.
    pub fn to_blob(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(200);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&1u32.to_be_bytes());
        put_string(&mut b, &self.public_key.blob());
        put_string(&mut b, self.namespace.as_bytes());
        put_string(&mut b, b"");
        put_string(&mut b, self.hash_alg.name().as_bytes());
        let mut s = Vec::with_capacity(83);
        put_string(&mut s, self.public_key.key_type().as_bytes());
        put_string(&mut s, &self.signature);
        if let Some(sk) = self.sk {
            s.push(sk.flags);
            s.extend_from_slice(&sk.counter.to_be_bytes());
        }
        put_string(&mut b, &s);
        b
    }

    /// Armored text, byte-identical to `ssh-keygen -Y sign` output.
    pub fn to_armored(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.to_blob());
        let mut out = String::with_capacity(b64.len() + b64.len() / 70 + 64);
        out.push_str(BEGIN);
        for chunk in b64.as_bytes().chunks(70) {
            // base64 output is ASCII, so every chunk is valid UTF-8.
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str(END);
        out
    }

    /// Parse the binary blob, strictly.
    pub fn from_blob(blob: &[u8]) -> Result<SshSig, SigError> {
        let mut r = Cursor::new(blob);
        if r.take(6)? != MAGIC {
            return Err(SigError::Malformed("bad magic".into()));
        }
        if r.u32()? != 1 {
            return Err(SigError::Malformed("unsupported SSHSIG version".into()));
        }
        let pk = r.string()?;
        let mut pr = Cursor::new(pk);
        let public_key = PublicKey::read_blob(&mut pr)?;
        pr.end()?;
        let namespace = std::str::from_utf8(r.string()?)
            .map_err(|_| SigError::Malformed("namespace is not UTF-8".into()))?
            .to_string();
        if namespace.is_empty() {
            return Err(SigError::Malformed("empty namespace".into()));
        }
        if !r.string()?.is_empty() {
            return Err(SigError::Malformed("reserved field is not empty".into()));
        }
        let hash_alg = match r.string()? {
            b"sha512" => HashAlg::Sha512,
            b"sha256" => HashAlg::Sha256,
            other => {
                return Err(SigError::Malformed(format!(
                    "unsupported hash {}",
                    String::from_utf8_lossy(other)
                )))
            }
        };
        let s = r.string()?;
        r.end()?;
        let mut sr = Cursor::new(s);
        let t = sr.string()?;
        if t != public_key.key_type().as_bytes() {
            return Err(SigError::UnsupportedKey(
                String::from_utf8_lossy(t).into_owned(),
            ));
        }
        let signature: [u8; 64] = sr
            .string()?
            .try_into()
            .map_err(|_| SigError::Malformed("Ed25519 signature is not 64 bytes".into()))?;
        let sk = if public_key.application.is_some() {
            let flags = sr.take(1)?[0];
            let counter = sr.u32()?;
            Some(SkInfo { flags, counter })
        } else {
            None
        };
        sr.end()?;
        Ok(SshSig {
            public_key,
            namespace,
            hash_alg,
            signature,
            sk,
        })
    }

    /// Parse armored text; only the canonical form is accepted.
    pub fn from_armored(text: &[u8]) -> Result<SshSig, SigError> {
        let s = std::str::from_utf8(text).map_err(|_| SigError::Malformed("not text".into()))?;
        let body = s
            .strip_prefix(BEGIN)
            .and_then(|r| r.strip_suffix(END))
            .ok_or_else(|| SigError::Malformed("missing BEGIN/END SSH SIGNATURE lines".into()))?;
        let b64: String = body.split('\n').collect();
        let blob = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| SigError::Malformed(format!("base64: {e}")))?;
        let sig = Self::from_blob(&blob)?;
        if sig.to_armored().as_bytes() != text {
            return Err(SigError::Malformed("not in canonical armored form".into()));
        }
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn sign_verify_round_trip() {
        let k = key(7);
        let s = SshSig::sign(&k, BUNDLE_NAMESPACE, b"manifest");
        let parsed = SshSig::from_armored(s.to_armored().as_bytes()).unwrap();
        assert_eq!(parsed, s);
        parsed.verify(b"manifest").unwrap();
        assert_eq!(parsed.verify(b"manifesT"), Err(SigError::BadSignature));
    }

    #[test]
    fn armor_is_strict() {
        let s = SshSig::sign(&key(1), BUNDLE_NAMESPACE, b"m").to_armored();
        let crlf = s.replace('\n', "\r\n");
        assert!(SshSig::from_armored(crlf.as_bytes()).is_err());
        let mut extra = s.clone();
        extra.push('\n');
        assert!(SshSig::from_armored(extra.as_bytes()).is_err());
        let rewrapped = s.replacen('\n', "", 2).replacen("-----", "-----\n", 1);
        assert!(SshSig::from_armored(rewrapped.as_bytes()).is_err());
    }

    #[test]
    fn small_order_key_is_refused() {
        // The identity point (0,1) encodes as 0x01 followed by zeros.
        let mut k = [0u8; 32];
        k[0] = 1;
        assert_eq!(
            PublicKey::ed25519(k).verifying_key().err(),
            Some(SigError::WeakKey)
        );
    }

    #[test]
    fn fido_signatures_need_presence_and_bind_the_application() {
        let k = key(9);
        let pk = PublicKey {
            key: k.verifying_key().to_bytes(),
            application: Some("ssh:".into()),
        };
        let make = |flags: u8, msg: &[u8]| {
            let sk = SkInfo { flags, counter: 7 };
            let data = signed_data(BUNDLE_NAMESPACE, HashAlg::Sha512, msg);
            let sig = k.sign(&sk_signed("ssh:", sk, &data));
            SshSig {
                public_key: pk.clone(),
                namespace: BUNDLE_NAMESPACE.into(),
                hash_alg: HashAlg::Sha512,
                signature: sig.to_bytes(),
                sk: Some(sk),
            }
        };
        let s = make(SK_USER_PRESENT, b"m");
        let parsed = SshSig::from_armored(s.to_armored().as_bytes()).unwrap();
        assert_eq!(parsed, s);
        parsed.verify(b"m").unwrap();
        assert!(parsed.user_present());
        assert!(parsed.verify(b"x").is_err());
        let no_touch = make(0, b"m");
        no_touch.verify(b"m").unwrap();
        assert!(!no_touch.user_present());
        // Flags are signed: flipping them breaks the signature.
        let mut forged = s.clone();
        forged.sk = Some(SkInfo {
            flags: 0x05,
            counter: 7,
        });
        assert!(forged.verify(b"m").is_err());
    }

    #[test]
    fn fingerprint_form() {
        let fp = PublicKey::ed25519(key(3).verifying_key().to_bytes()).fingerprint();
        assert!(fp.starts_with("SHA256:"));
        assert_eq!(fp.len(), 7 + 43);
    }
}
