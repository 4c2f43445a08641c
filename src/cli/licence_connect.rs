//! The appliance the configuration names (decision 83): SSH when
//! `appliance_host` is set, the Manage API when `appliance_manage_url` is;
//! with both, the Manage API applies and reads, and SSH does what only it
//! can (the dry run of the candidate, the backup of the file itself, the
//! file's digest after the apply).

use std::ffi::OsString;

use airlock::appliance::manage::{ManageApi, ManageConfig};
use airlock::appliance::ssh::{SshAppliance, SshConfig};
use airlock::appliance::{Appliance, Backup, LicenceInfo, Path, SeatsSource, SeatsUsed};
use airlock::config::Settings;
use airlock::error::{Code, Error, Result};
use airlock::format::manifest::HexDigest;

use super::licence::read_secret;

/// Connect as configured, or say what to configure.
pub fn connect(s: &Settings) -> Result<Box<dyn Appliance>> {
    let seats = seats_source(s)?;
    let ssh = match s.pick(|c| &c.appliance_host) {
        None => None,
        Some(host) => Some(ssh(s, host, seats.clone())?),
    };
    let api = match s.pick(|c| &c.appliance_manage_url) {
        None => None,
        Some(url) => Some(manage(s, url, seats)?),
    };
    match (ssh, api) {
        (Some(ssh), None) => Ok(Box::new(ssh)),
        (None, Some(api)) => Ok(Box::new(api)),
        (Some(ssh), Some(api)) => Ok(Box::new(Both { ssh, api })),
        (None, None) => Err(Error::new(Code::Args, "no appliance is configured")
            .with_hint("set appliance_host (SSH, with appliance_known_hosts) or appliance_manage_url (the Manage API) in airlock.toml, or pass --appliance-host / --appliance-manage-url (docs/licence-in.md)")),
    }
}

fn ssh(s: &Settings, host: String, seats: Option<SeatsSource>) -> Result<SshAppliance> {
    let known_hosts = s.pick(|c| &c.appliance_known_hosts).ok_or_else(|| {
        Error::new(Code::ApplianceHostKey, "no known_hosts file pins the appliance's SSH host key")
            .with_hint("write the appliance's host key line into a file (ssh-keyscan -p 122 HOST, checked against the fingerprint on the appliance's console) and set appliance_known_hosts")
    })?;
    let mut cfg = SshConfig::new(host, known_hosts);
    if let Some(cmd) = s.pick(|c| &c.appliance_ssh_command) {
        let words: Vec<OsString> = cmd.split_whitespace().map(OsString::from).collect();
        if words.is_empty() {
            return Err(Error::new(Code::ConfigInvalid, "appliance_ssh_command is empty")
                .with_hint("give a command such as `ssh -i /etc/airlock/appliance_key`, or leave it unset for ssh"));
        }
        cfg.command = words;
    }
    if let Some(p) = s.pick(|c| &c.appliance_ssh_port) {
        cfg.port = p;
    }
    if let Some(u) = s.pick(|c| &c.appliance_ssh_user) {
        cfg.user = u;
    }
    cfg.seats = seats;
    SshAppliance::new(cfg)
}

fn manage(s: &Settings, url: String, seats: Option<SeatsSource>) -> Result<ManageApi> {
    let src = s.secret(|c| &c.appliance_password_file, "AIRLOCK_APPLIANCE_PASSWORD");
    let password = read_secret(s, src)?.ok_or_else(|| {
        Error::new(Code::Args, "the Manage API needs the root site admin password")
            .with_hint("put it in a file readable only by airlock's user and set appliance_password_file (or AIRLOCK_APPLIANCE_PASSWORD); it is never stored or printed")
    })?;
    let mut cfg = ManageConfig::new(url, password);
    cfg.ca_file = s.ca_file();
    cfg.seats = seats;
    ManageApi::new(cfg)
}

fn seats_source(s: &Settings) -> Result<Option<SeatsSource>> {
    let Some(api_url) = s.pick(|c| &c.appliance_api_url) else {
        return Ok(None);
    };
    let src = s.secret(|c| &c.appliance_token_file, "AIRLOCK_APPLIANCE_TOKEN");
    let token = read_secret(s, src)?.ok_or_else(|| {
        Error::new(Code::Args, "appliance_api_url needs a site-admin token").with_hint(
            "set appliance_token_file (or AIRLOCK_APPLIANCE_TOKEN), or unset appliance_api_url",
        )
    })?;
    Ok(Some(SeatsSource {
        api_url,
        token,
        ca_file: s.ca_file(),
    }))
}

/// Both ways configured: the Manage API applies and reads the active
/// licence; SSH reads the candidate first, keeps the file and digests it.
struct Both {
    ssh: SshAppliance,
    api: ManageApi,
}

impl Appliance for Both {
    fn path(&self) -> Path {
        Path::ManageApi
    }
    fn describe(&self) -> String {
        format!(
            "{} (dry run and backup: {})",
            self.api.describe(),
            self.ssh.describe()
        )
    }
    fn dry_run(&mut self, licence: &[u8]) -> Result<Option<LicenceInfo>> {
        self.ssh.dry_run(licence)
    }
    fn active(&mut self) -> Result<LicenceInfo> {
        self.api.active()
    }
    fn backup(&mut self) -> Result<Backup> {
        self.ssh.backup()
    }
    fn apply(&mut self, licence: &[u8]) -> Result<()> {
        self.api.apply(licence)
    }
    fn check(&mut self) -> Result<bool> {
        self.api.check()
    }
    fn active_sha256(&mut self) -> Result<Option<HexDigest>> {
        self.ssh.active_sha256()
    }
    fn seats_used(&mut self) -> Result<Option<SeatsUsed>> {
        self.api.seats_used()
    }
}
