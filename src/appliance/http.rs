//! HTTPS to the appliance (Manage API on port 8443, REST API for seats):
//! the agent, trust and failure mapping of `net` (decision 76), with the
//! appliance's error codes, and bodies read within a bound.

use std::path::Path;
use std::time::Duration;

use crate::base::error::{Code, Error, Result};
use crate::net::{self, Failure};

/// One answer: status and body (at most the bound given).
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// An agent for `url`: the system's CAs plus `ca_file`, `proxies`, no
/// redirects, `timeout` for the whole request.
pub(crate) struct Client {
    agent: net::Agent,
}

impl Client {
    /// Check `url` (https, or http to loopback only: credentials go there),
    /// load the trust, build the agent. `what` names the setting.
    pub fn new(
        url: &str,
        what: &str,
        ca_file: Option<&Path>,
        proxies: &net::Proxies,
        timeout: Duration,
    ) -> Result<Client> {
        net::check_url(url, what)?;
        let trust = net::Trust::load(ca_file)?;
        Ok(Client {
            agent: net::agent(&trust, proxies, timeout),
        })
    }

    /// Send a request built by `build` from the agent; read the body up to
    /// `limit` bytes (a longer one is `APPLIANCE-RESPONSE`).
    pub fn send(
        &self,
        method: &str,
        url: &str,
        limit: u64,
        send: impl FnOnce(
            &net::Agent,
        ) -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Answer> {
        let mut resp = send(&self.agent).map_err(|e| transport(&self.agent, method, url, &e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => Error::new(
                    Code::ApplianceResponse,
                    format!("{method} {url}: the answer is longer than {limit} bytes"),
                ),
                e => transport(&self.agent, method, url, &e),
            })?;
        Ok(Answer { status, body })
    }
}

/// What a transport failure means for the appliance: unreachable, with a
/// hint about its CA for TLS.
fn transport(agent: &net::Agent, method: &str, url: &str, e: &ureq::Error) -> Error {
    match agent.classify(url, e) {
        Failure::Tls(m) => Error::new(
            Code::ApplianceUnreachable,
            format!("{method} {url}: {}", crate::base::names::one_line(&m)),
        )
        .with_hint(
            "the appliance's certificate does not chain to a CA airlock trusts: give the appliance's CA certificate (PEM) as its CA file, or check that the URL names the appliance",
        ),
        Failure::Proxy(m) => Error::new(
            Code::ApplianceUnreachable,
            format!("{method} {url}: {}", crate::base::names::one_line(&m)),
        )
        .with_hint(net::PROXY_HINT),
        Failure::Transient(m) => Error::new(
            Code::ApplianceUnreachable,
            format!("{method} {url}: {}", crate::base::names::one_line(&m)),
        ),
    }
}

/// The appliance's message in an error body: JSON `message` (or `error`)
/// when there is one, else the first line of the text.
pub(crate) fn message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        for k in ["message", "error", "errors"] {
            match v.get(k) {
                Some(serde_json::Value::String(s)) => return super::first_line(s),
                Some(other) if !other.is_null() => return super::first_line(&other.to_string()),
                _ => {}
            }
        }
    }
    super::first_line(&text)
}

/// Map a non-2xx answer to the appliance's error codes: 401/403
/// unauthorised; 409, 423, 503 or a message saying a config-apply runs:
/// busy; 502/504 (a gateway): unreachable; others refused.
pub(crate) fn refusal(method: &str, url: &str, a: &Answer) -> Error {
    let msg = message(&a.body);
    let cause = if msg.is_empty() {
        format!("{method} {url}: HTTP {}", a.status)
    } else {
        format!("{method} {url}: HTTP {}: {msg}", a.status)
    };
    let code = match a.status {
        401 | 403 => Code::ApplianceUnauthorized,
        409 | 423 | 503 => Code::ApplianceBusy,
        _ if super::says_busy(&msg) => Code::ApplianceBusy,
        502 | 504 => Code::ApplianceUnreachable,
        _ => Code::ApplianceRefused,
    };
    Error::new(code, cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn statuses_map_to_codes() {
        let c = |s, b| refusal("GET", "https://x:8443/manage", &a(s, b)).code;
        assert_eq!(c(401, ""), Code::ApplianceUnauthorized);
        assert_eq!(c(403, "{}"), Code::ApplianceUnauthorized);
        assert_eq!(c(409, ""), Code::ApplianceBusy);
        assert_eq!(c(503, "down"), Code::ApplianceBusy);
        assert_eq!(
            c(500, r#"{"message":"a config-apply is already running"}"#),
            Code::ApplianceBusy
        );
        assert_eq!(
            c(400, r#"{"message":"invalid license"}"#),
            Code::ApplianceRefused
        );
        assert_eq!(c(500, "boom"), Code::ApplianceRefused);
        assert_eq!(c(502, ""), Code::ApplianceUnreachable);
        let e = refusal("PUT", "u", &a(400, "{\"message\":\"bad\\nfile\\u001b\"}"));
        assert_eq!(e.cause, "PUT u: HTTP 400: bad");
    }
}
