//! Hybrid post-quantum recipients (ML-KEM-768 + X25519, `age1pq1…`), end to
//! end through the binary, against age's TypeScript implementation by its
//! author (npm `age-encryption` 0.3.1, run by Node; tests/run.sh installs it
//! with `npm ci` from tests/interop/ into a scratch directory).

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use common::*;
use predicates::str::contains;

/// Where tests/run.sh installs age-encryption (AIRLOCK_AGE_JS overrides).
fn age_js_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("AIRLOCK_AGE_JS") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME");
    cache.join("airlock-tests/age-encryption-0.3.1")
}

/// `node tests/interop/age-js.mjs ARGS…` with `stdin` as its input.
fn age_js(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let dir = age_js_dir();
    assert!(
        dir.join("node_modules/age-encryption/package.json").is_file(),
        "age-encryption is not installed in {}: run the suite with `bash tests/run.sh`, which installs it",
        dir.display()
    );
    let mut child = tool("node")
        .arg(root().join("tests/interop/age-js.mjs"))
        .args(args)
        .env("AIRLOCK_AGE_JS", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "age-js {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The exporter key trusted for ghes.example.com, a usage file of 25 users.
fn setup() -> World {
    World::with_sample_usage(25)
}

impl World {
    fn export(&self, out: &str, extra: &[&str]) -> PathBuf {
        export(
            self.dir.path(),
            &self.key,
            &[&self.usage_json()],
            &self.p(out),
            extra,
        )
    }
    /// `airlock keygen --age --post-quantum`: the identity file and the
    /// recipient it printed.
    fn keygen_pq(&self, name: &str) -> (PathBuf, String) {
        let out = airlock()
            .args(["keygen", "--age", "--post-quantum", "--json", "--out"])
            .arg(self.p(name))
            .output()
            .unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["type"], "mlkem768x25519");
        (self.p(name), v["recipient"].as_str().unwrap().to_string())
    }
    /// A hybrid identity made by age-encryption, in an identity file.
    fn keygen_js(&self, name: &str) -> (PathBuf, String) {
        let out = String::from_utf8(age_js(&["keygen"], b"")).unwrap();
        let mut lines = out.lines();
        let (id, recipient) = (lines.next().unwrap(), lines.next().unwrap());
        assert!(id.starts_with("AGE-SECRET-KEY-PQ-1"), "{id}");
        assert!(recipient.starts_with("age1pq1"), "{recipient}");
        let p = self.p(name);
        std::fs::write(&p, format!("# public key: {recipient}\n{id}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        (p, recipient.to_string())
    }
    fn extract(&self, bundle: &Path, identity: &Path) -> PathBuf {
        let out = tempfile::tempdir_in(self.dir.path()).unwrap().keep();
        airlock()
            .arg("extract")
            .arg(bundle)
            .arg("--trust")
            .arg(&self.allowed)
            .arg("--out")
            .arg(&out)
            .arg("--identity")
            .arg(identity)
            .assert()
            .success()
            .stdout(contains("decrypted"));
        out
    }
}

const MEMBER: &str = "payload/license-usage.json.age";

/// Direction 1: airlock encrypts to a recipient made by age-encryption;
/// age-encryption decrypts the bundle's member.
#[test]
fn age_encryption_decrypts_what_airlock_encrypted() {
    let s = setup();
    let (js_id, js_recipient) = s.keygen_js("js_identity.txt");
    let (my_id, my_recipient) = s.keygen_pq("pq_identity.txt");
    // One on the command line, one in a recipients file (age's format).
    std::fs::write(
        s.p("recipients.txt"),
        format!("# importers\n{my_recipient}\n"),
    )
    .unwrap();
    let b = s.export(
        "pq.zip",
        &[
            "--recipient",
            &js_recipient,
            "--recipients-file",
            s.p("recipients.txt").to_str().unwrap(),
        ],
    );
    // Format v2, both recipients signed, whole.
    let m: serde_json::Value = serde_json::from_slice(&unzip_member(&b, "manifest.json")).unwrap();
    assert_eq!(m["version"], 2);
    let listed: Vec<(&str, &str)> = m["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap(),
                r["recipient"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("mlkem768x25519", js_recipient.as_str()),
            ("mlkem768x25519", my_recipient.as_str())
        ]
    );
    let ct = unzip_member(&b, MEMBER);
    assert_eq!(
        age_js(&["decrypt", js_id.to_str().unwrap()], &ct),
        std::fs::read(s.usage_json()).unwrap()
    );
    // age-encryption reads airlock's identity file too.
    assert_eq!(
        age_js(&["decrypt", my_id.to_str().unwrap()], &ct),
        std::fs::read(s.usage_json()).unwrap()
    );
    let out = s.extract(&b, &my_id);
    assert_eq!(
        std::fs::read(out.join("license-usage.json")).unwrap(),
        std::fs::read(s.usage_json()).unwrap()
    );
}

/// Direction 2: age-encryption encrypts to a recipient made by `airlock
/// keygen`; airlock decrypts it (the library's decryption, as verify,
/// extract and import use it).
#[test]
fn airlock_decrypts_what_age_encryption_encrypted() {
    let s = setup();
    let (id, recipient) = s.keygen_pq("pq_identity.txt");
    // The identity file is age-keygen's format: mode 0600, the recipient in
    // a comment; age-encryption derives the same recipient from it.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&id).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&id).unwrap();
    assert!(text.starts_with("# created: "));
    assert!(text.contains(&format!("\n# public key: {recipient}\n")));
    assert_eq!(
        String::from_utf8(age_js(&["recipient", id.to_str().unwrap()], b"")).unwrap(),
        format!("{recipient}\n")
    );

    std::fs::write(s.p("to.txt"), format!("{recipient}\n")).unwrap();
    let plain = std::fs::read(s.usage_json()).unwrap();
    let ct = age_js(&["encrypt", s.p("to.txt").to_str().unwrap()], &plain);
    assert!(ct.starts_with(b"age-encryption.org/v1\n-> mlkem768x25519 "));
    let mut ids = airlock::crypt::Identities::default();
    ids.add_file(&id, &mut || unreachable!("no passphrase"))
        .unwrap();
    let mut got = Vec::new();
    ids.decrypt(&ct[..], airlock::crypt::SCRYPT_MAX_WORK_FACTOR)
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert_eq!(got, plain);
    // Cut short, it fails at the end rather than passing as complete.
    let mut partial = Vec::new();
    let err = ids
        .decrypt(&ct[..ct.len() - 7], airlock::crypt::SCRYPT_MAX_WORK_FACTOR)
        .unwrap()
        .read_to_end(&mut partial)
        .unwrap_err();
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
    ));
}

/// Direction 3: a bundle whose member age-encryption encrypted, signed by
/// airlock's signing code over its digest, verifies at the boundary and
/// extracts byte-identically.
#[test]
fn bundle_with_a_member_encrypted_by_age_encryption_extracts() {
    use airlock::format::manifest::{
        BundleId, Encryption, Fingerprint, FormatName, FormatVersion, HexDigest, Manifest,
        PayloadEntry, PayloadKind, Recipient, Sequence, Source, Timestamp,
    };
    use sha2::Digest;

    let s = setup();
    let (id, recipient) = s.keygen_pq("pq_identity.txt");
    std::fs::write(s.p("to.txt"), format!("{recipient}\n")).unwrap();
    let plain = std::fs::read(s.usage_json()).unwrap();
    let ct = age_js(&["encrypt", s.p("to.txt").to_str().unwrap()], &plain);

    let signer = airlock::keys::load_signer(&s.key, &mut || unreachable!("no passphrase")).unwrap();
    let created = Timestamp::from_system(SystemTime::now() - Duration::from_secs(60));
    let m = Manifest {
        format: FormatName::AirlockBundle,
        version: FormatVersion::V2,
        bundle_id: BundleId::parse(&hex::encode(&sha2::Sha256::digest(&ct)[..16])).unwrap(),
        created,
        expires: created + Duration::from_secs(7 * 24 * 3600),
        tool: airlock::tool_version(),
        source: Source::instance(
            "ghes.example.com",
            Some(airlock::sample::SAMPLE_SERVER_ID.into()),
        ),
        sequence: Sequence {
            key: Fingerprint::parse(&signer.fingerprint()).unwrap(),
            number: 1,
        },
        payload: vec![PayloadEntry {
            name: MEMBER.into(),
            size: ct.len() as u64,
            sha256: HexDigest::from_bytes(&sha2::Sha256::digest(&ct).into()),
            kind: PayloadKind::Usage,
            reference: None,
            encryption: Some(Encryption::Age),
        }],
        recipients: vec![Recipient::MlKem768X25519(recipient.clone())],
    };
    m.check().unwrap();
    let bytes = m.to_bytes();
    let sig = signer
        .sign(airlock::sshsig::BUNDLE_NAMESPACE, &bytes)
        .unwrap();
    let mut w = airlock::format::container::Writer::new(std::io::Cursor::new(Vec::new()));
    w.add_bytes(MEMBER, &ct).unwrap();
    w.add_bytes("manifest.json", &bytes).unwrap();
    w.add_bytes(
        &airlock::format::rules::signature_member_name(&sig),
        sig.to_armored().as_bytes(),
    )
    .unwrap();
    let b = s.p("js.airlock.zip");
    std::fs::write(&b, w.finish().unwrap().into_inner()).unwrap();

    // The boundary check (no identity): signature, digest, header stanzas.
    verify_cmd(&b, &s.allowed)
        .assert()
        .success()
        .stdout(contains("(post-quantum)"))
        .stdout(contains("payload was NOT decrypted"));
    let out = s.extract(&b, &id);
    assert_eq!(
        std::fs::read(out.join("license-usage.json")).unwrap(),
        plain
    );
    assert_eq!(listing(&out), vec!["license-usage.json".to_string()]);
}

/// A bundle encrypted only to a hybrid recipient cannot be opened with an
/// X25519 (or SSH) identity: nothing is written, and the hint says why.
#[test]
fn hybrid_only_bundle_refuses_classical_identities() {
    let s = setup();
    let (_, pq) = s.keygen_pq("pq_identity.txt");
    let b = s.export("pq.zip", &["--recipient", &pq]);
    assert!(airlock()
        .args(["keygen", "--age", "--out"])
        .arg(s.p("x25519.txt"))
        .output()
        .unwrap()
        .status
        .success());
    let ssh = ssh_keygen_key(s.dir.path(), "importer_ssh", "");
    for id in [s.p("x25519.txt"), ssh] {
        let out = s.p("out");
        std::fs::create_dir_all(&out).unwrap();
        airlock()
            .arg("extract")
            .arg(&b)
            .arg("--trust")
            .arg(&s.allowed)
            .arg("--out")
            .arg(&out)
            .arg("--identity")
            .arg(&id)
            .assert()
            .code(9)
            .stderr(contains("AIRLOCK-E-DECRYPT-NO-IDENTITY"))
            .stderr(contains("AGE-SECRET-KEY-PQ-1"));
        assert!(listing(&out).is_empty());
    }
}

/// age's rule: post-quantum and classical recipients are not mixed, on the
/// command line or in a recipients file; nothing is written.
#[test]
fn mixing_post_quantum_and_classical_recipients_is_refused() {
    let s = setup();
    let (_, pq) = s.keygen_pq("pq_identity.txt");
    let x = airlock::crypt::generate_identity("x").1;
    let ssh = read_pub(&root().join("keys/importer_ed25519.pub"));
    std::fs::write(s.p("mixed.txt"), format!("{pq}\n{x}\n")).unwrap();
    for extra in [
        vec!["--recipient", &pq, "--recipient", &x],
        vec!["--recipient", &ssh, "--recipient", &pq],
        vec!["--recipients-file", s.p("mixed.txt").to_str().unwrap()],
    ] {
        airlock()
            .arg("export")
            .arg(s.usage_json())
            .key_out_state(&s.key, s.p("mixed.zip"), s.p("state"))
            .args(&extra)
            .assert()
            .code(2)
            .stderr(contains("AIRLOCK-E-ARGS"))
            .stderr(contains("cannot be"));
        assert!(!s.p("mixed.zip").exists());
    }
    // --post-quantum makes only age identities.
    airlock()
        .args(["keygen", "--post-quantum", "--out"])
        .arg(s.p("k"))
        .assert()
        .code(2);
    assert!(!s.p("k").exists());
}

/// `import --identity` takes an AGE-SECRET-KEY-PQ-1 identity file (here one
/// made by age-encryption), and hands over the byte-identical usage file.
#[test]
fn import_with_a_post_quantum_identity_hands_over_the_usage_file() {
    let s = setup();
    let (js_id, js_recipient) = s.keygen_js("js_identity.txt");
    std::fs::write(s.p("to.txt"), format!("{js_recipient}\n")).unwrap();
    let b = s.export(
        "pq.zip",
        &["--recipients-file", s.p("to.txt").to_str().unwrap()],
    );
    // A named outbox outside the home directory must exist.
    std::fs::create_dir_all(s.p("outbox")).unwrap();
    airlock()
        .arg("import")
        .arg(&b)
        .trust_state(&s.allowed, s.p("importer-state"))
        .arg("--outbox")
        .arg(s.p("outbox"))
        .arg("--identity")
        .arg(&js_id)
        .assert()
        .success();
    let handed: Vec<PathBuf> = std::fs::read_dir(s.p("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with("license-usage.json")
        })
        .collect();
    assert_eq!(handed.len(), 1, "{handed:?}");
    assert_eq!(
        std::fs::read(&handed[0]).unwrap(),
        std::fs::read(s.usage_json()).unwrap()
    );
}
