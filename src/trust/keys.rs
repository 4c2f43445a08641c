//! OpenSSH public keys as the trust files hold them: the key type names
//! `sshkey_read` knows, and a check of each key blob that refuses at least
//! everything OpenSSH 9.2 refuses (`sshkey_from_blob`: RSA modulus size,
//! ECDSA curve and point validity, FIDO application strings).
//!
//! Only Ed25519 keys are ever used by airlock; the other types are checked so
//! that a line airlock skips as "another key type" is one OpenSSH also reads
//! as a valid key that cannot match.

use base64::Engine;

use crate::sshsig::PublicKey;

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
    let params = Params::of(c);
    let curve = r.string()?;
    if curve != params.name.as_bytes() {
        return Err(format!(
            "the curve {} is not {}",
            show_bytes(curve),
            params.name
        ));
    }
    let q = r.string()?;
    let flen = params.p.len();
    if q.len() != 1 + 2 * flen || q[0] != 4 {
        return Err("the ECDSA point is not an uncompressed point of its curve".into());
    }
    let (x, y) = q[1..].split_at(flen);
    if !ec_point_valid(&params, x, y) {
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

// --- ECDSA public key validation (OpenSSH `sshkey_ec_validate_public`) ---

struct Params {
    name: &'static str,
    p: Vec<u8>,
    b: Vec<u8>,
    n: Vec<u8>,
}

impl Params {
    fn of(c: Curve) -> Params {
        let (name, p, b, n) = match c {
            Curve::P256 => (
                "nistp256",
                "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
                "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
                "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
            ),
            Curve::P384 => (
                "nistp384",
                "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
                "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
                "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
            ),
            Curve::P521 => (
                "nistp521",
                "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                "0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00",
                "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
            ),
        };
        let h = |s: &str| hex::decode(s).expect("curve constant");
        Params {
            name,
            p: h(p),
            b: h(b),
            n: h(n),
        }
    }
}

/// The checks OpenSSL's point decoding and OpenSSH's validation make on an
/// affine point of a prime-order NIST curve: x, y < p and on the curve
/// (`y² = x³ − 3x + b`), both longer than half the order's bits, both below
/// order − 1. (n·Q = ∞ holds for every such point: the cofactor is 1.)
fn ec_point_valid(c: &Params, x: &[u8], y: &[u8]) -> bool {
    let p = Big::from_be(&c.p);
    let n = Big::from_be(&c.n);
    let (bx, by) = (Big::from_be(x), Big::from_be(y));
    if bx.cmp(&p).is_ge() || by.cmp(&p).is_ge() {
        return false;
    }
    let half = bit_len(&c.n) / 2;
    if bit_len(x) <= half || bit_len(y) <= half {
        return false;
    }
    let n1 = n.sub(&Big::from_be(&[1]));
    if bx.cmp(&n1).is_ge() || by.cmp(&n1).is_ge() {
        return false;
    }
    let lhs = by.mul(&by).rem(&p);
    let x3 = bx.mul(&bx).rem(&p).mul(&bx).rem(&p);
    let three_x = bx.mul(&Big::from_be(&[3])).rem(&p);
    // x³ − 3x + b ≡ x³ + (p − 3x) + b (mod p)
    let rhs = x3.add(&p.sub(&three_x)).add(&Big::from_be(&c.b)).rem(&p);
    lhs.cmp(&rhs).is_eq()
}

/// Just enough unsigned big-integer arithmetic for the curve equation:
/// little-endian 32-bit limbs, schoolbook multiplication, bitwise reduction.
#[derive(Clone, Debug)]
struct Big(Vec<u32>);

impl Big {
    fn from_be(b: &[u8]) -> Big {
        let mut v = Vec::with_capacity(b.len() / 4 + 1);
        for chunk in b.rchunks(4) {
            let mut w = 0u32;
            for &c in chunk {
                w = (w << 8) | c as u32;
            }
            v.push(w);
        }
        Big(v).norm()
    }
    fn norm(mut self) -> Big {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
        self
    }
    fn bits(&self) -> usize {
        match self.0.last() {
            None => 0,
            Some(&top) => self.0.len() * 32 - top.leading_zeros() as usize,
        }
    }
    fn bit(&self, i: usize) -> bool {
        self.0.get(i / 32).is_some_and(|w| w >> (i % 32) & 1 == 1)
    }
    fn cmp(&self, o: &Big) -> std::cmp::Ordering {
        self.0
            .len()
            .cmp(&o.0.len())
            .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }
    fn add(&self, o: &Big) -> Big {
        let mut v = Vec::with_capacity(self.0.len().max(o.0.len()) + 1);
        let mut carry = 0u64;
        for i in 0..self.0.len().max(o.0.len()) {
            let s = *self.0.get(i).unwrap_or(&0) as u64 + *o.0.get(i).unwrap_or(&0) as u64 + carry;
            v.push(s as u32);
            carry = s >> 32;
        }
        v.push(carry as u32);
        Big(v).norm()
    }
    /// self − o, for self ≥ o.
    fn sub(&self, o: &Big) -> Big {
        let mut v = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut d = self.0[i] as i64 - *o.0.get(i).unwrap_or(&0) as i64 - borrow;
            borrow = 0;
            if d < 0 {
                d += 1 << 32;
                borrow = 1;
            }
            v.push(d as u32);
        }
        Big(v).norm()
    }
    fn mul(&self, o: &Big) -> Big {
        let mut v = vec![0u32; self.0.len() + o.0.len() + 1];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &b) in o.0.iter().enumerate() {
                let t = v[i + j] as u64 + a as u64 * b as u64 + carry;
                v[i + j] = t as u32;
                carry = t >> 32;
            }
            let mut k = i + o.0.len();
            while carry != 0 {
                let t = v[k] as u64 + carry;
                v[k] = t as u32;
                carry = t >> 32;
                k += 1;
            }
        }
        Big(v).norm()
    }
    fn rem(&self, m: &Big) -> Big {
        let mut r = Big(Vec::new());
        for i in (0..self.bits()).rev() {
            // r = 2r + bit
            let mut carry = self.bit(i) as u32;
            for w in r.0.iter_mut() {
                let nc = *w >> 31;
                *w = (*w << 1) | carry;
                carry = nc;
            }
            if carry != 0 {
                r.0.push(carry);
            }
            if r.cmp(m).is_ge() {
                r = r.sub(m);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_arithmetic() {
        let a = Big::from_be(&hex::decode("ffffffffffffffffffff").unwrap());
        let b = Big::from_be(&hex::decode("0100000001").unwrap());
        let m = Big::from_be(&hex::decode("fffffffb").unwrap());
        // Check (a·b) mod m against u128 arithmetic.
        let av = 0xffffffffffffffffffffu128;
        let bv = 0x0100000001u128;
        let mv = 0xfffffffbu128;
        let want = ((av % mv) * (bv % mv)) % mv;
        assert_eq!(a.mul(&b).rem(&m).0, vec![want as u32]);
        assert!(a.add(&b).sub(&b).cmp(&a).is_eq());
    }

    #[test]
    fn curve_generators_are_valid_points() {
        // The base points of the three curves are valid public keys.
        let g = [
            (Curve::P256, "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296", "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
            (Curve::P384, "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7", "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f"),
            (Curve::P521, "00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66", "011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650"),
        ];
        for (c, x, y) in g {
            let p = Params::of(c);
            let (x, y) = (hex::decode(x).unwrap(), hex::decode(y).unwrap());
            assert!(ec_point_valid(&p, &x, &y), "{c:?}");
            let mut bad = y.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert!(!ec_point_valid(&p, &x, &bad), "{c:?}");
        }
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
