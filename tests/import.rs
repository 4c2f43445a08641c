//! `airlock import`: ledger rules, outbox and HTTP hand-over, crash safety,
//! concurrency, audit trail, configuration precedence.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::http::{Response, Server};
use common::*;
use predicates::str::contains;

impl World {
    /// Export a usage file of `host` created at `t` (--reproducible).
    fn bundle(&self, name: &str, host: &str, t: u64, key: &Path, users: usize) -> PathBuf {
        let u = self.usage(&format!("{name}.json"), host, users);
        let b = self.p(&format!("{name}.airlock.zip"));
        export_cmd(&u, key, &b, &self.p("exporter-state"))
            .made_at(t)
            .assert()
            .success();
        b
    }
    fn import(&self, b: &Path) -> assert_cmd::Command {
        let mut c = self.import_cmd(b, "importer-state");
        c.arg("--outbox")
            .arg(self.p("outbox"))
            // The outbox is created only inside HOME (docs/operator-guide.md).
            .env("HOME", self.dir.path());
        c
    }
    fn import_std(&self, b: &Path) -> std::process::Command {
        let mut c = airlock_std();
        c.arg("import")
            .arg(b)
            .trust_state(&self.allowed, self.p("importer-state"))
            .arg("--outbox")
            .arg(self.p("outbox"))
            .env("HOME", self.dir.path());
        c
    }
    fn events(&self) -> serde_json::Value {
        serde_json::Value::Array(self.ledger_events("importer-state"))
    }
}

const T0: u64 = 1_795_000_000; // 2026-11-18, within 30 days of the session date

fn now_minus(days: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    now - days * 86400
}

#[test]
fn import_rules_outbox_and_ledger() {
    let _ = T0;
    let w = World::new();
    let t = now_minus(2);
    let old = w.bundle("old", "ghes.example.com", t, &w.key, 3);
    let new = w.bundle("new", "ghes.example.com", t + 3600, &w.key, 4);

    // Fresh import: one byte-identical file in the outbox, beside the steps.
    w.import(&new)
        .arg("--enterprise")
        .arg("octo-corp")
        .assert()
        .success()
        .stdout(contains("handed over"));
    let files = w.outbox_payloads();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("ghes.example.com_"), "{files:?}");
    assert_eq!(
        std::fs::read(w.p("outbox").join(&files[0])).unwrap(),
        std::fs::read(w.p("new.json")).unwrap()
    );
    let txt = listing(&w.p("outbox"))
        .into_iter()
        .find(|f| f.ends_with(".UPLOAD.txt"))
        .unwrap();
    let txt = std::fs::read_to_string(w.p("outbox").join(txt)).unwrap();
    assert!(txt.contains("https://github.com/enterprises/octo-corp/enterprise_licensing"));
    assert!(txt.contains("Add server usage"));

    // The very same bundle again: already imported, nothing new.
    w.import(&new).fails(11, "AIRLOCK-E-ALREADY-IMPORTED");
    // An older one from the same key: rollback.
    w.import(&old).fails(10, "AIRLOCK-E-LEDGER-ROLLBACK");
    // A rotated key (also trusted), older than the newest: refused too.
    let rotated = key(w.dir.path(), "retired_ed25519");
    let allowed = std::fs::read_to_string(&w.allowed).unwrap()
        + &format!(
            "*.example.com namespaces=\"airlock-bundle\" {}\n",
            read_pub(&w.p("retired_ed25519.pub"))
        );
    std::fs::write(&w.allowed, allowed).unwrap();
    let rot_old = w.bundle("rot-old", "ghes.example.com", t + 1800, &rotated, 5);
    w.import(&rot_old).fails(10, "AIRLOCK-E-LEDGER-OLDER");
    // A rotated key's newer bundle is fine.
    let rot_new = w.bundle("rot-new", "ghes.example.com", t + 7200, &rotated, 6);
    w.import(&rot_new).assert().success();
    // A forged bundle: rejected by verify, recorded.
    let mut forged = std::fs::read(&rot_new).unwrap();
    let i = forged.len() / 3;
    forged[i] ^= 1;
    std::fs::write(w.p("forged.zip"), forged).unwrap();
    w.import(&w.p("forged.zip")).assert().failure();

    assert_eq!(w.outbox_payloads().len(), 2);
    let ev = w.events();
    let outcomes: Vec<(String, String)> = ev
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("import", "accepted"),
        ("handover", "done"),
        ("import", "already-imported"),
        ("import", "rejected"),
        ("import", "rejected"),
        ("import", "accepted"),
        ("handover", "done"),
        ("import", "rejected"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(outcomes, want);
    let codes: Vec<Option<&str>> = ev
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str())
        .collect();
    assert_eq!(codes[3], Some("AIRLOCK-E-LEDGER-ROLLBACK"));
    assert_eq!(codes[4], Some("AIRLOCK-E-LEDGER-OLDER"));
    assert!(codes[7].is_some());
    // Every accepted record names the signer, principal, sequence, instance and times.
    let a = &ev[0];
    for f in [
        "bundle_sha256",
        "signer",
        "principal",
        "host_name",
        "server_id",
        "created",
        "expires",
        "at",
    ] {
        assert!(a[f].is_string(), "{f} missing in {a}");
    }
    assert_eq!(a["sequence"], 2);
}

#[test]
fn editing_a_ledger_row_by_hand_breaks_the_chain() {
    let w = World::new();
    let b = w.bundle("b", "ghes.example.com", now_minus(1), &w.key, 2);
    w.import(&b).assert().success();
    w.events();
    let verify_log = || {
        let mut c = airlock();
        c.arg("log")
            .arg("--state-dir")
            .arg(w.p("importer-state"))
            .arg("--verify");
        c
    };
    let db = w.p("importer-state/ledger.sqlite");
    let st = tool("sqlite3")
        .arg(&db)
        .arg("UPDATE events SET sequence = 1000 WHERE seq = 1;")
        .status()
        .unwrap();
    assert!(st.success());
    verify_log()
        .assert()
        .code(5)
        .stderr(contains("AIRLOCK-E-LEDGER-TAMPERED"))
        .stderr(contains("record 1 was edited"));
    // Removing a record is caught as well.
    let st = tool("sqlite3")
        .arg(&db)
        .arg("UPDATE events SET sequence = 2 WHERE seq = 1; DELETE FROM events WHERE seq = 1;")
        .status()
        .unwrap();
    assert!(st.success());
    verify_log().fails(5, "AIRLOCK-E-LEDGER-TAMPERED");
}

#[test]
fn a_crash_at_any_point_then_a_rerun_ends_with_exactly_one_handover() {
    skip_without_hooks!();
    let w = World::new();
    let b = w.bundle("b", "ghes.example.com", now_minus(1), &w.key, 20_000);
    let points = [
        "import:verified",
        "import:accepted",
        "publish:synced",
        "handover:payload-published",
        "import:handed-over",
    ];
    for point in points {
        let _ = std::fs::remove_dir_all(w.p("importer-state"));
        let _ = std::fs::remove_dir_all(w.p("outbox"));
        let out = w.import(&b).env("AIRLOCK_FAULT", point).output().unwrap();
        assert!(!out.status.success(), "{point}: the fault did not fire");
        // No partial file at the output path, whatever happened.
        for f in w.outbox_payloads() {
            assert!(
                f.starts_with(".airlock-")
                    || std::fs::read(w.p("outbox").join(&f)).unwrap()
                        == std::fs::read(w.p("b.json")).unwrap(),
                "{point}: partial {f}"
            );
        }
        w.import(&b).assert().success();
        assert_eq!(
            w.outbox_payloads(),
            vec![format!("ghes.example.com_{}_b.json", compact(&b))],
            "{point}"
        );
        let ev = w.events();
        let done = count_events(ev.as_array().unwrap(), "handover", "done");
        assert_eq!(done, 1, "{point}: {ev}");
        w.import(&b).assert().code(11);
    }
}

fn compact(b: &Path) -> String {
    let out = airlock()
        .arg("inspect")
        .arg(b)
        .arg("--json")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["inspection"]["manifest"]["created"]
        .as_str()
        .unwrap()
        .replace(['-', ':'], "")
}

#[test]
fn kill_9_at_many_moments_then_rerun_is_consistent() {
    let w = World::new();
    let b = w.bundle("big", "ghes.example.com", now_minus(1), &w.key, 30_000);
    // How long an uninterrupted import takes, to spread the kills over it.
    let t0 = std::time::Instant::now();
    w.import(&b).assert().success();
    let full = t0.elapsed();
    let mut outcomes = std::collections::BTreeMap::new();
    for step in 0..24u32 {
        let _ = std::fs::remove_dir_all(w.p("importer-state"));
        let _ = std::fs::remove_dir_all(w.p("outbox"));
        let mut child = w
            .import_std(&b)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full * step / 20);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let ledger_state = if w.p("importer-state/ledger.sqlite").exists() {
            let ev = w.events();
            let has = |k: &str, o: &str| {
                ev.as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["kind"] == k && e["outcome"] == o)
            };
            if has("handover", "done") {
                "handed over"
            } else if has("import", "accepted") {
                "accepted, not handed over"
            } else {
                "nothing recorded"
            }
        } else {
            "nothing recorded"
        };
        let published = w.outbox_payloads().iter().any(|f| !f.starts_with('.'));
        let phase = format!(
            "{}: {ledger_state}{}",
            if status.success() {
                "finished"
            } else {
                "killed"
            },
            if published { ", file published" } else { "" }
        );
        *outcomes.entry(phase).or_insert(0) += 1;
        // Re-run finishes the job (or reports it done), exactly one file.
        let out = w.import(&b).output().unwrap();
        assert!(
            matches!(out.status.code(), Some(0) | Some(11)),
            "step {step}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let files = w.outbox_payloads();
        assert_eq!(files.len(), 1, "step {step}: {files:?}");
        assert_eq!(
            std::fs::read(w.p("outbox").join(&files[0])).unwrap(),
            std::fs::read(w.p("big.json")).unwrap()
        );
        let ev = w.events();
        let done = count_events(ev.as_array().unwrap(), "handover", "done");
        assert_eq!(done, 1, "step {step}");
    }
    eprintln!("kill -9 outcomes over {full:?}: {outcomes:?}");
}

#[test]
fn concurrent_imports() {
    let w = World::new();
    let t = now_minus(1);
    let a = w.bundle("a", "ghes.example.com", t, &w.key, 5000);
    let b = w.bundle("b", "ghes2.example.com", t, &w.key, 5000);
    // The same bundle twice at once: one hand-over.
    let mut c1 = w
        .import_std(&a)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut c2 = w
        .import_std(&a)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut codes = vec![c1.wait().unwrap().code(), c2.wait().unwrap().code()];
    codes.sort();
    assert_eq!(codes, vec![Some(0), Some(11)]);
    assert_eq!(w.outbox_payloads().len(), 1);
    // Two different bundles at once: both succeed.
    let a2 = w.bundle("a2", "ghes.example.com", t + 60, &w.key, 5000);
    let mut c1 = w
        .import_std(&a2)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut c2 = w
        .import_std(&b)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(c1.wait().unwrap().success());
    assert!(c2.wait().unwrap().success());
    assert_eq!(w.outbox_payloads().len(), 3);
    let ev = w.events();
    assert_eq!(count_events(ev.as_array().unwrap(), "handover", "done"), 3);
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn http_handover_retries_with_the_files_own_idempotency_key() {
    let w = World::new();
    let b = w.bundle("b", "ghes.example.com", now_minus(1), &w.key, 10);
    let server = Server::start(vec![
        Response::new(503, "busy"),
        Response::new(502, "bad gateway"),
        Response::new(201, "{}"),
    ]);
    std::fs::write(w.p("token"), "s3cr3t-token\n").unwrap();
    w.import(&b)
        .arg("--submit-url")
        .arg(format!("{}/usage", server.url))
        .arg("--submit-token-file")
        .arg(w.p("token"))
        .assert()
        .success()
        .stdout(contains("HTTP 201"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    let usage = std::fs::read(w.p("b.json")).unwrap();
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/usage");
        assert_eq!(r.headers["authorization"], "Bearer s3cr3t-token");
        // airlock-BUNDLE_ID-SHA256 of the file sent (docs/import.md); the
        // same on every retry.
        let id = &r.headers["x-airlock-bundle-id"];
        assert_eq!(id.len(), 32);
        assert_eq!(
            r.headers["idempotency-key"],
            format!("airlock-{id}-{}", sha256_hex(&usage))
        );
        assert_eq!(r.body, usage);
    }
    assert!(
        w.outbox_payloads().is_empty(),
        "HTTP hand-over must not write the outbox"
    );
    // The token never appears in the ledger.
    assert!(!w.events().to_string().contains("s3cr3t"));
}

/// A `file` bundle with two members, `one.txt` and `two.txt`.
fn two_file_bundle(w: &World) -> PathBuf {
    std::fs::write(w.p("one.txt"), "first file\n").unwrap();
    std::fs::write(w.p("two.txt"), "second file, other bytes\n").unwrap();
    let b = w.p("two.airlock.zip");
    airlock()
        .arg("export")
        .arg(w.p("one.txt"))
        .arg(w.p("two.txt"))
        .args(["--kind", "file", "--host-name", "ghes.example.com"])
        .key_out_state(&w.key, &b, w.p("exporter-state"))
        .assert()
        .success();
    b
}

/// What a keyed endpoint accepted: (idempotency key, body), in order.
type Kept = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// An endpoint that keeps what it accepted per idempotency key. A known key
/// is answered with the first answer again (a replay); with `strict`, a
/// known key with another body is refused 422, as the IETF idempotency
/// draft says.
fn keyed_endpoint(strict: bool) -> (Server, Kept) {
    let kept = Kept::default();
    let k = kept.clone();
    let server = Server::start_fn(10, move |r| {
        let key = r
            .headers
            .get("idempotency-key")
            .cloned()
            .unwrap_or_default();
        let mut kept = k.lock().unwrap();
        match kept.iter().find(|(have, _)| *have == key) {
            Some((_, body)) if strict && *body != r.body => {
                Response::new(422, "key reused with another body")
            }
            Some(_) => Response::new(201, "{}"),
            None => {
                kept.push((key, r.body.clone()));
                Response::new(201, "{}")
            }
        }
    });
    (server, kept)
}

/// Regression (#27): every file of a bundle went with the same key, so an
/// endpoint following the IETF draft refused file 2 (422), and one that
/// replays answers dropped it while airlock recorded the hand-over done.
/// Each file now has its own key: both arrive, and a re-run sends the same
/// keys again.
#[test]
fn two_files_of_a_bundle_reach_endpoints_that_refuse_or_replay_a_reused_key() {
    for strict in [true, false] {
        let w = World::new();
        let b = two_file_bundle(&w);
        let (server, kept) = keyed_endpoint(strict);
        w.import(&b)
            .arg("--submit-url")
            .arg(&server.url)
            .assert()
            .success()
            .stdout(contains("HTTP 201"));
        let bodies: Vec<Vec<u8>> = kept.lock().unwrap().iter().map(|k| k.1.clone()).collect();
        assert_eq!(
            bodies,
            [
                std::fs::read(w.p("one.txt")).unwrap(),
                std::fs::read(w.p("two.txt")).unwrap()
            ],
            "strict={strict}"
        );
        let keys: Vec<String> = server
            .requests()
            .iter()
            .map(|r| r.headers["idempotency-key"].clone())
            .collect();
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0], keys[1]);
        for k in &keys {
            assert!(k.starts_with("airlock-") && k.len() <= 110, "{k}");
        }
        assert!(keys[1].ends_with(&sha256_hex(&bodies[1])));
    }
}

/// Regression (#27): a POST that was never answered cost 5 × 120 s per
/// file. The per-request timeout and the hand-over deadline bound it, and
/// the failure says which limit ended it.
#[test]
fn a_never_answering_endpoint_fails_within_the_deadline() {
    let w = World::new();
    let b = w.bundle("b", "ghes.example.com", now_minus(1), &w.key, 3);
    let silent = common::http::Silent::start();
    let start = std::time::Instant::now();
    w.import(&b)
        .arg("--submit-url")
        .arg(&silent.url)
        .args(["--http-timeout", "2s", "--http-deadline", "4s"])
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .code(12)
        .stderr(contains("AIRLOCK-E-HANDOVER-TIMEOUT"))
        .stderr(contains("deadline of 4s"));
    let took = start.elapsed();
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
    assert!(*silent.accepted.lock().unwrap() >= 1);
    // Not recorded as handed over: a re-run tries again.
    let ev = w.events();
    assert!(!ev
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "handover" && e["outcome"] == "done"));
    // A duration of zero, or none at all, is refused before anything runs.
    w.import(&b)
        .arg("--submit-url")
        .arg(&silent.url)
        .args(["--http-timeout", "0s"])
        .assert()
        .code(2);
}

#[test]
fn http_handover_4xx_fails_and_rerun_delivers() {
    let w = World::new();
    let b = w.bundle("b", "ghes.example.com", now_minus(1), &w.key, 10);
    let server = Server::start(vec![Response::new(401, "no")]);
    w.import(&b)
        .arg("--submit-url")
        .arg(&server.url)
        .env("AIRLOCK_SUBMIT_TOKEN", "t")
        .fails(12, "AIRLOCK-E-HANDOVER-REJECTED");
    let server2 = Server::start(vec![Response::new(200, "ok")]);
    w.import(&b)
        .arg("--submit-url")
        .arg(&server2.url)
        .env("AIRLOCK_SUBMIT_TOKEN", "t")
        .assert()
        .success()
        .stdout(contains("finished the hand-over"));
    w.import(&b)
        .arg("--submit-url")
        .arg(&server2.url)
        .assert()
        .code(11);
    assert_eq!(server2.requests().len(), 1);
}

#[test]
fn config_file_with_flags_and_environment_taking_precedence() {
    let w = World::new();
    let b = w.bundle("b", "ghes.example.com", now_minus(1), &w.key, 3);
    let cfg = w.p("airlock.toml");
    std::fs::write(&cfg, format!(
        "trust = \"{}\"\nstate_dir = \"state-from-config\"\noutbox = \"outbox-from-config\"\nenterprise = \"from-config\"\n",
        w.allowed.display()
    )).unwrap();
    // File only: everything from the file (relative paths from its directory).
    airlock()
        .arg("import")
        .arg(&b)
        .arg("--config")
        .arg(&cfg)
        .env("HOME", w.dir.path())
        .assert()
        .success();
    assert_eq!(listing(&w.p("outbox-from-config")).len(), 2);
    assert!(w.p("state-from-config/ledger.sqlite").exists());
    // Environment beats the file, a flag beats the environment.
    let b2 = w.bundle("b2", "ghes.example.com", now_minus(1) + 60, &w.key, 3);
    airlock()
        .arg("import")
        .arg(&b2)
        .arg("--config")
        .arg(&cfg)
        .env("AIRLOCK_OUTBOX", w.p("outbox-from-env"))
        .env("HOME", w.dir.path())
        .env("AIRLOCK_ENTERPRISE", "from-env")
        .arg("--enterprise")
        .arg("from-flag")
        .assert()
        .success();
    let txt = listing(&w.p("outbox-from-env"))
        .into_iter()
        .find(|f| f.ends_with("UPLOAD.txt"))
        .unwrap();
    let txt = std::fs::read_to_string(w.p("outbox-from-env").join(txt)).unwrap();
    assert!(txt.contains("/enterprises/from-flag/"), "{txt}");
    // A bad key in the file is a clear error.
    std::fs::write(&cfg, "trusted = \"x\"\n").unwrap();
    airlock()
        .arg("import")
        .arg(&b2)
        .arg("--config")
        .arg(&cfg)
        .fails(2, "AIRLOCK-E-CONFIG-INVALID");
}

/// Regression (issue 15): a failed hand-over showed the same hint whether
/// the disk was full or a file of that name existed, and dropped the
/// original error. Now the hint follows the original error, `-v` prints the
/// chain of causes and `--json` lists it.
#[test]
fn a_failed_handover_says_why_full_disk_or_existing_file() {
    skip_without_hooks!();
    let w = World::new();
    let b = w.bundle("b", "ghes.example.com", now_minus(1), &w.key, 3);
    let full = "check that the directory exists, is writable and has free space; then run the same import again";

    // A full disk: the write error's hint; -v shows the chain down to the OS.
    let out = w
        .import(&b)
        .arg("-v")
        .env("AIRLOCK_FAULT", "handover:disk-full")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error[AIRLOCK-E-HANDOVER-FAILED]"), "{err}");
    assert!(err.contains(&format!("hint: {full}")), "{err}");
    let caused: Vec<&str> = err
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("caused by: "))
        .collect();
    assert_eq!(caused.len(), 2, "{err}");
    assert!(
        caused[0].starts_with("AIRLOCK-E-IO-WRITE: cannot write"),
        "{err}"
    );
    assert_eq!(
        caused[1],
        std::io::Error::from_raw_os_error(28).to_string(),
        "{err}"
    );
    // Without -v the chain is not printed.
    let out = w
        .import(&b)
        .env("AIRLOCK_FAULT", "handover:disk-full")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("caused by"));
    // --json: the same hint, and the chain as caused_by.
    let out = w
        .import(&b)
        .arg("--json")
        .env("AIRLOCK_FAULT", "handover:disk-full")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "AIRLOCK-E-HANDOVER-FAILED");
    assert_eq!(v["error"]["hint"], full);
    let chain = v["error"]["caused_by"].as_array().unwrap();
    assert_eq!(chain.len(), 2, "{v}");
    assert!(chain[0]
        .as_str()
        .unwrap()
        .starts_with("AIRLOCK-E-IO-WRITE: "));
    assert!(w.outbox_payloads().is_empty());

    // The re-run delivers (and tells the file's name in the outbox).
    w.import(&b).assert().success();
    let name = w.outbox_payloads().pop().unwrap();

    // Another outbox holding a different file of that name: another hint.
    let other = w.p("outbox2");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join(&name), "someone else's file\n").unwrap();
    let out = import_cmd(&b, &w.allowed, &w.p("importer-state2"))
        .arg("--outbox")
        .arg(&other)
        .arg("-v")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hint: move the file aside and run the same import again"),
        "{err}"
    );
    assert!(!err.contains(full), "{err}");
    assert!(
        err.contains("caused by: AIRLOCK-E-OUTPUT-EXISTS: "),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(other.join(&name)).unwrap(),
        "someone else's file\n"
    );
}

#[test]
fn exporter_keeps_a_chained_ledger_too() {
    let w = World::new();
    w.bundle("a", "ghes.example.com", now_minus(1), &w.key, 1);
    w.bundle("b", "ghes.example.com", now_minus(1) + 1, &w.key, 1);
    let events = w.ledger_events("exporter-state");
    let outcomes: Vec<&str> = events
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        vec!["reserved", "exported", "reserved", "exported"]
    );
}

/// Regression (issue 27): `verify` refused a 48 GiB sparse junk file in
/// milliseconds, and `import` then read and hashed all of it again for its
/// ledger record (minutes). The record now holds what the one read got.
#[test]
fn a_48_gib_junk_file_is_refused_and_recorded_without_a_second_read() {
    use sha2::Digest;
    let w = World::new();
    const SIZE: u64 = 48 << 30;
    // Junk, and junk that ends in a zip end-of-central-directory record.
    let eocd = [b"PK\x05\x06".as_slice(), &[0u8; 18]].concat();
    for (name, tail) in [("junk", &[][..]), ("trailer", &eocd[..])] {
        let f = w.p(&format!("{name}.airlock.zip"));
        let file = std::fs::File::create(&f).unwrap();
        file.set_len(SIZE).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, tail, SIZE - tail.len() as u64).unwrap();
        drop(file);
        let start = std::time::Instant::now();
        let out = w.import_std(&f).output().unwrap();
        let took = start.elapsed();
        eprintln!("{name}: refused in {took:?}");
        assert!(!out.status.success());
        assert!(
            took < std::time::Duration::from_secs(10),
            "{name}: {took:?}"
        );
        let ev = w.events();
        let row = ev.as_array().unwrap().last().unwrap().clone();
        assert_eq!(row["outcome"], "rejected", "{row}");
        assert!(row["bundle_sha256"].is_null(), "{row}");
        let read = &row["read"];
        assert_eq!(read["size"], SIZE, "{row}");
        let n = read["read_bytes"].as_u64().unwrap();
        assert!(n > 0 && n <= 64 * 1024, "{row}");
        assert_eq!(read["read_offset"], SIZE - n, "{row}");
        let mut end = vec![0u8; n as usize];
        let k = end.len() - tail.len();
        end[k..].copy_from_slice(tail);
        assert_eq!(read["read_sha256"], hex::encode(sha2::Sha256::digest(&end)));
        assert!(
            row["file"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{name}.airlock.zip")),
            "{row}"
        );
        std::fs::remove_file(&f).unwrap();
    }
}

/// Regression (issue 27): an encrypted bundle's decrypted usage file was
/// written 0644 into an existing 0755 outbox. Every file placed there is
/// 0600 (0640 only for the group `airlock`), whatever the directory's mode;
/// and the upload steps' confirm step names this state directory.
#[test]
fn outbox_files_are_private_whatever_the_directory_mode() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let w = World::new();
    let importer = key(w.dir.path(), "importer_ed25519");
    let recipient = read_pub(&w.p("importer_ed25519.pub"));
    std::fs::create_dir(w.p("outbox")).unwrap();
    std::fs::set_permissions(w.p("outbox"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let usage = sample_usage_clear(&w.p("usage.json"), 5);
    let t = now_minus(1);
    for (name, extra, at) in [
        ("signed", vec![], t),
        ("sealed", vec!["--recipient", recipient.as_str()], t + 60),
    ] {
        let b = w.p(&format!("{name}.airlock.zip"));
        w.export_cmd(&usage, &b, "exporter-state")
            .args(&extra)
            .made_at(at)
            .assert()
            .success();
        w.import(&b)
            .arg("--identity")
            .arg(&importer)
            .arg("--enterprise")
            .arg("octo-corp")
            .assert()
            .success();
    }
    let mut seen = 0;
    for dir in [w.p("outbox"), w.p("outbox/superseded")] {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_file() {
                seen += 1;
                assert_eq!(m.mode() & 0o777, 0o600, "{}", e.path().display());
            }
        }
    }
    assert_eq!(seen, 4, "two usage files and two upload steps");
    let steps = listing(&w.p("outbox"))
        .into_iter()
        .find(|f| f.ends_with(".UPLOAD.txt"))
        .unwrap();
    let text = std::fs::read_to_string(w.p("outbox").join(steps)).unwrap();
    let state = w.p("importer-state");
    assert!(
        text.contains(&format!(
            "4. Confirm GitHub processed it: airlock cloud status --state-dir {} --enterprise octo-corp\n",
            state.display()
        )),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// Issue 27: the source is never modified; a backlog is superseded, not a
// rollback; v1 ledgers migrate.

/// One entry's `lstat`: name (bytes), size, mode, modification and
/// status-change times to the nanosecond.
type Stat = (Vec<u8>, u64, u32, i64, i64, i64, i64);

/// What `lstat` says of `dir` and of everything under it.
fn stat_snapshot(dir: &Path) -> Vec<Stat> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    fn walk(p: &Path, out: &mut Vec<Stat>) {
        let m = std::fs::symlink_metadata(p).unwrap();
        out.push((
            p.as_os_str().as_bytes().to_vec(),
            m.size(),
            m.mode(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        ));
        if m.is_dir() {
            for e in std::fs::read_dir(p).unwrap() {
                walk(&e.unwrap().path(), out);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.sort();
    v
}

/// Regression (issue 27): `import FILE|DIR` must work on a read-only
/// medium (sticks often are) and change nothing in it: no rename, no mode
/// change, no temporary or lock file, not even a status-change time.
/// Checked on a really read-only bind mount in a private mount namespace
/// where one can be made (root is not bound by file modes), and always by
/// `lstat` of every entry before and after.
#[test]
fn import_dir_on_a_read_only_directory_works_and_changes_nothing() {
    let w = World::new();
    let t = now_minus(2);
    let stick = w.p("stick");
    std::fs::create_dir_all(stick.join("sub")).unwrap();
    for (name, host, at) in [
        ("old", "ghes.example.com", t),
        ("new", "ghes.example.com", t + 3600),
        ("other", "other.example.com", t),
    ] {
        let b = w.bundle(name, host, at, &w.key, 3);
        std::fs::rename(&b, stick.join(b.file_name().unwrap())).unwrap();
    }
    std::fs::write(stick.join("junk.airlock.zip"), b"not a bundle").unwrap();
    std::fs::write(stick.join("sub/README.txt"), b"left alone").unwrap();
    let before = stat_snapshot(&stick);
    let check = |out: &std::process::Output, what: &str| {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{what}: {e}\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let t = &v["totals"];
        assert_eq!(
            (&t["imported"], &t["superseded"], &t["refused"]),
            (&2.into(), &1.into(), &1.into()),
            "{what}: {v}"
        );
        assert_eq!(
            stat_snapshot(&stick),
            before,
            "{what}: the directory changed"
        );
    };
    let importer = |n: &str| -> Vec<std::ffi::OsString> {
        vec![
            "import".into(),
            stick.clone().into(),
            "--json".into(),
            "--trust".into(),
            w.allowed.clone().into(),
            "--state-dir".into(),
            w.p(&format!("state-{n}")).into(),
            "--outbox".into(),
            w.p(&format!("outbox-{n}")).into(),
        ]
    };

    // A read-only bind mount of the directory over itself, in a private
    // mount namespace.
    let ro = unshare_mount(
        "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" \
         && ! touch \"$1/.probe\" 2>/dev/null && shift && exec \"$@\"",
        &stick,
    );
    match ro {
        Some(mut c) => {
            c.arg(airlock_bin()).args(importer("ro"));
            c.env("HOME", w.dir.path());
            let out = c.output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(5),
                "read-only mount: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            check(&out, "read-only mount");
        }
        None => eprintln!(
            "NOTE: no mount namespace available (unshare -m needs root or user namespaces); \
             the read-only directory was checked by lstat only"
        ),
    }

    // The same import on the writable directory (another state directory):
    // the same verdicts, and not one entry changed either.
    let mut c = std::process::Command::new(airlock_bin());
    c.args(importer("rw"));
    isolate(&mut c);
    c.env("HOME", w.dir.path());
    let out = c.output().unwrap();
    assert_exit(&out, 5);
    check(&out, "writable directory");
}

/// Write `n` bundles per instance for `instances` instances into `dir`,
/// in process (`write_bundle`, not the CLI): instance i's bundle j is
/// created `150 - 30 j` days ago, with sequence `5 i + j + 1`.
fn write_backlog(w: &World, dir: &Path, instances: usize, n: usize) {
    use airlock::export::{write_bundle, BundleSpec, Input};
    let signer = airlock::keys::load_signer(&w.key, &mut || unreachable!("no passphrase")).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let usage = w.p("license-usage.json");
    let recipients = airlock::crypt::Recipients::default();
    for i in 0..instances {
        for j in 0..n {
            std::fs::write(
                &usage,
                airlock::sample::usage_clear(&backlog_host(i), &backlog_sid(i), 2),
            )
            .unwrap();
            let spec = BundleSpec {
                signer: &signer,
                recipients: &recipients,
                host_name: None,
                server_id: None,
                created: backlog_time(150 - 30 * j as u64),
                expires_in: std::time::Duration::from_secs(366 * 86400),
                tool: airlock::tool_version(),
            };
            let f = std::fs::File::create(dir.join(format!("h{i:03}-{j}.airlock.zip"))).unwrap();
            write_bundle(
                f,
                &[Input::path(&usage).unwrap()],
                &spec,
                (5 * i + j + 1) as u64,
            )
            .unwrap();
        }
    }
}

fn backlog_host(i: usize) -> String {
    format!("h{i:03}.example.com")
}

fn backlog_sid(i: usize) -> String {
    format!("{i:08x}-0000-4000-8000-{i:012x}")
}

fn backlog_time(days_ago: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(now_minus(days_ago))
}

/// Every string in `v` that mentions a rollback.
fn rollback_warnings(v: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) if s.contains("rollback") => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

/// Regression (issue 27): `import DIR` of a normal backlog (500 bundles,
/// 100 instances, 5 months each) printed "100 imported, 400 superseded"
/// but recorded the 400 as rejected `LEDGER-ROLLBACK`, and `fleet` warned
/// of rollback attempts on every instance, hiding a real one.
#[test]
fn a_backlog_is_superseded_not_a_rollback_and_a_late_older_bundle_is_one() {
    let w = World::new();
    let backlog = w.p("backlog");
    let start = std::time::Instant::now();
    write_backlog(&w, &backlog, 100, 5);
    eprintln!("500 bundles written in {:?}", start.elapsed());
    let trust = w.p("allowed_signers");
    std::fs::write(
        &trust,
        format!(
            "*.example.com namespaces=\"airlock-bundle\" {}\n",
            read_pub(&w.p("exporter_ed25519.pub"))
        ),
    )
    .unwrap();
    let run = |what: &str| -> serde_json::Value {
        let start = std::time::Instant::now();
        let out = w.import_std(&backlog).arg("--json").output().unwrap();
        eprintln!("import DIR ({what}): {:?}", start.elapsed());
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let fleet = || -> serde_json::Value {
        airlock()
            .args(["fleet", "--json", "--state-dir"])
            .arg(w.p("importer-state"))
            .json_ok()
    };
    let count = |ev: &serde_json::Value, outcome: &str| {
        ev.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "import" && e["outcome"] == outcome)
            .count()
    };

    let v = run("first");
    assert_eq!(v["totals"]["imported"], 100, "{}", v["totals"]);
    assert_eq!(v["totals"]["superseded"], 400, "{}", v["totals"]);
    let ev = w.events();
    assert_eq!(count(&ev, "superseded"), 400);
    assert_eq!(count(&ev, "accepted"), 100);
    assert_eq!(count(&ev, "rejected"), 0);
    let f = fleet();
    assert_eq!(f["instances"].as_array().unwrap().len(), 100);
    assert_eq!(rollback_warnings(&f), Vec::<String>::new());

    // The same backlog again: nothing new, and still no rollback.
    let v = run("again");
    assert_eq!(v["totals"]["already-imported"], 100, "{}", v["totals"]);
    assert_eq!(v["totals"]["superseded"], 400, "{}", v["totals"]);
    assert_eq!(count(&w.events(), "rejected"), 0);
    assert_eq!(rollback_warnings(&fleet()), Vec::<String>::new());

    // A bundle never seen, older than the newest of h007: a rollback, and
    // the one warning.
    let late = w.p("late");
    std::fs::create_dir_all(&late).unwrap();
    {
        use airlock::export::{write_bundle, BundleSpec, Input};
        let signer =
            airlock::keys::load_signer(&w.key, &mut || unreachable!("no passphrase")).unwrap();
        let usage = w.p("license-usage.json");
        std::fs::write(
            &usage,
            airlock::sample::usage_clear(&backlog_host(7), &backlog_sid(7), 2),
        )
        .unwrap();
        let spec = BundleSpec {
            signer: &signer,
            recipients: &airlock::crypt::Recipients::default(),
            host_name: None,
            server_id: None,
            created: backlog_time(45),
            expires_in: std::time::Duration::from_secs(366 * 86400),
            tool: airlock::tool_version(),
        };
        let f = std::fs::File::create(late.join("h007-late.airlock.zip")).unwrap();
        write_bundle(f, &[Input::path(&usage).unwrap()], &spec, 1000).unwrap();
    }
    let out = w
        .import_std(&late.join("h007-late.airlock.zip"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("AIRLOCK-E-LEDGER-OLDER") || err.contains("AIRLOCK-E-LEDGER-ROLLBACK"),
        "{err}"
    );
    let f = fleet();
    assert_eq!(
        rollback_warnings(&f),
        vec!["1 rollback or replay attempt(s) refused".to_string()],
        "{f}"
    );
    let h7 = f["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["host_name"] == backlog_host(7))
        .unwrap();
    assert_eq!(h7["rollback_attempts"], 1, "{h7}");
}

/// Issue 27: a ledger written by a v1 airlock, read by the CLI: it is
/// migrated, `log --verify` succeeds, `log --json` prints each v1 record
/// with exactly the fields and values it had, and new records continue
/// the chain.
#[test]
fn a_v1_ledger_migrates_and_log_prints_its_records_as_before() {
    use serde_json::{json, Value};
    use sha2::Digest;
    let w = World::new();
    let state = w.p("importer-state");
    std::fs::create_dir_all(&state).unwrap();
    const SHA: &str = "2b1d2e5c7a1f6e0b9d8c7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d";
    const SHA2: &str = "9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f";
    const ID: &str = "0123456789abcdef0123456789abcdef";
    const KEY: &str = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const SID: &str = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    assert_eq!(KEY.len(), 50);
    let h = "ghes.example.com";
    let c = "2026-11-01T00:00:00Z";
    let x = "2026-12-01T00:00:00Z";
    let n = Value::Null;
    // The 15 v1 fields of each record: seq, kind, at, outcome,
    // bundle_sha256, bundle_id, signer, principal, sequence, host_name,
    // server_id, created, expires, code, detail.
    let records: Vec<[Value; 15]> = vec![
        [
            json!(1),
            json!("export"),
            json!("2026-11-01T00:00:01Z"),
            json!("reserved"),
            n.clone(),
            n.clone(),
            json!(KEY),
            n.clone(),
            json!(7),
            json!(h),
            json!(SID),
            n.clone(),
            n.clone(),
            n.clone(),
            n.clone(),
        ],
        [
            json!(2),
            json!("import"),
            json!("2026-11-02T00:00:00Z"),
            json!("accepted"),
            json!(SHA),
            json!(ID),
            json!(KEY),
            json!(h),
            json!(7),
            json!(h),
            json!(SID),
            json!(c),
            json!(x),
            n.clone(),
            n.clone(),
        ],
        [
            json!(3),
            json!("handover"),
            json!("2026-11-02T00:00:01Z"),
            json!("done"),
            json!(SHA),
            json!(ID),
            json!(KEY),
            n.clone(),
            json!(7),
            json!(h),
            json!(SID),
            json!(c),
            json!(x),
            n.clone(),
            json!("/o/ghes.json; /o/ghes.UPLOAD.txt"),
        ],
        [
            json!(4),
            json!("import"),
            json!("2026-11-03T00:00:00Z"),
            json!("rejected"),
            json!(SHA2),
            json!(ID),
            json!(KEY),
            n.clone(),
            json!(7),
            json!(h),
            json!(SID),
            json!(c),
            json!(x),
            json!("AIRLOCK-E-LEDGER-ROLLBACK"),
            json!("sequence 7 is not above 7: rollback or replay"),
        ],
        [
            json!(5),
            json!("cloud-sync"),
            json!("2026-11-04T00:00:00Z"),
            json!("success"),
            n.clone(),
            n.clone(),
            n.clone(),
            n.clone(),
            n.clone(),
            json!(h),
            json!(SID),
            json!("Nov 3, 2026"),
            n.clone(),
            n.clone(),
            n.clone(),
        ],
        [
            json!(6),
            json!("confirm"),
            json!("2026-11-04T00:00:01Z"),
            json!("confirmed"),
            json!(SHA),
            json!(ID),
            n.clone(),
            n.clone(),
            json!(7),
            json!(h),
            json!(SID),
            json!(c),
            n.clone(),
            n.clone(),
            json!("Nov 3, 2026"),
        ],
    ];
    let names = [
        "seq",
        "kind",
        "at",
        "outcome",
        "bundle_sha256",
        "bundle_id",
        "signer",
        "principal",
        "sequence",
        "host_name",
        "server_id",
        "created",
        "expires",
        "code",
        "detail",
    ];
    let db = rusqlite::Connection::open(state.join("ledger.sqlite")).unwrap();
    db.execute_batch(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO meta VALUES ('schema_version', '1');
         CREATE TABLE events (
            seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, at TEXT NOT NULL, outcome TEXT NOT NULL,
            bundle_sha256 TEXT, bundle_id TEXT, signer TEXT, principal TEXT, sequence INTEGER,
            host_name TEXT, server_id TEXT, created TEXT, expires TEXT, code TEXT, detail TEXT,
            prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
         CREATE INDEX events_bundle ON events(bundle_sha256);",
    )
    .unwrap();
    let mut prev = "0".repeat(64);
    let mut want = Vec::new();
    for r in &records {
        // The v1 chain: SHA-256 over the previous hash, a newline and the
        // compact JSON array of the 15 fields (docs/import.md).
        let mut hh = sha2::Sha256::new();
        hh.update(prev.as_bytes());
        hh.update(b"\n");
        hh.update(Value::Array(r.to_vec()).to_string().as_bytes());
        let hash = hex::encode(hh.finalize());
        let sql_values: Vec<rusqlite::types::Value> = r
            .iter()
            .chain([&json!(prev), &json!(hash)])
            .map(|v| match v {
                Value::Null => rusqlite::types::Value::Null,
                Value::Number(n) => rusqlite::types::Value::Integer(n.as_i64().unwrap()),
                Value::String(s) => rusqlite::types::Value::Text(s.clone()),
                _ => unreachable!(),
            })
            .collect();
        db.execute(
            "INSERT INTO events VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
            rusqlite::params_from_iter(sql_values),
        )
        .unwrap();
        let mut obj = serde_json::Map::new();
        for (k, v) in names.iter().zip(r.iter()) {
            obj.insert(k.to_string(), v.clone());
        }
        obj.insert("prev_hash".into(), json!(prev));
        obj.insert("hash".into(), json!(hash));
        want.push(Value::Object(obj));
        prev = hash;
    }
    drop(db);

    let v = airlock()
        .args(["log", "--verify", "--json", "--state-dir"])
        .arg(&state)
        .json_ok();
    assert_eq!(v["chain_verified"], true);
    assert_eq!(v["head"], json!(prev));
    let got = v["events"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "a v1 record prints differently after the migration");
    }
    let db = rusqlite::Connection::open(state.join("ledger.sqlite")).unwrap();
    let version: String = db
        .query_row(
            "SELECT value FROM meta WHERE key='schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, "3", "v1 migrates straight to the current schema");
    drop(db);

    // New records continue the chain, and the v1 records print the same.
    let b = w.bundle("fresh", "other.example.com", now_minus(1), &w.key, 2);
    w.import(&b).assert().success();
    let ev = w.events();
    let ev = ev.as_array().unwrap();
    assert!(ev.len() > want.len(), "{ev:?}");
    assert_eq!(&ev[..want.len()], &want[..]);
    let out = airlock()
        .args(["log", "--verify", "--state-dir"])
        .arg(&state)
        .run_ok();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("chain verified: {} records", ev.len())),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
