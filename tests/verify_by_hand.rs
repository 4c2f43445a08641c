//! Runs the script of docs/verify-by-hand.md, exactly as written, on a fresh
//! bundle (it must pass) and on tampered ones (it must fail).

mod common;

use common::*;

fn script() -> String {
    let doc = std::fs::read_to_string(root().join("docs/verify-by-hand.md")).unwrap();
    let start = doc.find("<!-- verify-by-hand:begin -->").unwrap();
    let end = doc.find("<!-- verify-by-hand:end -->").unwrap();
    let block = &doc[start..end];
    let code_start = block.find("```bash\n").unwrap() + 8;
    let code_end = block.rfind("```").unwrap();
    block[code_start..code_end].to_string()
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
    let d = tempfile::tempdir().unwrap();
    let k = key(d.path(), "exporter_ed25519");
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
    let allowed = allowed_signers(
        d.path(),
        "ghes.example.com",
        &[&read_pub(&d.path().join("exporter_ed25519.pub"))],
    );

    let out = run(&b, &allowed);
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
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
