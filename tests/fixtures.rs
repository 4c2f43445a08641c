//! Golden bundles keep verifying (and decrypting, and extracting
//! byte-identically); every fail_* bundle is rejected with its expected code
//! and exit code by `verify`, `extract` and `import`, and nothing is written
//! or handed over.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn expectations() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/expectations.json")).unwrap(),
    )
    .unwrap()
}

/// Arguments for the identity or passphrase a fixture names. Identity files
/// are copied to `tmp` with mode 0600, as git keeps no modes.
fn secret_args(case: &serde_json::Value, tmp: &Path) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(i) = case["identity"].as_str() {
        let name = Path::new(i).file_name().unwrap().to_str().unwrap();
        let p = key(tmp, name);
        args.extend(["--identity".to_string(), p.display().to_string()]);
    }
    if let Some(p) = case["passphrase_file"].as_str() {
        args.extend([
            "--passphrase-file".to_string(),
            root().join(p).display().to_string(),
        ]);
    }
    args
}

fn base(cmd: &str, file: &Path, at: &str) -> assert_cmd::Command {
    let mut c = airlock();
    c.arg(cmd)
        .arg(file)
        .arg("--trust")
        .arg(root().join("keys/allowed_signers"))
        .arg("--revoked")
        .arg(root().join("keys/revoked_keys"));
    if cmd == "verify" {
        c.arg("--at").arg(at);
    }
    c.arg("--json");
    c
}

/// `import FILE` (as [`base`]) from `cwd` with `extra` arguments, into the
/// state directory `state` (also the home) and `outbox`.
fn import_into(
    file: &Path,
    cwd: &Path,
    extra: &[String],
    state: &Path,
    outbox: &Path,
) -> std::process::Output {
    base("import", file, "")
        .current_dir(cwd)
        .args(extra)
        .arg("--state-dir")
        .arg(state)
        .arg("--outbox")
        .arg(outbox)
        .env("HOME", state)
        .output()
        .unwrap()
}

fn fixture(case: &serde_json::Value) -> PathBuf {
    root().join("fixtures").join(case["file"].as_str().unwrap())
}

#[test]
fn golden_bundles_verify_at_their_creation_time() {
    let e = expectations();
    let golden = e["golden"].as_array().unwrap();
    assert!(golden.len() >= 7);
    let tmp = tempfile::tempdir().unwrap();
    for g in golden {
        let file = fixture(g);
        let out = base("verify", &file, g["at"].as_str().unwrap())
            .args(secret_args(g, tmp.path()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["ok"], true);
        if g["kind"] == "licence" {
            golden_licence(g, &v);
            continue;
        }
        assert_eq!(v["kind"], "usage");
        assert_eq!(v["source"]["host_name"], "ghes.example.com");
        assert_eq!(
            v["payload_decrypted"],
            true,
            "{}: not decrypted",
            file.display()
        );
        // Plaintext identical to the sample it was made from.
        if let Some(pt) = g["plaintext"].as_str() {
            let want = std::fs::read(root().join("fixtures").join(pt)).unwrap();
            let sha = v["payload"][0]["plaintext_sha256"].as_str().unwrap();
            use sha2::Digest;
            assert_eq!(sha, hex::encode(sha2::Sha256::digest(&want)));
        }
    }
}

/// The golden licence bundle (format version 3, decision 81): verify shows
/// it as a licence from the enterprise with its reference and the digest of
/// the stand-in licence file; the connected side's import refuses it as
/// carried the wrong way, records the refusal and hands nothing over.
fn golden_licence(g: &serde_json::Value, v: &serde_json::Value) {
    use sha2::Digest;
    let file = fixture(g);
    assert_eq!(v["kind"], "licence", "{}", file.display());
    assert_eq!(
        v["source"],
        serde_json::json!({"enterprise": g["enterprise"]})
    );
    assert_eq!(v["licence"]["enterprise"], g["enterprise"]);
    assert_eq!(v["licence"]["reference"], g["reference"]);
    let ghl = std::fs::read(root().join("fixtures").join(g["payload"].as_str().unwrap())).unwrap();
    let sha = hex::encode(sha2::Sha256::digest(&ghl));
    assert_eq!(v["licence"]["sha256"], sha.as_str());
    assert_eq!(v["payload"][0]["kind"], "ghes-license");
    assert_eq!(v["payload"][0]["reference"], g["reference"]);
    assert_eq!(v["signers"][0]["principals"], g["enterprise"]);

    let state = tempfile::tempdir().unwrap();
    let outbox = state.path().join("outbox");
    let out = import_into(&file, state.path(), &[], state.path(), &outbox);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["error"]["code"], "AIRLOCK-E-WRONG-DIRECTION", "{r}");
    assert_eq!(out.status.code(), Some(8));
    assert!(!outbox.exists() || listing(&outbox).is_empty());
    let events = log_events(state.path());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], "rejected");
    assert_eq!(events[0]["code"], "AIRLOCK-E-WRONG-DIRECTION");
}

#[test]
fn every_fail_fixture_is_rejected_with_its_code_by_verify_extract_and_import() {
    let e = expectations();
    let fails = e["fail"].as_array().unwrap();
    assert!(fails.len() >= 41, "the fail corpus shrank");
    let mut imported = 0;
    let cwd = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    for f in fails {
        let file = fixture(f);
        let want = f["code"].as_str().unwrap();
        let code = airlock::Code::ALL
            .iter()
            .find(|c| c.as_str() == want)
            .unwrap();

        let out = base("verify", &file, f["at"].as_str().unwrap())
            .current_dir(cwd.path())
            .args(secret_args(f, secrets.path()))
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}: no JSON on stdout", file.display()));
        assert_eq!(
            v["error"]["code"],
            want,
            "verify {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(code.class().exit_code()),
            "{}",
            file.display()
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains(want));

        // extract runs at the real time, so time-dependent cases are left to verify.
        if want == "AIRLOCK-E-BUNDLE-FUTURE" {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = base("extract", &file, "")
            .current_dir(cwd.path())
            .args(secret_args(f, secrets.path()))
            .arg("--out")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "extract accepted {}", file.display());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let got = v["error"]["code"].as_str().unwrap();
        // Expired-at-fixture-time bundles are expired today as well; the rest
        // must fail for the same reason, or (for the golden time) expiry.
        assert!(
            got == want || got == "AIRLOCK-E-BUNDLE-EXPIRED",
            "extract {}: {got}",
            file.display()
        );
        assert!(
            listing(dir.path()).is_empty(),
            "extract of {} left {:?}",
            file.display(),
            listing(dir.path())
        );

        // import: same verdict, nothing in the outbox, nothing accepted.
        let state = tempfile::tempdir().unwrap();
        let outbox = state.path().join("outbox");
        let secret = secret_args(f, secrets.path());
        let out = import_into(&file, cwd.path(), &secret, state.path(), &outbox);
        assert!(!out.status.success(), "import accepted {}", file.display());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let got = v["error"]["code"].as_str().unwrap();
        // A licence bundle whose manifest parses is refused by its kind
        // before anything else is judged (decision 81).
        let want = f["import_code"].as_str().unwrap_or(want);
        assert!(
            got == want || got == "AIRLOCK-E-BUNDLE-EXPIRED",
            "import {}: {got}",
            file.display()
        );
        assert!(
            !outbox.exists() || listing(&outbox).is_empty(),
            "import of {} handed over {:?}",
            file.display(),
            listing(&outbox)
        );
        imported += 1;
    }
    assert!(
        imported >= 40,
        "only {imported} fixtures went through import"
    );
    assert!(
        listing(cwd.path()).is_empty(),
        "files written: {:?}",
        listing(cwd.path())
    );
}

#[test]
fn every_listed_fixture_exists() {
    let e = expectations();
    for f in e["fail"]
        .as_array()
        .unwrap()
        .iter()
        .chain(e["golden"].as_array().unwrap())
    {
        assert!(
            fixture(f).exists(),
            "{} listed but missing",
            fixture(f).display()
        );
    }
}
