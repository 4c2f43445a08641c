//! Interoperability with OpenSSH: ssh-keygen verifies airlock's signatures,
//! airlock takes ssh-keygen's keys (with and without passphrase) and
//! signatures.

mod common;

use common::*;

#[test]
fn ssh_keygen_verifies_airlock_signature_and_airlock_takes_ssh_keygen_keys() {
    let d = tempfile::tempdir().unwrap();
    for (name, pass) in [("plain", ""), ("locked", "correct horse battery")] {
        let key = ssh_keygen_key(d.path(), name, pass);
        let usage = sample_usage(d.path());
        let bundle = d.path().join(format!("{name}.airlock.zip"));
        let mut c = airlock();
        c.arg("export")
            .arg(&usage)
            .arg("--key")
            .arg(&key)
            .arg("--out")
            .arg(&bundle)
            .arg("--state-dir")
            .arg(d.path().join("state"));
        if !pass.is_empty() {
            let pf = d.path().join("pass");
            std::fs::write(&pf, format!("{pass}\n")).unwrap();
            c.arg("--key-passphrase-file").arg(&pf);
        }
        c.assert().success();

        let pubkey = read_pub(&d.path().join(format!("{name}.pub")));
        let allowed = allowed_signers(d.path(), "ghes.example.com", &[&pubkey]);
        verify_cmd(&bundle, &allowed).assert().success();

        // The auditor's command from BRIEF §4, verbatim.
        let manifest = unzip_member(&bundle, "manifest.json");
        let member = sig_member(&bundle);
        let sig = d.path().join("sig");
        std::fs::write(&sig, unzip_member(&bundle, &member)).unwrap();
        let mut child = tool("ssh-keygen")
            .args(["-Y", "verify", "-f"])
            .arg(&allowed)
            .args(["-I", "ghes.example.com", "-n", "airlock-bundle", "-s"])
            .arg(&sig)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), &manifest).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ssh-keygen -Y verify refused airlock's signature"
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("Good \"airlock-bundle\" signature"));

        // ssh-keygen refuses it under another principal or namespace, too.
        let st = tool("ssh-keygen")
            .args(["-Y", "verify", "-f"])
            .arg(&allowed)
            .args(["-I", "other.example.com", "-n", "airlock-bundle", "-s"])
            .arg(&sig)
            .stdin(std::fs::File::open(d.path().join("sig")).unwrap())
            .output()
            .unwrap();
        assert!(!st.status.success());
    }
}

#[test]
fn airlock_accepts_a_signature_made_by_ssh_keygen() {
    let d = tempfile::tempdir().unwrap();
    let exporter = key(d.path(), "exporter_ed25519");
    let usage = sample_usage(d.path());
    let bundle = export(
        d.path(),
        &exporter,
        &[&usage],
        &d.path().join("b.airlock.zip"),
        &[],
    );

    // Same key, same bytes: Ed25519 is deterministic, so ssh-keygen's
    // signature must equal airlock's byte for byte.
    let manifest = d.path().join("manifest.json");
    std::fs::write(&manifest, unzip_member(&bundle, "manifest.json")).unwrap();
    let st = tool("ssh-keygen")
        .args(["-Y", "sign", "-q", "-n", "airlock-bundle", "-f"])
        .arg(&exporter)
        .arg(&manifest)
        .status()
        .unwrap();
    assert!(st.success());
    let theirs = std::fs::read(d.path().join("manifest.json.sig")).unwrap();
    assert_eq!(theirs, unzip_member(&bundle, &sig_member(&bundle)));

    // A second signer using ssh-keygen only: attach, then verify with both trusted.
    let cosigner = ssh_keygen_key(d.path(), "cosigner", "");
    std::fs::remove_file(d.path().join("manifest.json.sig")).unwrap();
    let st = tool("ssh-keygen")
        .args(["-Y", "sign", "-q", "-n", "airlock-bundle", "-f"])
        .arg(&cosigner)
        .arg(&manifest)
        .status()
        .unwrap();
    assert!(st.success());
    airlock()
        .arg("sign")
        .arg(&bundle)
        .arg("--signature")
        .arg(d.path().join("manifest.json.sig"))
        .assert()
        .success();
    let allowed = trust_keys(
        d.path(),
        "ghes.example.com",
        &["exporter_ed25519", "cosigner"],
    );
    let out = verify_cmd(&bundle, &allowed).arg("--json").run_ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signers"].as_array().unwrap().len(), 2);

    // A signature in ssh-keygen's default namespace is refused on attach.
    let other = ssh_keygen_key(d.path(), "other", "");
    std::fs::remove_file(d.path().join("manifest.json.sig")).unwrap();
    let st = tool("ssh-keygen")
        .args(["-Y", "sign", "-q", "-n", "file", "-f"])
        .arg(&other)
        .arg(&manifest)
        .status()
        .unwrap();
    assert!(st.success());
    airlock()
        .arg("sign")
        .arg(&bundle)
        .arg("--signature")
        .arg(d.path().join("manifest.json.sig"))
        .assert()
        .code(6)
        .stderr(predicates::str::contains("AIRLOCK-E-SIG-NAMESPACE"));
}

#[test]
fn keygen_keys_work_with_ssh_keygen() {
    let d = tempfile::tempdir().unwrap();
    let k = d.path().join("k");
    let pf = d.path().join("pass");
    std::fs::write(&pf, "s3cret passphrase\n").unwrap();
    let out = airlock()
        .arg("keygen")
        .arg("--out")
        .arg(&k)
        .arg("--passphrase-file")
        .arg(&pf)
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    // ssh-keygen derives the same public key with the passphrase, and prints the same fingerprint.
    let derived = tool("ssh-keygen")
        .args(["-y", "-P", "s3cret passphrase", "-f"])
        .arg(&k)
        .output()
        .unwrap();
    assert!(
        derived.status.success(),
        "ssh-keygen cannot open airlock's encrypted key"
    );
    let pubfile = std::fs::read_to_string(d.path().join("k.pub")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&derived.stdout)
            .split_whitespace()
            .nth(1),
        pubfile.split_whitespace().nth(1)
    );
    let fp = tool("ssh-keygen")
        .arg("-lf")
        .arg(d.path().join("k.pub"))
        .output()
        .unwrap();
    let fp = String::from_utf8(fp.stdout).unwrap();
    let fp = fp.split_whitespace().nth(1).unwrap();
    assert!(
        printed.contains(fp),
        "airlock printed {printed}, ssh-keygen says {fp}"
    );
    // Wrong passphrase is refused by ssh-keygen too: the key really is encrypted.
    let bad = tool("ssh-keygen")
        .args(["-y", "-P", "wrong", "-f"])
        .arg(&k)
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

/// Wrap an SSHSIG blob in OpenSSH's armour (70 columns).
fn armor(blob: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(blob);
    let mut out = String::from("-----BEGIN SSH SIGNATURE-----\n");
    for c in b64.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(c).unwrap());
        out.push('\n');
    }
    out.push_str("-----END SSH SIGNATURE-----\n");
    out.into_bytes()
}

fn dearmor(text: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let s = std::str::from_utf8(text).unwrap();
    let b64: String = s.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn ssh_keygen_accepts(allowed: &std::path::Path, sig: &[u8], message: &[u8]) -> bool {
    let d = tempfile::tempdir().unwrap();
    let s = d.path().join("sig");
    let m = d.path().join("msg");
    std::fs::write(&s, sig).unwrap();
    std::fs::write(&m, message).unwrap();
    ssh_keygen_verify(allowed, &s, &m)
}

/// What the by-hand procedure (docs/verify-by-hand.md) does not catch:
/// ssh-keygen accepts a malleated signature (S + L) and a universal forgery
/// under the small-order identity key; airlock refuses both.
#[test]
fn ssh_keygen_accepts_malleated_and_small_order_forgeries_that_airlock_refuses() {
    let d = tempfile::tempdir().unwrap();
    let key = key(d.path(), "exporter_ed25519");
    let usage = sample_usage(d.path());
    let bundle = export(
        d.path(),
        &key,
        &[usage.as_path()],
        &d.path().join("b.airlock.zip"),
        &[],
    );
    let allowed = trust_keys(d.path(), "ghes.example.com", &["exporter_ed25519"]);
    let manifest = unzip_member(&bundle, "manifest.json");
    let member = sig_member(&bundle);
    let good = unzip_member(&bundle, &member);
    assert!(ssh_keygen_accepts(&allowed, &good, &manifest));

    // S + L: the same signature, malleated.
    let mut blob = dearmor(&good);
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let n = blob.len();
    let mut carry = 0u16;
    for i in 0..32 {
        let v = blob[n - 32 + i] as u16 + L[i] as u16 + carry;
        blob[n - 32 + i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    let malleated = armor(&blob);
    assert!(
        ssh_keygen_accepts(&allowed, &malleated, &manifest),
        "ssh-keygen now refuses S+L: update docs/verify-by-hand.md"
    );
    // The same bundle carrying the malleated signature: airlock refuses it.
    let names = unzip_members(&bundle);
    let mut w = airlock::format::container::Writer::new(std::io::Cursor::new(Vec::new()));
    for name in &names {
        let bytes = if *name == member {
            malleated.clone()
        } else {
            unzip_member(&bundle, name)
        };
        w.add_bytes(name, &bytes).unwrap();
    }
    let forged = d.path().join("forged.airlock.zip");
    std::fs::write(&forged, w.finish().unwrap().into_inner()).unwrap();
    verify_cmd(&forged, &allowed)
        .assert()
        .code(6)
        .stderr(predicates::str::contains("AIRLOCK-E-SIG-INVALID"));

    // The identity point as a public key: R = identity, S = 0 "verifies"
    // any message under OpenSSH's cofactorless check.
    let put = |v: &mut Vec<u8>, b: &[u8]| {
        v.extend_from_slice(&(b.len() as u32).to_be_bytes());
        v.extend_from_slice(b);
    };
    let mut point = [0u8; 32];
    point[0] = 1;
    let mut pubblob = Vec::new();
    put(&mut pubblob, b"ssh-ed25519");
    put(&mut pubblob, &point);
    let mut rs = point.to_vec();
    rs.extend_from_slice(&[0u8; 32]);
    let mut sigblob = Vec::new();
    put(&mut sigblob, b"ssh-ed25519");
    put(&mut sigblob, &rs);
    let mut sshsig = b"SSHSIG".to_vec();
    sshsig.extend_from_slice(&1u32.to_be_bytes());
    put(&mut sshsig, &pubblob);
    put(&mut sshsig, b"airlock-bundle");
    put(&mut sshsig, b"");
    put(&mut sshsig, b"sha512");
    put(&mut sshsig, &sigblob);
    use base64::Engine;
    let line = format!(
        "ssh-ed25519 {}",
        base64::engine::general_purpose::STANDARD.encode(&pubblob)
    );
    let weak = allowed_signers(d.path(), "ghes.example.com", &[&line]);
    assert!(
        ssh_keygen_accepts(&weak, &armor(&sshsig), b"any manifest at all"),
        "ssh-keygen now refuses the identity key: update docs/verify-by-hand.md"
    );
    // airlock refuses the same forgery: the signature does not verify.
    let forged = armor(&sshsig);
    let verdict = airlock::sshsig::SshSig::from_armored(&forged)
        .and_then(|s| s.verify(b"any manifest at all"));
    assert!(
        verdict.is_err(),
        "airlock accepted the identity-key forgery"
    );
}
