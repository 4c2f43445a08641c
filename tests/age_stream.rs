//! airlock's payload encryption (`crypt::stream`, ring's ChaCha20-Poly1305)
//! against the real `age` (Go) at every chunk boundary, both ways: `age -d`
//! reads what `airlock export` wrote, with and without the read-back; and
//! `airlock extract` reads a member that `age -r` wrote.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::*;

const CHUNK: usize = 64 * 1024;
const SIZES: [usize; 9] = [
    0,
    1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    3 * CHUNK,
    16 * CHUNK,
    16 * CHUNK + 1,
    48 * CHUNK + 12_345,
];

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 4099) as u8).collect()
}

/// The exporter's world and an age identity made by age-keygen.
struct Setup {
    w: World,
    identity: PathBuf,
    recipient: String,
}

fn setup() -> Setup {
    let w = World::trusting("ghes.example.com");
    let identity = w.p("id.txt");
    let out = tool("age-keygen")
        .arg("-o")
        .arg(&identity)
        .output()
        .unwrap();
    assert!(out.status.success(), "age-keygen");
    let text = std::fs::read_to_string(&identity).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    Setup {
        w,
        identity,
        recipient,
    }
}

fn age(args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = tool("age")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "age {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl Setup {
    fn extract(&self, b: &Path, name: &str) -> Vec<u8> {
        let out = tempfile::tempdir_in(self.w.dir.path()).unwrap().keep();
        airlock()
            .arg("extract")
            .arg(b)
            .arg("--trust")
            .arg(&self.w.allowed)
            .arg("-i")
            .arg(&self.identity)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        assert_eq!(listing(&out), vec![name.to_string()]);
        std::fs::read(out.join(name)).unwrap()
    }
}

#[test]
fn age_decrypts_what_airlock_exported_at_every_chunk_boundary() {
    let s = setup();
    for n in SIZES {
        let plain = data(n);
        let input = s.w.p("data.bin");
        std::fs::write(&input, &plain).unwrap();
        for extra in [&[][..], &["--no-read-back"][..]] {
            let b = s.w.p(&format!("b{n}{}.zip", extra.len()));
            let mut args = vec!["--host-name", "ghes.example.com", "-r", &s.recipient];
            args.extend_from_slice(extra);
            export(s.w.dir.path(), &s.w.key, &[&input], &b, &args);
            let member = unzip_member(&b, "payload/data.bin.age");
            let id = s.identity.to_str().unwrap();
            assert!(
                age(&["-d", "-i", id], &member) == plain,
                "{n} bytes {extra:?}"
            );
            assert!(s.extract(&b, "data.bin") == plain, "{n} bytes {extra:?}");
        }
    }
}

#[test]
fn airlock_extracts_members_that_age_encrypted_at_every_chunk_boundary() {
    use airlock::format::manifest::{
        BundleId, Encryption, Fingerprint, FormatName, FormatVersion, HexDigest, Manifest,
        PayloadEntry, PayloadKind, Recipient, Sequence, Source, Timestamp,
    };
    use sha2::Digest;

    let s = setup();
    let signer =
        airlock::keys::load_signer(&s.w.key, &mut || unreachable!("no passphrase")).unwrap();
    for (i, n) in SIZES.into_iter().enumerate() {
        let plain = data(n);
        let ct = age(&["-r", &s.recipient], &plain);
        let member = "payload/data.bin.age";
        let created = Timestamp::from_system(SystemTime::now() - Duration::from_secs(60));
        let m = Manifest {
            format: FormatName::AirlockBundle,
            version: FormatVersion::V1,
            bundle_id: BundleId::parse(&hex::encode(&sha2::Sha256::digest(&ct)[..16])).unwrap(),
            created,
            expires: created + Duration::from_secs(3600),
            tool: airlock::tool_version(),
            source: Source::instance("ghes.example.com", None),
            sequence: Sequence {
                key: Fingerprint::parse(&signer.fingerprint()).unwrap(),
                number: i as u64 + 1,
            },
            payload: vec![PayloadEntry {
                name: member.into(),
                size: ct.len() as u64,
                sha256: HexDigest::from_bytes(&sha2::Sha256::digest(&ct).into()),
                kind: PayloadKind::File,
                reference: None,
                encryption: Some(Encryption::Age),
            }],
            recipients: vec![Recipient::X25519(s.recipient.clone())],
        };
        m.check().unwrap();
        let bytes = m.to_bytes();
        let sig = signer
            .sign(airlock::sshsig::BUNDLE_NAMESPACE, &bytes)
            .unwrap();
        let mut w = airlock::format::container::Writer::new(std::io::Cursor::new(Vec::new()));
        w.add_bytes(member, &ct).unwrap();
        w.add_bytes("manifest.json", &bytes).unwrap();
        w.add_bytes(
            &airlock::format::rules::signature_member_name(&sig),
            sig.to_armored().as_bytes(),
        )
        .unwrap();
        let b = s.w.p(&format!("go{n}.airlock.zip"));
        std::fs::write(&b, w.finish().unwrap().into_inner()).unwrap();
        assert!(s.extract(&b, "data.bin") == plain, "{n} bytes");
    }
}
