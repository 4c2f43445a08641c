//! `airlock import`: verify, apply the ledger's rules, hand over; one bundle,
//! or a batch of bundles and directories.

use std::path::{Path, PathBuf};

use airlock::config::{Config, Settings, TokenSource};
use airlock::error::{Code, Error, Result};
use airlock::handover::Target;
use airlock::import::{
    batch_order, disposition, import, import_result, Disposition, ImportOptions, ImportReport,
    Opened,
};
use airlock::names;
use airlock::state::StateDir;
use airlock::trust::TrustStore;
use airlock::verify::VerifyOptions;
use airlock::verify::{Clock, DEFAULT_SKEW};
use zeroize::Zeroizing;

use super::output::{emit, Name, Report};
use super::ErrorDoc;
use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Bundles to import, and directories whose *.airlock.zip files to import
    #[arg(value_name = "BUNDLE|DIR", required = true)]
    pub bundles: Vec<PathBuf>,
    #[command(flatten)]
    pub opts: ImportArgs,
}

/// The importer's options, shared by `import` and `watch`.
#[derive(clap::Args, Debug, Clone)]
pub struct ImportArgs {
    #[command(flatten)]
    pub trust: super::settings::TrustArgs,
    #[arg(help = airlock::config::flag_help("state_dir", "State directory holding the ledger"))]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("outbox", "Outbox directory (default: STATE_DIR/outbox)"))]
    #[arg(long, value_name = "DIR")]
    pub outbox: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("enterprise", "GitHub Enterprise Cloud enterprise slug, for the upload page URL"))]
    #[arg(long, value_name = "SLUG")]
    pub enterprise: Option<String>,
    #[arg(help = airlock::config::flag_help("submit_url", "POST the payload to this internal endpoint instead of the outbox"))]
    #[arg(long, value_name = "URL")]
    pub submit_url: Option<String>,
    #[arg(help = airlock::config::flag_help("submit_token_file", "Bearer token for --submit-url, on the first line of FILE"))]
    #[arg(long, value_name = "FILE")]
    pub submit_token_file: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("ca_file", "Also trust the CA certificates in this PEM file for --submit-url"))]
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    #[arg(help = airlock::config::flag_help("http_timeout", "The most one request to --submit-url may take (default 30s)"))]
    #[arg(long, value_name = "DURATION", value_parser = airlock::config::parse_duration)]
    pub http_timeout: Option<std::time::Duration>,
    #[arg(help = airlock::config::flag_help("http_deadline", "The most a bundle's whole hand-over to --submit-url may take, retries included (default 5min)"))]
    #[arg(long, value_name = "DURATION", value_parser = airlock::config::parse_duration)]
    pub http_deadline: Option<std::time::Duration>,
}

/// Everything an import needs, resolved from flags, environment and
/// `airlock.toml` (in that precedence).
pub struct Resolved {
    pub trust: TrustStore,
    pub ids: airlock::crypt::Identities,
    pub state_path: PathBuf,
    pub target: Target,
    pub enterprise: Option<String>,
    pub require_signers: usize,
    /// UPLOAD.txt's confirm step: `cloud status` on this state directory.
    pub status: airlock::handover::StatusCommand,
}

impl ImportArgs {
    /// The resolved configuration of these options.
    pub fn settings(&self) -> Result<Settings> {
        self.trust.file.settings(Config {
            state_dir: self.state_dir.clone(),
            outbox: self.outbox.clone(),
            enterprise: self.enterprise.clone(),
            submit_url: self.submit_url.clone(),
            submit_token_file: self.submit_token_file.clone(),
            ca_file: self.ca_file.clone(),
            http_timeout: self.http_timeout,
            http_deadline: self.http_deadline,
            ..self.trust.layer()
        })
    }

    /// Resolve the options; `bundle` is the one a passphrase prompt is for.
    pub fn resolve(&self, bundle: &Path) -> Result<Resolved> {
        let s = self.settings()?;
        let trust = TrustStore::load(&s.trust()?, s.revoked().as_deref())?;
        let ids = self.trust.ids.load(&s.identities(), bundle)?;
        let state_path = s.state_dir()?;
        let target = match s.submit_url() {
            Some(url) => {
                let token = match s.submit_token() {
                    Some(TokenSource::File(f)) => Some(airlock::keys::read_passphrase_file(&f)?),
                    Some(TokenSource::Env(v)) => s
                        .secret_var(v)
                        .and_then(|t| String::from_utf8(t.to_vec()).ok().map(Zeroizing::new)),
                    None => None,
                };
                // Refuse a bad URL or CA file before anything is recorded.
                airlock::net::check_url(&url, "--submit-url")?;
                let ca_file = s.ca_file();
                airlock::net::Trust::load(ca_file.as_deref())?;
                Target::Http {
                    url,
                    token,
                    ca_file,
                    proxies: s.proxies()?,
                    timing: s.http_timing(),
                }
            }
            None => {
                // One rule for output directories (docs/operator-guide.md):
                // the default outbox is airlock's own (created with the state
                // directory); one you name is created only inside your home.
                let outbox = match s.outbox() {
                    Some(o) => {
                        airlock::fsutil::ensure_dir(&o, "outbox")?;
                        o
                    }
                    None => state_path.join("outbox"),
                };
                Target::Outbox(outbox)
            }
        };
        Ok(Resolved {
            trust,
            ids,
            target,
            enterprise: s.enterprise(),
            require_signers: s.require_signers(),
            status: airlock::handover::StatusCommand::new(
                &state_path,
                s.file_path.as_deref(),
                s.default_state_dir().ok().as_deref(),
            ),
            state_path,
        })
    }
}

/// Open the state directory. When another run holds its lock, the library
/// says so (a note on stderr); afterwards, say how long the wait was.
pub fn open_state(path: &Path, loud: bool) -> Result<StateDir> {
    let say = loud || !super::output().quiet;
    let state = StateDir::open_reporting(path, &mut |_| {})?;
    if let (true, Some(w)) = (say, state.waited) {
        eprintln!(
            "airlock: waited {:.1} s for the state directory lock",
            w.as_secs_f64()
        );
    }
    Ok(state)
}

/// The import options of resolved settings.
fn options<'a>(r: &'a Resolved, state: &'a StateDir) -> ImportOptions<'a> {
    ImportOptions {
        verify: VerifyOptions {
            progress: crate::cli::progress(),
            trust: &r.trust,
            now: Clock::System,
            skew: DEFAULT_SKEW,
            identities: Some(&r.ids),
            require_signers: r.require_signers,
        },
        state,
        target: r.target.clone(),
        enterprise: r.enterprise.clone(),
        status: r.status.clone(),
    }
}

/// Import one bundle with resolved options.
pub fn import_one(r: &Resolved, state: &StateDir, bundle: &Path) -> Result<ImportReport> {
    import(bundle, &options(r, state))
}

/// Import one bundle of a batch or watch pass (opened, or its refusal to
/// open), with the batch's acceptances.
pub fn import_in(
    r: &Resolved,
    state: &StateDir,
    bundle: Result<Opened>,
    batch: &mut airlock::lifecycle::Batch,
) -> Result<ImportReport> {
    import_result(bundle, &options(r, state), batch)
}

/// The bundles named: files as given, directories expanded to their
/// `*.airlock.zip` files (not recursive).
fn expand(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, bool)> {
    let mut out = Vec::new();
    let mut batch = paths.len() > 1;
    for p in paths {
        if p.is_dir() {
            batch = true;
            // Names are bytes: one that is not UTF-8 is a bundle like any
            // other (decision 71).
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io_read(p, e))?
                .flatten()
                .map(|e| e.path())
                .filter(|f| {
                    f.file_name().is_some_and(|n| {
                        names::has_suffix(n, airlock::watch::SUFFIX)
                            && !n.as_encoded_bytes().starts_with(b".")
                    }) && f.is_file()
                })
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok((out, batch))
}

pub fn run(a: Args) -> Result<i32> {
    let (bundles, batch) = expand(&a.bundles)?;
    if !batch {
        return run_single(&a, &bundles[0]);
    }
    run_batch(&a, bundles).map(|()| 0)
}

fn run_single(a: &Args, bundle: &Path) -> Result<i32> {
    let r = a.opts.resolve(bundle)?;
    let state = open_state(&r.state_path, false)?;
    let import = import_one(&r, &state, bundle)?;
    Ok(emit(&Imported {
        import,
        ledger: r.state_path.join(airlock::ledger::LEDGER_FILE),
    }))
}

/// One bundle imported (docs/json-output.md, `import`).
#[derive(serde::Serialize)]
struct Imported {
    import: ImportReport,
    #[serde(skip)]
    ledger: PathBuf,
}

impl Report for Imported {
    fn human(&self) {
        print_imported(&self.import, &self.ledger);
    }
}

/// An import for a person: what was handed over, what to upload.
fn print_imported(report: &ImportReport, ledger: &Path) {
    outln!(
        "imported {} from {} ({})",
        report.bundle_id,
        report.host_name,
        report.server_id.as_deref().unwrap_or("-")
    );
    outln!(
        "  signed by    {} (sequence {})",
        report.signer,
        report.sequence
    );
    outln!("  created      {}", report.created);
    if report.resumed {
        outln!("  finished the hand-over of an earlier, interrupted import");
    }
    for h in &report.handed_over {
        outln!("  handed over  {}", names::shown(h));
    }
    match report.upload.as_slice() {
        [] => {}
        [one] => outln!(
            "  upload       {}\n               (the one file to upload for {}; steps in the .UPLOAD.txt beside it)",
            names::shown(one),
            report.host_name
        ),
        many => {
            for f in many {
                outln!("  upload       {}", names::shown(f));
            }
        }
    }
    if !report.replaced.is_empty() {
        let ids: Vec<&str> = report
            .replaced
            .iter()
            .map(|r| r.bundle_id.as_deref().unwrap_or("?"))
            .collect();
        outln!(
            "  replaces     {} earlier hand-over(s) not confirmed by GitHub: {} (do not upload them; moved into {}/)",
            report.replaced.len(),
            ids.join(", "),
            airlock::lifecycle::SUPERSEDED_DIR
        );
    }
    for e in &report.move_errors {
        outln!(
            "  {}: could not move {}",
            super::paint("warning", "33"),
            names::one_line(e)
        );
    }
    outln!("  recorded in  {}", names::shown(ledger));
}

fn error_json(e: &Error) -> serde_json::Value {
    super::error_json(e, e.exit_code())
}

/// A batch's outcome: one JSON result per bundle, the count of each
/// disposition, and the first bundle that failed, with its error.
#[derive(Default)]
struct Batch {
    results: Vec<BatchItem>,
    counts: std::collections::BTreeMap<&'static str, usize>,
    first_failure: Option<(PathBuf, Error)>,
}

fn run_batch(a: &Args, bundles: Vec<PathBuf>) -> Result<()> {
    if bundles.is_empty() {
        return Err(Error::new(Code::Args, "no *.airlock.zip files to import")
            .with_hint("name bundle files, or directories that hold *.airlock.zip files"));
    }
    // Each bundle is opened once; the order, the verification and the
    // ledger read only those descriptors.
    let (ordered, unopened) = open_all(bundles);
    let first = ordered
        .first()
        .map(|o| o.path().to_path_buf())
        .or_else(|| unopened.first().map(|u| u.0.clone()))
        .unwrap_or_default();
    let r = a.opts.resolve(&first)?;
    let state = open_state(&r.state_path, false)?;
    let mut batch = Batch::default();
    let mut accepted = airlock::lifecycle::Batch::new();
    let total = ordered.len() + unopened.len();
    for b in ordered {
        let name = b.path().to_path_buf();
        import_in_batch(&r, &state, &name, Ok(b), &mut accepted, &mut batch);
    }
    for (name, e) in unopened {
        import_in_batch(&r, &state, &name, Err(e), &mut accepted, &mut batch);
    }
    let Batch {
        results,
        counts,
        first_failure,
    } = batch;
    let summary = counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    if !super::json() {
        outln!("{total} bundle(s): {summary}");
    }
    if super::json() {
        super::print_json(&BatchDoc {
            ok: first_failure.is_none(),
            results,
            totals: &counts,
            error: first_failure
                .as_ref()
                .map(|(_, e)| ErrorDoc::of(e, e.exit_code())),
        });
    }
    match first_failure {
        None => Ok(()),
        Some((b, e)) => Err(batch_error(&counts, total, &b, e)),
    }
}

/// Each bundle opened once: those opened, in batch order, and those that
/// could not be, with their errors.
fn open_all(bundles: Vec<PathBuf>) -> (Vec<Opened>, Vec<(PathBuf, Error)>) {
    let mut opened = Vec::new();
    let mut unopened = Vec::new();
    for p in bundles {
        match Opened::open(&p) {
            Ok(o) => opened.push(o),
            Err(e) => unopened.push((p, e)),
        }
    }
    (batch_order(opened), unopened)
}

/// The batch's error: how many of `total` were not imported, and the first
/// failure (`b`'s error `e`, kept as the source).
fn batch_error(
    counts: &std::collections::BTreeMap<&'static str, usize>,
    total: usize,
    b: &Path,
    e: Error,
) -> Error {
    if super::json() {
        super::already_reported();
    }
    let failed = counts.get("refused").unwrap_or(&0) + counts.get("failed").unwrap_or(&0);
    let summary = format!(
        "{failed} of {total} bundle(s) not imported; the first: {}: {}",
        names::shown(b),
        names::one_line(&e.cause)
    );
    let hint = e.hint().to_string();
    Error::new(e.code, summary).with_hint(hint).with_source(e)
}

/// Import one bundle of a batch: its summary line (not with `--json`), its
/// JSON result, its count, and the batch's first failure if it is one.
fn import_in_batch(
    r: &Resolved,
    state: &StateDir,
    b: &Path,
    bundle: Result<Opened>,
    accepted: &mut airlock::lifecycle::Batch,
    batch: &mut Batch,
) {
    let res = import_in(r, state, bundle, accepted);
    let d = disposition(&res);
    let label = match d {
        Disposition::Imported => "imported",
        Disposition::AlreadyImported => "already-imported",
        Disposition::Superseded => "superseded",
        Disposition::Refused => "refused",
        Disposition::Retry => "failed",
    };
    *batch.counts.entry(label).or_default() += 1;
    let shown = names::shown(b);
    match &res {
        _ if super::json() => {}
        Ok(rep) => outln!(
            "{label:<17} {shown}  {} {} sequence {}",
            rep.host_name,
            rep.created,
            rep.sequence
        ),
        Err(e) => outln!(
            "{label:<17} {shown}  {}: {}",
            e.code.as_str(),
            names::one_line(&e.cause)
        ),
    }
    let mut item = BatchItem {
        disposition: d,
        bundle: Name::new("bundle", b),
        import: None,
        error: None,
    };
    match res {
        Ok(rep) => item.import = Some(rep),
        Err(e) => {
            item.error = Some(error_json(&e));
            if d.is_failure() && batch.first_failure.is_none() {
                batch.first_failure = Some((b.to_path_buf(), e));
            }
        }
    }
    batch.results.push(item);
}

/// A batch's `--json` document: every bundle's result, the totals, and
/// the first failure's error object.
#[derive(serde::Serialize)]
struct BatchDoc<'a> {
    ok: bool,
    results: Vec<BatchItem>,
    totals: &'a std::collections::BTreeMap<&'static str, usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDoc<'a>>,
}

/// One bundle of a batch: what became of it, and its report or error.
#[derive(serde::Serialize)]
struct BatchItem {
    disposition: Disposition,
    #[serde(flatten)]
    bundle: Name,
    #[serde(skip_serializing_if = "Option::is_none")]
    import: Option<ImportReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}
