//! `airlock completions SHELL`: a shell completion script.

use clap::CommandFactory;

use airlock::error::Result;

use super::output::Report;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `{"ok": true, "shell": …, "script": …}`, or the script as it is.
#[derive(serde::Serialize)]
pub struct Completions {
    shell: String,
    script: String,
}

impl Report for Completions {
    fn human(&self) {
        super::raw_out(&self.script);
    }
}

pub fn run(a: Args) -> Result<i32> {
    let mut cmd = super::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "airlock", &mut buf);
    Ok(super::output::emit(&Completions {
        shell: a.shell.to_string(),
        script: String::from_utf8_lossy(&buf).into_owned(),
    }))
}
