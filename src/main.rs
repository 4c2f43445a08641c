//! The `airlock` command: parses arguments, calls the library, prints.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if raw.get(1).is_some_and(|a| a == "standin-appliance") {
        return ExitCode::from(cli::standin_appliance(&raw[2..]));
    }
    let args = match cli::Cli::try_parse_from(&raw) {
        Ok(a) => a,
        // Usage errors exit 2 (the documented usage code), help and version 0.
        Err(e) => return ExitCode::from(cli::args_error(e, &raw)),
    };
    let json = args.json;
    match cli::run(args) {
        Ok(status) => ExitCode::from(u8::try_from(status).unwrap_or(1)),
        Err(e) => {
            cli::print_error(&e, json);
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
