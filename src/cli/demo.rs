//! `airlock demo`: the whole job on built-in sample data, step by step:
//! keys, export (signed and encrypted), the boundary check, import with the
//! upload steps, an attacker's forged and older bundles, then `cloud status`,
//! `cloud seats` and `fleet` against a loopback stand-in for GitHub's API
//! that the demo starts itself (it is not GitHub, and says so); then the
//! inward leg: a renewed licence (a stand-in licence) exported on the
//! connected side and applied by `licence import` to a GHES appliance
//! STAND-IN reached through its SSH face as the SSH command (no sshd).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::standin_cloud::StandIn;
use airlock::crypt::{Identities, Recipients};
use airlock::error::{Code, Error, Result};
use airlock::export::{self, Input};
use airlock::fleet::{self, Thresholds};
use airlock::format::manifest::format_time;
use airlock::handover::Target;
use airlock::import::{import, ImportOptions};
use airlock::names;
use airlock::sample;
use airlock::state::StateDir;
use airlock::trust::TrustStore;
use airlock::verify::{verify_file, VerifyOptions};
use airlock::verify::{Clock, DEFAULT_SKEW};
use airlock::{fsutil, keys};

use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Work in DIR (kept afterwards) instead of a temporary directory
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

const STEPS: usize = 13;
pub(super) const ENTERPRISE: &str = "octo-corp";

/// Prints the human story, unless --json asks for the summary only.
pub(super) struct Story {
    json: bool,
    step: usize,
}

impl Story {
    pub(super) fn step(&mut self, title: &str) {
        self.step += 1;
        if !self.json {
            outln!("\n[{}/{STEPS}] {title}", self.step);
        }
    }
    pub(super) fn say(&self, s: &str) {
        if !self.json {
            outln!("      {s}");
        }
    }
}

pub(super) fn bug(what: &str) -> Error {
    Error::new(Code::Internal, format!("{what}: this is a bug"))
}

pub(super) fn verify_opts<'a>(
    trust: &'a TrustStore,
    ids: Option<&'a Identities>,
) -> VerifyOptions<'a> {
    VerifyOptions {
        progress: crate::cli::progress(),
        trust,
        now: Clock::System,
        skew: DEFAULT_SKEW,
        identities: ids,
        require_signers: 1,
    }
}

/// The exporter's side, as the first four steps leave it.
pub(super) struct Exporter {
    fingerprint: String,
    public_line: String,
    id_path: PathBuf,
    recipient: String,
    usage_path: PathBuf,
    signer: keys::Signer,
    pub(super) state: StateDir,
    recipients: Recipients,
    stick: PathBuf,
}

impl Exporter {
    /// `airlock export` of the sample usage file onto the stick, dated `created`.
    fn export(&self, created: SystemTime) -> Result<export::ExportReport> {
        export::export(export::ExportOptions {
            progress: crate::cli::progress(),
            inputs: vec![Input::path(&self.usage_path)?],
            bundle: export::BundleSpec {
                signer: &self.signer,
                host_name: None,
                server_id: None,
                created,
                expires_in: Duration::from_secs(30 * 24 * 3600),
                tool: airlock::tool_version(),
                recipients: &self.recipients,
            },
            now: Clock::System,
            out: self.stick.clone(),
            overwrite: false,
            state: &self.state,
            read_back: true,
        })
    }
}

/// The importer's side.
pub(super) struct Importer {
    trust: TrustStore,
    ids: Identities,
    pub(super) state: StateDir,
    outbox: PathBuf,
}

/// The first import, and what a second import of the same bundle said.
struct FirstImport {
    report: airlock::import::ImportReport,
    handed_at: SystemTime,
    again: &'static str,
}

impl Importer {
    fn import(&self, bundle: &std::path::Path) -> Result<airlock::import::ImportReport> {
        import(
            bundle,
            &ImportOptions {
                verify: verify_opts(&self.trust, Some(&self.ids)),
                state: &self.state,
                target: Target::Outbox(self.outbox.clone()),
                enterprise: Some(ENTERPRISE.into()),
                status: airlock::handover::StatusCommand::new(self.state.path(), None, None),
            },
        )
    }
}

/// What the Cloud steps found.
struct CloudView {
    synced: Vec<airlock::confirm::InstanceSync>,
    seats: fleet::SeatReport,
    rows: Vec<fleet::Instance>,
    ledger: airlock::ledger::Ledger,
}

pub fn run(a: Args) -> Result<()> {
    let json = super::json();
    let keep = a.dir.is_some();
    // `_tmp` removes the directory when the demo ends.
    let (dir, _tmp) = demo_dir(a.dir)?;
    let mut st = Story { json, step: 0 };
    if !json {
        outln!("airlock demo in {}", names::shown(&dir));
    }
    let ex = exporter_side(&mut st, &dir)?;
    let report = export_step(&mut st, &ex)?;
    let trust = boundary_step(&mut st, &dir, &ex, &report)?;
    let (imp, first) = import_step(&mut st, &dir, &ex, &report, trust)?;
    let (forged, older) = attacker_step(&mut st, &dir, &ex, &imp, &report)?;
    let cloud = cloud_steps(&mut st, &imp, first.handed_at)?;
    let (records, head) = audit_step(&mut st, &cloud.ledger)?;
    let inward = super::demo_licence::inward_leg(&mut st, &dir, &ex, &imp, &report)?;
    if json {
        super::print_json(&DemoDoc {
            ok: true,
            dir: super::output::OptName::new("dir", keep.then_some(dir.as_os_str())),
            encrypted_to: vec![ex.recipient.clone()],
            verified_without_identity: true,
            handed_over: &first.report.handed_over,
            imported_again: first.again,
            forged,
            older,
            stand_in: "loopback stand-in for GitHub's API, not GitHub",
            cloud_status: &cloud.synced,
            seats: &cloud.seats,
            fleet: &cloud.rows,
            ledger: DemoLedger { records, head },
            licence_in: &inward,
            bundle: super::output::Name::new("bundle", &report.path),
        });
        return Ok(());
    }
    print_verdict(keep, &inward, &first, &imp);
    outln!("Check a bundle by hand with standard tools: docs/verify-by-hand.md");
    Ok(())
}

/// `demo --json`'s document (docs/json-output.md).
#[derive(serde::Serialize)]
struct DemoDoc<'a> {
    ok: bool,
    #[serde(flatten)]
    dir: super::output::OptName,
    encrypted_to: Vec<String>,
    verified_without_identity: bool,
    handed_over: &'a [String],
    imported_again: &'static str,
    forged: &'static str,
    older: &'static str,
    stand_in: &'static str,
    cloud_status: &'a [airlock::confirm::InstanceSync],
    seats: &'a fleet::SeatReport,
    fleet: &'a [fleet::Instance],
    ledger: DemoLedger,
    licence_in: &'a super::demo_licence::LicenceIn,
    #[serde(flatten)]
    bundle: super::output::Name,
}

/// The audit step's chain.
#[derive(serde::Serialize)]
struct DemoLedger {
    records: usize,
    head: String,
}

/// The demo's directory: `dir`, or a temporary one (removed when the
/// returned guard is dropped, or if the demo is interrupted), with its
/// three sides' subdirectories.
fn demo_dir(dir: Option<PathBuf>) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    let mut tmp = None;
    let dir = match dir {
        Some(d) => {
            fsutil::ensure_dir(&d, "demo directory")?;
            d
        }
        None => {
            let t = tempfile::tempdir().map_err(|e| Error::io_write(&std::env::temp_dir(), e))?;
            // Removed if the demo is interrupted, too.
            fsutil::track_temp_dir(t.path());
            let d = t.path().to_path_buf();
            tmp = Some(t);
            d
        }
    };
    for sub in ["exporter", "stick", "importer"] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).map_err(|e| Error::io_write(&d, e))?;
    }
    Ok((dir, tmp))
}

/// The human form's closing verdict, and where the usage file to upload is.
fn print_verdict(
    keep: bool,
    inward: &super::demo_licence::LicenceIn,
    first: &FirstImport,
    imp: &Importer,
) {
    outln!("\nverdict: the genuine bundle verified, decrypted and was handed over once with its upload steps;");
    outln!("the forged and the older one were refused; the (stand-in) Cloud confirmed the sync.");
    outln!(
        "Inward: licence {} replaced {} on the (stand-in) appliance, backed up first and read back;",
        inward.applied,
        inward.active_before
    );
    outln!("the same licence again and a usage bundle carried inward were refused.");
    if keep {
        let payload = first
            .report
            .handed_over
            .iter()
            .find(|h| !h.ends_with(".UPLOAD.txt"));
        match payload {
            Some(p) => outln!("The usage file to upload: {}", names::shown(p)),
            None => outln!("The usage file to upload: {}", names::shown(&imp.outbox)),
        }
    } else {
        outln!("(The demo directory is removed now; run `airlock demo --dir DIR` to keep it.)");
    }
}

/// Steps 1-3: the exporter's key, the importer's age identity, the usage file.
fn exporter_side(st: &mut Story, dir: &std::path::Path) -> Result<Exporter> {
    st.step("exporter: make a signing key (airlock keygen)");
    let key_path = dir.join("exporter/airlock_ed25519");
    let g = keys::generate(&key_path, "demo exporter", None, true)?;
    st.say(&format!(
        "{} ({})",
        names::shown(&key_path),
        g.public.fingerprint()
    ));

    st.step("importer: make an age identity to encrypt to (airlock keygen --age)");
    let id_path = dir.join("importer/identity.txt");
    let (id_text, recipient) = airlock::crypt::generate_identity(&format_time(SystemTime::now()));
    fsutil::write_atomic(&id_path, id_text.as_bytes(), 0o600, true)?;
    st.say(&format!("{} (mode 600)", names::shown(&id_path)));
    st.say(&format!("recipient {recipient}: given to the exporter"));

    st.step("exporter: the GHES license usage file (synthetic sample, users in clear)");
    let usage_path = dir.join("exporter/license-usage.json");
    let usage = sample::usage_clear(sample::SAMPLE_HOST, sample::SAMPLE_SERVER_ID, 2);
    fsutil::write_atomic(&usage_path, &usage, 0o600, true)?;
    st.say(&format!(
        "{} ({} bytes): it names every user, so it travels encrypted",
        names::shown(&usage_path),
        usage.len()
    ));
    let signer = keys::load_signer(&key_path, &mut || Err(bug("the demo key has a passphrase")))?;
    let mut recipients = Recipients::default();
    recipients.add(&recipient)?;
    Ok(Exporter {
        fingerprint: g.public.fingerprint(),
        public_line: g.public_line,
        id_path,
        recipient,
        usage_path,
        signer,
        state: StateDir::open(&dir.join("exporter/state"))?,
        recipients,
        stick: dir.join("stick"),
    })
}

/// Step 4: export, signed and encrypted, read back from the stick.
fn export_step(st: &mut Story, ex: &Exporter) -> Result<export::ExportReport> {
    st.step("exporter: airlock export license-usage.json --key … --recipient age1… --out stick/");
    let report = ex.export(SystemTime::now())?;
    for (_, u) in &report.usage {
        st.say(&format!(
            "recognised GHES {} usage of {} ({}), users {}",
            u.version.as_deref().unwrap_or("?"),
            u.host_name,
            u.server_id,
            u.users
        ));
    }
    st.say(&format!(
        "signed with {}, payload encrypted to 1 age recipient",
        ex.fingerprint
    ));
    st.say(&format!(
        "wrote {} ({} bytes), read it back from disk: OK",
        names::shown(&report.path),
        report.bundle_size
    ));
    Ok(report)
}

/// Step 5: verify at the boundary with public keys only.
fn boundary_step(
    st: &mut Story,
    dir: &std::path::Path,
    ex: &Exporter,
    report: &export::ExportReport,
) -> Result<TrustStore> {
    st.step("boundary: airlock verify BUNDLE --trust allowed_signers (public keys only)");
    let allowed = dir.join("importer/allowed_signers");
    let line = format!(
        "{}\n",
        super::keygen::allowed_line(sample::SAMPLE_HOST, &ex.public_line)
    );
    fsutil::write_atomic(&allowed, line.as_bytes(), 0o644, true)?;
    st.say(&format!("allowed_signers: {}", line.trim_end()));
    let trust = TrustStore::load(&allowed, None)?;
    let v = verify_file(&report.path, &verify_opts(&trust, None))?;
    st.say(&format!(
        "container canonical; signature {} trusted for {}",
        v.signers[0].fingerprint,
        v.manifest.source.principal()
    ));
    st.say(&format!(
        "{}: ciphertext matches the signed SHA-256; the plaintext needs the identity",
        v.payload[0].name
    ));
    st.say("VERIFIED (without any secret)");
    Ok(trust)
}

/// Step 6: import with the identity, the upload steps, a second import.
fn import_step(
    st: &mut Story,
    dir: &std::path::Path,
    ex: &Exporter,
    report: &export::ExportReport,
    trust: TrustStore,
) -> Result<(Importer, FirstImport)> {
    st.step("importer: airlock import BUNDLE --identity identity.txt --enterprise octo-corp");
    let mut ids = Identities::default();
    ids.add_file(&ex.id_path, &mut || {
        Err(bug("the demo identity has a passphrase"))
    })?;
    let imp = Importer {
        trust,
        ids,
        state: StateDir::open(&dir.join("importer/state"))?,
        outbox: dir.join("importer/outbox"),
    };
    let first = imp.import(&report.path)?;
    let handed_at = SystemTime::now();
    for h in &first.handed_over {
        st.say(&format!("handed over {}", names::shown(h)));
    }
    // The report's paths are text (lossy when the demo directory's name is
    // not UTF-8); the file's own name is airlock's, so rejoin it.
    let upload_txt = first
        .handed_over
        .iter()
        .find(|h| h.ends_with(".UPLOAD.txt"))
        .and_then(|h| Path::new(h).file_name())
        .map(|n| imp.outbox.join(n))
        .ok_or_else(|| bug("no UPLOAD.txt in the outbox"))?;
    let steps = std::fs::read_to_string(&upload_txt).map_err(|e| Error::io_read(&upload_txt, e))?;
    st.say(&format!(
        "{}:",
        upload_txt.file_name().unwrap_or_default().to_string_lossy()
    ));
    for l in steps.lines() {
        st.say(&format!("  | {l}"));
    }
    let again = match imp.import(&report.path) {
        Ok(_) => return Err(bug("a second import handed over twice")),
        Err(e) => e.code.as_str(),
    };
    st.say(&format!(
        "imported again: {again} (nothing handed over twice)"
    ));
    Ok((
        imp,
        FirstImport {
            report: first,
            handed_at,
            again,
        },
    ))
}

/// When the replayed "older" bundle is dated: an hour before `now`, but not
/// before today's UTC midnight, where the demo's allowed_signers line
/// (`valid-after`, from `airlock keygen`) starts; in the first hour after
/// midnight an hour earlier would be refused for the key's window instead of
/// as a replay.
fn older_than_first(now: SystemTime) -> SystemTime {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let midnight = secs - secs % 86_400;
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs.saturating_sub(3600).max(midnight))
}

/// Step 7: a forged and an older bundle, both refused. Returns their codes.
fn attacker_step(
    st: &mut Story,
    dir: &std::path::Path,
    ex: &Exporter,
    imp: &Importer,
    report: &export::ExportReport,
) -> Result<(&'static str, &'static str)> {
    st.step("attacker: flip one byte of a bundle on the stick; replay an older bundle");
    let mut bytes = std::fs::read(&report.path).map_err(|e| Error::io_read(&report.path, e))?;
    let i = 200.min(bytes.len() / 2);
    bytes[i] ^= 0x20;
    let forged = dir.join("stick/forged.airlock.zip");
    fsutil::write_atomic(&forged, &bytes, 0o644, true)?;
    let refused = |st: &mut Story, what: &str, r: Result<()>| match r {
        Ok(()) => Err(bug(&format!("the {what} bundle was accepted"))),
        Err(e) => {
            st.say(&format!(
                "{what}: REJECTED {}: {}",
                e.code.as_str(),
                e.cause
            ));
            Ok(e.code.as_str())
        }
    };
    let forged_code = refused(
        st,
        "forged",
        verify_file(&forged, &verify_opts(&imp.trust, None)).map(|_| ()),
    )?;
    let older = ex.export(older_than_first(SystemTime::now()))?;
    let older_code = refused(st, "older bundle", imp.import(&older.path).map(|_| ()))?;
    Ok((forged_code, older_code))
}

/// Steps 8-10: the upload, then `cloud status`, `cloud seats` and `fleet`
/// against the loopback stand-in.
fn cloud_steps(st: &mut Story, imp: &Importer, handed_at: SystemTime) -> Result<CloudView> {
    st.step(
        "operator: upload the outbox file on GitHub (Settings -> Licensing -> Add server usage)",
    );
    st.say("this is the one step in a browser; the demo goes on as if GitHub had processed it");

    // GitHub's answer is dated after the hand-over, as a real sync would be.
    while SystemTime::now() <= handed_at + Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let standin = StandIn::start(
        ENTERPRISE,
        sample::github_sync_status(
            sample::SAMPLE_HOST,
            sample::SAMPLE_SERVER_ID,
            &format_time(SystemTime::now()),
        ),
        sample::github_consumed_licenses(sample::SAMPLE_HOST),
    )?;
    let (client, ledger, synced) = status_step(st, imp, &standin)?;

    st.step("licence manager: airlock cloud seats, then airlock fleet (stand-in, then the ledger)");
    let seats = fleet::seat_report(
        ENTERPRISE,
        &client.consumed_licenses(ENTERPRISE)?,
        SystemTime::now(),
    );
    drop(standin);
    say_seats(st, &seats);
    let rows = fleet::fleet(&ledger.events()?, SystemTime::now(), Thresholds::default());
    say_fleet(st, &rows);
    Ok(CloudView {
        synced,
        seats,
        rows,
        ledger,
    })
}

/// Step 9: `cloud status` against the stand-in, recorded in the importer's
/// ledger, which must confirm the imported bundle.
fn status_step(
    st: &mut Story,
    imp: &Importer,
    standin: &StandIn,
) -> Result<(
    airlock::cloud::Client,
    airlock::ledger::Ledger,
    Vec<airlock::confirm::InstanceSync>,
)> {
    st.step(&format!(
        "importer: airlock cloud status --enterprise {ENTERPRISE} --api-url {}",
        standin.url
    ));
    st.say(&format!(
        "STAND-IN, NOT GITHUB: a loopback server the demo started at {} answers with bodies",
        standin.url
    ));
    st.say("shaped like GitHub's published examples, made for this demo's instance");
    let client = airlock::cloud::Client::new(
        &standin.url,
        zeroize::Zeroizing::new("demo-token-not-a-secret".into()),
        &airlock::net::Trust::load(None)?,
        // The proxy variables as any command reads them: the stand-in is
        // on loopback, which is never proxied (decision 76).
        &airlock::net::ProxyVars::from_process().resolve()?,
        airlock::verify::Clock::System,
    )?;
    let status = client.license_sync_status(ENTERPRISE)?;
    let mut ledger = airlock::ledger::Ledger::open(imp.state.path())?;
    let synced = airlock::confirm::apply_sync_status(&mut ledger, &status, SystemTime::now())?;
    for s in &synced {
        st.say(&format!(
            "{} ({}): last sync {} {}; confirmed {} imported bundle(s) in the ledger",
            s.hostname.as_deref().unwrap_or("?"),
            s.server_id,
            s.date.as_deref().unwrap_or("-"),
            s.status.as_deref().unwrap_or("-"),
            s.newly_confirmed.len()
        ));
    }
    if synced.iter().all(|s| s.newly_confirmed.is_empty()) {
        return Err(bug("the stand-in's successful sync confirmed nothing"));
    }
    Ok((client, ledger, synced))
}

/// Step 10's seat counts and seat leaks.
fn say_seats(st: &Story, seats: &fleet::SeatReport) {
    st.say(&format!(
        "{ENTERPRISE}: {} seats consumed of {} purchased; {} server user(s) match no Cloud account:",
        seats.total_seats_consumed,
        seats.total_seats_purchased,
        seats.unmatched.len()
    ));
    for u in &seats.unmatched {
        st.say(&format!(
            "  {}  {}  (fix the GHES primary email or the Cloud account's)",
            u.server_user_ids.join(","),
            u.server_emails.join(",")
        ));
    }
}

/// Step 10's fleet rows, with their warnings.
fn say_fleet(st: &Story, rows: &[fleet::Instance]) {
    for i in rows {
        st.say(&format!(
            "fleet: {} {} last import {}, last confirmed sync {}, {} warning(s)",
            i.host_name,
            super::or_dash(&i.server_id),
            super::or_dash(&i.last_import),
            super::or_dash(&i.last_confirmed_sync),
            i.warnings.len()
        ));
        for w in &i.warnings {
            st.say(&format!("  warning: {w}"));
        }
    }
}

/// Step 11: the ledger's records and its hash chain.
fn audit_step(st: &mut Story, ledger: &airlock::ledger::Ledger) -> Result<(usize, String)> {
    st.step("auditor: airlock log --verify (the import ledger, hash-chained)");
    let (n, head) = ledger.verify_chain()?;
    for e in &ledger.events()? {
        st.say(&format!(
            "{:>2} {} {:<8} {:<16} {}",
            e.seq,
            e.at,
            e.kind,
            e.outcome,
            e.code.clone().unwrap_or_default()
        ));
    }
    st.say(&format!(
        "chain verified: {n} records, head {}",
        &head[..16]
    ));
    Ok((n, head))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    // Regression: run between 00:00 and 01:00 UTC the demo's older bundle
    // predated the key's valid-after and was refused as AIRLOCK-E-SIG-WINDOW.
    #[test]
    fn the_older_bundle_stays_inside_the_keys_window() {
        let day = 20_428 * 86_400; // a UTC midnight
        assert_eq!(older_than_first(at(day + 12 * 3600)), at(day + 11 * 3600));
        assert_eq!(older_than_first(at(day + 32 * 60)), at(day));
        assert!(older_than_first(at(day + 32 * 60)) < at(day + 32 * 60));
    }
}
