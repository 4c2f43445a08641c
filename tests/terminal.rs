//! The binary on a real pseudo-terminal (tmux): passphrase prompts, the
//! progress bar, colour and NO_COLOR; and nothing extra when not a terminal.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

struct Tmux {
    name: String,
}

impl Tmux {
    fn start(name: &str, cmd: &str, env: &[(&str, &str)]) -> Tmux {
        let mut c = tool("tmux");
        c.args(["new-session", "-d", "-s", name, "-x", "160", "-y", "40"]);
        for (k, v) in env {
            c.arg("-e").arg(format!("{k}={v}"));
        }
        // Keep the pane after the command ends so it can be read.
        c.arg(format!("{cmd}; echo EXIT=$?; sleep 30"));
        assert!(c.status().unwrap().success(), "tmux did not start");
        Tmux {
            name: name.to_string(),
        }
    }

    fn screen(&self, escapes: bool) -> String {
        let mut c = tool("tmux");
        c.args(["capture-pane", "-p", "-t", &self.name]);
        if escapes {
            c.arg("-e");
        }
        String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned()
    }

    fn wait_for(&self, text: &str) -> String {
        let t = Instant::now();
        loop {
            let s = self.screen(false);
            if s.contains(text) {
                return s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "never saw {text:?} on:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn send(&self, keys: &str) {
        assert!(tool("tmux")
            .args(["send-keys", "-t", &self.name, keys, "Enter"])
            .status()
            .unwrap()
            .success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = tool("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

fn bin() -> String {
    airlock_bin().display().to_string()
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display())
}

#[test]
fn passphrase_prompt_on_a_terminal() {
    let d = tempfile::tempdir().unwrap();
    let k = d.path().join("k");
    let t = Tmux::start(
        &format!("airlock-pass-{}", std::process::id()),
        &format!("{} keygen --out {} --passphrase", bin(), sh_quote(&k)),
        &[],
    );
    t.wait_for("New passphrase for the new key");
    t.send("tty secret 1");
    t.wait_for("The same passphrase again:");
    t.send("tty secret 1");
    let screen = t.wait_for("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        !screen.contains("tty secret"),
        "the passphrase was echoed:\n{screen}"
    );
    let ok = tool("ssh-keygen")
        .args(["-y", "-P", "tty secret 1", "-f"])
        .arg(&k)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "the key is not encrypted with the typed passphrase"
    );

    // A mistyped second entry is refused and writes nothing.
    let k2 = d.path().join("k2");
    let t2 = Tmux::start(
        &format!("airlock-pass2-{}", std::process::id()),
        &format!("{} keygen --out {} --passphrase", bin(), sh_quote(&k2)),
        &[],
    );
    t2.wait_for("New passphrase for the new key");
    t2.send("one");
    t2.wait_for("The same passphrase again:");
    t2.send("two");
    let screen = t2.wait_for("EXIT=");
    assert!(
        screen.contains("the two passphrases typed differ")
            && screen.contains("type the same passphrase twice, or pass --passphrase-file FILE")
            && screen.contains("EXIT=2"),
        "{screen}"
    );
    assert!(!k2.exists());
}

/// Regression (#16, item 7): with a passphrase-protected signing key,
/// `export --passphrase` asks for the key's passphrase first, saying so, and
/// then for the bundle's, saying what it is for.
#[test]
fn export_passphrase_prompts_say_what_they_are_for() {
    let d = tempfile::tempdir().unwrap();
    let k = ssh_keygen_key(d.path(), "locked_ed25519", "key pass");
    let u = sample_usage(d.path());
    let out = d.path().join("b.zip");
    let cmd = format!(
        "{} export {} --key {} --out {} --state-dir {} --passphrase",
        bin(),
        sh_quote(&u),
        sh_quote(&k),
        sh_quote(&out),
        sh_quote(&d.path().join("st"))
    );
    let t = Tmux::start(
        &format!("airlock-exportpass-{}", std::process::id()),
        &cmd,
        &[("XDG_CONFIG_HOME", "/nonexistent")],
    );
    t.wait_for("Passphrase of the key");
    t.send("key pass");
    let screen = t.wait_for("New passphrase for the bundle");
    assert!(screen.contains("importer needs it to decrypt"), "{screen}");
    t.send("bundle pass");
    t.wait_for("The same passphrase again:");
    t.send("bundle pass");
    let screen = t.wait_for("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(out.exists());
}

fn big_usage(dir: &Path) -> std::path::PathBuf {
    sample_usage_encrypted(&dir.join("big.json"), 40 << 20)
}

#[test]
fn progress_bar_on_a_terminal_only() {
    let (d, k) = keyed_dir();
    let u = big_usage(d.path());
    let out = d.path().join("b.zip");
    let cmd = format!(
        "{} export {} --key {} --out {} --state-dir {}",
        bin(),
        sh_quote(&u),
        sh_quote(&k),
        sh_quote(&out),
        sh_quote(&d.path().join("st"))
    );
    let t = Tmux::start(
        &format!("airlock-prog-{}", std::process::id()),
        &cmd,
        &[("XDG_CONFIG_HOME", "/nonexistent")],
    );
    let screen = t.wait_for("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        screen.contains("export big.json done"),
        "no progress bar:\n{screen}"
    );
    assert!(screen.contains("MiB"), "{screen}");

    // Not a terminal: no bar, nothing on stderr.
    let r = airlock()
        .arg("export")
        .arg(&u)
        .key_out_state(&k, d.path().join("c.zip"), d.path().join("st"))
        .output()
        .unwrap();
    assert!(r.status.success());
    assert_quiet(&r);
}

#[test]
fn colour_on_a_terminal_and_never_with_no_color() {
    let root = root();
    let cmd = format!(
        "{} verify {} --trust {} --at 2026-11-01T00:00:00Z",
        bin(),
        sh_quote(&root.join("fixtures/bundles/golden_clear_users.airlock.zip")),
        sh_quote(&root.join("keys/allowed_signers"))
    );
    let t = Tmux::start(&format!("airlock-col-{}", std::process::id()), &cmd, &[]);
    t.wait_for("EXIT=0");
    // tmux re-encodes SGR 1;32 as two sequences.
    let coloured =
        |s: &str| s.contains("\u{1b}[1;32mVERIFIED") || s.contains("\u{1b}[1m\u{1b}[32mVERIFIED");
    assert!(
        coloured(&t.screen(true)),
        "no colour on a terminal:\n{}",
        t.screen(true)
    );
    let t2 = Tmux::start(
        &format!("airlock-nocol-{}", std::process::id()),
        &cmd,
        &[("NO_COLOR", "1")],
    );
    t2.wait_for("EXIT=0");
    let s = t2.screen(true);
    assert!(
        s.contains("VERIFIED") && !coloured(&s) && !s.contains("\u{1b}[32m"),
        "colour despite NO_COLOR:\n{s}"
    );
    // Piped: never colour.
    let out = verify_cmd(
        root.join("fixtures/bundles/golden_clear_users.airlock.zip"),
        root.join("keys/allowed_signers"),
    )
    .arg("--at")
    .arg("2026-11-01T00:00:00Z")
    .output()
    .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\u{1b}'));
}

/// Regression (issue 28, first day 5): `export -` with a terminal on
/// standard input waited silently; it is refused at once, saying what to
/// do. Piped in, a stream of unknown size shows a byte counter.
#[test]
fn export_stdin_refuses_a_terminal_and_counts_bytes_from_a_pipe() {
    let (d, k) = keyed_dir();
    std::fs::create_dir(d.path().join("stick")).unwrap();
    let cmd = format!(
        "{} export - --key {} --out {} --state-dir {}",
        bin(),
        sh_quote(&k),
        sh_quote(&d.path().join("stick/")),
        sh_quote(&d.path().join("st"))
    );
    let t = Tmux::start(
        &format!("airlock-tty-{}", std::process::id()),
        &cmd,
        &[("XDG_CONFIG_HOME", "/nonexistent")],
    );
    // Generous: "at once" means without waiting for input, not a deadline.
    let screen = t.wait_for("EXIT=");
    assert!(screen.contains("EXIT=2"), "{screen}");
    assert!(screen.contains("AIRLOCK-E-ARGS"), "{screen}");
    assert!(screen.contains("which is a terminal"), "{screen}");
    assert!(screen.contains("pipe the file in"), "{screen}");
    assert!(listing(&d.path().join("stick")).is_empty());
    drop(t);

    let u = big_usage(d.path());
    let cmd = format!("cat {} | {cmd}", sh_quote(&u));
    let t = Tmux::start(
        &format!("airlock-cnt-{}", std::process::id()),
        &cmd,
        &[("XDG_CONFIG_HOME", "/nonexistent")],
    );
    let screen = t.wait_for("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        screen.contains("export license-usage.json done"),
        "no byte counter:\n{screen}"
    );
    assert!(
        screen.contains("(size unknown)") && screen.contains("MiB"),
        "{screen}"
    );
}
