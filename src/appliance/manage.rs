//! The appliance through the Manage GHES API (GHES 3.12+, port 8443, TLS,
//! basic auth).
//!
//! `GET /manage/v1/config/license` (the active licence, camelCase fields:
//! `referenceNumber`, `seats`, `expireAt`, `unlimitedSeating`),
//! `PUT /manage/v1/config/license?apply=true` (multipart/form-data, field
//! `license`) and `GET /manage/v1/config/license/check`
//! (`[{"status":"valid"}]`), as GitHub's REST API description gives them
//! (decision 84). No endpoint reads a candidate file before it is uploaded,
//! nor returns the active file: `dry_run` and `active_sha256` are `None`,
//! and the backup is the active licence's details.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use zeroize::Zeroizing;

use super::http::{refusal, Answer, Client};
use super::{
    licence_info, Appliance, Backup, LicenceInfo, Path, SeatsSource, SeatsUsed, MANAGE_FIELDS,
    MAX_JSON_ANSWER,
};
use crate::base::error::{Code, Error, Result};
use crate::format::manifest::HexDigest;
use crate::net;

/// The licence endpoint.
pub const LICENSE: &str = "/manage/v1/config/license";
/// The upload, applied at once.
pub const LICENSE_APPLY: &str = "/manage/v1/config/license?apply=true";
/// The appliance's check of the active licence.
pub const LICENSE_CHECK: &str = "/manage/v1/config/license/check";

/// How to reach the Manage API.
#[derive(Clone)]
pub struct ManageConfig {
    /// The Manage API's base URL, e.g. `https://ghes.example:8443`.
    pub url: String,
    /// The basic-auth user: `api_key` for the root site administrator
    /// password, or a Management Console user. Default `api_key`.
    pub user: String,
    /// The password (never printed, in no error, not in `Debug`).
    pub password: Zeroizing<String>,
    /// Extra CA certificates (PEM) to trust, e.g. the appliance's own CA.
    pub ca_file: Option<PathBuf>,
    /// The deadline of one request.
    pub timeout: Duration,
    /// Where seats in use come from, if anywhere.
    pub seats: Option<SeatsSource>,
    /// The proxy, if the appliance is reached through one. Default none:
    /// the appliance is on the isolated network.
    pub proxies: net::Proxies,
}

impl std::fmt::Debug for ManageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManageConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"(hidden)")
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .field("seats", &self.seats)
            .finish()
    }
}

impl ManageConfig {
    /// `url` as `api_key` with `password`, the default deadline, no extra
    /// CA, no seats source, no proxy.
    pub fn new(url: impl Into<String>, password: Zeroizing<String>) -> ManageConfig {
        ManageConfig {
            url: url.into(),
            user: "api_key".into(),
            password,
            ca_file: None,
            timeout: super::DEFAULT_TIMEOUT,
            seats: None,
            proxies: net::Proxies::none(),
        }
    }
}

/// The appliance through the Manage API.
pub struct ManageApi {
    cfg: ManageConfig,
    base: String,
    client: Client,
    auth: Zeroizing<String>,
}

impl std::fmt::Debug for ManageApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManageApi").field("cfg", &self.cfg).finish()
    }
}

/// The multipart boundary: fixed (random once), lengthened until it does
/// not occur in the data.
fn boundary(data: &[u8]) -> String {
    let mut b = String::from("airlock-licence-3f9c2e7a5d1b48c6a0e4f7b2d9c5a1e8");
    let mut n = 0u32;
    while data.windows(b.len()).any(|w| w == b.as_bytes()) {
        n += 1;
        b = format!("airlock-licence-3f9c2e7a5d1b48c6a0e4f7b2d9c5a1e8-{n}");
    }
    b
}

/// A multipart/form-data body with one file field, `license`; and its
/// content type.
pub fn multipart(licence: &[u8]) -> (Vec<u8>, String) {
    let b = boundary(licence);
    let mut body = Vec::with_capacity(licence.len() + 256);
    body.extend_from_slice(
        format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"license\"; filename=\"enterprise.ghl\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(licence);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={b}"))
}

impl ManageApi {
    /// Check the URL (https, or http to loopback), load the trust; nothing
    /// is contacted yet.
    pub fn new(cfg: ManageConfig) -> Result<ManageApi> {
        let base = cfg.url.trim_end_matches('/').to_string();
        let client = Client::new(
            &base,
            "the Manage API URL",
            cfg.ca_file.as_deref(),
            &cfg.proxies,
            cfg.timeout,
        )?;
        if cfg.user.is_empty() || cfg.user.contains(':') || cfg.user.chars().any(char::is_control) {
            return Err(Error::new(
                Code::Args,
                "the Manage API user is empty or holds ':' or a control character",
            ));
        }
        let raw = Zeroizing::new(format!("{}:{}", cfg.user, cfg.password.as_str()));
        let auth = Zeroizing::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
        ));
        Ok(ManageApi {
            cfg,
            base,
            client,
            auth,
        })
    }

    fn get(&self, path: &str) -> Result<(String, Answer)> {
        let url = format!("{}{path}", self.base);
        let a = self.client.send("GET", &url, MAX_JSON_ANSWER, |agent| {
            agent
                .get(&url)
                .header("Accept", "application/json")
                .header("Authorization", self.auth.as_str())
                .call()
        })?;
        if !(200..300).contains(&a.status) {
            return Err(refusal("GET", &url, &a));
        }
        Ok((url, a))
    }
}

impl Appliance for ManageApi {
    fn path(&self) -> Path {
        Path::ManageApi
    }

    fn describe(&self) -> String {
        self.base.clone()
    }

    fn dry_run(&mut self, _licence: &[u8]) -> Result<Option<LicenceInfo>> {
        Ok(None)
    }

    fn active(&mut self) -> Result<LicenceInfo> {
        let (url, a) = self.get(LICENSE)?;
        licence_info(&a.body, &MANAGE_FIELDS, &format!("GET {url}"))
    }

    fn backup(&mut self) -> Result<Backup> {
        let (url, a) = self.get(LICENSE)?;
        // Kept as the appliance wrote it, once it reads as a licence.
        licence_info(&a.body, &MANAGE_FIELDS, &format!("GET {url}"))?;
        let text = String::from_utf8(a.body).map_err(|_| {
            Error::new(
                Code::ApplianceResponse,
                format!("GET {url}: the answer is not UTF-8"),
            )
        })?;
        Ok(Backup::Details(text))
    }

    fn apply(&mut self, licence: &[u8]) -> Result<()> {
        let url = format!("{}{LICENSE_APPLY}", self.base);
        let (body, ctype) = multipart(licence);
        let a = self.client.send("PUT", &url, MAX_JSON_ANSWER, |agent| {
            agent
                .put(&url)
                .header("Accept", "application/json")
                .header("Authorization", self.auth.as_str())
                .header("Content-Type", &ctype)
                .send(&body[..])
        })?;
        if (200..300).contains(&a.status) {
            Ok(())
        } else {
            Err(refusal("PUT", &url, &a))
        }
    }

    fn check(&mut self) -> Result<bool> {
        let (url, a) = self.get(LICENSE_CHECK)?;
        parse_check(&a.body).ok_or_else(|| {
            Error::new(
                Code::ApplianceResponse,
                format!("GET {url}: not a list of {{\"status\": …}}"),
            )
        })
    }

    fn active_sha256(&mut self) -> Result<Option<HexDigest>> {
        Ok(None)
    }

    fn seats_used(&mut self) -> Result<Option<SeatsUsed>> {
        match &self.cfg.seats {
            Some(s) => s.seats_used(self.cfg.timeout).map(Some),
            None => Ok(None),
        }
    }
}

/// `[{"status":"valid"}]` (or one object): valid when every status says
/// `valid`; `None` for another shape.
fn parse_check(body: &[u8]) -> Option<bool> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let items = match &v {
        serde_json::Value::Array(a) if !a.is_empty() => a.iter().collect::<Vec<_>>(),
        o @ serde_json::Value::Object(_) => vec![o],
        _ => return None,
    };
    let mut valid = true;
    for i in items {
        valid &= i.get("status")?.as_str()? == "valid";
    }
    Some(valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert_eq!(parse_check(br#"[{"status":"valid"}]"#), Some(true));
        assert_eq!(parse_check(br#"{"status":"valid"}"#), Some(true));
        assert_eq!(parse_check(br#"[{"status":"expired"}]"#), Some(false));
        assert_eq!(
            parse_check(br#"[{"status":"valid"},{"status":"cluster mode not supported"}]"#),
            Some(false)
        );
        for bad in [
            &b"[]"[..],
            b"x",
            br#"[{"s":1}]"#,
            br#"[{"status":1}]"#,
            b"\"valid\"",
        ] {
            assert_eq!(parse_check(bad), None);
        }
    }

    #[test]
    fn multipart_boundary_avoids_the_data() {
        let (body, ct) = multipart(b"LICENCE");
        let b = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let s = String::from_utf8(body).unwrap();
        assert!(s.starts_with(&format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"license\""
        )));
        assert!(s.ends_with(&format!("\r\n\r\nLICENCE\r\n--{b}--\r\n")));
        let nasty = format!("x--{}y", boundary(b""));
        let (_, ct2) = multipart(nasty.as_bytes());
        let b2 = ct2.strip_prefix("multipart/form-data; boundary=").unwrap();
        assert!(!nasty.contains(b2));
    }

    #[test]
    fn password_is_never_shown() {
        let cfg = ManageConfig::new(
            "https://ghes.example:8443/",
            Zeroizing::new("s3cret-pw".into()),
        );
        let api = ManageApi::new(cfg).unwrap();
        assert!(!format!("{api:?}").contains("s3cret-pw"));
        assert_eq!(api.describe(), "https://ghes.example:8443");
        let e = ManageApi::new(ManageConfig::new(
            "http://ghes.example:8443",
            Zeroizing::new("s3cret-pw".into()),
        ))
        .unwrap_err();
        assert_eq!(e.code, Code::Args);
    }
}
