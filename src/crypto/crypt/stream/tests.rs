//! Known answers against the age crate (byte-identical payloads for the
//! same file key and nonce, both directions of decryption), the age
//! testkit's vectors (file key given), chunk boundaries, and the malformed
//! streams both readers must refuse.

use std::io::{Read, Write};

use sha2::Digest as _;

use super::*;

/// The sizes around every boundary of the chunking and of airlock's 1 MiB
/// blocks.
const SIZES: [usize; 12] = [
    0,
    1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    2 * CHUNK,
    2 * CHUNK + 1,
    3 * CHUNK + 5,
    16 * CHUNK - 1,
    16 * CHUNK,
    16 * CHUNK + 1,
    40 * CHUNK + 12_345,
];

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 997) as u8).collect()
}

fn x25519() -> (age::x25519::Identity, Recipients) {
    let id = age::x25519::Identity::generate();
    let mut r = Recipients::default();
    r.add(&id.to_public().to_string()).unwrap();
    (id, r)
}

/// An age file through this module: the age crate's header, the payload
/// sealed here, the plaintext given in `piece`-sized writes.
fn encrypt_here(r: &Recipients, plain: &[u8], piece: usize) -> Vec<u8> {
    let Encryption { header, mut sealer } = r.encryption().unwrap();
    let mut out = header;
    for p in plain.chunks(piece.max(1)) {
        sealer.update(p, &mut out).unwrap();
    }
    sealer.finish(&mut out).unwrap();
    out
}

fn decrypt_with_age(file: &[u8], id: &dyn age::Identity) -> std::io::Result<Vec<u8>> {
    let d = age::Decryptor::new(file).map_err(std::io::Error::other)?;
    let mut r = d
        .decrypt(std::iter::once(id))
        .map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)?;
    Ok(out)
}

/// Where the age header ends: after the MAC line.
fn header_len(file: &[u8]) -> usize {
    let mac = file.windows(4).position(|w| w == b"\n---").unwrap() + 1;
    mac + file[mac..].iter().position(|&b| b == b'\n').unwrap() + 1
}

fn decrypt_here_with(file: &[u8], ids: &Identities) -> std::io::Result<Vec<u8>> {
    let mut input = file;
    let d = age::Decryptor::new(&mut input).map_err(std::io::Error::other)?;
    // The age crate read exactly the header and the nonce.
    let at = header_len(file) + NONCE_LEN;
    let nonce: [u8; NONCE_LEN] = file[at - NONCE_LEN..at].try_into().unwrap();
    let stream = ids
        .unlock_stream(d, crate::crypto::crypt::SCRYPT_MAX_WORK_FACTOR, &nonce)
        .map_err(|e| std::io::Error::other(e.cause))?;
    assert_eq!(input.len(), file.len() - at);
    let mut r = StreamReader::new(input, stream).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out)?;
    Ok(out)
}

fn identities_of(id: &age::x25519::Identity) -> Identities {
    let mut ids = Identities::default();
    ids.ids.push(Box::new(id.clone()));
    ids
}

/// The age crate's own file, with the file key it drew (noted on its way
/// to the recipient).
fn encrypt_with_age(to: &dyn age::Recipient, plain: &[u8]) -> (Vec<u8>, Zeroizing<[u8; 16]>) {
    let key = RefCell::new(None);
    let differs = Cell::new(false);
    let noting = Noting {
        inner: to,
        key: &key,
        differs: &differs,
    };
    let mut out = Vec::new();
    let mut w = age::Encryptor::with_recipients(std::iter::once(&noting as &dyn age::Recipient))
        .unwrap()
        .wrap_output(&mut out)
        .unwrap();
    w.write_all(plain).unwrap();
    w.finish().unwrap();
    (out, key.into_inner().unwrap())
}

#[test]
fn the_payload_is_byte_identical_to_the_age_crates_for_the_same_key_and_nonce() {
    let (id, _) = x25519();
    for n in SIZES {
        let plain = data(n);
        let (file, key) = encrypt_with_age(&id.to_public(), &plain);
        let h = header_len(&file);
        let nonce: [u8; NONCE_LEN] = file[h..h + NONCE_LEN].try_into().unwrap();
        let mut mine = Vec::new();
        let mut s = Sealer::new(PayloadStream::new(&key, &nonce).unwrap()).unwrap();
        for piece in plain.chunks(1 << 20) {
            s.update(piece, &mut mine).unwrap();
        }
        s.finish(&mut mine).unwrap();
        assert_eq!(mine.len(), file.len() - h - NONCE_LEN, "{n} bytes");
        assert!(mine == file[h + NONCE_LEN..], "{n} bytes: payloads differ");
    }
}

#[test]
fn the_age_crate_decrypts_what_this_module_sealed_whatever_the_write_sizes() {
    let (id, r) = x25519();
    for n in SIZES {
        let plain = data(n);
        for piece in [1 << 20, CHUNK, 4097, n.max(1)] {
            let file = encrypt_here(&r, &plain, piece);
            let got = decrypt_with_age(&file, &id).unwrap();
            assert!(got == plain, "{n} bytes in pieces of {piece}");
        }
    }
}

#[test]
fn this_module_decrypts_what_the_age_crate_encrypted() {
    let (id, _) = x25519();
    let ids = identities_of(&id);
    for n in SIZES {
        let plain = data(n);
        let (file, _) = encrypt_with_age(&id.to_public(), &plain);
        assert!(
            decrypt_here_with(&file, &ids).unwrap() == plain,
            "{n} bytes"
        );
    }
}

#[test]
fn every_recipient_type_works_with_the_age_crate_on_the_other_side() {
    let plain = data(3 * CHUNK + 7);
    // ssh-ed25519
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let g = crate::crypto::keys::generate(&key, "t", None, false).unwrap();
    let mut r = Recipients::default();
    r.add(&g.public.to_openssh()).unwrap();
    let file = encrypt_here(&r, &plain, 1 << 20);
    let mut ids = Identities::default();
    ids.add_file(&key, &mut || unreachable!()).unwrap();
    assert!(decrypt_here_with(&file, &ids).unwrap() == plain);
    // scrypt (a low work factor: this is about the payload)
    let mut r = Recipients::default();
    r.set_passphrase("correct horse", 10).unwrap();
    let file = encrypt_here(&r, &plain, 1 << 20);
    let sid = age::scrypt::Identity::new(age::secrecy::SecretString::from(
        "correct horse".to_string(),
    ));
    assert!(decrypt_with_age(&file, &sid).unwrap() == plain);
    let mut ids = Identities::default();
    ids.set_passphrase("correct horse");
    assert!(decrypt_here_with(&file, &ids).unwrap() == plain);
    ids.set_passphrase("wrong");
    assert!(decrypt_here_with(&file, &ids).is_err());
    // hybrid post-quantum, two recipients
    let a = crate::crypto::crypt::hybrid::Identity::generate();
    let b = crate::crypto::crypt::hybrid::Identity::generate();
    let mut r = Recipients::default();
    r.add(&a.to_public().to_string()).unwrap();
    r.add(&b.to_public().to_string()).unwrap();
    let file = encrypt_here(&r, &plain, 1 << 20);
    assert!(decrypt_with_age(&file, &b).unwrap() == plain);
    let mut ids = Identities::default();
    ids.ids.push(Box::new(a));
    assert!(decrypt_here_with(&file, &ids).unwrap() == plain);
}

/// The age testkit's vectors give the file key: the payload after the
/// header must decrypt here to the plaintext whose SHA-256 they give.
#[test]
fn age_testkit_payloads_decrypt_with_their_file_keys() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/age-testkit");
    let mut checked = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        let Some(split) = bytes.windows(2).position(|w| w == b"\n\n") else {
            continue;
        };
        let head = std::str::from_utf8(&bytes[..split]).unwrap();
        let field = |k: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(k).map(str::to_string))
        };
        if field("expect: ").as_deref() != Some("success") {
            continue;
        }
        let key: [u8; 16] = hex::decode(field("file key: ").unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let file = &bytes[split + 2..];
        let h = header_len(file);
        let nonce: [u8; NONCE_LEN] = file[h..h + NONCE_LEN].try_into().unwrap();
        let mut r = StreamReader::new(
            &file[h + NONCE_LEN..],
            PayloadStream::new(&key, &nonce).unwrap(),
        )
        .unwrap();
        let mut plain = Vec::new();
        r.read_to_end(&mut plain).unwrap();
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&plain)),
            field("payload: ").unwrap()
        );
        checked += 1;
    }
    assert!(checked >= 4, "{checked} vectors");
}

/// A header made by the age crate for an X25519 identity, and the file
/// key and nonce behind it, to build payloads by hand.
fn start() -> (age::x25519::Identity, Vec<u8>, [u8; 16], [u8; NONCE_LEN]) {
    let id = age::x25519::Identity::generate();
    let (file, key) = encrypt_with_age(&id.to_public(), b"");
    let h = header_len(&file);
    let nonce: [u8; NONCE_LEN] = file[h..h + NONCE_LEN].try_into().unwrap();
    (id, file[..h + NONCE_LEN].to_vec(), *key, nonce)
}

/// Seal chunks by hand: (plaintext, last flag) in order.
fn sealed(key: &[u8; 16], nonce: &[u8; NONCE_LEN], chunks: &[(&[u8], bool)]) -> Vec<Vec<u8>> {
    let mut s = PayloadStream::new(key, nonce).unwrap();
    chunks
        .iter()
        .map(|(p, last)| {
            // Any size with any flag, as an attacker would: past `seal`'s checks.
            let mut c = p.to_vec();
            let tag = s
                .key
                .seal_in_place_separate_tag(s.nonce(*last), Aad::empty(), &mut c)
                .unwrap();
            s.counter += 1;
            c.extend_from_slice(tag.as_ref());
            c
        })
        .collect()
}

#[test]
fn malformed_payloads_are_refused_here_and_by_the_age_crate() {
    let (id, header, key, nonce) = start();
    let ids = identities_of(&id);
    let full = data(CHUNK);
    let short = data(100);
    let cat = |parts: &[Vec<u8>]| {
        let mut f = header.clone();
        for p in parts {
            f.extend_from_slice(p);
        }
        f
    };
    // Well-formed references first: both accept.
    let ok = sealed(&key, &nonce, &[(&full, false), (&short, true)]);
    let good = cat(&ok);
    assert!(decrypt_with_age(&good, &id).is_ok());
    assert!(decrypt_here_with(&good, &ids).is_ok());
    let full_last = cat(&sealed(&key, &nonce, &[(&full, false), (&full, true)]));
    assert!(decrypt_with_age(&full_last, &id).is_ok());
    assert_eq!(
        decrypt_here_with(&full_last, &ids).unwrap().len(),
        2 * CHUNK
    );
    let empty = cat(&sealed(&key, &nonce, &[(b"", true)]));
    assert!(decrypt_here_with(&empty, &ids).unwrap().is_empty());

    let cases: Vec<(&str, Vec<u8>)> = vec![
        // No payload at all, or no last chunk.
        ("no chunk", cat(&[])),
        ("last chunk dropped", cat(&ok[..1])),
        (
            "full chunks without a last flag",
            cat(&sealed(&key, &nonce, &[(&full, false), (&full, false)])),
        ),
        ("cut in the last chunk", {
            let mut f = good.clone();
            f.truncate(f.len() - 20);
            f
        }),
        ("cut in a full chunk", {
            let mut f = good.clone();
            f.truncate(header.len() + CHUNK);
            f
        }),
        // The last flag where it does not belong.
        (
            "a first chunk flagged last, then more",
            cat(&sealed(&key, &nonce, &[(&full, true), (&short, true)])),
        ),
        (
            "a short chunk not flagged last",
            cat(&sealed(&key, &nonce, &[(&full, false), (&short, false)])),
        ),
        (
            "an empty last chunk after data",
            cat(&sealed(&key, &nonce, &[(&full, false), (b"", true)])),
        ),
        // Chunks reordered or repeated.
        ("chunks swapped", {
            let s = sealed(
                &key,
                &nonce,
                &[(&full, false), (&full, false), (&short, true)],
            );
            cat(&[s[1].clone(), s[0].clone(), s[2].clone()])
        }),
        ("a chunk repeated", {
            let s = sealed(&key, &nonce, &[(&full, false), (&short, true)]);
            cat(&[s[0].clone(), s[0].clone(), s[1].clone()])
        }),
        // Anything after the end, or a flipped bit.
        ("data after the last chunk", {
            let mut f = good.clone();
            f.push(0);
            f
        }),
        ("a sealed chunk after the last", {
            let s = sealed(&key, &nonce, &[(&short, true), (&short, true)]);
            cat(&s)
        }),
        ("a flipped ciphertext bit", {
            let mut f = good.clone();
            f[header.len() + 5] ^= 1;
            f
        }),
        ("a flipped tag bit", {
            let mut f = good.clone();
            let n = f.len();
            f[n - 1] ^= 0x80;
            f
        }),
        ("less than a tag", cat(&[vec![0u8; 15]])),
    ];
    for (what, file) in cases {
        assert!(
            decrypt_with_age(&file, &id).is_err(),
            "age crate accepted: {what}"
        );
        assert!(
            decrypt_here_with(&file, &ids).is_err(),
            "accepted here: {what}"
        );
    }
}

#[test]
fn the_sealer_refuses_misuse_instead_of_panicking() {
    let mut s = PayloadStream::new(&[7; 16], &[9; NONCE_LEN]).unwrap();
    assert!(s.seal(&mut [0u8; 10], false).is_err(), "short and not last");
    assert!(s.seal(&mut vec![0u8; CHUNK + 1], true).is_err(), "too long");
    s.seal(&mut [0u8; 10], true).unwrap();
    assert!(s.seal(&mut [0u8; 10], true).is_err(), "after the last");
    let mut o = PayloadStream::new(&[7; 16], &[9; NONCE_LEN]).unwrap();
    assert!(o.open(&mut [0u8; 3], true).is_err(), "shorter than a tag");
    assert!(
        o.open(&mut vec![0u8; SEALED_CHUNK + 1], true).is_err(),
        "too long"
    );
}

#[test]
fn a_different_file_key_or_nonce_gives_another_payload() {
    let mut a = Vec::new();
    let mut b = Vec::new();
    let mut c = Vec::new();
    for (out, key, nonce) in [
        (&mut a, [1u8; 16], [2u8; 16]),
        (&mut b, [1; 16], [3; 16]),
        (&mut c, [4; 16], [2; 16]),
    ] {
        let mut s = Sealer::new(PayloadStream::new(&key, &nonce).unwrap()).unwrap();
        s.update(b"same plaintext", out).unwrap();
        s.finish(out).unwrap();
    }
    assert_ne!(a, b);
    assert_ne!(a, c);
}
