//! Runs the script of docs/verify-by-hand.md, exactly as written, on a fresh
//! bundle (it must pass) and on tampered ones (it must fail).

mod common;

use common::*;

fn script() -> String {
    script_named("verify-by-hand")
}

/// The bash block between `<!-- NAME:begin -->` and `<!-- NAME:end -->`.
fn script_named(name: &str) -> String {
    let doc = std::fs::read_to_string(root().join("docs/verify-by-hand.md")).unwrap();
    let start = doc.find(&format!("<!-- {name}:begin -->")).unwrap();
    let end = doc.find(&format!("<!-- {name}:end -->")).unwrap();
    let block = &doc[start..end];
    let code_start = block.find("```bash\n").unwrap() + 8;
    let code_end = block.rfind("```").unwrap();
    block[code_start..code_end].to_string()
}

/// The script's standard output, after asserting it passed (the message
/// shows both its outputs).
fn passed(out: &std::process::Output) -> std::borrow::Cow<'_, str> {
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
}

fn run(bundle: &std::path::Path, allowed: &std::path::Path) -> std::process::Output {
    for t in ["unzip", "ssh-keygen", "sha256sum"] {
        tool(t);
    }
    std::process::Command::new("bash")
        .arg("-c")
        .arg(script())
        .env("BUNDLE", bundle)
        .env("ALLOWED_SIGNERS", allowed)
        .env("HOST", "ghes.example.com")
        .output()
        .unwrap()
}

#[test]
fn the_documented_steps_pass_on_a_fresh_bundle_and_fail_on_tampering() {
    let (d, k) = keyed_dir();
    let u = sample_usage(d.path());
    let notes = d.path().join("notes.txt");
    std::fs::write(&notes, "second payload file\n").unwrap();
    let b = export(
        d.path(),
        &k,
        &[&u, &notes],
        &d.path().join("b.airlock.zip"),
        &[],
    );
    let allowed = trust_keys(d.path(), "ghes.example.com", &["exporter_ed25519"]);

    let out = run(&b, &allowed);
    let stdout = passed(&out);
    assert!(stdout.contains("BY-HAND CHECK PASSED"));
    assert!(stdout.contains("payload/license-usage.json: OK"));
    assert!(stdout.contains("payload/notes.txt: OK"));

    // The same steps catch a tampered payload, manifest and an unlisted member.
    for fixture in [
        "fail_tampered_payload",
        "fail_tampered_manifest",
        "fail_unlisted_member",
        "fail_untrusted_key",
        "fail_wrong_namespace",
    ] {
        let f = root().join(format!("fixtures/bundles/{fixture}.airlock.zip"));
        let out = run(&f, &root().join("keys/allowed_signers"));
        assert!(!out.status.success(), "{fixture} passed the by-hand check");
    }
    // And the golden ones pass (the window is checked at creation time).
    let out = run(
        &root().join("fixtures/bundles/golden_usage_and_file.airlock.zip"),
        &root().join("keys/allowed_signers"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The licence script of docs/verify-by-hand.md (decision 81).
fn run_licence(bundle: &std::path::Path, ghl: Option<&std::path::Path>) -> std::process::Output {
    for t in ["unzip", "ssh-keygen", "sha256sum"] {
        tool(t);
    }
    let mut c = std::process::Command::new("bash");
    c.arg("-c")
        .arg(script_named("verify-by-hand-licence"))
        .env("BUNDLE", bundle)
        .env("ALLOWED_SIGNERS", root().join("keys/allowed_signers"))
        .env("ENTERPRISE", "octo-corp");
    if let Some(g) = ghl {
        c.env("GHL", g);
    }
    c.output().unwrap()
}

#[test]
fn the_documented_licence_steps_pass_on_the_golden_licence_and_fail_on_the_wrong_ones() {
    let golden = root().join("fixtures/bundles/golden_licence.airlock.zip");
    let ghl = root().join("fixtures/licence/github-enterprise-TEST123.ghl");
    let out = run_licence(&golden, Some(&ghl));
    let stdout = passed(&out);
    assert!(stdout.contains("BY-HAND LICENCE CHECK PASSED"));
    assert!(stdout.contains("licence reference TEST123 for octo-corp"));

    // Another licence file than the one signed.
    let d = tempfile::tempdir().unwrap();
    let other = d.path().join("github-enterprise-TEST123.ghl");
    std::fs::write(&other, airlock::sample::licence("OTHER1")).unwrap();
    assert!(!run_licence(&golden, Some(&other)).status.success());
    // The fail fixtures, and a usage bundle.
    for fixture in [
        "fail_licence_name_mismatch",
        "fail_licence_signed_by_exporter",
        "fail_licence_version_1",
        "golden_usage_and_file",
    ] {
        let f = root().join(format!("fixtures/bundles/{fixture}.airlock.zip"));
        let out = run_licence(&f, None);
        assert!(!out.status.success(), "{fixture} passed the licence check");
    }
    // A payload byte flipped.
    let mut bytes = std::fs::read(&golden).unwrap();
    bytes[200] ^= 1;
    let tampered = d.path().join("tampered.airlock.zip");
    std::fs::write(&tampered, bytes).unwrap();
    assert!(!run_licence(&tampered, None).status.success());
    // And the usage script refuses a licence bundle, whatever HOST says.
    for host in ["ghes.example.com", "octo-corp"] {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(script())
            .env("BUNDLE", &golden)
            .env("ALLOWED_SIGNERS", root().join("keys/allowed_signers"))
            .env("HOST", host)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "usage script passed a licence for {host}"
        );
    }
}
