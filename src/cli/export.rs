//! `airlock export`: package files into a signed bundle.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use airlock::error::{Code, Error, Result};
use airlock::export::{self, ExportReport, Input};
use airlock::keys;
use airlock::names;
use airlock::state::StateDir;

use airlock::format::licence::LicenceSummary;
use airlock::format::manifest::{BundleId, BundleKind, PayloadEntry, Sequence, Source, Timestamp};

use super::output::{emit, Name, Report};
use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files to carry; `-` reads a GHES license usage file from standard input
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// What the inputs are: `usage` (each must be a GHES license usage file),
    /// `file` (anything; usage files are still recognised) or `licence`
    /// (alias `license`: one GHES licence file, signed for --enterprise).
    /// Default: standard input must be a usage file; a named `*.ghl` file is
    /// a licence; other named files are recognised by content
    #[arg(long, value_name = "KIND", value_parser = ["usage", "file", "licence", "license"])]
    pub kind: Option<String>,
    /// The licence's reference number (default: from the file name,
    /// github-enterprise-REFERENCE.ghl, a browser's " (1)" dropped)
    #[arg(long, value_name = "REFERENCE")]
    pub reference: Option<String>,
    #[arg(help = airlock::config::flag_help("enterprise", "Enterprise slug: the source, and trust principal, of a licence bundle"))]
    #[arg(long, value_name = "SLUG")]
    pub enterprise: Option<String>,
    /// OpenSSH Ed25519 private key to sign with (with --agent: its public key)
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// Sign through ssh-agent (SSH_AUTH_SOCK): the private key never enters airlock
    #[arg(long)]
    pub agent: bool,
    /// Passphrase of an encrypted signing key, on the first line of FILE
    #[arg(long, value_name = "FILE")]
    pub key_passphrase_file: Option<PathBuf>,
    /// Bundle path, or a directory (a mounted stick) to name it in
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// Source instance host name (default: from the usage file)
    #[arg(long, value_name = "HOST")]
    pub host_name: Option<String>,
    /// Source instance server id (default: from the usage file)
    #[arg(long, value_name = "UUID")]
    pub server_id: Option<String>,
    /// The bundle's signed creation time, RFC 3339 or Unix seconds (default: now)
    #[arg(long, value_name = "TIME", value_parser = super::parse_time_arg, conflicts_with = "reproducible")]
    pub created: Option<SystemTime>,
    /// Take the creation time from SOURCE_DATE_EPOCH, for reproducible
    /// bundles (without this flag, SOURCE_DATE_EPOCH is ignored)
    #[arg(long)]
    pub reproducible: bool,
    /// How long the bundle stays valid, e.g. 30d, 12h
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = humantime::parse_duration)]
    pub expires_in: Duration,
    /// Name inside the bundle for the file read from standard input
    #[arg(long, value_name = "NAME", default_value = "license-usage.json")]
    pub stdin_name: String,
    #[command(flatten)]
    pub state: super::settings::StateArgs,
    /// Encrypt to this recipient: age1pq1… (post-quantum), age1… or
    /// "ssh-ed25519 AAAA…" (repeatable; post-quantum ones cannot be mixed
    /// with the others)
    #[arg(long = "recipient", short = 'r', value_name = "RECIPIENT")]
    pub recipients: Vec<String>,
    /// Encrypt to the recipients listed in FILE (age's format, repeatable)
    #[arg(long, value_name = "FILE")]
    pub recipients_file: Vec<PathBuf>,
    /// Encrypt with a passphrase, asked twice on the terminal (scrypt)
    #[arg(long, conflicts_with = "passphrase_file")]
    pub passphrase: bool,
    /// Encrypt with the passphrase on the first line of FILE (scrypt)
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Skip the read-back check (for timing the write path only; never in production)
    #[arg(long, hide = true)]
    pub no_read_back: bool,
    /// Replace an existing bundle at --out
    #[arg(long)]
    pub force: bool,
}

/// The signed creation time: `--created`, else SOURCE_DATE_EPOCH with
/// `--reproducible`, else `None`: now, read when the bundle is made. SOURCE_DATE_EPOCH alone changes nothing: build
/// environments (nix shells) export it for every program, and a bundle dated
/// by it would be refused as expired (docs/decisions.md).
fn created(a: &Args) -> Result<Option<SystemTime>> {
    let epoch = std::env::var_os("SOURCE_DATE_EPOCH");
    if let Some(t) = a.created {
        return Ok(Some(t));
    }
    if !a.reproducible {
        if epoch.is_some() && super::output().verbose > 0 {
            eprintln!(
                "airlock: SOURCE_DATE_EPOCH is set and ignored: the bundle is dated now (pass --reproducible to date it by SOURCE_DATE_EPOCH)"
            );
        }
        return Ok(None);
    }
    let s = epoch.ok_or_else(|| {
        Error::new(
            Code::Args,
            "--reproducible needs SOURCE_DATE_EPOCH, which is not set",
        )
        .with_hint(
            "set SOURCE_DATE_EPOCH to the creation time in Unix seconds, or pass --created TIME",
        )
    })?;
    let s = s.to_string_lossy();
    s.trim()
        .parse::<u64>()
        .map(|n| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(n)))
        .map_err(|_| {
            Error::new(
                Code::Args,
                format!("SOURCE_DATE_EPOCH={s:?} is not a number of seconds"),
            )
            .with_hint("set SOURCE_DATE_EPOCH to the creation time in Unix seconds, or pass --created TIME")
        })
}

pub fn run(a: Args) -> Result<i32> {
    // Checked first, so a bad SOURCE_DATE_EPOCH or airlock.toml fails
    // before any prompt.
    let created = created(&a)?;
    let settings = a.state.file.settings(airlock::config::Config {
        state_dir: a.state.state_dir.clone(),
        enterprise: a.enterprise.clone(),
        ..Default::default()
    })?;
    let inputs = inputs(&a, &settings)?;
    let mut recipients = airlock::crypt::Recipients::default();
    for r in &a.recipients {
        recipients.add(r)?;
    }
    for f in &a.recipients_file {
        recipients.add_file(f)?;
    }
    // The signing key first: its passphrase (if any) is asked before the
    // bundle's, and a wrong one fails before the bundle's is typed twice.
    let signer = super::load_signer(&a.key, a.agent, a.key_passphrase_file.clone())?;
    let bundle_pass = if a.passphrase {
        Some(super::prompt_new_passphrase(
            "the bundle (scrypt; the importer needs it to decrypt)",
            "--passphrase-file",
        )?)
    } else if let Some(f) = &a.passphrase_file {
        Some(keys::read_passphrase_file(f)?)
    } else {
        None
    };
    if let Some(p) = &bundle_pass {
        recipients.set_passphrase(p, airlock::crypt::SCRYPT_WORK_FACTOR)?;
    }
    let state = StateDir::open(&settings.state_dir()?)?;
    let report = export::export(export::ExportOptions {
        progress: crate::cli::progress(),
        inputs,
        bundle: export::BundleSpec {
            signer: &signer,
            host_name: a.host_name,
            server_id: a.server_id,
            created: created.unwrap_or_else(SystemTime::now),
            expires_in: a.expires_in,
            tool: airlock::tool_version(),
            recipients: &recipients,
        },
        now: airlock::verify::Clock::System,
        out: a.out,
        overwrite: a.force,
        state: &state,
        read_back: !a.no_read_back,
    })?;
    Ok(emit(&Exported::of(&report)))
}

/// The inputs named, in order: files, or `-` for standard input; a licence
/// (`*.ghl`, or `--kind licence`) alone.
fn inputs(a: &Args, settings: &airlock::config::Settings) -> Result<Vec<Input>> {
    if let Some(licence) = licence_input(a, settings)? {
        return Ok(vec![licence]);
    }
    if a.reference.is_some() {
        return Err(Error::new(
            Code::Args,
            "--reference is for a GHES licence file (*.ghl, or --kind licence)",
        ));
    }
    let mut inputs = Vec::new();
    for f in &a.files {
        let mut input = if f.as_os_str() == "-" {
            // Refused at once: a terminal would wait silently for a file
            // that nobody types.
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Err(Error::new(
                    Code::Args,
                    "`export -` reads the usage file from standard input, which is a terminal",
                )
                .with_hint(
                    "pipe the file in (`ssh … ghe-license usage -o -y | airlock export - …`, or `< license-usage.json`), or name the file instead of -",
                ));
            }
            Input::stdin(&a.stdin_name, a.kind.as_deref() == Some("file"))
        } else {
            Input::path(f)?
        };
        if a.kind.as_deref() == Some("usage") {
            input.require_usage = true;
        }
        inputs.push(input);
    }
    Ok(inputs)
}

/// The licence input when the export is a licence's (decision 81): a file
/// named `*.ghl`, or `--kind licence`; one file, by name, for the
/// enterprise configured. A `.ghl` under another `--kind` is refused, so a
/// licence never travels as an ordinary file.
fn licence_input(a: &Args, settings: &airlock::config::Settings) -> Result<Option<Input>> {
    use airlock::format::licence::{is_licence_name, LicenceInput};
    let named = a.files.iter().any(|f| {
        f.file_name()
            .is_some_and(|n| is_licence_name(n.as_encoded_bytes()))
    });
    let asked = matches!(a.kind.as_deref(), Some("licence" | "license"));
    if !named && !asked {
        return Ok(None);
    }
    if named && !asked && a.kind.is_some() {
        return Err(Error::new(
            Code::Args,
            "a *.ghl file is a GHES licence: it travels in a licence bundle, not as a usage or plain file",
        )
        .with_hint("drop --kind (or pass --kind licence); rename the file if it is not a licence"));
    }
    let [file] = a.files.as_slice() else {
        return Err(Error::new(
            Code::Args,
            "a GHES licence travels alone: give exactly one .ghl file",
        ));
    };
    if file.as_os_str() == "-" {
        return Err(Error::new(
            Code::Args,
            "a GHES licence is exported from its file, not from standard input",
        )
        .with_hint("give the downloaded github-enterprise-REFERENCE.ghl file by name"));
    }
    let enterprise = settings.enterprise().ok_or_else(|| {
        Error::new(
            Code::SourceUnknown,
            "a licence bundle needs the enterprise it comes from",
        )
        .with_hint(
            "pass --enterprise SLUG, set AIRLOCK_ENTERPRISE, or set enterprise in airlock.toml",
        )
    })?;
    let licence = LicenceInput::new(file, &enterprise, a.reference.as_deref())?;
    Ok(Some(Input::licence(file, licence)))
}

/// The bundle written (docs/json-output.md, `export`).
#[derive(serde::Serialize)]
struct Exported<'a> {
    #[serde(flatten)]
    bundle: Name,
    bundle_size: u64,
    bundle_id: &'a BundleId,
    kind: BundleKind,
    source: &'a Source,
    sequence: &'a Sequence,
    created: &'a Timestamp,
    expires: &'a Timestamp,
    payload: &'a [PayloadEntry],
    usage_files: Vec<UsageFile<'a>>,
    read_back: bool,
    bundle_sha256: &'a Option<String>,
    renamed: Vec<Renamed<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    licence: Option<LicenceSummary>,
    #[serde(skip)]
    report: &'a ExportReport,
}

/// A payload member that is a usage file, and what it says.
#[derive(serde::Serialize)]
struct UsageFile<'a> {
    member: &'a str,
    usage: &'a airlock::usage::UsageInfo,
}

/// An input whose file name was made a payload name.
#[derive(serde::Serialize)]
struct Renamed<'a> {
    file: &'a str,
    payload_name: &'a str,
}

impl<'a> Exported<'a> {
    fn of(report: &'a ExportReport) -> Exported<'a> {
        let m = &report.manifest;
        Exported {
            bundle: Name::new("bundle", &report.path),
            bundle_size: report.bundle_size,
            bundle_id: &m.bundle_id,
            kind: m.kind(),
            source: &m.source,
            sequence: &m.sequence,
            created: &m.created,
            expires: &m.expires,
            payload: &m.payload,
            usage_files: (report.usage.iter())
                .map(|(member, usage)| UsageFile { member, usage })
                .collect(),
            read_back: report.bundle_sha256.is_some(),
            bundle_sha256: &report.bundle_sha256,
            renamed: (report.renamed.iter())
                .map(|(file, payload_name)| Renamed { file, payload_name })
                .collect(),
            licence: LicenceSummary::of(m),
            report,
        }
    }
}

impl Report for Exported<'_> {
    fn human(&self) {
        print_text(self.report);
    }
}

/// The bundle written, for a person: what each input is, then the bundle.
fn print_text(report: &ExportReport) {
    let licence = print_inputs(report);
    outln!(
        "bundle {} ({})",
        names::shown(&report.path),
        super::bytes(report.bundle_size)
    );
    print_bundle(report, licence.as_ref());
}

/// What each input is; the licence's summary, if the bundle carries one.
fn print_inputs(report: &ExportReport) -> Option<airlock::format::licence::LicenceSummary> {
    let m = &report.manifest;
    for (from, to) in &report.renamed {
        outln!("{from}: travels as {to} (payload names use letters, digits, '.', '_' and '-'; docs/format.md §5)");
    }
    for (name, u) in &report.usage {
        outln!("{name}: GHES license usage file");
        outln!("  host         {}", u.host_name);
        outln!("  server id    {}", u.server_id);
        outln!(
            "  GHES         {}",
            u.version.as_deref().unwrap_or("unknown")
        );
        outln!("  users        {}", u.users);
    }
    let licence = airlock::format::licence::LicenceSummary::of(m);
    if let Some(l) = &licence {
        outln!(
            "{}: GHES licence, reference {}, {} sha256 {}",
            l.member,
            l.reference,
            super::bytes(l.size),
            l.sha256
        );
    }
    for p in m
        .payload
        .iter()
        .filter(|p| !p.is_usage() && licence.is_none())
    {
        outln!("{}: opaque file, {}", p.name, super::bytes(p.size));
    }
    licence
}

/// The bundle's lines after its name: id, source, signer, times, hash.
fn print_bundle(report: &ExportReport, licence: Option<&airlock::format::licence::LicenceSummary>) {
    let m = &report.manifest;
    outln!("  id           {}", m.bundle_id);
    match licence {
        Some(l) => outln!(
            "  source       enterprise {} (a licence bundle, format version 3)",
            l.enterprise
        ),
        None => outln!(
            "  source       {} {}",
            m.source.host(),
            m.source.server_id.as_deref().unwrap_or("")
        ),
    }
    outln!(
        "  signed by    {} (sequence {})",
        m.sequence.key,
        m.sequence.number
    );
    outln!("  created      {}", m.created);
    outln!("  expires      {}", m.expires);
    if m.is_encrypted() {
        outln!(
            "  encrypted to {} recipient(s); the payload members are age files",
            m.recipients.len()
        );
    }
    match &report.bundle_sha256 {
        Some(h) => {
            outln!("  sha256       {h}");
            outln!("  read back from disk and verified");
        }
        None => outln!("  not read back (--no-read-back): no bundle hash in the ledger"),
    }
}
