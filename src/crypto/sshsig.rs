//! OpenSSH signatures (SSHSIG, `PROTOCOL.sshsig`) with Ed25519 keys: make,
//! parse strictly, verify with `verify_strict`.
//!
//! Only the canonical armored form is accepted: the exact bytes
//! `ssh-keygen -Y sign` writes. Parsing re-encodes what it read and demands
//! byte equality, so a signature member has no malleable byte.

use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256, Sha512};

/// The preamble of every SSHSIG blob and of the data it signs.
const MAGIC: &[u8; 6] = b"SSHSIG";
/// The namespace every bundle signature is made in (`ssh-keygen -n`).
pub const BUNDLE_NAMESPACE: &str = "airlock-bundle";
const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----\n";
const END: &str = "-----END SSH SIGNATURE-----\n";
const ED25519: &str = "ssh-ed25519";
/// OpenSSH's FIDO (security key) Ed25519 type.
const SK_ED25519: &str = "sk-ssh-ed25519@openssh.com";
/// FIDO flag: the user touched the token.
pub const SK_USER_PRESENT: u8 = 0x01;
/// Longest armored signature airlock reads (an Ed25519 SSHSIG is ~300 bytes).
pub(crate) const MAX_ARMORED_LEN: u64 = 4096;

/// The hash SSHSIG applies to the message before signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// `sha256`.
    Sha256,
    /// `sha512`, what `ssh-keygen -Y sign` uses.
    Sha512,
}

impl HashAlg {
    /// The name SSHSIG records (`sha256`, `sha512`).
    fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha512 => "sha512",
        }
    }

    /// The digest of `msg` (32 or 64 bytes).
    fn digest(self, msg: &[u8]) -> Vec<u8> {
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
    /// Authenticator flags ([`SK_USER_PRESENT`], user verified, …).
    pub flags: u8,
    /// The token's signature counter.
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
    /// The Ed25519 public key, compressed Edwards point.
    pub key: [u8; 32],
    /// The FIDO application string (`ssh:…`); `None` for a plain key.
    pub application: Option<String>,
}

impl PublicKey {
    /// A plain `ssh-ed25519` key.
    pub fn ed25519(key: [u8; 32]) -> PublicKey {
        PublicKey {
            key,
            application: None,
        }
    }

    /// The OpenSSH key type: `ssh-ed25519`, or
    /// `sk-ssh-ed25519@openssh.com` when there is an application.
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

/// The one Ed25519 check: `verify_strict` (canonical S < L, canonical R that
/// is not of small order, cofactorless equation) on a key that
/// `PublicKey::verifying_key` already refused when weak or non-canonical.
fn ed25519_verify(vk: &VerifyingKey, signed: &[u8], sig: &[u8; 64]) -> Result<(), SigError> {
    vk.verify_strict(signed, &Signature::from_bytes(sig))
        .map_err(|_| SigError::BadSignature)
}

/// A raw Ed25519 signature over `data` by a plain `ssh-ed25519` key, with the
/// same strict checks as SSHSIG verification (used for signed KRLs).
pub(crate) fn verify_ed25519_raw(
    key: &PublicKey,
    data: &[u8],
    sig: &[u8; 64],
) -> Result<(), SigError> {
    if key.application.is_some() {
        return Err(SigError::UnsupportedKey(key.key_type().into()));
    }
    ed25519_verify(&key.verifying_key()?, data, sig)
}

/// A parsed SSHSIG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSig {
    /// The key that made the signature, as the signature names it.
    pub public_key: PublicKey,
    /// The namespace it was made in (`airlock-bundle` for a bundle).
    pub namespace: String,
    /// The hash applied to the message before signing.
    pub hash_alg: HashAlg,
    /// The raw Ed25519 signature, R then S.
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
        let signed = match (&self.public_key.application, self.sk) {
            (None, None) => data,
            // FIDO: the token signs SHA-256(application) || flags || counter || SHA-256(data).
            (Some(app), Some(sk)) => sk_signed(app, sk, &data),
            _ => return Err(SigError::Malformed("signature and key types differ".into())),
        };
        ed25519_verify(&vk, &signed, &self.signature)
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

    /// The 12 vectors of "Taming the many EdDSAs" (Chalkias, Garillot,
    /// Nikolaenko, SSR 2020; ed25519-speccheck's cases.json): message, public
    /// key, signature. airlock's policy accepts only vector 3 (mixed-order A
    /// and R that satisfy the cofactorless equation with canonical encodings);
    /// small-order A or R, S >= L, non-canonical A or R and cofactored-only
    /// signatures are all refused.
    const SPECCHECK: [(&str, &str, &str); 12] = [
        ("8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000"),
        ("9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04"),
        ("aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e"),
        ("9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009"),
        ("e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09"),
        ("e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c", "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d", "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405"),
        ("85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40", "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623", "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514"),
        ("85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40", "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623", "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22"),
        ("9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f"),
        ("9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41", "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908"),
        ("e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04"),
        ("39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04"),
    ];

    fn unhex<const N: usize>(h: &str) -> [u8; N] {
        hex::decode(h).unwrap().try_into().unwrap()
    }

    /// Key check then signature check, exactly as `SshSig::verify` does.
    fn raw_verify(msg: &str, pk: &str, sig: &str) -> Result<(), SigError> {
        let vk = PublicKey::ed25519(unhex(pk)).verifying_key()?;
        ed25519_verify(&vk, &hex::decode(msg).unwrap(), &unhex(sig))
    }

    #[test]
    fn taming_the_many_eddsas_vectors() {
        let accepted: Vec<usize> = SPECCHECK
            .iter()
            .enumerate()
            .filter(|(_, (m, k, s))| raw_verify(m, k, s).is_ok())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(accepted, vec![3]);
        // Why each is refused: weak keys before any signature arithmetic.
        for i in [0, 1, 10, 11] {
            let (m, k, s) = SPECCHECK[i];
            assert_eq!(raw_verify(m, k, s), Err(SigError::WeakKey), "vector {i}");
        }
        for i in [2, 4, 5, 6, 7, 8, 9] {
            let (m, k, s) = SPECCHECK[i];
            assert_eq!(
                raw_verify(m, k, s),
                Err(SigError::BadSignature),
                "vector {i}"
            );
        }
    }

    #[test]
    fn small_order_and_non_canonical_public_keys_are_refused() {
        // The eight small-order points, their non-canonical encodings (y >= p,
        // or the sign bit set on x = 0), as in libsodium's blocklist.
        let weak = [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
            "0000000000000000000000000000000000000000000000000000000000000080",
            "0100000000000000000000000000000000000000000000000000000000000080",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        ];
        for k in weak {
            let pk = PublicKey::ed25519(unhex(k));
            assert_eq!(pk.verifying_key().err(), Some(SigError::WeakKey), "{k}");
        }
        // A real key is not refused.
        assert!(PublicKey::ed25519(key(1).verifying_key().to_bytes())
            .verifying_key()
            .is_ok());
    }

    #[test]
    fn universal_forgery_with_identity_key_is_refused() {
        // A = R = identity and S = 0 satisfies the cofactorless equation for
        // every message; a verifier without the weak-key check accepts it.
        let mut sig = SshSig::sign(&key(3), BUNDLE_NAMESPACE, b"x");
        sig.public_key = PublicKey::ed25519(unhex(
            "0100000000000000000000000000000000000000000000000000000000000000",
        ));
        sig.signature = [0; 64];
        sig.signature[0] = 1;
        for i in 0..100u32 {
            assert!(sig.verify(&i.to_le_bytes()).is_err());
        }
    }

    #[test]
    fn malleated_s_is_refused() {
        // S + L verifies under a non-strict check of the equation only.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let good = SshSig::sign(&key(4), BUNDLE_NAMESPACE, b"manifest");
        assert!(good.verify(b"manifest").is_ok());
        let mut bad = good.clone();
        let mut carry = 0u16;
        for (s, l) in bad.signature[32..].iter_mut().zip(L) {
            let v = *s as u16 + l as u16 + carry;
            *s = v as u8;
            carry = v >> 8;
        }
        assert_eq!(bad.verify(b"manifest"), Err(SigError::BadSignature));
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
