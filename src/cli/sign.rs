//! `airlock sign`: add a signature to an existing bundle.

use std::path::PathBuf;

use airlock::error::{Code, Error, Result};
use airlock::export::sign;
use airlock::names;
use airlock::sshsig::BUNDLE_NAMESPACE;

use super::output::{emit, Name, Report};
use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The bundle to co-sign (replaced atomically)
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Sign with this OpenSSH Ed25519 private key
    #[arg(
        long,
        value_name = "KEY",
        required_unless_present = "signature",
        conflicts_with = "signature"
    )]
    pub key: Option<PathBuf>,
    /// Sign through ssh-agent (SSH_AUTH_SOCK); --key names the public key
    #[arg(long)]
    pub agent: bool,
    /// Passphrase of an encrypted signing key, on the first line of FILE
    #[arg(long, value_name = "FILE")]
    pub key_passphrase_file: Option<PathBuf>,
    /// Attach a signature made elsewhere: `unzip -p BUNDLE manifest.json |
    /// ssh-keygen -Y sign -f KEY -n airlock-bundle > FILE`
    #[arg(long, value_name = "FILE")]
    pub signature: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<i32> {
    let armored = match (&a.key, &a.signature) {
        (Some(k), _) => {
            let signer = super::load_signer(k, a.agent, a.key_passphrase_file.clone())?;
            let manifest = sign::manifest_bytes(&a.bundle)?;
            signer
                .sign(BUNDLE_NAMESPACE, &manifest)?
                .to_armored()
                .into_bytes()
        }
        (None, Some(f)) => std::fs::read(f).map_err(|e| Error::io_read(f, e))?,
        (None, None) => return Err(Error::new(Code::Args, "give --key or --signature")),
    };
    let sig = sign::add_signature(&a.bundle, &armored)?;
    Ok(emit(&Signed {
        bundle: Name::new("bundle", &a.bundle),
        added_signature: sig.public_key.fingerprint(),
    }))
}

/// `sign`'s result (docs/json-output.md, `sign`).
#[derive(serde::Serialize)]
struct Signed {
    #[serde(flatten)]
    bundle: Name,
    added_signature: String,
}

impl Report for Signed {
    fn human(&self) {
        outln!(
            "added signature by {} to {}",
            self.added_signature,
            names::shown(self.bundle.name())
        );
    }
}
