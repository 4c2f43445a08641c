//! Errors and clap's messages, printed as text or as the `--json` error document.

use super::*;

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
