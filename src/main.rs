//! The `airlock` command: parses arguments, calls the library, prints.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to
            // stderr (exit 2, the documented usage code).
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            if e.use_stderr() {
                // Usage errors get the same stable code as every other failure.
                eprintln!("airlock: error[AIRLOCK-E-ARGS]: invalid arguments (exit code 2)");
            }
            return ExitCode::from(code);
        }
    };
    let json = args.json();
    match cli::run(args) {
        Ok(status) => ExitCode::from(u8::try_from(status).unwrap_or(1)),
        Err(e) => {
            cli::print_error(&e, json);
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
