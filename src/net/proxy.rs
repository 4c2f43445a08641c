//! Which proxy a request goes through, read as gh reads it (decision 76).
//!
//! - `HTTPS_PROXY` (or `https_proxy`), else `ALL_PROXY` (or `all_proxy`);
//!   both spellings of one name set to different values is an error naming
//!   both. `HTTP_PROXY` applies to `http://` URLs only, and airlock sends
//!   plain http to loopback only, which is never proxied: it is not read.
//! - Loopback (`localhost`, 127.0.0.0/8, `::1`), decided from the URL's
//!   text without DNS, is always reached directly: a proxy must never see a
//!   token sent over plain http to a local stand-in.
//! - `NO_PROXY` (or `no_proxy`) in curl's forms: entries separated by
//!   commas and/or blanks; `*`; a domain with or without a leading `.` or
//!   `*.` (the domain and every name under it); an IP address; a CIDR
//!   range; IPv6 in or out of brackets; `host:port` for one port.
//! - The variable airlock uses must hold a URL it can use (`http`, `https`,
//!   `socks5h`, `socks5`): anything else is `AIRLOCK-E-PROXY-INVALID`
//!   naming the variable, with any `user:password` shown as `***`, never a
//!   silent direct connection.

use std::ffi::OsString;
use std::net::IpAddr;

use crate::base::error::{Code, Error, Result};

/// The proxy variables, in precedence order, each with its two spellings.
const PROXY_VARS: [(&str, &str); 2] = [("HTTPS_PROXY", "https_proxy"), ("ALL_PROXY", "all_proxy")];

/// The bypass list's two spellings.
const NO_PROXY_VARS: (&str, &str) = ("NO_PROXY", "no_proxy");

/// The schemes airlock can use for a proxy (ureq's CONNECT and SOCKS 5).
const SCHEMES: &[&str] = &["http", "https", "socks5h", "socks5"];

/// The proxy variables as the environment had them when the command
/// started (captured by `Settings`, judged only by a command that connects,
/// so an offline command never fails on them).
#[derive(Clone, Default)]
pub struct ProxyVars {
    /// Name and value of each variable that is set and not empty.
    vars: Vec<(&'static str, OsString)>,
}

impl std::fmt::Debug for ProxyVars {
    // Values may hold a proxy password: names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.vars.iter().map(|(n, _)| n))
            .finish()
    }
}

impl ProxyVars {
    /// Read the proxy variables through `env` (empty counts as unset).
    pub fn read(env: &dyn Fn(&str) -> Option<OsString>) -> ProxyVars {
        let names = PROXY_VARS
            .iter()
            .flat_map(|(a, b)| [*a, *b])
            .chain([NO_PROXY_VARS.0, NO_PROXY_VARS.1]);
        ProxyVars {
            vars: names
                .filter_map(|n| env(n).filter(|v| !v.is_empty()).map(|v| (n, v)))
                .collect(),
        }
    }

    /// The process's own environment.
    pub fn from_process() -> ProxyVars {
        ProxyVars::read(&|n| std::env::var_os(n))
    }

    fn get(&self, name: &str) -> Option<&OsString> {
        self.vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// One variable by either spelling: `None` when neither is set, an
    /// error when both are, differently.
    fn pair(
        &self,
        (upper, lower): (&'static str, &'static str),
    ) -> Result<Option<(&'static str, String)>> {
        let one = |n: &'static str| -> Result<Option<(&'static str, String)>> {
            match self.get(n) {
                None => Ok(None),
                Some(v) => match v.to_str() {
                    Some(s) => Ok(Some((n, s.to_string()))),
                    None => Err(Error::new(
                        Code::ProxyInvalid,
                        format!("{n} is not valid UTF-8, so it cannot be a proxy URL or host list"),
                    )),
                },
            }
        };
        match (one(upper)?, one(lower)?) {
            (Some(a), Some(b)) if a.1 != b.1 => Err(Error::new(
                Code::ProxyInvalid,
                format!(
                    "{upper}={:?} and {lower}={:?} are both set and differ; airlock will not guess which one is meant",
                    redact(&a.1),
                    redact(&b.1)
                ),
            )
            .with_hint(format!(
                "unset one of {upper} and {lower}, or give both the same value"
            ))),
            (Some(a), _) => Ok(Some(a)),
            (None, b) => Ok(b),
        }
    }

    /// The proxy to use and the bypass list; an error for a variable that
    /// cannot be used.
    pub fn resolve(&self) -> Result<Proxies> {
        let mut proxy = None;
        for names in PROXY_VARS {
            if let Some((var, value)) = self.pair(names)? {
                proxy = Some(ProxyUsed::parse(var, &value)?);
                break;
            }
        }
        let no_proxy = match self.pair(NO_PROXY_VARS)? {
            Some((_, v)) => NoProxy::parse(&v),
            None => NoProxy::default(),
        };
        Ok(Proxies { proxy, no_proxy })
    }
}

/// The proxy a run uses: where from, and how to show it.
#[derive(Clone)]
pub struct ProxyUsed {
    /// For ureq.
    pub(crate) proxy: ureq::Proxy,
    /// The variable it came from.
    pub var: &'static str,
    /// The URL with any user name and password replaced by `***`.
    pub shown: String,
}

impl std::fmt::Debug for ProxyUsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.shown, self.var)
    }
}

impl ProxyUsed {
    /// Parse the value of `var` as a proxy URL airlock can use.
    fn parse(var: &'static str, value: &str) -> Result<ProxyUsed> {
        let bad = |why: &str| {
            Error::new(
                Code::ProxyInvalid,
                format!("{var}={:?} {why}", redact(value)),
            )
        };
        let value = value.trim();
        // No scheme means http, as for curl and gh.
        let (scheme, with_scheme) = match value.split_once("://") {
            Some((s, _)) => (s.to_ascii_lowercase(), value.to_string()),
            None => ("http".to_string(), format!("http://{value}")),
        };
        if !SCHEMES.contains(&scheme.as_str()) {
            return Err(bad(&format!(
                "uses the scheme {scheme:?}, which airlock cannot use for a proxy (it can use {})",
                SCHEMES.join(", ")
            )));
        }
        let proxy = ureq::Proxy::new(&with_scheme).map_err(|_| bad("is not a proxy URL"))?;
        let uri = proxy.uri();
        if proxy.host().is_empty() {
            return Err(bad("names no proxy host"));
        }
        // The URI parser takes `host:word`, and ureq would then use the
        // scheme's default port: refuse it rather than guess.
        let host_port = uri
            .authority()
            .map(|a| a.as_str().rsplit('@').next().unwrap_or_default())
            .unwrap_or_default();
        let port_text = match host_port.rsplit_once(']') {
            Some((_, after)) => after.strip_prefix(':'),
            None => host_port.rsplit_once(':').map(|(_, p)| p),
        };
        if port_text.is_some_and(|p| p.parse::<u16>().is_err()) {
            return Err(bad("has a port that is not a number from 0 to 65535"));
        }
        if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
            return Err(bad(
                "has a path or query; a proxy URL is scheme://[user:password@]host[:port]",
            ));
        }
        let creds = if proxy.username().is_some() || proxy.password().is_some() {
            "***@"
        } else {
            ""
        };
        let shown = format!("{scheme}://{creds}{}:{}", proxy.host(), proxy.port());
        Ok(ProxyUsed { proxy, var, shown })
    }
}

/// A proxy URL as it may be shown: any `user:password@` becomes `***@`.
/// Everything up to the last `@` after the scheme goes, so a password that
/// holds `@` or `/` is not shown in part.
pub fn redact(value: &str) -> String {
    let (scheme, rest) = match value.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), value),
    };
    match rest.rfind('@') {
        Some(i) => format!("{scheme}***@{}", &rest[i + 1..]),
        None => value.to_string(),
    }
}

/// The proxy, if any, and the hosts reached directly.
#[derive(Clone, Debug, Default)]
pub struct Proxies {
    pub(crate) proxy: Option<ProxyUsed>,
    no_proxy: NoProxy,
}

impl Proxies {
    /// No proxy: every request direct.
    pub fn none() -> Proxies {
        Proxies::default()
    }

    /// The proxy a request to `url` goes through; `None`: direct.
    /// Loopback and `NO_PROXY` hosts are direct; a URL whose host cannot be
    /// read goes the configured way (the request fails either way).
    pub fn for_url(&self, url: &str) -> Option<&ProxyUsed> {
        let p = self.proxy.as_ref()?;
        let Ok(uri) = url.parse::<ureq::http::Uri>() else {
            return Some(p);
        };
        let Some(host) = uri.host() else {
            return Some(p);
        };
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => 80,
            _ => 443,
        });
        if is_loopback(host) || self.no_proxy.matches(host, port) {
            None
        } else {
            Some(p)
        }
    }

    /// For `-v`: the proxy and its source, or that there is none.
    pub fn describe(&self) -> String {
        match &self.proxy {
            Some(p) => format!(
                "proxy {} from {} (loopback{} direct)",
                p.shown,
                p.var,
                if self.no_proxy.is_empty() {
                    " is"
                } else {
                    " and NO_PROXY hosts are"
                }
            ),
            None => "no proxy (HTTPS_PROXY and ALL_PROXY unset)".into(),
        }
    }
}

/// A host name or address, as a URL has it, that is loopback: `localhost`,
/// 127.0.0.0/8, `::1` or `::ffff:127.x.x.x`, IPv6 with or without
/// brackets. Decided from the text alone: no DNS. (Not `localhost.`: a
/// rooted name may be looked up in DNS, and this test also lets a token go
/// over plain http.)
pub fn is_loopback(host: &str) -> bool {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match h.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.is_loopback(),
        Ok(IpAddr::V6(a)) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// One `NO_PROXY` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    /// A domain and every name under it (lowercase, no leading or trailing
    /// dot).
    Domain(String),
    /// An address range: the address and the prefix length (a single
    /// address has the full length).
    Net(IpAddr, u8),
}

/// The hosts reached without the proxy (`NO_PROXY`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    /// `*`: every host.
    all: bool,
    /// Each entry, with the one port it is for, if given.
    entries: Vec<(Pattern, Option<u16>)>,
}

impl NoProxy {
    /// Parse a `NO_PROXY` value. An entry that is none of the forms (such
    /// as `10.0.0.0/33`) matches nothing, as for curl: the request then
    /// goes through the proxy the operator set.
    pub fn parse(value: &str) -> NoProxy {
        let mut out = NoProxy::default();
        for raw in value.split(|c: char| c == ',' || c.is_whitespace()) {
            let t = raw.trim().to_ascii_lowercase();
            if t.is_empty() {
                continue;
            }
            if t == "*" {
                out.all = true;
                continue;
            }
            if let Some(e) = entry(&t) {
                out.entries.push(e);
            }
        }
        out
    }

    fn is_empty(&self) -> bool {
        !self.all && self.entries.is_empty()
    }

    /// Whether `host` (as a URL has it) on `port` is to be reached
    /// directly.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let h = host.to_ascii_lowercase();
        let h = h.strip_suffix('.').unwrap_or(&h);
        let h = h
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(h);
        let ip = h.parse::<IpAddr>().ok();
        self.entries.iter().any(|(pat, p)| {
            p.is_none_or(|p| p == port)
                && match (pat, ip) {
                    (Pattern::Net(net, len), Some(a)) => in_net(a, *net, *len),
                    (Pattern::Domain(d), None) => {
                        h == d || h.strip_suffix(d.as_str()).is_some_and(|r| r.ends_with('.'))
                    }
                    _ => false,
                }
        })
    }
}

/// One entry (lowercase, not empty, not `*`).
fn entry(t: &str) -> Option<(Pattern, Option<u16>)> {
    // `[v6]` or `[v6]:port`.
    if let Some(rest) = t.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((net(addr)?, port));
    }
    if let Some(n) = net(t) {
        return Some((n, None));
    }
    // `host:port` or `v4:port`; a bare IPv6 address was taken above.
    let (host, port) = match t.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p.parse().ok()?)),
        Some(_) => return None,
        None => (t, None),
    };
    if let Some(n) = net(host) {
        return Some((n, port));
    }
    let d = host
        .strip_prefix("*.")
        .or_else(|| host.strip_prefix('.'))
        .unwrap_or(host);
    let d = d.strip_suffix('.').unwrap_or(d);
    let ok = !d.is_empty()
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    ok.then(|| (Pattern::Domain(d.to_string()), port))
}

/// An address or a CIDR range.
fn net(t: &str) -> Option<Pattern> {
    let (addr, len) = match t.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (t, None),
    };
    let a: IpAddr = addr.parse().ok()?;
    let max = if a.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then_some(Pattern::Net(a, len))
}

/// Whether `a` lies in `net`/`len` (an IPv4-mapped IPv6 address counts as
/// its IPv4 address).
fn in_net(a: IpAddr, net: IpAddr, len: u8) -> bool {
    let a = match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(a),
        v4 => v4,
    };
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> ProxyVars {
        let owned: Vec<(String, String)> = list
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        ProxyVars::read(&move |n| {
            owned
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| OsString::from(v))
        })
    }

    fn used(list: &[(&str, &str)]) -> Result<Option<(String, String)>> {
        Ok(vars(list)
            .resolve()?
            .proxy
            .map(|p| (p.var.to_string(), p.shown)))
    }

    #[test]
    fn https_proxy_comes_before_all_proxy() {
        let got = used(&[
            ("ALL_PROXY", "socks5h://socks.corp:1080"),
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
        ])
        .unwrap();
        assert_eq!(
            got,
            Some(("HTTPS_PROXY".into(), "http://proxy.corp:3128".into()))
        );
        let got = used(&[("all_proxy", "socks5h://socks.corp")]).unwrap();
        assert_eq!(
            got,
            Some(("all_proxy".into(), "socks5h://socks.corp:1080".into()))
        );
        let got = used(&[("https_proxy", "proxy.corp:3128")]).unwrap();
        assert_eq!(
            got,
            Some(("https_proxy".into(), "http://proxy.corp:3128".into()))
        );
        // HTTP_PROXY is for http:// URLs, which airlock sends to loopback only.
        assert_eq!(used(&[("HTTP_PROXY", "http://p:1")]).unwrap(), None);
        assert_eq!(used(&[("HTTPS_PROXY", "")]).unwrap(), None);
    }

    #[test]
    fn both_spellings_differing_is_an_error_naming_both() {
        let e = used(&[
            ("HTTPS_PROXY", "http://a:1"),
            ("https_proxy", "http://u:secret@b:1"),
        ])
        .unwrap_err();
        assert_eq!(e.code, Code::ProxyInvalid);
        assert!(e.cause.contains("HTTPS_PROXY") && e.cause.contains("https_proxy"));
        assert!(!e.cause.contains("secret"), "{}", e.cause);
        // The same value twice is fine.
        assert!(used(&[("HTTPS_PROXY", "http://a:1"), ("https_proxy", "http://a:1")]).is_ok());
        let e = vars(&[("NO_PROXY", "a"), ("no_proxy", "b")])
            .resolve()
            .unwrap_err();
        assert!(e.cause.contains("NO_PROXY") && e.cause.contains("no_proxy"));
    }

    #[test]
    fn an_unusable_proxy_is_an_error_naming_the_variable_without_the_password() {
        for (var, value) in [
            ("HTTPS_PROXY", "ftp://user:hunter2@proxy:21"),
            ("HTTPS_PROXY", "socks4://user:hunter2@proxy:1080"),
            ("ALL_PROXY", "http://user:hunter2@proxy:notaport"),
            ("https_proxy", "http://user:hunter2@"),
            ("HTTPS_PROXY", "http://user:hun@ter2@proxy:3128/some/path"),
            ("HTTPS_PROXY", "http://us er:hunter2@proxy"),
        ] {
            let e = used(&[(var, value)]).unwrap_err();
            assert_eq!(e.code, Code::ProxyInvalid, "{value}");
            assert!(e.cause.starts_with(&format!("{var}=")), "{}", e.cause);
            assert!(!e.cause.contains("hunter2"), "{}", e.cause);
            assert!(!e.cause.contains("ter2"), "{}", e.cause);
        }
        let e = used(&[("HTTPS_PROXY", "gopher://proxy")]).unwrap_err();
        assert!(e.cause.contains("\"gopher\""), "{}", e.cause);
        // A valid one with credentials is shown without them.
        let got = used(&[("HTTPS_PROXY", "http://user:hunter2@proxy:3128")]).unwrap();
        assert_eq!(got.unwrap().1, "http://***@proxy:3128");
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("http://u:p@h:1"), "http://***@h:1");
        assert_eq!(redact("u:p@h:1"), "***@h:1");
        assert_eq!(redact("http://u:p@x/y@h"), "http://***@h");
        assert_eq!(redact("http://h:1"), "http://h:1");
    }

    #[test]
    fn loopback_is_decided_from_the_text() {
        for h in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
            "::1",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "localhost.",
            "localhost.example",
            "127.0.0.1.example",
            "10.0.0.1",
            "[::2]",
            "api.github.com",
            "0.0.0.0",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn loopback_and_no_proxy_hosts_go_direct() {
        let p = vars(&[
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("NO_PROXY", ".corp.example"),
        ])
        .resolve()
        .unwrap();
        assert!(p.for_url("http://127.0.0.1:8080/x").is_none());
        assert!(p.for_url("http://localhost:1").is_none());
        assert!(p.for_url("http://[::1]:1/").is_none());
        assert!(p.for_url("https://ghes.corp.example/api").is_none());
        assert!(p.for_url("https://api.github.com/x").is_some());
        assert!(p.for_url("https://127.0.0.1.nip.example/").is_some());
        assert!(Proxies::none().for_url("https://api.github.com").is_none());
    }

    #[test]
    fn no_proxy_takes_curls_forms() {
        let n = NoProxy::parse("a.com, b.com ,\tc.com");
        for h in ["a.com", "b.com", "c.com", "x.b.com"] {
            assert!(n.matches(h, 443), "{h}");
        }
        assert!(!n.matches("d.com", 443));
        assert!(!n.matches("xb.com", 443), "a suffix is not a subdomain");

        let n = NoProxy::parse(".example.com");
        assert!(n.matches("example.com", 443));
        assert!(n.matches("api.example.com", 443));
        assert!(n.matches("API.Example.COM.", 443));
        assert!(!n.matches("notexample.com", 443));
        let n = NoProxy::parse("example.com");
        assert!(n.matches("api.example.com", 443));
        let n = NoProxy::parse("*.example.com");
        assert!(n.matches("api.example.com", 443));

        let n = NoProxy::parse("10.0.0.0/8,192.168.1.7");
        assert!(n.matches("10.1.2.3", 443));
        assert!(n.matches("192.168.1.7", 443));
        assert!(!n.matches("11.0.0.1", 443));
        assert!(!n.matches("192.168.1.8", 443));
        assert!(!n.matches("10.example", 443));

        assert!(NoProxy::parse("*").matches("anything.example", 1));
        assert!(NoProxy::parse("a.com, *").matches("anything.example", 1));

        let n = NoProxy::parse("fd00::/8 [2001:db8::1] ::2");
        assert!(n.matches("[fd12::1]", 443));
        assert!(n.matches("[2001:db8::1]", 443));
        assert!(n.matches("[::2]", 443));
        assert!(!n.matches("[2001:db8::2]", 443));

        let n = NoProxy::parse("a.com:8443,[::3]:9");
        assert!(n.matches("a.com", 8443));
        assert!(!n.matches("a.com", 443));
        assert!(n.matches("[::3]", 9));
        assert!(!n.matches("[::3]", 10));

        // Entries that are none of the forms match nothing.
        let n = NoProxy::parse("10.0.0.0/33, a/b, :, [x]");
        assert!(n.entries.is_empty(), "{n:?}");
        assert!(!n.matches("10.0.0.1", 443));
        assert!(NoProxy::parse("").is_empty());
        assert!(NoProxy::parse(" , ,").is_empty());
    }

    #[test]
    fn cidr_edges() {
        let n = NoProxy::parse("0.0.0.0/0");
        assert!(n.matches("8.8.8.8", 443));
        assert!(!n.matches("[::8]", 443));
        let n = NoProxy::parse("10.0.0.0/8");
        assert!(n.matches("[::ffff:10.0.0.1]", 443));
        let n = NoProxy::parse("::/0");
        assert!(n.matches("[2001:db8::1]", 443));
    }

    #[test]
    fn the_debug_form_shows_no_value() {
        let v = vars(&[("HTTPS_PROXY", "http://u:hunter2@p:1")]);
        assert!(!format!("{v:?}").contains("hunter2"));
        let p = v.resolve().unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
