//! Man pages, generated from the clap definitions: `airlock.1` and one page
//! per subcommand (`airlock-export.1`, `airlock-cloud-status.1`, …), each
//! with the synopsis as it is typed (`airlock export …`), every option
//! including the global ones, and the sections a Unix administrator looks
//! for: EXIT STATUS (from the error classes, as docs/errors.md), ENVIRONMENT,
//! FILES, EXAMPLES and SEE ALSO. Every page another page refers to is
//! generated (tests/cli.rs runs `man -l` on each).

use clap::CommandFactory;

use airlock::error::Class;

/// Escape text for roff: backslashes, and a leading `.` or `'` that would
/// read as a request; `-` as `\-` so it is a minus sign that can be copied.
fn esc(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

fn section(out: &mut String, title: &str) {
    out.push_str(&format!(".SH {title}\n"));
}

/// A tagged paragraph: `tag` in bold, then `text`.
fn item(out: &mut String, tag: &str, text: &str) {
    out.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", esc(tag), esc(text)));
}

/// Lines shown as typed (no filling).
fn example(out: &mut String, what: &str, lines: &[&str]) {
    out.push_str(&format!(".PP\n{}\n.PP\n.nf\n.RS 4\n", esc(what)));
    for l in lines {
        out.push_str(&format!("{}\n", esc(l)));
    }
    out.push_str(".RE\n.fi\n");
}

const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "AIRLOCK_STATE_DIR",
        "State directory (sequence numbers, ledger, default outbox), as --state-dir.",
    ),
    ("AIRLOCK_TRUST", "The allowed_signers file, as --trust."),
    ("AIRLOCK_REVOKED", "The revoked-keys file, as --revoked."),
    (
        "AIRLOCK_IDENTITY",
        "Decryption identities for verify, extract, import and watch, colon-separated, as --identity.",
    ),
    (
        "AIRLOCK_OUTBOX",
        "The outbox directory of import, as --outbox.",
    ),
    (
        "AIRLOCK_ENTERPRISE",
        "The GitHub Enterprise Cloud enterprise slug, as --enterprise.",
    ),
    (
        "AIRLOCK_SUBMIT_URL",
        "An internal endpoint import posts to instead of the outbox, as --submit-url.",
    ),
    (
        "AIRLOCK_SUBMIT_TOKEN",
        "Bearer token for the submit URL; --submit-token-file wins over it, it wins over submit_token_file in airlock.toml.",
    ),
    ("AIRLOCK_CONFIG", "The configuration file, as --config."),
    (
        "GH_TOKEN, GITHUB_TOKEN",
        "GitHub token for cloud status and cloud seats (read:enterprise); --token-file wins over it, it wins over token_file in airlock.toml.",
    ),
    (
        "GH_HOST",
        "The GitHub host for cloud, as --host (github.com or NAME.ghe.com).",
    ),
    ("SSH_AUTH_SOCK", "The ssh-agent socket, for --agent."),
    (
        "SOURCE_DATE_EPOCH",
        "With export --reproducible, the creation time of the bundle, in Unix seconds; ignored otherwise.",
    ),
    (
        "NO_COLOR",
        "When set and not empty, no colour (unless --color always).",
    ),
    (
        "XDG_CONFIG_HOME, XDG_STATE_HOME, HOME",
        "Where the default configuration file and state directory are.",
    ),
];

const FILES: &[(&str, &str)] = &[
    ("~/.config/airlock/airlock.toml", "Configuration of verify, extract, import, watch, export, log, cloud, fleet and report: see CONFIGURATION (docs/import.md)."),
    ("~/.local/state/airlock/", "The state directory: sequence/ (per-key sequence numbers of the exporter), ledger.sqlite (the hash-chained import and export ledger), lock, outbox/ (the default outbox)."),
    ("allowed_signers", "OpenSSH allowed_signers file: which key may sign for which GHES host (see ssh-keygen(1), ALLOWED SIGNERS)."),
    ("revoked_keys", "Revoked public keys, one per line, or a binary KRL made with ssh-keygen -k."),
    ("HOST_TIME.UPLOAD.txt", "In the outbox, beside the usage file HOST_TIME_NAME: the steps to upload it to GitHub Enterprise Cloud."),
    (".airlock-XXXXXX.tmp", "A temporary file while a file is written; removed when airlock is interrupted, and swept by the next run if a killed run left it."),
];

/// An example: what it does, and its command lines.
type Example = (&'static str, Vec<&'static str>);

/// Examples for a page, by its name.
fn examples(name: &str) -> Vec<Example> {
    let isolated = isolated_side_examples(name);
    if isolated.is_empty() {
        connected_side_examples(name)
    } else {
        isolated
    }
}

/// Examples for the pages of the isolated side's commands (and airlock(1)).
fn isolated_side_examples(name: &str) -> Vec<Example> {
    match name {
        "airlock" => vec![
            ("The whole job on built-in sample data, step by step:", vec!["airlock demo"]),
            (
                "Export the usage file straight from the appliance to a mounted stick:",
                vec![
                    "ssh -p 122 admin@ghes.example.com -- ghe-license usage -o -y \\",
                    "  | airlock export - --key ~/.ssh/airlock_ed25519 --out /media/stick/",
                ],
            ),
            (
                "On the connected side, import and confirm:",
                vec![
                    "airlock import /media/stick/BUNDLE --trust /etc/airlock/allowed_signers --enterprise octo-corp",
                    "airlock cloud status --enterprise octo-corp",
                ],
            ),
        ],
        "airlock-keygen" => vec![
            ("A signing key, passphrase asked on the terminal:", vec!["airlock keygen --out ~/.ssh/airlock_ed25519 --passphrase"]),
            ("The importer's age identity:", vec!["airlock keygen --age --out ~/.config/airlock/identity.txt"]),
        ],
        "airlock-export" => vec![
            ("From a downloaded usage file:", vec!["airlock export license-usage.json --key ~/.ssh/airlock_ed25519 --out /media/stick/"]),
            (
                "From the appliance, encrypted to the importer:",
                vec![
                    "ssh -p 122 admin@ghes.example.com -- ghe-license usage -o -y \\",
                    "  | airlock export - --key ~/.ssh/airlock_ed25519 --out /media/stick/ --recipient age1...",
                ],
            ),
            ("Any other file from standard input:", vec!["tar c notes/ | airlock export - --kind file --stdin-name notes.tar --host-name ghes.example.com --key KEY --out /media/stick/"]),
        ],
        "airlock-verify" => vec![
            ("At the boundary, with public keys only:", vec!["airlock verify BUNDLE --trust allowed_signers --revoked revoked_keys"]),
            ("An auditor checking an old bundle as of its time:", vec!["airlock verify BUNDLE --trust allowed_signers --at 2026-11-01T00:00:00Z"]),
        ],
        "airlock-sign" => vec![("A second signature (two-person rule):", vec!["airlock sign BUNDLE --key ~/.ssh/second_ed25519"])],
        "airlock-extract" => vec![("Verify, decrypt and write the payload into a directory:", vec!["airlock extract BUNDLE --trust allowed_signers --identity ~/.config/airlock/identity.txt --out ./usage"])],
        _ => vec![],
    }
}

/// Examples for the pages of the connected side's commands and the tools.
fn connected_side_examples(name: &str) -> Vec<Example> {
    match name {
        "airlock-import" => vec![
            ("Import into the outbox, with the enterprise's upload page in the steps:", vec!["airlock import BUNDLE --trust /etc/airlock/allowed_signers --enterprise octo-corp"]),
            ("With airlock.toml holding trust, identities and enterprise:", vec!["airlock import BUNDLE"]),
        ],
        "airlock-log" => vec![("Check the hash chain and print its head for the change ticket:", vec!["airlock log --verify"])],
        "airlock-cloud" | "airlock-cloud-status" => vec![
            ("Confirm that GitHub processed the uploads:", vec!["GH_TOKEN=... airlock cloud status --enterprise octo-corp"]),
            ("From a timer, as a Monitoring Plugins check that also feeds Prometheus' textfile collector (docs/automation.md):", vec!["airlock cloud status --check-format plugin --metrics /var/lib/prometheus/node-exporter/airlock.prom"]),
        ],
        "airlock-cloud-seats" => vec![("Seats, and server users matching no Cloud account:", vec!["airlock cloud seats --enterprise octo-corp"])],
        "airlock-fleet" => vec![
            ("Every instance, with warnings:", vec!["airlock fleet"]),
            ("A Nagios or Icinga check (one line, exit 0-3):", vec!["airlock fleet --check-format plugin --max-unconfirmed-days 3"]),
        ],
        "airlock-report" => vec![("One offline page for the licence manager:", vec!["airlock report --html fleet.html"])],
        "airlock-inspect" => vec![("Look inside a bundle without trusting it:", vec!["airlock inspect BUNDLE"])],
        "airlock-demo" => vec![("Run the demo and keep its files:", vec!["airlock demo --dir /tmp/airlock-demo"])],
        "airlock-completions" => vec![("Bash completion for the current user:", vec!["airlock completions bash > ~/.local/share/bash-completion/completions/airlock"])],
        "airlock-man" => vec![("Install the man pages for the current user:", vec!["airlock man --dir ~/.local/share/man/man1 && man airlock-export"])],
        _ => vec![],
    }
}

/// The keys of airlock.toml this page's command takes (every key on
/// airlock(1)), from the one table of keys.
fn configuration(out: &mut String, name: &str) {
    let cmd = name
        .strip_prefix("airlock-")
        .map(|c| c.split('-').next().unwrap_or(c));
    let keys: Vec<&airlock::config::Key> = airlock::config::KEYS
        .iter()
        .filter(|k| cmd.is_none_or(|c| k.commands.contains(&c)))
        .collect();
    if keys.is_empty() {
        return;
    }
    section(out, "CONFIGURATION");
    out.push_str(&format!(
        "{}
",
        esc("Keys of airlock.toml (--config FILE, else AIRLOCK_CONFIG, else ~/.config/airlock/airlock.toml if it exists). Each value comes from the flag, else the environment variable, else the file; relative paths in the file are relative to its directory.")
    ));
    for k in keys {
        let from = match k.env {
            Some(e) => format!("{}, {e}", k.flag),
            None => k.flag.to_string(),
        };
        item(
            out,
            k.name,
            &format!("{} ({from}; used by {}).", k.about, k.commands.join(", ")),
        );
    }
}

/// One page: clap_mangen's title, name, description, options and
/// subcommands, with airlock's synopsis and sections.
fn page(cmd: &clap::Command, name: &str, all: &[String]) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone())
        .title(name)
        .source(format!("airlock {}", env!("CARGO_PKG_VERSION")))
        .manual("airlock manual");
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    buf.extend_from_slice(synopsis(cmd, name).as_bytes());
    man.render_description_section(&mut buf)?;
    man.render_options_section(&mut buf)?;
    if cmd.get_subcommands().next().is_some() {
        man.render_subcommands_section(&mut buf)?;
    }
    let mut s = String::new();
    exit_status(&mut s, name);
    section(&mut s, "ENVIRONMENT");
    for (k, v) in ENVIRONMENT {
        item(&mut s, k, v);
    }
    configuration(&mut s, name);
    section(&mut s, "FILES");
    for (k, v) in FILES {
        item(&mut s, k, v);
    }
    let ex = examples(name);
    if !ex.is_empty() {
        section(&mut s, "EXAMPLES");
        for (what, lines) in ex {
            example(&mut s, what, &lines);
        }
    }
    see_also(&mut s, name, all);
    section(&mut s, "VERSION");
    s.push_str(&format!(
        "{}\n",
        esc(&format!("v{}", env!("CARGO_PKG_VERSION")))
    ));
    buf.extend_from_slice(s.as_bytes());
    Ok(buf)
}

/// The SYNOPSIS section: clap's usage line with the command name (`name`
/// with spaces for dashes) in bold.
fn synopsis(cmd: &clap::Command, name: &str) -> String {
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage
        .trim()
        .strip_prefix("Usage: ")
        .unwrap_or(usage.trim())
        .to_string();
    let typed = name.replace('-', " ");
    let mut s = String::new();
    section(&mut s, "SYNOPSIS");
    let rest = usage.strip_prefix(&typed).unwrap_or(&usage);
    s.push_str(&format!("\\fB{}\\fR{}\n", esc(&typed), esc(rest)));
    s
}

/// Pages of the commands with a health check (`--check`).
const CHECK_PAGES: &[&str] = &[
    "airlock",
    "airlock-fleet",
    "airlock-cloud",
    "airlock-cloud-status",
];

/// The EXIT STATUS section: 0, then every failure class with its code, and
/// on the pages of the commands with a health check, the statuses of its
/// two formats (docs/errors.md).
fn exit_status(s: &mut String, name: &str) {
    section(s, "EXIT STATUS");
    item(
        s,
        "0",
        "success (also when standard output is a closed pipe)",
    );
    for &c in Class::ALL {
        let code = match c {
            Class::Interrupted => "129, 130, 143".to_string(),
            c => c.exit_code().to_string(),
        };
        item(s, &code, &format!("{}: {}", c.name(), c.meaning()));
    }
    s.push_str(&format!(
        ".PP\n{}\n",
        esc("Every failure prints one line, error[AIRLOCK-E-CODE]: cause, and a hint on standard error; with --json, standard output carries {\"ok\": false, \"error\": {...}}. Every code is listed with its fix in docs/errors.md.")
    ));
    if CHECK_PAGES.contains(&name) {
        check_statuses(s);
    }
}

/// The health check's statuses: 16 + problem bits by default, 0-3 with
/// `--check-format plugin` (decision 78).
fn check_statuses(s: &mut String) {
    s.push_str(&format!(
        ".PP\n{}\n",
        esc("fleet --check and cloud status --check (--check-format bits, the default) exit 0 when every instance is healthy, else 16 + the sum of the bits of the problems found, one line per problem on standard output; errors keep the codes above:")
    ));
    for (code, text) in [
        ("17", "a sync failed, or its date is unreadable (bit 1)"),
        ("18", "an import is not confirmed in time (bit 2)"),
        ("19", "17 and 18"),
        ("20", "no export within the expected interval (bit 4)"),
        ("21", "17 and 20"),
        ("22", "18 and 20"),
        ("23", "all three"),
    ] {
        item(s, code, text);
    }
    s.push_str(&format!(
        ".PP\n{}\n",
        esc("With --check-format plugin (Monitoring Plugins: Nagios, Icinga, Naemon, Zabbix), standard output is one line, AIRLOCK STATUS - text | performance data, and the exit status is one of these four, whatever happens:")
    ));
    for (code, text) in [
        ("0", "OK: every instance healthy"),
        ("1", "WARNING: an import is not confirmed in time"),
        ("2", "CRITICAL: a sync failed or its date is unreadable, or no export within the expected interval"),
        ("3", "UNKNOWN: the check could not decide: any error (configuration, token, network, GitHub, ledger, arguments), the state lock held by another process (cloud status), or a signal"),
    ] {
        item(s, code, text);
    }
}

/// The SEE ALSO section: airlock(1) and the parent command's page (unless
/// this is that page), ssh-keygen(1), age(1), and the documentation.
fn see_also(s: &mut String, name: &str, all: &[String]) {
    section(s, "SEE ALSO");
    let mut refs: Vec<String> = Vec::new();
    if name != "airlock" {
        refs.push("airlock(1)".into());
    }
    if let Some(parent) = name
        .rsplit_once('-')
        .map(|(p, _)| p)
        .filter(|p| *p != "airlock")
    {
        if all.iter().any(|n| n == parent) {
            refs.push(format!("{parent}(1)"));
        }
    }
    refs.push("ssh-keygen(1)".into());
    refs.push("age(1)".into());
    s.push_str(&format!(
        "{}\n.PP\n{}\n",
        esc(&refs.join(", ")),
        esc("The documentation in docs/ of the source: format.md, operator-guide.md, errors.md, json-output.md.")
    ));
}

/// Every page: (file name, roff text).
pub fn pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    // `airlock help …` stays for the terminal; it gets no page of its own,
    // so no page may refer to airlock-help(1).
    let mut root = super::Cli::command()
        .disable_help_subcommand(true)
        .mut_subcommand("cloud", |c| c.disable_help_subcommand(true));
    root.build();
    let mut cmds: Vec<(String, clap::Command)> = vec![("airlock".into(), root.clone())];
    fn walk(prefix: &str, c: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
        for sub in c.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = format!("{prefix}-{}", sub.get_name());
            out.push((name.clone(), sub.clone()));
            walk(&name, sub, out);
        }
    }
    walk("airlock", &root, &mut cmds);
    let names: Vec<String> = cmds.iter().map(|(n, _)| n.clone()).collect();
    let mut out = Vec::new();
    for (name, cmd) in &cmds {
        out.push((format!("{name}.1"), page(cmd, name, &names)?));
    }
    Ok(out)
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write airlock.1 and airlock-SUBCOMMAND.1 into DIR instead of printing airlock.1
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// `airlock man`: the root page, or the pages written into a directory.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub enum Man {
    /// Without `--dir`: `airlock.1`'s roff.
    Page {
        /// Always `airlock.1`.
        page: &'static str,
        /// The page's roff source.
        roff: String,
    },
    /// With `--dir`: the files written.
    Written(super::output::Names),
}

impl super::output::Report for Man {
    fn human(&self) {
        match self {
            Man::Page { roff, .. } => super::raw_out(roff),
            Man::Written(w) => {
                for p in w.iter() {
                    crate::outln!("{}", airlock::names::shown(p));
                }
            }
        }
    }
}

pub fn run(a: Args) -> airlock::error::Result<i32> {
    use airlock::error::{Code, Error};
    let pages = pages().map_err(|e| Error::new(Code::Internal, format!("man page: {e}")))?;
    let Some(dir) = a.dir else {
        let root = pages.into_iter().next().map(|(_, p)| p).unwrap_or_default();
        let roff = String::from_utf8_lossy(&root).into_owned();
        return Ok(super::output::emit(&Man::Page {
            page: "airlock.1",
            roff,
        }));
    };
    airlock::fsutil::ensure_dir(&dir, "man page directory")?;
    let mut written = Vec::new();
    for (file, page) in pages {
        let path = dir.join(&file);
        airlock::fsutil::write_atomic(&path, &page, 0o644, true)?;
        written.push(path);
    }
    let written = super::output::Names::new("written", written);
    Ok(super::output::emit(&Man::Written(written)))
}
