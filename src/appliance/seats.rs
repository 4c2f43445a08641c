//! Seats in use, from the appliance's REST API:
//! `GET /api/v3/enterprise/settings/license` with a site administrator's
//! token (a classic personal access token; GitHub's docs say the endpoint
//! takes no other kind). The answer has `seats_used` and
//! `days_until_expiration`. Shared by both ways to the appliance.

use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use super::http::{refusal, Client};
use super::{SeatsUsed, MAX_JSON_ANSWER};
use crate::base::error::{Code, Error, Result};
use crate::net;

/// The source named in `license status`.
pub const SOURCE: &str = "GET /api/v3/enterprise/settings/license";

/// Where seats in use come from: the appliance's REST API.
#[derive(Clone)]
pub struct SeatsSource {
    /// The REST API's base URL, e.g. `https://ghes.example/api/v3`.
    pub api_url: String,
    /// A site administrator's token (never printed).
    pub token: Zeroizing<String>,
    /// Extra CA certificates (PEM) to trust for `api_url`.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for SeatsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeatsSource")
            .field("api_url", &self.api_url)
            .field("token", &"(hidden)")
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// What the REST API says about the licence's use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceUse {
    /// Seats consumed.
    pub seats_used: u64,
    /// Days until the active licence expires, as the appliance counts them
    /// (negative once expired), when it says.
    pub days_until_expiration: Option<i64>,
}

impl SeatsSource {
    /// The URL asked.
    pub fn url(&self) -> String {
        format!(
            "{}/enterprise/settings/license",
            self.api_url.trim_end_matches('/')
        )
    }

    /// Ask the appliance (no proxy: it is on the isolated network).
    pub fn fetch(&self, timeout: Duration) -> Result<LicenceUse> {
        let url = self.url();
        let client = Client::new(
            &url,
            "the seats source's API URL",
            self.ca_file.as_deref(),
            &net::Proxies::none(),
            timeout,
        )?;
        let bearer = Zeroizing::new(format!("Bearer {}", self.token.as_str()));
        let a = client.send("GET", &url, MAX_JSON_ANSWER, |agent| {
            agent
                .get(&url)
                .header("Accept", "application/vnd.github+json")
                .header("Authorization", bearer.as_str())
                .call()
        })?;
        if !(200..300).contains(&a.status) {
            return Err(refusal("GET", &url, &a));
        }
        parse(&a.body).map_err(|why| {
            Error::new(
                Code::ApplianceResponse,
                format!("GET {url}: {}", crate::base::names::one_line(&why)),
            )
        })
    }

    /// Seats in use, with [`SOURCE`] named.
    pub fn seats_used(&self, timeout: Duration) -> Result<SeatsUsed> {
        Ok(SeatsUsed {
            seats: self.fetch(timeout)?.seats_used,
            source: SOURCE.to_string(),
        })
    }
}

/// Read `seats_used` (required) and `days_until_expiration` (optional).
fn parse(body: &[u8]) -> std::result::Result<LicenceUse, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    let seats_used = v
        .get("seats_used")
        .and_then(|s| s.as_u64())
        .ok_or("no seats_used count")?;
    let days_until_expiration = v.get("days_until_expiration").and_then(|d| d.as_i64());
    Ok(LicenceUse {
        seats_used,
        days_until_expiration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_example_parses() {
        // GitHub's published example (enterprise-admin/get-license-information).
        let b = br#"{"seats":1400,"seats_used":1316,"seats_available":84,"kind":"standard","days_until_expiration":365,"expire_at":"2016/02/06 12:41:52 -0600"}"#;
        assert_eq!(
            parse(b).unwrap(),
            LicenceUse {
                seats_used: 1316,
                days_until_expiration: Some(365)
            }
        );
        let u = br#"{"seats":"unlimited","seats_used":3}"#;
        assert_eq!(parse(u).unwrap().days_until_expiration, None);
        for bad in [
            &b"x"[..],
            b"{}",
            br#"{"seats_used":"3"}"#,
            br#"{"seats_used":-1}"#,
        ] {
            assert!(parse(bad).is_err());
        }
    }

    #[test]
    fn token_is_not_in_debug() {
        let s = SeatsSource {
            api_url: "https://ghes.example/api/v3/".into(),
            token: Zeroizing::new("ghp_secret".into()),
            ca_file: None,
        };
        assert!(!format!("{s:?}").contains("ghp_secret"));
        assert_eq!(
            s.url(),
            "https://ghes.example/api/v3/enterprise/settings/license"
        );
    }
}
