//! Faults: an export killed at any point, a full disk (RLIMIT_FSIZE), a
//! read-only or vanished output directory, an I/O error in the middle of a
//! read. Each must leave no partial file at any output path, leave the state
//! consistent (`log --verify`), give a clear error, and a re-run must succeed.
//! (Import's crash tests are in tests/import.rs.)

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use common::*;

/// A usage file of about 3 MiB, so that a 1 MiB file-size limit and the
/// injected read error (after 1 MiB) both strike in the middle.
fn world() -> World {
    let w = World::new();
    let usage = airlock::sample::usage_encrypted(
        airlock::sample::SAMPLE_HOST,
        airlock::sample::SAMPLE_SERVER_ID,
        3 << 20,
    );
    std::fs::write(w.usage_json(), usage).unwrap();
    w
}

impl World {
    fn cmd(&self) -> Command {
        let mut c = Command::new(airlock_bin());
        isolate(&mut c);
        c.env_remove("SOURCE_DATE_EPOCH");
        c
    }
    fn export(&self, out: &Path) -> Command {
        let mut c = self.cmd();
        c.arg("export")
            .arg(self.usage_json())
            .arg("--key")
            .arg(&self.key)
            .arg("--out")
            .arg(out)
            .arg("--state-dir")
            .arg(self.p("state"));
        c
    }
    fn verify(&self, bundle: &Path) -> Command {
        let mut c = self.cmd();
        c.arg("verify")
            .arg(bundle)
            .arg("--trust")
            .arg(root().join("keys/allowed_signers"));
        c
    }
    fn extract(&self, bundle: &Path, out: &Path) -> Command {
        let mut c = self.cmd();
        c.arg("extract")
            .arg(bundle)
            .arg("--trust")
            .arg(root().join("keys/allowed_signers"))
            .arg("--out")
            .arg(out);
        c
    }
    fn import(&self, bundle: &Path) -> Command {
        let mut c = self.cmd();
        c.arg("import")
            .arg(bundle)
            .trust_state(
                root().join("keys/allowed_signers"),
                self.p("importer-state"),
            )
            .arg("--outbox")
            .arg(self.p("outbox"))
            // The outbox is created only inside HOME (docs/operator-guide.md).
            .env("HOME", self.dir.path());
        c
    }
    fn ledger_ok(&self, state: &str) {
        self.cmd()
            .args(["log", "--verify", "--state-dir"])
            .arg(self.p(state))
            .run_ok();
    }
    /// A good bundle of the 3 MiB usage file.
    fn bundle(&self, name: &str) -> PathBuf {
        let b = self.p(name);
        run_ok(&mut self.export(&b));
        b
    }
}

fn run(c: &mut Command) -> Output {
    c.output().unwrap()
}

fn run_ok(c: &mut Command) -> Output {
    let out = run(c);
    assert!(
        out.status.success(),
        "{:?}: {}",
        c,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Failed with `code` (exit `exit`) and said so on one line with a hint.
fn failed(out: &Output, code: &str, exit: i32) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit), "{err}");
    assert!(err.contains(code), "want {code}: {err}");
    assert!(err.contains("hint:"), "no hint: {err}");
}

/// Run `c` with a file-size limit of `kib` KiB. SIGXFSZ is ignored (the
/// disposition survives exec) so writes fail with EFBIG, as on a full disk.
fn with_fsize_limit(c: &Command, kib: u64) -> Command {
    let mut w = Command::new("bash");
    w.arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f {kib}; exec \"$@\""))
        .arg("bash");
    wrap(w, c)
}

/// `c` (program, arguments, environment) run through the prefix command `w`.
fn wrap(mut w: Command, c: &Command) -> Command {
    w.arg(c.get_program()).args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    w
}

/// Files in `dir` other than airlock's hidden temporary files.
fn visible(dir: &Path) -> Vec<String> {
    if !dir.exists() {
        return vec![];
    }
    listing(dir)
        .into_iter()
        .filter(|f| !f.starts_with(".airlock-"))
        .collect()
}

#[test]
fn export_aborted_at_each_step_leaves_no_partial_bundle_and_reruns() {
    skip_without_hooks!();
    let w = world();
    let out_dir = w.p("out");
    std::fs::create_dir(&out_dir).unwrap();
    for point in ["export:reserved", "export:written", "export:published"] {
        let b = out_dir.join(format!("{}.airlock.zip", point.replace(':', "-")));
        let out = run(w.export(&b).env("AIRLOCK_FAULT", point));
        assert!(!out.status.success(), "{point}: not aborted");
        // The bundle path holds nothing or a complete, verifying bundle.
        if b.exists() {
            assert_eq!(point, "export:published", "partial bundle at {point}");
            run_ok(&mut w.verify(&b));
            std::fs::remove_file(&b).unwrap();
        }
        w.ledger_ok("state");
        // Re-run: succeeds and verifies.
        run_ok(&mut w.export(&b));
        run_ok(&mut w.verify(&b));
    }
}

#[test]
fn export_killed_at_random_moments_never_leaves_a_partial_bundle() {
    let w = world();
    // A bigger input so the kills land inside the write.
    let big = w.p("big.bin");
    std::fs::write(&big, vec![7u8; 48 << 20]).unwrap();
    let export = |b: &Path| {
        let mut c = w.cmd();
        c.arg("export")
            .arg(&big)
            .args(["--host-name", "ghes.example.com", "--key"])
            .arg(&w.key)
            .arg("--out")
            .arg(b)
            .arg("--state-dir")
            .arg(w.p("state"));
        c
    };
    let t0 = Instant::now();
    run_ok(&mut export(&w.p("timing.airlock.zip")));
    let full = t0.elapsed();
    let mut outcomes = (0, 0);
    for i in 1..=10u32 {
        let b = w.p(&format!("k{i}.airlock.zip"));
        let mut child = export(&b)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full * i / 11);
        let _ = child.kill();
        child.wait().unwrap();
        if b.exists() {
            run_ok(&mut w.verify(&b));
            outcomes.1 += 1;
        } else {
            outcomes.0 += 1;
        }
        w.ledger_ok("state");
    }
    eprintln!(
        "kill -9 over {full:?}: {} before publication, {} after",
        outcomes.0, outcomes.1
    );
    let b = w.p("after.airlock.zip");
    run_ok(&mut export(&b));
    run_ok(&mut w.verify(&b));
}

#[test]
fn full_disk_export_extract_import_fail_cleanly_and_rerun() {
    let w = world();
    let out_dir = w.p("out");
    std::fs::create_dir(&out_dir).unwrap();
    let b = out_dir.join("u.airlock.zip");

    // export: the bundle (> 3 MiB) cannot be written under a 1 MiB limit.
    let out = run(&mut with_fsize_limit(&w.export(&b), 1024));
    failed(&out, "AIRLOCK-E-IO-WRITE", 3);
    assert!(listing(&out_dir).is_empty(), "{:?}", listing(&out_dir));
    w.ledger_ok("state");
    run_ok(&mut w.export(&b));

    // extract: the 3 MiB payload cannot be written.
    let x = w.p("x");
    std::fs::create_dir(&x).unwrap();
    let out = run(&mut with_fsize_limit(&w.extract(&b, &x), 1024));
    failed(&out, "AIRLOCK-E-IO-WRITE", 3);
    assert!(listing(&x).is_empty(), "{:?}", listing(&x));
    run_ok(&mut w.extract(&b, &x));
    assert_eq!(
        std::fs::read(x.join("license-usage.json")).unwrap(),
        std::fs::read(w.usage_json()).unwrap()
    );

    // import: the outbox copy cannot be written; nothing is lost, the
    // re-run hands it over.
    let out = run(&mut with_fsize_limit(&w.import(&b), 1024));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AIRLOCK-E-IO-WRITE") || err.contains("AIRLOCK-E-HANDOVER-FAILED"),
        "{err}"
    );
    assert!(
        visible(&w.p("outbox")).is_empty(),
        "{:?}",
        visible(&w.p("outbox"))
    );
    w.ledger_ok("importer-state");
    run_ok(&mut w.import(&b));
    let handed = visible(&w.p("outbox"));
    assert!(
        handed.iter().any(|f| f.ends_with(".json")),
        "after re-run: {handed:?}"
    );
    w.ledger_ok("importer-state");
}

#[test]
fn vanished_output_directory_is_a_clear_error_and_state_stays_consistent() {
    let w = world();
    let gone = w.p("gone");
    // Outside HOME a missing directory is never created (the stick is not
    // mounted): AIRLOCK-E-OUTPUT-DIR names it (#16, item 6).
    let out = run(&mut w.export(&gone.join("u.airlock.zip")));
    failed(&out, "AIRLOCK-E-OUTPUT-DIR", 3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(!gone.exists());
    w.ledger_ok("state");
    let b = w.bundle("u.airlock.zip");
    let out = run(&mut w.extract(&b, &gone));
    failed(&out, "AIRLOCK-E-OUTPUT-DIR", 3);
    assert!(!gone.exists());
    // The directory reappears (the stick is plugged back in): re-runs work.
    std::fs::create_dir(&gone).unwrap();
    run_ok(&mut w.export(&gone.join("u.airlock.zip")));
    run_ok(&mut w.extract(&b, &gone));
    w.ledger_ok("state");
}

/// The uid that is not root, to make a read-only directory bite: root
/// ignores permissions, so as root the command runs as `nobody` (setpriv).
fn unprivileged(c: &Command, files: &[&Path]) -> Command {
    let uid = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    if uid.trim() != "0" {
        return wrap(Command::new("env"), c);
    }
    for f in files {
        let st = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(f)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let mut w = tool("setpriv");
    w.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
    wrap(w, c)
}

#[test]
fn read_only_output_directory_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let w = world();
    let b = w.bundle("u.airlock.zip");
    std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ro, rw) = (w.p("ro"), w.p("rw"));
    std::fs::create_dir(&ro).unwrap();
    std::fs::create_dir(&rw).unwrap();
    let st = w.p("state");
    let usage = w.usage_json();
    let owned: Vec<&Path> = vec![&w.key, &st, &b, &usage, &rw];
    // Control: the same unprivileged export into a writable directory works,
    // so the failure below is the directory's doing.
    run_ok(&mut unprivileged(
        &w.export(&rw.join("n.airlock.zip")),
        &owned,
    ));
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = run(&mut unprivileged(
        &w.export(&ro.join("n.airlock.zip")),
        &owned,
    ));
    failed(&out, "AIRLOCK-E-IO-WRITE", 3);
    // The directory is named, not airlock's random temporary name (#16).
    assert!(!String::from_utf8_lossy(&out.stderr).contains(".airlock-"));
    let out = run(&mut unprivileged(&w.extract(&b, &ro), &owned));
    failed(&out, "AIRLOCK-E-IO-WRITE", 3);
    assert!(listing(&ro).is_empty(), "{:?}", listing(&ro));
    w.ledger_ok("state");
}

#[test]
fn io_error_mid_read_fails_cleanly_everywhere_and_reruns() {
    skip_without_hooks!();
    let w = world();
    let out_dir = w.p("out");
    std::fs::create_dir(&out_dir).unwrap();
    let b = out_dir.join("u.airlock.zip");

    // export: the input fails after 1 MiB.
    let out = run(w.export(&b).env("AIRLOCK_FAULT", "read-error"));
    failed(&out, "AIRLOCK-E-IO-READ", 3);
    assert!(listing(&out_dir).is_empty(), "{:?}", listing(&out_dir));
    w.ledger_ok("state");
    run_ok(&mut w.export(&b));

    // verify / extract / import: the bundle fails after 1 MiB of its member.
    let out = run(w.verify(&b).env("AIRLOCK_FAULT", "read-error"));
    failed(&out, "AIRLOCK-E-IO-READ", 3);
    let x = w.p("x");
    std::fs::create_dir(&x).unwrap();
    let out = run(w.extract(&b, &x).env("AIRLOCK_FAULT", "read-error"));
    failed(&out, "AIRLOCK-E-IO-READ", 3);
    assert!(listing(&x).is_empty(), "{:?}", listing(&x));
    let out = run(w.import(&b).env("AIRLOCK_FAULT", "read-error"));
    failed(&out, "AIRLOCK-E-IO-READ", 3);
    assert!(visible(&w.p("outbox")).is_empty());
    run_ok(&mut w.import(&b));
    w.ledger_ok("importer-state");
}

/// A file system with neither `renameat2(RENAME_NOREPLACE)` nor hard links
/// (FAT and exFAT through FUSE): bundles and extracted files are still
/// published without replacing anything (decision 69). Regression: both
/// failed with EPERM.
#[test]
fn publishing_without_hard_links_still_never_replaces() {
    skip_without_hooks!();
    let w = world();
    let stick = w.p("stick");
    std::fs::create_dir(&stick).unwrap();
    let b = stick.join("b.airlock.zip");
    run_ok(w.export(&b).env("AIRLOCK_FAULT", "no-hard-links"));
    run_ok(&mut w.verify(&b));
    let before = std::fs::read(&b).unwrap();
    let out = run(w.export(&b).env("AIRLOCK_FAULT", "no-hard-links"));
    failed(&out, "AIRLOCK-E-OUTPUT-EXISTS", 2);
    assert!(std::fs::read(&b).unwrap() == before);
    let names: Vec<_> = std::fs::read_dir(&stick)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["b.airlock.zip"], "temporary files left behind");
    w.ledger_ok("state");
    let out_dir = w.p("extracted");
    std::fs::create_dir(&out_dir).unwrap();
    run_ok(
        w.extract(&b, &out_dir)
            .env("AIRLOCK_FAULT", "no-hard-links"),
    );
    let extracted = out_dir.join("license-usage.json");
    assert!(std::fs::read(&extracted).unwrap() == std::fs::read(w.usage_json()).unwrap());
}
