//! The first hour of a new administrator (issue #16): each mistake a
//! newcomer made, made again, with the code and the message checked, and
//! nothing left behind. One test per item; the trust-file messages are
//! pinned by snapshots (tests/cmd/trust-*.toml).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn export_stdin(d: &Path, input: &[u8], extra: &[&str]) -> Output {
    let k = key(d, "exporter_ed25519");
    airlock()
        .arg("export")
        .arg("-")
        .key_out_state(&k, d.join("stick/"), d.join("state"))
        .args(extra)
        .write_stdin(input.to_vec())
        .output()
        .unwrap()
}

/// Item 1: whatever is not a usage file on standard input is refused, with
/// what it was, and nothing is signed, written or numbered.
#[test]
fn item01_stdin_must_be_a_usage_file() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("stick")).unwrap();
    let cases: [(&[u8], &str); 4] = [
        (
            b"ghe-license: command not found\n",
            "it is not JSON, it starts with \"ghe-license: command not found\"",
        ),
        (b"", "standard input is empty"),
        (b"  \n", "holds only blank space"),
        (
            b"{\"error\":\"x\"}",
            "is JSON but not a GHES license usage file",
        ),
    ];
    for (input, says) in cases {
        let o = export_stdin(d.path(), input, &["--host-name", "ghes.example.com"]);
        let e = failed(&o, "AIRLOCK-E-NOT-USAGE-FILE", 8);
        assert!(e.contains(says), "{e}");
        assert!(
            e.contains("may have failed") && e.contains("--kind file"),
            "{e}"
        );
        assert!(listing(&d.path().join("stick")).is_empty(), "left a file");
    }
    // No sequence number was used up by the refusals.
    assert!(
        !d.path().join("state/sequence").exists()
            || listing(&d.path().join("state/sequence")).is_empty()
    );
    // With --json, the failure object.
    let o = export_stdin(d.path(), b"oops", &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["code"], "AIRLOCK-E-NOT-USAGE-FILE");
    // --kind file carries anything, deliberately.
    let o = export_stdin(
        d.path(),
        b"notes\n",
        &[
            "--kind",
            "file",
            "--host-name",
            "ghes.example.com",
            "--stdin-name",
            "notes.txt",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // --kind usage makes a named file a usage file or nothing.
    let notes = root().join("fixtures/usage/notes.txt");
    let k = key(d.path(), "exporter_ed25519");
    let o = airlock()
        .arg("export")
        .arg(&notes)
        .args([
            "--kind",
            "usage",
            "--host-name",
            "ghes.example.com",
            "--key",
        ])
        .arg(&k)
        .arg("--out")
        .arg(d.path().join("b.zip"))
        .arg("--state-dir")
        .arg(d.path().join("state"))
        .output()
        .unwrap();
    failed(&o, "AIRLOCK-E-NOT-USAGE-FILE", 8);
    assert!(!d.path().join("b.zip").exists());
}

/// Item 1, the other half: a bundle carrying no usage file gets no upload
/// steps for GitHub.
#[test]
fn item01_no_upload_steps_without_a_usage_file() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("stick")).unwrap();
    let o = export_stdin(
        d.path(),
        b"notes\n",
        &[
            "--kind",
            "file",
            "--host-name",
            "ghes.example.com",
            "--stdin-name",
            "notes.txt",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let bundle = d
        .path()
        .join("stick")
        .join(&listing(&d.path().join("stick"))[0]);
    let allowed = trust_keys(d.path(), "ghes.example.com", &["exporter_ed25519"]);
    let outbox = d.path().join("outbox");
    std::fs::create_dir(&outbox).unwrap();
    airlock()
        .arg("import")
        .arg(&bundle)
        .trust_state(&allowed, d.path().join("importer"))
        .arg("--outbox")
        .arg(&outbox)
        .assert()
        .success();
    let txt = listing(&outbox)
        .into_iter()
        .find(|f| f.ends_with(".UPLOAD.txt"))
        .unwrap();
    let txt = std::fs::read_to_string(outbox.join(txt)).unwrap();
    assert!(txt.starts_with("Not for GitHub:"), "{txt}");
    assert!(txt.contains("Do not upload them"), "{txt}");
    assert!(!txt.contains("Add server usage\", click"), "{txt}");
}

/// An export reading standard input from a pipe the test holds open: it has
/// written a temporary file in `stick` when this returns.
fn hanging_export(d: &Path, stick: &Path, state: &str, json: bool) -> std::process::Child {
    let k = key(d, "exporter_ed25519");
    let mut c = Command::new(airlock_bin());
    isolate(&mut c);
    c.arg("export")
        .arg("-")
        .args(["--kind", "file", "--host-name", "ghes.example.com", "--key"])
        .arg(&k)
        .arg("--out")
        .arg(stick)
        .arg("--state-dir")
        .arg(d.join(state))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if json {
        c.arg("--json");
    }
    let before: Vec<String> = temps(stick).into_iter().map(|(n, _)| n).collect();
    let mut child = c.spawn().unwrap();
    // 4 MiB, then the pipe stays open: the export waits for more.
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(&vec![b'x'; 4 << 20])
        .unwrap();
    let t0 = Instant::now();
    while !temps(stick)
        .iter()
        .any(|(n, size)| !before.contains(n) && *size >= 1 << 20)
    {
        assert!(t0.elapsed() < Duration::from_secs(60), "no temporary file");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// airlock's temporary files in `dir`, with sizes.
fn temps(dir: &Path) -> Vec<(String, u64)> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".airlock-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().map(|m| m.len()).unwrap_or(0),
            )
        })
        .collect()
}

fn signal(child: &std::process::Child, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

/// Item 2: Ctrl-C, SIGTERM and SIGHUP remove the partial bundle and exit
/// 130, 143, 129 with AIRLOCK-E-INTERRUPTED.
#[test]
fn item02_interrupted_export_leaves_nothing() {
    let d = tempfile::tempdir().unwrap();
    let stick = d.path().join("stick");
    std::fs::create_dir(&stick).unwrap();
    for (sig, exit) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let child = hanging_export(d.path(), &stick, "state", false);
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        let e = failed(&o, "AIRLOCK-E-INTERRUPTED", exit);
        assert!(e.contains(&format!("SIG{sig}")), "{e}");
        // At least the partial bundle; under load a run has been seen to
        // report 2 (its own second temporary file, also removed): the
        // guarantee is that nothing is left, checked below.
        let removed = e
            .split("removed ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse::<u32>().ok());
        assert!(removed.is_some_and(|n| n >= 1), "{e}");
        assert!(
            listing(&stick).is_empty() && temps(&stick).is_empty(),
            "{:?}",
            temps(&stick)
        );
    }
    let child = hanging_export(d.path(), &stick, "state", true);
    signal(&child, "TERM");
    let o = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["code"], "AIRLOCK-E-INTERRUPTED");
    assert_eq!(v["error"]["exit_code"], 143);
    assert!(temps(&stick).is_empty());
}

/// Item 2: a killed run's temporary file is swept by the next run that
/// writes there; a running export's live temporary file is never touched.
#[test]
fn item02_killed_run_is_swept_but_a_live_one_is_kept() {
    let d = tempfile::tempdir().unwrap();
    let stick = d.path().join("stick");
    std::fs::create_dir(&stick).unwrap();
    // A running export first (its own sweep finds nothing), then one that
    // is killed; the next run must remove only the killed one's file.
    let live = hanging_export(d.path(), &stick, "state-b", false);
    let live_temp = temps(&stick)[0].0.clone();
    let mut killed = hanging_export(d.path(), &stick, "state-a", false);
    let killed_temp = temps(&stick)
        .into_iter()
        .find(|(n, _)| *n != live_temp)
        .unwrap()
        .0;
    signal(&killed, "KILL");
    let _ = killed.wait();
    // Not airlock's name: never touched.
    std::fs::write(stick.join(".airlock-notours.tmp"), b"x").unwrap();
    let u = sample_usage(d.path());
    let k = key(d.path(), "exporter_ed25519");
    let o = airlock()
        .arg("export")
        .arg(&u)
        .key_out_state(&k, &stick, d.path().join("state-c"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "note: removed {}",
            stick.join(&killed_temp).display()
        )) && e.contains("left by an interrupted airlock run"),
        "{e}"
    );
    let left: Vec<String> = temps(&stick).into_iter().map(|(n, _)| n).collect();
    assert!(!left.contains(&killed_temp), "{left:?}");
    assert!(
        left.contains(&live_temp),
        "the live temporary file was removed: {left:?}"
    );
    assert!(left.contains(&".airlock-notours.tmp".to_string()));
    signal(&live, "TERM");
    let o = live.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143));
    assert!(!stick.join(&live_temp).exists());
}

/// Item 3: valid-after as the operator guide writes it works for bundles
/// made after the ceremony date; a key line with a future date gets a hint
/// pointing at that line.
#[test]
fn item03_operator_guide_trust_line_works_and_window_hint_names_the_line() {
    let guide = std::fs::read_to_string(root().join("docs/operator-guide.md")).unwrap();
    let line = guide
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("ghes.example.com namespaces="))
        .expect("the guide's trust line");
    assert!(line.contains("valid-after="), "{line}");
    let (d, k) = keyed_dir();
    let public = read_pub(&d.path().join("exporter_ed25519.pub"));
    let prefix = line.split(" ssh-ed25519 ").next().unwrap();
    let allowed = d.path().join("allowed_signers");
    std::fs::write(&allowed, format!("{prefix} {public}\n")).unwrap();
    let u = sample_usage(d.path());
    let b = export(d.path(), &k, &[&u], &d.path().join("b.zip"), &[]);
    verify_cmd(&b, &allowed).assert().success();
    // The mistake: a ceremony date in the future.
    std::fs::write(
        &allowed,
        format!("# ceremony\nghes.example.com namespaces=\"airlock-bundle\",valid-after=\"20991201Z\" {public}\n"),
    )
    .unwrap();
    let o = verify_cmd(&b, &allowed).output().unwrap();
    let e = failed(&o, "AIRLOCK-E-SIG-WINDOW", 6);
    assert!(
        e.contains(&format!("{}:2, valid-after", allowed.display())),
        "{e}"
    );
    assert!(e.contains("correct valid-after on line 2"), "{e}");
}

/// Item 5: --key given the public key says so and names the private key,
/// without a word about permissions.
#[test]
fn item05_public_key_given_as_key() {
    let (d, k) = keyed_dir();
    let u = sample_usage(d.path());
    let o = airlock()
        .arg("export")
        .arg(&u)
        .key_out_state(
            d.path().join("exporter_ed25519.pub"),
            d.path().join("b.zip"),
            d.path().join("state"),
        )
        .output()
        .unwrap();
    let e = failed(&o, "AIRLOCK-E-KEY-READ", 4);
    assert!(e.contains("is a public key"), "{e}");
    assert!(e.contains(&format!("pass --key {}", k.display())), "{e}");
    assert!(!e.contains("chmod") && !e.contains("PEM"), "{e}");
    assert!(listing(d.path()).iter().all(|f| !f.contains("b.zip")));
}

/// Item 6: on a fresh home, keygen and man create their directories; a
/// missing directory elsewhere is refused with what is missing, and a
/// missing stick with "is the stick mounted?".
#[test]
fn item06_output_directories_follow_one_rule() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let id = h.join(".config/airlock/identity.txt");
    airlock()
        .env("HOME", h)
        .args(["keygen", "--age", "--out"])
        .arg(&id)
        .assert()
        .success();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(h.join(".config/airlock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    airlock()
        .env("HOME", h)
        .args(["man", "--dir"])
        .arg(h.join(".local/share/man/man1"))
        .assert()
        .success();
    assert!(h.join(".local/share/man/man1/airlock-export.1").exists());
    airlock()
        .env("HOME", h)
        .args(["keygen", "--out"])
        .arg(h.join(".ssh/airlock_ed25519"))
        .assert()
        .success();
    // extract --out x1 in a directory of the home: created.
    let k = h.join(".ssh/airlock_ed25519");
    let u = sample_usage(h);
    let b = export(h, &k, &[&u], &h.join("b.zip"), &[]);
    let allowed = allowed_signers(
        h,
        "ghes.example.com",
        &[&read_pub(&h.join(".ssh/airlock_ed25519.pub"))],
    );
    airlock()
        .env("HOME", h)
        .current_dir(h)
        .arg("extract")
        .arg(&b)
        .arg("--trust")
        .arg(&allowed)
        .args(["--out", "x1"])
        .assert()
        .success();
    assert!(h.join("x1/license-usage.json").exists());
    // Outside the home: refused, nothing created.
    let elsewhere = tempfile::tempdir().unwrap();
    let missing = elsewhere.path().join("not-there");
    let o = airlock()
        .env("HOME", h)
        .arg("import")
        .arg(&b)
        .trust_state(&allowed, h.join("importer"))
        .arg("--outbox")
        .arg(&missing)
        .output()
        .unwrap();
    failed_saying(
        &o,
        "AIRLOCK-E-OUTPUT-DIR",
        3,
        &["does not exist", "mkdir -p"],
    );
    assert!(!missing.exists());
    // An unplugged stick.
    let stick = format!("/media/airlock-test-no-stick-{}/", std::process::id());
    let o = airlock()
        .env("HOME", h)
        .arg("export")
        .arg(&u)
        .arg("--key")
        .arg(&k)
        .args(["--out", &stick])
        .arg("--state-dir")
        .arg(h.join("state"))
        .output()
        .unwrap();
    let e = failed(&o, "AIRLOCK-E-OUTPUT-DIR", 3);
    assert!(e.contains("is the stick mounted?"), "{e}");
    assert!(!Path::new(&stick).exists());
    // A file where a directory is needed.
    std::fs::write(h.join("afile"), b"x").unwrap();
    let o = airlock()
        .env("HOME", h)
        .arg("extract")
        .arg(&b)
        .arg("--trust")
        .arg(&allowed)
        .arg("--out")
        .arg(h.join("afile"))
        .output()
        .unwrap();
    let e = failed(&o, "AIRLOCK-E-OUTPUT-DIR", 3);
    assert!(e.contains("is a file, not a directory"), "{e}");
}

/// Item 7: without a terminal, --passphrase names --passphrase-file; a wrong
/// key passphrase names --key-passphrase-file.
#[test]
fn item07_passphrase_messages_name_the_right_flag() {
    let d = tempfile::tempdir().unwrap();
    let o = airlock()
        .args(["keygen", "--passphrase", "--out"])
        .arg(d.path().join("k"))
        .output()
        .unwrap();
    let e = failed(&o, "AIRLOCK-E-ARGS", 2);
    assert!(
        e.contains("there is no terminal to ask for the passphrase on"),
        "{e}"
    );
    assert!(e.contains("--passphrase-file FILE"), "{e}");
    assert!(!e.contains("os error"), "{e}");
    assert!(!d.path().join("k").exists());
    let k = ssh_keygen_key(d.path(), "locked", "right");
    let pass = d.path().join("pass");
    std::fs::write(&pass, "wrong\n").unwrap();
    let u = sample_usage(d.path());
    let o = airlock()
        .arg("export")
        .arg(&u)
        .arg("--key")
        .arg(&k)
        .arg("--key-passphrase-file")
        .arg(&pass)
        .arg("--out")
        .arg(d.path().join("b.zip"))
        .arg("--state-dir")
        .arg(d.path().join("state"))
        .output()
        .unwrap();
    let e = failed(&o, "AIRLOCK-E-KEY-PASSPHRASE", 4);
    assert!(e.contains("--key-passphrase-file"), "{e}");
}

/// Item 8: --json anywhere, for every command, and a failure object for
/// argument errors; one error line on stderr.
#[test]
fn item08_json_everywhere() {
    for args in [
        vec!["--json", "verify"],
        vec!["verify", "--json"],
        vec!["--json", "export", "x", "--bogus"],
        vec!["--json", "cloud", "nothing"],
        vec!["--json", "completions", "tcsh"],
        vec!["--json"],
    ] {
        let o = airlock().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: no JSON on stdout ({e})"));
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["code"], "AIRLOCK-E-ARGS");
        let e = stderr(&o);
        assert_eq!(e.matches("error[").count(), 1, "{args:?}: {e}");
        assert!(!e.contains("\nerror:"), "{args:?}: {e}");
    }
    // Without --json: nothing on stdout, the same single line.
    let o = airlock().arg("verify").output().unwrap();
    assert!(o.stdout.is_empty());
    assert!(
        stderr(&o).starts_with("airlock: error[AIRLOCK-E-ARGS]: the following required arguments")
    );
    let d = tempfile::tempdir().unwrap();
    // Global position works for a real command.
    let o = airlock()
        .args(["--json", "verify"])
        .arg(root().join("fixtures/bundles/golden_clear_users.airlock.zip"))
        .arg("--trust")
        .arg(root().join("keys/allowed_signers"))
        .args(["--at", FIXTURE_TIME])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    for args in [vec!["completions", "bash", "--json"], vec!["man", "--json"]] {
        let o = airlock().args(&args).output().unwrap();
        assert!(o.status.success(), "{args:?}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["ok"], true, "{args:?}");
    }
    let o = airlock()
        .args(["man", "--json", "--dir"])
        .arg(d.path())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["written"].as_array().unwrap().len() >= 15);
    let o = airlock().args(["--version", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["version"].as_str().unwrap().starts_with("airlock "));
}

/// Item 9: a held state lock is announced, not waited on silently.
#[test]
fn item09_held_lock_is_announced() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state.join("lock"))
        .unwrap();
    lock.lock().unwrap();
    std::fs::write(state.join("lock"), "4242\n").unwrap();
    let mut c = Command::new(airlock_bin());
    isolate(&mut c);
    let mut child = c
        .args(["-v", "import"])
        .arg(root().join("fixtures/bundles/golden_clear_users.airlock.zip"))
        .trust_state(root().join("keys/allowed_signers"), &state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert!(
        first.contains("waiting for another airlock process (pid 4242)")
            && first.contains(&state.join("lock").display().to_string()),
        "{first}"
    );
    drop(lock);
    let st = child.wait().unwrap();
    // The golden bundle is expired by now: what matters is that it ran.
    assert!(st.code().is_some());
}

/// Item 10: man pages a Unix administrator expects, and `man -l` finds no
/// reference to a page that does not exist.
#[test]
fn item10_man_pages() {
    let d = man_pages();
    let pages: Vec<PathBuf> = listing(d.path()).iter().map(|p| d.path().join(p)).collect();
    let names: Vec<String> = listing(d.path())
        .iter()
        .map(|p| p.trim_end_matches(".1").to_string())
        .collect();
    for want in [
        "airlock",
        "airlock-export",
        "airlock-cloud",
        "airlock-cloud-status",
        "airlock-cloud-seats",
    ] {
        assert!(
            names.contains(&want.to_string()),
            "{want} missing: {names:?}"
        );
    }
    let re_page = |s: &str| -> Vec<String> {
        // NAME(1) references.
        let mut out = Vec::new();
        for (i, _) in s.match_indices("(1)") {
            let start = s[..i]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
                .map_or(0, |j| j + 1);
            if start < i {
                out.push(s[start..i].to_string());
            }
        }
        out
    };
    for p in &pages {
        let o = tool("man")
            .arg("-l")
            .arg(p)
            .env("MANWIDTH", "2000")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        assert!(o.status.success(), "man -l {}: {}", p.display(), stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        for section in [
            "SYNOPSIS",
            "OPTIONS",
            "EXIT STATUS",
            "ENVIRONMENT",
            "FILES",
            "SEE ALSO",
        ] {
            assert!(text.contains(section), "{name}: no {section}");
        }
        if name != "airlock" {
            // Global options on every subcommand page.
            for opt in ["--quiet", "--verbose", "--color", "--json"] {
                assert!(text.contains(opt), "{name}: no {opt}");
            }
            let typed = name.replace('-', " ");
            assert!(
                text.contains(&format!("SYNOPSIS\n       {typed}")),
                "{name}: synopsis\n{text}"
            );
        }
        assert!(
            !text.contains("<--"),
            "{name}: clap_mangen's <--flag> synopsis"
        );
        for r in re_page(&text) {
            if r.starts_with("airlock") {
                assert!(
                    names.contains(&r),
                    "{name} refers to {r}(1), which is not generated"
                );
            } else {
                let found = tool("man").args(["-w", &r]).output().unwrap();
                assert!(
                    found.status.success(),
                    "{name} refers to {r}(1), which is not installed"
                );
            }
        }
    }
    let export = std::fs::read_to_string(d.path().join("airlock-export.1")).unwrap();
    assert!(export.contains("EXAMPLES"));
    assert!(export.contains("AIRLOCK_STATE_DIR"));
}

/// Item 11: log on a fresh state directory says there is no ledger yet; an
/// import refused for a missing identity is logged with its host; a damaged
/// binary KRL is reported without a line number.
#[test]
fn item11_ledger_messages() {
    let d = tempfile::tempdir().unwrap();
    let o = airlock()
        .arg("log")
        .arg("--state-dir")
        .arg(d.path().join("fresh"))
        .output()
        .unwrap();
    let e = failed(&o, "AIRLOCK-E-IO-READ", 3);
    assert!(
        e.contains("no ledger in") && !e.contains("unable to open database"),
        "{e}"
    );
    // Encrypted bundle, imported without an identity.
    let k = key(d.path(), "exporter_ed25519");
    let u = sample_usage(d.path());
    let recipient = std::fs::read_to_string(root().join("keys/age_identity.txt"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(String::from))
        .unwrap();
    let b = export(
        d.path(),
        &k,
        &[&u],
        &d.path().join("b.zip"),
        &["--recipient", &recipient],
    );
    let allowed = trust_keys(d.path(), "ghes.example.com", &["exporter_ed25519"]);
    let o = airlock()
        .arg("import")
        .arg(&b)
        .trust_state(&allowed, d.path().join("importer"))
        .output()
        .unwrap();
    let e = failed(&o, "AIRLOCK-E-DECRYPT-NO-IDENTITY", 9);
    assert!(!e.contains("spool") && !e.contains(".airlock-"), "{e}");
    let o = airlock()
        .args(["log", "--json", "--state-dir"])
        .arg(d.path().join("importer"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ev = &v["events"][0];
    assert_eq!(ev["outcome"], "rejected");
    assert_eq!(ev["host_name"], "ghes.example.com", "{ev}");
    assert_eq!(ev["sequence"], 1, "{ev}");
    // A bundle from an untrusted key: its claims are not recorded.
    let other = d.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let outsider = std::fs::read_to_string(root().join("keys/outsider_ed25519.pub")).unwrap();
    let untrusting = allowed_signers(&other, "ghes.example.com", &[outsider.trim()]);
    let o = airlock()
        .arg("import")
        .arg(&b)
        .trust_state(&untrusting, d.path().join("importer"))
        .output()
        .unwrap();
    failed(&o, "AIRLOCK-E-SIG-UNTRUSTED", 6);
    let o = airlock()
        .args(["log", "--json", "--state-dir"])
        .arg(d.path().join("importer"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["events"][1]["host_name"].is_null(), "{}", v["events"][1]);
    // A truncated binary KRL.
    let krl = d.path().join("krl.bin");
    std::fs::write(&krl, b"SSHKRL\n\0\0\0\x01").unwrap();
    let o = verify_cmd(&b, &allowed)
        .arg("--revoked")
        .arg(&krl)
        .output()
        .unwrap();
    let e = failed(&o, "AIRLOCK-E-TRUST-FILE", 6);
    assert!(!e.contains("line 0") && !e.contains(":0:"), "{e}");
}

/// Item 12: the demo runs the whole job, against a stand-in it labels as
/// such, and leaves nothing behind.
#[test]
fn item12_demo_runs_the_whole_job() {
    let tmp = tempfile::tempdir().unwrap();
    let o = airlock()
        .env("TMPDIR", tmp.path())
        .arg("demo")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "--recipient age1",
        "VERIFIED (without any secret)",
        "Upload to GitHub Enterprise Cloud: license usage of ghes.example.com",
        "Add server usage",
        "AIRLOCK-E-ALREADY-IMPORTED",
        "forged: REJECTED",
        "older bundle: REJECTED AIRLOCK-E-LEDGER-OLDER",
        "STAND-IN, NOT GITHUB",
        "confirmed 1 imported bundle(s)",
        "match no Cloud account",
        "fleet: ghes.example.com",
        "chain verified",
        "STAND-IN, NOT GHES",
        "the usage bundle carried inward: REJECTED AIRLOCK-E-NOT-A-LICENCE",
    ] {
        assert!(out.contains(want), "demo output lacks {want:?}:\n{out}");
    }
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
    let o = airlock()
        .env("TMPDIR", tmp.path())
        .args(["demo", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["forged"], "AIRLOCK-E-ZIP-CRC");
    assert_eq!(
        v["cloud_status"][0]["newly_confirmed"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(v["seats"]["unmatched"].as_array().unwrap().len(), 1);
    assert_eq!(v["licence_in"]["applied"], "DEMO2");
    assert_eq!(v["licence_in"]["replayed"], "AIRLOCK-E-LICENCE-APPLIED");
}
