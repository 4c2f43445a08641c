//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod http;
pub mod sshd;
pub mod standin;
mod world;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
pub use world::*;

pub const FIXTURE_TIME: &str = "2026-11-01T00:00:00Z";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The path of the airlock binary under test: `AIRLOCK_BIN` when set (an
/// absolute path: tests/run.sh runs the integration tests a second time
/// against the released portable binary that way), else the one Cargo built.
pub fn airlock_bin() -> PathBuf {
    match std::env::var_os("AIRLOCK_BIN").filter(|v| !v.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.is_absolute() && p.is_file(),
                "AIRLOCK_BIN={} is not an absolute path to a file",
                p.display()
            );
            p
        }
        None => assert_cmd::cargo::cargo_bin("airlock"),
    }
}

/// The airlock binary under test.
pub fn airlock() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(airlock_bin());
    isolate(c.env_remove("SOURCE_DATE_EPOCH"));
    c
}

/// Whether the binary under test has the debug-build test hooks
/// (`AIRLOCK_FAULT`, `AIRLOCK_PAUSE`): asked once of `airlock --version`.
/// Release builds compile the hooks out (src/io/fsutil.rs).
pub fn has_test_hooks() -> bool {
    static HOOKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HOOKS.get_or_init(|| {
        let out = Command::new(airlock_bin())
            .arg("--version")
            .output()
            .expect("run airlock --version");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("\ntest hooks: "),
            "airlock --version does not say whether test hooks are compiled in:\n{text}"
        );
        text.contains("\ntest hooks: AIRLOCK_FAULT")
    })
}

/// For a test that needs the debug-build hooks: true when the binary under
/// test lacks them (a release binary, given by `AIRLOCK_BIN`), after
/// recording the skip on stderr and in the file `AIRLOCK_TEST_SKIPS` names
/// (tests/run.sh prints and counts that file). The test then returns at once.
pub fn skip_without_test_hooks(test: &str) -> bool {
    if has_test_hooks() {
        return false;
    }
    let line = format!(
        "{test}: skipped, needs the fault/pause hooks (AIRLOCK_FAULT, AIRLOCK_PAUSE) that release builds compile out; run against {}\n",
        airlock_bin().display()
    );
    eprint!("{line}");
    if let Some(log) = std::env::var_os("AIRLOCK_TEST_SKIPS").filter(|v| !v.is_empty()) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open AIRLOCK_TEST_SKIPS");
        f.write_all(line.as_bytes())
            .expect("write AIRLOCK_TEST_SKIPS");
    }
    true
}

/// Keep the user's environment and configuration out of a test run.
pub fn isolate<C: EnvLike>(c: &mut C) {
    for v in [
        "AIRLOCK_STATE_DIR",
        "AIRLOCK_TRUST",
        "AIRLOCK_REVOKED",
        "AIRLOCK_CONFIG",
        "AIRLOCK_OUTBOX",
        "AIRLOCK_ENTERPRISE",
        "AIRLOCK_SUBMIT_URL",
        "AIRLOCK_SUBMIT_TOKEN",
        "AIRLOCK_IDENTITY",
        "GH_TOKEN",
        "GITHUB_TOKEN",
        "AIRLOCK_FAULT",
        "AIRLOCK_PAUSE",
        "AIRLOCK_PAUSE_DIR",
        // The network environment: no proxy, the default CA store, github.com.
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "GH_HOST",
    ] {
        c.remove(v);
    }
    c.set("XDG_CONFIG_HOME", "/nonexistent/airlock-test-config");
}

pub trait EnvLike {
    fn remove(&mut self, k: &str);
    fn set(&mut self, k: &str, v: &str);
}

impl EnvLike for assert_cmd::Command {
    fn remove(&mut self, k: &str) {
        self.env_remove(k);
    }
    fn set(&mut self, k: &str, v: &str) {
        self.env(k, v);
    }
}

impl EnvLike for std::process::Command {
    fn remove(&mut self, k: &str) {
        self.env_remove(k);
    }
    fn set(&mut self, k: &str, v: &str) {
        self.env(k, v);
    }
}

/// A standard tool the test suite needs; tests/run.sh installs them.
pub fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: run the suite with `bash tests/run.sh`, which installs it"
    );
    Command::new(name)
}

/// `unshare [--mount | --mount --map-root-user] sh -c SCRIPT sh DIR`, the
/// first mode that can make a private mount namespace here, with the user's
/// environment kept out; None when neither can. SCRIPT mounts over `$1`,
/// shifts and execs the command line to be added.
pub fn unshare_mount(script: &str, dir: &Path) -> Option<Command> {
    let modes: [&[&str]; 2] = [&["--mount"], &["--mount", "--map-root-user"]];
    let mode = modes.iter().find(|m| {
        Command::new("unshare")
            .args(**m)
            .arg("true")
            .output()
            .is_ok_and(|o| o.status.success())
    })?;
    let mut c = Command::new("unshare");
    c.args(*mode)
        .arg("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(dir);
    isolate(&mut c);
    Some(c)
}

/// Copy a committed test key into `dir` with mode 0600 (git keeps no modes).
pub fn key(dir: &Path, name: &str) -> PathBuf {
    let dst = dir.join(name);
    std::fs::copy(root().join("keys").join(name), &dst).unwrap();
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pubsrc = root().join("keys").join(format!("{name}.pub"));
    if pubsrc.exists() {
        std::fs::copy(pubsrc, dir.join(format!("{name}.pub"))).unwrap();
    }
    dst
}

pub fn read_pub(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

/// An allowed_signers file trusting `pubkey_line` for `host`.
pub fn allowed_signers(dir: &Path, host: &str, pubkey_lines: &[&str]) -> PathBuf {
    let p = dir.join("allowed_signers");
    let mut s = String::new();
    for l in pubkey_lines {
        s.push_str(&format!("{host} namespaces=\"airlock-bundle\" {l}\n"));
    }
    std::fs::write(&p, s).unwrap();
    p
}

/// Write the sample usage file (encrypted user list) into `dir`.
pub fn sample_usage(dir: &Path) -> PathBuf {
    let p = dir.join("license-usage.json");
    std::fs::write(
        &p,
        airlock::sample::usage_encrypted(
            airlock::sample::SAMPLE_HOST,
            airlock::sample::SAMPLE_SERVER_ID,
            2048,
        ),
    )
    .unwrap();
    p
}

/// Every file under `dir`, sorted, relative.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    fn walk(base: &Path, d: &Path, v: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, v);
            } else {
                v.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    walk(dir, dir, &mut v);
    v.sort();
    v
}

/// Export `files` with `key` into `out`, returning the bundle path.
pub fn export(dir: &Path, key: &Path, files: &[&Path], out: &Path, extra: &[&str]) -> PathBuf {
    let mut c = airlock();
    c.arg("export")
        .args(files)
        .arg("--key")
        .arg(key)
        .arg("--out")
        .arg(out)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(extra);
    c.assert().success();
    out.to_path_buf()
}

/// A new OpenSSH Ed25519 key made by `ssh-keygen` (empty passphrase for "").
pub fn ssh_keygen_key(dir: &Path, name: &str, pass: &str) -> PathBuf {
    let p = dir.join(name);
    let st = tool("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-C", name, "-N", pass, "-f"])
        .arg(&p)
        .status()
        .unwrap();
    assert!(st.success());
    p
}

/// One member's bytes, read with `unzip -p`.
pub fn unzip_member(bundle: &Path, member: &str) -> Vec<u8> {
    let out = tool("unzip")
        .arg("-p")
        .arg(bundle)
        .arg(member)
        .output()
        .unwrap();
    assert!(out.status.success(), "unzip -p {member}");
    out.stdout
}

/// Member names, as `unzip -Z1` lists them.
pub fn unzip_members(bundle: &Path) -> Vec<String> {
    let out = tool("unzip").arg("-Z1").arg(bundle).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The first signature member's name.
pub fn sig_member(bundle: &Path) -> String {
    unzip_members(bundle)
        .into_iter()
        .find(|l| l.starts_with("signatures/"))
        .unwrap()
}

/// `ssh-keygen -Y verify -f ALLOWED -I ghes.example.com -n airlock-bundle -s SIG < MESSAGE`.
pub fn ssh_keygen_verify(allowed: &Path, sig: &Path, message: &Path) -> bool {
    tool("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", "ghes.example.com", "-n", "airlock-bundle", "-s"])
        .arg(sig)
        .stdin(std::fs::File::open(message).unwrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// At the top of a test that needs the debug-build hooks: return at once,
/// recording the skip under the test's own name, when the binary under test
/// lacks them ([`skip_without_test_hooks`]).
#[macro_export]
macro_rules! skip_without_hooks {
    () => {{
        fn here() {}
        // "binary::test_name::here": the enclosing test's name.
        let path = std::any::type_name_of_val(&here);
        let test = path.trim_end_matches("::here").rsplit("::").next().unwrap();
        if $crate::common::skip_without_test_hooks(test) {
            return;
        }
    }};
}
