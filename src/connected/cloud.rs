//! The GitHub REST client for GitHub Enterprise Cloud: license sync status
//! and consumed licenses (BRIEF §3). Read-only; GitHub has no API to upload
//! server usage.
//!
//! Sends the documented `Accept` and `X-GitHub-Api-Version` headers, follows
//! `Link: rel="next"` pagination, retries 5xx and rate limits (honouring
//! `Retry-After` and `x-ratelimit-reset`), and turns 401/403/404 into
//! distinct errors. The token is never logged or put in an error.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod body;

use body::{BodyFault, Loose, ParseError};

use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::base::error::{Code, Error, Result};
use crate::net::{self, Failure, Origin, Trust};
use crate::verify::Clock;

mod link;
mod model;
mod reply;
use link::*;
pub use model::*;
use reply::*;

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
/// `GH_TOKEN`, else `GITHUB_TOKEN`. A UTF-8 byte-order mark and line ends
/// (CR, LF, spaces around it) are removed, as an editor on Windows leaves
/// them; anything else that cannot go into an HTTP header (a space or a
/// control character inside, a UTF-16 file) is refused naming the file or
/// variable, never sent (it would fail as a network error). `vars` are
/// `GH_TOKEN` and `GITHUB_TOKEN` with their values, in that order, as
/// `config::Settings::secret_var` read them.
pub fn token(
    file: Option<&std::path::Path>,
    vars: &[(&str, Option<&[u8]>)],
) -> Result<Zeroizing<String>> {
    if let Some(f) = file {
        use std::io::Read;
        let mut raw = Zeroizing::new(Vec::new());
        std::fs::File::open(f)
            .and_then(|h| h.take(MAX_TOKEN_FILE).read_to_end(&mut raw))
            .map_err(|e| Error::io_read(f, e))?;
        let name = f.display().to_string();
        return clean_token(&raw, &name);
    }
    for &(v, t) in vars {
        if let Some(t) = t {
            let raw = Zeroizing::new(t.to_vec());
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return clean_token(&raw, v);
        }
    }
    Err(Error::new(
        Code::CloudToken,
        "no GitHub token: set GH_TOKEN or GITHUB_TOKEN, or pass --token-file",
    ))
}

/// Bytes read from a token file at most (tokens are under 300 bytes).
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// The token in `raw` (from `source`, a file or a variable): the first line,
/// without a UTF-8 BOM and surrounding whitespace; visible ASCII only.
fn clean_token(raw: &[u8], source: &str) -> Result<Zeroizing<String>> {
    let refuse = |why: &str| {
        Error::new(Code::CloudToken, format!("the token in {source} {why}")).with_hint(
            "put the token alone on the first line, as plain ASCII (UTF-8 without a byte-order mark is fine), and nothing else",
        )
    };
    if raw.starts_with(&[0xFF, 0xFE]) || raw.starts_with(&[0xFE, 0xFF]) {
        return Err(refuse(
            "is UTF-16 text (a byte-order mark FF FE or FE FF); save the file as UTF-8 or ASCII",
        ));
    }
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(raw);
    // Only the first line counts (as for passphrase files); CRLF or LF.
    let line = raw.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let t = line.trim_ascii();
    if t.is_empty() {
        return Err(Error::new(
            Code::CloudToken,
            format!("the token in {source} is empty (its first line is blank)"),
        ));
    }
    if let Some(i) = t.iter().position(|b| !(0x21..=0x7E).contains(b)) {
        let what = match t[i] {
            b' ' | b'\t' => "a space or tab",
            b if b < 0x20 || b == 0x7F => "a control character",
            _ => "a non-ASCII character",
        };
        return Err(refuse(&format!(
            "has {what} at byte {} of {}; a GitHub token is visible ASCII only",
            i + 1,
            t.len()
        )));
    }
    // Checked above: ASCII only.
    Ok(Zeroizing::new(String::from_utf8_lossy(t).into_owned()))
}

/// Text from GitHub made safe to show: every control character (C0,
/// including newline and tab, DEL and C1) and every bidirectional override
/// or isolate (U+202A–U+202E, U+2066–U+2069) becomes a visible escape
/// (`\n`, `\u{1b}`), so that a string GitHub returns cannot move the
/// cursor, recolour or reorder a terminal or a page. Applied where GitHub's
/// answers are read, so the ledger, the JSON output, the terminal and the
/// report all show the same text.
pub fn sanitize(s: &str) -> String {
    let bad = |c: char| {
        c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    if !s.chars().any(bad) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if bad(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
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

/// How long GitHub may take: each request (`http_timeout`: connecting,
/// the answer and its whole body), and each request with its retries and
/// the pauses between them (`http_deadline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The most one request may take, body included.
    pub timeout: Duration,
    /// The most one request may take with its retries and pauses.
    pub deadline: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
        }
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
    timing: Timing,
}

impl Client {
    /// A client for the API at `base` (https, or http to loopback). The
    /// token is only ever sent to `base`'s origin. `clock` tells how long a
    /// rate limit's reset time is from now.
    pub fn new(
        base: &str,
        token: Zeroizing<String>,
        trust: &Trust,
        proxies: &net::Proxies,
        clock: Clock,
    ) -> Result<Client> {
        let base = base.trim_end_matches('/').to_string();
        let origin = net::check_url(&base, "--api-url")?;
        let timing = Timing::default();
        Ok(Client {
            agent: net::agent(trust, proxies, timing.timeout),
            base,
            origin,
            token,
            clock,
            timing,
        })
    }

    /// The same client with other time limits.
    pub fn with_timing(mut self, timing: Timing) -> Client {
        self.timing = timing;
        self
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

    /// GET a URL (absolute, or a path under the base), with retries, and
    /// parse its body with `parse` as it streams in. Returns what `parse`
    /// gave and the next page's URL (checked to be on the API's origin).
    /// Each request may take `timing.timeout`; with its retries and pauses
    /// `timing.deadline`: a pause that would end past it is not taken.
    fn get<T>(
        &self,
        url: &str,
        endpoint: &str,
        parse: &mut dyn FnMut(&mut dyn std::io::Read) -> std::result::Result<T, ParseError>,
    ) -> Result<(T, Option<String>)> {
        let mut url = if url.starts_with("http") {
            self.same_origin(url, "the URL")?
        } else {
            format!("{}{url}", self.base)
        };
        let deadline = Instant::now() + self.timing.deadline;
        let mut attempt = 0;
        let mut redirects = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let step = match self.send(&url, self.timing.timeout.min(left)) {
                Ok(resp) => self.judge(&url, endpoint, resp, attempt, redirects, parse)?,
                Err(e) => Step::Retry(
                    BACKOFF[attempt.min(2)],
                    transport_failure(
                        &url,
                        &e,
                        self.agent.classify(&url, &e),
                        attempt + 1,
                        self.timing,
                    )?,
                ),
            };
            match step {
                Step::Done(v, next) => return Ok((v, next)),
                Step::Follow(next) => {
                    url = next;
                    redirects += 1;
                }
                Step::Retry(wait, last) => {
                    if attempt >= BACKOFF.len() || Instant::now() + wait >= deadline {
                        return Err(last);
                    }
                    std::thread::sleep(wait);
                    attempt += 1;
                }
            }
        }
    }

    /// One GET with the API's headers and the token, within `timeout`.
    fn send(
        &self,
        url: &str,
        timeout: Duration,
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        self.agent
            .get(url)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header("Authorization", format!("Bearer {}", self.token.as_str()))
            .config()
            .timeout_global(Some(timeout))
            .build()
            .call()
    }

    /// What to do with the response to `GET url`, after `attempt` retries
    /// and `redirects` redirects: 2xx is parsed (a body that is slow,
    /// truncated, not UTF-8 or not JSON is retried), a redirect is followed
    /// within the origin, a rate limit or a 5xx is waited out a few times,
    /// and anything else is its error.
    fn judge<T>(
        &self,
        url: &str,
        endpoint: &str,
        mut resp: ureq::http::Response<ureq::Body>,
        attempt: usize,
        redirects: usize,
        parse: &mut dyn FnMut(&mut dyn std::io::Read) -> std::result::Result<T, ParseError>,
    ) -> Result<Step<T>> {
        let mut r = Reply::headers(&resp);
        let status = r.status;
        if (200..=299).contains(&status) {
            return self.parsed(url, endpoint, resp, &r, attempt, parse);
        }
        r.read_message(&mut resp);
        match status {
            301 | 302 | 303 | 307 | 308 => self.redirect(url, status, r.location, redirects),
            _ if r.rate_limited() => {
                let wait = r.rate_limit_wait(self.clock.now());
                let err = Error::new(
                    Code::CloudRateLimited,
                    format!(
                        "GitHub's rate limit is exhausted for {}s more ({})",
                        wait.as_secs(),
                        r.message
                    ),
                );
                if wait > MAX_RATE_LIMIT_WAIT {
                    return Err(err);
                }
                Ok(Step::Retry(wait, err))
            }
            401 | 403 | 404 => Err(r.refusal(url)),
            500..=599 => Ok(Step::Retry(
                BACKOFF[attempt.min(2)],
                Error::new(
                    Code::CloudUnavailable,
                    format!("GET {url}: HTTP {status} {}", r.message),
                ),
            )),
            _ => Err(Error::new(
                Code::CloudUnavailable,
                format!("GET {url}: HTTP {status} {}", r.message),
            )),
        }
    }

    /// A redirect (HTTP `status`) to `location`, followed within the origin
    /// while fewer than `MAX_REDIRECTS` were.
    fn redirect<T>(
        &self,
        url: &str,
        status: u16,
        location: Option<String>,
        redirects: usize,
    ) -> Result<Step<T>> {
        let Some(loc) = location else {
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

    /// A 2xx answer: its body parsed as it streams in, or the fault that
    /// kept it from being used (retried unless the body is too large).
    fn parsed<T>(
        &self,
        url: &str,
        endpoint: &str,
        mut resp: ureq::http::Response<ureq::Body>,
        r: &Reply,
        attempt: usize,
        parse: &mut dyn FnMut(&mut dyn std::io::Read) -> std::result::Result<T, ParseError>,
    ) -> Result<Step<T>> {
        use serde_json::error::Category;
        let mut watched =
            body::Watched::new(resp.body_mut().with_config().limit(MAX_BODY).reader());
        let fault = match parse(&mut watched) {
            Ok(v) => {
                let next = match r.link.as_deref().and_then(next_link) {
                    Some(n) => {
                        Some(self.same_origin(&n, "the pagination link (Link: rel=\"next\")")?)
                    }
                    None => None,
                };
                return Ok(Step::Done(v, next));
            }
            Err(ParseError::Fatal(e)) => return Err(e),
            // The reader's own record first: serde only saw an I/O error.
            Err(ParseError::Json(e)) => match watched.fault.take() {
                Some(f) => f,
                None => match e.classify() {
                    Category::Eof => BodyFault::Truncated(format!("the JSON ends early: {e}")),
                    Category::Syntax => BodyFault::NotJson(e.to_string()),
                    Category::Io => BodyFault::Unreadable(e.to_string()),
                    Category::Data => return Err(shape_error(endpoint, &body::shape_message(&e))),
                },
            },
        };
        let err = body_error(url, &fault, attempt + 1, self.timing);
        match fault.retried() {
            true => Ok(Step::Retry(BACKOFF[attempt.min(2)], err)),
            false => Err(err),
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
        let path = Self::enterprise_path(enterprise, "license-sync-status")?;
        let (s, _) = self.get(&path, "license-sync-status", &mut |r| SyncStatus::read(r))?;
        Ok(s)
    }

    /// `GET /enterprises/{enterprise}/consumed-licenses`, every page, the
    /// users kept in memory: for small answers (the demo).
    pub fn consumed_licenses(&self, enterprise: &str) -> Result<ConsumedLicenses> {
        let mut sink = Collect::default();
        let c = self.consumed_licenses_into(enterprise, &mut sink)?;
        Ok(ConsumedLicenses {
            total_seats_consumed: c.total_seats_consumed,
            total_seats_purchased: c.total_seats_purchased,
            users: sink.users,
            warnings: c.warnings.lines(),
        })
    }

    /// `GET /enterprises/{enterprise}/consumed-licenses`, every page, each
    /// user handed to `sink` as it is read and not kept: memory does not
    /// grow with the number of users or pages. The counts are the first
    /// page's.
    pub fn consumed_licenses_into(
        &self,
        enterprise: &str,
        sink: &mut dyn UserSink,
    ) -> Result<SeatCounts> {
        const EP: &str = "consumed-licenses";
        let mut url = format!("{}?per_page=100", Self::enterprise_path(enterprise, EP)?);
        let mut out: Option<SeatCounts> = None;
        // Each page's URL is kept to catch links that loop: 10,000 URLs
        // at most, about a megabyte.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let first = out.as_ref().map_or(0, |c| c.users);
            let mut warnings = Warnings::default();
            let (page, next) = self.get(&url, EP, &mut |r| {
                sink.rollback().map_err(ParseError::Fatal)?;
                warnings = Warnings::default();
                ConsumedPage::read(r, first, sink, &mut warnings)
            })?;
            sink.commit()?;
            let c = out.get_or_insert_with(|| SeatCounts {
                total_seats_consumed: page.consumed,
                total_seats_purchased: page.purchased,
                ..SeatCounts::default()
            });
            c.users += page.users;
            for w in warnings.kept {
                c.warnings.push(w);
            }
            c.warnings.more += warnings.more;
            seen.insert(url.clone());
            match next {
                Some(n) if seen.contains(&n) => {
                    return Err(Error::new(
                        Code::CloudResponse,
                        format!("{EP}: the pagination links loop back to {n}"),
                    ))
                }
                Some(n) => url = n,
                None => return out.ok_or_else(|| shape_error(EP, "no page")),
            }
        }
        Err(Error::new(
            Code::CloudResponse,
            format!("{EP}: more than {MAX_PAGES} pages"),
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
    crate::base::clock::parse_rfc3339(s)
}

#[cfg(test)]
mod tests;
