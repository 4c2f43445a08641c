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

    /// The example the packages install (packaging/airlock.toml) is a valid
    /// configuration as it stands, and, with every commented-out setting
    /// enabled, still loads and names every key the format knows (the list
    /// of keys comes from serde's own refusal of an unknown one, so a key
    /// added to `Config` without an example line fails here).
    #[test]
    fn the_packaged_example_loads_and_names_every_key() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/airlock.toml");
        let (c, _) = Config::load(Some(&p)).unwrap();
        assert_eq!(
            c.trust.unwrap(),
            PathBuf::from("/etc/airlock/allowed_signers")
        );
        assert_eq!(c.state_dir.unwrap(), PathBuf::from("/var/lib/airlock"));
        assert_eq!(
            c.outbox.unwrap(),
            PathBuf::from("/var/spool/airlock/outbox")
        );
        assert_eq!(c.enterprise.as_deref(), Some("octo-corp"));

        let text = std::fs::read_to_string(&p).unwrap();
        let mut all = String::new();
        let mut named = Vec::new();
        for line in text.lines() {
            let l = line.strip_prefix("# ").unwrap_or(line);
            if let Some((k, _)) = l.split_once(" = ").filter(|(k, _)| !k.contains(' ')) {
                all.push_str(l);
                all.push('\n');
                named.push(k.to_string());
            }
        }
        let d = tempfile::tempdir().unwrap();
        let q = d.path().join("airlock.toml");
        std::fs::write(&q, &all).unwrap();
        let (c, _) = Config::load(Some(&q)).unwrap();
        assert_eq!(c.identities, [PathBuf::from("/etc/airlock/identity.txt")]);
        assert_eq!(c.require_signers, Some(2));
        assert!(c.submit_url.is_some() && c.submit_token_file.is_some());
        assert!(c.api_url.is_some() && c.host.is_some() && c.token_file.is_some());
        assert!(c.ca_file.is_some());

        let err = toml::from_str::<Config>("no_such_key = 1\n")
            .unwrap_err()
            .to_string();
        let expected = err
            .split_once("expected one of ")
            .unwrap_or_else(|| panic!("no list of keys in: {err}"))
            .1
            .lines()
            .next()
            .unwrap_or_default();
        let mut keys: Vec<String> = expected
            .split(", ")
            .map(|k| k.trim().trim_matches('`').to_string())
            .filter(|k| !k.is_empty())
            .collect();
        keys.sort();
        named.sort();
        named.dedup();
        assert!(keys.iter().any(|k| k == "trust") && keys.len() > 1, "{err}");
        assert_eq!(named, keys, "keys in packaging/airlock.toml vs Config");
    }
}
