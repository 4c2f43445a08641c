//! Configuration: the file `airlock.toml` ([`Config`], one layer), the
//! table of its keys ([`KEYS`]), and the one resolved configuration
//! ([`Settings`]) every command builds once from its flags, the environment
//! and the file, in that precedence (docs/import.md lists the keys).
//!
//! The resolved type lives in the library, beside the file's type and the
//! key table, so that a key is added in one module and the precedence rules
//! are unit-tested without the binary; the CLI only fills the flags layer.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::base::error::{Code, Error, Result};

/// A duration above zero, as humantime writes it (`30s`, `5min`, `1h 30m`):
/// the form of `--http-timeout` and the like.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("a duration above zero, such as 30s or 5min".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e}; write a duration such as 30s or 5min")),
    }
}

/// A duration key of the file (`http_timeout = "30s"`).
fn duration_key<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// `$XDG_CONFIG_HOME/airlock/airlock.toml`, else `~/.config/airlock/airlock.toml`.
fn default_path(env: Env<'_>) -> Option<PathBuf> {
    if let Some(x) = var(env, "XDG_CONFIG_HOME") {
        return Some(PathBuf::from(x).join("airlock/airlock.toml"));
    }
    var(env, "HOME").map(|h| PathBuf::from(h).join(".config/airlock/airlock.toml"))
}

impl Config {
    /// Load `explicit` (which must exist), else `AIRLOCK_CONFIG` (read
    /// through `env`), else the default location if it exists, else an
    /// empty configuration. Relative paths in the file are relative to the
    /// file's directory.
    fn load_with(explicit: Option<&Path>, env: Env<'_>) -> Result<(Config, Option<PathBuf>)> {
        let named = var(env, "AIRLOCK_CONFIG").map(PathBuf::from);
        let (path, required) = match (explicit, named) {
            (Some(p), _) => (p.to_path_buf(), true),
            (None, Some(p)) => (p, true),
            (None, None) => match default_path(env) {
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
        let mut c: Config = toml::from_str(&text).map_err(|e| parse_error(&path, &text, e))?;
        c.rebase(&crate::io::fsutil::parent_dir(&path));
        Ok((c, Some(path)))
    }
}

/// How the environment is read: `|name| std::env::var_os(name)` in the
/// program, a table in tests.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// A parse error of `path` that names the line, quotes it, and keeps the
/// parser's own words (the key and, for an unknown key, the keys allowed):
/// without `-v` the first line of toml's message said "at line 5,
/// column 1" and nothing else.
fn parse_error(path: &Path, text: &str, e: toml::de::Error) -> Error {
    let msg = e.message().trim().replace('\n', " ");
    let Some(span) = e.span() else {
        return Error::new(Code::ConfigInvalid, format!("{}: {msg}", path.display()))
            .with_hint(format!("fix {} as the message says", path.display()))
            .with_source(e);
    };
    let start = span.start.min(text.len());
    let before = text.as_bytes().get(..start).unwrap_or_default();
    let line_no = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = text.get(line_start..).unwrap_or_default();
    let line = line.lines().next().unwrap_or_default().trim();
    // The quoted line is shown on a terminal: no control characters, bounded.
    let mut shown: String = line
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(80)
        .collect();
    if line.chars().count() > 80 {
        shown.push('…');
    }
    let hint = match msg.strip_prefix("unknown field `").and_then(|r| r.split_once('`')) {
        Some((key, _)) => match closest_key(key) {
            Some(k) => format!(
                "did you mean `{k}`? correct the key on line {line_no} of {} to one of the keys listed, or remove the line",
                path.display()
            ),
            None => format!(
                "correct the key on line {line_no} of {} to one of the keys listed, or remove the line",
                path.display()
            ),
        },
        None => format!(
            "fix line {line_no} of {} as the message says (docs/operator-guide.md lists every key and its form)",
            path.display()
        ),
    };
    Error::new(
        Code::ConfigInvalid,
        format!("{}, line {line_no} ({shown}): {msg}", path.display()),
    )
    .with_hint(hint)
    .with_source(e)
}

/// The key of `airlock.toml` nearest to a misspelt `key` (at most two
/// edits away), to suggest in the error.
fn closest_key(key: &str) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    KEYS.iter()
        .map(|k| (distance(key, k.name), k.name))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// A variable that is set and not empty (empty counts as unset, as it does
/// for a flag given no value).
fn var(env: Env<'_>, name: &str) -> Option<OsString> {
    env(name).filter(|v| !v.is_empty())
}

/// One key of `airlock.toml`.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The key in `airlock.toml`.
    pub name: &'static str,
    /// The environment variable that sets it, between the flag and the file.
    pub env: Option<&'static str>,
    /// The command-line flag that sets it.
    pub flag: &'static str,
    /// The commands that take it.
    pub commands: &'static [&'static str],
    /// What it is.
    pub about: &'static str,
    /// What a flag's help says of its variable, when that is more than the
    /// variable's name (a secret's own variable, a list's separator).
    pub help_env: Option<&'static str>,
}

/// A flag's help: `lead`, then the variable and the configuration key that
/// also set it, from [`KEYS`] (so the help cannot name another variable
/// than the one read). A name not in the table gets `lead` alone.
pub fn flag_help(key: &str, lead: &str) -> String {
    let Some(k) = KEYS.iter().find(|k| k.name == key) else {
        return lead.to_string();
    };
    match k.help_env.or(k.env) {
        Some(env) => format!("{lead} [env: {env}; config: {}]", k.name),
        None => format!("{lead} [config: {}]", k.name),
    }
}

const TRUSTING: &[&str] = &["verify", "extract", "import", "watch"];
const IMPORTING: &[&str] = &["import", "watch"];
const LICENCE: &[&str] = &["licence"];

/// Declares every key of `airlock.toml` once — its name (the field),
/// type, what it is, its flag, the commands that take it and the variable
/// that sets it — and from that: the [`Config`] struct, the [`KEYS`]
/// table (which the man page, the help check and the docs check read), the
/// environment layer and the rebasing of the file's relative paths.
/// Adding a key is one entry here and its accessor, if it needs its own.
macro_rules! keys {
    ($(
        $(#[$attr:meta])*
        $name:ident: $ty:ty {
            flag: $flag:literal, commands: $commands:expr,
            about: $about:literal,
            $(env: $env:literal => $read:ident,)?
            $(help_env: $help_env:literal,)?
        }
    )*) => {
        /// One layer of configuration: the keys of `airlock.toml`
        /// ([`KEYS`]), each unset (`None`, empty) unless this layer gives
        /// it. The same type holds the flags layer and the environment layer.
        #[derive(Debug, Default, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Config {
            $(
                #[doc = $about]
                $(#[$attr])*
                pub $name: $ty,
            )*
        }

        /// Every key of `airlock.toml`, in the order the docs list them.
        /// Tests check that docs/import.md, docs/operator-guide.md, the man
        /// pages and every command's `--help` name each one.
        pub const KEYS: &[Key] = &[$(
            Key {
                name: stringify!($name),
                env: keys!(@env $($env)?),
                flag: $flag,
                commands: $commands,
                about: $about,
                help_env: keys!(@env $($help_env)?),
            },
        )*];

        impl Config {
            /// The environment layer: each key's variable ([`KEYS`]).
            fn from_env(env: Env<'_>) -> Config {
                let mut c = Config::default();
                $($( c.$name = $read(var(env, $env)); )?)*
                c
            }

            /// Make the file's relative paths relative to `base`, its directory.
            fn rebase(&mut self, base: &Path) {
                $( Rebase::rebase(&mut self.$name, base); )*
            }
        }
    };
    (@env $env:literal) => { Some($env) };
    (@env) => { None };
}

keys! {
    trust: Option<PathBuf> {
        flag: "--trust", commands: TRUSTING,
        about: "the allowed_signers file",
        env: "AIRLOCK_TRUST" => env_path,
    }
    revoked: Option<PathBuf> {
        flag: "--revoked", commands: TRUSTING,
        about: "revoked public keys, one per line, or a KRL",
        env: "AIRLOCK_REVOKED" => env_path,
    }
    #[serde(default)]
    identities: Vec<PathBuf> {
        flag: "--identity", commands: TRUSTING,
        about: "age identity files or OpenSSH keys to decrypt with (the variable is colon-separated)",
        env: "AIRLOCK_IDENTITY" => env_paths,
        help_env: "AIRLOCK_IDENTITY, colon-separated",
    }
    require_signers: Option<usize> {
        flag: "--require-signers", commands: TRUSTING,
        about: "valid signatures required from distinct trusted keys, 1 to 16 (default 1)",
    }
    state_dir: Option<PathBuf> {
        flag: "--state-dir", commands: &["export", "import", "watch", "log", "cloud", "fleet", "report"],
        about: "the state directory: sequence numbers, ledger, default outbox (default ~/.local/state/airlock)",
        env: "AIRLOCK_STATE_DIR" => env_path,
    }
    outbox: Option<PathBuf> {
        flag: "--outbox", commands: IMPORTING,
        about: "the outbox directory (default STATE_DIR/outbox)",
        env: "AIRLOCK_OUTBOX" => env_path,
    }
    enterprise: Option<String> {
        flag: "--enterprise", commands: &["import", "watch", "cloud"],
        about: "the GitHub Enterprise Cloud enterprise slug",
        env: "AIRLOCK_ENTERPRISE" => env_text,
    }
    submit_url: Option<String> {
        flag: "--submit-url", commands: IMPORTING,
        about: "an internal endpoint to POST verified payloads to, instead of the outbox",
        env: "AIRLOCK_SUBMIT_URL" => env_text,
    }
    submit_token_file: Option<PathBuf> {
        flag: "--submit-token-file", commands: IMPORTING,
        about: "the file holding the bearer token for submit_url (AIRLOCK_SUBMIT_TOKEN, the token itself, comes between the flag and the file)",
        help_env: "AIRLOCK_SUBMIT_TOKEN, the token itself",
    }
    #[serde(default, deserialize_with = "duration_key")]
    http_timeout: Option<Duration> {
        flag: "--http-timeout", commands: &["import", "watch", "cloud"],
        about: "the most one request to submit_url, or to GitHub (its whole answer included), may take (default 30s)",
    }
    #[serde(default, deserialize_with = "duration_key")]
    http_deadline: Option<Duration> {
        flag: "--http-deadline", commands: &["import", "watch", "cloud"],
        about: "the most a bundle's whole hand-over to submit_url may take, every file and retry included; for cloud, one request to GitHub with its retries (default 5min)",
    }
    ca_file: Option<PathBuf> {
        flag: "--ca-file", commands: &["import", "watch", "cloud", "licence"],
        about: "extra CA certificates (PEM) for HTTPS to GitHub, to submit_url and to the appliance",
    }
    api_url: Option<String> {
        flag: "--api-url", commands: &["cloud"],
        about: "the GitHub REST API base URL, for anything host does not cover",
    }
    host: Option<String> {
        flag: "--host", commands: &["cloud"],
        about: "the GitHub host: github.com or NAME.ghe.com (one of api_url and host)",
        env: "GH_HOST" => env_host,
    }
    token_file: Option<PathBuf> {
        flag: "--token-file", commands: &["cloud"],
        about: "the file holding the GitHub token (GH_TOKEN or GITHUB_TOKEN, the token itself, comes between the flag and the file)",
        help_env: "GH_TOKEN or GITHUB_TOKEN, the token itself",
    }
    licence_trust: Option<PathBuf> {
        flag: "--licence-trust", commands: LICENCE,
        about: "the isolated side's allowed_signers for licence bundles: connected-side keys only, principal = the enterprise slug",
        env: "AIRLOCK_LICENCE_TRUST" => env_path,
    }
    appliance_host: Option<String> {
        flag: "--appliance-host", commands: LICENCE,
        about: "the GHES appliance (its primary), reached over SSH as admin on port 122",
        env: "AIRLOCK_APPLIANCE_HOST" => env_text,
    }
    appliance_ssh_command: Option<String> {
        flag: "--appliance-ssh-command", commands: LICENCE,
        about: "the SSH command, words split at spaces, airlock's arguments appended, as GIT_SSH_COMMAND (default ssh)",
        env: "AIRLOCK_APPLIANCE_SSH_COMMAND" => env_text,
    }
    appliance_ssh_port: Option<u16> {
        flag: "--appliance-ssh-port", commands: LICENCE,
        about: "the appliance's administrative SSH port (default 122)",
    }
    appliance_ssh_user: Option<String> {
        flag: "--appliance-ssh-user", commands: LICENCE,
        about: "the SSH user (default admin)",
    }
    appliance_known_hosts: Option<PathBuf> {
        flag: "--appliance-known-hosts", commands: LICENCE,
        about: "the known_hosts file pinning the appliance's SSH host key (required for SSH)",
    }
    appliance_manage_url: Option<String> {
        flag: "--appliance-manage-url", commands: LICENCE,
        about: "the Manage GHES API (GHES 3.12+): https://HOST:8443",
        env: "AIRLOCK_APPLIANCE_MANAGE_URL" => env_text,
    }
    appliance_password_file: Option<PathBuf> {
        flag: "--appliance-password-file", commands: LICENCE,
        about: "the file holding the root site admin password for the Manage API (AIRLOCK_APPLIANCE_PASSWORD, the password itself, comes between the flag and the file)",
        help_env: "AIRLOCK_APPLIANCE_PASSWORD, the password itself",
    }
    appliance_api_url: Option<String> {
        flag: "--appliance-api-url", commands: LICENCE,
        about: "the appliance's REST API, https://HOST/api/v3: the source of seats in use",
    }
    appliance_token_file: Option<PathBuf> {
        flag: "--appliance-token-file", commands: LICENCE,
        about: "the file holding a site-admin token for appliance_api_url (AIRLOCK_APPLIANCE_TOKEN, the token itself, comes between the flag and the file)",
        help_env: "AIRLOCK_APPLIANCE_TOKEN, the token itself",
    }
    licence_auto_apply: Option<bool> {
        flag: "--licence-auto-apply", commands: &["licence watch"],
        about: "apply verified licence bundles without waiting for a person (applying restarts GHES services; default false)",
    }
    licence_warning_days: Option<u32> {
        flag: "--warning-days", commands: &["licence status"],
        about: "licence status: WARNING when the licence expires within this many days (default 30)",
    }
    licence_critical_days: Option<u32> {
        flag: "--critical-days", commands: &["licence status"],
        about: "licence status: CRITICAL when the licence expires within this many days (default 7)",
    }
}

/// A path variable.
fn env_path(v: Option<OsString>) -> Option<PathBuf> {
    v.map(PathBuf::from)
}

/// A text variable.
fn env_text(v: Option<OsString>) -> Option<String> {
    v.map(|v| v.to_string_lossy().into_owned())
}

/// A colon-separated list of paths.
fn env_paths(v: Option<OsString>) -> Vec<PathBuf> {
    v.map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default()
}

/// `GH_HOST`, which gh users may have set to blanks.
fn env_host(v: Option<OsString>) -> Option<String> {
    env_text(v).filter(|h| !h.trim().is_empty())
}

/// A key whose relative paths in the file are relative to the file's
/// directory (paths); other values stay as they are.
trait Rebase {
    /// Rebase the relative paths under `base`.
    fn rebase(&mut self, _base: &Path) {}
}

impl Rebase for Option<PathBuf> {
    fn rebase(&mut self, base: &Path) {
        if let Some(x) = self.as_mut() {
            if x.is_relative() {
                *x = base.join(&*x);
            }
        }
    }
}

impl Rebase for Vec<PathBuf> {
    fn rebase(&mut self, base: &Path) {
        for i in self.iter_mut() {
            if i.is_relative() {
                *i = base.join(&*i);
            }
        }
    }
}

impl Rebase for Option<String> {}
impl Rebase for Option<Duration> {}
impl Rebase for Option<bool> {}
impl Rebase for Option<u16> {}
impl Rebase for Option<u32> {}
impl Rebase for Option<usize> {}

/// Where a token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A file (a flag, or a key of the file).
    File(PathBuf),
    /// An environment variable holding the token itself.
    Env(&'static str),
}

/// The one resolved configuration: each key from the command line, else
/// the environment, else `airlock.toml`. Built once per command by the CLI.
#[derive(Debug, Default, Clone)]
pub struct Settings {
    flags: Config,
    env: Config,
    file: Config,
    /// The configuration file that was read, if any.
    pub file_path: Option<PathBuf>,
    github_token_env: Option<&'static str>,
    submit_token_env: bool,
    /// The secret-holding variables that are set (the appliance's
    /// password and token).
    secret_vars: Vec<&'static str>,
    /// HTTPS_PROXY, ALL_PROXY, NO_PROXY (either spelling), judged only
    /// when a command connects ([`Settings::proxies`]).
    proxy_vars: crate::net::ProxyVars,
    /// `XDG_STATE_HOME` and `HOME`, for the default state directory.
    state_home: (Option<OsString>, Option<OsString>),
    /// The values of the variables that hold a secret, read once.
    secrets: SecretVars,
}

/// The variables that hold a secret itself (a token, a password).
const SECRET_VARS: [&str; 5] = [
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "AIRLOCK_SUBMIT_TOKEN",
    "AIRLOCK_APPLIANCE_PASSWORD",
    "AIRLOCK_APPLIANCE_TOKEN",
];

/// The secret-holding variables that are set (not empty), with their
/// values; `Debug` shows the names only.
#[derive(Clone, Default)]
struct SecretVars(Vec<(&'static str, zeroize::Zeroizing<Vec<u8>>)>);

impl std::fmt::Debug for SecretVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

impl SecretVars {
    fn read(env: Env<'_>) -> SecretVars {
        use std::os::unix::ffi::OsStringExt;
        SecretVars(
            SECRET_VARS
                .into_iter()
                .filter_map(|n| var(env, n).map(|v| (n, zeroize::Zeroizing::new(v.into_vec()))))
                .collect(),
        )
    }
}

/// The first layer that has it.
fn first<T: Clone>(layers: [&Option<T>; 3]) -> Option<T> {
    layers.into_iter().find_map(|v| v.clone())
}

impl Settings {
    /// Resolve the flags given against the environment (`env`) and the
    /// configuration file (`--config`, else `AIRLOCK_CONFIG`, else the
    /// default location if it exists).
    pub fn load(flags: Config, config: Option<&Path>, env: Env<'_>) -> Result<Settings> {
        let (file, file_path) = Config::load_with(config, env)?;
        Settings::load_layers(flags, env, file, file_path)
    }

    /// `load` with the file's layer already read.
    fn load_layers(
        flags: Config,
        env: Env<'_>,
        file: Config,
        file_path: Option<PathBuf>,
    ) -> Result<Settings> {
        let github_token_env = ["GH_TOKEN", "GITHUB_TOKEN"]
            .into_iter()
            .find(|n| var(env, n).is_some_and(|t| !t.to_string_lossy().trim().is_empty()));
        let mut s = Settings::resolve(
            flags,
            Config::from_env(env),
            file,
            file_path,
            github_token_env,
            var(env, "AIRLOCK_SUBMIT_TOKEN").is_some(),
        )?;
        s.proxy_vars = crate::net::ProxyVars::read(env);
        s.state_home = (var(env, "XDG_STATE_HOME"), var(env, "HOME"));
        s.secrets = SecretVars::read(env);
        s.secret_vars = ["AIRLOCK_APPLIANCE_PASSWORD", "AIRLOCK_APPLIANCE_TOKEN"]
            .into_iter()
            .filter(|n| var(env, n).is_some())
            .collect();
        Ok(s)
    }

    /// Resolve three layers; refuses a file whose values cannot work.
    fn resolve(
        flags: Config,
        env: Config,
        file: Config,
        file_path: Option<PathBuf>,
        github_token_env: Option<&'static str>,
        submit_token_env: bool,
    ) -> Result<Settings> {
        let shown = || {
            file_path
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "airlock.toml".into())
        };
        if let Some(n) = file.require_signers {
            if !(1..=16).contains(&n) {
                return Err(Error::new(
                    Code::ConfigInvalid,
                    format!("{}: require_signers = {n}: a number from 1 to 16", shown()),
                ));
            }
        }
        if file.api_url.is_some() && file.host.is_some() {
            return Err(Error::new(
                Code::ConfigInvalid,
                format!("{} sets both api_url and host", shown()),
            )
            .with_hint("keep one: host = \"NAME.ghe.com\", or api_url for anything else"));
        }
        Ok(Settings {
            flags,
            env,
            file,
            file_path,
            github_token_env,
            submit_token_env,
            secret_vars: Vec::new(),
            proxy_vars: crate::net::ProxyVars::default(),
            state_home: (None, None),
            secrets: SecretVars::default(),
        })
    }

    /// The allowed_signers file; required.
    pub fn trust(&self) -> Result<PathBuf> {
        first([&self.flags.trust, &self.env.trust, &self.file.trust]).ok_or_else(|| {
            Error::new(Code::Args, "no trust file").with_hint(
                "pass --trust ALLOWED_SIGNERS, set AIRLOCK_TRUST, or set trust in airlock.toml",
            )
        })
    }

    /// The revoked-keys file (public keys one per line, or a KRL), if any.
    pub fn revoked(&self) -> Option<PathBuf> {
        first([&self.flags.revoked, &self.env.revoked, &self.file.revoked])
    }

    /// Identities to decrypt with: the first layer that names any.
    pub fn identities(&self) -> Vec<PathBuf> {
        [&self.flags, &self.env, &self.file]
            .into_iter()
            .map(|c| &c.identities)
            .find(|v| !v.is_empty())
            .cloned()
            .unwrap_or_default()
    }

    /// Signatures required from distinct trusted keys (default 1).
    pub fn require_signers(&self) -> usize {
        first([
            &self.flags.require_signers,
            &self.env.require_signers,
            &self.file.require_signers,
        ])
        .unwrap_or(1)
    }

    /// The state directory: configured, else the default
    /// (`$XDG_STATE_HOME/airlock`, else `~/.local/state/airlock`). The one
    /// place this fallback is written.
    pub fn state_dir(&self) -> Result<PathBuf> {
        match first([
            &self.flags.state_dir,
            &self.env.state_dir,
            &self.file.state_dir,
        ]) {
            Some(d) => Ok(d),
            None => self.default_state_dir(),
        }
    }

    /// The invoking user's default state directory, whatever is configured
    /// (a hint leaves out `--state-dir` for it).
    pub fn default_state_dir(&self) -> Result<PathBuf> {
        let (xdg, home) = &self.state_home;
        crate::state::default_state_dir_in(xdg.as_deref(), home.as_deref())
    }

    /// The outbox, if one is named (else the state directory's).
    pub fn outbox(&self) -> Option<PathBuf> {
        first([&self.flags.outbox, &self.env.outbox, &self.file.outbox])
    }

    /// The GitHub Enterprise Cloud enterprise slug, if any.
    pub fn enterprise(&self) -> Option<String> {
        first([
            &self.flags.enterprise,
            &self.env.enterprise,
            &self.file.enterprise,
        ])
    }

    /// The internal endpoint to POST verified payloads to instead of the
    /// outbox, if any.
    pub fn submit_url(&self) -> Option<String> {
        first([
            &self.flags.submit_url,
            &self.env.submit_url,
            &self.file.submit_url,
        ])
    }

    /// A key's value from the first layer that sets it: the flag, the
    /// environment, the file.
    pub fn pick<T: Clone>(&self, key: impl Fn(&Config) -> &Option<T>) -> Option<T> {
        first([key(&self.flags), key(&self.env), key(&self.file)])
    }

    /// Where a secret comes from: the flag's file, else the variable holding
    /// it, else the configuration file's file.
    pub fn secret(
        &self,
        file: impl Fn(&Config) -> &Option<PathBuf>,
        var: &'static str,
    ) -> Option<TokenSource> {
        if let Some(f) = file(&self.flags) {
            return Some(TokenSource::File(f.clone()));
        }
        if self.secret_vars.contains(&var) {
            return Some(TokenSource::Env(var));
        }
        file(&self.file).clone().map(TokenSource::File)
    }

    /// Where the bearer token for `submit_url` comes from: `--submit-token-file`,
    /// else `AIRLOCK_SUBMIT_TOKEN`, else `submit_token_file`; `None`: no token.
    pub fn submit_token(&self) -> Option<TokenSource> {
        if let Some(f) = &self.flags.submit_token_file {
            return Some(TokenSource::File(f.clone()));
        }
        if self.submit_token_env {
            return Some(TokenSource::Env("AIRLOCK_SUBMIT_TOKEN"));
        }
        self.file.submit_token_file.clone().map(TokenSource::File)
    }

    /// How long one request to the submit URL, and a bundle's whole
    /// hand-over there, may take (defaults: 30 s and 5 min).
    pub fn http_timing(&self) -> crate::connected::handover::HttpTiming {
        let d = crate::connected::handover::HttpTiming::default();
        crate::connected::handover::HttpTiming {
            timeout: first([
                &self.flags.http_timeout,
                &self.env.http_timeout,
                &self.file.http_timeout,
            ])
            .unwrap_or(d.timeout),
            deadline: first([
                &self.flags.http_deadline,
                &self.env.http_deadline,
                &self.file.http_deadline,
            ])
            .unwrap_or(d.deadline),
        }
    }

    /// Extra CA certificates (PEM) to trust for HTTPS to GitHub and to the
    /// submit URL, besides the system's, if any.
    pub fn ca_file(&self) -> Option<PathBuf> {
        first([&self.flags.ca_file, &self.env.ca_file, &self.file.ca_file])
    }

    /// The proxy for HTTPS to GitHub and to the submit URL, from
    /// `HTTPS_PROXY`, else `ALL_PROXY`, with `NO_PROXY` (decision 76); an
    /// error for a variable that cannot be used.
    pub fn proxies(&self) -> Result<crate::net::Proxies> {
        self.proxy_vars.resolve()
    }

    /// The value of a variable that holds a secret ([`TokenSource::Env`]),
    /// as read when the settings were loaded; `None` when it is not set.
    pub fn secret_var(&self, name: &str) -> Option<&[u8]> {
        self.secrets
            .0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Where the GitHub token comes from: `--token-file`, else `GH_TOKEN`
    /// or `GITHUB_TOKEN`, else `token_file`; `None`: there is none.
    pub fn github_token(&self) -> Option<TokenSource> {
        if let Some(f) = &self.flags.token_file {
            return Some(TokenSource::File(f.clone()));
        }
        if let Some(v) = self.github_token_env {
            return Some(TokenSource::Env(v));
        }
        self.file.token_file.clone().map(TokenSource::File)
    }

    /// The GitHub API base: the first layer that sets `api_url` or `host`
    /// (`--api-url`/`--host`, then `GH_HOST`, then the file), else
    /// api.github.com. A host becomes its API URL as `gh` derives it.
    pub fn api_url(&self) -> Result<String> {
        if let Some(u) = &self.flags.api_url {
            return Ok(u.clone());
        }
        if let Some(h) = &self.flags.host {
            return crate::connected::cloud::api_url_for_host(h);
        }
        if let Some(h) = &self.env.host {
            return crate::connected::cloud::api_url_for_host(h).map_err(|e| {
                e.context("GH_HOST").with_hint(
                    "GH_HOST names the GitHub host for gh; the license endpoints exist only on github.com and NAME.ghe.com: unset GH_HOST for this command, or pass --host or --api-url",
                )
            });
        }
        match (&self.file.api_url, &self.file.host) {
            (Some(u), _) => Ok(u.clone()),
            (None, Some(h)) => crate::connected::cloud::api_url_for_host(h),
            (None, None) => Ok(crate::connected::cloud::DEFAULT_API_URL.into()),
        }
    }
}

#[cfg(test)]
mod tests;
