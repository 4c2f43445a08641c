//! Golden bundles keep verifying; every fail_* bundle is rejected with its
//! expected code and exit code, and nothing is written anywhere.

mod common;

use common::*;

fn expectations() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/expectations.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn golden_bundles_verify_at_their_creation_time() {
    let e = expectations();
    let golden = e["golden"].as_array().unwrap();
    assert!(golden.len() >= 3);
    for g in golden {
        let file = root().join("fixtures").join(g["file"].as_str().unwrap());
        let out = airlock()
            .arg("verify")
            .arg(&file)
            .arg("--trust")
            .arg(root().join("keys/allowed_signers"))
            .arg("--revoked")
            .arg(root().join("keys/revoked_keys"))
            .arg("--at")
            .arg(g["at"].as_str().unwrap())
            .arg("--json")
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
        assert_eq!(v["source"]["host_name"], "ghes.example.com");
    }
}

#[test]
fn every_fail_fixture_is_rejected_with_its_code() {
    let e = expectations();
    let fails = e["fail"].as_array().unwrap();
    assert!(fails.len() >= 12, "the fail corpus shrank");
    let cwd = tempfile::tempdir().unwrap();
    for f in fails {
        let file = root().join("fixtures").join(f["file"].as_str().unwrap());
        let want = f["code"].as_str().unwrap();
        let out = airlock()
            .current_dir(cwd.path())
            .arg("verify")
            .arg(&file)
            .arg("--trust")
            .arg(root().join("keys/allowed_signers"))
            .arg("--revoked")
            .arg(root().join("keys/revoked_keys"))
            .arg("--at")
            .arg(f["at"].as_str().unwrap())
            .arg("--json")
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}: no JSON on stdout", file.display()));
        assert_eq!(
            v["error"]["code"],
            want,
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let code = airlock::Code::ALL
            .iter()
            .find(|c| c.as_str() == want)
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code.class().exit_code()),
            "{}",
            file.display()
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains(want));
    }
    assert!(
        listing(cwd.path()).is_empty(),
        "verify wrote files: {:?}",
        listing(cwd.path())
    );
}

#[test]
fn every_listed_fixture_exists() {
    let exp = std::fs::read(root().join("fixtures/expectations.json")).unwrap();
    let e: serde_json::Value = serde_json::from_slice(&exp).unwrap();
    for f in e["fail"].as_array().unwrap() {
        let p = root().join("fixtures").join(f["file"].as_str().unwrap());
        assert!(p.exists(), "{} listed but missing", p.display());
    }
}
