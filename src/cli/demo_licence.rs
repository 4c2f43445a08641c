//! `airlock demo`, the inward leg (issue 29): the connected side exports a
//! renewed licence, the isolated side's `licence import` applies it to a
//! GHES appliance. Both the licence and the appliance are STAND-INS
//! (`sample::appliance_licence`, `standin::appliance`): the appliance is a
//! state directory answered by `airlock standin-appliance`, run as the
//! configured SSH command, so no sshd is needed, and it says "not GHES".

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::standin_appliance as standin;
use airlock::appliance::licence_in::{import_licence, LicenceImport, SeatDecrease};
use airlock::appliance::ssh::{SshAppliance, SshConfig};
use airlock::crypt::Recipients;
use airlock::error::{Error, Result};
use airlock::export::{self, Input};
use airlock::format::licence::LicenceInput;
use airlock::format::manifest::format_time;
use airlock::import::Opened;
use airlock::sample;
use airlock::trust::TrustStore;
use airlock::verify::Clock;
use airlock::{fsutil, keys, names};

use super::demo::{bug, verify_opts, Exporter, Importer, Story, ENTERPRISE};

/// What the inward leg did (`--json`: `licence_in`).
#[derive(Debug, serde::Serialize)]
pub struct LicenceIn {
    /// Says what the appliance and the licences are.
    pub stand_in: &'static str,
    /// The reference applied and confirmed.
    pub applied: String,
    /// The reference it replaced.
    pub active_before: String,
    /// Where the outgoing licence was kept.
    pub backup: Vec<String>,
    /// The code that refused the same licence again.
    pub replayed: &'static str,
    /// The code that refused a usage bundle carried inward.
    pub usage_bundle: &'static str,
}

const DAY: Duration = Duration::from_secs(86_400);

/// Steps 12 and 13.
pub(super) fn inward_leg(
    st: &mut Story,
    dir: &Path,
    ex: &Exporter,
    imp: &Importer,
    usage_bundle: &export::ExportReport,
) -> Result<LicenceIn> {
    let (licence_bundle, trust) = export_step(st, dir, imp)?;
    import_step(st, dir, ex, &licence_bundle, &trust, &usage_bundle.path)
}

/// Step 12: the connected side's licence key, and the export of the
/// renewed (stand-in) licence file. Returns the bundle and the isolated
/// side's licence trust file.
fn export_step(st: &mut Story, dir: &Path, imp: &Importer) -> Result<(PathBuf, TrustStore)> {
    st.step(&format!(
        "connected side: airlock export github-enterprise-DEMO2.ghl --enterprise {ENTERPRISE} --key … --out stick/"
    ));
    st.say("a renewed licence, downloaded from the enterprise's settings page in a browser;");
    st.say("here a STAND-IN LICENCE made by the demo (not a GHES licence)");
    let key_path = dir.join("importer/airlock_licence_ed25519");
    let g = keys::generate(&key_path, "demo connected side licence key", None, true)?;
    let signer = keys::load_signer(&key_path, &mut || Err(bug("the demo key has a passphrase")))?;
    let ghl = dir.join("importer/github-enterprise-DEMO2.ghl");
    let expire = format_time(SystemTime::now() + 385 * DAY);
    let bytes = sample::appliance_licence("DEMO2", Some(500), &expire);
    fsutil::write_atomic(&ghl, &bytes, 0o600, true)?;
    let licence = LicenceInput::new(&ghl, ENTERPRISE, None)?;
    let report = export::export(export::ExportOptions {
        progress: crate::cli::progress(),
        inputs: vec![Input::licence(&ghl, licence)],
        bundle: export::BundleSpec {
            signer: &signer,
            host_name: None,
            server_id: None,
            created: SystemTime::now(),
            expires_in: 30 * DAY,
            tool: airlock::tool_version(),
            recipients: &Recipients::default(),
        },
        now: Clock::System,
        out: dir.join("stick"),
        overwrite: false,
        state: &imp.state,
        read_back: true,
    })?;
    st.say(&format!(
        "signed with {} for {ENTERPRISE}; wrote {} (not encrypted: sha256sum checks it)",
        g.public.fingerprint(),
        names::shown(&report.path)
    ));
    // The isolated side trusts this key for licences only, in its own file.
    let allowed = dir.join("exporter/licence_allowed_signers");
    let line = format!(
        "{}\n",
        super::keygen::allowed_line(ENTERPRISE, &g.public_line)
    );
    fsutil::write_atomic(&allowed, line.as_bytes(), 0o644, true)?;
    st.say(&format!(
        "isolated side's licence_trust: {}",
        line.trim_end()
    ));
    Ok((report.path, TrustStore::load(&allowed, None)?))
}

/// `dir` when ssh can take a path in it as one word, else a fresh
/// temporary directory (removed when the guard is dropped).
fn ssh_safe_dir(dir: &Path) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    let b = dir.as_os_str().as_encoded_bytes();
    if !b.iter().any(|c| c.is_ascii_whitespace() || *c == b'%') && b.first() != Some(&b'~') {
        return Ok((dir.to_path_buf(), None));
    }
    let t = tempfile::Builder::new()
        .prefix("airlock-demo-")
        .tempdir()
        .map_err(|e| Error::io_write(&std::env::temp_dir(), e))?;
    fsutil::track_temp_dir(t.path());
    Ok((t.path().to_path_buf(), Some(t)))
}

/// The appliance stand-in's state (DEMO1 active, expiring in 20 days), its
/// host key pinned in a known_hosts file, and the SSH way to it: this
/// binary's `standin-appliance` as the SSH command.
fn appliance(st: &Story, dir: &Path) -> Result<(SshAppliance, Option<tempfile::TempDir>)> {
    let app = dir.join("appliance");
    std::fs::create_dir_all(&app).map_err(|e| Error::io_write(&app, e))?;
    let active = sample::appliance_licence(
        "DEMO1",
        Some(500),
        &format_time(SystemTime::now() + 20 * DAY),
    );
    fsutil::write_atomic(&app.join(standin::ACTIVE_FILE), &active, 0o600, true)?;
    let host_key = dir.join("appliance-host-key");
    let g = keys::generate(&host_key, "demo appliance stand-in host key", None, true)?;
    let host_pub = format!("{}\n", g.public_line.trim_end());
    fsutil::write_atomic(
        &app.join(standin::HOST_KEY),
        host_pub.as_bytes(),
        0o644,
        true,
    )?;
    // ssh reads the known_hosts path as one word: a demo directory whose
    // name holds a space or `%` (`--dir`) keeps the file in a temporary
    // directory of its own instead.
    let (kh_dir, guard) = ssh_safe_dir(&dir.join("exporter"))?;
    let known_hosts = kh_dir.join("appliance_known_hosts");
    let pinned = format!("[ghes.example.com]:122 {host_pub}");
    fsutil::write_atomic(&known_hosts, pinned.as_bytes(), 0o644, true)?;
    let exe =
        std::env::current_exe().map_err(|e| Error::io_read(Path::new("/proc/self/exe"), e))?;
    let mut cfg = SshConfig::new(sample::SAMPLE_HOST, known_hosts);
    cfg.command = vec![
        exe.into_os_string(),
        OsString::from("standin-appliance"),
        OsString::from("--state"),
        app.into_os_string(),
    ];
    st.say(
        "STAND-IN, NOT GHES: the appliance is a directory answered by `airlock standin-appliance`,",
    );
    st.say("run as the SSH command (appliance_ssh_command) in ssh's place; its host key is pinned");
    st.say(&format!(
        "active now: DEMO1 (500 seats, expires {})",
        format_time(SystemTime::now() + 20 * DAY)
    ));
    SshAppliance::new(cfg).map(|a| (a, guard))
}

/// Step 13: `airlock licence import` on the isolated side, then the same
/// licence again and a usage bundle carried the wrong way, both refused.
fn import_step(
    st: &mut Story,
    dir: &Path,
    ex: &Exporter,
    licence_bundle: &Path,
    trust: &TrustStore,
    usage_bundle: &Path,
) -> Result<LicenceIn> {
    st.step("isolated side: airlock licence import BUNDLE (to the appliance STAND-IN over its SSH face)");
    let (mut app, _known_hosts_dir) = appliance(st, dir)?;
    let opts = LicenceImport {
        verify: verify_opts(trust, None),
        state: &ex.state,
        seat_decrease: SeatDecrease::Refuse,
    };
    let r = import_licence(Opened::open(licence_bundle)?, &opts, &mut app)?;
    let before = r.active_before.as_ref().map(|b| b.reference.to_string());
    st.say(&format!(
        "dry run read {}; replaced {}; backup {}",
        r.reference,
        before.as_deref().unwrap_or("-"),
        r.backup
            .iter()
            .map(|b| names::one_line(b))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    st.say(&format!(
        "read back: {} active (expires {}), check {}",
        r.active_after.reference,
        r.active_after.expire_at,
        if r.check_valid { "valid" } else { "NOT valid" }
    ));
    let mut refused = |st: &Story, what: &str, bundle: &Path| -> Result<&'static str> {
        match import_licence(Opened::open(bundle)?, &opts, &mut app) {
            Ok(_) => Err(bug(&format!("{what} was applied"))),
            Err(e) => {
                st.say(&format!("{what}: REJECTED {}", e.code.as_str()));
                Ok(e.code.as_str())
            }
        }
    };
    let replayed = refused(st, "the same licence again", licence_bundle)?;
    let usage = refused(st, "the usage bundle carried inward", usage_bundle)?;
    let ledger = airlock::ledger::Ledger::open(ex.state.path())?;
    let (n, _) = ledger.verify_chain()?;
    st.say(&format!(
        "the isolated side's ledger: {n} records, chain verified (airlock log shows `licence DEMO2 ({ENTERPRISE})`)"
    ));
    Ok(LicenceIn {
        stand_in: "appliance stand-in and stand-in licences, not GHES",
        applied: r.reference,
        active_before: before.unwrap_or_default(),
        backup: r.backup,
        replayed,
        usage_bundle: usage,
    })
}
