//! Proxies as gh reads them (decision 76): loopback never proxied, HTTPS_PROXY
//! before ALL_PROXY, NO_PROXY, SOCKS 5, and an unusable variable named in
//! an error. A proxied request goes to `api.test.invalid`, a name only the
//! test proxy resolves (`.invalid` never resolves in DNS, RFC 6761), served
//! on loopback with a test-CA certificate for that name.

mod common;

use std::path::{Path, PathBuf};

use common::http::{ConnectProxy, Response, Server, Socks5Proxy, TestPki};
use common::*;

const NAME: &str = "api.test.invalid";
const SYNC_OK: &str = r#"{"server_instances":[]}"#;
const TOKEN: &str = "ghp_secret_token_value";

/// `cloud status` against `api` with the token set and a state directory.
fn status(dir: &Path, api: &str) -> assert_cmd::Command {
    let mut c = airlock();
    c.args([
        "cloud",
        "status",
        "--enterprise",
        "octo-corp",
        "--api-url",
        api,
    ])
    .arg("--state-dir")
    .arg(dir.join("state"))
    .env("GH_TOKEN", TOKEN);
    c
}

fn port(url: &str) -> &str {
    url.rsplit(':').next().unwrap()
}

/// A TLS stand-in for `NAME` and the CA file that trusts it.
fn named_stand_in(dir: &Path, script: Vec<Response>) -> (Server, PathBuf, String) {
    let pki = TestPki::with_names(&[NAME]);
    let ca = dir.join("test-ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let s = Server::start_tls(script, &pki);
    let api = format!("https://{NAME}:{}", port(&s.url));
    (s, ca, api)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Done when: with HTTPS_PROXY (and ALL_PROXY, HTTP_PROXY) set to a proxy
/// that records what it sees, every loopback request bypasses it: plain
/// http to 127.0.0.1, https to localhost, `[::1]` is refused by no rule.
#[test]
fn loopback_requests_never_go_through_the_proxy() {
    let d = tempfile::tempdir().unwrap();
    let proxy = ConnectProxy::start();
    let every = |c: &mut assert_cmd::Command| {
        for v in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "HTTP_PROXY"] {
            c.env(v, &proxy.url);
        }
    };
    let s = Server::start(vec![Response::new(200, SYNC_OK)]);
    let mut c = status(d.path(), &s.url);
    every(&mut c);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(s.requests().len(), 1);
    assert_eq!(
        s.requests()[0].headers["authorization"],
        format!("Bearer {TOKEN}")
    );

    let pki = TestPki::new();
    let ca = d.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let s = Server::start_tls(vec![Response::new(200, SYNC_OK)], &pki);
    let mut c = status(d.path(), &s.url);
    c.arg("--ca-file").arg(&ca);
    every(&mut c);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(s.requests().len(), 1);
    assert!(proxy.targets().is_empty(), "{:?}", proxy.targets());
}

/// The HTTP hand-over to a loopback endpoint bypasses the proxy too: the
/// token and payload never reach it.
#[test]
fn a_loopback_submit_url_bypasses_the_proxy() {
    let (d, k) = keyed_dir();
    let allowed = trust_keys(d.path(), "*.example.com", &["exporter_ed25519"]);
    let usage = sample_usage(d.path());
    let b = export(d.path(), &k, &[&usage], &d.path().join("b.zip"), &[]);
    let proxy = ConnectProxy::start();
    let s = Server::start(vec![Response::new(201, "{}")]);
    let import = |url: &str, proxy_var: (&str, &str)| {
        airlock()
            .arg("import")
            .arg(&b)
            .trust_state(&allowed, d.path().join("state"))
            .arg("--submit-url")
            .arg(url)
            .env("AIRLOCK_SUBMIT_TOKEN", "intake-secret")
            .env(proxy_var.0, proxy_var.1)
            .output()
            .unwrap()
    };
    // An unusable proxy is refused before anything is recorded or sent.
    let o = import(
        &format!("{}/intake", s.url),
        ("ALL_PROXY", "socks4://u:hunter2@127.0.0.1:1"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("AIRLOCK-E-PROXY-INVALID"));
    assert!(stderr(&o).contains("ALL_PROXY="));
    assert!(!stderr(&o).contains("hunter2"));
    assert!(s.requests().is_empty());

    let o = import(&format!("{}/intake", s.url), ("HTTPS_PROXY", &proxy.url));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(s.requests().len(), 1);
    assert_eq!(
        s.requests()[0].headers["authorization"],
        "Bearer intake-secret"
    );
    assert!(proxy.targets().is_empty(), "{:?}", proxy.targets());
}

/// Done when: `airlock demo` (its stand-in is on loopback) succeeds behind
/// a proxy, which sees nothing.
#[test]
fn the_demo_bypasses_the_proxy() {
    let tmp = tempfile::tempdir().unwrap();
    let proxy = ConnectProxy::start();
    let o = airlock()
        .env("TMPDIR", tmp.path())
        .env("HTTPS_PROXY", &proxy.url)
        .env("ALL_PROXY", &proxy.url)
        .arg("demo")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("STAND-IN, NOT GITHUB"));
    assert!(proxy.targets().is_empty(), "{:?}", proxy.targets());
}

/// A host that is not loopback goes through the proxy (a CONNECT tunnel,
/// TLS end to end with the test CA); NO_PROXY in curl's forms sends it
/// direct, where the name does not resolve.
#[test]
fn a_named_host_goes_through_the_proxy_unless_no_proxy_says_so() {
    let d = tempfile::tempdir().unwrap();
    let proxy = ConnectProxy::start_resolving(&[NAME]);
    let (s, ca, api) = named_stand_in(d.path(), vec![Response::new(200, SYNC_OK)]);
    let o = status(d.path(), &api)
        .arg("--ca-file")
        .arg(&ca)
        .env("HTTPS_PROXY", &proxy.url)
        .env("NO_PROXY", "localhost, .example.com 10.0.0.0/8")
        .arg("-v")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(proxy.targets(), [format!("CONNECT {NAME}:{}", port(&api))]);
    assert_eq!(s.requests().len(), 1);
    assert_eq!(
        s.requests()[0].headers["authorization"],
        format!("Bearer {TOKEN}")
    );
    assert!(
        stderr(&o).contains(&format!("proxy {} from HTTPS_PROXY", proxy.url)),
        "{}",
        stderr(&o)
    );

    // Bypassed: the name is looked up directly and does not resolve; the
    // proxy saw nothing more.
    for no_proxy in [
        "test.invalid",
        ".test.invalid",
        "example.com, *",
        "*.test.invalid",
    ] {
        let o = status(d.path(), &api)
            .arg("--ca-file")
            .arg(&ca)
            .env("HTTPS_PROXY", &proxy.url)
            .env("no_proxy", no_proxy)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(13), "{no_proxy}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("through the proxy"),
            "{no_proxy}: {}",
            stderr(&o)
        );
        assert_eq!(
            proxy.targets().len(),
            1,
            "{no_proxy}: {:?}",
            proxy.targets()
        );
    }
}

/// HTTPS_PROXY wins over ALL_PROXY (a dead SOCKS proxy there hides
/// nothing); ALL_PROXY alone is used, through ureq's SOCKS 5 with the name
/// resolved by the proxy (socks5h).
#[test]
fn https_proxy_before_all_proxy_and_socks5h() {
    let d = tempfile::tempdir().unwrap();
    let proxy = ConnectProxy::start_resolving(&[NAME]);
    let socks = Socks5Proxy::start_resolving(&[NAME]);
    let (_s, ca, api) = named_stand_in(
        d.path(),
        vec![Response::new(200, SYNC_OK), Response::new(200, SYNC_OK)],
    );
    let o = status(d.path(), &api)
        .arg("--ca-file")
        .arg(&ca)
        .env("ALL_PROXY", &socks.url)
        .env("HTTPS_PROXY", &proxy.url)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(proxy.targets().len(), 1);
    assert!(socks.targets().is_empty());

    let with_user = socks.url.replace("socks5h://", "socks5h://u:hunter2@");
    let o = status(d.path(), &api)
        .arg("--ca-file")
        .arg(&ca)
        .env("all_proxy", &with_user)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(socks.targets(), [format!("SOCKS5 {NAME}:{}", port(&api))]);
    assert_eq!(proxy.targets().len(), 1);
}

/// A proxy that cannot be reached is named in the error (password
/// redacted), not a bare "Connection refused".
#[test]
fn an_unreachable_proxy_is_named() {
    let d = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind, note, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = status(d.path(), &format!("https://{NAME}"))
        .env("ALL_PROXY", format!("socks5h://u:hunter2@{dead}"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(13), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "through the proxy socks5h://***@{dead} from ALL_PROXY"
        )),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
}

/// Done when: an unusable proxy variable is an error naming it (exit 2,
/// AIRLOCK-E-PROXY-INVALID), with any password redacted, and nothing is
/// sent anywhere; both spellings set differently is an error naming both.
#[test]
fn an_unusable_proxy_variable_is_an_error_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let proxy = ConnectProxy::start_resolving(&[NAME]);
    let (s, ca, api) = named_stand_in(d.path(), vec![Response::new(200, SYNC_OK)]);
    for (vars, named) in [
        (
            vec![("HTTPS_PROXY", "ftp://u:hunter2@proxy.corp:21")],
            vec!["HTTPS_PROXY="],
        ),
        (
            vec![("https_proxy", "socks4://u:hunter2@proxy.corp")],
            vec!["https_proxy="],
        ),
        (
            vec![("HTTPS_PROXY", "http://u:hunter2@proxy.corp:port")],
            vec!["HTTPS_PROXY="],
        ),
        (
            vec![("HTTPS_PROXY", "http://u:hunter2@")],
            vec!["HTTPS_PROXY="],
        ),
        (vec![("ALL_PROXY", "http://[::1")], vec!["ALL_PROXY="]),
        (
            vec![
                ("HTTPS_PROXY", proxy.url.as_str()),
                ("https_proxy", "http://u:hunter2@other:3128"),
            ],
            vec!["HTTPS_PROXY=", "https_proxy="],
        ),
    ] {
        let mut c = status(d.path(), &api);
        c.arg("--ca-file").arg(&ca);
        for (k, v) in &vars {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{vars:?}: {e}");
        assert!(e.contains("AIRLOCK-E-PROXY-INVALID"), "{e}");
        for n in named {
            assert!(e.contains(n), "{vars:?} should name {n}: {e}");
        }
        assert!(!e.contains("hunter2"), "{e}");
    }
    assert!(s.requests().is_empty());
    assert!(proxy.targets().is_empty(), "{:?}", proxy.targets());
}

/// An `https://` proxy is spoken to over TLS (ureq's code; the first byte
/// the proxy gets is a TLS handshake record, 0x16), never in clear.
#[test]
fn an_https_proxy_gets_tls() {
    use std::io::Read;
    let d = tempfile::tempdir().unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let first = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        b[0]
    });
    let o = status(d.path(), &format!("https://{NAME}"))
        .env("HTTPS_PROXY", format!("https://{addr}"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(13), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "through the proxy https://{addr} from HTTPS_PROXY"
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(first.join().unwrap(), 0x16);
}
