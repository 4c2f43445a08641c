//! Unattended operation: `airlock import` of batches and directories, the
//! drop-folder importer `airlock watch` (slow copies, many instances, key
//! rotation, duplicates, corruption, SIGKILL at random moments), the lock
//! wait message, and the systemd units with the recipes of
//! docs/automation.md.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sha2::Digest;

fn ssh_time(t: u64) -> String {
    let s = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(t))
        .to_string();
    format!(
        "{}Z",
        s.chars().filter(|c| c.is_ascii_digit()).collect::<String>()
    )
}

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn p(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }
    fn key(&self, name: &str) -> PathBuf {
        key(self.dir.path(), name)
    }
    fn pubkey(&self, name: &str) -> String {
        read_pub(&self.p(&format!("{name}.pub")))
    }
    /// Export a usage file of `host` created at `t`, signed with `key`.
    fn bundle(&self, key: &Path, host: &str, t: u64, users: usize) -> PathBuf {
        let u = self.p(&format!("u-{host}-{t}.json"));
        std::fs::write(
            &u,
            airlock::sample::usage_clear(host, &server_id(host), users),
        )
        .unwrap();
        let out = self.p("made");
        std::fs::create_dir_all(&out).unwrap();
        let kname = key.file_name().unwrap().to_string_lossy().into_owned();
        let o = airlock()
            .arg("export")
            .arg(&u)
            .arg("--key")
            .arg(key)
            .arg("--out")
            .arg(&out)
            .arg("--json")
            .arg("--state-dir")
            .arg(self.p(&format!("exporter-{kname}")))
            .env("SOURCE_DATE_EPOCH", t.to_string())
            .arg("--reproducible")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        PathBuf::from(v["bundle"].as_str().expect("bundle path in export --json"))
    }
    fn importer_args(&self, c: &mut Command, allowed: &Path) {
        // A named outbox outside the home directory must exist.
        std::fs::create_dir_all(self.p("outbox")).unwrap();
        c.arg("--trust")
            .arg(allowed)
            .arg("--state-dir")
            .arg(self.p("importer-state"))
            .arg("--outbox")
            .arg(self.p("outbox"));
    }
    fn cmd(&self) -> Command {
        let mut c = Command::new(airlock_bin());
        isolate(&mut c);
        c
    }
    fn events(&self) -> Vec<serde_json::Value> {
        log_events(&self.p("importer-state"))
    }
}

fn sha(p: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn import_takes_several_bundles_and_directories_newest_first_per_instance() {
    let w = World::new();
    let k = w.key("exporter_ed25519");
    let allowed = allowed_signers(
        w.dir.path(),
        "*.example.com",
        &[&w.pubkey("exporter_ed25519")],
    );
    let t = now_secs() - 3 * 86400;
    let a1 = w.bundle(&k, "a.example.com", t, 3);
    let a2 = w.bundle(&k, "a.example.com", t + 600, 4);
    let b1 = w.bundle(&k, "b.example.com", t, 5);
    let drop = w.p("incoming");
    std::fs::create_dir_all(&drop).unwrap();
    for b in [&a1, &b1] {
        std::fs::copy(b, drop.join(b.file_name().unwrap())).unwrap();
    }
    let mut c = w.cmd();
    c.arg("import").arg(&drop).arg(&a2);
    w.importer_args(&mut c, &allowed);
    let out = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Newest of a first: a2 is handed over, a1 (older, same batch) superseded.
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("imported") && lines[0].contains(&*a2.display().to_string()),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("superseded")
            && lines[1].contains(&*a1.file_name().unwrap().to_string_lossy()),
        "{stdout}"
    );
    assert!(lines[2].starts_with("imported"), "{stdout}");
    assert!(
        stdout.contains("3 bundle(s): 2 imported, 1 superseded"),
        "{stdout}"
    );
    let outbox = names(&w.p("outbox"));
    assert_eq!(
        outbox.iter().filter(|f| f.ends_with(".json")).count(),
        2,
        "{outbox:?}"
    );

    // Again: nothing new, and not a failure.
    let mut c = w.cmd();
    c.arg("import").arg(&drop).arg(&a2).arg("--json");
    w.importer_args(&mut c, &allowed);
    let out = c.output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["totals"]["already-imported"], 2);

    // A corrupted bundle in a batch: the others are still judged, the exit
    // status says something was refused, --json gives one document.
    let mut bad = std::fs::read(&b1).unwrap();
    bad[200] ^= 1;
    let badp = w.p("bad.airlock.zip");
    std::fs::write(&badp, bad).unwrap();
    let mut c = w.cmd();
    c.arg("import").arg(&badp).arg(&b1).arg("--json");
    w.importer_args(&mut c, &allowed);
    let out = c.output().unwrap();
    let v = json_exit(&out, 5);
    assert_eq!(v["ok"], false);
    assert_eq!(v["totals"]["refused"], 1);
    assert_eq!(v["totals"]["already-imported"], 1);
    assert_quiet(&out);
}

#[test]
fn import_says_when_it_waits_for_another_runs_lock() {
    let w = World::new();
    let k = w.key("exporter_ed25519");
    let allowed = allowed_signers(
        w.dir.path(),
        "*.example.com",
        &[&w.pubkey("exporter_ed25519")],
    );
    let b = w.bundle(&k, "a.example.com", now_secs() - 60, 3);
    let held = airlock::state::StateDir::open(&w.p("importer-state")).unwrap();
    let mut c = w.cmd();
    c.arg("import").arg(&b).arg("-v");
    w.importer_args(&mut c, &allowed);
    let child = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    drop(held);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("waiting for another airlock process"), "{err}");
    assert!(
        err.contains("waited ") && err.contains(" s for the state directory lock"),
        "{err}"
    );
}

/// A watcher process on `drop`.
fn spawn_watch(w: &World, drop: &Path, allowed: &Path, settle: &str) -> Child {
    let mut c = w.cmd();
    c.arg("watch")
        .arg(drop)
        .args([
            "--settle",
            settle,
            "--poll",
            "200ms",
            "--retry-after",
            "200ms",
        ])
        .args(["--incomplete-after", "10m"]);
    w.importer_args(&mut c, allowed);
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

fn sigterm(child: &mut Child) -> Option<i32> {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    child.wait().unwrap().code()
}

/// Regression: a half-copied file was logged as `rejected … NOT-A-BUNDLE`
/// on every poll.
#[test]
fn a_slowly_copied_bundle_is_imported_once_when_complete() {
    let w = World::new();
    let k = w.key("exporter_ed25519");
    let allowed = allowed_signers(
        w.dir.path(),
        "*.example.com",
        &[&w.pubkey("exporter_ed25519")],
    );
    let b = w.bundle(&k, "a.example.com", now_secs() - 60, 12_000);
    let bytes = std::fs::read(&b).unwrap();
    assert!(bytes.len() > 1_500_000, "{}", bytes.len());
    let drop = w.p("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let mut watcher = spawn_watch(&w, &drop, &allowed, "1s");
    let target = drop.join(b.file_name().unwrap());
    let mut f = std::fs::File::create(&target).unwrap();
    let start = Instant::now();
    for piece in bytes.chunks(64 * 1024) {
        f.write_all(piece).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    drop_file(f);
    let copy_took = start.elapsed();
    assert!(copy_took > Duration::from_secs(3), "{copy_took:?}");
    let done = drop.join("done").join(b.file_name().unwrap());
    assert!(
        wait_until(Duration::from_secs(60), || done.exists()),
        "never imported"
    );
    assert_eq!(sigterm(&mut watcher), Some(0));
    let ev = w.events();
    let imports: Vec<_> = ev.iter().filter(|e| e["kind"] == "import").collect();
    assert_eq!(imports.len(), 1, "{imports:?}");
    assert_eq!(imports[0]["outcome"], "accepted");
    assert_eq!(imports[0]["bundle_sha256"], sha(&b));
    assert!(names(&drop.join("quarantine")).is_empty());
}

fn drop_file(f: std::fs::File) {
    f.sync_all().unwrap();
}

/// 20 instances × 5 bundles, three signing keys (one rotated mid-way),
/// dropped in random order, some twice, some corrupted, some half-copied
/// then completed, while the watcher is killed with SIGKILL at random
/// moments and restarted.
#[test]
fn a_hundred_bundles_from_twenty_instances_with_kills() {
    let w = World::new();
    let retired = w.key("retired_ed25519");
    let current = w.key("exporter_ed25519");
    let other = w.key("other-host_ed25519");
    let t0 = now_secs() - 10 * 86400;
    let mid = t0 + 2 * 86400 + 43200; // between bundle 2 and 3
    let allowed = w.p("allowed_signers");
    std::fs::write(
        &allowed,
        format!(
            "h0*.example.com,h10.example.com namespaces=\"airlock-bundle\",valid-before=\"{}\" {}\n\
             h0*.example.com,h10.example.com namespaces=\"airlock-bundle\",valid-after=\"{}\" {}\n\
             h1?.example.com,h20.example.com,!h10.example.com namespaces=\"airlock-bundle\" {}\n",
            ssh_time(mid),
            w.pubkey("retired_ed25519"),
            ssh_time(mid),
            w.pubkey("exporter_ed25519"),
            w.pubkey("other-host_ed25519"),
        ),
    )
    .unwrap();
    // Make the 100 bundles.
    let mut bundles: Vec<(String, usize, PathBuf)> = Vec::new();
    for h in 1..=20 {
        let host = format!("h{h:02}.example.com");
        for i in 0..5u64 {
            let t = t0 + i * 86400;
            let key = if h > 10 {
                &other
            } else if t < mid {
                &retired
            } else {
                &current
            };
            let b = w.bundle(key, &host, t, 2 + i as usize);
            bundles.push((host.clone(), i as usize, b));
        }
    }
    // The schedule: a shuffled drop of all 100, then 10 again, 5 corrupted
    // copies, and 3 of them copied in two halves with a pause between.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let mut order: Vec<usize> = (0..bundles.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, next(i + 1));
    }
    enum Drop {
        Whole(String, Vec<u8>),
        Half(String, Vec<u8>),
    }
    let mut plan = Vec::new();
    for (n, &i) in order.iter().enumerate() {
        let p = &bundles[i].2;
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(p).unwrap();
        if n % 33 == 5 {
            plan.push(Drop::Half(name, bytes));
        } else {
            plan.push(Drop::Whole(name, bytes));
        }
    }
    let mut corrupted = Vec::new();
    for j in 0..5 {
        let (_, _, p) = &bundles[order[j * 7]];
        let mut bytes = std::fs::read(p).unwrap();
        bytes[150] ^= 0x40;
        let name = format!("corrupt{j}-{}", p.file_name().unwrap().to_string_lossy());
        corrupted.push(name.clone());
        plan.insert(10 + j * 15, Drop::Whole(name, bytes));
    }
    for j in 0..10 {
        let p = &bundles[order[j * 9]].2;
        plan.push(Drop::Whole(
            p.file_name().unwrap().to_string_lossy().into_owned(),
            std::fs::read(p).unwrap(),
        ));
    }
    let drop = w.p("drop");
    std::fs::create_dir_all(&drop).unwrap();

    // Drop on one thread; kill and restart the watcher on this one.
    let dropper = {
        let drop = drop.clone();
        std::thread::spawn(move || {
            let mut pending_halves: Vec<(String, Vec<u8>)> = Vec::new();
            for (n, d) in plan.into_iter().enumerate() {
                match d {
                    Drop::Whole(name, bytes) => {
                        // A second copy waits until the first was moved away.
                        let target = drop.join(&name);
                        let _ = wait_until(Duration::from_secs(60), || !target.exists());
                        std::fs::write(&target, &bytes).unwrap();
                    }
                    Drop::Half(name, bytes) => {
                        std::fs::write(drop.join(&name), &bytes[..bytes.len() / 2]).unwrap();
                        pending_halves.push((name, bytes));
                    }
                }
                if n % 4 == 3 {
                    for (name, bytes) in pending_halves.drain(..) {
                        let mut f = std::fs::OpenOptions::new()
                            .append(true)
                            .open(drop.join(&name))
                            .unwrap();
                        f.write_all(&bytes[bytes.len() / 2..]).unwrap();
                    }
                }
                std::thread::sleep(Duration::from_millis(40));
            }
            for (name, bytes) in pending_halves {
                std::fs::write(drop.join(name), bytes).unwrap();
            }
        })
    };
    let mut kills = 0;
    let mut watcher = spawn_watch(&w, &drop, &allowed, "300ms");
    while !dropper.is_finished() || kills < 10 {
        std::thread::sleep(Duration::from_millis(250 + 60 * next(10) as u64));
        watcher.kill().unwrap(); // SIGKILL
        watcher.wait().unwrap();
        kills += 1;
        watcher = spawn_watch(&w, &drop, &allowed, "300ms");
    }
    dropper.join().unwrap();
    // Claimed files (in a pass, judged newest first) are pending too.
    let pending = || {
        names(&drop)
            .iter()
            .chain(names(&drop.join(".airlock-claim")).iter())
            .filter(|n| n.ends_with(".airlock.zip"))
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(300), || pending() == 0),
        "left in the drop folder: {:?}",
        names(&drop)
    );
    // Let the last watcher finish starting (its signal handling included)
    // before the stop: a SIGTERM in its first milliseconds has the default
    // action, as for any program.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(sigterm(&mut watcher), Some(0));
    eprintln!("{kills} kills");
    assert!(kills >= 10);

    // Quarantine: every corrupted copy, with its reason; and genuine
    // bundles only as rollbacks: older than a bundle of their instance
    // accepted in an earlier pass (issue 27: a pass's backlog is
    // superseded, a late older bundle is a rollback).
    let q = names(&drop.join("quarantine"));
    let qb: Vec<&String> = q.iter().filter(|n| n.ends_with(".airlock.zip")).collect();
    for n in &corrupted {
        assert!(
            qb.contains(&n),
            "{n} not quarantined: {q:?}\ndone: {:?}\nclaim: {:?}\ndrop: {:?}",
            names(&drop.join("done")),
            names(&drop.join(".airlock-claim")),
            names(&drop)
        );
    }
    let mut rollbacks = 0;
    for n in &qb {
        let r: serde_json::Value = serde_json::from_slice(
            &std::fs::read(drop.join("quarantine").join(format!("{n}.reason.json"))).unwrap(),
        )
        .unwrap();
        let code = r["code"].as_str().unwrap();
        if corrupted.contains(n) {
            assert!(
                code == "AIRLOCK-E-ZIP-CRC" || code == "AIRLOCK-E-MEMBER-DIGEST",
                "{n}: {r}"
            );
        } else {
            assert!(
                code == "AIRLOCK-E-LEDGER-ROLLBACK" || code == "AIRLOCK-E-LEDGER-OLDER",
                "{n}: {r}"
            );
            rollbacks += 1;
        }
    }
    // Done: the 100 and the 10 second copies, less the rollbacks.
    let done = names(&drop.join("done"));
    assert_eq!(
        done.iter().filter(|n| n.ends_with(".airlock.zip")).count() + rollbacks,
        110,
        "{done:?}"
    );
    eprintln!("{rollbacks} late older bundles quarantined as rollbacks");
    // Nothing is left claimed.
    assert!(names(&drop.join(".airlock-claim")).is_empty());

    // Each instance's newest bundle was handed over exactly once; no
    // bundle was handed over twice.
    let ev = w.events();
    let mut handed: HashMap<String, usize> = HashMap::new();
    for e in &ev {
        if e["kind"] == "handover" && e["outcome"] == "done" {
            *handed
                .entry(e["bundle_sha256"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert!(handed.values().all(|n| *n == 1), "{handed:?}");
    let mut newest: BTreeMap<&str, &PathBuf> = BTreeMap::new();
    for (host, i, p) in &bundles {
        if *i == 4 {
            newest.insert(host, p);
        }
    }
    for (host, p) in &newest {
        assert_eq!(
            handed.get(&sha(p)),
            Some(&1),
            "{host}: newest not handed over once"
        );
    }
    // Nothing older than an instance's last hand-over was handed over after it.
    let mut last: HashMap<String, String> = HashMap::new();
    for e in &ev {
        if e["kind"] == "handover" && e["outcome"] == "done" {
            let host = e["host_name"].as_str().unwrap().to_string();
            let created = e["created"].as_str().unwrap().to_string();
            if let Some(prev) = last.get(&host) {
                assert!(
                    created > *prev,
                    "{host}: {created} handed over after {prev}"
                );
            }
            last.insert(host, created);
        }
    }
    // fleet: 20 instances.
    let out = w
        .cmd()
        .args(["fleet", "--json", "--state-dir"])
        .arg(w.p("importer-state"))
        .run_ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["instances"].as_array().unwrap().len(), 20);
}

/// Whether user namespaces and setpriv are available for [`sandboxed`].
fn sandbox_usable() -> bool {
    Command::new("unshare")
        .args(["-rm", "true"])
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("setpriv")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// `sh -c CMD` under an approximation of the units' sandbox, without a
/// systemd manager (none runs in the test containers): user and mount
/// namespaces with the whole file system read-only but `rw` (ProtectSystem=
/// strict plus ReadWritePaths= and StateDirectory=), then no new privileges
/// and an empty capability bounding set (NoNewPrivileges=,
/// CapabilityBoundingSet=). SystemCallFilter= and the other kernel-side
/// directives need systemd itself; that is said on stderr each time, and
/// the whole approximation is skipped, visibly, where user namespaces are
/// not allowed.
fn sandboxed(cmd: &str, rw: &[&Path]) -> Command {
    let mut c = Command::new("/bin/sh");
    if !sandbox_usable() {
        eprintln!(
            "systemd_units_verify_and_their_recipes_run: sandbox skipped (no user namespaces or no setpriv here); {cmd} runs unsandboxed"
        );
        c.arg("-c").arg(cmd);
        return c;
    }
    eprintln!(
        "systemd_units_verify_and_their_recipes_run: sandbox approximated (ProtectSystem=strict, ReadWritePaths=, NoNewPrivileges=, CapabilityBoundingSet=); SystemCallFilter= and the other kernel-side directives are not applied without a systemd manager"
    );
    let q = |p: &Path| format!("'{}'", p.display());
    let mut script = String::from("set -e; ");
    for p in rw {
        script.push_str(&format!("mount --bind {0} {0}; ", q(p)));
    }
    script.push_str("mount -o remount,bind,ro /; ");
    script.push_str(
        "exec setpriv --no-new-privs --bounding-set=-all --inh-caps=-all /bin/sh -c \"$1\"",
    );
    let mut c = Command::new("unshare");
    c.args(["-rm", "--propagation", "private", "/bin/sh", "-c"])
        .arg(script)
        .arg("sh")
        .arg(cmd);
    c
}

/// The systemd units pass `systemd-analyze verify`, and the commands they
/// run (docs/automation.md) work: the export unit's pipeline with a
/// stand-in `ssh` that plays the GHES appliance, then the watch unit's
/// importer on the drop folder, configured by airlock.toml as the unit is.
#[test]
fn systemd_units_verify_and_their_recipes_run() {
    let w = World::new();
    let bin = airlock_bin();
    let units = root().join("packaging/systemd");
    let staged = w.p("units");
    std::fs::create_dir_all(&staged).unwrap();
    let mut files = Vec::new();
    for n in [
        "airlock-export.service",
        "airlock-export.timer",
        "airlock-watch.service",
    ] {
        let text = std::fs::read_to_string(units.join(n)).unwrap();
        let p = staged.join(n);
        std::fs::write(
            &p,
            text.replace("/usr/bin/airlock", &bin.display().to_string()),
        )
        .unwrap();
        files.push(p);
    }
    let out = tool("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Both services score at most 2.5 ("OK") in systemd's own exposure
    // measure (issue 28: they were 5.9 and 3.7).
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "service"))
    {
        let out = tool("systemd-analyze")
            .args(["security", "--offline=true", "--no-pager"])
            .arg(f)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let score: f64 = text
            .lines()
            .find_map(|l| {
                l.split_once("Overall exposure level for ")?
                    .1
                    .split_once(": ")?
                    .1
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| {
                panic!(
                    "no exposure level for {}: {text}{}",
                    f.display(),
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        assert!(score <= 2.5, "{}: exposure {score}\n{text}", f.display());
    }

    // The unit's environment, as systemd would set it, with paths of this test.
    let unit = |n: &str| std::fs::read_to_string(units.join(n)).unwrap();
    let env_of = |text: &str| -> Vec<(String, String)> {
        text.lines()
            .filter_map(|l| l.strip_prefix("Environment="))
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let exec_of = |text: &str, env: &HashMap<String, String>| -> String {
        let mut cmd = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap()
            .replace("/usr/bin/airlock", &bin.display().to_string());
        // systemd substitutes ${VAR} and $VAR in command lines itself.
        for (k, v) in env {
            cmd = cmd
                .replace(&format!("${{{k}}}"), v)
                .replace(&format!("\"${k}\""), &format!("\"{v}\""));
        }
        cmd
    };
    let key = w.key("exporter_ed25519");
    let transfer = w.p("transfer");
    std::fs::create_dir_all(&transfer).unwrap();
    let export_unit = unit("airlock-export.service");
    let mut env: HashMap<String, String> = env_of(&export_unit).into_iter().collect();
    env.insert("AIRLOCK_KEY".into(), key.display().to_string());
    env.insert("AIRLOCK_TRANSFER".into(), transfer.display().to_string());
    env.insert(
        "AIRLOCK_STATE_DIR".into(),
        w.p("exporter-state").display().to_string(),
    );
    // A stand-in for the appliance: `ssh … ghe-license usage -o -y` prints
    // the usage file (and records how it was called).
    let fake = w.p("fakebin");
    std::fs::create_dir_all(&fake).unwrap();
    let usage = sample_usage_encrypted(&w.p("usage.json"), 3000);
    std::fs::write(
        fake.join("ssh"),
        format!(
            "#!/bin/sh\necho \"$@\" > {}\ncat {}\n",
            w.p("ssh-rec/ssh-args").display(),
            usage.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(fake.join("ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cmd = exec_of(&export_unit, &env);
    // The unit's ReadWritePaths= (the transfer directory) and its state
    // directory; the stand-in ssh records its arguments in a directory of
    // its own.
    let export_rw = [transfer.clone(), w.p("exporter-state"), w.p("ssh-rec")];
    std::fs::create_dir_all(w.p("exporter-state")).unwrap();
    std::fs::create_dir_all(w.p("ssh-rec")).unwrap();
    let export_rw: Vec<&Path> = export_rw.iter().map(|p| p.as_path()).collect();
    let mut c = sandboxed(&cmd, &export_rw);
    isolate(&mut c);
    c.envs(&env).env(
        "PATH",
        format!("{}:{}", fake.display(), std::env::var("PATH").unwrap()),
    );
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = std::fs::read_to_string(w.p("ssh-rec/ssh-args")).unwrap();
    assert!(
        args.contains("admin@ghes.example.com") && args.contains("ghe-license usage -o -y"),
        "{args}"
    );
    let made = names(&transfer);
    assert_eq!(made.len(), 1, "{made:?}");
    // The sandbox bites: a transfer directory changed in the environment
    // alone (not in ReadWritePaths=) is read-only, which is why the unit
    // documents one drop-in setting both.
    let elsewhere = w.p("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut env2 = env.clone();
    env2.insert("AIRLOCK_TRANSFER".into(), elsewhere.display().to_string());
    let mut c = sandboxed(&exec_of(&export_unit, &env2), &export_rw);
    isolate(&mut c);
    c.envs(&env2).env(
        "PATH",
        format!("{}:{}", fake.display(), std::env::var("PATH").unwrap()),
    );
    let o = c.output().unwrap();
    if sandbox_usable() {
        assert!(!o.status.success(), "wrote outside ReadWritePaths=");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Read-only file system"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(names(&elsewhere).is_empty() || !sandbox_usable());

    // A failing ssh fails the unit (pipefail), and leaves no bundle.
    std::fs::write(fake.join("ssh"), "#!/bin/sh\nexit 255\n").unwrap();
    let mut c = sandboxed(&cmd, &export_rw);
    isolate(&mut c);
    c.envs(&env).env(
        "PATH",
        format!("{}:{}", fake.display(), std::env::var("PATH").unwrap()),
    );
    assert!(!c.output().unwrap().status.success());
    assert_eq!(names(&transfer).len(), 1);

    // Carried across: the bundle arrives in the drop folder; the watch unit
    // imports it with the configuration file the unit names.
    let drop = w.p("drop");
    std::fs::create_dir_all(&drop).unwrap();
    std::fs::copy(transfer.join(&made[0]), drop.join(&made[0])).unwrap();
    let allowed = allowed_signers(
        w.dir.path(),
        "ghes.example.com",
        &[&w.pubkey("exporter_ed25519")],
    );
    std::fs::create_dir_all(w.p("outbox")).unwrap();
    let config = w.p("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "trust = \"{}\"\noutbox = \"{}\"\nenterprise = \"octo-corp\"\n",
            allowed.display(),
            w.p("outbox").display()
        ),
    )
    .unwrap();
    let watch_unit = unit("airlock-watch.service");
    let mut env: HashMap<String, String> = env_of(&watch_unit).into_iter().collect();
    env.insert("AIRLOCK_DROP".into(), drop.display().to_string());
    env.insert("AIRLOCK_CONFIG".into(), config.display().to_string());
    env.insert(
        "AIRLOCK_STATE_DIR".into(),
        w.p("importer-state").display().to_string(),
    );
    let cmd = exec_of(&watch_unit, &env);
    // The unit's ReadWritePaths= (drop folder, outbox) and state directory.
    std::fs::create_dir_all(w.p("importer-state")).unwrap();
    let (outbox, state) = (w.p("outbox"), w.p("importer-state"));
    let mut c = sandboxed(&format!("exec {cmd}"), &[&drop, &outbox, &state]);
    isolate(&mut c);
    let mut child = c
        .envs(&env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let done = drop.join("done").join(&made[0]);
    assert!(
        wait_until(Duration::from_secs(60), || done.exists()),
        "{cmd}: not imported"
    );
    assert_eq!(sigterm(&mut child), Some(0));
    let outbox = names(&w.p("outbox"));
    assert!(
        outbox.iter().any(|f| f.ends_with(".UPLOAD.txt")),
        "{outbox:?}"
    );
}

// ---------------------------------------------------------------------------
// Issue 27: the watcher's claim rule, names, --once, signals and ordering.

/// A watcher command on `drop` with the importer's arguments of `w`.
fn watch_cmd(w: &World, drop: &Path, allowed: &Path, settle: &str, extra: &[&str]) -> Command {
    let mut c = w.cmd();
    c.arg("watch")
        .arg(drop)
        .args([
            "--settle",
            settle,
            "--poll",
            "200ms",
            "--retry-after",
            "200ms",
        ])
        .args(extra);
    w.importer_args(&mut c, allowed);
    c
}

/// Spawn `c` with its output in files `w.p(tag.stdout|stderr)`.
fn spawn_logged(w: &World, mut c: Command, tag: &str) -> Child {
    let out = std::fs::File::create(w.p(&format!("{tag}.stdout"))).unwrap();
    let err = std::fs::File::create(w.p(&format!("{tag}.stderr"))).unwrap();
    c.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap()
}

/// What a process spawned by [`spawn_logged`] wrote: stdout, stderr.
fn logged(w: &World, tag: &str) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(w.p(&format!("{tag}.stdout"))).unwrap_or_default(),
        std::fs::read(w.p(&format!("{tag}.stderr"))).unwrap_or_default(),
    )
}

/// Run `c` to its end, killing it (and failing) after `limit`. Returns the
/// exit code, stdout, stderr and how long it ran.
fn run_bounded(
    w: &World,
    c: Command,
    tag: &str,
    limit: Duration,
) -> (Option<i32>, String, String, Duration) {
    let start = Instant::now();
    let mut child = spawn_logged(w, c, tag);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let took = start.elapsed();
            let (o, e) = logged(w, tag);
            return (
                st.code(),
                String::from_utf8_lossy(&o).into_owned(),
                String::from_utf8_lossy(&e).into_owned(),
                took,
            );
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let (o, e) = logged(w, tag);
            panic!(
                "{tag}: still running after {limit:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&o),
                String::from_utf8_lossy(&e)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until the watcher reached pause point `point` (AIRLOCK_PAUSE).
fn wait_reached(hooks: &Path, point: &str, child: &mut Child) {
    let reached = hooks.join(format!("{point}.reached"));
    let start = Instant::now();
    while !reached.exists() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("exited ({st}) before {point}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{point} never reached"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn go(hooks: &Path, point: &str) {
    std::fs::write(hooks.join(format!("{point}.go")), b"").unwrap();
}

/// The `*.airlock.zip` files in `dir`, with their full paths.
fn zips(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter(|e| e.file_name().as_bytes().ends_with(b".airlock.zip"))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Put `bytes` into `dir` under `name` in one step (written beside it
/// under a name the watcher ignores, then renamed), as a transfer tool does.
fn drop_as(dir: &Path, name: &std::ffi::OsStr, bytes: &[u8]) {
    let part = dir.join(".incoming.part");
    std::fs::write(&part, bytes).unwrap();
    std::fs::rename(&part, dir.join(name)).unwrap();
}

fn allowed_all(w: &World) -> PathBuf {
    allowed_signers(
        w.dir.path(),
        "*.example.com",
        &[&w.pubkey("exporter_ed25519")],
    )
}

fn ledger_rows<'a>(
    ev: &'a [serde_json::Value],
    sha: &str,
    kind: &str,
) -> Vec<&'a serde_json::Value> {
    ev.iter()
        .filter(|e| e["kind"] == kind && e["bundle_sha256"] == sha)
        .collect()
}

/// Regression (issue 27): while bundle A was imported, a newer genuine
/// bundle B renamed over A's name was moved to `done/` by name as if it
/// had been imported: never verified or handed over, no ledger row, and
/// the outbox kept the older file.
#[test]
fn a_bundle_renamed_over_one_being_imported_is_imported_in_its_own_right() {
    skip_without_hooks!();
    let w = World::new();
    let k = w.key("exporter_ed25519");
    let allowed = allowed_all(&w);
    let t = now_secs() - 3 * 3600;
    let a = w.bundle(&k, "a.example.com", t, 3);
    let b = w.bundle(&k, "a.example.com", t + 600, 4);
    let drop = w.p("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let name = a.file_name().unwrap().to_os_string();
    drop_as(&drop, &name, &std::fs::read(&a).unwrap());

    let hooks = tempfile::tempdir().unwrap();
    let mut c = watch_cmd(&w, &drop, &allowed, "300ms", &[]);
    c.env("AIRLOCK_PAUSE", "watch:claimed")
        .env("AIRLOCK_PAUSE_DIR", hooks.path());
    let mut watcher = spawn_logged(&w, c, "watch");
    wait_reached(hooks.path(), "watch:claimed", &mut watcher);
    // A is claimed (out of the drop folder's name space), not yet read.
    assert!(drop.join(".airlock-claim").join(&name).exists());
    assert!(!drop.join(&name).exists());
    drop_as(&drop, &name, &std::fs::read(&b).unwrap());
    go(hooks.path(), "watch:claimed");

    let done = drop.join("done");
    let both = wait_until(Duration::from_secs(60), || zips(&done).len() == 2);
    assert_eq!(sigterm(&mut watcher), Some(0));
    let (out, err) = logged(&w, "watch");
    assert!(
        both,
        "done: {:?}\ndrop: {:?}\n{}{}",
        names(&done),
        names(&drop),
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );
    // done/ holds A and B byte for byte: each is what was verified.
    let mut got: Vec<String> = zips(&done).iter().map(|p| sha(p)).collect();
    let mut want = vec![sha(&a), sha(&b)];
    got.sort();
    want.sort();
    assert_eq!(got, want, "{:?}", names(&done));
    assert!(zips(&drop).is_empty() && zips(&drop.join(".airlock-claim")).is_empty());

    // Both have ledger rows: accepted and handed over, A first.
    let ev = w.events();
    for (p, what) in [(&a, "A"), (&b, "B")] {
        let imports = ledger_rows(&ev, &sha(p), "import");
        assert_eq!(imports.len(), 1, "{what}: {imports:?}");
        assert_eq!(imports[0]["outcome"], "accepted", "{what}");
        let done = ledger_rows(&ev, &sha(p), "handover");
        assert!(
            done.iter().any(|e| e["outcome"] == "done"),
            "{what}: {done:?}"
        );
    }
    // B, the newest, is the one usage file at the outbox's top level.
    let hb = ledger_rows(&ev, &sha(&b), "handover")
        .into_iter()
        .find(|e| e["outcome"] == "done")
        .unwrap()
        .clone();
    let outbox_json: Vec<String> = names(&w.p("outbox"))
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(outbox_json.len(), 1, "{outbox_json:?}");
    assert!(
        hb.to_string().contains(&outbox_json[0]),
        "{outbox_json:?} is not B's: {hb}"
    );
}

/// Issue 27, the same race inside the claim directory: a file put in place
/// of the claimed one is never moved to `done/` as the verified one. While
/// the claimed bundle is read, the swap is seen as a change (the claimed
/// file's link count and status-change time moved): nothing is recorded,
/// the new file is put back and imported in its own right. After the read,
/// the identity check before the move sees it: it stays claimed, is
/// reported, and the next start puts it back and imports it.
#[test]
fn a_file_swapped_into_the_claim_directory_is_never_placed_unverified() {
    skip_without_hooks!();
    let w = World::new();
    let k = w.key("exporter_ed25519");
    let allowed = allowed_all(&w);
    let t = now_secs() - 3 * 3600;
    let made: Vec<PathBuf> = (0..4)
        .map(|i| w.bundle(&k, "c.example.com", t + 600 * i, 3))
        .collect();
    let drop = w.p("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let claim = drop.join(".airlock-claim");
    let done = drop.join("done");
    let ctx = |err: &str| {
        format!(
            "{err}\ndrop {:?}\nclaim {:?}\ndone {:?}\nquarantine {:?}",
            names(&drop),
            names(&claim),
            names(&done),
            names(&drop.join("quarantine"))
        )
    };
    // Swap `new` in for the claimed `old` at pause point `point`.
    let swap = |old: &Path, new: &Path, point: &str, tag: &str| -> (Option<i32>, String) {
        let name = old.file_name().unwrap();
        drop_as(&drop, name, &std::fs::read(old).unwrap());
        let hooks = tempfile::tempdir().unwrap();
        let mut c = watch_cmd(&w, &drop, &allowed, "300ms", &["--once"]);
        c.env("AIRLOCK_PAUSE", point)
            .env("AIRLOCK_PAUSE_DIR", hooks.path());
        let mut watcher = spawn_logged(&w, c, tag);
        wait_reached(hooks.path(), point, &mut watcher);
        let part = claim.join(".swap");
        std::fs::write(&part, std::fs::read(new).unwrap()).unwrap();
        std::fs::rename(&part, claim.join(name)).unwrap();
        go(hooks.path(), point);
        let st = watcher.wait().unwrap();
        let (_, err) = logged(&w, tag);
        (st.code(), String::from_utf8_lossy(&err).into_owned())
    };

    // 1. During the read.
    let (code, err) = swap(&made[0], &made[1], "verify:signed", "read");
    assert_eq!(code, Some(0), "{}", ctx(&err));
    assert!(err.contains("AIRLOCK-E-BUNDLE-CHANGED"), "{}", ctx(&err));
    let z = zips(&done);
    assert_eq!(z.len(), 1, "{}", ctx(&err));
    assert_eq!(sha(&z[0]), sha(&made[1]));
    let ev = w.events();
    assert!(ledger_rows(&ev, &sha(&made[0]), "import").is_empty());
    assert_eq!(
        ledger_rows(&ev, &sha(&made[1]), "import")[0]["outcome"],
        "accepted"
    );

    // 2. After the read: the import of the claimed bundle goes on (it was
    // read whole through its descriptor); the other file is not moved.
    let (code, err) = swap(&made[2], &made[3], "verify:payload-read", "after");
    let name = made[2].file_name().unwrap();
    assert_ne!(code, Some(0), "{}", ctx(&err));
    assert!(err.contains("was replaced in"), "{}", ctx(&err));
    assert_eq!(zips(&done).len(), 1, "{}", ctx(&err));
    assert_eq!(sha(&claim.join(name)), sha(&made[3]), "{}", ctx(&err));
    let ev = w.events();
    assert_eq!(
        ledger_rows(&ev, &sha(&made[2]), "import")[0]["outcome"],
        "accepted"
    );
    assert!(ledger_rows(&ev, &sha(&made[3]), "import").is_empty());
    // The next run puts it back and imports it.
    let (code, out, err, _) = run_bounded(
        &w,
        watch_cmd(&w, &drop, &allowed, "300ms", &["--once"]),
        "next",
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{out}{}", ctx(&err));
    assert!(
        err.contains("was claimed by a watcher that stopped"),
        "{err}"
    );
    let mut got: Vec<String> = zips(&done).iter().map(|p| sha(p)).collect();
    got.sort();
    let mut want = vec![sha(&made[1]), sha(&made[3])];
    want.sort();
    assert_eq!(got, want, "{}", ctx(&err));
    let ev = w.events();
    assert_eq!(
        ledger_rows(&ev, &sha(&made[3]), "import")[0]["outcome"],
        "accepted"
    );
}

fn os(b: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    std::ffi::OsString::from_vec(b.to_vec())
}

fn long_name(c: u8) -> std::ffi::OsString {
    let mut v = vec![c; 250 - ".airlock.zip".len()];
    v.extend_from_slice(b".airlock.zip");
    os(&v)
}

/// The names in `dir`, as bytes.
fn raw_names(dir: &Path) -> Vec<std::ffi::OsString> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    v.sort();
    v
}

/// Human output that no name can forge: valid UTF-8, no control character
/// but the line ends, and every line one of `prefixes`.
fn assert_unforged(text: &[u8], prefixes: &[&str]) {
    let s = std::str::from_utf8(text).expect("human output is UTF-8");
    assert!(
        !s.chars().any(|c| c.is_control() && c != '\n'),
        "a control character in the output: {s:?}"
    );
    for l in s.lines() {
        assert!(
            prefixes.iter().any(|p| l.starts_with(p)),
            "a line no event starts: {l:?}\nin {s}"
        );
    }
}

/// The name a quarantine reason file is about (`file`, or `file_bytes`).
fn reason_file(r: &serde_json::Value) -> std::ffi::OsString {
    use base64::Engine;
    match r["file_bytes"].as_str() {
        Some(b) => os(&base64::engine::general_purpose::STANDARD.decode(b).unwrap()),
        None => r["file"].as_str().unwrap().into(),
    }
}

/// Regression (issue 27): a legal 250-byte name made `NAME.reason.json` or
/// a de-duplicated name longer than 255 bytes and the watcher exit 3;
/// names that are not UTF-8 were skipped; newlines and escape sequences in
/// names forged lines of the output. Valid bundles and junk under each kind
/// of name, with `watch --once` and with a running watcher.
#[test]
fn any_legal_name_is_imported_or_quarantined_and_the_watcher_keeps_running() {
    use std::os::unix::ffi::OsStrExt;
    let w = World::new();
    let k = w.key("exporter_ed25519");
    let allowed = allowed_all(&w);
    let t = now_secs() - 3 * 3600;
    let valid = [
        long_name(b'v'),
        os(b"caf\xe9-\xff.airlock.zip"),
        os(b"two\nimported: forged -> done\x1b[2K.airlock.zip"),
    ];
    let junk = [
        long_name(b'j'),
        os(b"junk-\xfe\xfd.airlock.zip"),
        os(b"junk\nQUARANTINED: none\x1b]0;title\x07.airlock.zip"),
    ];
    let bundles: Vec<PathBuf> = (0..3)
        .map(|i| w.bundle(&k, &format!("n{i}.example.com"), t, 2))
        .collect();
    let drop = w.p("drop");
    std::fs::create_dir_all(&drop).unwrap();
    for (n, b) in valid.iter().zip(&bundles) {
        drop_as(&drop, n, &std::fs::read(b).unwrap());
    }
    for n in &junk {
        drop_as(&drop, n, b"not a bundle, no zip trailer");
    }

    // --once: judged, and exits (non-zero: something was quarantined).
    let (code, out, err, _) = run_bounded(
        &w,
        watch_cmd(&w, &drop, &allowed, "300ms", &["--once"]),
        "once",
        Duration::from_secs(60),
    );
    assert!(
        code.is_some_and(|c| c != 0 && c != 101),
        "{code:?} {out}{err}"
    );
    let (o, e) = logged(&w, "once");
    assert_unforged(&o, &["imported: ", "QUARANTINED: "]);
    assert_unforged(&e, &["airlock watch", "airlock: error[", "  hint: "]);
    assert_eq!(out.lines().count(), 6, "{out}");
    let done = drop.join("done");
    let q = drop.join("quarantine");
    let mut want = valid.to_vec();
    want.sort();
    assert_eq!(raw_names(&done), want);
    let qz: Vec<_> = raw_names(&q)
        .into_iter()
        .filter(|n| n.as_bytes().ends_with(b".airlock.zip"))
        .collect();
    let mut want = junk.to_vec();
    want.sort();
    assert_eq!(qz, want);
    // One reason file per quarantined file, each within 255 bytes, naming
    // its file exactly.
    let reasons: Vec<_> = raw_names(&q)
        .into_iter()
        .filter(|n| !n.as_bytes().ends_with(b".airlock.zip"))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    for r in &reasons {
        assert!(r.as_bytes().len() <= 255, "{r:?}");
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(q.join(r)).unwrap()).unwrap();
        assert_eq!(v["code"], "AIRLOCK-E-BUNDLE-INCOMPLETE", "{v}");
        assert!(junk.contains(&reason_file(&v)), "{v}");
    }

    // A running watcher (--json): the same names again (already imported,
    // their names taken in done/), corrupted bundles (refused by the
    // verifier, their names taken in quarantine/), then one more bundle: it
    // is imported, so the watcher kept running.
    let mut c = watch_cmd(&w, &drop, &allowed, "300ms", &["--json"]);
    c.args(["--incomplete-after", "10m"]);
    let mut watcher = spawn_logged(&w, c, "watch");
    for (n, b) in valid.iter().zip(&bundles) {
        drop_as(&drop, n, &std::fs::read(b).unwrap());
    }
    for (n, b) in junk.iter().zip(&bundles) {
        let mut bad = std::fs::read(b).unwrap();
        bad[200] ^= 1;
        drop_as(&drop, n, &bad);
    }
    let six = wait_until(Duration::from_secs(60), || {
        zips(&done).len() == 6 && zips(&q).len() == 6
    });
    let last = w.bundle(&k, "n9.example.com", t, 2);
    drop_as(
        &drop,
        last.file_name().unwrap(),
        &std::fs::read(&last).unwrap(),
    );
    let seven = wait_until(Duration::from_secs(60), || zips(&done).len() == 7);
    let running = watcher.try_wait().unwrap().is_none();
    let st = sigterm(&mut watcher);
    let (o, e) = logged(&w, "watch");
    let ctx = format!(
        "done {:?}\nquarantine {:?}\n{}{}",
        raw_names(&done),
        raw_names(&q),
        String::from_utf8_lossy(&o),
        String::from_utf8_lossy(&e)
    );
    assert!(six && seven && running, "{ctx}");
    assert_eq!(st, Some(0), "{ctx}");
    for d in [&done, &q] {
        for n in raw_names(d) {
            assert!(n.as_bytes().len() <= 255, "{n:?}");
        }
    }
    // Every event is one JSON line; names that are not UTF-8 carry their
    // exact bytes.
    let mut placed = 0;
    for l in o.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(l)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(l)));
        if v["event"] == "placed" {
            placed += 1;
            let name = reason_file(&v);
            assert!(
                valid.contains(&name) || junk.contains(&name) || name == last.file_name().unwrap(),
                "{v}"
            );
        }
    }
    assert_eq!(placed, 7, "{ctx}");
    // The corrupted copies were judged by the verifier, with ledger rows.
    let ev = w.events();
    assert_eq!(count_events(&ev, "import", "rejected"), 3, "{ev:?}");
}

/// Regression (issue 27): `watch --once` never exited after a failure of
/// this host (a tracked file kept the loop alive), and waited for
/// `--incomplete-after` (1 h) for one small junk file.
#[test]
fn watch_once_with_junk_and_a_host_failure_exits_within_the_settle_time() {
    let w = World::new();
    let k = w.key("exporter_ed25519");
    let allowed = allowed_all(&w);
    let b = w.bundle(&k, "a.example.com", now_secs() - 3600, 3);
    let drop = w.p("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let bname = b.file_name().unwrap();
    drop_as(&drop, bname, &std::fs::read(&b).unwrap());
    drop_as(
        &drop,
        std::ffi::OsStr::new("junk.airlock.zip"),
        b"0123456789",
    );
    // A failure of this host: the outbox is a regular file.
    let outbox = w.p("outbox-is-a-file");
    std::fs::write(&outbox, b"").unwrap();
    let mut c = w.cmd();
    c.arg("watch").arg(&drop).args([
        "--once",
        "--settle",
        "1s",
        "--retry-after",
        "1m",
        "--poll",
        "30s",
    ]);
    c.arg("--trust")
        .arg(&allowed)
        .arg("--state-dir")
        .arg(w.p("importer-state"))
        .arg("--outbox")
        .arg(&outbox);
    let settle = Duration::from_secs(1);
    let (code, out, err, took) = run_bounded(&w, c, "once", Duration::from_secs(60));
    eprintln!("watch --once with junk and a host failure: exited after {took:?}");
    assert!(
        took < settle * 2 + Duration::from_secs(5),
        "{took:?}\n{err}"
    );
    assert!(
        code.is_some_and(|c| c != 0 && c != 101),
        "{code:?} {out}{err}"
    );
    assert!(err.contains("1 quarantined, 1 failed"), "{err}");
    // The junk is quarantined as incomplete; the bundle stays to be tried
    // again, unjudged (nothing in done/ or quarantine/, no ledger verdict).
    let r: serde_json::Value = serde_json::from_slice(
        &std::fs::read(drop.join("quarantine/junk.airlock.zip.reason.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(r["code"], "AIRLOCK-E-BUNDLE-INCOMPLETE", "{r}");
    assert_eq!(sha(&drop.join(bname)), sha(&b));
    assert!(names(&drop.join("done")).is_empty());
    assert!(names(&drop.join(".airlock-claim")).is_empty());
}

/// Regression (issue 27): a FIFO put in place of a bundle blocked the
/// watcher's `File::open` forever, and SIGTERM was not acted on.
#[test]
fn a_fifo_is_quarantined_at_once_and_the_watcher_never_hangs() {
    let w = World::new();
    let k = w.key("exporter_ed25519");
    let allowed = allowed_all(&w);
    let b = w.bundle(&k, "a.example.com", now_secs() - 3600, 3);
    let drop = w.p("drop");
    std::fs::create_dir_all(&drop).unwrap();
    drop_as(&drop, b.file_name().unwrap(), &std::fs::read(&b).unwrap());
    let st = tool("mkfifo")
        .arg(drop.join("pipe.airlock.zip"))
        .status()
        .unwrap();
    assert!(st.success());
    let (code, out, err, took) = run_bounded(
        &w,
        watch_cmd(&w, &drop, &allowed, "300ms", &["--once"]),
        "once",
        Duration::from_secs(30),
    );
    eprintln!("watch --once with a FIFO: {took:?}");
    assert!(
        code.is_some_and(|c| c != 0 && c != 101),
        "{code:?} {out}{err}"
    );
    let r: serde_json::Value = serde_json::from_slice(
        &std::fs::read(drop.join("quarantine/pipe.airlock.zip.reason.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(r["code"], "AIRLOCK-E-NOT-A-FILE", "{r}");
    assert!(drop.join("done").join(b.file_name().unwrap()).exists());
}

/// Issue 27: a FIFO swapped in after the claim (between the rename and
/// the open) is refused by the open, which does not block.
#[test]
fn a_fifo_swapped_in_after_the_claim_does_not_block_the_open() {
    skip_without_hooks!();
    let w = World::new();
    let k = w.key("exporter_ed25519");
    let allowed = allowed_all(&w);
    let b = w.bundle(&k, "a.example.com", now_secs() - 3600, 3);
    let drop = w.p("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let name = b.file_name().unwrap();
    drop_as(&drop, name, &std::fs::read(&b).unwrap());
    let hooks = tempfile::tempdir().unwrap();
    let mut c = watch_cmd(&w, &drop, &allowed, "300ms", &["--once"]);
    c.env("AIRLOCK_PAUSE", "watch:claimed")
        .env("AIRLOCK_PAUSE_DIR", hooks.path());
    let start = Instant::now();
    let mut watcher = spawn_logged(&w, c, "once");
    wait_reached(hooks.path(), "watch:claimed", &mut watcher);
    let claimed = drop.join(".airlock-claim").join(name);
    std::fs::remove_file(&claimed).unwrap();
    assert!(tool("mkfifo").arg(&claimed).status().unwrap().success());
    go(hooks.path(), "watch:claimed");
    let ok = wait_until(Duration::from_secs(20), || {
        watcher.try_wait().unwrap().is_some()
    });
    if !ok {
        let _ = watcher.kill();
    }
    let (o, e) = logged(&w, "once");
    assert!(
        ok,
        "hung on the FIFO\n{}{}",
        String::from_utf8_lossy(&o),
        String::from_utf8_lossy(&e)
    );
    eprintln!(
        "FIFO swapped in after the claim: exited after {:?}",
        start.elapsed()
    );
    let reason = drop
        .join("quarantine")
        .join(format!("{}.reason.json", name.to_string_lossy()));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(reason).unwrap()).unwrap();
    assert_eq!(r["code"], "AIRLOCK-E-NOT-A-FILE", "{r}");
    assert!(names(&drop.join("done")).is_empty());
}

/// Regression (issue 27): SIGTERM was not acted on while a bundle was in
/// hand. Now the watcher exits 0 within a second or so, the bundle stays
/// claimed, and the next run puts it back (reported) and imports it.
#[test]
fn sigterm_during_an_import_exits_promptly_and_the_next_run_recovers_the_file() {
    skip_without_hooks!();
    let w = World::new();
    let k = w.key("exporter_ed25519");
    let allowed = allowed_all(&w);
    let b = w.bundle(&k, "a.example.com", now_secs() - 3600, 3);
    let drop = w.p("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let name = b.file_name().unwrap();
    drop_as(&drop, name, &std::fs::read(&b).unwrap());
    let hooks = tempfile::tempdir().unwrap();
    let mut c = watch_cmd(&w, &drop, &allowed, "300ms", &[]);
    c.env("AIRLOCK_PAUSE", "verify:signed")
        .env("AIRLOCK_PAUSE_DIR", hooks.path());
    let mut watcher = spawn_logged(&w, c, "watch");
    wait_reached(hooks.path(), "verify:signed", &mut watcher);
    let start = Instant::now();
    let code = sigterm(&mut watcher);
    let took = start.elapsed();
    eprintln!("SIGTERM during a paused import: exited after {took:?}");
    let (_, e) = logged(&w, "watch");
    assert_eq!(code, Some(0), "{}", String::from_utf8_lossy(&e));
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(drop.join(".airlock-claim").join(name).exists());
    assert!(names(&drop.join("done")).is_empty());

    let (code, out, err, _) = run_bounded(
        &w,
        watch_cmd(&w, &drop, &allowed, "300ms", &["--once", "--json"]),
        "once",
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "recovered" && e["file"] == name.to_str().unwrap()),
        "{out}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "placed" && e["disposition"] == "imported"),
        "{out}"
    );
    assert_eq!(sha(&drop.join("done").join(name)), sha(&b));
    let ev = w.events();
    assert_eq!(ledger_rows(&ev, &sha(&b), "import").len(), 1);
}

/// Regression (issue 27): a file whose status-change time kept moving was
/// judged at the settle pace, adding a ledger row each time. It is not
/// judged while its metadata changes, and once, after.
#[test]
fn a_file_whose_ctime_keeps_changing_is_judged_once_after_it_stops() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let k = w.key("exporter_ed25519");
    let allowed = allowed_all(&w);
    let b = w.bundle(&k, "a.example.com", now_secs() - 3600, 3);
    let drop = w.p("drop");
    std::fs::create_dir_all(&drop).unwrap();
    let name = b.file_name().unwrap().to_os_string();
    let mut watcher = spawn_logged(
        &w,
        watch_cmd(&w, &drop, &allowed, "500ms", &["--incomplete-after", "10m"]),
        "watch",
    );
    // Written under a name the watcher ignores, opened, then renamed into
    // place: the descriptor follows the file wherever it goes.
    let part = drop.join(".part");
    std::fs::write(&part, std::fs::read(&b).unwrap()).unwrap();
    let f = std::fs::File::open(&part).unwrap();
    std::fs::rename(&part, drop.join(&name)).unwrap();
    let target = drop.join(&name);
    let start = Instant::now();
    let mut claimed_while_changing = 0;
    let mut mode = 0o644;
    while start.elapsed() < Duration::from_secs(3) {
        mode ^= 0o040;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .unwrap();
        if !target.exists() {
            claimed_while_changing += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop_file(f);
    let imported = wait_until(Duration::from_secs(60), || {
        drop.join("done").join(&name).exists()
    });
    assert_eq!(sigterm(&mut watcher), Some(0));
    let (o, e) = logged(&w, "watch");
    let ctx = format!(
        "{}{}",
        String::from_utf8_lossy(&o),
        String::from_utf8_lossy(&e)
    );
    assert_eq!(claimed_while_changing, 0, "judged while it changed\n{ctx}");
    assert!(imported, "{ctx}");
    // One verdict, one row: no refusal or retry recorded per attempt.
    let ev = w.events();
    let imports: Vec<_> = ev.iter().filter(|e| e["kind"] == "import").collect();
    assert_eq!(imports.len(), 1, "{imports:?}");
    assert_eq!(imports[0]["outcome"], "accepted");
    assert_eq!(imports[0]["bundle_sha256"], sha(&b));
    assert_eq!(
        String::from_utf8_lossy(&o).matches("imported: ").count(),
        1,
        "{ctx}"
    );
}
