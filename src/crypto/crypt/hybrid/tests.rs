//! Known answers (hpke-pq's vectors for KEM 0x647a, the age spec's example
//! key, the age testkit's hybrid vectors) and the parsing rules.

use std::io::Read;
use std::path::PathBuf;

use age::secrecy::ExposeSecret;
use hpke::Kem as _;
use sha2::Digest as _;

use super::*;

fn fixtures(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(dir)
}

fn h(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

/// Hands out fixed bytes, as a test vector's randomness.
struct Fixed(Vec<u8>);

impl RngCore for Fixed {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(dest.len() <= self.0.len(), "test randomness ran out");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for Fixed {}

#[test]
fn hpke_pq_known_answers() {
    let text = std::fs::read_to_string(fixtures("hpke-pq").join("mlkem768x25519.json")).unwrap();
    let vectors: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(vectors.len(), 2);
    let mut full_suite = 0;
    for v in &vectors {
        assert_eq!(v["kem_id"], 0x647a);
        let (sk, pk) = XWing::derive_keypair(&h(&v["ikmR"]));
        assert_eq!(sk.to_bytes().as_slice(), h(&v["skRm"]));
        assert_eq!(pk.to_bytes().as_slice(), h(&v["pkRm"]));
        assert_eq!(PublicKey::from_bytes(&h(&v["pkRm"])).unwrap(), pk);
        assert!(PrivateKey::from_bytes(&h(&v["skRm"])).unwrap() == sk);

        let randomness: [u8; 64] = h(&v["ikmE"]).try_into().unwrap();
        let (ss, enc) = encaps_derand(&pk, &randomness).unwrap();
        assert_eq!(enc.to_bytes().as_slice(), h(&v["enc"]));
        assert_eq!(ss.0.as_slice(), h(&v["shared_secret"]));
        let enc = EncappedKey::from_bytes(&h(&v["enc"])).unwrap();
        assert_eq!(
            XWing::decap(&sk, None, &enc).unwrap().0.as_slice(),
            h(&v["shared_secret"])
        );

        // age's suite (HKDF-SHA256, ChaCha20Poly1305): the whole key schedule.
        if v["kdf_id"] == 1 && v["aead_id"] == 3 {
            full_suite += 1;
            let info = h(&v["info"]);
            let mut rng = Fixed(randomness.to_vec());
            let (enc_s, mut sender) = hpke::setup_sender::<ChaCha20Poly1305, HkdfSha256, XWing, _>(
                &OpModeS::Base,
                &pk,
                &info,
                &mut rng,
            )
            .unwrap();
            assert_eq!(enc_s.to_bytes().as_slice(), h(&v["enc"]));
            let mut receiver = hpke::setup_receiver::<ChaCha20Poly1305, HkdfSha256, XWing>(
                &OpModeR::Base,
                &sk,
                &enc,
                &info,
            )
            .unwrap();
            let encryptions = v["encryptions"].as_array().unwrap();
            assert_eq!(encryptions.len(), 10);
            for e in encryptions {
                let (aad, pt, ct) = (h(&e["aad"]), h(&e["pt"]), h(&e["ct"]));
                assert_eq!(sender.seal(&pt, &aad).unwrap(), ct);
                assert_eq!(receiver.open(&ct, &aad).unwrap(), pt);
            }
        }
    }
    assert_eq!(full_suite, 1);
}

#[test]
fn spec_example_key() {
    // The example identity and recipient of the age spec (C2SP age.md).
    let id: Identity =
        "AGE-SECRET-KEY-PQ-1XX76JRALNLXDMEW0CRK45QMCCH4X06SE84UN3VPM33W6HWDX0H3SK3ZQFR"
            .parse()
            .unwrap();
    let recipient = "age1pq1x34nzsvr0rxjsgdn8zgyhfe8j7ceq5r9rdelkjuh3y235jzxshfg87pzf5zrqtzdxz95paef6caq5aapdmwjjqpjfdyxnzr2zampc3uxy0dg4z2n2gm9su72p0pc3u0jvev55l694v78snxg3yzvcl7yda0eyytqj6a0ec477lnhcy5hzpz4zq3pxanve4cn62gqj3pjy5lqj9c6kyj4v2z8alktn8zh99970x79gjkv7522hv9kfz35zsnxhsx8wwtmu9cy3ftzjgwcp4sshn3llnylnpdsyz5jm72vefv4x5vfwytrefxg4wq3mv42wcrvkj742479zrxzpvp2p3e9fed9f0739vcu80r7ma28qfhnvlv4gfzel9q654dj3zmuvvz893azhxdvs9fxd0r7jzchzcfcs5mkyyjxhw0n2z6dvp9yn9qfdp29h0azxqyjw6v7fhyuzj7zel0uq6j9rd7wgrpz7mf5dnj43jwsgvrc8qcnhy7tu6dkdujuxzkp9xj43xe8h92ktre2a3u3s8mm5mrp9nr9pwkgtz4mdlq9hgn4fps4k57ff6wddn2fy23t47sm20r8km8sd2pcyyafnet8f0dajsrlyjeah4n3mssr6aseevuuskdvq5lzguyvpgwpta742c6698vgutzqgny8usfg0w2he7kq5vyxjd0f9hqg8xk26y9e4th0gezq92q4cpp5p2y9hf5f2cje5l0c3sa3a2qxmm38pxxvhxh99yzmfz0zk7r2s64nnwjhkfgfr3gf8xnmppcgmaykvh5sh6g7vk9790rf8ws0axmr2t7z8aae5fq2029uvcn2ghgt4fu4wgwdc0k0cz52qkvwmuzj8p8k5jgf3xzk5zmrkavjekjrpeq408xz3zxazwkc6tyfmhayrkfpjhwtz5mp8j8guqe43k2q6m2kte03vrw27y3wmqyu5etmt9dnkwcnnpmu9gz9dekfhdevf42ucshphnrk38ra6hx8w5f8q5ru0xdhrjxmwqf6cused7zc5xvq43r0zscjglpwlptpwydhqw64xz7ptjdyeyzpq2zkxtmzg29gzjpvzva4d3l0cenn9xs297wf4y4ukwrunf57xj6pm7nvrkwvtrt8hwcmgv8x7ajw7258ugf9wvkmk4052ekg87tw5vnx8nq2swyzv77v8yqlwsenvamr0zssknwts8rrhfuwj7ykysnq9jxy0uv3kuyt22djszjdtvpz6d0s0kwh8ryynddzud92emeyvvyqktd0jtj7rvvg5gch25v8smlvny3kvn5gagyz475ze2y6q466xqmz2n3hs77lddeqyta2nch5k2u5yacuk9ywnwfdzvyejnucz724hj77hrrmakm7pr3kxsrxq22ejexlud9fy2kdqmkg5yncz7jm5wv2qjk5w5kvcpqsry2yqffh2la52dxfjkjq5rzhjzeyn6dupn0qwtyv7s4lwg3xdarsdlwe2y3tujy480y7z39q259fzx6jhd2j0f5hagqpcpees7hzc2yrk5cy788uk3s7qvp5cpepx24gvws3m2g433exgwppnkjscec8qu4y9z9r7vccexjcjaen42245lmgmxmuavg9alej92322gvvyy2t6267v09ch64y0m53jff0vjj96s0ypk60hr3jw4myd6m5hpn3xjstx7tl2szhpr5qe8jj08ydjc4wy2rch2fhuy3pdfjax5awe9j99ly5hkntzz9fe5zatgjvzdd0kgtxs25njnajyf6ssekp7gelxquusn4pt25czh3scj68kq79wdn5tgm6yvm9nzavrg043x3msnygf8dweknw5jmqd0uvny6ttsn09508k0c55zfnegrm9efhxpfqdkmhh6gjtqmwze9pyyzk3tlhl53k2ykx3qheyty7saeq0d3fzv49zc0k";
    assert_eq!(recipient.len(), 1959);
    assert_eq!(id.to_public().to_string(), recipient);
    assert_eq!(Recipient::from_str(recipient).unwrap(), id.to_public());
    assert_eq!(
        id.to_secret_string().as_str(),
        "AGE-SECRET-KEY-PQ-1XX76JRALNLXDMEW0CRK45QMCCH4X06SE84UN3VPM33W6HWDX0H3SK3ZQFR"
    );
    // Either case parses; the canonical form is lowercase.
    let upper = recipient.to_ascii_uppercase();
    assert_eq!(Recipient::from_str(&upper).unwrap().to_string(), recipient);
}

/// What decrypting a testkit file gave, in the testkit's words.
fn outcome(identities: &[Box<dyn age::Identity>], file: &[u8]) -> (String, Vec<u8>) {
    let d = match age::Decryptor::new(file) {
        Ok(d) => d,
        Err(_) => return ("header failure".into(), vec![]),
    };
    let mut stream = match d.decrypt(identities.iter().map(|b| b.as_ref())) {
        Ok(s) => s,
        Err(age::DecryptError::NoMatchingKeys) => return ("no match".into(), vec![]),
        Err(age::DecryptError::InvalidMac) => return ("HMAC failure".into(), vec![]),
        Err(age::DecryptError::InvalidHeader) => return ("header failure".into(), vec![]),
        Err(e) => return (format!("other error: {e}"), vec![]),
    };
    let mut out = Vec::new();
    match stream.read_to_end(&mut out) {
        Ok(_) => ("success".into(), out),
        Err(_) => ("payload failure".into(), out),
    }
}

#[test]
fn age_testkit_hybrid_vectors() {
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(fixtures("age-testkit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("hybrid")
        })
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let split = bytes.windows(2).position(|w| w == b"\n\n").unwrap();
        let head = std::str::from_utf8(&bytes[..split]).unwrap();
        let file = &bytes[split + 2..];
        let mut expect = "";
        let mut payload = None;
        let mut ids: Vec<Box<dyn age::Identity>> = Vec::new();
        for line in head.lines() {
            let (k, v) = line.split_once(": ").unwrap();
            match k {
                "expect" => expect = v,
                "payload" => payload = Some(v.to_string()),
                "identity" if v.starts_with(IDENTITY_PREFIX) => {
                    ids.push(Box::new(Identity::from_str(v).unwrap()))
                }
                "identity" => ids.push(Box::new(age::x25519::Identity::from_str(v).unwrap())),
                "compressed" | "armored" => panic!("{name}: stored decompressed and binary"),
                _ => {}
            }
        }
        let (got, plaintext) = outcome(&ids, file);
        assert_eq!(got, expect, "{name}");
        if let Some(p) = payload {
            assert_eq!(hex::encode(sha2::Sha256::digest(&plaintext)), p, "{name}");
        }
        seen += 1;
    }
    assert_eq!(
        seen, 18,
        "every hybrid vector of the testkit but the armored one"
    );
}

fn encrypt(recipients: &[&dyn age::Recipient], data: &[u8]) -> Result<Vec<u8>, age::EncryptError> {
    use std::io::Write;
    let mut out = Vec::new();
    let mut w = age::Encryptor::with_recipients(recipients.iter().copied())?
        .wrap_output(&mut out)
        .unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap();
    Ok(out)
}

#[test]
fn round_trip_and_age_rule_for_mixing() {
    let a = Identity::generate();
    let b = Identity::generate();
    let (ra, rb) = (a.to_public(), b.to_public());
    assert_ne!(ra, rb);
    let ct = encrypt(&[&ra, &rb], b"usage").unwrap();
    // One stanza per recipient, as the spec writes them.
    let stanzas = crate::crypto::crypt::header_stanzas(&ct[..]).unwrap();
    let real: Vec<_> = stanzas
        .iter()
        .filter(|s| !s.kind.ends_with("-grease"))
        .collect();
    assert_eq!(real.len(), 2);
    for s in real {
        assert_eq!(s.kind, STANZA_TAG);
        assert_eq!(s.args.len(), 1);
        assert_eq!(s.args[0].len(), 1494); // base64 of 1120 bytes, unpadded
    }
    for id in [&a, &b] {
        let ids: Vec<Box<dyn age::Identity>> = vec![Box::new(id.clone())];
        assert_eq!(
            outcome(&ids, &ct),
            ("success".to_string(), b"usage".to_vec())
        );
    }
    // Someone else's hybrid identity, or an X25519 one: no match.
    let ids: Vec<Box<dyn age::Identity>> = vec![
        Box::new(Identity::generate()),
        Box::new(age::x25519::Identity::generate()),
    ];
    assert_eq!(outcome(&ids, &ct).0, "no match");
    // age refuses to mix post-quantum and classical recipients.
    let x = age::x25519::Identity::generate().to_public();
    assert!(matches!(
        encrypt(&[&ra, &x], b"usage"),
        Err(age::EncryptError::IncompatibleRecipients { .. })
    ));
    // The identity string round-trips.
    let again: Identity = a.to_secret_string().parse().unwrap();
    assert_eq!(again.to_public(), ra);
    assert!(a.to_secret_string().starts_with(IDENTITY_PREFIX));
    let lower = a.to_secret_string().to_ascii_lowercase();
    assert_eq!(Identity::from_str(&lower).unwrap().to_public(), ra);
}

fn with_key_bytes(f: impl FnOnce(&mut [u8])) -> String {
    let r = Identity::generate().to_public();
    let mut bytes = r.0.bytes.to_vec();
    f(&mut bytes);
    bech32_encode(bech32::Hrp::parse_unchecked(RECIPIENT_HRP), &bytes)
}

#[test]
fn recipients_that_are_refused() {
    // The genuine encoding parses.
    assert!(Recipient::from_str(&with_key_bytes(|_| {})).is_ok());
    // An ML-KEM coefficient of 0xfff (at least q = 3329): FIPS 203's modulus check.
    let s = with_key_bytes(|b| {
        b[0] = 0xff;
        b[1] |= 0x0f;
    });
    assert!(Recipient::from_str(&s).unwrap_err().contains("modulus"));
    // Low-order X25519 points (0, 1, and the order-8 point).
    for point in [
        [0u8; 32],
        {
            let mut p = [0u8; 32];
            p[0] = 1;
            p
        },
        hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
            .unwrap()
            .try_into()
            .unwrap(),
    ] {
        let s = with_key_bytes(|b| b[EK_PQ_LEN..].copy_from_slice(&point));
        assert!(
            Recipient::from_str(&s).unwrap_err().contains("low-order"),
            "{point:?}"
        );
    }
    // Wrong length, wrong type, damaged checksum.
    let short = bech32_encode(bech32::Hrp::parse_unchecked(RECIPIENT_HRP), &[7u8; 1215]);
    assert!(Recipient::from_str(&short).is_err());
    let x25519 = age::x25519::Identity::generate().to_public().to_string();
    assert!(Recipient::from_str(&x25519).is_err());
    let mut damaged = with_key_bytes(|_| {});
    let last = damaged.pop().unwrap();
    damaged.push(if last == 'q' { 'p' } else { 'q' });
    assert!(Recipient::from_str(&damaged).is_err());
    // An identity of the wrong length, or of the X25519 type.
    let long = bech32_encode(bech32::Hrp::parse_unchecked(IDENTITY_HRP), &[1u8; 33]);
    assert!(Identity::from_str(&long.to_ascii_uppercase()).is_err());
    let x = age::x25519::Identity::generate();
    assert!(Identity::from_str(x.to_string().expose_secret()).is_err());
}

#[test]
fn stanza_rules() {
    let id = Identity::generate();
    let good = {
        let file_key = FileKey::new(Box::new([3u8; 16]));
        let (mut s, labels) = age::Recipient::wrap_file_key(&id.to_public(), &file_key).unwrap();
        assert_eq!(
            labels,
            std::iter::once(POSTQUANTUM_LABEL.to_string()).collect()
        );
        s.remove(0)
    };
    let unwrap = |s: &Stanza| age::Identity::unwrap_stanza(&id, s);
    let copy = |s: &Stanza| Stanza {
        tag: s.tag.clone(),
        args: s.args.clone(),
        body: s.body.clone(),
    };
    assert_eq!(unwrap(&good).unwrap().unwrap().expose_secret(), &[3u8; 16]);
    let header = |s: Stanza| matches!(unwrap(&s), Some(Err(age::DecryptError::InvalidHeader)));
    let mut s = copy(&good);
    s.args.push("x".into());
    assert!(header(s), "extra argument");
    let mut s = copy(&good);
    s.body.push(0);
    assert!(header(s), "long body");
    let mut s = copy(&good);
    s.args[0].pop();
    assert!(header(s), "short enc");
    let mut s = copy(&good);
    s.args[0].push('=');
    assert!(header(s), "padded base64");
    let mut s = copy(&good);
    s.tag = "X25519".into();
    assert!(unwrap(&s).is_none(), "another type is ignored");
    let mut s = copy(&good);
    s.body[0] ^= 1;
    assert!(
        unwrap(&s).is_none(),
        "a body that does not open is for someone else"
    );
    // An all-zero X25519 share: a malformed header, not "no match".
    let mut enc = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&good.args[0])
        .unwrap();
    enc[CT_PQ_LEN..].fill(0);
    let mut s = good;
    s.args[0] = base64::engine::general_purpose::STANDARD_NO_PAD.encode(enc);
    assert!(header(s), "low-order share");
}
