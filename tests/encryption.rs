//! Encryption with age, end to end through the binary, against the real
//! `age` and `age-keygen` and `ssh-keygen`.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use predicates::str::contains;

/// The exporter key trusted for ghes.example.com, a usage file of 25 users.
fn setup() -> World {
    World::with_sample_usage(25)
}

impl World {
    fn export(&self, out: &str, extra: &[&str]) -> PathBuf {
        let b = self.p(out);
        airlock()
            .arg("export")
            .arg(self.usage_json())
            .key_out_state(&self.key, &b, self.p("state"))
            .args(extra)
            .assert()
            .success();
        b
    }
    fn extract_ok(&self, b: &Path, extra: &[&str]) {
        let out = tempfile::tempdir_in(self.dir.path()).unwrap().keep();
        airlock()
            .arg("extract")
            .arg(b)
            .arg("--trust")
            .arg(&self.allowed)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .assert()
            .success()
            .stdout(contains("decrypted"));
        assert_eq!(
            std::fs::read(out.join("license-usage.json")).unwrap(),
            std::fs::read(self.usage_json()).unwrap()
        );
        assert_eq!(listing(&out), vec!["license-usage.json".to_string()]);
    }
    fn member(&self, b: &Path) -> Vec<u8> {
        let o = tool("unzip")
            .arg("-p")
            .arg(b)
            .arg("payload/license-usage.json.age")
            .output()
            .unwrap();
        assert!(o.status.success());
        o.stdout
    }
}

fn age_decrypt(ct: &[u8], identity: &Path) -> Vec<u8> {
    use std::io::Write;
    let mut child = tool("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(ct).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "age -d failed");
    out.stdout
}

#[test]
fn x25519_round_trip_with_airlock_and_age_keygen_identities() {
    let s = setup();
    // One identity from airlock keygen --age, one from age-keygen.
    let out = airlock()
        .arg("keygen")
        .arg("--age")
        .arg("--out")
        .arg(s.p("mine.txt"))
        .output()
        .unwrap();
    assert!(out.status.success());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(s.p("mine.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let mine = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("recipient  "))
        .unwrap()
        .to_string();
    assert!(tool("age-keygen")
        .arg("-o")
        .arg(s.p("theirs.txt"))
        .output()
        .unwrap()
        .status
        .success());
    let theirs = String::from_utf8(
        tool("age-keygen")
            .arg("-y")
            .arg(s.p("theirs.txt"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    // Recipients from a file in age's format, and from the command line.
    std::fs::write(
        s.p("recipients.txt"),
        format!("# the importers\n{theirs}\n"),
    )
    .unwrap();
    let b = s.export(
        "x.zip",
        &[
            "--recipient",
            &mine,
            "--recipients-file",
            s.p("recipients.txt").to_str().unwrap(),
        ],
    );

    s.extract_ok(&b, &["--identity", s.p("mine.txt").to_str().unwrap()]);
    s.extract_ok(&b, &["--identity", s.p("theirs.txt").to_str().unwrap()]);
    // The member is a standard age file for both identities.
    let ct = s.member(&b);
    assert_eq!(
        age_decrypt(&ct, &s.p("mine.txt")),
        std::fs::read(s.usage_json()).unwrap()
    );
    assert_eq!(
        age_decrypt(&ct, &s.p("theirs.txt")),
        std::fs::read(s.usage_json()).unwrap()
    );
}

#[test]
fn ssh_ed25519_recipient_round_trip() {
    let s = setup();
    let k = s.p("importer");
    assert!(tool("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "importer", "-f"])
        .arg(&k)
        .status()
        .unwrap()
        .success());
    let pubkey = read_pub(&s.p("importer.pub"));
    let b = s.export("s.zip", &["--recipient", &pubkey]);
    s.extract_ok(&b, &["--identity", k.to_str().unwrap()]);
    assert_eq!(
        age_decrypt(&s.member(&b), &k),
        std::fs::read(s.usage_json()).unwrap()
    );

    // A passphrase-protected OpenSSH identity works with --key-passphrase-file.
    let k2 = s.p("importer2");
    assert!(tool("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "hunter22", "-f"])
        .arg(&k2)
        .status()
        .unwrap()
        .success());
    std::fs::write(s.p("kp"), "hunter22\n").unwrap();
    let b2 = s.export("s2.zip", &["--recipient", &read_pub(&s.p("importer2.pub"))]);
    s.extract_ok(
        &b2,
        &[
            "--identity",
            k2.to_str().unwrap(),
            "--key-passphrase-file",
            s.p("kp").to_str().unwrap(),
        ],
    );
}

#[test]
fn passphrase_round_trip_and_wrong_passphrase() {
    let s = setup();
    std::fs::write(s.p("pw"), "correct horse battery staple\n").unwrap();
    let b = s.export("p.zip", &["--passphrase-file", s.p("pw").to_str().unwrap()]);
    // The work factor is explicit and signed.
    let inspect = airlock()
        .arg("inspect")
        .arg(&b)
        .arg("--json")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(
        v["inspection"]["manifest"]["recipients"][0]["type"],
        "scrypt"
    );
    assert_eq!(
        v["inspection"]["manifest"]["recipients"][0]["work_factor"],
        airlock::crypt::SCRYPT_WORK_FACTOR
    );
    s.extract_ok(&b, &["--passphrase-file", s.p("pw").to_str().unwrap()]);

    std::fs::write(s.p("bad"), "incorrect\n").unwrap();
    let out = s.p("wrong");
    std::fs::create_dir(&out).unwrap();
    airlock()
        .arg("extract")
        .arg(&b)
        .arg("--trust")
        .arg(&s.allowed)
        .arg("--out")
        .arg(&out)
        .arg("--passphrase-file")
        .arg(s.p("bad"))
        .fails(9, "AIRLOCK-E-DECRYPT-FAILED");
    assert!(listing(&out).is_empty());
    // A passphrase cannot be mixed with recipients.
    airlock()
        .arg("export")
        .arg(s.usage_json())
        .key_out_state(&s.key, s.p("mix.zip"), s.p("state"))
        .arg("--passphrase-file")
        .arg(s.p("pw"))
        .arg("--recipient")
        .arg(airlock::crypt::generate_identity("x").1)
        .assert()
        .code(2);
    assert!(!s.p("mix.zip").exists());
}

#[test]
fn boundary_check_without_identity_and_every_ciphertext_byte_matters() {
    let s = setup();
    let (_, r) = airlock::crypt::generate_identity("x");
    let b = s.export("b.zip", &["--recipient", &r]);
    verify_cmd(&b, &s.allowed)
        .assert()
        .success()
        .stdout(contains("payload was NOT decrypted"))
        .stdout(contains(format!("encrypted to {r}")));
    let out = verify_cmd(&b, &s.allowed).arg("--json").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["payload_decrypted"], false);
    assert_eq!(v["payload"][0]["validated"], false);

    // Any byte changed in the ciphertext member fails the boundary check.
    let bytes = std::fs::read(&b).unwrap();
    let ct = s.member(&b);
    let start = bytes
        .windows(ct.len())
        .position(|w| w == ct.as_slice())
        .unwrap();
    let trust = airlock::trust::TrustStore::load(&s.allowed, None).unwrap();
    let opts = airlock::verify::VerifyOptions {
        progress: airlock::progress::Progress::none(),
        trust: &trust,
        now: airlock::verify::Clock::System,
        skew: airlock::verify::DEFAULT_SKEW,
        identities: None,
        require_signers: 1,
    };
    let m = s.p("m.zip");
    airlock::verify::verify_file(&b, &opts).unwrap();
    for i in start..start + ct.len() {
        let mut x = bytes.clone();
        x[i] ^= 0x04;
        std::fs::write(&m, &x).unwrap();
        assert!(
            airlock::verify::verify_file(&m, &opts).is_err(),
            "ciphertext byte {} went unnoticed",
            i - start
        );
    }
}

#[test]
fn extract_needs_an_identity_and_refuses_to_overwrite() {
    let s = setup();
    let (text, r) = airlock::crypt::generate_identity("x");
    std::fs::write(s.p("id.txt"), text.as_bytes()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.p("id.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let b = s.export("b.zip", &["--recipient", &r]);
    let out = s.p("o");
    std::fs::create_dir(&out).unwrap();
    airlock()
        .arg("extract")
        .arg(&b)
        .arg("--trust")
        .arg(&s.allowed)
        .arg("--out")
        .arg(&out)
        .fails(9, "AIRLOCK-E-DECRYPT-NO-IDENTITY");
    assert!(listing(&out).is_empty());
    std::fs::write(out.join("license-usage.json"), "keep me").unwrap();
    airlock()
        .arg("extract")
        .arg(&b)
        .arg("--trust")
        .arg(&s.allowed)
        .arg("--out")
        .arg(&out)
        .arg("-i")
        .arg(s.p("id.txt"))
        .fails(2, "AIRLOCK-E-OUTPUT-EXISTS");
    assert_eq!(
        std::fs::read(out.join("license-usage.json")).unwrap(),
        b"keep me"
    );
    // Identity files readable by others are refused like private keys.
    std::fs::set_permissions(s.p("id.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
    verify_cmd(&b, &s.allowed)
        .arg("-i")
        .arg(s.p("id.txt"))
        .fails(4, "AIRLOCK-E-KEY-PERMISSIONS");
}

#[test]
fn two_recipient_golden_decrypts_with_either_identity() {
    let d = tempfile::tempdir().unwrap();
    let g = root().join("fixtures/bundles/golden_enc_two_recipients.airlock.zip");
    for id in ["age_identity.txt", "importer_ed25519"] {
        let k = key(d.path(), id);
        verify_cmd(&g, root().join("keys/allowed_signers"))
            .arg("--at")
            .arg(FIXTURE_TIME)
            .arg("-i")
            .arg(&k)
            .assert()
            .success()
            .stdout(contains("decrypted to its end"));
    }
}
