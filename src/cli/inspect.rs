//! `airlock inspect`: show a bundle without trusting it.

use std::path::PathBuf;

use airlock::error::Result;
use airlock::names;
use airlock::verify::inspect;

use super::output::{emit, Report};
use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The bundle to show
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
}

pub fn run(a: Args) -> Result<i32> {
    let inspection = inspect(&a.bundle)?;
    Ok(emit(&Shown {
        verified: false,
        inspection,
        bundle: a.bundle,
    }))
}

/// What `inspect` shows (docs/json-output.md, `inspect`): nothing verified.
#[derive(serde::Serialize)]
struct Shown {
    verified: bool,
    inspection: airlock::verify::Inspection,
    #[serde(skip)]
    bundle: PathBuf,
}

impl Report for Shown {
    fn human(&self) {
        print_text(&self.bundle, &self.inspection);
    }
}

fn print_text(bundle: &std::path::Path, i: &airlock::verify::Inspection) {
    outln!(
        "UNVERIFIED: nothing below has been checked against a trust store; use `airlock verify`."
    );
    outln!("bundle {}", names::shown(bundle));
    outln!("members:");
    for m in &i.members {
        outln!("  {:>12}  {}", m.size, m.name);
    }
    outln!("signatures:");
    for s in &i.signatures {
        match (&s.fingerprint, &s.error) {
            (Some(fp), _) => outln!(
                "  {}  key {}  namespace {}",
                s.member,
                fp,
                s.namespace.as_deref().unwrap_or("?")
            ),
            (None, Some(e)) => outln!("  {}  unreadable: {}", s.member, e),
            _ => {}
        }
    }
    if let Some(l) = &i.licence {
        outln!(
            "kind: GHES licence bundle for enterprise {}, reference {} (format version 3)",
            l.enterprise,
            l.reference
        );
    }
    if let Some(e) = &i.manifest_error {
        outln!("manifest: {e}");
    }
    if let Some(t) = &i.manifest_text {
        outln!("manifest.json:");
        for l in t.lines() {
            outln!("  {l}");
        }
    }
}
