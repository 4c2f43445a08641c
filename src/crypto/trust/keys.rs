//! OpenSSH public keys as the trust files hold them: the key type names
//! `sshkey_read` knows, and a check of each key blob that refuses at least
//! everything OpenSSH 9.2 refuses (`sshkey_from_blob`: RSA modulus size,
//! ECDSA curve and point validity, FIDO application strings).
//!
//! Only Ed25519 keys are ever used by airlock; the other types are checked so
//! that a line airlock skips as "another key type" is one OpenSSH also reads
//! as a valid key that cannot match.

use base64::Engine;
// p384 and p521 share this elliptic-curve version (Cargo.lock).
use p256::elliptic_curve::bigint::{ArrayEncoding, CheckedSub, Integer};
use p256::elliptic_curve::sec1::{EncodedPoint, FromEncodedPoint, ModulusSize, ToEncodedPoint};
use p256::elliptic_curve::{
    AffinePoint, CurveArithmetic, FieldBytes, FieldBytesEncoding, FieldBytesSize,
    PublicKey as EcPublicKey,
};

use crate::crypto::sshsig::PublicKey;

/// What a key type name on a trust-file line stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ed25519,
    SkEd25519,
    Rsa,
    Dss,
    Ecdsa(Curve),
    SkEcdsa,
    /// A certificate type: OpenSSH reads it; airlock accepts no certificates.
    Cert,
    /// A signature-algorithm alias OpenSSH also accepts as a key type
    /// (`rsa-sha2-256`, `rsa-sha2-512`, `webauthn-sk-ecdsa-…`): refused, with
    /// the canonical name to write instead.
    Alias(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    /// The curve's name inside an `ecdsa-sha2-*` key blob.
    fn name(self) -> &'static str {
        match self {
            Curve::P256 => "nistp256",
            Curve::P384 => "nistp384",
            Curve::P521 => "nistp521",
        }
    }
}

/// Every key type name OpenSSH 9.2 (`peek_type_nid`) accepts at the start of
/// a key, case-sensitively.
const NAMES: &[(&str, KeyType)] = &[
    ("ssh-ed25519", KeyType::Ed25519),
    ("sk-ssh-ed25519@openssh.com", KeyType::SkEd25519),
    ("ssh-rsa", KeyType::Rsa),
    ("ssh-dss", KeyType::Dss),
    ("ecdsa-sha2-nistp256", KeyType::Ecdsa(Curve::P256)),
    ("ecdsa-sha2-nistp384", KeyType::Ecdsa(Curve::P384)),
    ("ecdsa-sha2-nistp521", KeyType::Ecdsa(Curve::P521)),
    ("sk-ecdsa-sha2-nistp256@openssh.com", KeyType::SkEcdsa),
    ("ssh-ed25519-cert-v01@openssh.com", KeyType::Cert),
    ("sk-ssh-ed25519-cert-v01@openssh.com", KeyType::Cert),
    ("ssh-rsa-cert-v01@openssh.com", KeyType::Cert),
    ("rsa-sha2-256-cert-v01@openssh.com", KeyType::Cert),
    ("rsa-sha2-512-cert-v01@openssh.com", KeyType::Cert),
    ("ssh-dss-cert-v01@openssh.com", KeyType::Cert),
    ("ecdsa-sha2-nistp256-cert-v01@openssh.com", KeyType::Cert),
    ("ecdsa-sha2-nistp384-cert-v01@openssh.com", KeyType::Cert),
    ("ecdsa-sha2-nistp521-cert-v01@openssh.com", KeyType::Cert),
    ("sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", KeyType::Cert),
    ("rsa-sha2-256", KeyType::Alias("ssh-rsa")),
    ("rsa-sha2-512", KeyType::Alias("ssh-rsa")),
    (
        "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
        KeyType::Alias("sk-ecdsa-sha2-nistp256@openssh.com"),
    ),
];

/// OpenSSH's short names (`ED25519`, `RSA`, …), which `sshkey_read` does not
/// accept at the start of a key line; used only to explain an error.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("ed25519", "ssh-ed25519"),
    ("ed25519-sk", "sk-ssh-ed25519@openssh.com"),
    ("rsa", "ssh-rsa"),
    ("dsa", "ssh-dss"),
    ("ecdsa", "ecdsa-sha2-nistp256"),
    ("ecdsa-sk", "sk-ecdsa-sha2-nistp256@openssh.com"),
];

/// The key type a name stands for, exactly as `sshkey_read` matches it.
pub fn key_type(name: &str) -> Option<KeyType> {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The canonical name for a key type name written in the wrong case, or an
/// OpenSSH short name (`ED25519`): for error messages.
pub fn near_key_type(name: &str) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(n, _)| *n)
        .or_else(|| {
            SHORT_NAMES
                .iter()
                .find(|(s, _)| s.eq_ignore_ascii_case(name))
                .map(|(_, n)| *n)
        })
}

/// A key that OpenSSH would read from a trust file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// An Ed25519 key airlock can use.
    Usable(PublicKey),
    /// A valid key of another type: it can never match an airlock signature.
    Other,
    /// An RSA key shorter than 1024 bits: OpenSSH skips it in a revoked-keys
    /// list (`SSH_ERR_KEY_LENGTH`) and refuses it anywhere else.
    ShortRsa,
}

/// Decode and check the base64 key field of a line whose type field is
/// `name` (already known to be a plain key type).
pub fn read_key(kt: KeyType, name: &str, b64: &str) -> Result<Key, String> {
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the {name} key's base64 is corrupted ({e})"))?;
    let mut r = Reader::new(&blob);
    let inner = r
        .string()
        .map_err(|e| format!("the {name} key is corrupted: {e}"))?;
    if inner != name.as_bytes() {
        return Err(format!(
            "the key type inside the base64 ({}) is not {name}: the key is corrupted or was pasted from another line",
            show_bytes(inner)
        ));
    }
    key_body(kt, &mut r).map_err(|e| format!("the {name} key is corrupted: {e}"))
}

/// Parse a whole key blob (as in a KRL), of any plain type.
pub fn read_blob(blob: &[u8]) -> Result<Key, String> {
    let mut r = Reader::new(blob);
    let inner = r.string()?;
    let name = std::str::from_utf8(inner).map_err(|_| "the key type is not text".to_string())?;
    match key_type(name) {
        Some(KeyType::Cert) => Err(format!(
            "{name} is a certificate; airlock accepts no certificates"
        )),
        Some(KeyType::Alias(_)) | None => Err(format!("unknown key type {}", show_bytes(inner))),
        Some(kt) => key_body(kt, &mut r).map_err(|e| format!("the {name} key is corrupted: {e}")),
    }
}

fn key_body(kt: KeyType, r: &mut Reader<'_>) -> Result<Key, String> {
    let key = match kt {
        KeyType::Ed25519 | KeyType::SkEd25519 => {
            let k: [u8; 32] = r
                .string()?
                .try_into()
                .map_err(|_| "an Ed25519 key is 32 bytes".to_string())?;
            let application = if kt == KeyType::SkEd25519 {
                Some(application(r)?)
            } else {
                None
            };
            Key::Usable(PublicKey {
                key: k,
                application,
            })
        }
        KeyType::Rsa => {
            let _e = r.mpint()?;
            let n = r.mpint()?;
            if bit_len(n) < 1024 {
                Key::ShortRsa
            } else {
                Key::Other
            }
        }
        KeyType::Dss => {
            for _ in 0..4 {
                r.mpint()?;
            }
            Key::Other
        }
        KeyType::Ecdsa(c) => {
            ecdsa(c, r)?;
            Key::Other
        }
        KeyType::SkEcdsa => {
            ecdsa(Curve::P256, r)?;
            application(r)?;
            Key::Other
        }
        KeyType::Cert | KeyType::Alias(_) => return Err("not a plain key type".into()),
    };
    r.end()?;
    Ok(key)
}

/// A FIDO application string. OpenSSH drops one trailing NUL; airlock
/// refuses any NUL, so no two spellings name the same key.
fn application(r: &mut Reader<'_>) -> Result<String, String> {
    let a = r.string()?;
    if a.contains(&0) {
        return Err("the FIDO application contains a NUL byte".into());
    }
    String::from_utf8(a.to_vec()).map_err(|_| "the FIDO application is not UTF-8".into())
}

fn ecdsa(c: Curve, r: &mut Reader<'_>) -> Result<(), String> {
    let name = c.name();
    let curve = r.string()?;
    if curve != name.as_bytes() {
        return Err(format!("the curve {} is not {name}", show_bytes(curve)));
    }
    let q = r.string()?;
    // OpenSSH (`sshbuf_get_eckey`) reads uncompressed points only.
    if q.first() != Some(&4) {
        return Err("the ECDSA point is not an uncompressed point of its curve".into());
    }
    let valid = match c {
        Curve::P256 => ec_point_valid::<p256::NistP256>(q),
        Curve::P384 => ec_point_valid::<p384::NistP384>(q),
        Curve::P521 => ec_point_valid::<p521::NistP521>(q),
    };
    if !valid {
        return Err("the ECDSA point is not a valid public key on its curve".into());
    }
    Ok(())
}

/// Bytes for a message: printable ASCII as is, everything else escaped.
pub fn show_bytes(b: &[u8]) -> String {
    let mut s: String = b.escape_ascii().to_string();
    if s.len() > 80 {
        let mut cut = 60;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    format!("\"{s}\"")
}

/// SSH wire-format reader with OpenSSH's `sshbuf` rules.
pub struct Reader<'a> {
    b: &'a [u8],
    start_len: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Reader {
            b,
            start_len: b.len(),
        }
    }
    /// Bytes consumed so far.
    pub fn offset(&self) -> usize {
        self.start_len - self.b.len()
    }
    pub fn is_empty(&self) -> bool {
        self.b.is_empty()
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err("truncated".into());
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    pub fn string(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// `sshbuf_get_cstring`: a NUL is allowed only as the last byte.
    pub fn cstring(&mut self) -> Result<&'a [u8], String> {
        let s = self.string()?;
        match s.iter().position(|&c| c == 0) {
            Some(i) if i + 1 < s.len() => Err("a text field contains a NUL byte".into()),
            _ => Ok(s),
        }
    }
    /// `sshbuf_get_bignum2_bytes_direct`: non-negative, at most 16384 bits
    /// (plus a leading zero byte); returns the magnitude without leading zeros.
    pub fn mpint(&mut self) -> Result<&'a [u8], String> {
        let d = self.string()?;
        if d.first().is_some_and(|&b| b & 0x80 != 0) {
            return Err("a number is negative".into());
        }
        if d.len() > 2049 || (d.len() == 2049 && d[0] != 0) {
            return Err("a number is too large".into());
        }
        let z = d.iter().take_while(|&&b| b == 0).count();
        Ok(&d[z..])
    }
    pub fn end(&self) -> Result<(), String> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(format!("{} unexpected bytes at the end", self.b.len()))
        }
    }
}

/// Bit length of a big-endian magnitude.
pub fn bit_len(be: &[u8]) -> usize {
    match be.iter().position(|&b| b != 0) {
        None => 0,
        Some(i) => (be.len() - i) * 8 - be[i].leading_zeros() as usize,
    }
}

/// OpenSSH's `sshkey_ec_validate_public` on a SEC1 point: the crate decodes
/// it (right length, coordinates below p, on the curve, not the point at
/// infinity; n·Q = ∞ holds for every such point, the cofactor being 1), and
/// OpenSSH's own limits on the coordinates follow: each longer than half the
/// order's bits, each below order − 1.
fn ec_point_valid<C>(q: &[u8]) -> bool
where
    C: CurveArithmetic,
    FieldBytesSize<C>: ModulusSize,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
{
    let Ok(point) = EncodedPoint::<C>::from_bytes(q) else {
        return false;
    };
    if EcPublicKey::<C>::from_encoded_point(&point)
        .is_none()
        .into()
    {
        return false;
    }
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return false;
    };
    let order = C::ORDER;
    let half = bit_len(&order.to_be_byte_array()) / 2;
    let n1 = order.checked_sub(&C::Uint::ONE).unwrap(); // the order is > 1
    let ok = |c: &FieldBytes<C>| bit_len(c) > half && C::Uint::decode_field_bytes(c) < n1;
    ok(x) && ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_generators_are_valid_points() {
        // The base points of the three curves are valid public keys.
        let g = [
            (Curve::P256, "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296", "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
            (Curve::P384, "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7", "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f"),
            (Curve::P521, "00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66", "011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650"),
        ];
        for (c, x, y) in g {
            let valid = |q: &[u8]| match c {
                Curve::P256 => ec_point_valid::<p256::NistP256>(q),
                Curve::P384 => ec_point_valid::<p384::NistP384>(q),
                Curve::P521 => ec_point_valid::<p521::NistP521>(q),
            };
            let q = hex::decode(format!("04{x}{y}")).unwrap();
            assert!(valid(&q), "{c:?}");
            let mut bad = q.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert!(!valid(&bad), "{c:?}");
            // Compressed form, a truncated point, the point at infinity.
            let mut compressed = vec![2 | (q.last().unwrap() & 1)];
            compressed.extend_from_slice(&q[1..=x.len() / 2]);
            assert!(!valid(&compressed), "{c:?}");
            assert!(!valid(&q[..q.len() - 1]), "{c:?}");
            assert!(!valid(&[0]), "{c:?}");
        }
    }

    #[test]
    fn openssh_coordinate_limits() {
        // On P-256 with x = order + 3 (< p): the crate takes the point,
        // OpenSSH (x < order − 1) refuses it, and so does airlock.
        let q = hex::decode(concat!(
            "04ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632554",
            "484f0c0fda434ef0a808458914f328715d7a545e198ac7eee31dffe861b5d23f"
        ))
        .unwrap();
        assert!(EcPublicKey::<p256::NistP256>::from_sec1_bytes(&q).is_ok());
        assert!(!ec_point_valid::<p256::NistP256>(&q));
    }

    #[test]
    fn mpint_rules() {
        assert!(Reader::new(&[0, 0, 0, 1, 0x80]).mpint().is_err());
        assert_eq!(
            Reader::new(&[0, 0, 0, 2, 0, 0x80]).mpint().unwrap(),
            &[0x80]
        );
        assert_eq!(Reader::new(&[0, 0, 0, 0]).mpint().unwrap(), &[] as &[u8]);
        assert!(Reader::new(&[0, 0, 0, 3, b'a', 0, b'b']).cstring().is_err());
        assert!(Reader::new(&[0, 0, 0, 2, b'a', 0]).cstring().is_ok());
    }

    #[test]
    fn key_type_names_are_case_sensitive() {
        assert_eq!(key_type("ssh-ed25519"), Some(KeyType::Ed25519));
        assert_eq!(key_type("SSH-ED25519"), None);
        assert_eq!(near_key_type("SSH-ED25519"), Some("ssh-ed25519"));
        assert_eq!(near_key_type("ED25519"), Some("ssh-ed25519"));
        assert_eq!(near_key_type("host"), None);
    }
}
