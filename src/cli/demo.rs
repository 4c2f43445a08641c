//! `airlock demo`: the whole job on built-in sample data, step by step:
//! keys, export (signed and encrypted), the boundary check, import with the
//! upload steps, an attacker's forged and older bundles, then `cloud status`,
//! `cloud seats` and `fleet` against a loopback stand-in for GitHub's API
//! that the demo starts itself (it is not GitHub, and says so).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use airlock::bundle::manifest::format_time;
use airlock::bundle::verify::{Clock, DEFAULT_SKEW};
use airlock::bundle::{self, verify_file, Input, VerifyOptions};
use airlock::crypt::{Identities, Recipients};
use airlock::error::{Code, Error, Result};
use airlock::fleet::{self, Thresholds};
use airlock::handover::Target;
use airlock::import::{import, ImportOptions};
use airlock::sample;
use airlock::standin::StandIn;
use airlock::state::StateDir;
use airlock::trust::TrustStore;
use airlock::{fsutil, keys};

use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Work in DIR (kept afterwards) instead of a temporary directory
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

const STEPS: usize = 11;
const ENTERPRISE: &str = "octo-corp";

/// Prints the human story, unless --json asks for the summary only.
struct Story {
    json: bool,
    step: usize,
}

impl Story {
    fn step(&mut self, title: &str) {
        self.step += 1;
        if !self.json {
            outln!("\n[{}/{STEPS}] {title}", self.step);
        }
    }
    fn say(&self, s: &str) {
        if !self.json {
            outln!("      {s}");
        }
    }
}

fn bug(what: &str) -> Error {
    Error::new(Code::Internal, format!("{what}: this is a bug"))
}

fn verify_opts<'a>(trust: &'a TrustStore, ids: Option<&'a Identities>) -> VerifyOptions<'a> {
    VerifyOptions {
        trust,
        now: Clock::System,
        skew: DEFAULT_SKEW,
        identities: ids,
        require_signers: 1,
    }
}

pub fn run(a: Args) -> Result<()> {
    let json = super::json();
    let tmp;
    let keep = a.dir.is_some();
    let dir = match a.dir {
        Some(d) => {
            fsutil::ensure_dir(&d, "demo directory")?;
            d
        }
        None => {
            tmp = tempfile::tempdir().map_err(|e| Error::io_write(&std::env::temp_dir(), e))?;
            // Removed if the demo is interrupted, too.
            fsutil::track_temp_dir(tmp.path());
            tmp.path().to_path_buf()
        }
    };
    let p = |s: &str| dir.join(s);
    for sub in ["exporter", "stick", "importer"] {
        std::fs::create_dir_all(p(sub)).map_err(|e| Error::io_write(&p(sub), e))?;
    }
    let mut st = Story { json, step: 0 };
    if !json {
        outln!("airlock demo in {}", dir.display());
    }

    st.step("exporter: make a signing key (airlock keygen)");
    let key_path = p("exporter/airlock_ed25519");
    let g = keys::generate(&key_path, "demo exporter", None, true)?;
    st.say(&format!(
        "{} ({})",
        key_path.display(),
        g.public.fingerprint()
    ));

    st.step("importer: make an age identity to encrypt to (airlock keygen --age)");
    let id_path = p("importer/identity.txt");
    let (id_text, recipient) = airlock::crypt::generate_identity(&format_time(SystemTime::now()));
    fsutil::write_atomic(&id_path, id_text.as_bytes(), 0o600, true)?;
    st.say(&format!("{} (mode 600)", id_path.display()));
    st.say(&format!("recipient {recipient}: given to the exporter"));

    st.step("exporter: the GHES license usage file (synthetic sample, users in clear)");
    let usage_path = p("exporter/license-usage.json");
    let usage = sample::usage_clear(sample::SAMPLE_HOST, sample::SAMPLE_SERVER_ID, 2);
    fsutil::write_atomic(&usage_path, &usage, 0o600, true)?;
    st.say(&format!(
        "{} ({} bytes): it names every user, so it travels encrypted",
        usage_path.display(),
        usage.len()
    ));

    st.step("exporter: airlock export license-usage.json --key … --recipient age1… --out stick/");
    let signer = keys::load_signer(&key_path, &mut || Err(bug("the demo key has a passphrase")))?;
    let state = StateDir::open(&p("exporter/state"))?;
    let mut recipients = Recipients::default();
    recipients.add(&recipient)?;
    let export_at = |created: SystemTime| {
        bundle::export(bundle::ExportOptions {
            inputs: vec![Input::path(&usage_path)?],
            signer: &signer,
            host_name: None,
            server_id: None,
            created,
            expires_in: Duration::from_secs(30 * 24 * 3600),
            now: airlock::bundle::verify::Clock::System,
            out: p("stick"),
            overwrite: false,
            state: &state,
            tool: airlock::tool_version(),
            recipients: &recipients,
            read_back: true,
        })
    };
    let report = export_at(SystemTime::now())?;
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
        g.public.fingerprint()
    ));
    st.say(&format!(
        "wrote {} ({} bytes), read it back from disk: OK",
        report.path.display(),
        report.bundle_size
    ));

    st.step("boundary: airlock verify BUNDLE --trust allowed_signers (public keys only)");
    let allowed = p("importer/allowed_signers");
    let line = format!(
        "{}\n",
        super::keygen::allowed_line(sample::SAMPLE_HOST, &g.public_line)
    );
    fsutil::write_atomic(&allowed, line.as_bytes(), 0o644, true)?;
    st.say(&format!("allowed_signers: {}", line.trim_end()));
    let trust = TrustStore::load(&allowed, None)?;
    let v = verify_file(&report.path, &verify_opts(&trust, None))?;
    st.say(&format!(
        "container canonical; signature {} trusted for {}",
        v.signers[0].fingerprint, v.manifest.source.host_name
    ));
    st.say(&format!(
        "{}: ciphertext matches the signed SHA-256; the plaintext needs the identity",
        v.payload[0].name
    ));
    st.say("VERIFIED (without any secret)");

    st.step("importer: airlock import BUNDLE --identity identity.txt --enterprise octo-corp");
    let mut ids = Identities::default();
    ids.add_file(&id_path, &mut || {
        Err(bug("the demo identity has a passphrase"))
    })?;
    let istate = StateDir::open(&p("importer/state"))?;
    let outbox = p("importer/outbox");
    let import_opts = |target| ImportOptions {
        verify: verify_opts(&trust, Some(&ids)),
        state: &istate,
        target,
        enterprise: Some(ENTERPRISE.into()),
    };
    let r = import(&report.path, &import_opts(Target::Outbox(outbox.clone())))?;
    let handed_at = SystemTime::now();
    for h in &r.handed_over {
        st.say(&format!("handed over {h}"));
    }
    let upload_txt = r
        .handed_over
        .iter()
        .find(|h| h.ends_with(".UPLOAD.txt"))
        .map(PathBuf::from)
        .ok_or_else(|| bug("no UPLOAD.txt in the outbox"))?;
    let steps = std::fs::read_to_string(&upload_txt).map_err(|e| Error::io_read(&upload_txt, e))?;
    st.say(&format!(
        "{}:",
        upload_txt.file_name().unwrap_or_default().to_string_lossy()
    ));
    for l in steps.lines() {
        st.say(&format!("  | {l}"));
    }
    let again = match import(&report.path, &import_opts(Target::Outbox(outbox.clone()))) {
        Ok(_) => return Err(bug("a second import handed over twice")),
        Err(e) => e.code.as_str(),
    };
    st.say(&format!(
        "imported again: {again} (nothing handed over twice)"
    ));

    st.step("attacker: flip one byte of a bundle on the stick; replay an older bundle");
    let mut bytes = std::fs::read(&report.path).map_err(|e| Error::io_read(&report.path, e))?;
    let i = 200.min(bytes.len() / 2);
    bytes[i] ^= 0x20;
    let forged = p("stick/forged.airlock.zip");
    fsutil::write_atomic(&forged, &bytes, 0o644, true)?;
    let forged_code = match verify_file(&forged, &verify_opts(&trust, None)) {
        Ok(_) => return Err(bug("the forged bundle verified")),
        Err(e) => {
            st.say(&format!(
                "forged: REJECTED {}: {}",
                e.code.as_str(),
                e.cause
            ));
            e.code.as_str()
        }
    };
    let older = export_at(SystemTime::now() - Duration::from_secs(3600))?;
    let older_code = match import(&older.path, &import_opts(Target::Outbox(outbox.clone()))) {
        Ok(_) => return Err(bug("an older bundle was imported")),
        Err(e) => {
            st.say(&format!(
                "older bundle: REJECTED {}: {}",
                e.code.as_str(),
                e.cause
            ));
            e.code.as_str()
        }
    };

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
        airlock::bundle::verify::Clock::System,
    )?;
    let status = client.license_sync_status(ENTERPRISE)?;
    let mut ledger = airlock::ledger::Ledger::open(istate.path())?;
    let synced = fleet::apply_sync_status(&mut ledger, &status, SystemTime::now())?;
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

    st.step("licence manager: airlock cloud seats, then airlock fleet (stand-in, then the ledger)");
    let seats = fleet::seat_report(
        ENTERPRISE,
        &client.consumed_licenses(ENTERPRISE)?,
        SystemTime::now(),
    );
    drop(standin);
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
    let events = ledger.events()?;
    let rows = fleet::fleet(&events, SystemTime::now(), Thresholds::default());
    for i in &rows {
        let d = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
        st.say(&format!(
            "fleet: {} {} last import {}, last confirmed sync {}, {} warning(s)",
            i.host_name,
            d(&i.server_id),
            d(&i.last_import),
            d(&i.last_confirmed_sync),
            i.warnings.len()
        ));
        for w in &i.warnings {
            st.say(&format!("  warning: {w}"));
        }
    }

    st.step("auditor: airlock log --verify (the import ledger, hash-chained)");
    let (n, head) = ledger.verify_chain()?;
    for e in &events {
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

    let payload: Vec<&String> = r
        .handed_over
        .iter()
        .filter(|h| !h.ends_with(".UPLOAD.txt"))
        .collect();
    if json {
        super::print_json(&serde_json::json!({
            "ok": true,
            "dir": keep.then_some(&dir),
            "bundle": report.path,
            "encrypted_to": [recipient],
            "verified_without_identity": true,
            "handed_over": r.handed_over,
            "imported_again": again,
            "forged": forged_code,
            "older": older_code,
            "stand_in": "loopback stand-in for GitHub's API, not GitHub",
            "cloud_status": synced,
            "seats": seats,
            "fleet": rows,
            "ledger": {"records": n, "head": head},
        }));
        return Ok(());
    }
    outln!("\nverdict: the genuine bundle verified, decrypted and was handed over once with its upload steps;");
    outln!("the forged and the older one were refused; the (stand-in) Cloud confirmed the sync.");
    if keep {
        outln!(
            "The usage file to upload: {}",
            payload
                .first()
                .map(|s| s.as_str())
                .unwrap_or_else(|| outbox.to_str().unwrap_or(""))
        );
    } else {
        outln!("(The demo directory is removed now; run `airlock demo --dir DIR` to keep it.)");
    }
    outln!("Check a bundle by hand with standard tools: docs/verify-by-hand.md");
    Ok(())
}
