//! The appliance over SSH: `ghe-license` as `admin` on port 122, through a
//! configurable SSH command, with the host key pinned by a known_hosts file.
//!
//! Each call runs `COMMAND -o BatchMode=yes -o StrictHostKeyChecking=yes
//! -o UserKnownHostsFile=KNOWN_HOSTS -o GlobalKnownHostsFile=/dev/null
//! -p PORT USER@HOST -- REMOTE…` directly (no shell on this side), with the
//! licence on standard input when the remote command reads one, standard
//! output and error read within bounds, and the child killed at the
//! deadline. The remote commands are [`DRY_RUN`], [`ACTIVE`], [`READ_ACTIVE`]
//! (to confirm on a real appliance), [`APPLY`] and [`CHECK`] (decision 84).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{
    first_line, licence_info, says_busy, Appliance, Backup, LicenceInfo, Path, SeatsSource,
    SeatsUsed, GHE_LICENSE_FIELDS, MAX_JSON_ANSWER,
};
use crate::base::error::{Code, Error, Result};
use crate::format::licence::MAX_LICENCE_LEN;
use crate::format::manifest::HexDigest;
use crate::io::fsutil::{spawn_thread, HELPER_STACK};

/// A candidate's details without importing it (the file on stdin).
pub const DRY_RUN: &[&str] = &["ghe-license", "info", "--pipe", "-j"];
/// The active licence's details.
pub const ACTIVE: &[&str] = &["ghe-license", "info", "-j"];
/// The active licence file, byte for byte: where GHES keeps it, to confirm
/// on a real appliance (decision 84).
pub const READ_ACTIVE: &[&str] = &["cat", "/data/user/common/enterprise.ghl"];
/// Import and apply (the file on stdin); restarts services, refused while a
/// config-apply runs.
pub const APPLY: &[&str] = &["ghe-license", "import", "--pipe", "--apply"];
/// The appliance's check of the active licence.
pub const CHECK: &[&str] = &["ghe-license", "check"];

/// What `ghe-license check` prints for a valid licence.
pub const CHECK_VALID: &str = "License is valid";

/// Most bytes of standard error kept for a message.
const MAX_STDERR: usize = 64 * 1024;

/// How to reach the appliance over SSH.
#[derive(Debug, Clone)]
pub struct SshConfig {
    /// The SSH command, split into words (like `GIT_SSH_COMMAND`; airlock
    /// appends its own arguments). Default `["ssh"]`.
    pub command: Vec<OsString>,
    /// The login. Default `admin`.
    pub user: String,
    /// The appliance's host name or address.
    pub host: String,
    /// The administrative SSH port. Default 122.
    pub port: u16,
    /// The known_hosts file holding the appliance's pinned host key.
    pub known_hosts: PathBuf,
    /// The deadline of one call.
    pub timeout: Duration,
    /// The deadline of the apply: `ghe-license import --apply` restarts
    /// GHES services, and ssh dying under it would hang up on the restart.
    pub apply_timeout: Duration,
    /// Where seats in use come from, if anywhere.
    pub seats: Option<SeatsSource>,
}

impl SshConfig {
    /// `ssh admin@HOST -p 122` with the host key pinned by `known_hosts`,
    /// the default deadline and no seats source.
    pub fn new(host: impl Into<String>, known_hosts: impl Into<PathBuf>) -> SshConfig {
        SshConfig {
            command: vec![OsString::from("ssh")],
            user: "admin".into(),
            host: host.into(),
            port: 122,
            known_hosts: known_hosts.into(),
            timeout: super::DEFAULT_TIMEOUT,
            apply_timeout: super::APPLY_TIMEOUT,
            seats: None,
        }
    }
}

/// The appliance reached through the SSH command.
#[derive(Debug)]
pub struct SshAppliance {
    cfg: SshConfig,
}

/// A word that cannot be read as an option by ssh, nor hold a space or
/// control character.
fn plain_word(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('-') && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl SshAppliance {
    /// Check the configuration (a command; a user and host ssh cannot take
    /// for options); nothing is contacted yet.
    pub fn new(cfg: SshConfig) -> Result<SshAppliance> {
        if cfg.command.is_empty() || cfg.command[0].is_empty() {
            return Err(Error::new(Code::Args, "the appliance SSH command is empty"));
        }
        if !plain_word(&cfg.user) || cfg.user.contains('@') {
            return Err(Error::new(
                Code::Args,
                format!(
                    "the appliance SSH user {:?} is not a login name",
                    crate::base::names::one_line(&cfg.user)
                ),
            ));
        }
        if !plain_word(&cfg.host) || cfg.host.contains('@') {
            return Err(Error::new(
                Code::Args,
                format!(
                    "the appliance host {:?} is not a host name or address",
                    crate::base::names::one_line(&cfg.host)
                ),
            ));
        }
        if cfg.port == 0 {
            return Err(Error::new(Code::Args, "the appliance SSH port is 0"));
        }
        check_pinning(&cfg)?;
        Ok(SshAppliance { cfg })
    }

    /// The full argument list for `remote` (the command word first).
    ///
    /// ssh keeps the first value of an option: the pinning options below
    /// come after the configured command's words, so `check_pinning`
    /// refuses words that would set them first.
    pub fn argv(&self, remote: &[&str]) -> Vec<OsString> {
        let mut kh = OsString::from("UserKnownHostsFile=");
        kh.push(self.cfg.known_hosts.as_os_str());
        let mut v = self.cfg.command.clone();
        for o in [
            OsString::from("BatchMode=yes"),
            OsString::from("StrictHostKeyChecking=yes"),
            kh,
            OsString::from("GlobalKnownHostsFile=/dev/null"),
        ] {
            v.push("-o".into());
            v.push(o);
        }
        v.push("-p".into());
        v.push(self.cfg.port.to_string().into());
        v.push(format!("{}@{}", self.cfg.user, self.cfg.host).into());
        v.push("--".into());
        v.extend(remote.iter().map(OsString::from));
        v
    }

    /// Run `remote`, feeding `input`; its output when it exits 0, else the
    /// mapped error. `max_out` bounds standard output.
    fn run(&self, remote: &[&str], input: Option<&[u8]>, max_out: u64) -> Result<Vec<u8>> {
        let r = self.exec(remote, input, max_out)?;
        if r.status == Some(0) {
            return Ok(r.stdout);
        }
        Err(classify(r.status, &r.stdout, &r.stderr, &self.what(remote)))
    }

    fn what(&self, remote: &[&str]) -> String {
        format!("{}: {}", self.describe(), remote.join(" "))
    }

    /// Spawn, feed, read within bounds, wait until the deadline.
    fn exec(&self, remote: &[&str], input: Option<&[u8]>, max_out: u64) -> Result<Ran> {
        let what = self.what(remote);
        let mut child = self.spawn(remote, input, &what)?;
        let limit = if remote == APPLY {
            self.cfg.apply_timeout
        } else {
            self.cfg.timeout
        };
        let deadline = Instant::now() + limit;
        let rx = match plumb(&mut child, input, max_out) {
            Ok(rx) => rx,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let Some(status) = wait_until(&mut child, deadline) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::new(
                Code::ApplianceUnreachable,
                format!(
                    "{what}: no answer within {}s; the SSH command was stopped",
                    limit.as_secs()
                ),
            ));
        };
        // The pipes close when the child (and anything it left holding
        // them) is gone; do not wait forever for a stray grandchild.
        let (mut stdout, mut stderr, mut over) = (Vec::new(), Vec::new(), false);
        let grace = Instant::now() + Duration::from_secs(5);
        for _ in 0..2 {
            let left = grace.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((true, (b, o))) => {
                    stdout = b;
                    over = o;
                }
                Ok((false, (b, _))) => stderr = b,
                Err(_) => break,
            }
        }
        if over {
            return Err(Error::new(
                Code::ApplianceResponse,
                format!("{what}: the answer is longer than {max_out} bytes"),
            ));
        }
        Ok(Ran {
            status: status.code(),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// Start the SSH command for `remote`, its output piped.
    fn spawn(&self, remote: &[&str], input: Option<&[u8]>, what: &str) -> Result<Child> {
        let argv = self.argv(remote);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().map_err(|e| {
            Error::new(
                Code::ApplianceUnreachable,
                format!(
                    "{what}: cannot run the SSH command {}: {e}",
                    crate::base::names::escape(std::path::Path::new(&argv[0]))
                ),
            )
            .with_hint("check the appliance SSH command (it must be a program on PATH, or a path)")
        })
    }

    fn read_active(&self) -> Result<Vec<u8>> {
        let b = self.run(READ_ACTIVE, None, MAX_LICENCE_LEN)?;
        if b.is_empty() {
            return Err(Error::new(
                Code::ApplianceResponse,
                format!(
                    "{}: the active licence file is empty",
                    self.what(READ_ACTIVE)
                ),
            ));
        }
        Ok(b)
    }
}

/// What a run gave.
struct Ran {
    /// The exit code; `None` when killed by a signal.
    status: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

/// What a pipe reader sends: `(is_stdout, (bytes, over_the_bound))`.
type PipeRead = (bool, (Vec<u8>, bool));

/// Writer and readers on their own threads (a full pipe must not stall the
/// others); the readers' results come through the channel.
fn plumb(
    child: &mut std::process::Child,
    input: Option<&[u8]>,
    max_out: u64,
) -> Result<mpsc::Receiver<PipeRead>> {
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        let data = data.to_vec();
        spawn_thread("ssh-stdin", HELPER_STACK, move || {
            let _ = stdin.write_all(&data);
        })?;
    }
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        spawn_thread("ssh-stdout", HELPER_STACK, move || {
            let _ = tx.send((true, read_bounded(out, max_out)));
        })?;
    }
    if let Some(err) = child.stderr.take() {
        spawn_thread("ssh-stderr", HELPER_STACK, move || {
            let _ = tx.send((false, read_bounded(err, MAX_STDERR as u64)));
        })?;
    }
    Ok(rx)
}

/// Read up to `max` bytes; `true` when there was more (the rest is not
/// read: the pipe closes and the writer stops).
fn read_bounded(mut r: impl Read, max: u64) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let _ = (&mut r).take(max + 1).read_to_end(&mut buf);
    let over = buf.len() as u64 > max;
    buf.truncate(max as usize);
    // Drain what is past the bound instead of closing the pipe: a closed
    // pipe could interrupt the remote command (an apply restarting
    // services). The deadline still ends it.
    let _ = std::io::copy(&mut r, &mut std::io::sink());
    (buf, over)
}

/// The host key stays pinned: the configured command may not set the
/// options that decide which host keys ssh trusts (ssh keeps the first
/// value it sees, and the command's words come first), and the known_hosts
/// path must reach ssh as one file (ssh splits the value at whitespace and
/// expands `%` and `~`).
fn check_pinning(cfg: &SshConfig) -> Result<()> {
    const PINNING: [&str; 5] = [
        "stricthostkeychecking",
        "userknownhostsfile",
        "globalknownhostsfile",
        "knownhostscommand",
        "hostkeyalias",
    ];
    let words: Vec<String> = cfg
        .command
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    for (i, w) in words.iter().enumerate().skip(1) {
        // `-F FILE` may set anything; only `-F /dev/null` (or `none`),
        // which keeps the user's ssh_config out, is allowed.
        let config = match w.strip_prefix("-F") {
            Some("") => words.get(i + 1).map(String::as_str),
            other => other,
        };
        let harmless = matches!(config, None | Some("/dev/null" | "none"));
        let w = w.to_ascii_lowercase();
        if !harmless || PINNING.iter().any(|p| w.contains(p)) {
            return Err(Error::new(
                Code::ConfigInvalid,
                format!(
                    "appliance_ssh_command sets {}: airlock pins the appliance's host key itself",
                    crate::base::names::one_line(&w)
                ),
            )
            .with_hint("remove that option (and any -F config file) from appliance_ssh_command; the host key is pinned by appliance_known_hosts"));
        }
    }
    let kh = cfg.known_hosts.as_os_str().as_encoded_bytes();
    if kh.iter().any(|b| b.is_ascii_whitespace() || *b == b'%') || kh.first() == Some(&b'~') {
        return Err(Error::new(
            Code::ConfigInvalid,
            format!(
                "appliance_known_hosts {} holds a space, % or a leading ~, which ssh would not read as one file",
                crate::base::names::escape(&cfg.known_hosts)
            ),
        )
        .with_hint("give an absolute path without spaces or %, e.g. /etc/airlock/appliance_known_hosts"));
    }
    Ok(())
}

/// Map a failed run to an error. ssh itself exits 255: host key, then
/// authentication, else unreachable. The remote command's own failure is
/// busy when it says a config-apply runs, else a refusal with its message.
fn classify(status: Option<i32>, stdout: &[u8], stderr: &str, what: &str) -> Error {
    let msg = |text: &str| {
        let l = first_line(text);
        if l.is_empty() {
            format!(
                "exit status {}",
                status.map_or("(signal)".into(), |s| s.to_string())
            )
        } else {
            l
        }
    };
    if status == Some(255) {
        let host_key = [
            "Host key verification failed",
            "REMOTE HOST IDENTIFICATION HAS CHANGED",
            "host key is known",
            "No ED25519 host key is known",
            "No RSA host key is known",
            "No ECDSA host key is known",
        ];
        if host_key.iter().any(|p| stderr.contains(p)) {
            return Error::new(
                Code::ApplianceHostKey,
                format!("{what}: {}", host_key_line(stderr)),
            );
        }
        if stderr.contains("Permission denied")
            || stderr.contains("Too many authentication failures")
        {
            return Error::new(
                Code::ApplianceUnauthorized,
                format!("{what}: {}", msg(stderr)),
            );
        }
        return Error::new(
            Code::ApplianceUnreachable,
            format!(
                "{what}: {}",
                last_line(stderr).unwrap_or_else(|| msg(stderr))
            ),
        );
    }
    let out = String::from_utf8_lossy(stdout);
    if says_busy(stderr) || says_busy(&out) {
        let m = if says_busy(stderr) {
            msg(stderr)
        } else {
            msg(&out)
        };
        return Error::new(Code::ApplianceBusy, format!("{what}: {m}"));
    }
    let m = if first_line(stderr).is_empty() {
        msg(&out)
    } else {
        msg(stderr)
    };
    Error::new(Code::ApplianceRefused, format!("{what}: {m}"))
}

/// The line of ssh's output that names the host key problem.
fn host_key_line(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.contains("host key is known") || l.contains("Host key verification failed"))
        .map(first_line)
        .unwrap_or_else(|| "the host key differs from the pinned one".into())
}

/// ssh's last line (its own diagnosis, after any banner).
fn last_line(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(first_line)
}

impl Appliance for SshAppliance {
    fn path(&self) -> Path {
        Path::Ssh
    }

    fn describe(&self) -> String {
        format!(
            "ssh {}@{} -p {}",
            self.cfg.user, self.cfg.host, self.cfg.port
        )
    }

    fn dry_run(&mut self, licence: &[u8]) -> Result<Option<LicenceInfo>> {
        let out = self.run(DRY_RUN, Some(licence), MAX_JSON_ANSWER)?;
        licence_info(&out, &GHE_LICENSE_FIELDS, &self.what(DRY_RUN)).map(Some)
    }

    fn active(&mut self) -> Result<LicenceInfo> {
        let out = self.run(ACTIVE, None, MAX_JSON_ANSWER)?;
        licence_info(&out, &GHE_LICENSE_FIELDS, &self.what(ACTIVE))
    }

    fn backup(&mut self) -> Result<Backup> {
        self.read_active().map(Backup::File)
    }

    fn apply(&mut self, licence: &[u8]) -> Result<()> {
        self.run(APPLY, Some(licence), MAX_JSON_ANSWER).map(|_| ())
    }

    fn check(&mut self) -> Result<bool> {
        let r = self.exec(CHECK, None, MAX_JSON_ANSWER)?;
        let out = String::from_utf8_lossy(&r.stdout);
        match r.status {
            Some(0) => Ok(out.contains(CHECK_VALID)),
            // ssh's own failure, a missing command, or busy: an error;
            // any other exit is the check saying "not valid".
            Some(255) | Some(126) | Some(127) | None => {
                Err(classify(r.status, &r.stdout, &r.stderr, &self.what(CHECK)))
            }
            _ if says_busy(&r.stderr) || says_busy(&out) => {
                Err(classify(r.status, &r.stdout, &r.stderr, &self.what(CHECK)))
            }
            _ => Ok(false),
        }
    }

    fn active_sha256(&mut self) -> Result<Option<HexDigest>> {
        let b = self.read_active()?;
        Ok(Some(HexDigest::from_bytes(&Sha256::digest(&b).into())))
    }

    fn seats_used(&mut self) -> Result<Option<SeatsUsed>> {
        match &self.cfg.seats {
            Some(s) => s.seats_used(self.cfg.timeout).map(Some),
            None => Ok(None),
        }
    }
}

/// The child's exit status once it has exited; `None` when `deadline`
/// passed first or its status cannot be read.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: i32, stderr: &str) -> Code {
        classify(Some(status), b"", stderr, "t").code
    }

    #[test]
    fn ssh_failures_map_to_codes() {
        assert_eq!(
            c(255, "Host key verification failed.\r\n"),
            Code::ApplianceHostKey
        );
        assert_eq!(
            c(
                255,
                "@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n"
            ),
            Code::ApplianceHostKey
        );
        assert_eq!(
            c(255, "No ED25519 host key is known for [127.0.0.1]:122 and you have requested strict checking.\r\nHost key verification failed.\r\n"),
            Code::ApplianceHostKey
        );
        assert_eq!(
            c(255, "admin@ghes: Permission denied (publickey).\r\n"),
            Code::ApplianceUnauthorized
        );
        assert_eq!(
            c(
                255,
                "ssh: connect to host ghes port 122: Connection refused\r\n"
            ),
            Code::ApplianceUnreachable
        );
        assert_eq!(
            c(1, "ERROR: A configuration run is already in progress"),
            Code::ApplianceBusy
        );
        assert_eq!(c(1, "ERROR: invalid license file"), Code::ApplianceRefused);
        assert_eq!(
            c(127, "bash: ghe-license: command not found"),
            Code::ApplianceRefused
        );
        let e = classify(
            Some(1),
            b"",
            "Warning: Permanently added 'x'\nbad \x1b[1mfile\nmore",
            "t",
        );
        assert_eq!(e.cause, "t: bad \\x1b[1mfile");
        let e = classify(Some(1), b"", "", "t");
        assert_eq!(e.cause, "t: exit status 1");
        assert_eq!(
            classify(Some(1), b"config-apply is running", "", "t").code,
            Code::ApplianceBusy
        );
    }

    #[test]
    fn argv_appends_the_pinned_options() {
        let mut cfg = SshConfig::new("ghes.example", "/etc/airlock/known_hosts");
        cfg.command = vec!["ssh".into(), "-i".into(), "/k".into()];
        let a = SshAppliance::new(cfg).unwrap();
        let v: Vec<String> = a
            .argv(APPLY)
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            v.join(" "),
            "ssh -i /k -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/airlock/known_hosts -o GlobalKnownHostsFile=/dev/null -p 122 admin@ghes.example -- ghe-license import --pipe --apply"
        );
        assert_eq!(a.describe(), "ssh admin@ghes.example -p 122");
    }

    #[test]
    /// Review: the configured command must not undo the pinning (ssh keeps
    /// the first value of an option, and the command's words come first),
    /// nor may the known_hosts path be one ssh would split or expand.
    fn the_configured_command_cannot_undo_the_host_key_pinning() {
        for words in [
            "ssh -o StrictHostKeyChecking=no",
            "ssh -oUserKnownHostsFile=/tmp/mine",
            "ssh -o KnownHostsCommand=/bin/echo",
            "ssh -F /tmp/config",
            "ssh -F/tmp/config",
            "ssh -o HostKeyAlias=other",
        ] {
            let mut cfg = SshConfig::new("h", "/kh");
            cfg.command = words.split(' ').map(OsString::from).collect();
            let e = SshAppliance::new(cfg).unwrap_err();
            assert_eq!(e.code, Code::ConfigInvalid, "{words}");
        }
        for kh in ["/etc/a b", "/etc/%h", "~/kh"] {
            let e = SshAppliance::new(SshConfig::new("h", kh)).unwrap_err();
            assert_eq!(e.code, Code::ConfigInvalid, "{kh}");
        }
        let mut cfg = SshConfig::new("h", "/etc/airlock/kh");
        cfg.command = [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            "/etc/airlock/key",
            "-o",
            "IdentitiesOnly=yes",
        ]
        .map(OsString::from)
        .to_vec();
        assert!(SshAppliance::new(cfg).is_ok());
    }

    #[test]
    fn options_cannot_hide_in_the_host_or_user() {
        for (u, h) in [
            ("admin", "-oProxyCommand=x"),
            ("-l", "h"),
            ("admin", "a b"),
            ("a@b", "h"),
            ("admin", ""),
        ] {
            let mut cfg = SshConfig::new(h, "/kh");
            cfg.user = u.into();
            assert_eq!(
                SshAppliance::new(cfg).unwrap_err().code,
                Code::Args,
                "{u} {h}"
            );
        }
        let mut cfg = SshConfig::new("h", "/kh");
        cfg.command.clear();
        assert!(SshAppliance::new(cfg).is_err());
    }

    #[test]
    fn deadline_kills_and_output_is_bounded() {
        let d = tempfile::tempdir().unwrap();
        // A fake SSH command: ignores its arguments, runs a script.
        let slow = d.path().join("slow");
        std::fs::write(&slow, "#!/bin/sh\nsleep 30\n").unwrap();
        let big = d.path().join("big");
        std::fs::write(&big, "#!/bin/sh\nhead -c 3000000 /dev/zero\n").unwrap();
        let fail = d.path().join("fail");
        std::fs::write(&fail, "#!/bin/sh\necho 'License is invalid.' ; exit 1\n").unwrap();
        for p in [&slow, &big, &fail] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mk = |cmd: &std::path::Path, secs| {
            let mut cfg = SshConfig::new("h", "/kh");
            cfg.command = vec![cmd.into()];
            cfg.timeout = Duration::from_secs(secs);
            SshAppliance::new(cfg).unwrap()
        };
        let t = Instant::now();
        let e = mk(&slow, 1).active().unwrap_err();
        assert_eq!(e.code, Code::ApplianceUnreachable, "{e:?}");
        assert!(t.elapsed() < Duration::from_secs(20));
        let e = mk(&big, 30).active().unwrap_err();
        assert_eq!(e.code, Code::ApplianceResponse, "{e:?}");
        assert!(!mk(&fail, 30).check().unwrap());
        let e = mk(&d.path().join("missing"), 30).active().unwrap_err();
        assert_eq!(e.code, Code::ApplianceUnreachable);
    }
}
