//! Licence bundles on the connected side (issue #29, decision 81): `export`
//! of a GHES licence file (`github-enterprise-<reference>.ghl`) makes a
//! format-version-3 bundle from the enterprise that binds the reference
//! and the digest; standard tools verify it; the connected side's `import`
//! refuses it as carried the wrong way.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use sha2::Digest;

const ENTERPRISE: &str = "octo-corp";

struct Side {
    dir: tempfile::TempDir,
    key: PathBuf,
    /// `--created`: the fixtures' time, or now (`None`) for bundles that
    /// must be fresh when imported.
    created: Option<&'static str>,
}

impl Side {
    fn new() -> Side {
        let dir = tempfile::tempdir().unwrap();
        let key = key(dir.path(), "connected_ed25519");
        Side {
            dir,
            key,
            created: Some(FIXTURE_TIME),
        }
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A stand-in licence file under `name`.
    fn ghl(&self, name: &str, reference: &str) -> PathBuf {
        let p = self.p(name);
        std::fs::write(&p, airlock::sample::licence(reference)).unwrap();
        p
    }

    /// `airlock export FILE --enterprise octo-corp …` into `out`.
    fn export(&self, file: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
        let created: &[&str] = match self.created {
            Some(t) => &["--created", t],
            None => &[],
        };
        airlock()
            .arg("export")
            .arg(file)
            .key_out_state(&self.key, out, self.p("state"))
            .args(created)
            .arg("--json")
            .args(extra)
            .env_remove("AIRLOCK_ENTERPRISE")
            .output()
            .unwrap()
    }

    fn exported(&self, file: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["--enterprise", ENTERPRISE];
        args.extend_from_slice(extra);
        let o = self.export(file, out, &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// A stand-in licence file `name` for ABC123, exported (as
    /// [`Side::exported`]) into the bundle `out`: the file, the bundle and
    /// the `--json` report.
    fn licence_bundle(&self, name: &str, out: &str) -> (PathBuf, PathBuf, serde_json::Value) {
        let ghl = self.ghl(name, "ABC123");
        let out = self.p(out);
        let r = self.exported(&ghl, &out, &[]);
        (ghl, out, r)
    }

    /// allowed_signers trusting the connected key for the enterprise.
    fn trust(&self) -> PathBuf {
        let line = read_pub(&self.p("connected_ed25519.pub"));
        let p = self.p("licence_allowed_signers");
        std::fs::write(
            &p,
            format!("{ENTERPRISE} namespaces=\"airlock-bundle\" {line}\n"),
        )
        .unwrap();
        p
    }
}

fn manifest(bundle: &Path) -> serde_json::Value {
    serde_json::from_slice(&unzip_member(bundle, "manifest.json")).unwrap()
}

fn code(o: &std::process::Output) -> String {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["error"]["code"].as_str().unwrap_or("").to_string()
}

#[test]
fn a_ghl_file_becomes_a_version_3_bundle_from_the_enterprise_binding_reference_and_digest() {
    let s = Side::new();
    let (ghl, out, r) = s.licence_bundle("github-enterprise-ABC123.ghl", "licence.airlock.zip");
    assert_eq!(r["kind"], "licence");
    assert_eq!(r["licence"]["reference"], "ABC123");
    assert_eq!(r["licence"]["enterprise"], ENTERPRISE);
    let m = manifest(&out);
    assert_eq!(m["version"], 3);
    assert_eq!(m["source"], serde_json::json!({"enterprise": ENTERPRISE}));
    assert_eq!(m["sequence"]["number"], 1);
    let p = &m["payload"][0];
    assert_eq!(m["payload"].as_array().unwrap().len(), 1);
    assert_eq!(p["name"], "payload/github-enterprise-ABC123.ghl");
    assert_eq!(p["kind"], "ghes-license");
    assert_eq!(p["reference"], "ABC123");
    let bytes = std::fs::read(&ghl).unwrap();
    assert_eq!(p["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!(p["size"], bytes.len());
    // The member is the file, byte for byte.
    assert_eq!(
        unzip_member(&out, "payload/github-enterprise-ABC123.ghl"),
        bytes
    );

    // airlock verifies it with the enterprise's trust line, and shows it as
    // a licence.
    let trust = s.trust();
    let v = verify_cmd(&out, &trust)
        .args(["--at", FIXTURE_TIME])
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(text.contains("GHES licence bundle"), "{text}");
    assert!(text.contains("enterprise octo-corp"), "{text}");
    assert!(text.contains("reference ABC123"), "{text}");
    let i = airlock()
        .arg("inspect")
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    let i: serde_json::Value = serde_json::from_slice(&i.stdout).unwrap();
    assert_eq!(i["inspection"]["kind"], "licence");
    assert_eq!(i["inspection"]["licence"]["reference"], "ABC123");

    // A second licence from the same key: the next sequence number; the
    // derived name names the enterprise and the reference.
    let second = s.ghl("github-enterprise-ABC124.ghl", "ABC124");
    let dir = s.p("stick");
    std::fs::create_dir(&dir).unwrap();
    let r = s.exported(&second, &dir, &[]);
    assert_eq!(r["sequence"]["number"], 2);
    let name = listing(&dir).pop().unwrap();
    assert_eq!(
        name,
        "octo-corp_licence-ABC124_20261101T000000Z_000002.airlock.zip"
    );
}

#[test]
fn ssh_keygen_and_sha256sum_check_a_licence_bundle_by_hand() {
    let s = Side::new();
    let (ghl, out, _) = s.licence_bundle("github-enterprise-ABC123.ghl", "licence.airlock.zip");
    let work = s.p("by-hand");
    std::fs::create_dir(&work).unwrap();
    let st = tool("unzip")
        .arg("-q")
        .arg(&out)
        .current_dir(&work)
        .status()
        .unwrap();
    assert!(st.success());
    let sig = work.join(sig_member(&out));
    let verify = |principal: &str| {
        tool("ssh-keygen")
            .args(["-Y", "verify", "-f"])
            .arg(s.trust())
            .args(["-I", principal, "-n", "airlock-bundle", "-s"])
            .arg(&sig)
            .stdin(std::fs::File::open(work.join("manifest.json")).unwrap())
            .output()
            .unwrap()
    };
    let ok = verify(ENTERPRISE);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Not for another principal (a host name, say).
    assert!(!verify("ghes.example.com").status.success());
    // sha256sum of the payload equals that of the file, and the manifest's.
    let sum = |p: &Path| {
        let o = tool("sha256sum").arg(p).output().unwrap();
        String::from_utf8(o.stdout).unwrap()[..64].to_string()
    };
    let member = work.join("payload/github-enterprise-ABC123.ghl");
    assert_eq!(sum(&member), sum(&ghl));
    assert_eq!(manifest(&out)["payload"][0]["sha256"], sum(&ghl));
}

#[test]
fn the_reference_comes_from_the_name_a_browser_copy_number_dropped_or_from_the_flag() {
    let s = Side::new();
    let (copy, out, _) = s.licence_bundle("github-enterprise-ABC123 (1).ghl", "copy.airlock.zip");
    let m = manifest(&out);
    assert_eq!(m["payload"][0]["reference"], "ABC123");
    assert_eq!(
        m["payload"][0]["name"],
        "payload/github-enterprise-ABC123.ghl"
    );

    // --reference overrides the name (and names the member).
    let out = s.p("override.airlock.zip");
    s.exported(&copy, &out, &["--reference", "XYZ789"]);
    let m = manifest(&out);
    assert_eq!(m["payload"][0]["reference"], "XYZ789");
    assert_eq!(
        m["payload"][0]["name"],
        "payload/github-enterprise-XYZ789.ghl"
    );

    // A name without a reference, and `--kind licence` on another name:
    // refused unless --reference is given.
    for name in ["enterprise.ghl", "licence.bin"] {
        let f = s.ghl(name, "R");
        let out = s.p(&format!("{name}.airlock.zip"));
        let kind: &[&str] = if name.ends_with(".ghl") {
            &[]
        } else {
            &["--kind", "licence"]
        };
        let mut args = vec!["--enterprise", ENTERPRISE];
        args.extend_from_slice(kind);
        let o = s.export(&f, &out, &args);
        assert_eq!(o.status.code(), Some(2), "{name}");
        assert_eq!(code(&o), "AIRLOCK-E-ARGS", "{name}");
        assert!(!out.exists());
        args.extend_from_slice(&["--reference", "R1"]);
        s.exported(&f, &out, &args[2..]);
        assert_eq!(manifest(&out)["payload"][0]["reference"], "R1");
    }
}

#[test]
fn export_refuses_what_a_licence_bundle_cannot_be() {
    let s = Side::new();
    let ghl = s.ghl("github-enterprise-ABC123.ghl", "ABC123");
    let out = s.p("b.airlock.zip");
    let age_recipient = airlock::crypt::generate_identity("t").1;
    let notes = s.p("notes.txt");
    std::fs::write(&notes, "x").unwrap();
    let usage_named_ghl = s.p("github-enterprise-USAGE1.ghl");
    sample_usage_encrypted(&usage_named_ghl, 64);
    let empty = s.p("github-enterprise-EMPTY1.ghl");
    std::fs::write(&empty, b"").unwrap();
    let big = s.p("github-enterprise-BIG1.ghl");
    std::fs::write(&big, vec![7u8; 1024 * 1024 + 1]).unwrap();
    let e = ["--enterprise", ENTERPRISE];
    for (what, file, args, want) in [
        ("no enterprise", &ghl, vec![], "AIRLOCK-E-SOURCE-UNKNOWN"),
        (
            "capital slug",
            &ghl,
            vec!["--enterprise", "Octo-Corp"],
            "AIRLOCK-E-ARGS",
        ),
        (
            "encrypted",
            &ghl,
            vec![e[0], e[1], "--recipient", &age_recipient],
            "AIRLOCK-E-ARGS",
        ),
        (
            "as a file",
            &ghl,
            vec![e[0], e[1], "--kind", "file"],
            "AIRLOCK-E-ARGS",
        ),
        (
            "an instance",
            &ghl,
            vec![e[0], e[1], "--host-name", "ghes.example.com"],
            "AIRLOCK-E-ARGS",
        ),
        (
            "a usage file named .ghl",
            &usage_named_ghl,
            vec![e[0], e[1]],
            "AIRLOCK-E-ARGS",
        ),
        ("empty", &empty, vec![e[0], e[1]], "AIRLOCK-E-ARGS"),
        ("over 1 MiB", &big, vec![e[0], e[1]], "AIRLOCK-E-ARGS"),
        (
            "bad reference",
            &ghl,
            vec![e[0], e[1], "--reference", "A B"],
            "AIRLOCK-E-ARGS",
        ),
    ] {
        let o = s.export(file, &out, &args);
        assert_eq!(
            code(&o),
            want,
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!o.status.success(), "{what}");
        assert!(!out.exists(), "{what}");
    }
    // Beside another file, or --reference for a usage export.
    let o = airlock()
        .arg("export")
        .arg(&ghl)
        .arg(&notes)
        .key_out_state(&s.key, &out, s.p("state"))
        .args(["--enterprise", ENTERPRISE, "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), "AIRLOCK-E-ARGS");
    let o = s.export(
        &notes,
        &out,
        &["--host-name", "ghes.example.com", "--reference", "R1"],
    );
    assert_eq!(code(&o), "AIRLOCK-E-ARGS");
    assert!(!out.exists());
    // The enterprise from the environment, as `cloud` takes it.
    let o = airlock()
        .arg("export")
        .arg(&ghl)
        .key_out_state(&s.key, &out, s.p("state"))
        .env("AIRLOCK_ENTERPRISE", ENTERPRISE)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(manifest(&out)["source"]["enterprise"], ENTERPRISE);
}

#[test]
fn the_connected_side_import_refuses_a_licence_bundle_records_it_and_hands_nothing_over() {
    // Fresh, so that nothing but its kind refuses it.
    let mut s = Side::new();
    s.created = None;
    let (_, out, _) = s.licence_bundle("github-enterprise-ABC123.ghl", "licence.airlock.zip");
    // Even with the connected key trusted for the enterprise: the kind decides.
    let trust = s.trust();
    let state = s.p("importer");
    let outbox = s.p("outbox");
    std::fs::create_dir(&outbox).unwrap();
    let o = airlock()
        .arg("import")
        .arg(&out)
        .trust_state(&trust, &state)
        .arg("--outbox")
        .arg(&outbox)
        .arg("--json")
        .output()
        .unwrap();
    assert_exit(&o, 8);
    assert_eq!(code(&o), "AIRLOCK-E-WRONG-DIRECTION");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("licence bundle"), "{stderr}");
    assert!(listing(&outbox).is_empty(), "{:?}", listing(&outbox));
    let events = log_events(&state);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["kind"], "import");
    assert_eq!(e["outcome"], "rejected");
    assert_eq!(e["code"], "AIRLOCK-E-WRONG-DIRECTION");
    // The whole file was not read: no payload byte was staged.
    assert!(e.get("host_name").is_none_or(|h| h.is_null()));

    // verify, with the same trust, accepts it: the courier and the auditor
    // may check a licence bundle anywhere.
    let v = verify_cmd(&out, &trust).arg("--json").output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
}
