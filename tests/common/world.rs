//! The set-up the integration tests share (decision 87), after ripgrep's
//! tests/util.rs: a [`World`] (a temporary directory with the exporter key
//! and a trust file), the usage files, the export and import command lines,
//! the clock, and [`Run`], which runs a command and checks it succeeded.
//! A new integration test starts from these rather than writing its own.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use super::{airlock, airlock_bin, allowed_signers, isolate, key, listing, read_pub};

/// The server id of a second instance (the sample's is the first).
pub const OTHER_ID: &str = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f";
/// The server id of `ghes-a.example.com` where a test needs two instances.
pub const ID_A: &str = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
/// The server id of `ghes-b.example.com` where a test needs two instances.
pub const ID_B: &str = OTHER_ID;

/// Seconds since the epoch, now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `secs` as an RFC 3339 time to the second.
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

/// A 36-character server id derived from the host name (any UUID will do).
pub fn server_id(host: &str) -> String {
    let h = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(host.as_bytes()));
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// A temporary directory with the exporter key (`exporter_ed25519`) in it.
pub fn keyed_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let k = key(d.path(), "exporter_ed25519");
    (d, k)
}

/// Write a clear usage file of `host` (server `id`, `users` users) at `path`.
pub fn usage_file(path: &Path, host: &str, id: &str, users: usize) -> PathBuf {
    std::fs::write(path, airlock::sample::usage_clear(host, id, users)).unwrap();
    path.to_path_buf()
}

/// Write the sample instance's clear usage file (ghes.example.com) at `path`.
pub fn sample_usage_clear(path: &Path, users: usize) -> PathBuf {
    usage_file(
        path,
        "ghes.example.com",
        airlock::sample::SAMPLE_SERVER_ID,
        users,
    )
}

/// Write the sample instance's encrypted usage file (ghes.example.com,
/// `users` users) at `path`.
pub fn sample_usage_encrypted(path: &Path, users: usize) -> PathBuf {
    std::fs::write(
        path,
        airlock::sample::usage_encrypted(
            "ghes.example.com",
            airlock::sample::SAMPLE_SERVER_ID,
            users,
        ),
    )
    .unwrap();
    path.to_path_buf()
}

/// A new host key pair `name` in `dir`, made by `ssh-keygen` with an empty
/// passphrase (asserted to succeed); its path and public line.
pub fn ssh_host_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let p = dir.join(name);
    let st = super::tool("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&p)
        .status()
        .unwrap();
    assert!(st.success(), "ssh-keygen {name}");
    let line = read_pub(&dir.join(format!("{name}.pub")));
    (p, line)
}

/// An allowed_signers file in `dir` trusting, for `host`, the public halves
/// of the keys named (already in `dir`, as [`key`] puts them).
pub fn trust_keys(dir: &Path, host: &str, names: &[&str]) -> PathBuf {
    let lines: Vec<String> = names
        .iter()
        .map(|n| read_pub(&dir.join(format!("{n}.pub"))))
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    allowed_signers(dir, host, &lines)
}

/// `airlock export INPUT --key KEY --out OUT --state-dir STATE`, to add to.
pub fn export_cmd(input: &Path, key: &Path, out: &Path, state: &Path) -> assert_cmd::Command {
    let mut c = airlock();
    c.arg("export").arg(input).key_out_state(key, out, state);
    c
}

/// A new directory holding what `airlock man --dir` wrote (asserted to
/// succeed).
pub fn man_pages() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    airlock()
        .args(["man", "--dir"])
        .arg(d.path())
        .assert()
        .success();
    d
}

/// `airlock verify BUNDLE --trust TRUST`, to add to.
pub fn verify_cmd(bundle: impl AsRef<OsStr>, trust: impl AsRef<OsStr>) -> assert_cmd::Command {
    let mut c = airlock();
    c.arg("verify").arg(bundle).arg("--trust").arg(trust);
    c
}

/// `airlock import BUNDLE --trust TRUST --state-dir STATE`, to add to.
pub fn import_cmd(bundle: &Path, trust: &Path, state: &Path) -> assert_cmd::Command {
    let mut c = airlock();
    c.arg("import").arg(bundle).trust_state(trust, state);
    c
}

/// The airlock binary under test as a `std::process::Command` (for
/// spawning, signals and pipes), with the user's environment kept out.
pub fn airlock_std() -> std::process::Command {
    let mut c = std::process::Command::new(airlock_bin());
    isolate(&mut c);
    c
}

/// The events of the ledger in `state`, after `airlock log --verify` said
/// the chain holds.
pub fn log_events(state: &Path) -> Vec<serde_json::Value> {
    let v = airlock()
        .arg("log")
        .arg("--state-dir")
        .arg(state)
        .arg("--verify")
        .arg("--json")
        .json_ok();
    v["events"].as_array().unwrap().clone()
}

/// The events of the ledger in `state`, as `airlock log --json` lists them
/// (asserted to succeed; the chain is not verified).
pub fn ledger(state: &Path) -> Vec<serde_json::Value> {
    let v = airlock()
        .args(["log", "--json", "--state-dir"])
        .arg(state)
        .json_ok();
    v["events"].as_array().unwrap().clone()
}

/// How many of `events` are of `kind` with `outcome`.
pub fn count_events(events: &[serde_json::Value], kind: &str, outcome: &str) -> usize {
    events
        .iter()
        .filter(|e| e["kind"] == kind && e["outcome"] == outcome)
        .count()
}

/// Standard error, for assertion messages.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Failed with `code` and exit `exit`, on one error line with a hint; the
/// standard error.
pub fn failed(o: &Output, code: &str, exit: i32) -> String {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(exit), "{e}");
    assert!(e.contains(&format!("error[{code}]")), "want {code}: {e}");
    assert!(e.contains("hint:"), "no hint: {e}");
    assert_eq!(e.matches("error[").count(), 1, "one error line: {e}");
    e
}

/// Standard output as JSON, after asserting the command exited with `code`
/// (the message holds its standard error).
pub fn json_exit(o: &Output, code: i32) -> serde_json::Value {
    assert_exit(o, code);
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Assert the command exited with `code` (the message holds its standard
/// error).
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "stderr: {}", stderr(o));
}

/// Assert the command wrote nothing on standard error.
pub fn assert_quiet(o: &Output) {
    assert!(o.stderr.is_empty(), "stderr: {}", stderr(o));
}

/// Assert the command succeeded; `what` and both its outputs in the message.
pub fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
}

/// [`failed`], and the standard error says every one of `says`.
pub fn failed_saying(o: &Output, code: &str, exit: i32, says: &[&str]) -> String {
    let e = failed(o, code, exit);
    for s in says {
        assert!(e.contains(s), "want {s:?}: {e}");
    }
    e
}

/// Standard output as JSON, after asserting the command succeeded (the
/// message holds its standard error).
pub fn ok_json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// What the tests do with a command line, alike for assert_cmd's and std's.
pub trait Run {
    /// Add one argument.
    fn push(&mut self, a: &OsStr) -> &mut Self;
    /// Set one environment variable.
    fn put_env(&mut self, k: &str, v: &str) -> &mut Self;
    /// Run to the end, collecting the output.
    fn run(&mut self) -> Output;

    /// `--key KEY --out OUT --state-dir STATE`.
    fn key_out_state(
        &mut self,
        key: impl AsRef<OsStr>,
        out: impl AsRef<OsStr>,
        state: impl AsRef<OsStr>,
    ) -> &mut Self {
        self.push("--key".as_ref())
            .push(key.as_ref())
            .push("--out".as_ref())
            .push(out.as_ref())
            .push("--state-dir".as_ref())
            .push(state.as_ref())
    }
    /// `--trust TRUST --state-dir STATE`.
    fn trust_state(&mut self, trust: impl AsRef<OsStr>, state: impl AsRef<OsStr>) -> &mut Self {
        self.push("--trust".as_ref())
            .push(trust.as_ref())
            .push("--state-dir".as_ref())
            .push(state.as_ref())
    }
    /// `--reproducible` with `SOURCE_DATE_EPOCH=t`: the bundle dated `t`.
    fn made_at(&mut self, t: u64) -> &mut Self {
        self.put_env("SOURCE_DATE_EPOCH", &t.to_string())
            .push("--reproducible".as_ref())
    }
    /// Run; assert it succeeded; the output.
    fn run_ok(&mut self) -> Output {
        let o = self.run();
        assert!(o.status.success(), "{}", stderr(&o));
        o
    }
    /// Run; assert it succeeded; its standard output as JSON.
    fn json_ok(&mut self) -> serde_json::Value {
        ok_json(&self.run())
    }
}

// The two command types have the same methods but no trait in common.
macro_rules! impl_run {
    ($($t:ty),*) => {$(
        impl Run for $t {
            fn push(&mut self, a: &OsStr) -> &mut Self {
                self.arg(a)
            }
            fn put_env(&mut self, k: &str, v: &str) -> &mut Self {
                self.env(k, v)
            }
            fn run(&mut self) -> Output {
                self.output().unwrap()
            }
        }
    )*};
}
impl_run!(assert_cmd::Command, std::process::Command);

/// What the tests assert of an assert_cmd command that must fail.
pub trait Fails {
    /// Run; assert it exited with `exit` and its standard error contains
    /// `text` (an error code, most often).
    fn fails(&mut self, exit: i32, text: impl Into<String>) -> assert_cmd::assert::Assert;
}

impl Fails for assert_cmd::Command {
    fn fails(&mut self, exit: i32, text: impl Into<String>) -> assert_cmd::assert::Assert {
        self.assert()
            .code(exit)
            .stderr(predicates::str::contains(text))
    }
}

/// A temporary directory holding the exporter key (`exporter_ed25519`) and
/// a trust file for it: what most integration tests start from.
pub struct World {
    /// The directory; everything the test makes goes in it.
    pub dir: tempfile::TempDir,
    /// The signing key.
    pub key: PathBuf,
    /// The allowed_signers file trusting `key`.
    pub allowed: PathBuf,
}

impl World {
    /// The exporter key, trusted for `*.example.com`.
    pub fn new() -> World {
        World::trusting("*.example.com")
    }
    /// The exporter key, trusted for `host`.
    pub fn trusting(host: &str) -> World {
        World::with_key("exporter_ed25519", host)
    }
    /// The committed key `name`, trusted for `host`.
    pub fn with_key(name: &str, host: &str) -> World {
        let dir = tempfile::tempdir().unwrap();
        let key = key(dir.path(), name);
        let allowed = trust_keys(dir.path(), host, &[name]);
        World { dir, key, allowed }
    }
    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// `n` in the directory.
    pub fn p(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }
    /// A clear usage file `name` of `host` with `users` users (the sample's
    /// server id for ghes.example.com, [`OTHER_ID`] for any other).
    pub fn usage(&self, name: &str, host: &str, users: usize) -> PathBuf {
        let id = if host == "ghes.example.com" {
            airlock::sample::SAMPLE_SERVER_ID
        } else {
            OTHER_ID
        };
        usage_file(&self.p(name), host, id, users)
    }
    /// `airlock export INPUT --key KEY --out OUT --state-dir STATE` with
    /// this world's key and the state directory `state` in it.
    pub fn export_cmd(&self, input: &Path, out: &Path, state: &str) -> assert_cmd::Command {
        export_cmd(input, &self.key, out, &self.p(state))
    }
    /// `airlock import BUNDLE --trust ALLOWED --state-dir STATE` with the
    /// state directory `state` in this world.
    pub fn import_cmd(&self, bundle: &Path, state: &str) -> assert_cmd::Command {
        import_cmd(bundle, &self.allowed, &self.p(state))
    }
    /// The exporter key trusted for `ghes.example.com`, and the sample
    /// instance's usage file with `users` users at [`World::usage_json`].
    pub fn with_sample_usage(users: usize) -> World {
        let w = World::trusting("ghes.example.com");
        sample_usage_clear(&w.usage_json(), users);
        w
    }
    /// `license-usage.json` in the directory.
    pub fn usage_json(&self) -> PathBuf {
        self.p("license-usage.json")
    }
    /// A world whose ledger (state directory `state`) holds one bundle of
    /// each of two instances, `ghes-a.example.com` ([`ID_A`]) and
    /// `ghes-b.example.com` ([`ID_B`]), made and imported an hour ago.
    pub fn with_two_instances() -> World {
        let w = World::new();
        for (host, id) in [("ghes-a.example.com", ID_A), ("ghes-b.example.com", ID_B)] {
            let b = w.export_at(host, id, now_secs() - 3600);
            w.import_cmd(&b, "state").assert().success();
        }
        w
    }
    /// Export a usage file of `host` (server `id`, 3 users) dated `t`, with
    /// the state directory `exporter`; the bundle, `HOST-T.zip`.
    pub fn export_at(&self, host: &str, id: &str, t: u64) -> PathBuf {
        let u = usage_file(&self.p(&format!("{host}.json")), host, id, 3);
        let b = self.p(&format!("{host}-{t}.zip"));
        self.export_cmd(&u, &b, "exporter")
            .made_at(t)
            .assert()
            .success();
        b
    }
    /// `airlock cloud ARGS… --enterprise octo-corp --api-url URL
    /// --state-dir state`, with a token, against `server`.
    pub fn cloud(&self, server: &super::http::Server, args: &[&str]) -> assert_cmd::Command {
        let mut c = airlock();
        c.arg("cloud")
            .args(args)
            .args(["--enterprise", "octo-corp", "--api-url", &server.url])
            .arg("--state-dir")
            .arg(self.p("state"))
            .env("GH_TOKEN", "ghp_secret_token_value");
        c
    }
    /// `airlock fleet ARGS… --state-dir state`.
    pub fn fleet(&self, args: &[&str]) -> assert_cmd::Command {
        let mut c = airlock();
        c.arg("fleet")
            .args(args)
            .arg("--state-dir")
            .arg(self.p("state"));
        c
    }
    /// The payload files in the outbox (its upload steps aside).
    pub fn outbox_payloads(&self) -> Vec<String> {
        if !self.p("outbox").exists() {
            return vec![];
        }
        listing(&self.p("outbox"))
            .into_iter()
            .filter(|f| !f.ends_with(".UPLOAD.txt"))
            .collect()
    }
    /// The events of the ledger in the state directory `state`, verified.
    pub fn ledger_events(&self, state: &str) -> Vec<serde_json::Value> {
        log_events(&self.p(state))
    }
}

impl Default for World {
    fn default() -> World {
        World::new()
    }
}
