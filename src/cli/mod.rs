//! Command-line interface: one file per subcommand. Each parses its
//! arguments, calls the library and prints; none touches bundle bytes.

mod check;
mod cloud;
mod completions;
mod demo;
mod demo_licence;
mod export;
mod extract;
mod fleet;
mod import;
mod inspect;
mod keygen;
mod licence;
mod licence_connect;
mod licence_status;
mod log;
mod man;
mod output;
mod report;
mod settings;
mod sign;
mod signals;
mod verify;
mod watch;

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Parser, Subcommand};
use zeroize::Zeroizing;

use airlock::error::{Code, Error, Result};
use airlock::names;

#[derive(Parser, Debug)]
#[command(
    name = "airlock",
    version,
    long_version = airlock::build_info::long_version(),
    about = "Carry data across an air gap in signed, optionally encrypted bundles",
    long_about = "airlock packages files (first of all the GitHub Enterprise Server license usage file) \
into bundles signed with Ed25519 (OpenSSH SSHSIG), and proves their integrity, provenance and \
freshness on the other side of an air gap. Bundles are zip files that standard tools can check: \
see docs/verify-by-hand.md."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print nothing on success (errors still go to stderr; --json output is kept)
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// More detail (repeatable)
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Colour: auto (only on a terminal, never with NO_COLOR), always, never
    #[arg(long, value_name = "WHEN", global = true, default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,
    /// Print the result, or the failure, as one JSON object on standard output (docs/json-output.md)
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make an Ed25519 signing key (OpenSSH format) and its .pub
    Keygen(keygen::Args),
    /// Package files into a signed bundle
    Export(export::Args),
    /// Check a bundle: container, signatures, trust, digests, freshness, payload
    Verify(verify::Args),
    /// Add a signature to a bundle (co-signing, or one made by ssh-keygen -Y sign)
    Sign(sign::Args),
    /// Verify a bundle and write its payload files into a directory
    Extract(extract::Args),
    /// Verify bundles, apply the ledger's rollback rules, hand the payloads over
    Import(import::Args),
    /// Import every bundle that arrives in a drop folder (data diode, gateway), unattended
    Watch(watch::Args),
    /// Licence in (isolated side): apply licence bundles to the GHES appliance; its status
    #[command(alias = "license")]
    Licence(licence::LicenceArgs),
    /// List the ledger of exports and imports; --verify checks its hash chain
    Log(log::Args),
    /// Ask GitHub Enterprise Cloud about syncs and seats
    Cloud(cloud::CloudArgs),
    /// Every instance seen, with last export, import and confirmed sync, and warnings
    Fleet(fleet::Args),
    /// Write a self-contained HTML report of the fleet
    Report(report::Args),
    /// Show a bundle's manifest, members and signatures without trusting them
    Inspect(inspect::Args),
    /// Run the whole job on built-in sample data, in a temporary directory
    Demo(demo::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(completions::Args),
    /// Print the man page, or write one per subcommand into a directory
    Man(man::Args),
}

/// How output looks, decided once from the flags and the environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Output {
    pub quiet: bool,
    pub json: bool,
    pub verbose: u8,
    pub color_out: bool,
    pub color_err: bool,
}

static OUTPUT: std::sync::OnceLock<Output> = std::sync::OnceLock::new();

pub fn output() -> Output {
    OUTPUT.get().copied().unwrap_or_default()
}

/// `--json` was given (anywhere on the command line).
pub fn json() -> bool {
    output().json
}

fn setup_output(cli: &Cli) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let want = |tty: bool| match cli.color.as_str() {
        "always" => true,
        "never" => false,
        _ => tty && !no_color,
    };
    let o = Output {
        quiet: cli.quiet,
        json: cli.json,
        verbose: cli.verbose,
        color_out: want(io::stdout().is_terminal()),
        color_err: want(io::stderr().is_terminal()),
    };
    let _ = OUTPUT.set(o);
    if io::stderr().is_terminal() && !cli.quiet {
        airlock::progress::install(Box::new(Bar::default()));
    }
    let quiet = cli.quiet;
    airlock::progress::install_notes(Box::new(move |m| {
        if !quiet {
            let _ = writeln!(io::stderr(), "airlock: note: {m}");
        }
    }));
    // `watch` stops on these signals by itself, after the bundle in hand.
    if !matches!(cli.command, Command::Watch(_)) {
        signals::install();
    }
}

/// Paint `s` with an SGR code when colour is on for stdout.
pub fn paint(s: &str, sgr: &str) -> String {
    if output().color_out {
        format!("\x1b[{sgr}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// Streams below this size get no progress bar.
pub const PROGRESS_MIN: u64 = 16 * 1024 * 1024;

/// An indicatif bar on stderr, for large streams only; a stream of unknown
/// size (standard input) gets a byte counter once it is large or slow.
#[derive(Default)]
struct Bar {
    bar: std::sync::Mutex<BarState>,
}

/// The bar drawn, or the stream of unknown size not yet worth a counter.
#[derive(Default)]
struct BarState {
    bar: Option<indicatif::ProgressBar>,
    pending: Option<Pending>,
}

/// A stream of unknown size: its label, when it started, bytes so far.
struct Pending {
    label: String,
    since: std::time::Instant,
    bytes: u64,
}

/// How long a stream of unknown size runs before its counter appears.
const COUNTER_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

fn new_bar(label: &str, total: Option<u64>) -> indicatif::ProgressBar {
    let (len, template) = match total {
        Some(t) => (
            Some(t),
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ),
        None => (None, "{msg} {bytes} read, {bytes_per_sec} (size unknown)"),
    };
    let b = indicatif::ProgressBar::with_draw_target(len, indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(label.to_string());
    b
}

impl airlock::progress::Sink for Bar {
    fn begin(&self, label: &str, total: Option<u64>) {
        let Ok(mut g) = self.bar.lock() else {
            return;
        };
        match total {
            Some(t) if t < PROGRESS_MIN => {}
            Some(t) => g.bar = Some(new_bar(label, Some(t))),
            None => {
                g.pending = Some(Pending {
                    label: label.to_string(),
                    since: std::time::Instant::now(),
                    bytes: 0,
                })
            }
        }
    }
    fn advance(&self, n: u64) {
        let Ok(mut g) = self.bar.lock() else {
            return;
        };
        if let Some(p) = g.pending.as_mut() {
            p.bytes += n;
            if p.bytes >= PROGRESS_MIN || p.since.elapsed() >= COUNTER_AFTER {
                let b = new_bar(&p.label, None);
                b.set_position(p.bytes);
                g.pending = None;
                g.bar = Some(b);
            }
            return;
        }
        if let Some(b) = g.bar.as_ref() {
            b.inc(n);
        }
    }
    fn end(&self) {
        if let Ok(mut g) = self.bar.lock() {
            g.pending = None;
            if let Some(b) = g.bar.take() {
                b.finish_with_message(format!("{} done", b.message()));
            }
        }
    }
}

/// The hidden `airlock standin-appliance --state DIR [SSH ARGUMENTS…]`: the
/// appliance stand-in's SSH face for tests and the demo (not GHES). Taken
/// before clap, so no help, completion or man page lists it: an sshd forced
/// command, or, given ssh's arguments, the SSH command itself. `args` are
/// those after the subcommand's name; the exit status.
pub fn standin_appliance(args: &[std::ffi::OsString]) -> u8 {
    let (state, rest) = match args {
        [flag, dir, rest @ ..] if flag == "--state" => (PathBuf::from(dir), rest),
        _ => {
            eprintln!("usage: airlock standin-appliance --state DIR [SSH ARGUMENTS...] (a test stand-in, not GHES)");
            return 2;
        }
    };
    let st = airlock::standin::appliance::ssh_main(&state, rest);
    u8::try_from(st).unwrap_or(1)
}

/// Run a command; its exit status (0, or a `--check` status) on success.
/// The one dispatch: each command's file runs it and prints its report.
pub fn run(cli: Cli) -> Result<i32> {
    setup_output(&cli);
    match cli.command {
        Command::Keygen(a) => keygen::run(a),
        Command::Export(a) => export::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Sign(a) => sign::run(a),
        Command::Extract(a) => extract::run(a),
        Command::Import(a) => import::run(a),
        Command::Watch(a) => watch::run(a).map(|()| 0),
        Command::Licence(a) => run_licence(a),
        Command::Log(a) => log::run(a).map(|()| 0),
        Command::Cloud(a) => cloud::run(a),
        Command::Fleet(a) => fleet::run(a),
        Command::Report(a) => report::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Demo(a) => demo::run(a).map(|()| 0),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a),
    }
}

/// `licence status` ends with its verdict's status; the others with 0.
fn run_licence(a: licence::LicenceArgs) -> Result<i32> {
    if matches!(a.command, licence::LicenceCommand::Status(_)) {
        return licence::run_status(a);
    }
    licence::run(a).map(|()| 0)
}

/// `--check-format plugin` was given: every failure, a signal included,
/// ends with one `AIRLOCK UNKNOWN - …` line and exit 3 (decision 78).
static PLUGIN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set by the check commands before they run.
pub fn set_plugin_mode(on: bool) {
    PLUGIN.store(on, std::sync::atomic::Ordering::SeqCst);
}

/// Whether failures end in the Monitoring Plugins form.
pub fn plugin_mode() -> bool {
    PLUGIN.load(std::sync::atomic::Ordering::SeqCst)
}

/// Print to stdout; a closed pipe (`airlock … | head`) is not an error.
pub fn out(s: &str) {
    if output().quiet {
        return;
    }
    raw_out(s);
}

/// Standard output was closed by its reader: later output is dropped.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the reader of standard output went away (`airlock … | head`).
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Print regardless of --quiet (JSON, completions, man pages). After a
/// closed pipe, output is dropped quietly and the command finishes its
/// work: its exit status is that of the work, as if the output had been
/// read (ripgrep also exits 0). Stopping there would leave a batch half
/// done while reporting success.
pub fn raw_out(s: &str) {
    if stdout_closed() {
        return;
    }
    let mut o = io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()).and_then(|_| o.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => { $crate::cli::out(&format!("{}\n", format_args!($($t)*))) };
}

/// Print `v` as one pretty JSON document. Through `serde_json::Value`,
/// whose objects keep their keys sorted: every document has always been
/// printed so, whatever order a type declares its fields in (decision 89).
pub fn print_json<T: serde::Serialize>(v: &T) {
    let v = serde_json::to_value(v).unwrap_or_default();
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    raw_out(&s);
}

/// The failure was already reported (as part of a JSON document): the
/// error is only the exit status.
static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn already_reported() {
    REPORTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

pub fn print_error(e: &Error, json: bool) {
    if REPORTED.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    signals::wait_if_interrupted();
    print_error_exit(e, json, e.exit_code());
}

/// `print_error` with the exit status the process will have.
pub fn print_error_exit(e: &Error, json: bool, exit_code: i32) {
    if json {
        print_json(&Failure::of(e, exit_code));
    }
    let (red, dim, reset) = if output().color_err {
        ("\x1b[1;31m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    // A cause may quote a file name: one line each, no terminal control
    // (decision 71).
    let _ = writeln!(
        io::stderr(),
        "airlock: {red}error[{}]{reset}: {}\n  {dim}hint:{reset} {}",
        e.code.as_str(),
        names::one_line(&e.cause),
        names::one_line(e.hint())
    );
    if output().verbose > 0 {
        for c in e.chain() {
            let c = names::one_line(&c);
            let _ = writeln!(io::stderr(), "  {dim}caused by:{reset} {c}");
        }
        let _ = writeln!(
            io::stderr(),
            "  class: {} (exit code {exit_code}); every code is explained in docs/errors.md",
            e.code.class().name(),
        );
    }
}

/// The `error` object of `--json` output (docs/json-output.md):
/// `caused_by` lists the chain of causes, outermost first, when there is one.
#[derive(serde::Serialize)]
pub struct ErrorDoc<'a> {
    code: &'a str,
    class: &'a str,
    exit_code: i32,
    cause: &'a str,
    hint: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    caused_by: Vec<String>,
}

impl ErrorDoc<'_> {
    /// The error object of `e`, for a process ending with `exit_code`.
    pub fn of(e: &Error, exit_code: i32) -> ErrorDoc<'_> {
        ErrorDoc {
            code: e.code.as_str(),
            class: e.code.class().name(),
            exit_code,
            cause: &e.cause,
            hint: e.hint(),
            caused_by: e.chain(),
        }
    }
}

/// `{"ok": false, "error": {…}}`: every command's failure document.
#[derive(serde::Serialize)]
pub struct Failure<'a> {
    error: ErrorDoc<'a>,
    ok: bool,
}

impl Failure<'_> {
    /// The failure document of `e`, for a process ending with `exit_code`.
    pub fn of(e: &Error, exit_code: i32) -> Failure<'_> {
        Failure {
            error: ErrorDoc::of(e, exit_code),
            ok: false,
        }
    }
}

/// [`ErrorDoc`] as a JSON value, for documents still built by hand.
pub fn error_json(e: &Error, exit_code: i32) -> serde_json::Value {
    serde_json::to_value(ErrorDoc::of(e, exit_code)).unwrap_or_default()
}

/// A command line clap refused, or `--help`/`--version`. An error is shown
/// in airlock's form (one `error[AIRLOCK-E-ARGS]` line, then clap's tips and
/// usage); with `--json` anywhere before `--`, standard output carries the
/// failure object (or the help or version text). Returns the exit status.
pub fn args_error(e: clap::Error, raw: &[std::ffi::OsString]) -> u8 {
    let json = raw
        .iter()
        .skip(1)
        .take_while(|a| a.as_os_str() != "--")
        .any(|a| a == "--json");
    let text = e.render().to_string();
    if !e.use_stderr() {
        help_or_version(&e, &text, json);
        return 0;
    }
    let color = io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && !raw.iter().any(|a| a == "--color=never" || a == "never");
    let (red, reset) = if color {
        ("\x1b[1;31m", "\x1b[0m")
    } else {
        ("", "")
    };
    let usage = text
        .lines()
        .find_map(|l| l.strip_prefix("Usage: "))
        .map(str::trim)
        .unwrap_or("airlock COMMAND [OPTIONS]");
    let command: Vec<&str> = usage
        .split_whitespace()
        .take_while(|w| !w.starts_with(['[', '<', '-']) && *w != "COMMAND")
        .collect();
    let command = command.join(" ");
    let (cause, shown) = clap_message(&e, &text, &command, (red, reset));
    let mut hints: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("tip: "))
        .map(String::from)
        .collect();
    hints.push(format!("usage: {usage}"));
    hints.push(format!("`{command} --help` lists every option"));
    let err = Error::new(Code::Args, cause).with_hint(hints.join("; "));
    if plugin_requested(raw) {
        // A plugin runner reads standard output and 0-3 (decision 78).
        let _ = io::stderr().write_all(shown.as_bytes());
        raw_out(&format!("{}\n", check::unknown_line(&err)));
        return 3;
    }
    if json {
        print_json(&Failure::of(&err, err.exit_code()));
    }
    let _ = io::stderr().write_all(shown.as_bytes());
    err.exit_code() as u8
}

/// Whether the command line asks for `--check-format plugin` (read from
/// the words, since clap refused it).
fn plugin_requested(raw: &[std::ffi::OsString]) -> bool {
    let words: Vec<&std::ffi::OsStr> = raw
        .iter()
        .skip(1)
        .map(|a| a.as_os_str())
        .take_while(|a| *a != "--")
        .collect();
    words.iter().any(|a| *a == "--check-format=plugin")
        || words
            .windows(2)
            .any(|w| w[0] == "--check-format" && w[1] == "plugin")
}

/// `--help` or `--version` (clap's `text`): printed as clap prints it, or
/// as `{"ok": true, "help"|"version": …}` with `--json`.
fn help_or_version(e: &clap::Error, text: &str, json: bool) {
    if json {
        let key = if e.kind() == clap::error::ErrorKind::DisplayVersion {
            "version"
        } else {
            "help"
        };
        let text = Some(text.trim_end());
        let (help, version) = if key == "version" {
            (None, text)
        } else {
            (text, None)
        };
        print_json(&HelpOrVersion {
            ok: true,
            help,
            version,
        });
    } else {
        let _ = e.print();
    }
}

/// `{"ok": true, "help"|"version": …}`.
#[derive(serde::Serialize)]
struct HelpOrVersion<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<&'a str>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
}

/// The cause of a refused command line (one line) and what standard error
/// shows: clap's message behind airlock's `error[AIRLOCK-E-ARGS]`, or, when
/// clap printed the help because a subcommand is missing, the help and then
/// the error line. `red` and `reset` start and end the colour (empty
/// without colour).
fn clap_message(
    e: &clap::Error,
    text: &str,
    command: &str,
    (red, reset): (&str, &str),
) -> (String, String) {
    if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // clap printed the help: no error line of its own.
        let cause = format!("{command} needs a command");
        let shown = format!(
            "{text}\nairlock: {red}error[{}]{reset}: {cause}\n",
            Code::Args.as_str()
        );
        (cause, shown)
    } else {
        let body = text.strip_prefix("error: ").unwrap_or(text);
        let cause = body
            .split("\n\n")
            .next()
            .unwrap_or("")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let shown = format!(
            "airlock: {red}error[{}]{reset}: {body}",
            Code::Args.as_str()
        );
        (cause, shown)
    }
}

/// Parse `--at`: RFC 3339 (`2026-11-28T12:00:00Z`) or a Unix time.
pub fn parse_time_arg(s: &str) -> std::result::Result<SystemTime, String> {
    if let Ok(secs) = s.parse::<u64>() {
        // Beyond year 9999 no bundle time can be written or compared.
        if secs > airlock::bundle::manifest::Timestamp::MAX_SECS {
            return Err(format!(
                "{secs} is after 9999-12-31T23:59:59Z; use RFC 3339 such as 2026-11-28T12:00:00Z, or Unix seconds"
            ));
        }
        return Ok(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs));
    }
    humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("{e}; use RFC 3339 such as 2026-11-28T12:00:00Z, or Unix seconds"))
}

/// A passphrase source for encrypted keys: the file if given, else a prompt
/// on the terminal, else a clear error.
pub fn passphrase_source(
    key: &Path,
    file: Option<PathBuf>,
) -> impl FnMut() -> Result<Zeroizing<String>> {
    let key = names::escape(key);
    move || {
        if let Some(f) = &file {
            return airlock::keys::read_passphrase_file(f);
        }
        if !io::stdin().is_terminal() && !io::stderr().is_terminal() {
            return Err(Error::new(
                Code::KeyPassphrase,
                format!("{key} is encrypted and there is no terminal to ask for its passphrase"),
            )
            .with_hint("pass --key-passphrase-file FILE"));
        }
        rpassword::prompt_password(format!("Passphrase of the key {key}: "))
            .map(Zeroizing::new)
            .map_err(|e| prompt_failed(e, "--key-passphrase-file").recode(Code::KeyPassphrase))
    }
}

/// Identity options shared by `verify` and `extract`.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct IdentityArgs {
    /// Decrypt with this age identity file (AGE-SECRET-KEY-1… or post-quantum
    /// AGE-SECRET-KEY-PQ-1…) or OpenSSH Ed25519 private key (repeatable)
    /// [env: AIRLOCK_IDENTITY, colon-separated; config: identities]
    #[arg(long = "identity", short = 'i', value_name = "FILE")]
    pub identities: Vec<PathBuf>,
    /// Passphrase of a passphrase-encrypted bundle, on the first line of FILE
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Passphrase of an encrypted OpenSSH identity key, on the first line of FILE
    #[arg(long, value_name = "FILE")]
    pub key_passphrase_file: Option<PathBuf>,
}

impl IdentityArgs {
    /// Load `identities` (the resolved ones: these flags, else the
    /// environment's, else the configuration's); for a passphrase bundle
    /// without --passphrase-file, ask on the terminal.
    pub fn load(
        &self,
        identities: &[PathBuf],
        bundle: &Path,
    ) -> Result<airlock::crypt::Identities> {
        let mut ids = airlock::crypt::Identities::default();
        for f in identities {
            let mut pass = passphrase_source(f, self.key_passphrase_file.clone());
            ids.add_file(f, &mut pass)?;
        }
        if let Some(f) = &self.passphrase_file {
            let p = airlock::keys::read_passphrase_file(f)?;
            ids.set_passphrase(&p);
        } else if identities.is_empty() && io::stdin().is_terminal() {
            // Only a passphrase bundle needs asking; look (untrusted) first.
            let scrypt = airlock::bundle::inspect(bundle)
                .ok()
                .and_then(|i| i.manifest)
                .is_some_and(|m| m.recipients.iter().any(|r| r.is_passphrase()));
            if scrypt {
                let p = rpassword::prompt_password("Passphrase of the bundle: ")
                    .map_err(|e| prompt_failed(e, "--passphrase-file"))?;
                ids.set_passphrase(&Zeroizing::new(p));
            }
        }
        Ok(ids)
    }
}

/// The signer for `--key KEY [--agent]`: with --agent, KEY names the public
/// key (KEY, or KEY.pub) and ssh-agent signs; else KEY is the private key.
pub fn load_signer(
    key: &Path,
    agent: bool,
    pass_file: Option<PathBuf>,
) -> Result<airlock::keys::Signer> {
    if agent {
        let socket = airlock::agent::socket_from_env()?;
        let public = airlock::keys::load_public(key).or_else(|e| {
            let mut p = key.as_os_str().to_owned();
            p.push(".pub");
            airlock::keys::load_public(Path::new(&p)).map_err(|_| e)
        })?;
        return Ok(airlock::keys::Signer::agent(socket, public));
    }
    let mut pass = passphrase_source(key, pass_file);
    airlock::keys::load_signer(key, &mut pass)
}

/// Why a passphrase could not be read from the terminal. Without a
/// controlling terminal (a cron job, a pipe, `ssh host cmd`) rpassword fails
/// with ENXIO or ENOTTY: say so and name the flag that takes a file.
fn prompt_failed(e: io::Error, file_flag: &str) -> Error {
    let no_tty =
        matches!(e.raw_os_error(), Some(6) | Some(25)) || e.kind() == io::ErrorKind::NotFound;
    if no_tty {
        Error::new(
            Code::Args,
            "there is no terminal to ask for the passphrase on",
        )
        .with_hint(format!(
            "put the passphrase on the first line of a file only you can read (chmod 600) and pass {file_flag} FILE"
        ))
        .with_source(e)
    } else {
        Error::new(
            Code::Args,
            format!("cannot read the passphrase from the terminal: {e}"),
        )
        .with_hint(format!("pass {file_flag} FILE instead"))
        .with_source(e)
    }
}

/// Ask for a new passphrase twice on the terminal. `for_what` says what it
/// protects ("the bundle", "the new key …"); `file_flag` is the flag that
/// reads one from a file instead.
pub fn prompt_new_passphrase(for_what: &str, file_flag: &str) -> Result<Zeroizing<String>> {
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|e| prompt_failed(e, file_flag))
    };
    let a = ask(&format!("New passphrase for {for_what}: "))?;
    let b = ask("The same passphrase again: ")?;
    if a != b {
        return Err(Error::new(Code::Args, "the two passphrases typed differ").with_hint(
            format!("run the command again and type the same passphrase twice, or pass {file_flag} FILE"),
        ));
    }
    if a.is_empty() {
        return Err(Error::new(Code::Args, "the passphrase is empty")
            .with_hint("type a passphrase, or leave out --passphrase for no passphrase"));
    }
    Ok(a)
}

/// Commands that only read the ledger (log, fleet, report) need one: on a
/// fresh state directory they say so, the same way.
pub fn require_ledger(dir: &Path) -> Result<()> {
    if dir.join(airlock::ledger::LEDGER_FILE).exists() {
        return Ok(());
    }
    Err(Error::new(
        Code::IoRead,
        format!(
            "no ledger in {}: nothing was exported or imported with this state directory yet",
            names::shown(&dir)
        ),
    )
    .with_hint("export or import a bundle first, or pass --state-dir (or set AIRLOCK_STATE_DIR, or state_dir in airlock.toml) of the host that did"))
}

/// Human-readable byte count.
pub fn bytes(n: u64) -> String {
    if n < 10 * 1024 {
        format!("{n} B")
    } else if n < 10 * 1024 * 1024 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else if n < 10 * 1024 * 1024 * 1024 {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} GiB", n as f64 / (1024.0 * 1024.0 * 1024.0))
    }
}

/// `--require-signers N`: 1..=16 (a bundle holds at most 16 signatures).
/// Parse a duration such as `2s`, `500ms`, `10m`, `1h`.
pub fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 2s, 500ms, 10m, 1h)"))
}

pub fn parse_signers(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=16).contains(&n) => Ok(n),
        _ => Err("a number from 1 to 16".into()),
    }
}

/// A value, or `-` when there is none (tables).
pub fn or_dash<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".into(), |v| v.to_string())
}
