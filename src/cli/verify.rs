//! `airlock verify`: check a bundle against a trust store.

use airlock::crypt::ListedRecipient;
use std::path::PathBuf;
use std::time::SystemTime;

use airlock::error::Result;
use airlock::format::licence::LicenceSummary;
use airlock::format::manifest::{BundleId, BundleKind, Sequence, Source, Timestamp};
use airlock::names;
use airlock::trust::TrustStore;
use airlock::verify::{verify_file, Verified, VerifyOptions};
use airlock::verify::{AcceptedSigner, Clock, PayloadCheck, DEFAULT_SKEW};

use super::output::{emit, Name, Report};
use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The bundle to check
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: super::settings::TrustArgs,
    /// Verify as of this moment (RFC 3339 or Unix seconds), for audits of old bundles
    #[arg(long, value_name = "TIME", value_parser = super::parse_time_arg)]
    pub at: Option<SystemTime>,
}

pub fn run(a: Args) -> Result<i32> {
    let settings = a.trust.settings()?;
    let trust = TrustStore::load(&settings.trust()?, settings.revoked().as_deref())?;
    let now = a.at.map(Clock::Fixed).unwrap_or(Clock::System);
    let ids = a.trust.ids.load(&settings.identities(), &a.bundle)?;
    let v = verify_file(
        &a.bundle,
        &VerifyOptions {
            progress: crate::cli::progress(),
            trust: &trust,
            now,
            skew: DEFAULT_SKEW,
            identities: Some(&ids),
            require_signers: settings.require_signers(),
        },
    )?;
    Ok(emit(&Verdict::of(&a, &trust, &v)))
}

/// The verdict (docs/json-output.md, `verify`).
#[derive(serde::Serialize)]
struct Verdict<'a> {
    #[serde(flatten)]
    bundle: Name,
    verified_at: String,
    bundle_id: &'a BundleId,
    kind: BundleKind,
    source: &'a Source,
    sequence: &'a Sequence,
    created: &'a Timestamp,
    expires: &'a Timestamp,
    signers: &'a [AcceptedSigner],
    payload: &'a [PayloadCheck],
    payload_decrypted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    licence: Option<LicenceSummary>,
    /// For the human form: the verdict, the trust file, `--at` given.
    #[serde(skip)]
    human: (&'a Verified, String, bool),
}

impl<'a> Verdict<'a> {
    fn of(a: &Args, trust: &TrustStore, v: &'a Verified) -> Verdict<'a> {
        let m = &v.manifest;
        Verdict {
            bundle: Name::new("bundle", &a.bundle),
            verified_at: airlock::format::manifest::format_time(v.decided_at),
            bundle_id: &m.bundle_id,
            kind: m.kind(),
            source: &m.source,
            sequence: &m.sequence,
            created: &m.created,
            expires: &m.expires,
            signers: &v.signers,
            payload: &v.payload,
            payload_decrypted: v.payload.iter().all(|p| !p.encrypted || p.decrypted),
            licence: LicenceSummary::of(m),
            human: (v, trust.source.to_string(), a.at.is_some()),
        }
    }
}

impl Report for Verdict<'_> {
    fn human(&self) {
        let (v, trust, at) = &self.human;
        print_text(self.bundle.name(), trust, *at, v, self.payload_decrypted);
    }
}

/// The verdict for a person: what was checked, then `VERIFIED`.
fn print_text(bundle: &std::ffi::OsStr, trust: &str, at: bool, v: &Verified, decrypted: bool) {
    let m = &v.manifest;
    outln!("bundle {}", names::shown(bundle));
    outln!(
        "  container    canonical, {} members",
        m.payload.len() + 1 + v.signers.len()
    );
    for s in &v.signers {
        outln!(
            "  signature    {} trusted for {} ({}:{})",
            s.fingerprint,
            m.source.principal(),
            trust,
            s.trust_line
        );
    }
    match LicenceSummary::of(m) {
        Some(l) => {
            outln!(
                "  kind         GHES licence bundle (format version 3): it goes into the appliance"
            );
            outln!("  source       enterprise {}", l.enterprise);
            outln!("  licence      reference {}", l.reference);
        }
        None => outln!(
            "  source       {} {}",
            m.source.host(),
            m.source.server_id.as_deref().unwrap_or("")
        ),
    }
    outln!("  sequence     {}", m.sequence.number);
    outln!("  created      {}", m.created);
    outln!(
        "  expires      {}{}",
        m.expires,
        if at {
            format!(
                " (checked as of {})",
                airlock::format::manifest::format_time(v.decided_at)
            )
        } else {
            String::new()
        }
    );
    if m.is_encrypted() {
        let r: Vec<String> = m.recipients.iter().map(recipient).collect();
        outln!("  encrypted to {}", r.join(", "));
    }
    for p in &v.payload {
        print_payload(p);
    }
    if !decrypted {
        outln!(
            "  payload was NOT decrypted: signatures, recipients and ciphertext digests checked;"
        );
        outln!("  give --identity to check the plaintext too");
    }
    outln!("{}", super::paint("VERIFIED", "1;32"));
}

/// A listed recipient, as the text output names it.
fn recipient(r: &ListedRecipient) -> String {
    match r {
        // Nearly 2,000 characters: the start and end identify it;
        // --json and `airlock inspect` give it whole.
        ListedRecipient::MlKem768X25519(s) => format!(
            "{}…{} (post-quantum)",
            s.get(..24).unwrap_or(s),
            s.get(s.len().saturating_sub(8)..).unwrap_or("")
        ),
        ListedRecipient::X25519(s) | ListedRecipient::SshEd25519(s) => s.clone(),
        ListedRecipient::Scrypt { work_factor } => {
            format!("a passphrase (scrypt 2^{work_factor})")
        }
    }
}

/// One payload member: its digest, and what decryption and the usage-file
/// check found.
fn print_payload(p: &PayloadCheck) {
    outln!(
        "  payload      {} {} sha256 {}",
        p.name,
        super::bytes(p.size),
        p.sha256
    );
    if p.decrypted {
        outln!(
            "               decrypted to its end: {} sha256 {}",
            super::bytes(p.plaintext_size.unwrap_or(0)),
            p.plaintext_sha256.as_deref().unwrap_or("")
        );
    }
    if let Some(u) = &p.usage {
        outln!(
            "               GHES license usage: {} {}, GHES {}, users {}",
            u.host_name,
            u.server_id,
            u.version.as_deref().unwrap_or("unknown"),
            u.users
        );
    }
    if !p.source_checked {
        // Decision 70: whether the content is another instance's usage file
        // is known only from the plaintext.
        outln!(
            "               source NOT checked (encrypted): extract and import check it when they decrypt"
        );
    }
}
