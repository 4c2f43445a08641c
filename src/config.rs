//! The configuration file `airlock.toml`: defaults for the importer's and
//! the Cloud commands' options. Precedence, highest first: command-line
//! flags, environment variables, this file (docs/operator-guide.md).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Code, Error, Result};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// allowed_signers file.
    pub trust: Option<PathBuf>,
    /// Revoked public keys, one per line.
    pub revoked: Option<PathBuf>,
    /// age identity files or OpenSSH keys to decrypt with.
    #[serde(default)]
    pub identities: Vec<PathBuf>,
    /// State directory (ledger, spool).
    pub state_dir: Option<PathBuf>,
    /// Outbox directory for hand-over.
    pub outbox: Option<PathBuf>,
    /// GitHub Enterprise Cloud enterprise slug.
    pub enterprise: Option<String>,
    /// Internal endpoint to POST verified payloads to.
    pub submit_url: Option<String>,
    /// File holding the bearer token for submit_url.
    pub submit_token_file: Option<PathBuf>,
    /// GitHub REST API base URL (https://api.github.com or https://api.SUBDOMAIN.ghe.com).
    pub api_url: Option<String>,
    /// GitHub host, as in `GH_HOST`: github.com or NAME.ghe.com.
    pub host: Option<String>,
    /// File holding the GitHub token.
    pub token_file: Option<PathBuf>,
    /// Extra CA certificates (PEM) for HTTPS to GitHub and to submit_url.
    pub ca_file: Option<PathBuf>,
    /// Signatures required from distinct trusted keys.
    pub require_signers: Option<usize>,
}

/// `$XDG_CONFIG_HOME/airlock/airlock.toml`, else `~/.config/airlock/airlock.toml`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("airlock/airlock.toml"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".config/airlock/airlock.toml"))
}

impl Config {
    /// Load `explicit` (which must exist), else `AIRLOCK_CONFIG`, else the
    /// default location if it exists, else an empty configuration. Relative
    /// paths in the file are relative to the file's directory.
    pub fn load(explicit: Option<&Path>) -> Result<(Config, Option<PathBuf>)> {
        let env = std::env::var_os("AIRLOCK_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let (path, required) = match (explicit, env) {
            (Some(p), _) => (p.to_path_buf(), true),
            (None, Some(p)) => (p, true),
            (None, None) => match default_path() {
                Some(p) => (p, false),
                None => return Ok((Config::default(), None)),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok((Config::default(), None))
            }
            Err(e) => return Err(Error::io_read(&path, e)),
        };
        let mut c: Config = toml::from_str(&text).map_err(|e| {
            Error::new(
                Code::ConfigInvalid,
                format!(
                    "{}: {}",
                    path.display(),
                    e.to_string().lines().next().unwrap_or("invalid")
                ),
            )
            .with_source(e)
        })?;
        let base = crate::fsutil::parent_dir(&path);
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(x) = p.as_mut() {
                if x.is_relative() {
                    *x = base.join(&*x);
                }
            }
        };
        fix(&mut c.trust);
        fix(&mut c.revoked);
        fix(&mut c.state_dir);
        fix(&mut c.outbox);
        fix(&mut c.submit_token_file);
        fix(&mut c.token_file);
        fix(&mut c.ca_file);
        for i in c.identities.iter_mut() {
            if i.is_relative() {
                *i = base.join(&*i);
            }
        }
        Ok((c, Some(path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_resolves_relative_paths() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("airlock.toml");
        std::fs::write(&p, "trust = \"allowed_signers\"\nidentities = [\"/abs/id.txt\", \"id2.txt\"]\nenterprise = \"octo\"\n").unwrap();
        let (c, used) = Config::load(Some(&p)).unwrap();
        assert_eq!(used.unwrap(), p);
        assert_eq!(c.trust.unwrap(), d.path().join("allowed_signers"));
        assert_eq!(c.identities[0], PathBuf::from("/abs/id.txt"));
        assert_eq!(c.identities[1], d.path().join("id2.txt"));
        std::fs::write(&p, "trusst = \"x\"\n").unwrap();
        assert_eq!(
            Config::load(Some(&p)).err().unwrap().code,
            Code::ConfigInvalid
        );
        assert_eq!(
            Config::load(Some(&d.path().join("missing.toml")))
                .err()
                .unwrap()
                .code,
            Code::IoRead
        );
    }
}
