//! age's hybrid post-quantum recipient type: ML-KEM-768 and X25519 combined
//! as X-Wing (the HPKE KEM "MLKEM768-X25519", id 0x647a), as specified by the
//! age spec (C2SP, "mlkem768x25519" stanza) and filippo.io/hpke-pq.
//!
//! - Identity: 32 random bytes, Bech32 with HRP `AGE-SECRET-KEY-PQ-`.
//! - Recipient: the 1216-byte X-Wing public key (ML-KEM-768 encapsulation key
//!   ‖ X25519 public key), Bech32 without the 90-character limit, HRP `age1pq`.
//! - Stanza: `-> mlkem768x25519 base64(enc)` over the HPKE ciphertext of the
//!   file key: HPKE base mode, KEM MLKEM768-X25519, HKDF-SHA256,
//!   ChaCha20Poly1305, info `age-encryption.org/mlkem768x25519`, empty aad.
//!
//! The KEM is implemented here for the `hpke` crate's `Kem` trait on
//! RustCrypto's `ml-kem`, `x25519-dalek` and `sha3`; the recipient and the
//! identity implement the `age` crate's own `Recipient` and `Identity`
//! traits, the crate's supported extension point. The recipient carries age's
//! `postquantum` label, so age itself refuses to mix it with classical
//! recipients (which would make the file only as strong as X25519).

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use age_core::format::{FileKey, Stanza, FILE_KEY_BYTES};
use age_core::primitives::{bech32_decode, bech32_encode};
use age_core::secrecy::ExposeSecret;
use base64::Engine;
use hpke::aead::ChaCha20Poly1305;
use hpke::generic_array::typenum::{Sum, U1024, U192, U32, U96};
use hpke::kdf::HkdfSha256;
use hpke::kem::SharedSecret;
use hpke::{Deserializable, HpkeError, OpModeR, OpModeS, Serializable};
use ml_kem::kem::Decapsulate;
use ml_kem::{Ciphertext, EncapsulateDeterministic, EncodedSizeUser, KemCore, MlKem768, B32};
use rand_core::{CryptoRng, OsRng, RngCore};
use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::{Digest, Sha3_256, Shake256};
use zeroize::{Zeroize, Zeroizing};

/// The stanza type (first argument) of a hybrid recipient stanza.
pub const STANZA_TAG: &str = "mlkem768x25519";
/// Prefix of a hybrid recipient string.
pub const RECIPIENT_PREFIX: &str = "age1pq1";
/// Prefix of a hybrid identity string.
pub const IDENTITY_PREFIX: &str = "AGE-SECRET-KEY-PQ-1";
/// age's label for recipients that must not be mixed with classical ones.
pub const POSTQUANTUM_LABEL: &str = "postquantum";

const RECIPIENT_HRP: &str = "age1pq";
const IDENTITY_HRP: &str = "AGE-SECRET-KEY-PQ-";
/// HPKE info for age's stanza.
const INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
/// X-Wing's combiner label, `\.//^\`.
const XWING_LABEL: &[u8] = b"\\.//^\\";
const KEM_ID: u16 = 0x647a;

const SEED_LEN: usize = 32;
const EK_PQ_LEN: usize = 1184;
const CT_PQ_LEN: usize = 1088;
const X25519_LEN: usize = 32;
/// Length of a recipient (public key).
const PUBLIC_KEY_LEN: usize = EK_PQ_LEN + X25519_LEN;
/// Length of the encapsulated key carried in a stanza.
const ENC_LEN: usize = CT_PQ_LEN + X25519_LEN;
/// Length of a stanza body: the file key and the ChaCha20Poly1305 tag.
const BODY_LEN: usize = FILE_KEY_BYTES + 16;

type DecapsulationKey = <MlKem768 as KemCore>::DecapsulationKey;
type EncapsulationKey = <MlKem768 as KemCore>::EncapsulationKey;

/// The X-Wing KEM (MLKEM768-X25519) for the `hpke` crate.
pub struct XWing;

/// A decapsulation key: the 32-byte seed and what it expands to.
#[derive(Clone)]
pub struct PrivateKey {
    seed: Zeroizing<[u8; SEED_LEN]>,
    dk_pq: DecapsulationKey,
    sk_x: x25519_dalek::StaticSecret,
    pk: PublicKey,
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        // Both sides hold secrets: compare without early exit.
        self.seed
            .iter()
            .zip(other.seed.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}
impl Eq for PrivateKey {}

/// An encapsulation key (a recipient's public key).
#[derive(Clone)]
pub struct PublicKey {
    bytes: Box<[u8; PUBLIC_KEY_LEN]>,
    ek_pq: EncapsulationKey,
    pk_x: x25519_dalek::PublicKey,
}

/// Keys are equal when their encodings are (the parsed parts follow from them).
impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}…)", hex::encode(&self.bytes[..8]))
    }
}

/// The KEM ciphertext: ML-KEM ciphertext ‖ ephemeral X25519 public key.
#[derive(Clone)]
pub struct EncappedKey {
    ct_pq: Ciphertext<MlKem768>,
    ct_x: [u8; X25519_LEN],
}

impl Serializable for PrivateKey {
    type OutputSize = U32;
    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.seed[..]);
    }
}

impl Deserializable for PrivateKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let seed: [u8; SEED_LEN] = encoded
            .try_into()
            .map_err(|_| HpkeError::IncorrectInputLength(SEED_LEN, encoded.len()))?;
        Ok(PrivateKey::from_seed(Zeroizing::new(seed)))
    }
}

impl Serializable for PublicKey {
    type OutputSize = Sum<U1024, U192>;
    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.bytes[..]);
    }
}

impl Deserializable for PublicKey {
    /// The ML-KEM part must pass FIPS 203's modulus check (every coefficient
    /// below q, i.e. the encoding is canonical); any 32 bytes are an X25519
    /// public key, as in RFC 7748.
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let bytes: [u8; PUBLIC_KEY_LEN] = encoded
            .try_into()
            .map_err(|_| HpkeError::IncorrectInputLength(PUBLIC_KEY_LEN, encoded.len()))?;
        let (pq, x) = bytes.split_at(EK_PQ_LEN);
        let enc = ml_kem::array::Array::try_from(pq).map_err(|_| HpkeError::ValidationError)?;
        let ek_pq = EncapsulationKey::from_bytes(&enc);
        if ek_pq.as_bytes().as_slice() != pq {
            return Err(HpkeError::ValidationError);
        }
        let x: [u8; X25519_LEN] = x.try_into().map_err(|_| HpkeError::ValidationError)?;
        Ok(PublicKey {
            bytes: Box::new(bytes),
            ek_pq,
            pk_x: x25519_dalek::PublicKey::from(x),
        })
    }
}

impl Serializable for EncappedKey {
    type OutputSize = Sum<U1024, U96>;
    fn write_exact(&self, buf: &mut [u8]) {
        buf[..CT_PQ_LEN].copy_from_slice(self.ct_pq.as_slice());
        buf[CT_PQ_LEN..].copy_from_slice(&self.ct_x);
    }
}

impl Deserializable for EncappedKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        if encoded.len() != ENC_LEN {
            return Err(HpkeError::IncorrectInputLength(ENC_LEN, encoded.len()));
        }
        let (pq, x) = encoded.split_at(CT_PQ_LEN);
        Ok(EncappedKey {
            ct_pq: ml_kem::array::Array::try_from(pq).map_err(|_| HpkeError::ValidationError)?,
            ct_x: x.try_into().map_err(|_| HpkeError::ValidationError)?,
        })
    }
}

impl PrivateKey {
    /// expandKey of hpke-pq: SHAKE256(seed, 96) = ML-KEM seed (d ‖ z) ‖ X25519 scalar.
    fn from_seed(seed: Zeroizing<[u8; SEED_LEN]>) -> PrivateKey {
        let mut full = Zeroizing::new([0u8; 96]);
        Shake256::default()
            .chain(&seed[..])
            .finalize_xof()
            .read(&mut full[..]);
        let mut d = B32::default();
        let mut z = B32::default();
        d.copy_from_slice(&full[..32]);
        z.copy_from_slice(&full[32..64]);
        let (dk_pq, ek_pq) = MlKem768::generate_deterministic(&d, &z);
        d.as_mut_slice().zeroize();
        z.as_mut_slice().zeroize();
        let mut x = [0u8; 32];
        x.copy_from_slice(&full[64..]);
        let sk_x = x25519_dalek::StaticSecret::from(x);
        x.zeroize();
        let pk_x = x25519_dalek::PublicKey::from(&sk_x);
        let mut bytes = Box::new([0u8; PUBLIC_KEY_LEN]);
        bytes[..EK_PQ_LEN].copy_from_slice(ek_pq.as_bytes().as_slice());
        bytes[EK_PQ_LEN..].copy_from_slice(pk_x.as_bytes());
        PrivateKey {
            seed,
            dk_pq,
            sk_x,
            pk: PublicKey { bytes, ek_pq, pk_x },
        }
    }
}

/// The X-Wing combiner: SHA3-256(ss_M ‖ ss_X ‖ ct_X ‖ pk_X ‖ label).
fn combine(ss_pq: &[u8], ss_x: &[u8], ct_x: &[u8], pk_x: &[u8]) -> SharedSecret<XWing> {
    let mut h = Sha3_256::new();
    Digest::update(&mut h, ss_pq);
    Digest::update(&mut h, ss_x);
    Digest::update(&mut h, ct_x);
    Digest::update(&mut h, pk_x);
    Digest::update(&mut h, XWING_LABEL);
    let mut ss = SharedSecret::<XWing>::default();
    ss.0.copy_from_slice(&h.finalize());
    ss
}

/// EncapsDerand of hpke-pq: 32 bytes of ML-KEM randomness, then the
/// ephemeral X25519 scalar. An all-zero X25519 secret (a low-order
/// recipient key) is refused.
fn encaps_derand(
    pk: &PublicKey,
    randomness: &[u8; 64],
) -> Result<(SharedSecret<XWing>, EncappedKey), HpkeError> {
    let mut m = B32::default();
    m.copy_from_slice(&randomness[..32]);
    let (ct_pq, ss_pq) = pk
        .ek_pq
        .encapsulate_deterministic(&m)
        .map_err(|_| HpkeError::EncapError)?;
    m.as_mut_slice().zeroize();
    let mut e = [0u8; 32];
    e.copy_from_slice(&randomness[32..]);
    let sk_e = x25519_dalek::StaticSecret::from(e);
    e.zeroize();
    let ct_x = x25519_dalek::PublicKey::from(&sk_e);
    let ss_x = sk_e.diffie_hellman(&pk.pk_x);
    if !ss_x.was_contributory() {
        return Err(HpkeError::EncapError);
    }
    let ss = combine(
        ss_pq.as_slice(),
        ss_x.as_bytes(),
        ct_x.as_bytes(),
        pk.pk_x.as_bytes(),
    );
    Ok((
        ss,
        EncappedKey {
            ct_pq,
            ct_x: *ct_x.as_bytes(),
        },
    ))
}

/// SHAKE256.LabeledDerive of draft-ietf-hpke-pq, for DeriveKeyPair.
fn labeled_derive(ikm: &[u8], label: &[u8], out: &mut [u8]) {
    let mut x = Shake256::default();
    x.update(ikm);
    x.update(b"HPKE-v1");
    x.update(b"KEM");
    x.update(&KEM_ID.to_be_bytes());
    x.update(&(label.len() as u16).to_be_bytes());
    x.update(label);
    x.update(&(out.len() as u16).to_be_bytes());
    x.finalize_xof().read(out);
}

impl hpke::Kem for XWing {
    type PublicKey = PublicKey;
    type PrivateKey = PrivateKey;
    type EncappedKey = EncappedKey;
    type NSecret = U32;
    const KEM_ID: u16 = KEM_ID;

    fn sk_to_pk(sk: &PrivateKey) -> PublicKey {
        sk.pk.clone()
    }

    fn derive_keypair(ikm: &[u8]) -> (PrivateKey, PublicKey) {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        labeled_derive(ikm, b"DeriveKeyPair", &mut seed[..]);
        let sk = PrivateKey::from_seed(seed);
        let pk = sk.pk.clone();
        (sk, pk)
    }

    fn decap(
        sk: &PrivateKey,
        pk_sender_id: Option<&PublicKey>,
        enc: &EncappedKey,
    ) -> Result<SharedSecret<Self>, HpkeError> {
        if pk_sender_id.is_some() {
            // X-Wing has no authenticated mode.
            return Err(HpkeError::DecapError);
        }
        let ss_pq = sk
            .dk_pq
            .decapsulate(&enc.ct_pq)
            .map_err(|_| HpkeError::DecapError)?;
        let ss_x = sk
            .sk_x
            .diffie_hellman(&x25519_dalek::PublicKey::from(enc.ct_x));
        if !ss_x.was_contributory() {
            return Err(HpkeError::DecapError);
        }
        Ok(combine(
            ss_pq.as_slice(),
            ss_x.as_bytes(),
            &enc.ct_x,
            sk.pk.pk_x.as_bytes(),
        ))
    }

    fn encap<R: CryptoRng + RngCore>(
        pk: &PublicKey,
        sender_id_keypair: Option<(&PrivateKey, &PublicKey)>,
        csprng: &mut R,
    ) -> Result<(SharedSecret<Self>, EncappedKey), HpkeError> {
        if sender_id_keypair.is_some() {
            return Err(HpkeError::EncapError);
        }
        let mut randomness = Zeroizing::new([0u8; 64]);
        csprng
            .try_fill_bytes(&mut randomness[..])
            .map_err(|_| HpkeError::EncapError)?;
        encaps_derand(pk, &randomness)
    }
}

/// A hybrid post-quantum age recipient (`age1pq1…`).
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient(PublicKey);

impl FromStr for Recipient {
    type Err = &'static str;

    /// Parse `age1pq1…` (Bech32 of any length, either case). Refused: another
    /// type, a wrong length, an ML-KEM key that fails FIPS 203's modulus
    /// check, and a low-order X25519 key (every encryption to it would fail).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.to_ascii_lowercase().starts_with(RECIPIENT_PREFIX) {
            return Err("not an age1pq1… recipient");
        }
        let bytes = bech32_decode(
            s,
            |_| "invalid Bech32 encoding",
            |hrp| {
                (hrp.to_lowercase() == RECIPIENT_HRP)
                    .then_some(())
                    .ok_or("not an age1pq1… recipient")
            },
            |_, bytes| Ok(bytes.collect::<Vec<u8>>()),
        )?;
        if bytes.len() != PUBLIC_KEY_LEN {
            return Err("wrong length for a ML-KEM-768 + X25519 public key");
        }
        let pk = PublicKey::from_bytes(&bytes)
            .map_err(|_| "the ML-KEM-768 key is not canonical (FIPS 203 modulus check)")?;
        // A clamped scalar kills any small-order component: the result is
        // all-zero exactly for low-order points.
        let probe = x25519_dalek::StaticSecret::from([0x5a; 32]).diffie_hellman(&pk.pk_x);
        if !probe.was_contributory() {
            return Err("the X25519 key is a low-order point");
        }
        Ok(Recipient(pk))
    }
}

impl fmt::Display for Recipient {
    /// The canonical (lowercase) form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bech32_encode(
            bech32::Hrp::parse_unchecked(RECIPIENT_HRP),
            &self.0.bytes[..],
        ))
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hybrid::Recipient({})", self)
    }
}

impl age::Recipient for Recipient {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let (enc, body) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, XWing, _>(
            &OpModeS::Base,
            &self.0,
            INFO,
            file_key.expose_secret(),
            &[],
            &mut OsRng,
        )
        .map_err(|e| {
            age::EncryptError::Io(std::io::Error::other(format!(
                "wrapping the file key for an age1pq1 recipient: {e}"
            )))
        })?;
        let stanza = Stanza {
            tag: STANZA_TAG.to_string(),
            args: vec![base64::engine::general_purpose::STANDARD_NO_PAD.encode(enc.to_bytes())],
            body,
        };
        Ok((
            vec![stanza],
            std::iter::once(POSTQUANTUM_LABEL.to_string()).collect(),
        ))
    }
}

/// A hybrid post-quantum age identity (`AGE-SECRET-KEY-PQ-1…`).
#[derive(Clone)]
pub struct Identity(PrivateKey);

impl Identity {
    /// A new identity from the operating system's CSPRNG.
    pub fn generate() -> Identity {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        OsRng.fill_bytes(&mut seed[..]);
        Identity(PrivateKey::from_seed(seed))
    }

    /// The recipient that encrypts to this identity.
    pub fn to_public(&self) -> Recipient {
        Recipient(self.0.pk.clone())
    }

    /// The identity string, uppercase as age writes it.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        let s = Zeroizing::new(bech32_encode(
            bech32::Hrp::parse_unchecked(IDENTITY_HRP),
            &self.0.seed[..],
        ));
        Zeroizing::new(s.to_ascii_uppercase())
    }
}

impl FromStr for Identity {
    type Err = &'static str;

    /// Parse `AGE-SECRET-KEY-PQ-1…` (Bech32, either case, 32 bytes).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.to_ascii_uppercase().starts_with(IDENTITY_PREFIX) {
            return Err("not an AGE-SECRET-KEY-PQ-1… identity");
        }
        let seed = bech32_decode(
            s,
            |_| "invalid Bech32 encoding",
            |hrp| {
                (hrp.to_lowercase() == IDENTITY_HRP.to_ascii_lowercase())
                    .then_some(())
                    .ok_or("not an AGE-SECRET-KEY-PQ-1… identity")
            },
            |_, mut bytes| {
                let mut seed = Zeroizing::new([0u8; SEED_LEN]);
                for b in seed.iter_mut() {
                    *b = bytes.next().ok_or("wrong length for an identity")?;
                }
                if bytes.next().is_some() {
                    return Err("wrong length for an identity");
                }
                Ok(seed)
            },
        )?;
        Ok(Identity(PrivateKey::from_seed(seed)))
    }
}

impl age::Identity for Identity {
    /// The age spec's rules: ignore other stanza types; refuse a hybrid
    /// stanza with other than one argument, an argument that is not the
    /// canonical base64 of 1120 bytes, or a body of other than 32 bytes
    /// (before decrypting, against partitioning oracles); an all-zero X25519
    /// secret is a malformed header; a body that does not open is a stanza
    /// for someone else.
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        if stanza.tag != STANZA_TAG {
            return None;
        }
        let bad = || Some(Err(age::DecryptError::InvalidHeader));
        if stanza.args.len() != 1 {
            return bad();
        }
        let Ok(enc) = base64::engine::general_purpose::STANDARD_NO_PAD.decode(&stanza.args[0])
        else {
            return bad();
        };
        if enc.len() != ENC_LEN || stanza.body.len() != BODY_LEN {
            return bad();
        }
        let Ok(enc) = EncappedKey::from_bytes(&enc) else {
            return bad();
        };
        match hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, XWing>(
            &OpModeR::Base,
            &self.0,
            &enc,
            INFO,
            &stanza.body,
            &[],
        ) {
            Ok(pt) => {
                let pt = Zeroizing::new(pt);
                Some(FileKey::try_init_with_mut(|k| {
                    if pt.len() != FILE_KEY_BYTES {
                        return Err(age::DecryptError::InvalidHeader);
                    }
                    k.copy_from_slice(&pt);
                    Ok(())
                }))
            }
            Err(HpkeError::OpenError) => None,
            Err(_) => bad(),
        }
    }
}

#[cfg(test)]
mod tests;
