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

fn text(v: Option<&Loose>) -> Option<String> {
    v?.text()
}

fn flag(v: Option<&Loose>) -> Option<bool> {
    match v? {
        Loose::Flag(b) => Some(*b),
        _ => None,
    }
}

fn texts(v: Option<&Loose>) -> Vec<String> {
    match v {
        Some(Loose::Texts(t)) => t.clone(),
        _ => Vec::new(),
    }
}

/// Warnings about items skipped, at most [`MAX_WARNINGS`] kept (a page of a
/// million bad items must not become a million lines in memory); the rest
/// are counted.
#[derive(Debug, Clone, Default)]
pub struct Warnings {
    kept: Vec<String>,
    more: u64,
}

/// Warnings kept word for word; beyond them only a count.
const MAX_WARNINGS: usize = 100;

impl Warnings {
    fn push(&mut self, w: String) {
        if self.kept.len() < MAX_WARNINGS {
            self.kept.push(w);
        } else {
            self.more += 1;
        }
    }

    /// The warnings, with one line for those not kept.
    pub fn lines(&self) -> Vec<String> {
        let mut v = self.kept.clone();
        if self.more > 0 {
            v.push(format!("… and {} more item(s) skipped likewise", self.more));
        }
        v
    }
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

/// Server instances kept from `license-sync-status` at most: far more than
/// any enterprise has, few enough to hold.
const MAX_INSTANCES: usize = 100_000;

impl SyncStatus {
    /// Read a response body, one item at a time. The one key the endpoint
    /// always returns, `server_instances` (an array), must be there.
    fn read(r: &mut dyn std::io::Read) -> std::result::Result<SyncStatus, ParseError> {
        const EP: &str = "license-sync-status";
        let mut out = SyncStatus::default();
        let mut seen = std::collections::HashSet::new();
        let mut warnings = Warnings::default();
        let mut each = |i: u64, item: Loose| -> std::result::Result<(), String> {
            if out.server_instances.len() >= MAX_INSTANCES {
                return Err(format!("more than {MAX_INSTANCES} server instances"));
            }
            out.add(i, &item, &mut seen, &mut warnings);
            Ok(())
        };
        let page = body::Page {
            list: "server_instances",
            scalars: &[],
            each: &mut each,
        };
        let read = body::parse(r, page).map_err(ParseError::Json)?;
        if read.items.is_none() {
            return Err(ParseError::Fatal(shape_error(
                EP,
                "the response has no \"server_instances\" array",
            )));
        }
        out.warnings = warnings.lines();
        Ok(out)
    }

    /// Add item `i` if usable, else say why not in `warnings`.
    fn add(
        &mut self,
        i: u64,
        item: &Loose,
        seen: &mut std::collections::HashSet<String>,
        warnings: &mut Warnings,
    ) {
        const EP: &str = "license-sync-status";
        if !matches!(item, Loose::Object(_)) {
            warnings.push(format!("{EP}: item {i} is not an object; skipped"));
            return;
        }
        let Some(id) = text(item.get("server_id")).filter(|s| !s.trim().is_empty()) else {
            warnings.push(format!(
                "{EP}: item {i} ({}) has no server_id; skipped",
                text(item.get("hostname")).unwrap_or_else(|| "no hostname".into())
            ));
            return;
        };
        if !seen.insert(id.clone()) {
            warnings.push(format!(
                "{EP}: item {i} repeats server_id {id}; only the first is used"
            ));
            return;
        }
        let last_sync = match item.get("last_sync") {
            Some(l @ Loose::Object(_)) => Some(LastSync {
                date: text(l.get("date")).filter(|s| !s.is_empty()),
                status: text(l.get("status")).filter(|s| !s.is_empty()),
                error: text(l.get("error")).filter(|s| !s.is_empty()),
            }),
            _ => None,
        };
        self.server_instances.push(ServerInstance {
            server_id: id,
            hostname: text(item.get("hostname")).filter(|s| !s.is_empty()),
            last_sync,
        });
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
    fn from_loose(v: &Loose) -> Option<LicensedUser> {
        if !matches!(v, Loose::Object(_)) {
            return None;
        }
        Some(LicensedUser {
            github_com_login: text(v.get("github_com_login")),
            github_com_user: flag(v.get("github_com_user")),
            enterprise_server_user: flag(v.get("enterprise_server_user")),
            enterprise_server_user_ids: texts(v.get("enterprise_server_user_ids")),
            enterprise_server_emails: texts(v.get("enterprise_server_emails")),
            license_type: text(v.get("license_type")).filter(|s| !s.is_empty()),
            total_user_accounts: match v.get("total_user_accounts") {
                Some(Loose::Count(n)) => Some(*n),
                _ => None,
            },
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

/// `consumed-licenses`, every page read into memory: the seat counts of
/// the first page and the users of all pages. For small answers (the demo,
/// tests); `cloud seats` streams with [`Client::consumed_licenses_into`].
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

/// Where the users of `consumed-licenses` go as they are read, page by
/// page. A page may be read again (a retry): what it gave since the last
/// [`UserSink::commit`] is then taken back with [`UserSink::rollback`].
pub trait UserSink {
    /// One user, in response order.
    fn user(&mut self, u: LicensedUser) -> Result<()>;
    /// The users given so far are final.
    fn commit(&mut self) -> Result<()>;
    /// Forget the users given since the last commit.
    fn rollback(&mut self) -> Result<()>;
}

/// The users kept in memory, for [`Client::consumed_licenses`].
#[derive(Default)]
struct Collect {
    users: Vec<LicensedUser>,
    committed: usize,
}

impl UserSink for Collect {
    fn user(&mut self, u: LicensedUser) -> Result<()> {
        self.users.push(u);
        Ok(())
    }
    fn commit(&mut self) -> Result<()> {
        self.committed = self.users.len();
        Ok(())
    }
    fn rollback(&mut self) -> Result<()> {
        self.users.truncate(self.committed);
        Ok(())
    }
}

/// What `consumed-licenses` says besides its users: the seat counts (from
/// the first page), how many users were listed, and the items skipped.
#[derive(Debug, Clone, Default)]
pub struct SeatCounts {
    /// Seats in use, as GitHub counts them.
    pub total_seats_consumed: u64,
    /// Seats the enterprise bought.
    pub total_seats_purchased: u64,
    /// Users listed over all pages.
    pub users: u64,
    /// Items skipped, each named.
    pub warnings: Warnings,
}

/// One page of `consumed-licenses` read: its counts and how many users it
/// listed; the users went to the sink.
struct ConsumedPage {
    consumed: u64,
    purchased: u64,
    users: u64,
}

impl ConsumedPage {
    /// Read a page from `r`, handing each user (numbered from `first`) to
    /// `sink`. The keys the endpoint always returns (`total_seats_consumed`,
    /// `total_seats_purchased`, `users`) must be there with their types.
    fn read(
        r: &mut dyn std::io::Read,
        first: u64,
        sink: &mut dyn UserSink,
        warnings: &mut Warnings,
    ) -> std::result::Result<ConsumedPage, ParseError> {
        const EP: &str = "consumed-licenses";
        let mut failed = None;
        let mut each = |i: u64, item: Loose| -> std::result::Result<(), String> {
            match LicensedUser::from_loose(&item) {
                Some(u) => sink.user(u).map_err(|e| {
                    let m = e.to_string();
                    failed = Some(e);
                    m
                }),
                None => {
                    warnings.push(format!(
                        "{EP}: user {} is not an object; skipped",
                        first + i
                    ));
                    Ok(())
                }
            }
        };
        let page = body::Page {
            list: "users",
            scalars: &["total_seats_consumed", "total_seats_purchased"],
            each: &mut each,
        };
        let read = match body::parse(r, page) {
            Ok(p) => p,
            Err(e) => return Err(failed.map_or(ParseError::Json(e), ParseError::Fatal)),
        };
        let count = |k: &str| -> std::result::Result<u64, ParseError> {
            match read.scalars.iter().find(|(have, _)| have == k) {
                Some((_, Loose::Count(n))) => Ok(*n),
                Some(_) => Err(ParseError::Fatal(shape_error(
                    EP,
                    &format!("\"{k}\" is not a count"),
                ))),
                None => Err(ParseError::Fatal(shape_error(
                    EP,
                    &format!("the response has no \"{k}\""),
                ))),
            }
        };
        let consumed = count("total_seats_consumed")?;
        let purchased = count("total_seats_purchased")?;
        let users = read.items.ok_or_else(|| {
            ParseError::Fatal(shape_error(EP, "the response has no \"users\" array"))
        })?;
        Ok(ConsumedPage {
            consumed,
            purchased,
            users,
        })
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

/// The URL of the first link whose relation types include `next` in a
/// `Link` header, parsed per RFC 8288 §3: link-values separated by commas
/// (not those inside `<…>` or a quoted string), parameters after `;`, the
/// `rel` value quoted or a bare token, a space-separated list of relation
/// types compared case-insensitively, and only a link's first `rel` counted.
fn next_link(link: &str) -> Option<String> {
    link_values(link)
        .into_iter()
        .find(|(_, rels)| rels.iter().any(|r| r.eq_ignore_ascii_case("next")))
        .map(|(url, _)| url)
}

/// Each link-value of a `Link` header: its target and its relation types.
/// A malformed link-value is skipped up to the next comma outside quotes.
fn link_values(h: &str) -> Vec<(String, Vec<String>)> {
    let b = h.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let ows = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t') {
            *i += 1;
        }
    };
    while i < b.len() {
        ows(&mut i);
        if i < b.len() && b[i] == b',' {
            i += 1;
            continue;
        }
        if i >= b.len() {
            break;
        }
        let Some(end) = (b[i] == b'<').then(|| h[i..].find('>')).flatten() else {
            i = skip_value(b, i);
            continue;
        };
        let url = h[i + 1..i + end].trim().to_string();
        i += end + 1;
        let mut rels: Option<Vec<String>> = None;
        loop {
            ows(&mut i);
            if i >= b.len() || b[i] == b',' {
                break;
            }
            if b[i] != b';' {
                i = skip_value(b, i);
                break;
            }
            i += 1;
            ows(&mut i);
            let start = i;
            while i < b.len() && !matches!(b[i], b'=' | b';' | b',' | b' ' | b'\t') {
                i += 1;
            }
            let name = h[start..i].to_ascii_lowercase();
            ows(&mut i);
            let mut value = String::new();
            if i < b.len() && b[i] == b'=' {
                i += 1;
                ows(&mut i);
                if i < b.len() && b[i] == b'"' {
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        if b[i] == b'\\' && i + 1 < b.len() {
                            i += 1;
                        }
                        let c = h[i..].chars().next().unwrap_or(' ');
                        value.push(c);
                        i += c.len_utf8();
                    }
                    i += 1;
                } else {
                    let start = i;
                    while i < b.len() && !matches!(b[i], b';' | b',' | b' ' | b'\t') {
                        i += 1;
                    }
                    value = h[start..i].to_string();
                }
            }
            // RFC 8288 §3.3: occurrences after the first are ignored.
            if name == "rel" && rels.is_none() {
                rels = Some(value.split_ascii_whitespace().map(String::from).collect());
            }
        }
        out.push((url, rels.unwrap_or_default()));
    }
    out
}

/// The index after the link-value starting at `i`: at the next comma
/// outside a quoted string and `<…>`.
fn skip_value(b: &[u8], mut i: usize) -> usize {
    let (mut quoted, mut angled) = (false, false);
    while i < b.len() {
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' if !angled => quoted = !quoted,
            b'<' if !quoted => angled = true,
            b'>' if !quoted => angled = false,
            b',' if !quoted && !angled => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Redirects followed (within the API's origin) before giving up.
const MAX_REDIRECTS: usize = 5;

/// Bytes of an error response's body read (for its `message`).
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// What to do after one request.
enum Step<T> {
    /// The parsed body and the next page's URL.
    Done(T, Option<String>),
    /// Request this URL (a redirect's target, on the API's origin) next.
    Follow(String),
    /// Wait this long, then request the same URL again; the error is what
    /// to report if no retry is left.
    Retry(Duration, Error),
}

/// What a request that got no response means: a transient failure is
/// retried (its error kept for when no retry is left; a timeout is named
/// as such); TLS and proxy failures are errors.
fn transport_failure(
    url: &str,
    e: &ureq::Error,
    failure: Failure,
    attempts: usize,
    timing: Timing,
) -> Result<Error> {
    if let ureq::Error::Timeout(_) = e {
        return Ok(Error::new(
            Code::CloudUnavailable,
            format!(
                "GET {url}: GitHub's answer was too slow (not complete within http_timeout {}); {attempts} attempt(s) within http_deadline {}",
                humantime::format_duration(timing.timeout),
                humantime::format_duration(timing.deadline)
            ),
        )
        .with_hint(SLOW_HINT));
    }
    match failure {
        Failure::Tls(m) => Err(Error::new(Code::CloudTls, format!("GET {url}: {m}"))),
        Failure::Proxy(m) => Err(
            Error::new(Code::CloudUnavailable, format!("GET {url}: {m}"))
                .with_hint(net::PROXY_HINT),
        ),
        Failure::Transient(m) => Ok(Error::new(
            Code::CloudUnavailable,
            format!("GET {url}: {}", sanitize(&m)),
        )),
    }
}

/// The hint for an answer that did not come in time.
const SLOW_HINT: &str = "GitHub, or a proxy on the way, answers too slowly: check the network or proxy, or raise http_timeout (--http-timeout) and http_deadline (--http-deadline)";

/// What `Client::get` uses of a response's headers.
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
    /// `X-GitHub-SSO`: SAML single sign-on (`required; url=…`).
    sso: Option<String>,
    /// The body's `message` field, or empty (read for errors only).
    message: String,
}

impl Reply {
    /// Keep what `get` acts on of `resp`'s headers (sanitised: they are
    /// shown in errors).
    fn headers(resp: &ureq::http::Response<ureq::Body>) -> Reply {
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(sanitize)
        };
        Reply {
            status: resp.status().as_u16(),
            link: header("link"),
            location: header("location"),
            retry_after: header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()),
            remaining: header("x-ratelimit-remaining"),
            reset: header("x-ratelimit-reset").and_then(|v| v.trim().parse::<u64>().ok()),
            accepted_scopes: header("x-accepted-oauth-scopes"),
            token_scopes: header("x-oauth-scopes"),
            accepted_perms: header("x-accepted-github-permissions"),
            sso: header("x-github-sso"),
            message: String::new(),
        }
    }

    /// Read a short body (an error's) for its `message`.
    fn read_message(&mut self, resp: &mut ureq::http::Response<ureq::Body>) {
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ERROR_BODY)
            .read_to_string()
            .unwrap_or_default();
        self.message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(sanitize))
            .unwrap_or_default();
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

    /// The authorization URL of a SAML SSO refusal (`X-GitHub-SSO:
    /// required; url=…`), or `Some("")` for an SSO refusal without one.
    fn sso_url(&self) -> Option<String> {
        let h = self.sso.as_deref()?;
        let mut parts = h.split(';').map(str::trim);
        if !parts.next()?.eq_ignore_ascii_case("required") {
            return None;
        }
        Some(
            parts
                .find_map(|p| p.strip_prefix("url="))
                .unwrap_or("")
                .to_string(),
        )
    }

    /// The error for a 401, 403 or 404 to `GET url`.
    fn refusal(self, url: &str) -> Error {
        let message = &self.message;
        match self.status {
            401 => Error::new(
                Code::CloudUnauthorized,
                format!("GitHub refused the token (401 {message})"),
            ),
            403 if self.sso_url().is_some() => {
                let sso = self.sso_url().unwrap_or_default();
                let (cause, hint) = if sso.is_empty() {
                    (String::new(), "authorize the token for the organization's SAML single sign-on: on GitHub, Settings → Developer settings → your token → Configure SSO → Authorize; then run again".to_string())
                } else {
                    (
                        format!("; authorize in your web browser: {sso}"),
                        format!("open {sso} while signed in to GitHub as the token's owner and authorize the token (Configure SSO → Authorize); then run again. The token's scopes are not the problem"),
                    )
                };
                Error::new(
                    Code::CloudForbidden,
                    format!(
                        "GitHub answered 403 {message}: the organization enforces SAML single sign-on and this token is not authorized for it{cause}"
                    ),
                )
                .with_hint(hint)
            }
            403 => {
                let has = self.token_scopes.as_deref().filter(|t| !t.is_empty());
                let need = self
                    .accepted_scopes
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        let has = has.unwrap_or("none");
                        format!("the token needs scope {s} (it has: {has})")
                    })
                    .or(self
                        .accepted_perms
                        .as_deref()
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

/// The error for a body that could not be used on any attempt.
fn body_error(url: &str, f: &BodyFault, attempts: usize, timing: Timing) -> Error {
    let after = match f {
        BodyFault::Slow => format!(
            " (not complete within http_timeout {})",
            humantime::format_duration(timing.timeout)
        ),
        _ => String::new(),
    };
    let tries = match f.retried() {
        true => format!(
            "; {attempts} attempt(s) within http_deadline {}",
            humantime::format_duration(timing.deadline)
        ),
        false => String::new(),
    };
    let e = Error::new(f.code(), format!("GET {url}: {f}{after}{tries}"));
    match f {
        BodyFault::Slow => e.with_hint(SLOW_HINT),
        BodyFault::Truncated(_) => e.with_hint("the connection keeps ending before the answer does: check the network or proxy (one that limits response sizes or times), then run again"),
        BodyFault::NotUtf8(_) | BodyFault::NotJson(_) => e.with_hint("something between airlock and GitHub (a proxy's error or login page, a TLS-inspecting proxy) may be answering instead of GitHub; run with -v, check the proxy, else report it with the command you ran"),
        _ => e,
    }
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
    crate::clock::parse_rfc3339(s)
}

#[cfg(test)]
mod tests;
