//! Binary OpenSSH key revocation lists (`PROTOCOL.krl`), as `ssh-keygen -k`
//! writes them and `ssh-keygen -Y verify -r` reads them (OpenSSH 9.2
//! `ssh_krl_from_blob`): every structure OpenSSH refuses is refused here.
//!
//! airlock uses the plain-key sections (explicit key blobs, SHA-1 and
//! SHA-256 blob hashes). Certificate sections are checked for form and
//! otherwise ignored: airlock accepts no certificates. Signature sections are
//! verified as OpenSSH does (a KRL signature that does not verify fails the
//! file), though, like `ssh-keygen -Y verify`, no signer is required.

use super::keys::{self, show_bytes, Key, Reader};
use super::Revoked;
use crate::crypto::sshsig::PublicKey;

/// `"SSHKRL\n\0"`.
pub const MAGIC: &[u8; 8] = b"SSHKRL\n\0";

const SECTION_CERTIFICATES: u8 = 1;
const SECTION_EXPLICIT_KEY: u8 = 2;
const SECTION_FINGERPRINT_SHA1: u8 = 3;
const SECTION_SIGNATURE: u8 = 4;
const SECTION_FINGERPRINT_SHA256: u8 = 5;

const CERT_SERIAL_LIST: u8 = 0x20;
const CERT_SERIAL_RANGE: u8 = 0x21;
const CERT_SERIAL_BITMAP: u8 = 0x22;
const CERT_KEY_ID: u8 = 0x23;

/// Parse a binary KRL (which starts with `MAGIC`). Errors name the byte
/// offset of the structure at fault.
pub fn parse(data: &[u8]) -> Result<Revoked, String> {
    let mut r = Reader::new(&data[MAGIC.len()..]);
    read_header(&mut r)?;
    let sections = r.offset();
    // Pass 1, as OpenSSH: signatures must come last and must verify.
    let signers = signatures(data, r)?;
    // Pass 2: the sections themselves.
    let out = sections_of(&data[MAGIC.len() + sections..], MAGIC.len() + sections)?;
    if !signers.is_empty() && signers.iter().all(|k| out.contains(k)) {
        return Err("every key that signed this KRL is revoked by it (ssh-keygen then treats every key as revoked)".into());
    }
    Ok(out)
}

/// The header after the magic: format version 1, then the KRL version,
/// date, flags, reserved string and comment, which airlock does not use.
fn read_header(r: &mut Reader<'_>) -> Result<(), String> {
    let version = r.u32().map_err(|e| format!("header: {e}"))?;
    if version != 1 {
        return Err(format!(
            "unsupported KRL format version {version} (OpenSSH knows version 1)"
        ));
    }
    (|| -> Result<(), String> {
        r.u64()?; // krl_version
        r.u64()?; // generated_date
        r.u64()?; // flags
        r.string()?; // reserved
        r.cstring()?; // comment
        Ok(())
    })()
    .map_err(|e| format!("header: {e}"))
}

/// Walk the sections (`r` is at the first, `data` is the whole KRL) and
/// check the signature sections: they come last, are by distinct Ed25519
/// keys and verify over everything before them. Returns the signing keys.
fn signatures(data: &[u8], mut r: Reader<'_>) -> Result<Vec<PublicKey>, String> {
    let at = |r: &Reader<'_>| MAGIC.len() + r.offset();
    let mut signers: Vec<PublicKey> = Vec::new();
    while !r.is_empty() {
        let start = at(&r);
        let (ty, blob) = (|| Ok::<_, String>((r.u8()?, r.string()?)))()
            .map_err(|e| format!("section at byte {start}: {e}"))?;
        if ty != SECTION_SIGNATURE {
            if !signers.is_empty() {
                return Err(format!(
                    "section at byte {start}: a section follows the KRL signature"
                ));
            }
            continue;
        }
        let key = match keys::read_blob(blob) {
            Ok(Key::Usable(k)) if k.application.is_none() => k,
            Ok(_) => {
                return Err(format!(
                    "signature at byte {start}: the KRL is signed with a key type airlock cannot check (only ssh-ed25519)"
                ))
            }
            Err(e) => return Err(format!("signature at byte {start}: signing key: {e}")),
        };
        let signed_len = at(&r);
        let sig = r
            .string()
            .map_err(|e| format!("signature at byte {start}: {e}"))?;
        check_signature(&key, &data[..signed_len], sig)
            .map_err(|e| format!("signature at byte {start}: {e}"))?;
        if signers.contains(&key) {
            return Err(format!(
                "signature at byte {start}: the KRL is signed twice with the same key"
            ));
        }
        signers.push(key);
    }
    Ok(signers)
}

/// Read the sections in `body`, which starts at byte `base` of the KRL: the
/// revoked keys and hashes, certificate sections checked for form only.
fn sections_of(body: &[u8], base: usize) -> Result<Revoked, String> {
    let mut r = Reader::new(body);
    let mut out = Revoked::default();
    while !r.is_empty() {
        let start = base + r.offset();
        let ty = r
            .u8()
            .map_err(|e| format!("section at byte {start}: {e}"))?;
        let body = r
            .string()
            .map_err(|e| format!("section at byte {start}: {e}"))?;
        let mut s = Reader::new(body);
        let res = match ty {
            SECTION_CERTIFICATES => certificates(&mut s),
            SECTION_EXPLICIT_KEY => hashes(&mut s, 0, |b| {
                out.keys.insert(b.to_vec());
            }),
            SECTION_FINGERPRINT_SHA1 => hashes(&mut s, 20, |b| {
                out.sha1.insert(b.try_into().expect("length checked"));
            }),
            SECTION_FINGERPRINT_SHA256 => hashes(&mut s, 32, |b| {
                out.sha256.insert(b.try_into().expect("length checked"));
            }),
            SECTION_SIGNATURE => r.string().map(|_| ()),
            t => Err(format!("unknown section type {t}")),
        };
        res.map_err(|e| format!("section at byte {start}: {e}"))?;
    }
    Ok(out)
}

/// An explicit-key or fingerprint section: strings of `len` bytes (any
/// length for 0), each revoking one key. OpenSSH does not check the order.
fn hashes(s: &mut Reader<'_>, len: usize, mut add: impl FnMut(&[u8])) -> Result<(), String> {
    while !s.is_empty() {
        let h = s.string()?;
        if len != 0 && h.len() != len {
            return Err(format!("a {}-byte hash where {len} were expected", h.len()));
        }
        add(h);
    }
    Ok(())
}

/// A certificate section: checked as OpenSSH's `parse_revoked_certs` does,
/// and otherwise ignored (airlock accepts no certificates).
fn certificates(s: &mut Reader<'_>) -> Result<(), String> {
    let ca = s.string()?;
    s.string()?; // reserved
    if !ca.is_empty() {
        keys::read_blob(ca)
            .and_then(|k| match k {
                Key::ShortRsa => Err("the RSA key is shorter than 1024 bits".into()),
                _ => Ok(()),
            })
            .map_err(|e| format!("certificate authority key: {e}"))?;
    }
    while !s.is_empty() {
        let ty = s.u8()?;
        let mut sub = Reader::new(s.string()?);
        match ty {
            CERT_SERIAL_LIST => {
                while !sub.is_empty() {
                    if sub.u64()? == 0 {
                        return Err("certificate serial 0 cannot be revoked".into());
                    }
                }
            }
            CERT_SERIAL_RANGE => {
                let (lo, hi) = (sub.u64()?, sub.u64()?);
                if lo > hi || lo == 0 {
                    return Err(format!("bad certificate serial range {lo}-{hi}"));
                }
            }
            CERT_SERIAL_BITMAP => {
                let lo = sub.u64()?;
                let bitmap = sub.mpint()?;
                let nbits = keys::bit_len(bitmap) as u128;
                if lo != 0 && (1u128 << 64) - (lo as u128) < nbits {
                    return Err("the certificate serial bitmap wraps past 2^64".into());
                }
                if lo == 0 && bitmap.last().is_some_and(|b| b & 1 == 1) {
                    return Err("certificate serial 0 cannot be revoked".into());
                }
            }
            CERT_KEY_ID => {
                while !sub.is_empty() {
                    sub.cstring()?;
                }
            }
            t => return Err(format!("unknown certificate section type {t:#04x}")),
        }
        sub.end()
            .map_err(|e| format!("certificate section {ty:#04x}: {e}"))?;
    }
    Ok(())
}

/// An `ssh-ed25519` signature blob over `data` (OpenSSH `ssh_ed25519_verify`:
/// string "ssh-ed25519", string 64-byte signature, nothing after).
fn check_signature(key: &PublicKey, data: &[u8], sig: &[u8]) -> Result<(), String> {
    let mut r = Reader::new(sig);
    let ty = r.cstring()?;
    if ty != b"ssh-ed25519" {
        return Err(format!(
            "signature type {} is not ssh-ed25519",
            show_bytes(ty)
        ));
    }
    let s: [u8; 64] = r
        .string()?
        .try_into()
        .map_err(|_| "an Ed25519 signature is 64 bytes".to_string())?;
    r.end()?;
    crate::crypto::sshsig::verify_ed25519_raw(key, data, &s)
        .map_err(|e| format!("the KRL signature does not verify ({e})"))
}
