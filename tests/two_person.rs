//! Two-person rule (co-signing, --require-signers), signing through a real
//! ssh-agent, and the key rotation runbook of docs/key-management.md.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::*;
use predicates::str::contains;

fn ssh_key(dir: &Path, name: &str) -> PathBuf {
    ssh_keygen_key(dir, name, "")
}

fn export(dir: &Path, key: &Path, out: &str, epoch: u64, extra: &[&str]) -> PathBuf {
    let u = dir.join("license-usage.json");
    if !u.exists() {
        sample_usage_clear(&u, 3);
    }
    let b = dir.join(out);
    airlock()
        .arg("export")
        .arg(&u)
        .key_out_state(key, &b, dir.join("state"))
        .args(extra)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .arg("--reproducible")
        .assert()
        .success();
    b
}

fn at(epoch: u64) -> String {
    (epoch + 60).to_string()
}

const T: u64 = 1_793_491_200; // 2026-11-01T00:00:00Z

#[test]
fn two_of_two_signers() {
    let d = tempfile::tempdir().unwrap();
    let a = ssh_key(d.path(), "alice");
    let b = ssh_key(d.path(), "bob");
    let allowed = trust_keys(d.path(), "ghes.example.com", &["alice", "bob"]);
    let bundle = export(d.path(), &a, "x.zip", T, &[]);
    let verify = |n: &str| {
        let mut c = airlock();
        c.arg("verify")
            .arg(&bundle)
            .arg("--trust")
            .arg(&allowed)
            .arg("--at")
            .arg(at(T))
            .arg("--require-signers")
            .arg(n);
        c
    };
    // One of two required signers: refused.
    verify("2").fails(6, "AIRLOCK-E-SIG-THRESHOLD");
    verify("1").assert().success();
    // The same key signing again is refused and does not count twice.
    airlock()
        .arg("sign")
        .arg(&bundle)
        .arg("--key")
        .arg(&a)
        .fails(2, "already signed");
    verify("2").assert().code(6);
    // By both: accepted; inspect lists both signatures.
    airlock()
        .arg("sign")
        .arg(&bundle)
        .arg("--key")
        .arg(&b)
        .assert()
        .success();
    verify("2").assert().success();
    let out = airlock()
        .arg("inspect")
        .arg(&bundle)
        .arg("--json")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["inspection"]["signatures"].as_array().unwrap().len(), 2);
    // ssh-keygen accepts each signature.
    std::fs::write(
        d.path().join("m.json"),
        unzip_member(&bundle, "manifest.json"),
    )
    .unwrap();
    for m in unzip_members(&bundle)
        .iter()
        .filter(|l| l.starts_with("signatures/"))
    {
        std::fs::write(d.path().join("s.sig"), unzip_member(&bundle, m)).unwrap();
        assert!(ssh_keygen_verify(
            &allowed,
            &d.path().join("s.sig"),
            &d.path().join("m.json")
        ));
    }
    // A revoked co-signer counts zero.
    std::fs::write(
        d.path().join("revoked"),
        read_pub(&d.path().join("bob.pub")),
    )
    .unwrap();
    verify("2")
        .arg("--revoked")
        .arg(d.path().join("revoked"))
        .fails(6, "AIRLOCK-E-SIG-THRESHOLD");
    // An untrusted co-signer counts zero too.
    let allowed_a = allowed_signers(
        &d.path().join(""),
        "ghes.example.com",
        &[&read_pub(&d.path().join("alice.pub"))],
    );
    verify_cmd(&bundle, &allowed_a)
        .arg("--at")
        .arg(at(T))
        .arg("--require-signers")
        .arg("2")
        .assert()
        .code(6);
}

#[test]
fn one_key_twice_under_another_name_is_refused() {
    // Build by hand: alice's signature filed a second time under bob's name.
    use airlock::format::container::Writer;
    let d = tempfile::tempdir().unwrap();
    let a = ssh_key(d.path(), "alice");
    let b = ssh_key(d.path(), "bob");
    let allowed = trust_keys(d.path(), "ghes.example.com", &["alice", "bob"]);
    let bundle = export(d.path(), &a, "x.zip", T, &[]);
    let get = |m: &str| unzip_member(&bundle, m);
    let sig_member = sig_member(&bundle);
    let bob = airlock::keys::load_public(&d.path().join("bob.pub")).unwrap();
    let bob_name = format!("signatures/{}.sig", bob.id_hex());
    let mut sigs = vec![
        (sig_member.clone(), get(&sig_member)),
        (bob_name, get(&sig_member)),
    ];
    sigs.sort();
    let mut w = Writer::new(std::io::Cursor::new(Vec::new()));
    w.add_bytes(
        "payload/license-usage.json",
        &get("payload/license-usage.json"),
    )
    .unwrap();
    w.add_bytes("manifest.json", &get("manifest.json")).unwrap();
    for (n, s) in &sigs {
        w.add_bytes(n, s).unwrap();
    }
    std::fs::write(d.path().join("dup.zip"), w.finish().unwrap().into_inner()).unwrap();
    let _ = b;
    verify_cmd(d.path().join("dup.zip"), &allowed)
        .arg("--at")
        .arg(at(T))
        .arg("--require-signers")
        .arg("2")
        .fails(6, "AIRLOCK-E-SIG-INVALID");
}

struct Agent {
    child: std::process::Child,
    sock: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent(dir: &Path) -> Agent {
    let sock = dir.join("agent.sock");
    let child = tool("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(sock.exists(), "ssh-agent did not start");
    Agent { child, sock }
}

#[test]
fn signing_through_a_real_ssh_agent() {
    let d = tempfile::tempdir().unwrap();
    let ag = agent(d.path());
    let k = ssh_key(d.path(), "token");
    let st = tool("ssh-add")
        .arg(&k)
        .env("SSH_AUTH_SOCK", &ag.sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    // The private key is gone from disk: only the agent holds it.
    std::fs::remove_file(&k).unwrap();
    let allowed = trust_keys(d.path(), "ghes.example.com", &["token"]);
    let u = d.path().join("license-usage.json");
    sample_usage_clear(&u, 3);
    let b = d.path().join("b.zip");
    airlock()
        .arg("export")
        .arg(&u)
        .arg("--agent")
        .key_out_state(d.path().join("token.pub"), &b, d.path().join("state"))
        .env("SSH_AUTH_SOCK", &ag.sock)
        .assert()
        .success();
    verify_cmd(&b, &allowed).assert().success();
    std::fs::write(d.path().join("s.sig"), unzip_member(&b, &sig_member(&b))).unwrap();
    std::fs::write(d.path().join("m.json"), unzip_member(&b, "manifest.json")).unwrap();
    let st = ssh_keygen_verify(&allowed, &d.path().join("s.sig"), &d.path().join("m.json"));
    assert!(st, "ssh-keygen refused the agent-made signature");

    // Co-signing through the agent, too.
    let k2 = ssh_key(d.path(), "second");
    tool("ssh-add")
        .arg(&k2)
        .env("SSH_AUTH_SOCK", &ag.sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    airlock()
        .arg("sign")
        .arg(&b)
        .arg("--agent")
        .arg("--key")
        .arg(d.path().join("second.pub"))
        .env("SSH_AUTH_SOCK", &ag.sock)
        .assert()
        .success();
    // A key the agent does not hold: a clear error.
    let k3 = ssh_key(d.path(), "absent");
    let _ = k3;
    airlock()
        .arg("sign")
        .arg(&b)
        .arg("--agent")
        .arg("--key")
        .arg(d.path().join("absent.pub"))
        .env("SSH_AUTH_SOCK", &ag.sock)
        .fails(4, "AIRLOCK-E-AGENT");
    // No agent at all.
    airlock()
        .arg("export")
        .arg(&u)
        .arg("--agent")
        .key_out_state(
            d.path().join("token.pub"),
            d.path().join("c.zip"),
            d.path().join("state"),
        )
        .env_remove("SSH_AUTH_SOCK")
        .fails(4, "SSH_AUTH_SOCK");
}

/// docs/key-management.md, "Rotation" and "Compromise", step by step.
#[test]
fn key_rotation_runbook() {
    let d = tempfile::tempdir().unwrap();
    let old = ssh_key(d.path(), "old");
    let new = ssh_key(d.path(), "new");
    // Step 1-2: the new key is trusted from 2026-11-10; the old one until 2026-11-20 (overlap).
    let trust = d.path().join("allowed_signers");
    let write_trust = |extra_old: &str| {
        std::fs::write(&trust, format!(
            "ghes.example.com namespaces=\"airlock-bundle\"{extra_old} {}\nghes.example.com namespaces=\"airlock-bundle\",valid-after=\"20261110Z\" {}\n",
            read_pub(&d.path().join("old.pub")), read_pub(&d.path().join("new.pub"))
        )).unwrap();
    };
    write_trust("");
    let day = 86_400;
    let verify = |b: &Path, t: u64| {
        let mut c = airlock();
        c.arg("verify")
            .arg(b)
            .arg("--trust")
            .arg(&trust)
            .arg("--at")
            .arg(at(t));
        c
    };
    let old_early = export(d.path(), &old, "old-early.zip", T + 5 * day, &[]);
    let new_early = export(d.path(), &new, "new-early.zip", T + 5 * day, &[]);
    verify(&old_early, T + 5 * day).assert().success();
    verify(&new_early, T + 5 * day).fails(6, "AIRLOCK-E-SIG-WINDOW");
    // Overlap: both keys work.
    let old_overlap = export(d.path(), &old, "old-overlap.zip", T + 15 * day, &[]);
    let new_overlap = export(d.path(), &new, "new-overlap.zip", T + 15 * day, &[]);
    verify(&old_overlap, T + 15 * day).assert().success();
    verify(&new_overlap, T + 15 * day).assert().success();
    // Step 3: retire the old key.
    write_trust(",valid-before=\"20261120Z\"");
    let old_late = export(d.path(), &old, "old-late.zip", T + 25 * day, &[]);
    verify(&old_late, T + 25 * day).fails(6, "AIRLOCK-E-SIG-WINDOW");
    // Bundles the old key made while in service still verify, even checked later.
    verify(&old_overlap, T + 16 * day).assert().success();
    verify(&old_early, T + 6 * day).assert().success();
    // Compromise: revoke; nothing signed by the old key verifies any more.
    std::fs::write(
        d.path().join("revoked"),
        read_pub(&d.path().join("old.pub")) + "\n",
    )
    .unwrap();
    for b in [&old_early, &old_overlap] {
        verify(b, T + 16 * day)
            .arg("--revoked")
            .arg(d.path().join("revoked"))
            .fails(6, "AIRLOCK-E-SIG-REVOKED");
    }
    verify(&new_overlap, T + 16 * day)
        .arg("--revoked")
        .arg(d.path().join("revoked"))
        .assert()
        .success();
}

/// A FIDO (sk-ssh-ed25519) co-signature, made here by a software stand-in for
/// the token: airlock and ssh-keygen both accept it with the user-presence
/// flag, and both refuse it without.
#[test]
fn fido_signatures_verify_like_ssh_keygen() {
    use airlock::sshsig::{
        signed_data, sk_signed, HashAlg, PublicKey, SkInfo, SshSig, BUNDLE_NAMESPACE,
        SK_USER_PRESENT,
    };
    use ed25519_dalek::Signer as _;
    let d = tempfile::tempdir().unwrap();
    let a = ssh_key(d.path(), "alice");
    let bundle = export(d.path(), &a, "x.zip", T, &[]);
    let manifest = unzip_member(&bundle, "manifest.json");
    std::fs::write(d.path().join("m.json"), &manifest).unwrap();
    let token = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let pk = PublicKey {
        key: token.verifying_key().to_bytes(),
        application: Some("ssh:".into()),
    };
    let make = |flags: u8| {
        let sk = SkInfo {
            flags,
            counter: 1234,
        };
        let data = signed_data(BUNDLE_NAMESPACE, HashAlg::Sha512, &manifest);
        let sig = token.sign(&sk_signed("ssh:", sk, &data));
        SshSig {
            public_key: pk.clone(),
            namespace: BUNDLE_NAMESPACE.into(),
            hash_alg: HashAlg::Sha512,
            signature: sig.to_bytes(),
            sk: Some(sk),
        }
    };
    let lines = format!(
        "ghes.example.com namespaces=\"airlock-bundle\" {}\nghes.example.com namespaces=\"airlock-bundle\" {}\n",
        read_pub(&d.path().join("alice.pub")),
        pk.to_openssh()
    );
    let allowed = d.path().join("allowed_signers");
    std::fs::write(&allowed, &lines).unwrap();
    let ssh_verify = |sig: &SshSig, allowed: &Path| {
        std::fs::write(d.path().join("sk.sig"), sig.to_armored()).unwrap();
        ssh_keygen_verify(allowed, &d.path().join("sk.sig"), &d.path().join("m.json"))
    };
    // With user presence: both accept.
    let good = make(SK_USER_PRESENT);
    assert!(
        ssh_verify(&good, &allowed),
        "ssh-keygen refused a FIDO signature with user presence"
    );
    // Without: airlock refuses it. (ssh-keygen -Y verify of OpenSSH 9.2 does
    // not check the flag; printed for the record, see docs/key-management.md.)
    let lazy = make(0);
    eprintln!(
        "ssh-keygen on a no-touch FIDO signature: {}",
        ssh_verify(&lazy, &allowed)
    );
    std::fs::write(d.path().join("lazy.sig"), lazy.to_armored()).unwrap();
    let copy = d.path().join("lazy.zip");
    std::fs::copy(&bundle, &copy).unwrap();
    airlock()
        .arg("sign")
        .arg(&copy)
        .arg("--signature")
        .arg(d.path().join("lazy.sig"))
        .assert()
        .success();
    verify_cmd(&copy, &allowed)
        .arg("--at")
        .arg(at(T))
        .arg("--require-signers")
        .arg("2")
        .assert()
        .code(6)
        .stderr(contains("AIRLOCK-E-SIG-THRESHOLD"))
        .stderr(contains("AIRLOCK-E-SIG-NO-PRESENCE"));
    // airlock's allowed_signers takes only what ssh-keygen takes: there is no
    // option to waive presence (ssh-keygen rejects unknown options too).
    let relaxed = d.path().join("relaxed");
    std::fs::write(
        &relaxed,
        lines.replace(
            "namespaces=\"airlock-bundle\" sk-",
            "namespaces=\"airlock-bundle\",no-touch-required sk-",
        ),
    )
    .unwrap();
    eprintln!(
        "ssh-keygen with no-touch-required in allowed_signers: {}",
        ssh_verify(&lazy, &relaxed)
    );
    verify_cmd(&copy, &relaxed)
        .arg("--at")
        .arg(at(T))
        .fails(6, "AIRLOCK-E-TRUST-FILE");

    std::fs::write(d.path().join("good.sig"), good.to_armored()).unwrap();
    airlock()
        .arg("sign")
        .arg(&bundle)
        .arg("--signature")
        .arg(d.path().join("good.sig"))
        .assert()
        .success();
    verify_cmd(&bundle, &allowed)
        .arg("--at")
        .arg(at(T))
        .arg("--require-signers")
        .arg("2")
        .assert()
        .success();
}
