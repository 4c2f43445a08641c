//! `airlock keygen`: make an OpenSSH Ed25519 signing key, or an age identity
//! (X25519, or hybrid post-quantum ML-KEM-768 + X25519).

use std::path::PathBuf;

use airlock::error::Result;
use airlock::keys;
use airlock::names;

use super::output::{emit, Name, Report};
use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to write the private key; the public key goes to PATH.pub
    #[arg(long, short = 'f', value_name = "PATH")]
    pub out: PathBuf,
    /// Comment stored in the key (shown by ssh-keygen -l); default USER@HOST,
    /// as ssh-keygen writes it
    #[arg(long, short = 'C', value_name = "COMMENT")]
    pub comment: Option<String>,
    /// Encrypt the private key with a passphrase asked twice on the terminal
    #[arg(long, conflicts_with = "passphrase_file")]
    pub passphrase: bool,
    /// Encrypt the private key with the passphrase on the first line of FILE
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Make an age X25519 identity (age-keygen's format) instead of a signing key
    #[arg(long, conflicts_with_all = ["passphrase", "passphrase_file"])]
    pub age: bool,
    /// With --age: a hybrid post-quantum identity (ML-KEM-768 + X25519,
    /// AGE-SECRET-KEY-PQ-1…, recipient age1pq1…), as `age-keygen -pq` makes
    #[arg(long, requires = "age")]
    pub post_quantum: bool,
    /// Replace existing key files
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: Args) -> Result<i32> {
    // ~/.ssh or ~/.config/airlock on a fresh home is created; elsewhere the
    // directory must exist (docs/operator-guide.md, "Output directories").
    airlock::fsutil::ensure_dir(&airlock::fsutil::parent_dir(&a.out), "key directory")?;
    if a.age {
        Ok(emit(&age_identity(&a)?))
    } else {
        Ok(emit(&signing_key(&a)?))
    }
}

/// `--age`: write an age identity (X25519, or hybrid with
/// `--post-quantum`) and print its recipient.
fn age_identity(a: &Args) -> Result<AgeIdentity> {
    let created = airlock::format::manifest::format_time(std::time::SystemTime::now());
    let (text, recipient) = if a.post_quantum {
        airlock::crypt::generate_hybrid_identity(&created)
    } else {
        airlock::crypt::generate_identity(&created)
    };
    if !a.force && a.out.exists() {
        return Err(airlock::Error::new(
            airlock::Code::OutputExists,
            format!("{} already exists", names::shown(&a.out)),
        ));
    }
    airlock::fsutil::write_atomic(&a.out, text.as_bytes(), 0o600, a.force)?;
    Ok(AgeIdentity {
        identity: Name::new("identity", &a.out),
        recipient,
        kind: if a.post_quantum {
            "mlkem768x25519"
        } else {
            "x25519"
        },
    })
}

/// An age identity made (docs/json-output.md, `keygen --age`).
#[derive(serde::Serialize)]
struct AgeIdentity {
    #[serde(flatten)]
    identity: Name,
    recipient: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl Report for AgeIdentity {
    fn human(&self) {
        let recipient = &self.recipient;
        outln!(
            "identity   {} (mode 600)",
            names::shown(self.identity.name())
        );
        outln!("recipient  {recipient}");
        outln!("");
        if self.kind != "x25519" {
            outln!(
                "Give the exporter the recipient (also on the identity file's \"# public key:\" \
                 line), in a file: airlock export … --recipients-file FILE"
            );
        } else {
            outln!("Give the exporter the recipient: airlock export … --recipient {recipient}");
        }
    }
}

/// Write an OpenSSH Ed25519 signing key pair, optionally encrypted, and
/// print the allowed_signers line for the importer.
fn signing_key(a: &Args) -> Result<SigningKey> {
    let pass = if a.passphrase {
        Some(super::prompt_new_passphrase(
            &format!("the new key {}", names::shown(&a.out)),
            "--passphrase-file",
        )?)
    } else if let Some(f) = &a.passphrase_file {
        Some(keys::read_passphrase_file(f)?)
    } else {
        None
    };
    let g = keys::generate(
        &a.out,
        &a.comment.clone().unwrap_or_else(default_comment),
        pass.as_deref().map(|s| s.as_str()),
        a.force,
    )?;
    Ok(SigningKey {
        private_key: Name::new("private_key", &g.private_path),
        public_key: Name::new("public_key", &g.public_path),
        fingerprint: g.public.fingerprint(),
        public_key_line: g.public_line.clone(),
        allowed_signers_line: allowed_line("HOST", &g.public_line),
        encrypted: pass.is_some(),
    })
}

/// A signing key made (docs/json-output.md, `keygen`).
#[derive(serde::Serialize)]
struct SigningKey {
    #[serde(flatten)]
    private_key: Name,
    #[serde(flatten)]
    public_key: Name,
    fingerprint: String,
    public_key_line: String,
    allowed_signers_line: String,
    encrypted: bool,
}

impl Report for SigningKey {
    fn human(&self) {
        outln!(
            "private key  {} (mode 600{})",
            names::shown(self.private_key.name()),
            if self.encrypted {
                ", passphrase-protected"
            } else {
                ""
            }
        );
        outln!("public key   {}", names::shown(self.public_key.name()));
        outln!("fingerprint  {}", self.fingerprint);
        outln!("");
        outln!(
            "Give the importer this allowed_signers line (replace HOST with the GHES host name;"
        );
        outln!("valid-after is today, the day the key was made):");
        outln!("{}", self.allowed_signers_line);
    }
}

/// The allowed_signers line for a key made now: valid from today (UTC).
pub fn allowed_line(host: &str, public_line: &str) -> String {
    let today = airlock::format::manifest::format_time(std::time::SystemTime::now());
    let day: String = today.chars().take(10).filter(|c| *c != '-').collect();
    format!("{host} namespaces=\"airlock-bundle\",valid-after=\"{day}Z\" {public_line}")
}

/// `user@host`, as ssh-keygen's default comment: the login name (USER,
/// else LOGNAME, else the numeric uid) and the host name (/proc, else
/// HOSTNAME); a part that cannot be found is left out with its `@`.
fn default_comment() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.is_empty() && !u.contains(char::is_whitespace))
        .unwrap_or_else(|| {
            airlock::fsutil::effective_uid().map_or_else(|| "airlock".into(), |u| u.to_string())
        });
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace));
    match host {
        Some(h) => format!("{user}@{h}"),
        None => user,
    }
}
