//! The GitHub REST client for GitHub Enterprise Cloud: license sync status
//! and consumed licenses (BRIEF §3). Read-only; GitHub has no API to upload
//! server usage.
//!
//! Sends the documented `Accept` and `X-GitHub-Api-Version` headers, follows
//! `Link: rel="next"` pagination, retries 5xx and rate limits (honouring
//! `Retry-After` and `x-ratelimit-reset`), and turns 401/403/404 into
//! distinct errors. The token is never logged or put in an error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::bundle::verify::Clock;
use crate::error::{Code, Error, Result};
use crate::net::{self, Failure, Origin, Trust};

/// The REST API base of github.com.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// Sent as `X-GitHub-Api-Version`: the REST API version the parsing follows.
const API_VERSION: &str = "2022-11-28";
/// Longest wait for a rate limit to reset before giving up.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// Read the token: `--token-file` (or the config's `token_file`), else
/// `GH_TOKEN`, else `GITHUB_TOKEN`.
pub fn token(file: Option<&std::path::Path>) -> Result<Zeroizing<String>> {
    if let Some(f) = file {
        let t = crate::keys::read_passphrase_file(f)?;
        if t.trim().is_empty() {
            return Err(Error::new(
                Code::CloudToken,
                format!("{} is empty", f.display()),
            ));
        }
        return Ok(Zeroizing::new(t.trim().to_string()));
    }
    for v in ["GH_TOKEN", "GITHUB_TOKEN"] {
        if let Ok(t) = std::env::var(v) {
            if !t.trim().is_empty() {
                return Ok(Zeroizing::new(t.trim().to_string()));
            }
        }
    }
    Err(Error::new(
        Code::CloudToken,
        "no GitHub token: set GH_TOKEN or GITHUB_TOKEN, or pass --token-file",
    ))
}

/// The API base for a GitHub host, as `gh` derives it from `GH_HOST`:
/// `github.com` → `https://api.github.com`, `NAME.ghe.com` →
/// `https://api.NAME.ghe.com`. The license endpoints exist only on GitHub
/// Enterprise Cloud, so any other host is refused (use `--api-url`).
pub fn api_url_for_host(host: &str) -> Result<String> {
    let h = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if h == "github.com" || h == "api.github.com" {
        return Ok(DEFAULT_API_URL.into());
    }
    let sub = h
        .strip_suffix(".ghe.com")
        .map(|s| s.strip_prefix("api.").unwrap_or(s));
    match sub {
        Some(name) if label_ok(name) => Ok(format!("https://api.{name}.ghe.com")),
        _ => Err(Error::new(
            Code::Args,
            format!("host {host:?} is not github.com or NAME.ghe.com"),
        )
        .with_hint(
            "the license endpoints exist only on GitHub Enterprise Cloud: give --host github.com or --host NAME.ghe.com (a bare host name, as in GH_HOST), or the API base with --api-url",
        )),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn flag(v: Option<&Value>) -> Option<bool> {
    v?.as_bool()
}

fn texts(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| text(Some(x))).collect())
        .unwrap_or_default()
}

/// One server instance's last sync, as GitHub reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInstance {
    /// The GHES server id (the usage file's `instance.server_id`), never
    /// blank.
    pub server_id: String,
    /// The host name GitHub has for the server; `None` when absent or empty.
    pub hostname: Option<String>,
    /// The last upload; `None` when GitHub reports none.
    pub last_sync: Option<LastSync>,
}

/// The last usage upload of a server, as GitHub reports it. Each field is
/// `None` when absent or empty.
#[derive(Debug, Clone, Serialize)]
pub struct LastSync {
    /// When, as GitHub wrote it (RFC 3339 or Ruby's `… UTC` form).
    pub date: Option<String>,
    /// GitHub's word for the outcome (`success`, …).
    pub status: Option<String>,
    /// GitHub's error message for a failed upload.
    pub error: Option<String>,
}

/// `license-sync-status`, read leniently: items without a `server_id` are
/// skipped (and named in `warnings`), unknown fields and nulls are fine.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncStatus {
    /// The usable items, in response order, server ids unique.
    pub server_instances: Vec<ServerInstance>,
    /// One line per item skipped, naming it and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

fn shape_error(endpoint: &str, what: &str) -> Error {
    Error::new(
        Code::CloudResponse,
        format!("{endpoint}: {what}, so nothing can be concluded from it"),
    )
}

impl SyncStatus {
    /// Read a response body. The one key the endpoint always returns,
    /// `server_instances` (an array), must be there.
    fn from_json(v: &Value) -> Result<SyncStatus> {
        const EP: &str = "license-sync-status";
        let obj = v
            .as_object()
            .ok_or_else(|| shape_error(EP, "the response is not a JSON object"))?;
        let items = match obj.get("server_instances") {
            Some(Value::Array(a)) => a,
            Some(_) => return Err(shape_error(EP, "\"server_instances\" is not an array")),
            None => {
                return Err(shape_error(
                    EP,
                    "the response has no \"server_instances\" array",
                ))
            }
        };
        let mut out = SyncStatus::default();
        for (i, item) in items.iter().enumerate() {
            let Some(o) = item.as_object() else {
                out.warnings
                    .push(format!("{EP}: item {i} is not an object; skipped"));
                continue;
            };
            let Some(id) = text(o.get("server_id")).filter(|s| !s.trim().is_empty()) else {
                out.warnings.push(format!(
                    "{EP}: item {i} ({}) has no server_id; skipped",
                    text(o.get("hostname")).unwrap_or_else(|| "no hostname".into())
                ));
                continue;
            };
            if out.server_instances.iter().any(|s| s.server_id == id) {
                out.warnings.push(format!(
                    "{EP}: item {i} repeats server_id {id}; only the first is used"
                ));
                continue;
            }
            let last_sync = o
                .get("last_sync")
                .and_then(Value::as_object)
                .map(|l| LastSync {
                    date: text(l.get("date")).filter(|s| !s.is_empty()),
                    status: text(l.get("status")).filter(|s| !s.is_empty()),
                    error: text(l.get("error")).filter(|s| !s.is_empty()),
                });
            out.server_instances.push(ServerInstance {
                server_id: id,
                hostname: text(o.get("hostname")).filter(|s| !s.is_empty()),
                last_sync,
            });
        }
        Ok(out)
    }
}

/// A user in `consumed-licenses`, read leniently (the schema declares no
/// required fields, several are nullable, and the official example has
/// fields of other types than the schema says).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LicensedUser {
    /// The user's login on GitHub Enterprise Cloud, if matched to one.
    pub github_com_login: Option<String>,
    /// Whether the user has a Cloud account (`None`: absent, null or not a boolean).
    pub github_com_user: Option<bool>,
    /// Whether the user has a server account (`None`: absent, null or not a boolean).
    pub enterprise_server_user: Option<bool>,
    /// The server accounts, each `HOSTNAME:USER_ID`.
    pub enterprise_server_user_ids: Vec<String>,
    /// The emails of the server accounts (GHES primary emails).
    pub enterprise_server_emails: Vec<String>,
    /// The kind of license the user consumes (`enterprise`, …); `None`
    /// when absent or empty.
    pub license_type: Option<String>,
    /// How many accounts (Cloud and server) GitHub counts for the user.
    pub total_user_accounts: Option<u64>,
}

impl LicensedUser {
    /// Read one item of `users`; `None` if it is not a JSON object.
    fn from_json(v: &Value) -> Option<LicensedUser> {
        let o = v.as_object()?;
        Some(LicensedUser {
            github_com_login: text(o.get("github_com_login")),
            github_com_user: flag(o.get("github_com_user")),
            enterprise_server_user: flag(o.get("enterprise_server_user")),
            enterprise_server_user_ids: texts(o.get("enterprise_server_user_ids")),
            enterprise_server_emails: texts(o.get("enterprise_server_emails")),
            license_type: text(o.get("license_type")).filter(|s| !s.is_empty()),
            total_user_accounts: o.get("total_user_accounts").and_then(Value::as_u64),
        })
    }

    /// Holds a server account: flagged so, or listed with server user ids
    /// (`enterprise_server_user` is nullable).
    fn is_server_user(&self) -> bool {
        self.enterprise_server_user == Some(true) || !self.enterprise_server_user_ids.is_empty()
    }

    /// Holds a Cloud account.
    fn is_cloud_user(&self) -> bool {
        self.github_com_user == Some(true)
            || self
                .github_com_login
                .as_deref()
                .is_some_and(|l| !l.trim().is_empty())
    }

    /// A server account that matched no Cloud account: it consumes a seat of
    /// its own (the primary-email mismatch).
    pub fn is_unmatched_server_user(&self) -> bool {
        self.is_server_user() && !self.is_cloud_user()
    }
}

/// `consumed-licenses`, every page read: the seat counts of the first page
/// and the users of all pages.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConsumedLicenses {
    /// Seats in use, as GitHub counts them.
    pub total_seats_consumed: u64,
    /// Seats the enterprise bought.
    pub total_seats_purchased: u64,
    /// The users that hold a license, in response order.
    pub users: Vec<LicensedUser>,
    /// One line per item skipped, naming it and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl ConsumedLicenses {
    /// Read one page. The keys the endpoint always returns
    /// (`total_seats_consumed`, `total_seats_purchased`, `users`) must be
    /// there with their types.
    fn from_json(v: &Value) -> Result<ConsumedLicenses> {
        const EP: &str = "consumed-licenses";
        let obj = v
            .as_object()
            .ok_or_else(|| shape_error(EP, "the response is not a JSON object"))?;
        let count = |k: &str| -> Result<u64> {
            match obj.get(k) {
                Some(n) => n
                    .as_u64()
                    .ok_or_else(|| shape_error(EP, &format!("\"{k}\" is not a count"))),
                None => Err(shape_error(EP, &format!("the response has no \"{k}\""))),
            }
        };
        let total_seats_consumed = count("total_seats_consumed")?;
        let total_seats_purchased = count("total_seats_purchased")?;
        let items = match obj.get("users") {
            Some(Value::Array(a)) => a,
            Some(_) => return Err(shape_error(EP, "\"users\" is not an array")),
            None => return Err(shape_error(EP, "the response has no \"users\" array")),
        };
        let mut out = ConsumedLicenses {
            total_seats_consumed,
            total_seats_purchased,
            ..Default::default()
        };
        for (i, u) in items.iter().enumerate() {
            match LicensedUser::from_json(u) {
                Some(u) => out.users.push(u),
                None => out
                    .warnings
                    .push(format!("{EP}: user {i} is not an object; skipped")),
            }
        }
        Ok(out)
    }
}

/// A read-only client of GitHub's REST API, holding the token.
pub struct Client {
    agent: net::Agent,
    base: String,
    origin: Origin,
    token: Zeroizing<String>,
    /// The clock a rate limit's reset time is measured against.
    clock: Clock,
}

/// The URL of `rel="next"` in a `Link` header.
fn next_link(link: &str) -> Option<String> {
    for part in link.split(',') {
        let mut segs = part.split(';');
        let url = segs.next()?.trim();
        if segs.any(|s| s.trim().replace(' ', "") == "rel=\"next\"") {
            return url.strip_prefix('<')?.strip_suffix('>').map(String::from);
        }
    }
    None
}

/// Redirects followed (within the API's origin) before giving up.
const MAX_REDIRECTS: usize = 5;

/// What to do after one request.
enum Step {
    /// The JSON body and the next page's URL.
    Done(Value, Option<String>),
    /// Request this URL (a redirect's target, on the API's origin) next.
    Follow(String),
    /// Wait this long, then request the same URL again.
    Retry(Duration),
}

/// What a request that got no response means: a transient failure is
/// retried after the returned pause while `attempt` is within `BACKOFF`;
/// TLS and proxy failures, and the last transient one, are errors.
fn transport_failure(url: &str, failure: Failure, attempt: usize) -> Result<Duration> {
    match failure {
        Failure::Tls(m) => Err(Error::new(Code::CloudTls, format!("GET {url}: {m}"))),
        Failure::Proxy(m) => Err(
            Error::new(Code::CloudUnavailable, format!("GET {url}: {m}"))
                .with_hint(net::PROXY_HINT),
        ),
        Failure::Transient(m) => BACKOFF
            .get(attempt)
            .copied()
            .ok_or_else(|| Error::new(Code::CloudUnavailable, format!("GET {url}: {m}"))),
    }
}

/// What `Client::get` uses of a response: the status, the headers it acts
/// on, and the body.
struct Reply {
    status: u16,
    /// `Link` (pagination).
    link: Option<String>,
    /// `Location` (redirects).
    location: Option<String>,
    /// `Retry-After`, in seconds.
    retry_after: Option<u64>,
    /// `x-ratelimit-remaining`.
    remaining: Option<String>,
    /// `x-ratelimit-reset`, in seconds since the Unix epoch.
    reset: Option<u64>,
    /// `x-accepted-oauth-scopes`: the scopes the endpoint takes.
    accepted_scopes: Option<String>,
    /// `x-oauth-scopes`: the scopes the token has.
    token_scopes: Option<String>,
    /// `x-accepted-github-permissions`: the fine-grained permissions the
    /// endpoint takes.
    accepted_perms: Option<String>,
    /// At most `MAX_BODY` bytes; empty if unreadable.
    body: String,
    /// The body's `message` field, or empty.
    message: String,
}

impl Reply {
    /// Keep what `get` acts on of `resp`, reading its body.
    fn read(mut resp: ureq::http::Response<ureq::Body>) -> Reply {
        let status = resp.status().as_u16();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let link = header("link");
        let location = header("location");
        let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        let remaining = header("x-ratelimit-remaining");
        let reset = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<u64>().ok());
        let accepted_scopes = header("x-accepted-oauth-scopes");
        let token_scopes = header("x-oauth-scopes");
        let accepted_perms = header("x-accepted-github-permissions");
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
            .unwrap_or_default();
        Reply {
            status,
            link,
            location,
            retry_after,
            remaining,
            reset,
            accepted_scopes,
            token_scopes,
            accepted_perms,
            body,
            message,
        }
    }

    /// A 429, or a 403 that says the rate limit is exhausted.
    fn rate_limited(&self) -> bool {
        self.status == 429
            || (self.status == 403
                && (self.remaining.as_deref() == Some("0") || self.retry_after.is_some()))
    }

    /// How long GitHub asks to wait: `Retry-After`, else until the reset
    /// time plus a second, else a minute.
    fn rate_limit_wait(&self, now: SystemTime) -> Duration {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        match (self.retry_after, self.reset) {
            (Some(s), _) => Duration::from_secs(s),
            (None, Some(r)) => Duration::from_secs(r.saturating_sub(now) + 1),
            (None, None) => Duration::from_secs(60),
        }
    }

    /// The error for a 401, 403 or 404 to `GET url`.
    fn refusal(self, url: &str) -> Error {
        let message = self.message;
        match self.status {
            401 => Error::new(
                Code::CloudUnauthorized,
                format!("GitHub refused the token (401 {message})"),
            ),
            403 => {
                let has = self.token_scopes.as_deref().filter(|t| !t.is_empty());
                let need = self
                    .accepted_scopes
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        let has = has.unwrap_or("none");
                        format!("the token needs scope {s} (it has: {has})")
                    })
                    .or(self
                        .accepted_perms
                        .map(|p| format!("the token needs permission {p}")))
                    .unwrap_or_else(|| {
                        "the token lacks a scope (classic tokens need read:enterprise) \
                         or you are not an enterprise admin"
                            .into()
                    });
                Error::new(
                    Code::CloudForbidden,
                    format!("GitHub answered 403 {message}: {need}"),
                )
            }
            _ => Error::new(
                Code::CloudNotFound,
                format!(
                    "GitHub answered 404 for {url}: \
                     no such enterprise, or this token cannot see it"
                ),
            ),
        }
    }
}

impl Client {
    /// A client for the API at `base` (https, or http to loopback). The
    /// token is only ever sent to `base`'s origin.
    /// A client for the API at `base`; `clock` tells how long a rate
    /// limit's reset time is from now.
    pub fn new(
        base: &str,
        token: Zeroizing<String>,
        trust: &Trust,
        proxies: &net::Proxies,
        clock: Clock,
    ) -> Result<Client> {
        let base = base.trim_end_matches('/').to_string();
        let origin = net::check_url(&base, "--api-url")?;
        Ok(Client {
            agent: net::agent(trust, proxies, Duration::from_secs(60)),
            base,
            origin,
            token,
            clock,
        })
    }

    /// A URL the token may go to: same origin as the base, or an error
    /// (nothing is sent).
    fn same_origin(&self, url: &str, why: &str) -> Result<String> {
        let u = net::resolve(&self.origin, url).ok_or_else(|| {
            Error::new(
                Code::CloudOrigin,
                format!("{why} {url:?} is not an absolute or root-relative URL; not followed"),
            )
        })?;
        match net::origin(&u) {
            Some(o) if o == self.origin => Ok(u),
            _ => Err(Error::new(
                Code::CloudOrigin,
                format!(
                    "{why} points to {u}, outside {} (the API's origin); not followed, the token was not sent there",
                    self.origin
                ),
            )),
        }
    }

    /// GET a URL (absolute, or a path under the base), with retries.
    /// Returns the JSON body and the next page's URL (checked to be on the
    /// API's origin).
    fn get(&self, url: &str) -> Result<(Value, Option<String>)> {
        let mut url = if url.starts_with("http") {
            self.same_origin(url, "the URL")?
        } else {
            format!("{}{url}", self.base)
        };
        let mut attempt = 0;
        let mut redirects = 0;
        loop {
            let step = match self.send(&url) {
                Ok(resp) => self.judge(&url, Reply::read(resp), attempt, redirects)?,
                Err(e) => Step::Retry(transport_failure(
                    &url,
                    self.agent.classify(&url, &e),
                    attempt,
                )?),
            };
            match step {
                Step::Done(v, next) => return Ok((v, next)),
                Step::Follow(next) => {
                    url = next;
                    redirects += 1;
                }
                Step::Retry(wait) => {
                    std::thread::sleep(wait);
                    attempt += 1;
                }
            }
        }
    }

    /// One GET with the API's headers and the token.
    fn send(
        &self,
        url: &str,
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        self.agent
            .get(url)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header("Authorization", format!("Bearer {}", self.token.as_str()))
            .call()
    }

    /// What to do with the response to `GET url`, after `attempt` retries
    /// and `redirects` redirects: 2xx is done, a redirect is followed within
    /// the origin, a rate limit or a 5xx is waited out a few times, and
    /// anything else is its error.
    fn judge(&self, url: &str, r: Reply, attempt: usize, redirects: usize) -> Result<Step> {
        let status = r.status;
        match status {
            200..=299 => {
                let v = serde_json::from_str(&r.body).map_err(|e| {
                    Error::new(
                        Code::CloudResponse,
                        format!("GET {url}: the response is not JSON: {e}"),
                    )
                })?;
                let next = match r.link.as_deref().and_then(next_link) {
                    Some(n) => {
                        Some(self.same_origin(&n, "the pagination link (Link: rel=\"next\")")?)
                    }
                    None => None,
                };
                Ok(Step::Done(v, next))
            }
            301 | 302 | 303 | 307 | 308 => {
                let Some(loc) = r.location else {
                    return Err(Error::new(
                        Code::CloudResponse,
                        format!("GET {url}: HTTP {status} without a Location"),
                    ));
                };
                if redirects >= MAX_REDIRECTS {
                    return Err(Error::new(
                        Code::CloudResponse,
                        format!("GET {url}: more than {MAX_REDIRECTS} redirects"),
                    ));
                }
                let next = self.same_origin(&loc, &format!("the redirect (HTTP {status})"))?;
                Ok(Step::Follow(next))
            }
            _ if r.rate_limited() => {
                let wait = r.rate_limit_wait(self.clock.now());
                if wait > MAX_RATE_LIMIT_WAIT || attempt >= 3 {
                    return Err(Error::new(
                        Code::CloudRateLimited,
                        format!(
                            "GitHub's rate limit is exhausted for {}s more ({})",
                            wait.as_secs(),
                            r.message
                        ),
                    ));
                }
                Ok(Step::Retry(wait))
            }
            401 | 403 | 404 => Err(r.refusal(url)),
            500..=599 if attempt < BACKOFF.len() => Ok(Step::Retry(BACKOFF[attempt])),
            _ => Err(Error::new(
                Code::CloudUnavailable,
                format!("GET {url}: HTTP {status} {}", r.message),
            )),
        }
    }

    fn enterprise_path(enterprise: &str, what: &str) -> Result<String> {
        if enterprise.is_empty()
            || !enterprise
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::new(
                Code::Args,
                format!("{enterprise:?} is not an enterprise slug"),
            ));
        }
        Ok(format!("/enterprises/{enterprise}/{what}"))
    }

    /// `GET /enterprises/{enterprise}/license-sync-status`.
    pub fn license_sync_status(&self, enterprise: &str) -> Result<SyncStatus> {
        let (v, _) = self.get(&Self::enterprise_path(enterprise, "license-sync-status")?)?;
        SyncStatus::from_json(&v)
    }

    /// `GET /enterprises/{enterprise}/consumed-licenses`, every page.
    pub fn consumed_licenses(&self, enterprise: &str) -> Result<ConsumedLicenses> {
        let mut url = format!(
            "{}?per_page=100",
            Self::enterprise_path(enterprise, "consumed-licenses")?
        );
        let mut all: Option<ConsumedLicenses> = None;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let (v, next) = self.get(&url)?;
            let page = ConsumedLicenses::from_json(&v)?;
            match all.as_mut() {
                None => all = Some(page),
                Some(a) => {
                    a.users.extend(page.users);
                    a.warnings.extend(page.warnings);
                }
            }
            seen.insert(url.clone());
            match next {
                Some(n) if seen.contains(&n) => {
                    return Err(Error::new(
                        Code::CloudResponse,
                        format!("consumed-licenses: the pagination links loop back to {n}"),
                    ))
                }
                Some(n) => url = n,
                None => return all.ok_or_else(|| shape_error("consumed-licenses", "no page")),
            }
        }
        Err(Error::new(
            Code::CloudResponse,
            format!("consumed-licenses: more than {MAX_PAGES} pages"),
        ))
    }
}

/// Pages read from consumed-licenses before giving up (100 users a page).
const MAX_PAGES: usize = 10_000;
/// Largest response body read (GitHub's pages are far smaller).
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// Parse GitHub's sync dates. The schema gives no format; accepted:
/// RFC 3339 (`T` or a space, fractions, `Z` or an offset) and the
/// `YYYY-MM-DD HH:MM:SS UTC` / `… +0000` forms Ruby prints. Anything else is
/// `None`, and callers report it.
pub(crate) fn parse_sync_date(s: &str) -> Option<SystemTime> {
    let t = s.trim();
    if let Some(base) = t
        .strip_suffix(" UTC")
        .or_else(|| t.strip_suffix(" GMT"))
        .or_else(|| t.strip_suffix(" +0000"))
        .or_else(|| t.strip_suffix(" -0000"))
    {
        return strict_rfc3339(&format!("{}Z", base.trim()));
    }
    strict_rfc3339(t)
}

/// RFC 3339 with a zone (`Z` or an offset): a time without one would
/// depend on the reader's zone. `T` or a space between date and time.
fn strict_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
        return None;
    }
    let has_zone = s.ends_with('Z')
        || s.ends_with('z')
        || (s.len() > 6 && matches!(b[b.len() - 6], b'+' | b'-') && b[b.len() - 3] == b':');
    if !has_zone {
        return None;
    }
    parse_github_time(s)
}

/// Parse GitHub's timestamps (RFC 3339, possibly with fractions or an offset).
fn parse_github_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok().or_else(|| {
        // humantime does not take offsets: normalise "+HH:MM" to UTC.
        let (base, sign, off) = if let Some(i) = s.rfind('+').filter(|i| *i > 10) {
            (&s[..i], 1i64, &s[i + 1..])
        } else if let Some(i) = s.rfind('-').filter(|i| *i > 10) {
            (&s[..i], -1i64, &s[i + 1..])
        } else {
            return None;
        };
        let (h, m) = off.split_once(':')?;
        let secs = sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60);
        let t = humantime::parse_rfc3339_weak(base).ok()?;
        if secs >= 0 {
            t.checked_sub(Duration::from_secs(secs as u64))
        } else {
            t.checked_add(Duration::from_secs((-secs) as u64))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header() {
        let l = r#"<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=5>; rel="last""#;
        assert_eq!(
            next_link(l).as_deref(),
            Some("https://api.github.com/x?page=2")
        );
        assert_eq!(next_link(r#"<https://a/x?page=1>; rel="prev""#), None);
    }

    #[test]
    fn times() {
        let a = parse_github_time("2026-11-20T10:00:00Z").unwrap();
        assert_eq!(parse_github_time("2026-11-20T12:00:00+02:00").unwrap(), a);
        assert_eq!(parse_github_time("2026-11-20T05:00:00-05:00").unwrap(), a);
        assert!(parse_github_time("2026-11-20T10:00:00.123Z").is_some());
        assert!(parse_github_time("yesterday").is_none());
    }

    #[test]
    fn sync_dates() {
        let a = parse_sync_date("2026-11-28T10:58:40Z").unwrap();
        assert_eq!(parse_sync_date("2026-11-28 10:58:40 UTC"), Some(a));
        assert_eq!(parse_sync_date("2026-11-28 10:58:40 +0000"), Some(a));
        assert_eq!(parse_sync_date("2026-11-28 10:58:40Z"), Some(a));
        assert_eq!(parse_sync_date("2026-11-28T11:58:40+01:00"), Some(a));
        assert!(parse_sync_date("2026-11-28T10:58:40.5Z").is_some());
        // No zone: the time would depend on the reader's; reported instead.
        assert_eq!(parse_sync_date("2026-11-28T10:58:40"), None);
        for bad in [
            "",
            "28/11/2026",
            "1764327520",
            "2026-11-28",
            "Nov 28 2026 10:58",
            "2026-13-40T00:00:00Z",
        ] {
            assert_eq!(parse_sync_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn hosts_map_like_gh() {
        assert_eq!(
            api_url_for_host("github.com").unwrap(),
            "https://api.github.com"
        );
        assert_eq!(
            api_url_for_host("GitHub.com.").unwrap(),
            "https://api.github.com"
        );
        assert_eq!(
            api_url_for_host("octo.ghe.com").unwrap(),
            "https://api.octo.ghe.com"
        );
        assert_eq!(
            api_url_for_host("api.octo.ghe.com").unwrap(),
            "https://api.octo.ghe.com"
        );
        for bad in [
            "ghes.corp.example",
            "https://github.com",
            "a.b.ghe.com",
            ".ghe.com",
            "ghe.com",
            "x_y.ghe.com",
            "evil.com/.ghe.com",
        ] {
            assert_eq!(
                api_url_for_host(bad).err().unwrap().code,
                Code::Args,
                "{bad}"
            );
        }
    }

    fn v(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn sync_status_shapes() {
        for bad in [
            "{}",
            "[]",
            "null",
            r#"{"server_instances": null}"#,
            r#"{"server_instances": {"type": "array", "items": {}}}"#,
            r#"{"properties": {"server_instances": {"type": "array"}}}"#,
        ] {
            assert_eq!(
                SyncStatus::from_json(&v(bad)).err().unwrap().code,
                Code::CloudResponse,
                "{bad}"
            );
        }
        let s = SyncStatus::from_json(&v(r#"{"server_instances": [
            {"server_id": "a", "hostname": null, "last_sync": null, "extra": 1},
            {"hostname": "nameless.example"},
            {"server_id": "", "hostname": "empty.example"},
            7,
            {"server_id": "b", "last_sync": {"date": "2026-11-28 10:58:40 UTC", "status": "success", "error": null}},
            {"server_id": "c", "last_sync": {"status": "failed", "error": "bad file"}},
            {"server_id": "a", "last_sync": {"status": "failed"}}
        ], "unknown": true}"#)).unwrap();
        let ids: Vec<&str> = s
            .server_instances
            .iter()
            .map(|i| i.server_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(s.warnings.len(), 4, "{:?}", s.warnings);
        assert!(s.warnings[3].contains("repeats server_id a"));
        assert!(s.warnings[0].contains("nameless.example"));
        assert!(s.server_instances[0].last_sync.is_none());
        let b = s.server_instances[1].last_sync.as_ref().unwrap();
        assert_eq!(b.date.as_deref(), Some("2026-11-28 10:58:40 UTC"));
        assert_eq!(b.error, None);
        assert_eq!(s.server_instances[2].last_sync.as_ref().unwrap().date, None);
    }

    #[test]
    fn consumed_licenses_shapes() {
        for bad in [
            "{}",
            r#"{"total_seats_consumed": 1, "total_seats_purchased": 2}"#,
            r#"{"total_seats_consumed": 1, "users": []}"#,
            r#"{"total_seats_consumed": "1", "total_seats_purchased": 2, "users": []}"#,
            r#"{"total_seats_consumed": 1, "total_seats_purchased": 2, "users": {}}"#,
        ] {
            assert_eq!(
                ConsumedLicenses::from_json(&v(bad)).err().unwrap().code,
                Code::CloudResponse,
                "{bad}"
            );
        }
        let c = ConsumedLicenses::from_json(&v(
            r#"{"total_seats_consumed": 0, "total_seats_purchased": 0, "users": []}"#,
        ))
        .unwrap();
        assert!(c.users.is_empty());
    }

    #[test]
    fn unmatched_users() {
        let u = |s: &str| LicensedUser::from_json(&v(s)).unwrap();
        assert!(u(r#"{"github_com_login":"","github_com_user":false,"enterprise_server_user":true,"enterprise_server_user_ids":["ghes.example.com:12"],"enterprise_server_emails":["a@corp.example"]}"#).is_unmatched_server_user());
        assert!(!u(
            r#"{"github_com_login":"mona","github_com_user":true,"enterprise_server_user":true}"#
        )
        .is_unmatched_server_user());
        // enterprise_server_user is nullable: the server ids still say so.
        assert!(u(r#"{"github_com_login":null,"github_com_user":null,"enterprise_server_user":null,"enterprise_server_user_ids":["h:1"]}"#).is_unmatched_server_user());
        // A Cloud-only user is no server user.
        assert!(!u(r#"{"github_com_login":"cloudonly","github_com_user":true,"enterprise_server_user":false,"enterprise_server_user_ids":[]}"#).is_unmatched_server_user());
        // Fields of unexpected types do not fail the user.
        let odd = u(
            r#"{"github_com_two_factor_auth":"","enterprise_server_user_ids":["h:2", 5, null],"total_user_accounts":"x"}"#,
        );
        assert_eq!(odd.enterprise_server_user_ids, ["h:2", "5"]);
        assert_eq!(odd.total_user_accounts, None);
    }
}
