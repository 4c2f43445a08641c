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
mod standin_appliance;
mod standin_cloud;
mod standin_server;
mod standin_ssh;
mod verify;
mod watch;

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Parser, Subcommand};
use zeroize::Zeroizing;

use airlock::error::{Code, Error, Result};
use airlock::names;
use airlock::progress::Progress;

mod bars;
mod errors;
pub use bars::*;
pub use errors::*;

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
        let _ = PROGRESS.set(Progress::to(std::sync::Arc::new(Bar::default())));
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

/// The binary's progress bars (a terminal, not `--quiet`), or none: what
/// the commands pass to the library as `progress`.
static PROGRESS: std::sync::OnceLock<Progress> = std::sync::OnceLock::new();

/// The progress every command passes to the library.
pub fn progress() -> Progress {
    PROGRESS.get().cloned().unwrap_or_default()
}

/// Paint `s` with an SGR code when colour is on for stdout.
pub fn paint(s: &str, sgr: &str) -> String {
    if output().color_out {
        format!("\x1b[{sgr}m{s}\x1b[0m")
    } else {
        s.to_string()
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
            eprintln!("usage: airlock standin-appliance --state DIR [--serve-http PASSWORD TOKEN | SSH ARGUMENTS...] (a test stand-in, not GHES)");
            return 2;
        }
    };
    if let [flag, password, token] = rest {
        if flag == "--serve-http" {
            return serve_standin_http(&state, password, token);
        }
    }
    let st = standin_ssh::ssh_main(&state, rest);
    u8::try_from(st).unwrap_or(1)
}

/// The stand-in appliance's HTTP face for the tests: its address on the
/// first line of standard output, then served until standard input closes
/// (the test that started it ended) or the process is killed.
fn serve_standin_http(
    state: &std::path::Path,
    password: &std::ffi::OsStr,
    token: &std::ffi::OsStr,
) -> u8 {
    let (Some(password), Some(token)) = (password.to_str(), token.to_str()) else {
        eprintln!("airlock standin-appliance: the password and token must be UTF-8");
        return 2;
    };
    let standin = match standin_appliance::ManageStandIn::start(state, password, token) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("airlock standin-appliance: {}", e.cause);
            return 1;
        }
    };
    println!("{}", standin.addr);
    let _ = io::stdout().flush();
    let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
    drop(standin);
    0
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

/// Parse `--at`: RFC 3339 (`2026-11-28T12:00:00Z`) or a Unix time.
pub fn parse_time_arg(s: &str) -> std::result::Result<SystemTime, String> {
    if let Ok(secs) = s.parse::<u64>() {
        // Beyond year 9999 no bundle time can be written or compared.
        if secs > airlock::format::manifest::Timestamp::MAX_SECS {
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
    #[arg(help = airlock::config::flag_help("identities", "Decrypt with this age identity file (AGE-SECRET-KEY-1… or post-quantum AGE-SECRET-KEY-PQ-1…) or OpenSSH Ed25519 private key (repeatable)"))]
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
            let scrypt = airlock::verify::inspect(bundle)
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
