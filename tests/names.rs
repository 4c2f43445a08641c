//! Any legal file name works (issue 27, decision 71): names that are not
//! UTF-8, 250 to 255 bytes long, or holding a newline and an escape
//! sequence are imported or quarantined, never skipped; human output shows
//! them escaped on one line; `--json` prints one object with `NAME_bytes`
//! beside a name that is not UTF-8; no subcommand panics.

mod common;

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use common::*;

fn os(b: &[u8]) -> OsString {
    OsString::from_vec(b.to_vec())
}

fn cmd() -> Command {
    let mut c = Command::new(airlock_bin());
    isolate(&mut c);
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Exactly one JSON object on standard output, and not a panic.
fn one_json(what: &str, o: &Output) -> serde_json::Value {
    assert_ne!(
        o.status.code(),
        Some(101),
        "{what} panicked: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut objects =
        serde_json::Deserializer::from_slice(&o.stdout).into_iter::<serde_json::Value>();
    let v = objects
        .next()
        .unwrap_or_else(|| panic!("{what}: no JSON on stdout"))
        .unwrap_or_else(|e| {
            panic!(
                "{what}: stdout is not JSON ({e}): {}",
                String::from_utf8_lossy(&o.stdout)
            )
        });
    assert!(objects.next().is_none(), "{what}: more than one JSON value");
    assert!(v.is_object(), "{what}: {v}");
    v
}

fn run_json(what: &str, c: &mut Command) -> serde_json::Value {
    let o = c.arg("--json").output().unwrap();
    let v = one_json(what, &o);
    assert!(
        o.status.success(),
        "{what}: {v} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    v
}

/// `v[key]` is the lossy string of `p` and `v[key_bytes]` its exact bytes.
fn assert_bytes_field(what: &str, v: &serde_json::Value, key: &str, p: &Path) {
    assert_eq!(
        v[key].as_str(),
        Some(&*p.to_string_lossy()),
        "{what}: {key} in {v}"
    );
    let b = v[format!("{key}_bytes")]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no {key}_bytes in {v}"));
    let b = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
    assert_eq!(b, p.as_os_str().as_bytes(), "{what}: {key}_bytes");
}

/// Export a clear usage file of `host`, created `t`, into `out`.
fn export(dir: &Path, key: &Path, host: &str, t: u64, out: &Path) -> serde_json::Value {
    let u = dir.join(format!("u-{host}.json"));
    std::fs::write(&u, airlock::sample::usage_clear(host, &server_id(host), 5)).unwrap();
    run_json(
        "export",
        cmd()
            .arg("export")
            .arg(&u)
            .key_out_state(key, out, dir.join("exporter-state"))
            .env("SOURCE_DATE_EPOCH", t.to_string())
            .arg("--reproducible"),
    )
}

/// Every subcommand that takes a path, given paths that are not UTF-8 (and
/// hold a newline), with and without `--json`.
#[test]
fn every_subcommand_takes_paths_that_are_not_utf8() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join(os(b"dir-\xff\xfe-\n-\x1b[31m"));
    std::fs::create_dir(&d).unwrap();

    let key = d.join(os(b"key-\xe9"));
    let v = run_json("keygen", cmd().arg("keygen").arg("--out").arg(&key));
    assert_bytes_field("keygen", &v, "private_key", &key);
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let id = d.join(os(b"id-\xe9"));
    let v = run_json(
        "keygen --age",
        cmd().args(["keygen", "--age", "--out"]).arg(&id),
    );
    assert_bytes_field("keygen --age", &v, "identity", &id);

    let allowed = d.join("allowed_signers");
    std::fs::write(
        &allowed,
        format!(
            "*.example.com namespaces=\"airlock-bundle\" {}\n",
            pubkey.trim()
        ),
    )
    .unwrap();

    let bundle = d.join(os(b"b-\xff\n\x1b[2J.airlock.zip"));
    let v = export(&d, &key, "a.example.com", now_secs() - 600, &bundle);
    assert_bytes_field("export", &v, "bundle", &bundle);

    let trust = |c: &mut Command| {
        c.arg("--trust").arg(&allowed);
    };
    let mut c = cmd();
    c.arg("verify").arg(&bundle);
    trust(&mut c);
    let v = run_json("verify", &mut c);
    assert_bytes_field("verify", &v, "bundle", &bundle);

    let v = run_json("inspect", cmd().arg("inspect").arg(&bundle));
    assert_eq!(v["verified"], false);

    let out = d.join(os(b"out-\xff"));
    std::fs::create_dir(&out).unwrap();
    let mut c = cmd();
    c.arg("extract").arg(&bundle).arg("--out").arg(&out);
    trust(&mut c);
    let v = run_json("extract", &mut c);
    assert_bytes_field("extract", &v, "bundle", &bundle);
    let written = v["written_bytes"].as_array().expect("written_bytes");
    assert_eq!(written.len(), v["written"].as_array().unwrap().len());
    assert!(written.iter().all(|w| w.is_string()), "{v}");

    let key2 = d.join(os(b"key2-\xe9"));
    run_json("keygen", cmd().arg("keygen").arg("--out").arg(&key2));
    let v = run_json(
        "sign",
        cmd().arg("sign").arg(&bundle).arg("--key").arg(&key2),
    );
    assert_bytes_field("sign", &v, "bundle", &bundle);

    let state = d.join(os(b"state-\xff"));
    let outbox = d.join(os(b"outbox-\xff"));
    std::fs::create_dir(&outbox).unwrap();
    let mut c = cmd();
    c.arg("import")
        .arg(&bundle)
        .arg("--state-dir")
        .arg(&state)
        .arg("--outbox")
        .arg(&outbox);
    trust(&mut c);
    let v = run_json("import", &mut c);
    assert_eq!(v["import"]["host_name"], "a.example.com", "{v}");

    // `import DIR`: the bundle is found (already imported now), by its bytes.
    let mut c = cmd();
    c.arg("import")
        .arg(&d)
        .arg("--state-dir")
        .arg(&state)
        .arg("--outbox")
        .arg(&outbox);
    trust(&mut c);
    let v = run_json("import DIR", &mut c);
    let results = v["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{v}");
    assert_bytes_field("import DIR", &results[0], "bundle", &bundle);
    assert_eq!(results[0]["disposition"], "already-imported", "{v}");

    let v = run_json(
        "log",
        cmd().args(["log", "--verify", "--state-dir"]).arg(&state),
    );
    assert_bytes_field("log", &v, "ledger", &state.join("ledger.sqlite"));

    let v = run_json("fleet", cmd().args(["fleet", "--state-dir"]).arg(&state));
    assert!(v["instances"].is_array(), "{v}");

    let html = d.join(os(b"fleet-\xff.html"));
    let v = run_json(
        "report",
        cmd()
            .args(["report", "--state-dir"])
            .arg(&state)
            .arg("--html")
            .arg(&html),
    );
    assert_bytes_field("report", &v, "report", &html);

    let man = d.join(os(b"man-\xff"));
    std::fs::create_dir(&man).unwrap();
    let v = run_json("man --dir", cmd().args(["man", "--dir"]).arg(&man));
    let written = v["written_bytes"].as_array().expect("written_bytes");
    assert!(!written.is_empty() && written.iter().all(|w| w.is_string()));

    // Failures name the path in their cause; still one object, no panic.
    let missing = d.join(os(b"missing-\xff.airlock.zip"));
    for sub in ["verify", "inspect", "import"] {
        let mut c = cmd();
        c.arg(sub).arg(&missing);
        if sub != "inspect" {
            trust(&mut c);
        }
        if sub == "import" {
            c.arg("--state-dir")
                .arg(&state)
                .arg("--outbox")
                .arg(&outbox);
        }
        let o = c.arg("--json").output().unwrap();
        let v = one_json(sub, &o);
        assert_eq!(v["ok"], false, "{sub}: {v}");
        assert!(!o.status.success());
        // Standard error: the error on its own two lines, the name escaped.
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 2, "{sub}: {err}");
        assert!(err.contains("dir-\\xff\\xfe-\\n-\\x1b[31m"), "{sub}: {err}");
        assert!(!err.contains('\x1b'), "{sub}: {err}");
    }

    // Human output: the names escaped, one line each, no escape sequence.
    let mut c = cmd();
    c.arg("verify").arg(&bundle);
    trust(&mut c);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).expect("human output is UTF-8");
    assert!(!text.contains('\x1b'), "{text}");
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("bundle ")
            && first.ends_with("/dir-\\xff\\xfe-\\n-\\x1b[31m/b-\\xff\\n\\x1b[2J.airlock.zip"),
        "{text}"
    );
    let o = cmd().arg("inspect").arg(&bundle).output().unwrap();
    assert!(o.status.success());
    assert!(!o.stdout.contains(&0x1b));

    // The demo, kept in such a directory: it re-read the UPLOAD.txt by the
    // report's lossy path (IO-READ).
    let demo = d.join(os(b"demo-\xff"));
    std::fs::create_dir(&demo).unwrap();
    let v = run_json("demo --dir", cmd().args(["demo", "--dir"]).arg(&demo));
    assert_bytes_field("demo", &v, "dir", &demo);

    // watch: its JSON events carry the bytes too.
    let w = d.join(os(b"watch-\xff"));
    std::fs::create_dir(&w).unwrap();
    let o = cmd()
        .arg("watch")
        .arg(&w)
        .args(["--once", "--json", "--trust"])
        .arg(&allowed)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    // A stream of events, one JSON object a line: started … finished.
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events: Vec<serde_json::Value> = String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let v = &events[0];
    assert_eq!(v["event"], "started", "{v}");
    assert_eq!(events.last().unwrap()["event"], "finished");
    assert_bytes_field("watch", v, "dir", &w);
}

/// Three bundles under names that are not UTF-8, 250 bytes long, and with a
/// newline and an escape sequence: `import DIR` imports all three, one line
/// each, and no line is forged.
#[test]
fn import_dir_takes_every_legal_name_and_forges_no_line() {
    let w = World::new();
    let (d, key, allowed) = (w.path(), &w.key, &w.allowed);
    let made = d.join("made");
    std::fs::create_dir(&made).unwrap();
    let drop = d.join("drop");
    std::fs::create_dir(&drop).unwrap();
    let long = format!("{}.airlock.zip", "l".repeat(250 - 12));
    assert_eq!(long.len(), 250);
    let names = [
        os(b"\xff\xfe-bundle.airlock.zip"),
        OsString::from(long),
        OsString::from("x\nimported          forged.airlock.zip  \x1b[2J.airlock.zip"),
    ];
    for (i, (host, name)) in ["a", "b", "c"].iter().zip(&names).enumerate() {
        let v = export(
            d,
            key,
            &format!("{host}.example.com"),
            now_secs() - 600 - i as u64,
            &made,
        );
        let b = PathBuf::from(v["bundle"].as_str().unwrap());
        std::fs::copy(&b, drop.join(name)).unwrap();
    }
    let outbox = d.join("outbox");
    std::fs::create_dir(&outbox).unwrap();
    let importer = |json: bool| {
        let mut c = cmd();
        c.arg("import")
            .arg(&drop)
            .trust_state(allowed, d.join("importer-state"))
            .arg("--outbox")
            .arg(&outbox);
        if json {
            c.arg("--json");
        }
        c.output().unwrap()
    };
    let o = importer(false);
    let text = String::from_utf8(o.stdout).expect("UTF-8");
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!text.contains('\x1b'), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[..3].iter().all(|l| l.starts_with("imported ")),
        "{text}"
    );
    assert_eq!(lines[3], "3 bundle(s): 3 imported", "{text}");
    assert!(text.contains("/\\xff\\xfe-bundle.airlock.zip  "), "{text}");
    assert!(text.contains("/x\\nimported          forged"), "{text}");
    assert!(
        text.contains(&format!("/{}.airlock.zip  ", "l".repeat(238))),
        "{text}"
    );

    // Again with --json: one object, three results, the bytes of the one
    // name that is not UTF-8.
    let o = importer(true);
    let v = one_json("import DIR --json", &o);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{v}");
    assert!(
        results
            .iter()
            .all(|r| r["disposition"] == "already-imported"),
        "{v}"
    );
    let with_bytes: Vec<_> = results
        .iter()
        .filter(|r| r.get("bundle_bytes").is_some())
        .collect();
    assert_eq!(with_bytes.len(), 1, "{v}");
    assert_bytes_field("import DIR", with_bytes[0], "bundle", &drop.join(&names[0]));
}

/// Regression: a legal 250- or 255-byte name made `NAME.reason.json` (and a
/// de-duplicated `STEM.2.airlock.zip`) longer than 255 bytes, and the
/// watcher exited 3; names that are not UTF-8 were never looked at.
#[test]
fn watch_quarantines_long_and_odd_names_and_keeps_running() {
    let w = World::new();
    let (d, key, allowed) = (w.path(), &w.key, &w.allowed);
    let drop = d.join("drop");
    std::fs::create_dir_all(drop.join("quarantine")).unwrap();
    let n250 = format!("{}.airlock.zip", "j".repeat(250 - 12));
    let n255 = format!("{}.airlock.zip", "k".repeat(255 - 12));
    let odd = os(b"\xff-junk\n\x1b[2J.airlock.zip");
    for n in [OsString::from(&n250), OsString::from(&n255), odd.clone()] {
        std::fs::write(drop.join(&n), b"not a bundle").unwrap();
    }
    // Taken in the quarantine: the 255-byte file needs a de-duplicated name.
    std::fs::write(drop.join("quarantine").join(&n255), b"earlier").unwrap();
    // And one genuine bundle under a name that is not UTF-8.
    let made = d.join("made");
    std::fs::create_dir(&made).unwrap();
    let v = export(d, key, "a.example.com", now_secs() - 600, &made);
    let good = os(b"good-\xe9.airlock.zip");
    std::fs::copy(v["bundle"].as_str().unwrap(), drop.join(&good)).unwrap();

    std::fs::create_dir(d.join("outbox")).unwrap();
    let mut o = cmd()
        .arg("watch")
        .arg(&drop)
        .args(["--once", "--settle", "0s", "--incomplete-after", "0s"])
        .trust_state(allowed, d.join("importer-state"))
        .arg("--outbox")
        .arg(d.join("outbox"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `--once` must end: a generous bound, the child killed past it.
    let start = std::time::Instant::now();
    while o.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(120) {
            let _ = o.kill();
            panic!("watch --once did not exit within 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = o.wait_with_output().unwrap();
    let text = String::from_utf8(o.stdout).expect("UTF-8");
    let err = String::from_utf8_lossy(&o.stderr);
    // --once's status is that of the first file quarantined (junk: 5,
    // BUNDLE-INCOMPLETE), the error on one line that names it escaped.
    assert_eq!(o.status.code(), Some(5), "{err}");
    let error_lines: Vec<&str> = err.lines().filter(|l| l.contains("error[")).collect();
    assert_eq!(error_lines.len(), 1, "{err}");
    assert!(
        error_lines[0].contains("AIRLOCK-E-BUNDLE-INCOMPLETE"),
        "{err}"
    );
    assert!(
        !text.contains('\x1b') && !err.contains('\x1b'),
        "{text}{err}"
    );
    assert_eq!(text.lines().count(), 4, "one line per file: {text}");

    let q = drop.join("quarantine");
    let mut in_q: Vec<OsString> = std::fs::read_dir(&q)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    in_q.sort();
    assert!(in_q.iter().all(|n| n.len() <= 255), "{in_q:?}");
    let reasons: Vec<&OsString> = in_q
        .iter()
        .filter(|n| n.as_bytes().ends_with(b".reason.json"))
        .collect();
    assert_eq!(reasons.len(), 3, "{in_q:?}");
    assert!(q.join(&n250).exists() && q.join(&odd).exists(), "{in_q:?}");
    // The 255-byte one beside the earlier file, under a shortened name.
    let bundles: Vec<_> = in_q
        .iter()
        .filter(|n| n.as_bytes().ends_with(b".airlock.zip"))
        .collect();
    assert_eq!(bundles.len(), 4, "{in_q:?}");
    // Each reason names its file, with the bytes when not UTF-8.
    for r in reasons {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(q.join(r)).unwrap()).unwrap();
        assert_eq!(v["code"], "AIRLOCK-E-BUNDLE-INCOMPLETE", "{v}");
        let file = match v.get("file_bytes") {
            Some(b) => os(&base64::engine::general_purpose::STANDARD
                .decode(b.as_str().unwrap())
                .unwrap()),
            None => OsString::from(v["file"].as_str().unwrap()),
        };
        assert!(q.join(&file).exists(), "{v}");
    }
    assert!(drop.join("done").join(&good).exists(), "{text}");
    assert!(text.contains("\\xff-junk\\n\\x1b[2J.airlock.zip"), "{text}");
}
