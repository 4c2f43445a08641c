//! "The medium lies": a bundle that changes between two reads, FIFOs and
//! directories given as bundles, a read stalled past expiry, an interrupted
//! hand-over overtaken by a newer bundle, and outbox names. Each test makes
//! the change at an exact moment through the debug-build pause hook
//! (`AIRLOCK_PAUSE=POINT`, `io::hooks::pause_point`).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

impl World {
    /// Export a usage file of `host` created at `t`, valid for `life`.
    fn bundle(&self, name: &str, host: &str, t: u64, life: &str, users: usize) -> PathBuf {
        let u = self.usage(&format!("{name}.json"), host, users);
        let b = self.p(&format!("{name}.airlock.zip"));
        self.export_cmd(&u, &b, "exporter-state")
            .arg("--expires-in")
            .arg(life)
            .made_at(t)
            .assert()
            .success();
        b
    }

    fn cmd(&self, sub: &str, b: &Path) -> Command {
        let mut c = airlock_std();
        c.arg(sub).arg(b).arg("--trust").arg(&self.allowed);
        match sub {
            "import" => {
                c.arg("--state-dir")
                    .arg(self.p("importer-state"))
                    .arg("--outbox")
                    .arg(self.p("outbox"))
                    // The outbox is created only inside HOME (docs/operator-guide.md).
                    .env("HOME", self.dir.path());
            }
            "extract" => {
                std::fs::create_dir_all(self.p("out")).unwrap();
                c.arg("--out").arg(self.p("out"));
            }
            _ => {}
        }
        c
    }

    fn outbox(&self) -> Vec<String> {
        if !self.p("outbox").exists() {
            return vec![];
        }
        listing(&self.p("outbox"))
    }

    fn events(&self) -> Vec<serde_json::Value> {
        self.ledger_events("importer-state")
    }
}

/// Run `cmd` until it reaches `point`, do `act`, let it go on; its output.
fn paused(mut cmd: Command, point: &str, act: impl FnOnce()) -> Output {
    let hooks = tempfile::tempdir().unwrap();
    let mut child = cmd
        .env("AIRLOCK_PAUSE", point)
        .env("AIRLOCK_PAUSE_DIR", hooks.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reached = hooks.path().join(format!("{point}.reached"));
    let start = Instant::now();
    while !reached.exists() {
        if let Some(st) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "exited ({st}) before {point}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{point} never reached"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    act();
    std::fs::write(hooks.path().join(format!("{point}.go")), b"").unwrap();
    child.wait_with_output().unwrap()
}

/// Overwrite a file's bytes in place (same inode), as another process or a
/// medium would.
fn rewrite_in_place(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
    f.set_len(bytes.len() as u64).unwrap();
    f.sync_all().unwrap();
}

fn code_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `what` exited with `exit`, its standard error naming `code`.
fn assert_refused(out: &Output, exit: i32, code: &str, what: &str) {
    assert_eq!(out.status.code(), Some(exit), "{what}: {}", code_of(out));
    assert!(code_of(out).contains(code), "{what}: {}", code_of(out));
}

/// Regression: rewriting the bundle between verification and hand-over made
/// `import` hand over another host's usage file, `extract` release bytes
/// that did not match the signed digest, and `verify` pass.
#[test]
fn a_bundle_rewritten_after_its_signature_was_checked_is_refused_everywhere() {
    skip_without_hooks!();
    let w = World::new();
    let t = now_secs() - 3600;
    let genuine = w.bundle("a", "ghes.example.com", t, "30days", 200);
    let other = w.bundle("b", "ghes2.example.com", t, "30days", 200);
    let swap = std::fs::read(&other).unwrap();
    let original = std::fs::read(&genuine).unwrap();
    for sub in ["verify", "extract", "import"] {
        std::fs::write(&genuine, &original).unwrap();
        let out = paused(w.cmd(sub, &genuine), "verify:signed", || {
            rewrite_in_place(&genuine, &swap)
        });
        assert_refused(&out, 5, "AIRLOCK-E-BUNDLE-CHANGED", sub);
    }
    assert!(w.outbox().is_empty(), "{:?}", w.outbox());
    assert_eq!(listing(&w.p("out")), Vec::<String>::new());
    let ev = w.events();
    // A file that changed while it was read is no verdict on a bundle: it
    // is tried again, and nothing is recorded (issue 27).
    assert!(ev.is_empty(), "{ev:?}");

    // The same with the modification time put back afterwards: the change
    // time still gives it away.
    std::fs::write(&genuine, &original).unwrap();
    let mtime = std::fs::metadata(&genuine).unwrap().modified().unwrap();
    let out = paused(w.cmd("import", &genuine), "verify:signed", || {
        rewrite_in_place(&genuine, &swap);
        let f = std::fs::File::options().write(true).open(&genuine).unwrap();
        f.set_modified(mtime).unwrap();
    });
    assert!(
        code_of(&out).contains("AIRLOCK-E-BUNDLE-CHANGED"),
        "{}",
        code_of(&out)
    );
    assert!(w.outbox().is_empty());

    // Untouched, the genuine bundle imports, and the ledger records the
    // SHA-256 of exactly its bytes.
    std::fs::write(&genuine, &original).unwrap();
    let out = w.cmd("import", &genuine).output().unwrap();
    assert!(out.status.success(), "{}", code_of(&out));
    let ev = w.events();
    let accepted = ev.iter().find(|e| e["outcome"] == "accepted").unwrap();
    use sha2::Digest;
    assert_eq!(
        accepted["bundle_sha256"],
        hex::encode(sha2::Sha256::digest(&original))
    );
}

/// Export's read-back goes through the same core: a bundle changed on the
/// medium before it is read back is not published.
#[test]
fn export_read_back_refuses_a_bundle_changed_on_the_medium() {
    skip_without_hooks!();
    let w = World::new();
    let u = w.p("u.json");
    sample_usage_clear(&u, 500);
    std::fs::create_dir_all(w.p("stick")).unwrap();
    let mut c = Command::new(airlock_bin());
    isolate(&mut c);
    c.arg("export")
        .arg(&u)
        .arg("--key")
        .arg(&w.key)
        .arg("--out")
        .arg(w.p("stick"))
        .arg("--state-dir")
        .arg(w.p("exporter-state"));
    let out = paused(c, "verify:signed", || {
        let tmp = listing(&w.p("stick"))
            .into_iter()
            .find(|f| f.starts_with(".airlock-"))
            .expect("the temporary bundle");
        let p = w.p("stick").join(tmp);
        let mut b = std::fs::read(&p).unwrap();
        b[200] ^= 1; // inside the usage file
        rewrite_in_place(&p, &b);
    });
    assert_refused(&out, 5, "AIRLOCK-E-BUNDLE-CHANGED", "export");
    assert_eq!(listing(&w.p("stick")), Vec::<String>::new());
}

#[test]
fn fifos_devices_and_directories_are_not_bundles() {
    let w = World::new();
    let fifo = w.p("pipe.airlock.zip");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    for path in [fifo.as_path(), w.p("").as_path(), Path::new("/dev/zero")] {
        for sub in ["verify", "extract", "import", "inspect"] {
            if sub == "import" && path.is_dir() {
                continue; // a directory is a batch for import (below)
            }
            let mut c = assert_cmd::Command::from_std(w.cmd(sub, path));
            if sub == "inspect" {
                c = airlock();
                c.arg("inspect").arg(path);
            }
            let out = c.timeout(Duration::from_secs(20)).output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(3),
                "{sub} {}: {}",
                path.display(),
                code_of(&out)
            );
            assert!(
                code_of(&out).contains("AIRLOCK-E-NOT-A-FILE"),
                "{sub} {}: {}",
                path.display(),
                code_of(&out)
            );
        }
    }
    // import takes a directory as a batch of its *.airlock.zip files: here
    // there are none, which is an argument error; the FIFO in it is not read.
    let out = w.cmd("import", &w.p("")).output().unwrap();
    assert_refused(&out, 2, "no *.airlock.zip files", "import");
    let fifo2 = w.p("late.airlock.zip");
    assert!(Command::new("mkfifo")
        .arg(&fifo2)
        .status()
        .unwrap()
        .success());
    let out = assert_cmd::Command::from_std(w.cmd("import", &w.p("")))
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", code_of(&out));
    assert!(w.outbox().is_empty());
}

/// Regression: freshness was judged against the time the run started, so a
/// read stalled for seconds let a bundle pass that expired meanwhile.
#[test]
fn a_bundle_that_expires_while_it_is_read_is_refused() {
    skip_without_hooks!();
    let w = World::new();
    let b = w.bundle("short", "ghes.example.com", now_secs(), "4s", 50);
    let out = paused(w.cmd("import", &b), "verify:payload-read", || {
        std::thread::sleep(Duration::from_secs(5));
    });
    assert_refused(&out, 7, "AIRLOCK-E-BUNDLE-EXPIRED", "import");
    assert!(w.outbox().is_empty(), "{:?}", w.outbox());
}

/// Regression: finishing an interrupted hand-over skipped the ledger rules,
/// and the outbox ended with the older file after the newer one.
#[test]
fn an_interrupted_handover_overtaken_by_a_newer_bundle_is_superseded() {
    skip_without_hooks!();
    let w = World::new();
    let t = now_secs() - 7200;
    let older = w.bundle("older", "ghes.example.com", t, "30days", 20);
    let newer = w.bundle("newer", "ghes.example.com", t + 600, "30days", 21);
    // A is accepted, then the run dies before the hand-over.
    let out = w
        .cmd("import", &older)
        .env("AIRLOCK_FAULT", "import:accepted")
        .output()
        .unwrap();
    assert!(!out.status.success());
    // Only the killed run's private temporary file, which the next run sweeps.
    assert!(
        w.outbox().iter().all(|f| f.starts_with(".airlock-")),
        "{:?}",
        w.outbox()
    );
    // B is imported and handed over.
    let out = w.cmd("import", &newer).output().unwrap();
    assert!(out.status.success(), "{}", code_of(&out));
    let after_b = w.outbox();
    assert_eq!(after_b.len(), 2, "{after_b:?}");
    // Re-running A must not hand the older file over now.
    let out = w.cmd("import", &older).output().unwrap();
    assert_refused(&out, 10, "AIRLOCK-E-LEDGER-SUPERSEDED", "import");
    assert_eq!(w.outbox(), after_b);
    assert!(
        after_b.iter().all(|f| !f.contains(&compact_time(t))),
        "{after_b:?}"
    );
    let ev = w.events();
    assert_eq!(ev.last().unwrap()["outcome"], "superseded");
    // And again: still superseded, still nothing handed over.
    let out = w.cmd("import", &older).output().unwrap();
    assert_eq!(out.status.code(), Some(10));
    assert_eq!(w.outbox(), after_b);
}

fn compact_time(t: u64) -> String {
    let s = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(t))
        .to_string();
    s.chars().filter(|c| *c != '-' && *c != ':').collect()
}

/// Regression: a payload member named `UPLOAD.txt` was lost in the outbox,
/// overwritten by the upload steps.
#[test]
fn payload_names_never_collide_with_airlock_files_in_the_outbox() {
    let w = World::new();
    let dir = w.p("in");
    std::fs::create_dir_all(&dir).unwrap();
    let names = ["UPLOAD.txt", "upload.TXT", "x.UPLOAD.txt"];
    let mut files = Vec::new();
    for n in names {
        let p = dir.join(n);
        std::fs::write(&p, format!("payload named {n}\n")).unwrap();
        files.push(p);
    }
    // `UPLOAD.txt` and `upload.TXT` differ only in case: export refuses
    // to put both in one bundle.
    let out = airlock()
        .arg("export")
        .args(&files)
        .arg("--key")
        .arg(&w.key)
        .arg("--host-name")
        .arg("ghes.example.com")
        .arg("--out")
        .arg(w.p("dup.airlock.zip"))
        .arg("--state-dir")
        .arg(w.p("exporter-state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let b = export(
        w.dir.path(),
        &w.key,
        &[files[0].as_path(), files[2].as_path()],
        &w.p("names.airlock.zip"),
        &["--host-name", "ghes.example.com"],
    );
    let out = w.cmd("import", &b).output().unwrap();
    assert!(out.status.success(), "{}", code_of(&out));
    let listed = w.outbox();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for (n, p) in [(names[0], &files[0]), (names[2], &files[2])] {
        let f = listed
            .iter()
            .find(|f| f.ends_with(&format!("_{n}")))
            .unwrap_or_else(|| panic!("{n} missing: {listed:?}"));
        assert_eq!(
            std::fs::read(w.p("outbox").join(f)).unwrap(),
            std::fs::read(p).unwrap()
        );
    }
    let steps = listed
        .iter()
        .find(|f| f.ends_with(".UPLOAD.txt") && !f.contains("_x."))
        .unwrap();
    let text = std::fs::read_to_string(w.p("outbox").join(steps)).unwrap();
    // Opaque files only: the steps file says they are not for GitHub (#16).
    assert!(text.starts_with("Not for GitHub:"), "{text}");
}

/// Regression (issue 27): after `verify` refused a junk file, import read it
/// again for its ledger record, so a medium that answered with a genuine
/// bundle the second time made the refused record name that bundle's id,
/// instance and sequence. Now the record holds only what the one read saw.
#[test]
fn a_refused_file_that_turns_genuine_afterwards_is_not_recorded_as_that_bundle() {
    skip_without_hooks!();
    let w = World::new();
    let genuine =
        std::fs::read(w.bundle("a", "ghes.example.com", now_secs() - 3600, "30days", 20)).unwrap();
    let junk_path = w.p("junk.airlock.zip");
    let junk = vec![0x5au8; genuine.len()];
    assert!(junk.len() <= 64 * 1024, "the trailer search reads it all");
    std::fs::write(&junk_path, &junk).unwrap();
    let out = paused(w.cmd("import", &junk_path), "import:refused", || {
        rewrite_in_place(&junk_path, &genuine)
    });
    assert!(!out.status.success(), "{}", code_of(&out));
    assert!(
        code_of(&out).contains("AIRLOCK-E-NOT-A-BUNDLE"),
        "{}",
        code_of(&out)
    );
    let ev = w.events();
    let row = ev.last().unwrap();
    assert_eq!(row["outcome"], "rejected", "{row}");
    for field in ["bundle_id", "host_name", "server_id", "sequence", "signer"] {
        assert!(row[field].is_null(), "{field}: {row}");
    }
    // What the one read got: the junk's last 64 KiB (the trailer search),
    // here the whole junk file, so that is its bundle hash too.
    use sha2::Digest;
    assert_eq!(
        row["bundle_sha256"],
        hex::encode(sha2::Sha256::digest(&junk))
    );
    let read = &row["read"];
    let n = read["read_bytes"].as_u64().unwrap() as usize;
    assert_eq!(n, junk.len().min(64 * 1024), "{row}");
    assert_eq!(read["size"], junk.len() as u64);
    assert_eq!(read["read_offset"], (junk.len() - n) as u64);
    assert_eq!(
        read["read_sha256"],
        hex::encode(sha2::Sha256::digest(&junk[junk.len() - n..]))
    );
    assert!(
        row["file"].as_str().unwrap().ends_with("junk.airlock.zip"),
        "{row}"
    );
    assert!(w.outbox().is_empty());
}
