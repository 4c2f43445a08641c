//! HTTPS for the connected side: one place that decides which CAs are
//! trusted, which proxy is used, where credentials may go, and what a
//! network failure means. Used by the GitHub client (`cloud`) and the HTTP
//! hand-over (`handover`).
//!
//! - Trust: the operating system's CA store (read by `rustls-native-certs`
//!   the way OpenSSL reads it, so `SSL_CERT_FILE` / `SSL_CERT_DIR` replace
//!   it), plus `--ca-file` (PEM). Only when no store exists at all and no
//!   file is given, the Mozilla roots compiled into airlock.
//! - Proxy: `HTTPS_PROXY`, else `ALL_PROXY`, with `NO_PROXY` ([`proxy`]);
//!   loopback always direct; an HTTP CONNECT tunnel or SOCKS 5, so TLS
//!   stays end to end.
//! - Credentials go only to the origin (scheme, host, port) of the URL the
//!   operator configured: redirects are never followed by the HTTP library,
//!   and callers follow them, or pagination links, only within that origin.

use std::path::Path;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::base::error::{Code, Error, Result};

pub mod proxy;
pub use proxy::{Proxies, ProxyVars};

/// Where the trusted CA certificates came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustSource {
    /// The operating system's store (found by probing the usual paths).
    System,
    /// `SSL_CERT_FILE` and/or `SSL_CERT_DIR`.
    Env,
    /// Mozilla's roots compiled into airlock (no store was found).
    Bundled,
}

/// The CA certificates an HTTPS connection may chain to.
#[derive(Debug, Clone)]
pub struct Trust {
    roots: RootCerts,
    /// Where the roots came from (`--ca-file` certificates are added to
    /// these).
    pub source: TrustSource,
    /// Certificates taken from the store (or the environment).
    pub store_certs: usize,
    /// Certificates taken from `--ca-file`.
    pub extra_certs: usize,
}

fn env_path(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// Read every certificate of a PEM file.
fn read_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::new(
            Code::TlsTrust,
            format!("cannot read CA file {}: {e}", path.display()),
        )
    })?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(Error::new(
                    Code::TlsTrust,
                    format!("CA file {}: {e}", path.display()),
                ))
            }
        }
    }
    if certs.is_empty() {
        return Err(Error::new(
            Code::TlsTrust,
            format!("CA file {} holds no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}

/// What the operator named in `SSL_CERT_FILE` and `SSL_CERT_DIR` must be
/// there: a stale variable is an error, not a quiet loss of the CA it was
/// set for.
fn check_env_paths() -> Result<()> {
    if let Some(f) = env_path("SSL_CERT_FILE") {
        if let Err(e) = std::fs::File::open(&f) {
            return Err(Error::new(
                Code::TlsTrust,
                format!("SSL_CERT_FILE={f} cannot be read: {e}"),
            ));
        }
    }
    if let Some(d) = std::env::var_os("SSL_CERT_DIR").filter(|v| !v.is_empty()) {
        for dir in std::env::split_paths(&d).filter(|p| !p.as_os_str().is_empty()) {
            if let Err(e) = std::fs::read_dir(&dir) {
                return Err(Error::new(
                    Code::TlsTrust,
                    format!("SSL_CERT_DIR entry {} cannot be read: {e}", dir.display()),
                ));
            }
        }
    }
    Ok(())
}

impl Trust {
    /// The store (or `SSL_CERT_FILE` / `SSL_CERT_DIR`), plus `ca_file`.
    pub fn load(ca_file: Option<&Path>) -> Result<Trust> {
        let extra = match ca_file {
            Some(p) => read_ca_file(p)?,
            None => Vec::new(),
        };
        let from_env = env_path("SSL_CERT_FILE").is_some() || env_path("SSL_CERT_DIR").is_some();
        check_env_paths()?;
        let native = rustls_native_certs::load_native_certs();
        let store: Vec<Certificate<'static>> = native
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        if from_env && store.is_empty() {
            // The operator pointed at a file or directory: fail closed rather
            // than fall back to anything else.
            let why = native
                .errors
                .first()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            return Err(Error::new(
                Code::TlsTrust,
                format!(
                    "SSL_CERT_FILE={} / SSL_CERT_DIR={} give no CA certificate{why}",
                    env_path("SSL_CERT_FILE").unwrap_or_else(|| "(unset)".into()),
                    env_path("SSL_CERT_DIR").unwrap_or_else(|| "(unset)".into()),
                ),
            ));
        }
        let source = if from_env {
            TrustSource::Env
        } else if store.is_empty() {
            TrustSource::Bundled
        } else {
            TrustSource::System
        };
        let (store_certs, extra_certs) = (store.len(), extra.len());
        let roots = if store.is_empty() && extra.is_empty() {
            RootCerts::WebPki
        } else {
            let mut all = store;
            all.extend(extra);
            RootCerts::from(all)
        };
        Ok(Trust {
            roots,
            source,
            store_certs,
            extra_certs,
        })
    }
}

/// The HTTP agents of a run: one that connects directly (loopback,
/// `NO_PROXY` hosts, or no proxy set) and one through the proxy; each
/// request takes the one its URL calls for.
#[derive(Clone)]
pub struct Agent {
    direct: ureq::Agent,
    proxied: Option<ureq::Agent>,
    proxies: Proxies,
}

/// HTTP agents: the given trust, `proxies`, no automatic redirects, HTTP
/// statuses returned rather than raised.
pub fn agent(trust: &Trust, proxies: &Proxies, timeout: Duration) -> Agent {
    let build = |proxy: Option<ureq::Proxy>| -> ureq::Agent {
        let tls = TlsConfig::builder().root_certs(trust.roots.clone()).build();
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(tls)
            // Always set: ureq's default reads the environment itself, in
            // its own order.
            .proxy(proxy)
            .timeout_global(Some(timeout))
            .user_agent(crate::tool_version())
            .build()
            .into()
    };
    Agent {
        direct: build(None),
        proxied: proxies.proxy.as_ref().map(|p| build(Some(p.proxy.clone()))),
        proxies: proxies.clone(),
    }
}

impl Agent {
    /// The agent for a request to `url`.
    fn pick(&self, url: &str) -> &ureq::Agent {
        match (&self.proxied, self.proxies.for_url(url)) {
            (Some(p), Some(_)) => p,
            _ => &self.direct,
        }
    }

    /// A GET of `url`, direct or through the proxy as `url` calls for.
    pub fn get(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.pick(url).get(url)
    }

    /// A POST to `url`, direct or through the proxy as `url` calls for.
    pub fn post(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.pick(url).post(url)
    }

    /// A PUT to `url`, direct or through the proxy as `url` calls for.
    pub fn put(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.pick(url).put(url)
    }

    /// What a failed request to `url` means, naming the proxy it went
    /// through (so a refused connection to the proxy does not read as
    /// GitHub's).
    pub(crate) fn classify(&self, url: &str, e: &ureq::Error) -> Failure {
        let f = classify(e);
        let Some(p) = self.proxies.for_url(url) else {
            return f;
        };
        let via = format!(" (through the proxy {} from {})", p.shown, p.var);
        match f {
            Failure::Tls(m) => Failure::Tls(m + &via),
            Failure::Proxy(m) => Failure::Proxy(m + &via),
            Failure::Transient(m) => Failure::Transient(m + &via),
        }
    }
}

/// The origin of a URL: scheme, host and port (the port made explicit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`, lowercase.
    scheme: String,
    /// The host as the URL has it, lowercase (IPv6 in brackets).
    host: String,
    /// The port, the scheme's default when the URL gives none.
    port: u16,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Parse an absolute http(s) URL's origin.
pub fn origin(url: &str) -> Option<Origin> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let auth = uri.authority()?;
    if auth.as_str().contains('@') {
        // user:password@host: never; it would carry a second credential.
        return None;
    }
    Some(Origin {
        scheme,
        host: auth.host().to_ascii_lowercase(),
        port: uri.port_u16().unwrap_or(default),
    })
}

/// A URL credentials may be sent to: https, or plain http to loopback
/// (tests and local relays). `what` names the option, for the message.
pub fn check_url(url: &str, what: &str) -> Result<Origin> {
    let o = origin(url).ok_or_else(|| {
        Error::new(
            Code::Args,
            // Never echo the URL: its user info may hold a password.
            format!("{what} is not an absolute http(s) URL without user info (user:password@ is refused; give credentials in their own file)"),
        )
    })?;
    if o.scheme == "https" || proxy::is_loopback(&o.host) {
        Ok(o)
    } else {
        Err(Error::new(
            Code::Args,
            format!("{what} {url} must be https:// (plain http only to loopback)"),
        ))
    }
}

/// Resolve a `Location` (or `Link`) target against the URL it came from:
/// absolute URLs as they are, `/path` against the same origin.
pub fn resolve(base: &Origin, target: &str) -> Option<String> {
    let t = target.trim();
    if t.starts_with("http://") || t.starts_with("https://") {
        Some(t.to_string())
    } else if t.starts_with('/') && !t.starts_with("//") {
        let default = if base.scheme == "https" { 443 } else { 80 };
        Some(if base.port == default {
            format!("{}://{}{t}", base.scheme, base.host)
        } else {
            format!("{}://{}:{}{t}", base.scheme, base.host, base.port)
        })
    } else {
        None
    }
}

/// What a transport failure means.
pub(crate) enum Failure {
    /// The server's certificate did not verify (or TLS failed otherwise):
    /// retrying does not help; the trust configuration might.
    Tls(String),
    /// The proxy setting is unusable, or the proxy refused the tunnel.
    Proxy(String),
    /// Connection refused, DNS, timeout, reset: may pass on a retry.
    Transient(String),
}

/// Sort a ureq error into what the caller should do about it.
pub(crate) fn classify(e: &ureq::Error) -> Failure {
    match e {
        ureq::Error::Rustls(inner) => Failure::Tls(format!("TLS: {inner}")),
        // ureq hands rustls' handshake errors up as I/O errors.
        ureq::Error::Io(io)
            if io
                .get_ref()
                .and_then(|i| i.downcast_ref::<rustls::Error>())
                .is_some() =>
        {
            Failure::Tls(format!(
                "TLS: {}",
                io.get_ref().map(|i| i.to_string()).unwrap_or_default()
            ))
        }
        ureq::Error::Tls(s) => Failure::Tls(format!("TLS: {s}")),
        // Proxy URLs are checked before any agent is built; kept for safety.
        ureq::Error::InvalidProxyUrl => Failure::Proxy("the proxy URL is not valid".into()),
        ureq::Error::ConnectProxyFailed(s) => {
            Failure::Proxy(format!("the proxy refused the tunnel: {s}"))
        }
        other => Failure::Transient(other.to_string()),
    }
}

/// The hint for a TLS verification failure.
pub(crate) const TLS_HINT: &str = "the server's certificate does not chain to a CA airlock trusts; behind a TLS-inspecting proxy add the company CA: --ca-file FILE (or ca_file in airlock.toml), SSL_CERT_FILE / SSL_CERT_DIR, or the system store (update-ca-certificates)";

/// The hint for a proxy failure.
pub(crate) const PROXY_HINT: &str = "check HTTPS_PROXY or ALL_PROXY (http://[user:password@]proxy:port, or socks5h://) and NO_PROXY; docs/operator-guide.md explains them";

/// Paths named for diagnostics (`-v`): where trust came from.
pub fn describe(trust: &Trust, ca_file: Option<&Path>) -> String {
    let src = match trust.source {
        TrustSource::System => format!("system store ({} CA certificates)", trust.store_certs),
        TrustSource::Env => format!(
            "SSL_CERT_FILE/SSL_CERT_DIR ({} CA certificates)",
            trust.store_certs
        ),
        TrustSource::Bundled => "Mozilla roots built into airlock (no system store found)".into(),
    };
    match ca_file {
        Some(f) => format!(
            "{src} + {} ({} certificates)",
            f.display(),
            trust.extra_certs
        ),
        None => src,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let a = origin("https://api.github.com/enterprises/x").unwrap();
        assert_eq!(
            a,
            origin("https://API.github.com:443/other?page=2").unwrap()
        );
        assert_ne!(a, origin("https://api.github.com:8443/x").unwrap());
        assert_ne!(a, origin("http://api.github.com/x").unwrap());
        assert_ne!(a, origin("https://api.github.com.evil.example/x").unwrap());
        assert!(origin("https://user:pw@api.github.com/").is_none());
        assert!(origin("ftp://x/").is_none());
        assert!(origin("/relative").is_none());
        let l = origin("http://127.0.0.1:8080").unwrap();
        assert_eq!(l.port, 8080);
    }

    #[test]
    fn urls_for_credentials() {
        assert!(check_url("https://api.github.com", "--api-url").is_ok());
        assert!(check_url("http://127.0.0.1:9/x", "--api-url").is_ok());
        assert!(check_url("http://localhost:9", "--api-url").is_ok());
        assert!(check_url("http://[::1]:9", "--api-url").is_ok());
        assert!(check_url("http://api.github.com", "--api-url").is_err());
        assert!(check_url("http://127.0.0.1.evil.example", "--api-url").is_err());
        assert!(check_url("api.github.com", "--api-url").is_err());
    }

    #[test]
    fn resolving() {
        let o = origin("http://127.0.0.1:8080/a").unwrap();
        assert_eq!(
            resolve(&o, "/b?page=2").as_deref(),
            Some("http://127.0.0.1:8080/b?page=2")
        );
        assert_eq!(resolve(&o, "//evil.example/x"), None);
        assert_eq!(resolve(&o, "b"), None);
        let g = origin("https://api.github.com").unwrap();
        assert_eq!(
            resolve(&g, "/x").as_deref(),
            Some("https://api.github.com/x")
        );
    }

    #[test]
    fn ca_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ca.pem");
        std::fs::write(&p, "not a certificate\n").unwrap();
        assert_eq!(read_ca_file(&p).err().unwrap().code, Code::TlsTrust);
        assert_eq!(
            read_ca_file(&d.path().join("missing")).err().unwrap().code,
            Code::TlsTrust
        );
    }
}
