//! Licence in, the hand-over to the appliance (decision 84): the library's
//! SSH and Manage API clients against the appliance STAND-IN
//! (`airlock standin-appliance`, src/cli/standin_appliance.rs). The SSH way runs through a real sshd on
//! loopback with the stand-in as its forced command, and again through the
//! configurable SSH command (`airlock standin-appliance` in ssh's place);
//! where sshd is missing the sshd runs print `SKIP:` and the second form
//! still runs. The Manage API runs over TLS (a test CA) in front of the
//! stand-in's plain http.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock::appliance::manage::{ManageApi, ManageConfig};
use airlock::appliance::seats::{SeatsSource, SOURCE};
use airlock::appliance::ssh::{SshAppliance, SshConfig};
use airlock::appliance::{Appliance, Backup, LicenceInfo};
use airlock::error::Code;
use airlock::format::manifest::{HexDigest, LicenceReference, Timestamp};
use airlock::sample::appliance_licence;
use common::http::{TestPki, TlsFront};
use common::sshd::{self, Sshd};
use common::standin::{self, ManageStandIn};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const PASSWORD: &str = "stand-in root password";
const TOKEN: &str = "ghp_standin_site_admin_token";

fn old() -> Vec<u8> {
    appliance_licence("OLD1", Some(10), "2030-01-01T00:00:00Z")
}

fn new() -> Vec<u8> {
    appliance_licence("NEW2", Some(20), "2031-01-01T00:00:00-08:00")
}

fn info(reference: &str, seats: u64, expire_at: &str) -> LicenceInfo {
    LicenceInfo {
        reference: LicenceReference::parse(reference).unwrap(),
        seats: Some(seats),
        expire_at: Timestamp::parse(expire_at).unwrap(),
    }
}

fn sha(b: &[u8]) -> HexDigest {
    HexDigest::from_bytes(&Sha256::digest(b).into())
}

/// A state directory with OLD1 active and 7 seats in use.
fn state(dir: &Path) -> PathBuf {
    let s = dir.join("appliance");
    std::fs::create_dir(&s).unwrap();
    std::fs::write(s.join(standin::ACTIVE_FILE), old()).unwrap();
    std::fs::write(s.join(standin::SEATS_USED), "7\n").unwrap();
    s
}

fn bin() -> String {
    common::airlock_bin().to_string_lossy().into_owned()
}

/// How the SSH way reaches the stand-in.
enum Via {
    /// A real sshd with the stand-in as the forced command.
    Sshd(Sshd),
    /// `airlock standin-appliance` as the SSH command.
    Command,
}

/// The SSH appliance for `state`, through sshd (`None`, after a visible
/// SKIP line, where sshd is missing) or through the SSH command.
fn ssh_way(dir: &Path, state: &Path, through_sshd: bool) -> Option<(SshAppliance, Via, SshConfig)> {
    if through_sshd {
        let forced = format!("{} standin-appliance --state {}", bin(), state.display());
        let Some(d) = Sshd::start(dir, &forced) else {
            println!(
                "SKIP: {} is not installed; the same assertions run through the configurable SSH command (tests/run.sh installs openssh-server)",
                sshd::SSHD
            );
            return None;
        };
        let mut cfg = SshConfig::new("127.0.0.1", d.known_hosts.clone());
        cfg.command = d.ssh_command(&d.client_key);
        cfg.user = sshd::user();
        cfg.port = d.port;
        cfg.timeout = Duration::from_secs(60);
        let a = SshAppliance::new(cfg.clone()).unwrap();
        return Some((a, Via::Sshd(d), cfg));
    }
    // The stand-in presents a host key of its own, pinned like sshd's.
    let (_, host_pub) = common::ssh_host_key(dir, "standin_host_key");
    std::fs::write(state.join(standin::HOST_KEY), format!("{host_pub}\n")).unwrap();
    let kh = dir.join("known_hosts");
    std::fs::write(&kh, format!("[127.0.0.1]:122 {host_pub}\n")).unwrap();
    let mut cfg = SshConfig::new("127.0.0.1", kh);
    cfg.command = vec![
        bin().into(),
        "standin-appliance".into(),
        "--state".into(),
        state.into(),
    ];
    cfg.timeout = Duration::from_secs(60);
    Some((SshAppliance::new(cfg.clone()).unwrap(), Via::Command, cfg))
}

fn round_trip(through_sshd: bool) {
    let t = tempfile::tempdir().unwrap();
    let st = state(t.path());
    let Some((mut a, via, _)) = ssh_way(t.path(), &st, through_sshd) else {
        return;
    };
    let expiry_new = "2031-01-01T08:00:00Z";
    assert_eq!(
        a.dry_run(&new()).unwrap(),
        Some(info("NEW2", 20, expiry_new))
    );
    assert_eq!(
        a.active().unwrap(),
        info("OLD1", 10, "2030-01-01T00:00:00Z")
    );
    assert_eq!(a.backup().unwrap(), Backup::File(old()), "byte-identical");
    assert_eq!(a.active_sha256().unwrap(), Some(sha(&old())));
    assert!(a.check().unwrap());
    assert_eq!(a.seats_used().unwrap(), None, "no seats source configured");
    a.apply(&new()).unwrap();
    assert_eq!(a.active().unwrap(), info("NEW2", 20, expiry_new));
    assert_eq!(a.active_sha256().unwrap(), Some(sha(&new())));
    assert!(a.check().unwrap());
    assert_eq!(
        std::fs::read_to_string(st.join(standin::APPLIED_LOG)).unwrap(),
        "NEW2\n"
    );
    // A file the appliance cannot read is refused, not applied.
    let e = a.apply(b"not a licence").unwrap_err();
    assert_eq!(e.code, Code::ApplianceRefused, "{e:?}");
    assert!(e.cause.contains("stand-in"), "{}", e.cause);
    std::fs::write(st.join(standin::CHECK_INVALID), "").unwrap();
    assert!(!a.check().unwrap());
    if let Via::Sshd(d) = &via {
        let log = std::fs::read_to_string(&d.log).unwrap();
        assert!(
            log.contains("Accepted publickey"),
            "not through sshd: {log}"
        );
    }
}

#[test]
fn ssh_round_trip_through_sshd() {
    round_trip(true);
}

#[test]
fn ssh_round_trip_through_the_ssh_command() {
    round_trip(false);
}

fn refusals(through_sshd: bool) {
    let t = tempfile::tempdir().unwrap();
    let st = state(t.path());
    let Some((mut a, via, cfg)) = ssh_way(t.path(), &st, through_sshd) else {
        return;
    };
    // Busy: a config-apply runs; nothing is applied.
    std::fs::write(st.join(standin::BUSY), "").unwrap();
    let e = a.apply(&new()).unwrap_err();
    assert_eq!(e.code, Code::ApplianceBusy, "{e:?}");
    assert_eq!(std::fs::read(st.join(standin::ACTIVE_FILE)).unwrap(), old());
    std::fs::remove_file(st.join(standin::BUSY)).unwrap();
    // A lying appliance: success, old licence still active.
    std::fs::write(st.join(standin::LIE), "").unwrap();
    a.apply(&new()).unwrap();
    assert_eq!(a.active().unwrap().reference.as_str(), "OLD1");
    std::fs::remove_file(st.join(standin::LIE)).unwrap();

    // Another host key pinned, and none pinned.
    let (_, other_pub) = common::ssh_host_key(t.path(), "other_host_key");
    let port = cfg.port;
    for pinned in [format!("[127.0.0.1]:{port} {other_pub}\n"), String::new()] {
        let kh = t.path().join("wrong_known_hosts");
        std::fs::write(&kh, pinned).unwrap();
        let mut c = cfg.clone();
        c.known_hosts = kh;
        let e = SshAppliance::new(c).unwrap().active().unwrap_err();
        assert_eq!(e.code, Code::ApplianceHostKey, "{e:?}");
    }

    // A key the appliance does not authorise.
    let mut c = cfg.clone();
    match &via {
        Via::Sshd(d) => {
            let stranger = common::ssh_keygen_key(t.path(), "stranger", "");
            c.command = d.ssh_command(&stranger);
        }
        Via::Command => std::fs::write(st.join(standin::DENY_LOGIN), "").unwrap(),
    }
    let e = SshAppliance::new(c).unwrap().active().unwrap_err();
    assert_eq!(e.code, Code::ApplianceUnauthorized, "{e:?}");
    let _ = std::fs::remove_file(st.join(standin::DENY_LOGIN));

    // Nothing listens.
    let mut c = cfg.clone();
    match &via {
        Via::Sshd(_) => {
            c.port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        }
        Via::Command => std::fs::write(st.join(standin::UNREACHABLE), "").unwrap(),
    }
    let e = SshAppliance::new(c).unwrap().active().unwrap_err();
    assert_eq!(e.code, Code::ApplianceUnreachable, "{e:?}");
    assert_eq!(std::fs::read(st.join(standin::ACTIVE_FILE)).unwrap(), old());
}

#[test]
fn ssh_refusals_through_sshd() {
    refusals(true);
}

#[test]
fn ssh_refusals_through_the_ssh_command() {
    refusals(false);
}

/// The stand-in's HTTP face behind TLS with a test CA.
struct Https {
    _standin: ManageStandIn,
    front: TlsFront,
    ca: PathBuf,
}

fn https(dir: &Path, state: &Path) -> Https {
    let standin = ManageStandIn::start(state, PASSWORD, TOKEN).unwrap();
    let pki = TestPki::new();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let front = TlsFront::start(&pki, standin.addr);
    Https {
        _standin: standin,
        front,
        ca,
    }
}

fn manage(h: &Https, password: &str, ca: Option<&Path>) -> ManageApi {
    let mut cfg = ManageConfig::new(h.front.url.clone(), Zeroizing::new(password.into()));
    cfg.ca_file = ca.map(Path::to_path_buf);
    cfg.timeout = Duration::from_secs(30);
    cfg.seats = Some(SeatsSource {
        api_url: format!("{}/api/v3", h.front.url),
        token: Zeroizing::new(TOKEN.into()),
        ca_file: ca.map(Path::to_path_buf),
    });
    ManageApi::new(cfg).unwrap()
}

#[test]
fn manage_api_over_tls() {
    let t = tempfile::tempdir().unwrap();
    let st = state(t.path());
    let h = https(t.path(), &st);
    let mut a = manage(&h, PASSWORD, Some(&h.ca));
    assert_eq!(a.dry_run(&new()).unwrap(), None, "no dry run over the API");
    assert_eq!(
        a.active().unwrap(),
        info("OLD1", 10, "2030-01-01T00:00:00Z")
    );
    match a.backup().unwrap() {
        Backup::Details(j) => assert!(j.contains("\"referenceNumber\":\"OLD1\""), "{j}"),
        b => panic!("{b:?}"),
    }
    assert_eq!(a.active_sha256().unwrap(), None);
    assert!(a.check().unwrap());
    a.apply(&new()).unwrap();
    assert_eq!(
        a.active().unwrap(),
        info("NEW2", 20, "2031-01-01T08:00:00Z")
    );
    assert_eq!(std::fs::read(st.join(standin::ACTIVE_FILE)).unwrap(), new());
    std::fs::write(st.join(standin::CHECK_INVALID), "").unwrap();
    assert!(!a.check().unwrap());

    std::fs::write(st.join(standin::BUSY), "").unwrap();
    let e = a.apply(&old()).unwrap_err();
    assert_eq!(e.code, Code::ApplianceBusy, "{e:?}");
    std::fs::remove_file(st.join(standin::BUSY)).unwrap();
    let e = a.apply(b"junk").unwrap_err();
    assert_eq!(e.code, Code::ApplianceRefused, "{e:?}");
    assert_eq!(std::fs::read(st.join(standin::ACTIVE_FILE)).unwrap(), new());

    let e = manage(&h, "wrong password", Some(&h.ca))
        .active()
        .unwrap_err();
    assert_eq!(e.code, Code::ApplianceUnauthorized, "{e:?}");
    let shown = format!("{e:?} {}", e.cause);
    assert!(!shown.contains("wrong password") && !shown.contains(PASSWORD));

    let e = manage(&h, PASSWORD, None).active().unwrap_err();
    assert_eq!(e.code, Code::ApplianceUnreachable, "{e:?}");
    assert!(e.hint.as_deref().unwrap_or("").contains("CA"), "{e:?}");
}

#[test]
fn seats_in_use_from_the_rest_api() {
    let t = tempfile::tempdir().unwrap();
    let st = state(t.path());
    let h = https(t.path(), &st);
    let used = manage(&h, PASSWORD, Some(&h.ca))
        .seats_used()
        .unwrap()
        .unwrap();
    assert_eq!((used.seats, used.source.as_str()), (7, SOURCE));
    let src = SeatsSource {
        api_url: format!("{}/api/v3/", h.front.url),
        token: Zeroizing::new(TOKEN.into()),
        ca_file: Some(h.ca.clone()),
    };
    let u = src.fetch(Duration::from_secs(30)).unwrap();
    assert_eq!(u.seats_used, 7);
    assert!(u.days_until_expiration.unwrap() > 365, "{u:?}");
    // The SSH way uses the same source.
    let (mut a, _, mut cfg) = ssh_way(t.path(), &st, false).unwrap();
    assert_eq!(a.seats_used().unwrap(), None);
    cfg.seats = Some(src.clone());
    let used = SshAppliance::new(cfg)
        .unwrap()
        .seats_used()
        .unwrap()
        .unwrap();
    assert_eq!(used.seats, 7);
    let bad = SeatsSource {
        token: Zeroizing::new("wrong".into()),
        ..src
    };
    let e = bad.fetch(Duration::from_secs(30)).unwrap_err();
    assert_eq!(e.code, Code::ApplianceUnauthorized, "{e:?}");
}

#[test]
fn the_stand_in_says_what_it_is() {
    let out = common::airlock()
        .args(["standin-appliance", "--state"])
        .arg(std::env::temp_dir())
        .env("SSH_ORIGINAL_COMMAND", "ghe-license check")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("not GHES"));
    let help = common::airlock().arg("--help").output().unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("standin"));
}
