//! One request's outcome: a response read and judged, a retry, a redirect, or a transport failure.

use super::*;

/// Redirects followed (within the API's origin) before giving up.
pub(super) const MAX_REDIRECTS: usize = 5;

/// Bytes of an error response's body read (for its `message`).
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// What to do after one request.
pub(super) enum Step<T> {
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
pub(super) fn transport_failure(
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
pub(super) struct Reply {
    pub(super) status: u16,
    /// `Link` (pagination).
    pub(super) link: Option<String>,
    /// `Location` (redirects).
    pub(super) location: Option<String>,
    /// `Retry-After`, in seconds.
    pub(super) retry_after: Option<u64>,
    /// `x-ratelimit-remaining`.
    pub(super) remaining: Option<String>,
    /// `x-ratelimit-reset`, in seconds since the Unix epoch.
    pub(super) reset: Option<u64>,
    /// `x-accepted-oauth-scopes`: the scopes the endpoint takes.
    pub(super) accepted_scopes: Option<String>,
    /// `x-oauth-scopes`: the scopes the token has.
    pub(super) token_scopes: Option<String>,
    /// `x-accepted-github-permissions`: the fine-grained permissions the
    /// endpoint takes.
    pub(super) accepted_perms: Option<String>,
    /// `X-GitHub-SSO`: SAML single sign-on (`required; url=…`).
    pub(super) sso: Option<String>,
    /// The body's `message` field, or empty (read for errors only).
    pub(super) message: String,
}

impl Reply {
    /// Keep what `get` acts on of `resp`'s headers (sanitised: they are
    /// shown in errors).
    pub(super) fn headers(resp: &ureq::http::Response<ureq::Body>) -> Reply {
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
    pub(super) fn read_message(&mut self, resp: &mut ureq::http::Response<ureq::Body>) {
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
    pub(super) fn rate_limited(&self) -> bool {
        self.status == 429
            || (self.status == 403
                && (self.remaining.as_deref() == Some("0") || self.retry_after.is_some()))
    }

    /// How long GitHub asks to wait: `Retry-After`, else until the reset
    /// time plus a second, else a minute.
    pub(super) fn rate_limit_wait(&self, now: SystemTime) -> Duration {
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
    pub(super) fn refusal(self, url: &str) -> Error {
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
pub(super) fn body_error(url: &str, f: &BodyFault, attempts: usize, timing: Timing) -> Error {
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
