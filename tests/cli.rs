//! The airlock binary end to end: export, verify, inspect, keygen, demo,
//! exit codes, JSON output, state, reproducibility.

mod common;

use std::process::Stdio;

use common::*;
use predicates::str::contains;

#[test]
fn demo_runs_end_to_end() {
    airlock()
        .arg("demo")
        .assert()
        .success()
        .stdout(contains("VERIFIED"))
        .stdout(contains("REJECTED AIRLOCK-E-"))
        .stdout(contains("verdict: the genuine bundle verified"))
        // The inward leg, its appliance labelled as a stand-in.
        .stdout(contains("STAND-IN, NOT GHES"))
        .stdout(contains(
            "the same licence again: REJECTED AIRLOCK-E-LICENCE-APPLIED",
        ))
        .stdout(contains("Inward: licence DEMO2 replaced DEMO1"));
}

/// The JSON says whether the bundle was read back, and the hash it found is
/// the file's; without a read-back there is no hash to report (decision 67).
#[test]
fn export_json_reports_the_read_back_and_its_hash() {
    let (d, k) = keyed_dir();
    let clear = d.path().join("clear.json");
    sample_usage_clear(&clear, 3);
    for (i, read_back) in [true, false].into_iter().enumerate() {
        let b = d.path().join(format!("b{i}.airlock.zip"));
        let mut cmd = airlock();
        cmd.arg("export")
            .arg(&clear)
            .key_out_state(&k, &b, d.path().join("state"))
            .arg("--json");
        if !read_back {
            cmd.arg("--no-read-back");
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["read_back"], read_back);
        if read_back {
            let want = airlock::fsutil::sha256_file(&b).unwrap();
            assert_eq!(v["bundle_sha256"], want.as_str());
        } else {
            assert!(v["bundle_sha256"].is_null(), "{v}");
        }
    }
}

#[test]
fn export_describes_the_usage_file_and_verify_accepts() {
    let (d, k) = keyed_dir();
    let clear = d.path().join("clear.json");
    sample_usage_clear(&clear, 7);
    let b = d.path().join("b.airlock.zip");
    airlock()
        .arg("export")
        .arg(&clear)
        .key_out_state(&k, &b, d.path().join("state"))
        .assert()
        .success()
        .stdout(contains("host         ghes.example.com"))
        .stdout(contains(
            "server id    6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        ))
        .stdout(contains("GHES         3.15.2"))
        .stdout(contains("users        in clear, 7 users"))
        .stdout(contains("read back from disk and verified"));
    let allowed = trust_keys(d.path(), "ghes.example.com", &["exporter_ed25519"]);
    verify_cmd(&b, &allowed)
        .assert()
        .success()
        .stdout(contains("VERIFIED"));
    // The trust file can come from the environment.
    airlock()
        .arg("verify")
        .arg(&b)
        .env("AIRLOCK_TRUST", &allowed)
        .assert()
        .success();
}

#[test]
fn export_from_stdin_into_a_directory_names_the_bundle() {
    let (d, k) = keyed_dir();
    let stick = d.path().join("stick");
    std::fs::create_dir(&stick).unwrap();
    let usage = airlock::sample::usage_encrypted(
        "ghes.example.com",
        airlock::sample::SAMPLE_SERVER_ID,
        5000,
    );
    let out = airlock()
        .arg("export")
        .arg("-")
        .arg("--key")
        .arg(&k)
        .arg("--out")
        .arg(&stick)
        .env("AIRLOCK_STATE_DIR", d.path().join("state"))
        .env("SOURCE_DATE_EPOCH", "1793491200")
        .arg("--reproducible")
        .arg("--json")
        .write_stdin(usage.clone())
        .run_ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["created"], "2026-11-01T00:00:00Z");
    assert_eq!(v["sequence"]["number"], 1);
    let files = listing(&stick);
    assert_eq!(
        files,
        vec!["ghes.example.com_20261101T000000Z_000001.airlock.zip".to_string()]
    );
    // Only the bundle: no temporary file left behind.
    let allowed = trust_keys(d.path(), "ghes.example.com", &["exporter_ed25519"]);
    let inner = tool("unzip")
        .arg("-p")
        .arg(stick.join(&files[0]))
        .arg("payload/license-usage.json")
        .output()
        .unwrap();
    assert_eq!(inner.stdout, usage, "payload is not byte-identical");
    verify_cmd(stick.join(&files[0]), &allowed)
        .arg("--at")
        .arg("2026-11-02T00:00:00Z")
        .assert()
        .success();
}

#[test]
fn sequence_numbers_increase_per_signer() {
    let (d, k) = keyed_dir();
    let u = sample_usage(d.path());
    for n in 1..=3 {
        let out = airlock()
            .arg("export")
            .arg(&u)
            .key_out_state(
                &k,
                d.path().join(format!("{n}.zip")),
                d.path().join("state"),
            )
            .arg("--json")
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["sequence"]["number"], n);
    }
}

#[test]
fn same_inputs_key_sequence_and_time_give_identical_bundles() {
    let (d, k) = keyed_dir();
    let u = sample_usage(d.path());
    let mut bundles = Vec::new();
    for i in 0..2 {
        let b = d.path().join(format!("r{i}.zip"));
        airlock()
            .arg("export")
            .arg(&u)
            .key_out_state(&k, &b, d.path().join(format!("state{i}")))
            .env("SOURCE_DATE_EPOCH", "1793491200")
            .arg("--reproducible")
            .assert()
            .success();
        bundles.push(std::fs::read(&b).unwrap());
    }
    assert_eq!(bundles[0], bundles[1]);
}

/// Regression (issue 15): nix shells export SOURCE_DATE_EPOCH=315532800 for
/// every program; a bundle made there was dated 1980 and refused as expired.
/// The variable dates a bundle only with --reproducible; --created sets the
/// time explicitly.
#[test]
fn source_date_epoch_dates_a_bundle_only_when_asked() {
    let (d, k) = keyed_dir();
    let u = sample_usage(d.path());
    let allowed = trust_keys(
        d.path(),
        airlock::sample::SAMPLE_HOST,
        &["exporter_ed25519"],
    );
    let export = |name: &str, extra: &[&str]| {
        let b = d.path().join(name);
        let o = airlock()
            .arg("export")
            .arg(&u)
            .key_out_state(&k, &b, d.path().join("exporter"))
            .arg("--json")
            .args(extra)
            .env("SOURCE_DATE_EPOCH", "315532800")
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (b, v, o.status.code())
    };
    let import = |b: &std::path::Path| {
        airlock()
            .arg("import")
            .arg(b)
            .trust_state(&allowed, d.path().join("importer"))
            .output()
            .unwrap()
    };

    // No flag: the real time, and the bundle imports.
    let before = std::time::SystemTime::now();
    let (plain, v, code) = export("plain.zip", &[]);
    assert_eq!(code, Some(0), "{v}");
    let created = humantime::parse_rfc3339(v["created"].as_str().unwrap()).unwrap();
    let second = std::time::Duration::from_secs(1);
    assert!(
        created + second >= before && created <= std::time::SystemTime::now() + second,
        "created {} is not the time of the export",
        v["created"]
    );
    let o = import(&plain);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // --reproducible: SOURCE_DATE_EPOCH, so 1980, expired at import.
    let (old, v, code) = export("old.zip", &["--reproducible"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["created"], "1980-01-01T00:00:00Z");
    let o = import(&old);
    assert_eq!(o.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&o.stderr).contains("AIRLOCK-E-BUNDLE-EXPIRED"));

    // --created: that time, whatever SOURCE_DATE_EPOCH says.
    let (_, v, code) = export("set.zip", &["--created", "2026-11-01T00:00:00Z"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["created"], "2026-11-01T00:00:00Z");
    let (_, v, code) = export("unix.zip", &["--created", "1793491200"]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["created"], "2026-11-01T00:00:00Z");

    // The two cannot be combined; --reproducible needs the variable.
    let (_, v, code) = export("both.zip", &["--created", "1793491200", "--reproducible"]);
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (Some(2), Some("AIRLOCK-E-ARGS"))
    );
    let o = airlock()
        .arg("export")
        .arg(&u)
        .key_out_state(&k, d.path().join("unset.zip"), d.path().join("exporter"))
        .arg("--reproducible")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("SOURCE_DATE_EPOCH, which is not set"));
    assert!(!d.path().join("unset.zip").exists());
}

#[test]
fn export_never_overwrites_without_force() {
    let (d, k) = keyed_dir();
    let u = sample_usage(d.path());
    let b = d.path().join("b.zip");
    std::fs::write(&b, "precious").unwrap();
    airlock()
        .arg("export")
        .arg(&u)
        .key_out_state(&k, &b, d.path().join("state"))
        .fails(2, "AIRLOCK-E-OUTPUT-EXISTS");
    assert_eq!(std::fs::read(&b).unwrap(), b"precious");
    airlock()
        .arg("export")
        .arg(&u)
        .arg("--key")
        .arg(&k)
        .arg("--out")
        .arg(&b)
        .arg("--force")
        .arg("--state-dir")
        .arg(d.path().join("state"))
        .assert()
        .success();
    assert_ne!(std::fs::read(&b).unwrap(), b"precious");
}

#[test]
fn opaque_files_need_a_source_and_invalid_usage_files_are_refused() {
    let (d, k) = keyed_dir();
    let f = d.path().join("notes.txt");
    std::fs::write(&f, "hello").unwrap();
    let out = d.path().join("o.zip");
    airlock()
        .arg("export")
        .arg(&f)
        .key_out_state(&k, &out, d.path().join("state"))
        .fails(2, "AIRLOCK-E-SOURCE-UNKNOWN");
    assert!(!out.exists());
    airlock()
        .arg("export")
        .arg(&f)
        .arg("--key")
        .arg(&k)
        .arg("--out")
        .arg(&out)
        .arg("--host-name")
        .arg("files.example.com")
        .arg("--state-dir")
        .arg(d.path().join("state"))
        .assert()
        .success()
        .stdout(contains("opaque file"));

    let bad = d.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"instance":{"server_id":"not-a-uuid","host_name":"h"},"users":"x"}"#,
    )
    .unwrap();
    airlock()
        .arg("export")
        .arg(&bad)
        .key_out_state(&k, d.path().join("x.zip"), d.path().join("state"))
        .fails(8, "AIRLOCK-E-USAGE-FILE-INVALID");
    assert!(!d.path().join("x.zip").exists());

    let u = sample_usage(d.path());
    airlock()
        .arg("export")
        .arg(&u)
        .arg("--key")
        .arg(&k)
        .arg("--out")
        .arg(d.path().join("y.zip"))
        .arg("--host-name")
        .arg("elsewhere.example.com")
        .arg("--state-dir")
        .arg(d.path().join("state"))
        .fails(2, "AIRLOCK-E-SOURCE-CONFLICT");
    // No stray temporary files anywhere in the output directory.
    assert!(
        listing(d.path()).iter().all(|f| !f.contains(".airlock-")),
        "{:?}",
        listing(d.path())
    );
}

/// Usage files are checked as complete RFC 8259 JSON, users blob included:
/// what GitHub would refuse at upload is refused before the air gap.
#[test]
fn usage_files_that_are_not_strict_json_are_refused() {
    let (d, k) = keyed_dir();
    let good = airlock::sample::usage_encrypted(
        airlock::sample::SAMPLE_HOST,
        airlock::sample::SAMPLE_SERVER_ID,
        2048,
    );
    let users = good.windows(9).position(|w| w == b"\"users\":\"").unwrap();
    // A field after `instance`, before `users`.
    let with_field = |value: &[u8]| {
        let mut v = good[..users].to_vec();
        v.extend_from_slice(b"\"x\":");
        v.extend_from_slice(value);
        v.push(b',');
        v.extend_from_slice(&good[users..]);
        v
    };
    // One byte of the users blob replaced, 1000 bytes in.
    let in_blob = |b: u8| {
        let mut v = good.clone();
        v[users + 1000] = b;
        v
    };
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(&good);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("literal", with_field(b"tru"), "invalid literal"),
        ("literal2", with_field(b"falsey"), "invalid literal"),
        ("number", with_field(b"01"), "invalid number"),
        ("number2", with_field(b"1."), "invalid number"),
        ("escape", with_field(br#""\x""#), "invalid escape"),
        ("unicode_escape", with_field(br#""\u12""#), "invalid escape"),
        (
            "surrogate",
            with_field(br#""\ud800""#),
            "lone UTF-16 surrogate",
        ),
        (
            "control",
            with_field(b"\"a\x01b\""),
            "raw control character U+0001",
        ),
        (
            "blob_control",
            in_blob(b'\n'),
            "raw control character U+000A",
        ),
        ("blob_utf8", in_blob(0xff), "invalid UTF-8"),
        ("blob_escape", in_blob(b'\\'), "invalid escape"),
        ("overlong", with_field(b"\"\xc0\xaf\""), "invalid UTF-8"),
        ("bom", bom, "byte order mark"),
    ];
    for (name, doc, why) in cases {
        let f = d.path().join(format!("{name}.json"));
        std::fs::write(&f, &doc).unwrap();
        let out = d.path().join(format!("{name}.zip"));
        airlock()
            .arg("export")
            .arg(&f)
            .key_out_state(&k, &out, d.path().join("state"))
            .assert()
            .code(8)
            .stderr(contains("AIRLOCK-E-USAGE-FILE-INVALID"))
            .stderr(contains(why))
            .stderr(contains(" at byte "));
        assert!(!out.exists(), "{name}");
    }
    // Invalid JSON before any `instance` is no usage file: it travels as an
    // opaque file (and so needs --host-name).
    let mut early = b"{\"x\":tru,".to_vec();
    early.extend_from_slice(&good[1..]);
    let f = d.path().join("early.json");
    std::fs::write(&f, early).unwrap();
    airlock()
        .arg("export")
        .arg(&f)
        .arg("--key")
        .arg(&k)
        .arg("--out")
        .arg(d.path().join("early.zip"))
        .arg("--host-name")
        .arg("files.example.com")
        .arg("--state-dir")
        .arg(d.path().join("state"))
        .assert()
        .success()
        .stdout(contains("opaque file"));
    assert!(
        listing(d.path()).iter().all(|f| !f.contains(".airlock-")),
        "{:?}",
        listing(d.path())
    );
}

#[test]
fn unprotected_private_keys_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let (d, k) = keyed_dir();
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o640)).unwrap();
    let u = sample_usage(d.path());
    airlock()
        .arg("export")
        .arg(&u)
        .key_out_state(&k, d.path().join("b.zip"), d.path().join("state"))
        .assert()
        .code(4)
        .stderr(contains("AIRLOCK-E-KEY-PERMISSIONS"))
        .stderr(contains("chmod 600"));
}

#[test]
fn keygen_writes_0600_and_refuses_to_overwrite() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let k = d.path().join("id");
    airlock()
        .arg("keygen")
        .arg("--out")
        .arg(&k)
        .assert()
        .success()
        .stdout(contains("SHA256:"));
    assert_eq!(
        std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(d.path().join("id.pub").exists());
    let before = std::fs::read(&k).unwrap();
    airlock()
        .arg("keygen")
        .arg("--out")
        .arg(&k)
        .fails(2, "AIRLOCK-E-OUTPUT-EXISTS");
    assert_eq!(std::fs::read(&k).unwrap(), before);
    airlock()
        .arg("keygen")
        .arg("--out")
        .arg(&k)
        .arg("--force")
        .assert()
        .success();
    assert_ne!(std::fs::read(&k).unwrap(), before);
}

#[test]
fn verify_at_checks_freshness_as_of_a_moment() {
    let trust = root().join("keys/allowed_signers");
    let golden = root().join("fixtures/bundles/golden_encrypted_users.airlock.zip");
    // Today the golden bundle has expired...
    verify_cmd(&golden, &trust)
        .arg("--at")
        .arg("2027-06-01T00:00:00Z")
        .fails(7, "AIRLOCK-E-BUNDLE-EXPIRED");
    // ...before its creation it is "from the future"...
    verify_cmd(&golden, &trust)
        .arg("--at")
        .arg("2026-10-31T00:00:00Z")
        .fails(7, "AIRLOCK-E-BUNDLE-FUTURE");
    // ...within the skew it is fine.
    verify_cmd(&golden, &trust)
        .arg("--at")
        .arg("2026-10-31T23:57:00Z")
        .assert()
        .success();
}

/// Regression: a time past year 9999 (`--created`, or `--at` in Unix
/// seconds up to u64::MAX) panicked: RFC 3339 cannot write it, and the
/// second overflowed the clock. Now both are argument errors.
#[test]
fn times_past_year_9999_are_refused_not_a_panic() {
    let (d, k) = keyed_dir();
    let u = d.path().join("usage.json");
    sample_usage_clear(&u, 2);
    airlock()
        .arg("export")
        .arg(&u)
        .key_out_state(&k, d.path().join("b.zip"), d.path().join("state"))
        .args(["--created", "9999-12-31T00:00:00Z"])
        .assert()
        .code(2)
        .stderr(contains("AIRLOCK-E-ARGS"))
        .stderr(contains("9999-12-31T23:59:59Z"));
    assert!(!d.path().join("b.zip").exists());
    let golden = root().join("fixtures/bundles/golden_encrypted_users.airlock.zip");
    for at in ["18446744073709551615", "253402300800"] {
        verify_cmd(&golden, root().join("keys/allowed_signers"))
            .args(["--at", at])
            .fails(2, "after 9999-12-31T23:59:59Z");
    }
}

#[test]
fn exit_codes_per_class() {
    let d = tempfile::tempdir().unwrap();
    let trust = root().join("keys/allowed_signers");
    // usage
    airlock().arg("verify").assert().code(2);
    airlock().arg("frobnicate").assert().code(2);
    // io
    verify_cmd(d.path().join("missing.zip"), &trust).fails(3, "AIRLOCK-E-IO-READ");
    // trust file syntax
    let bad = d.path().join("bad_signers");
    std::fs::write(&bad, "host ssh-ed25519 !!notbase64\n").unwrap();
    verify_cmd(
        root().join("fixtures/bundles/golden_clear_users.airlock.zip"),
        &bad,
    )
    .assert()
    .code(6)
    .stderr(contains("AIRLOCK-E-TRUST-FILE"))
    .stderr(contains(":1:"));
    // help and version succeed
    airlock()
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("export"));
    airlock()
        .arg("--version")
        .assert()
        .success()
        .stdout(contains(env!("CARGO_PKG_VERSION")));
}

/// `--version` says how the binary was built, one fact a line; `-V` is the
/// version alone (scripts compare it).
#[test]
fn version_says_how_the_binary_was_built() {
    let out = airlock().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("airlock {}", env!("CARGO_PKG_VERSION")));
    let keys: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_once(": ").expect("key: value").0)
        .collect();
    assert_eq!(
        keys,
        [
            "commit",
            "target",
            "glibc",
            "rustc",
            "profile",
            "test hooks"
        ]
    );
    let arch = format!("target: {}-", std::env::consts::ARCH);
    assert!(lines[2].starts_with(&arch), "{text}");
    // Hooks and profile agree: only debug builds carry the test hooks.
    let release = lines.contains(&"profile: release");
    assert_eq!(lines.contains(&"test hooks: none"), release, "{text}");
    let out = airlock().arg("-V").output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("airlock {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn inspect_labels_everything_unverified() {
    let b = root().join("fixtures/bundles/fail_untrusted_key.airlock.zip");
    airlock()
        .arg("inspect")
        .arg(&b)
        .assert()
        .success()
        .stdout(contains("UNVERIFIED"))
        .stdout(contains("manifest.json"))
        .stdout(contains("namespace airlock-bundle"));
    let out = airlock()
        .arg("inspect")
        .arg(&b)
        .arg("--json")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], false);
    assert_eq!(v["inspection"]["signatures"].as_array().unwrap().len(), 1);
}

#[test]
fn broken_pipe_is_not_an_error() {
    let b = root().join("fixtures/bundles/golden_clear_users.airlock.zip");
    let bin = airlock_bin();
    let mut child = std::process::Command::new(bin)
        .arg("inspect")
        .arg(&b)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away at once
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert!(out.stderr.is_empty());
}

/// Regression (issue 15): a closed pipe used to end the process at once
/// with status 0, so `airlock import DIR | head -1` imported the first
/// bundle, skipped the rest and reported success. Output is now dropped and
/// the work finishes.
#[test]
fn a_closed_pipe_does_not_cut_a_batch_short() {
    let (d, k) = keyed_dir();
    let public = read_pub(&d.path().join("exporter_ed25519.pub"));
    let drop_dir = d.path().join("drop");
    std::fs::create_dir(&drop_dir).unwrap();
    let mut trust = String::new();
    for (i, host) in ["a.example.com", "b.example.com", "c.example.com"]
        .iter()
        .enumerate()
    {
        let u = d.path().join(format!("{host}.json"));
        let id = format!("6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4{i}");
        std::fs::write(&u, airlock::sample::usage_clear(host, &id, 3)).unwrap();
        export(
            d.path(),
            &k,
            &[&u],
            &drop_dir.join(format!("{host}.airlock.zip")),
            &[],
        );
        trust.push_str(&format!("{host} namespaces=\"airlock-bundle\" {public}\n"));
    }
    let allowed = d.path().join("allowed_signers");
    std::fs::write(&allowed, trust).unwrap();
    let mut c = std::process::Command::new(airlock_bin());
    isolate(&mut c);
    let mut child = c
        .arg("import")
        .arg(&drop_dir)
        .trust_state(&allowed, d.path().join("importer"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    let ev = ledger(&d.path().join("importer"));
    assert_eq!(count_events(&ev, "handover", "done"), 3, "{ev:?}");
}

#[test]
fn export_ledger_records_the_sha256_of_the_published_bundle() {
    // The hash is taken on another thread while fsync runs: it must be the
    // hash of the final file, local headers patched.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let k = key(d, "exporter_ed25519");
    let u = sample_usage(d);
    let b = export(d, &k, &[&u], &d.join("b.airlock.zip"), &[]);
    let out = airlock()
        .args(["log", "--json", "--state-dir"])
        .arg(d.join("state"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let last = v["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["outcome"], "exported");
    assert_eq!(
        last["bundle_sha256"].as_str().unwrap(),
        airlock::fsutil::sha256_file(&b).unwrap()
    );
}
