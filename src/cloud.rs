//! The GitHub REST client for GitHub Enterprise Cloud: license sync status
//! and consumed licenses (BRIEF §3). Read-only; GitHub has no API to upload
//! server usage.
//!
//! Sends the documented `Accept` and `X-GitHub-Api-Version` headers, follows
//! `Link: rel="next"` pagination, retries 5xx and rate limits (honouring
//! `Retry-After` and `x-ratelimit-reset`), and turns 401/403/404 into
//! distinct errors. The token is never logged or put in an error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Code, Error, Result};

pub const DEFAULT_API_URL: &str = "https://api.github.com";
pub const API_VERSION: &str = "2022-11-28";
/// Longest wait for a rate limit to reset before giving up.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
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

/// One server instance's last sync, as GitHub reports it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ServerInstance {
    pub server_id: String,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub last_sync: Option<LastSync>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LastSync {
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SyncStatus {
    #[serde(default)]
    pub server_instances: Vec<ServerInstance>,
}

/// A user in `consumed-licenses`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LicensedUser {
    #[serde(default)]
    pub github_com_login: Option<String>,
    #[serde(default)]
    pub github_com_user: Option<bool>,
    #[serde(default)]
    pub enterprise_server_user: Option<bool>,
    #[serde(default)]
    pub enterprise_server_user_ids: Vec<String>,
    #[serde(default)]
    pub enterprise_server_emails: Vec<String>,
    #[serde(default)]
    pub license_type: Option<String>,
    #[serde(default)]
    pub total_user_accounts: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ConsumedLicenses {
    #[serde(default)]
    pub total_seats_consumed: u64,
    #[serde(default)]
    pub total_seats_purchased: u64,
    #[serde(default)]
    pub users: Vec<LicensedUser>,
}

impl LicensedUser {
    /// A server account that matched no Cloud account: it consumes a seat of
    /// its own (the primary-email mismatch).
    pub fn is_unmatched_server_user(&self) -> bool {
        self.enterprise_server_user == Some(true)
            && self.github_com_user != Some(true)
            && self.github_com_login.as_deref().is_none_or(str::is_empty)
    }
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Zeroizing<String>,
}

/// The URL of `rel="next"` in a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    for part in link.split(',') {
        let mut segs = part.split(';');
        let url = segs.next()?.trim();
        if segs.any(|s| s.trim().replace(' ', "") == "rel=\"next\"") {
            return url.strip_prefix('<')?.strip_suffix('>').map(String::from);
        }
    }
    None
}

impl Client {
    pub fn new(base: &str, token: Zeroizing<String>) -> Result<Client> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("https://")
            || base.starts_with("http://127.0.0.1")
            || base.starts_with("http://localhost")
            || base.starts_with("http://[::1]"))
        {
            return Err(Error::new(
                Code::Args,
                format!(
                    "--api-url {base} must be https:// (plain http only to loopback, for tests)"
                ),
            ));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .user_agent(crate::tool_version())
            .build()
            .into();
        Ok(Client { agent, base, token })
    }

    /// GET a URL (absolute, or a path under the base), with retries.
    /// Returns the JSON body and the next page's URL.
    fn get(&self, url: &str) -> Result<(serde_json::Value, Option<String>)> {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        };
        let mut attempt = 0;
        loop {
            let resp = self
                .agent
                .get(&url)
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", API_VERSION)
                .header("Authorization", format!("Bearer {}", self.token.as_str()))
                .call();
            let mut resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    if attempt < BACKOFF.len() {
                        std::thread::sleep(BACKOFF[attempt]);
                        attempt += 1;
                        continue;
                    }
                    return Err(Error::new(
                        Code::CloudUnavailable,
                        format!("GET {url}: {e}"),
                    ));
                }
            };
            let status = resp.status().as_u16();
            let header = |n: &str| {
                resp.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(String::from)
            };
            let link = header("link");
            let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
            let remaining = header("x-ratelimit-remaining");
            let reset = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<u64>().ok());
            let accepted_scopes = header("x-accepted-oauth-scopes");
            let token_scopes = header("x-oauth-scopes");
            let accepted_perms = header("x-accepted-github-permissions");
            let body = resp.body_mut().read_to_string().unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
                .unwrap_or_default();
            let rate_limited = status == 429
                || (status == 403 && (remaining.as_deref() == Some("0") || retry_after.is_some()));
            match status {
                200..=299 => {
                    let v = serde_json::from_str(&body).map_err(|e| {
                        Error::new(Code::CloudResponse, format!("GET {url}: the response is not JSON: {e}"))
                    })?;
                    return Ok((v, link.as_deref().and_then(next_link)));
                }
                _ if rate_limited => {
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
                    let wait = match (retry_after, reset) {
                        (Some(s), _) => Duration::from_secs(s),
                        (None, Some(r)) => Duration::from_secs(r.saturating_sub(now) + 1),
                        (None, None) => Duration::from_secs(60),
                    };
                    if wait > MAX_RATE_LIMIT_WAIT || attempt >= 3 {
                        return Err(Error::new(
                            Code::CloudRateLimited,
                            format!("GitHub's rate limit is exhausted for {}s more ({message})", wait.as_secs()),
                        ));
                    }
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                401 => {
                    return Err(Error::new(Code::CloudUnauthorized, format!("GitHub refused the token (401 {message})")))
                }
                403 => {
                    let need = accepted_scopes
                        .filter(|s| !s.is_empty())
                        .map(|s| format!("the token needs scope {s} (it has: {})", token_scopes.as_deref().filter(|t| !t.is_empty()).unwrap_or("none")))
                        .or(accepted_perms.map(|p| format!("the token needs permission {p}")))
                        .unwrap_or_else(|| "the token lacks a scope (classic tokens need read:enterprise) or you are not an enterprise admin".into());
                    return Err(Error::new(Code::CloudForbidden, format!("GitHub answered 403 {message}: {need}")));
                }
                404 => {
                    return Err(Error::new(
                        Code::CloudNotFound,
                        format!("GitHub answered 404 for {url}: no such enterprise, or this token cannot see it"),
                    ))
                }
                500..=599 if attempt < BACKOFF.len() => {
                    std::thread::sleep(BACKOFF[attempt]);
                    attempt += 1;
                }
                _ => {
                    return Err(Error::new(
                        Code::CloudUnavailable,
                        format!("GET {url}: HTTP {status} {message}"),
                    ))
                }
            }
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
        serde_json::from_value(v).map_err(|e| {
            Error::new(
                Code::CloudResponse,
                format!("license-sync-status: unexpected shape: {e}"),
            )
        })
    }

    /// `GET /enterprises/{enterprise}/consumed-licenses`, every page.
    pub fn consumed_licenses(&self, enterprise: &str) -> Result<ConsumedLicenses> {
        let mut url = format!(
            "{}?per_page=100",
            Self::enterprise_path(enterprise, "consumed-licenses")?
        );
        let mut all: Option<ConsumedLicenses> = None;
        for _ in 0..10_000 {
            let (v, next) = self.get(&url)?;
            let page: ConsumedLicenses = serde_json::from_value(v).map_err(|e| {
                Error::new(
                    Code::CloudResponse,
                    format!("consumed-licenses: unexpected shape: {e}"),
                )
            })?;
            match all.as_mut() {
                None => all = Some(page),
                Some(a) => a.users.extend(page.users),
            }
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
        all.ok_or_else(|| Error::new(Code::CloudResponse, "consumed-licenses returned nothing"))
    }
}

/// Parse GitHub's timestamps (RFC 3339, possibly with fractions or an offset).
pub fn parse_github_time(s: &str) -> Option<SystemTime> {
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
    fn unmatched_users() {
        let u: LicensedUser = serde_json::from_str(r#"{"github_com_login":"","github_com_user":false,"enterprise_server_user":true,"enterprise_server_user_ids":["ghes.example.com:12"],"enterprise_server_emails":["a@corp.example"]}"#).unwrap();
        assert!(u.is_unmatched_server_user());
        let m: LicensedUser = serde_json::from_str(
            r#"{"github_com_login":"mona","github_com_user":true,"enterprise_server_user":true}"#,
        )
        .unwrap();
        assert!(!m.is_unmatched_server_user());
    }
}
