//! Licence in, end to end through the real binary (issue 29, decisions 83
//! and 84): the connected side's `airlock export github-enterprise-REF.ghl`,
//! then the isolated side's `airlock licence import` (and `licence watch`)
//! against the appliance STAND-IN (`airlock standin-appliance`, the Manage
//! API stand-in behind TLS). The SSH way runs through the configurable SSH
//! command in any case, and through a real sshd on loopback where
//! /usr/sbin/sshd exists (else a visible `SKIP:` line). Each refusal is
//! checked for its code, its exit status and that NOTHING was applied (the
//! stand-in's `applied.log` empty, its active file unchanged).

mod common;

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{SystemTime, UNIX_EPOCH};

use airlock::sample::appliance_licence;
use common::http::{TestPki, TlsFront};
use common::sshd::{self, Sshd};
use common::standin::{self, ManageStandIn};

const ENTERPRISE: &str = "octo-corp";
const PASSWORD: &str = "stand-in root password";
const TOKEN: &str = "ghp_standin_site_admin_token";

fn old() -> Vec<u8> {
    appliance_licence("OLD1", Some(10), "2030-01-01T00:00:00Z")
}

fn bin() -> String {
    common::airlock_bin().to_string_lossy().into_owned()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// How `licence import` reaches the stand-in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Way {
    /// `airlock standin-appliance` as the configured SSH command.
    Command,
    /// ssh → a real sshd on loopback → the stand-in as its forced command.
    Sshd,
    /// The Manage API over TLS applies; SSH (the command) dry-runs and
    /// backs up (decision 83: both configured).
    Both,
    /// The Manage API alone, over TLS.
    Api,
}

/// One isolated side and its appliance stand-in (OLD1 active, 10 seats,
/// expiring 2030), and a connected side that exports licences.
struct World {
    t: tempfile::TempDir,
    /// The stand-in's state directory.
    app: PathBuf,
    /// The connection flags for `licence import` / `licence watch`.
    conn: Vec<OsString>,
    /// Environment for the isolated side's runs.
    env: Vec<(String, String)>,
    /// sshd's log, when the way runs through sshd.
    sshd_log: Option<PathBuf>,
    /// What an administrator's `ssh` is for this appliance: the command
    /// with the pinned known_hosts, the login, the port.
    ssh: Option<(String, String, u16)>,
    /// Exports so far: each gets a later `--created`.
    exports: std::cell::Cell<u64>,
    /// What must outlive the runs (sshd, the HTTP stand-in, the TLS front).
    _keep: Vec<Box<dyn std::any::Any>>,
}

impl World {
    /// `None` (after a SKIP line) for `Way::Sshd` where sshd is missing.
    fn new(way: Way) -> Option<World> {
        let t = tempfile::tempdir().unwrap();
        let app = t.path().join("appliance");
        std::fs::create_dir(&app).unwrap();
        std::fs::write(app.join(standin::ACTIVE_FILE), old()).unwrap();
        std::fs::write(app.join(standin::SEATS_USED), "7\n").unwrap();
        common::key(t.path(), "connected_ed25519");
        common::key(t.path(), "exporter_ed25519");
        let mut w = World {
            t,
            app,
            conn: Vec::new(),
            env: Vec::new(),
            sshd_log: None,
            ssh: None,
            exports: std::cell::Cell::new(0),
            _keep: Vec::new(),
        };
        match way {
            Way::Command => w.ssh_command(),
            Way::Sshd => {
                let forced = format!("{} standin-appliance --state {}", bin(), w.app.display());
                let Some(d) = Sshd::start(w.t.path(), &forced) else {
                    println!(
                        "SKIP: {} is not installed; the same assertions run through the configurable SSH command (tests/run.sh installs openssh-server)",
                        sshd::SSHD
                    );
                    return None;
                };
                let cmd = d
                    .ssh_command(&d.client_key)
                    .iter()
                    .map(|s| s.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" ");
                w.conn = vec![
                    "--appliance-host".into(),
                    "127.0.0.1".into(),
                    "--appliance-ssh-port".into(),
                    d.port.to_string().into(),
                    "--appliance-ssh-user".into(),
                    sshd::user().into(),
                    "--appliance-known-hosts".into(),
                    d.known_hosts.clone().into(),
                    "--appliance-ssh-command".into(),
                    cmd.clone().into(),
                ];
                w.sshd_log = Some(d.log.clone());
                w.ssh = Some((
                    format!(
                        "{cmd} -o StrictHostKeyChecking=yes -o UserKnownHostsFile={}",
                        d.known_hosts.display()
                    ),
                    format!("{}@127.0.0.1", sshd::user()),
                    d.port,
                ));
                w._keep.push(Box::new(d));
            }
            Way::Both => {
                w.ssh_command();
                w.manage_api(false);
            }
            Way::Api => w.manage_api(true),
        }
        Some(w)
    }

    fn p(&self, name: &str) -> PathBuf {
        self.t.path().join(name)
    }

    /// The stand-in in ssh's place, its host key pinned as `ghes.test`.
    fn ssh_command(&mut self) {
        let (_, host_pub) = common::ssh_host_key(self.t.path(), "standin_host_key");
        std::fs::write(self.app.join(standin::HOST_KEY), format!("{host_pub}\n")).unwrap();
        let kh = self.p("known_hosts");
        std::fs::write(&kh, format!("[ghes.test]:122 {host_pub}\n")).unwrap();
        self.ssh = Some((
            format!(
                "{} standin-appliance --state {} -o StrictHostKeyChecking=yes -o UserKnownHostsFile={}",
                bin(),
                self.app.display(),
                kh.display()
            ),
            "admin@ghes.test".into(),
            122,
        ));
        self.conn.extend([
            "--appliance-host".into(),
            "ghes.test".into(),
            "--appliance-known-hosts".into(),
            kh.into(),
            "--appliance-ssh-command".into(),
            format!("{} standin-appliance --state {}", bin(), self.app.display()).into(),
        ]);
    }

    /// The Manage API stand-in behind TLS (a test CA); the password from a
    /// 0600 file (`file`) or from AIRLOCK_APPLIANCE_PASSWORD.
    fn manage_api(&mut self, file: bool) {
        let s = ManageStandIn::start(&self.app, PASSWORD, TOKEN).unwrap();
        let pki = TestPki::new();
        let ca = self.p("ca.pem");
        std::fs::write(&ca, &pki.ca_pem).unwrap();
        let front = TlsFront::start(&pki, s.addr);
        self.conn.extend([
            "--appliance-manage-url".into(),
            front.url.clone().into(),
            "--ca-file".into(),
            ca.into(),
        ]);
        if file {
            let pw = self.p("appliance_password");
            std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
            std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
            self.conn
                .extend(["--appliance-password-file".into(), pw.into()]);
        } else {
            self.env
                .push(("AIRLOCK_APPLIANCE_PASSWORD".into(), PASSWORD.into()));
        }
        self._keep.push(Box::new(s));
        self._keep.push(Box::new(front));
    }

    /// A stand-in licence file `github-enterprise-NAME.ghl` whose content
    /// says `reference`.
    fn licence(&self, name: &str, reference: &str, seats: u64, expire_at: &str) -> PathBuf {
        let d = self.p("downloads");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(format!("github-enterprise-{name}.ghl"));
        std::fs::write(&p, appliance_licence(reference, Some(seats), expire_at)).unwrap();
        p
    }

    /// `airlock export FILE --key KEY …` on the connected side; each export
    /// is created a minute after the last (an hour ago at first), so the
    /// ledger's created-time rule sees them in order.
    fn export_with(&self, file: &Path, key: &str, extra: &[&str]) -> PathBuf {
        let n = self.exports.get() + 1;
        self.exports.set(n);
        let out = self.p(&format!("carry/{n}"));
        std::fs::create_dir_all(&out).unwrap();
        let created = (now() - 3600 + 60 * n).to_string();
        let mut c = common::airlock();
        c.arg("export")
            .arg(file)
            .arg("--key")
            .arg(self.p(key))
            .arg("--out")
            .arg(&out)
            .arg("--state-dir")
            .arg(self.p(&format!("state-{key}")))
            .args(extra);
        if !extra.contains(&"--created") {
            c.args(["--created", &created]);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let found: Vec<PathBuf> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        found[0].clone()
    }

    /// A licence bundle from the connected side's key.
    fn export(&self, file: &Path, extra: &[&str]) -> PathBuf {
        let mut args = vec!["--enterprise", ENTERPRISE];
        args.extend_from_slice(extra);
        self.export_with(file, "connected_ed25519", &args)
    }

    /// `airlock licence SUB …` on the isolated side with this world's
    /// connection and trust.
    fn licence_cmd(&self, sub: &str, arg: &Path, extra: &[&str]) -> Output {
        let mut c = common::airlock();
        c.args(["licence", sub])
            .arg(arg)
            .arg("--licence-trust")
            .arg(common::root().join("keys/licence_allowed_signers"))
            .arg("--state-dir")
            .arg(self.p("istate"))
            .args(&self.conn)
            .args(extra)
            .env_remove("AIRLOCK_APPLIANCE_PASSWORD");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn import(&self, bundle: &Path, extra: &[&str]) -> Output {
        self.licence_cmd("import", bundle, extra)
    }

    fn applied(&self) -> String {
        std::fs::read_to_string(self.app.join(standin::APPLIED_LOG)).unwrap_or_default()
    }

    fn active(&self) -> Vec<u8> {
        std::fs::read(self.app.join(standin::ACTIVE_FILE)).unwrap()
    }

    /// Nothing was applied: the log empty, OLD1's file still active.
    fn nothing_applied(&self, what: &str) {
        assert_eq!(self.applied(), "", "{what}: something was applied");
        assert!(self.active() == old(), "{what}: the active licence changed");
    }

    /// The backups kept in the isolated side's state directory.
    fn backups(&self) -> Vec<PathBuf> {
        let d = self.p("istate/licence/backup");
        let mut v: Vec<PathBuf> = match std::fs::read_dir(&d) {
            Ok(r) => r.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }

    fn log_json(&self) -> serde_json::Value {
        let o = common::airlock()
            .args(["log", "--json", "--state-dir"])
            .arg(self.p("istate"))
            .output()
            .unwrap();
        assert!(o.status.success());
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The run failed with `code` and exit status `exit`.
fn refused(o: &Output, code: &str, exit: i32) {
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(exit),
        "want {code} (exit {exit}):\nstdout: {}\nstderr: {err}",
        text(&o.stdout)
    );
    assert!(
        err.contains(&format!("AIRLOCK-E-{code}")),
        "want {code}: {err}"
    );
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// The bundles no licence rule needs the appliance for: an expired bundle,
/// a usage bundle, a licence signed by an isolated-side export key. Each is
/// refused with its code and nothing is applied, whichever way is set up.
fn refused_before_the_appliance(w: &World) {
    let lic = w.licence("EXP0", "EXP0", 20, "2031-01-01T00:00:00Z");
    // Created two hours ago, valid for one: expired on arrival.
    let created = (now() - 7200).to_string();
    let expired = w.export(&lic, &["--created", &created, "--expires-in", "1h"]);
    refused(&w.import(&expired, &[]), "BUNDLE-EXPIRED", 7);
    w.nothing_applied("an expired bundle");

    let usage = common::sample_usage(w.t.path());
    let usage = w.export_with(&usage, "exporter_ed25519", &[]);
    refused(&w.import(&usage, &[]), "NOT-A-LICENCE", 8);
    w.nothing_applied("a usage bundle");

    // The isolated side's own export key may not sign a licence.
    let lic = w.licence("ISO9", "ISO9", 20, "2031-01-01T00:00:00Z");
    let iso = w.export_with(&lic, "exporter_ed25519", &["--enterprise", ENTERPRISE]);
    refused(&w.import(&iso, &[]), "SIG-UNTRUSTED", 6);
    w.nothing_applied("a licence signed by an isolated-side key");
}

/// Every rule, then a newer licence applied and confirmed, then the
/// replay and the seat decrease, through one way to the appliance.
fn rules_and_apply(way: Way) {
    let Some(w) = World::new(way) else {
        return;
    };
    refused_before_the_appliance(&w);

    let early = w.licence("EARLY3", "EARLY3", 20, "2029-06-01T00:00:00Z");
    let early = w.export(&early, &[]);
    refused(&w.import(&early, &[]), "LICENCE-EXPIRY-EARLIER", 14);
    w.nothing_applied("an earlier expiry");

    let few = w.licence("FEW4", "FEW4", 5, "2031-01-01T00:00:00Z");
    let few = w.export(&few, &[]);
    refused(&w.import(&few, &[]), "LICENCE-SEATS-FEWER", 14);
    w.nothing_applied("fewer seats");

    // Exported with the wrong --reference: the signed name says MIS5, the
    // file (as the appliance reads it) OTHER9.
    let mis = w.licence("OTHER9", "OTHER9", 20, "2031-01-01T00:00:00Z");
    let mis = w.export(&mis, &["--reference", "MIS5"]);
    refused(&w.import(&mis, &[]), "LICENCE-REFERENCE", 14);
    w.nothing_applied("a reference mismatch");
    assert!(w.backups().is_empty(), "no backup without an apply");

    // A newer licence: applied, read back, the outgoing one kept.
    let new = w.licence("NEW2", "NEW2", 20, "2031-01-01T00:00:00Z");
    let new_bundle = w.export(&new, &[]);
    let out = ok(&w.import(&new_bundle, &[]));
    assert!(out.contains("applied licence NEW2 of octo-corp"), "{out}");
    assert!(out.contains("check: valid"), "{out}");
    assert_eq!(w.applied(), "NEW2\n");
    assert!(w.active() == std::fs::read(&new).unwrap(), "NEW2 is active");
    let backups = w.backups();
    match way {
        Way::Api => {
            // The Manage API returns the details, not the file.
            assert_eq!(backups.len(), 1, "{backups:?}");
            let j = std::fs::read_to_string(&backups[0]).unwrap();
            assert!(j.contains("\"referenceNumber\":\"OLD1\""), "{j}");
        }
        _ => {
            assert_eq!(backups.len(), 1, "{backups:?}");
            let name = backups[0]
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(name.ends_with("-github-enterprise-OLD1.ghl"), "{name}");
            assert!(
                std::fs::read(&backups[0]).unwrap() == old(),
                "the backup is byte-identical to the outgoing licence"
            );
            let mode = std::fs::metadata(&backups[0]).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
    let log = w.log_json();
    let events = log["events"].as_array().unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last["kind"].as_str(), last["outcome"].as_str()),
        (Some("confirm"), Some("confirmed")),
        "{last}"
    );
    assert_eq!(last["licence"]["reference"], "NEW2");

    // The same bundle again, and a new bundle of the same licence.
    refused(&w.import(&new_bundle, &[]), "LICENCE-APPLIED", 10);
    let again = w.export(&new, &[]);
    refused(&w.import(&again, &[]), "LICENCE-APPLIED", 10);
    assert_eq!(w.applied(), "NEW2\n", "nothing applied again");

    // Fewer seats than NEW2's 20: refused, then applied with the flag and
    // the override recorded.
    let fewer = w.licence("FEW6", "FEW6", 15, "2032-01-01T00:00:00Z");
    let fewer = w.export(&fewer, &[]);
    let fewer_rule = way != Way::Api;
    if fewer_rule {
        refused(&w.import(&fewer, &[]), "LICENCE-SEATS-FEWER", 14);
        assert_eq!(w.applied(), "NEW2\n");
    }
    let out = ok(&w.import(&fewer, &["--allow-seat-decrease"]));
    assert_eq!(w.applied(), "NEW2\nFEW6\n");
    let log = w.log_json();
    let overridden = log["events"].as_array().unwrap().iter().any(|e| {
        e["licence"]["reference"] == "FEW6"
            && e["licence"]["overrides"]
                .as_array()
                .is_some_and(|o| o.iter().any(|x| x == "allow-seat-decrease"))
    });
    // Without a dry run (the Manage API alone) no seat count is known
    // before the apply, so there is nothing to override.
    assert_eq!(overridden, fewer_rule, "{log}");
    if fewer_rule {
        assert!(out.contains("override     allow-seat-decrease"), "{out}");
    }
    // The human log names the licence.
    let o = common::airlock()
        .args(["log", "--state-dir"])
        .arg(w.p("istate"))
        .output()
        .unwrap();
    let shown = ok(&o);
    assert!(shown.contains("licence FEW6 (octo-corp) seq "), "{shown}");
    if let Some(l) = &w.sshd_log {
        let log = std::fs::read_to_string(l).unwrap();
        assert!(
            log.contains("Accepted publickey"),
            "not through sshd: {log}"
        );
    }
}

#[test]
fn rules_and_apply_through_the_ssh_command() {
    rules_and_apply(Way::Command);
}

#[test]
fn rules_and_apply_through_sshd() {
    rules_and_apply(Way::Sshd);
}

#[test]
fn rules_and_apply_through_the_manage_api_with_an_ssh_dry_run() {
    rules_and_apply(Way::Both);
}

/// The Manage API alone (password from a 0600 file): what it can refuse
/// before the apply (the signature, trust, the kind, freshness, the ledger)
/// it refuses, and a newer licence is applied and confirmed.
#[test]
fn manage_api_alone() {
    let w = World::new(Way::Api).unwrap();
    refused_before_the_appliance(&w);
    let new = w.licence("NEW2", "NEW2", 20, "2031-01-01T00:00:00Z");
    let b = w.export(&new, &[]);
    let out = ok(&w.import(&b, &[]));
    assert!(
        out.contains("applied licence NEW2 of octo-corp to"),
        "{out}"
    );
    assert!(!out.contains(PASSWORD) && !text(&w.import(&b, &[]).stderr).contains(PASSWORD));
    assert_eq!(w.applied(), "NEW2\n");
    refused(&w.import(&b, &[]), "LICENCE-APPLIED", 10);
}

/// The weaker guarantee of the Manage API alone (decision 83,
/// docs/licence-in.md): no endpoint reads a candidate before the upload, so
/// an earlier expiry is NOT caught before the apply. It is applied, and the
/// read-back confirms it (the appliance runs the licence it was given);
/// `airlock log --json` shows that no dry run ran (no candidate expiry
/// recorded before the apply). A reference mismatch is caught only by the
/// read-back, after the apply: LICENCE-NOT-ACTIVE naming the backup.
#[test]
fn manage_api_alone_cannot_refuse_an_earlier_expiry_before_the_apply() {
    let w = World::new(Way::Api).unwrap();
    let early = w.licence("EARLY3", "EARLY3", 20, "2029-06-01T00:00:00Z");
    let b = w.export(&early, &[]);
    let out = ok(&w.import(&b, &[]));
    assert!(out.contains("applied licence EARLY3"), "{out}");
    assert!(
        out.contains("replaced     OLD1 (expires 2030-01-01"),
        "{out}"
    );
    assert_eq!(w.applied(), "EARLY3\n", "applied: the rule could not run");
    let log = w.log_json();
    let accepted = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "import" && e["outcome"] == "accepted")
        .unwrap()
        .clone();
    assert!(
        accepted["licence"]["expire_at"].is_null(),
        "no dry run read the candidate: {accepted}"
    );
    // The outgoing licence's details were kept before the apply.
    assert_eq!(w.backups().len(), 1);

    // The signed name says MIS5, the file OTHER9: only the read-back sees it.
    let mis = w.licence("OTHER9", "OTHER9", 20, "2032-01-01T00:00:00Z");
    let mis = w.export(&mis, &["--reference", "MIS5"]);
    let o = w.import(&mis, &[]);
    refused(&o, "LICENCE-NOT-ACTIVE", 15);
    assert_eq!(
        w.applied(),
        "EARLY3\nOTHER9\n",
        "applied before the read-back"
    );
    assert!(
        text(&o.stderr).contains("licence/backup/"),
        "{}",
        text(&o.stderr)
    );
}

/// An appliance that says it applied the licence but keeps the old one:
/// LICENCE-NOT-ACTIVE, the hint naming the backup (byte-identical over SSH).
#[test]
fn a_lying_appliance_is_caught_by_the_read_back() {
    for way in [Way::Command, Way::Api] {
        let w = World::new(way).unwrap();
        std::fs::write(w.app.join(standin::LIE), "").unwrap();
        let new = w.licence("NEW2", "NEW2", 20, "2031-01-01T00:00:00Z");
        let b = w.export(&new, &[]);
        let o = w.import(&b, &[]);
        refused(&o, "LICENCE-NOT-ACTIVE", 15);
        let err = text(&o.stderr);
        assert!(err.contains("reports licence OLD1"), "{way:?}: {err}");
        let backups = w.backups();
        assert_eq!(backups.len(), 1, "{way:?}: {backups:?}");
        let name = backups[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(err.contains(&name), "{way:?}: the hint names {name}: {err}");
        if way == Way::Command {
            assert!(std::fs::read(&backups[0]).unwrap() == old());
        }
        let log = w.log_json();
        let last = log["events"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            (last["kind"].as_str(), last["outcome"].as_str()),
            (Some("confirm"), Some("failed")),
            "{last}"
        );
        assert_eq!(last["code"], "AIRLOCK-E-LICENCE-NOT-ACTIVE");
    }
}

/// A config-apply running: APPLIANCE-BUSY, nothing applied — and the
/// backup was already written (it is kept BEFORE the apply is attempted),
/// byte-identical. With the marker gone, a re-run resumes and applies.
#[test]
fn a_busy_appliance_is_retried_and_the_backup_comes_first() {
    let w = World::new(Way::Command).unwrap();
    std::fs::write(w.app.join(standin::BUSY), "").unwrap();
    let new = w.licence("NEW2", "NEW2", 20, "2031-01-01T00:00:00Z");
    let b = w.export(&new, &[]);
    let o = w.import(&b, &[]);
    refused(&o, "APPLIANCE-BUSY", 15);
    w.nothing_applied("a busy appliance");
    let backups = w.backups();
    assert_eq!(backups.len(), 1, "the backup precedes the apply");
    assert!(
        std::fs::read(&backups[0]).unwrap() == old(),
        "byte-identical"
    );
    let name = backups[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(text(&o.stderr).contains(&name), "{}", text(&o.stderr));

    std::fs::remove_file(w.app.join(standin::BUSY)).unwrap();
    let out = ok(&w.import(&b, &[]));
    assert!(out.contains("finished what an earlier"), "{out}");
    assert_eq!(w.applied(), "NEW2\n");
    // The resumed run finds the outgoing licence already kept: the same
    // bytes are the same backup, whatever second it was written in.
    assert_eq!(w.backups(), backups);
}

fn watch(w: &World, drop: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--once", "--settle", "0s"];
    args.extend_from_slice(extra);
    w.licence_cmd("watch", drop, &args)
}

/// `licence watch` stages by default (nothing applied; the bundle in
/// done/), and `licence import` of the staged file applies it.
#[test]
fn watch_stages_then_a_person_imports() {
    let w = World::new(Way::Command).unwrap();
    let drop = w.p("drop");
    std::fs::create_dir(&drop).unwrap();
    let new = w.licence("NEW2", "NEW2", 20, "2031-01-01T00:00:00Z");
    let b = w.export(&new, &[]);
    let name = b.file_name().unwrap().to_owned();
    std::fs::copy(&b, drop.join(&name)).unwrap();
    let out = ok(&watch(&w, &drop, &[]));
    assert!(out.contains("staged"), "{out}");
    w.nothing_applied("a staged licence");
    let staged = drop.join("done").join(&name);
    assert!(staged.is_file(), "{:?}", common::listing(&drop));
    let out = ok(&w.import(&staged, &[]));
    assert!(out.contains("applied licence NEW2"), "{out}");
    assert_eq!(w.applied(), "NEW2\n");
}

/// With `--licence-auto-apply` the watcher applies.
#[test]
fn watch_auto_applies_when_asked() {
    let w = World::new(Way::Command).unwrap();
    let drop = w.p("drop");
    std::fs::create_dir(&drop).unwrap();
    let new = w.licence("NEW2", "NEW2", 20, "2031-01-01T00:00:00Z");
    let b = w.export(&new, &[]);
    std::fs::copy(&b, drop.join(b.file_name().unwrap())).unwrap();
    let out = ok(&watch(&w, &drop, &["--licence-auto-apply"]));
    assert!(out.contains("applied"), "{out}");
    assert_eq!(w.applied(), "NEW2\n");
    assert!(w.active() == std::fs::read(&new).unwrap());
}

/// docs/licence-in.md §7, carried out: after NEW2 replaced OLD1, the
/// backup piped into `ghe-license import --pipe --apply` over SSH, exactly
/// as the page writes it (`cat BACKUP | ssh -p 122 admin@HOST -- …`), with
/// a real ssh and sshd in front of the stand-in where sshd exists, and with
/// the stand-in in ssh's place in any case. OLD1 is active again.
#[test]
fn the_restore_procedure_brings_the_previous_licence_back() {
    for way in [Way::Sshd, Way::Command] {
        let Some(w) = World::new(way) else {
            continue;
        };
        let new = w.licence("NEW2", "NEW2", 20, "2031-01-01T00:00:00Z");
        let b = w.export(&new, &[]);
        ok(&w.import(&b, &[]));
        assert!(w.active() == std::fs::read(&new).unwrap());
        let backups = w.backups();
        assert_eq!(backups.len(), 1, "{backups:?}");
        let (ssh, login, port) = w.ssh.clone().unwrap();
        let run = |remote: &str, stdin: Option<&Path>| {
            let feed = stdin.map_or(String::new(), |f| format!("cat {} | ", f.display()));
            let o = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("{feed}{ssh} -p {port} {login} -- {remote}"))
                .output()
                .unwrap();
            ok(&o)
        };
        let said = run("ghe-license import --pipe --apply", Some(&backups[0]));
        assert!(said.contains("applied"), "{way:?}: {said}");
        let info: serde_json::Value =
            serde_json::from_str(&run("ghe-license info -j", None)).unwrap();
        assert_eq!(info["reference_number"], "OLD1", "{way:?}: {info}");
        assert!(run("ghe-license check", None).contains("License is valid"));
        assert!(w.active() == old(), "{way:?}: OLD1's file is active again");
        assert_eq!(w.applied(), "NEW2\nOLD1\n");
        if let Some(l) = &w.sshd_log {
            let log = std::fs::read_to_string(l).unwrap();
            assert!(
                log.contains("Accepted publickey"),
                "not through sshd: {log}"
            );
        }
    }
}

/// A new administrator's mistake: the `.ghl` file itself given to `licence
/// import`. Refused as no bundle, and the hint says how to make one.
#[test]
fn the_licence_file_itself_is_refused_with_a_hint_to_export_it() {
    let d = tempfile::tempdir().unwrap();
    let ghl = d.path().join("github-enterprise-NEW2.ghl");
    let licence = airlock::sample::appliance_licence("NEW2", Some(20), "2031-01-01T00:00:00Z");
    std::fs::write(&ghl, licence).unwrap();
    std::fs::write(d.path().join("kh"), "").unwrap();
    let out = common::airlock()
        .args(["licence", "import"])
        .arg(&ghl)
        .arg("--licence-trust")
        .arg(common::root().join("keys/licence_allowed_signers"))
        .args(["--appliance-host", "ghes.test", "--appliance-known-hosts"])
        .arg(d.path().join("kh"))
        .arg("--state-dir")
        .arg(d.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AIRLOCK-E-NOT-A-BUNDLE"), "{err}");
    assert!(
        err.contains("airlock export github-enterprise-REF.ghl"),
        "{err}"
    );
}
