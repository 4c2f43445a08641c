//! The outgoing licence, kept before a new one is applied
//! (`STATE/licence/backup/`), and what earlier runs kept.

use std::path::{Path, PathBuf};

use super::{licence_dir, ApplianceRead, LicenceImport, LICENCE_DIR};
use crate::appliance::{Appliance, Backup, LicenceInfo};
use crate::base::error::{Code, Error, Result};
use crate::format::manifest::{HexDigest, Timestamp};
use crate::state::ledger::{Kind, Ledger, Outcome};

/// The file of the active licence, when this ledger applied it (the Manage
/// API cannot return the file itself).
pub(super) fn ledger_copy_of(ledger: &Ledger, active: &LicenceInfo) -> Result<Option<PathBuf>> {
    let events = ledger.events()?;
    let applied = events.iter().rev().find(|e| {
        e.kind == Kind::Handover
            && e.outcome == Outcome::Done
            && e.licence
                .as_ref()
                .is_some_and(|l| l.reference == active.reference)
    });
    let Some(e) = applied else {
        return Ok(None);
    };
    let Some(sha) = &e.bundle_sha256 else {
        return Ok(None);
    };
    Ok(events
        .iter()
        .find(|x| x.bundle_sha256.as_ref() == Some(sha) && x.bundle_id.is_some())
        .and_then(|x| x.bundle_id.as_ref())
        .map(|id| format!("{id}-github-enterprise-{}.ghl", active.reference))
        .map(|n| {
            ledger
                .path()
                .with_file_name(LICENCE_DIR)
                .join("received")
                .join(n)
        })
        .filter(|p| p.is_file()))
}

/// Keep the outgoing licence in `STATE/licence/backup/`: the file (SSH),
/// or its details and, when this ledger applied it, its file (Manage API).
/// Written and synced before the apply; never replaced.
pub(super) fn keep_backup(
    opts: &LicenceImport<'_>,
    own_copy: Option<PathBuf>,
    appliance: &mut dyn Appliance,
    read: &ApplianceRead,
) -> Result<Vec<PathBuf>> {
    let dir = licence_dir(opts.state.path(), "backup")?;
    let stamp = Timestamp::from_system(opts.verify.now.now())
        .to_string()
        .replace(':', "");
    let base = format!("{stamp}-github-enterprise-{}", read.active.reference);
    let mut kept = Vec::new();
    match appliance.backup()? {
        Backup::File(bytes) => kept.push(write_backup(&dir, &base, "ghl", &bytes)?),
        Backup::Details(json) => {
            kept.push(write_backup(&dir, &base, "json", json.as_bytes())?);
            if let Some(own) = own_copy {
                let bytes = std::fs::read(&own).map_err(|e| Error::io_read(&own, e))?;
                kept.insert(0, write_backup(&dir, &base, "ghl", &bytes)?);
            }
        }
    }
    Ok(kept)
}

/// Write a backup as `BASE.EXT`, never replacing one: a backup of the same
/// licence with the same bytes kept by an earlier attempt (a retry after a
/// busy appliance) is that backup; other bytes get the next free
/// `BASE-N.EXT`.
fn write_backup(dir: &Path, base: &str, ext: &str, bytes: &[u8]) -> Result<PathBuf> {
    if let Some(p) = same_backup(dir, base, ext, bytes) {
        return Ok(p);
    }
    for n in 1..100 {
        let name = match n {
            1 => format!("{base}.{ext}"),
            n => format!("{base}-{n}.{ext}"),
        };
        let p = dir.join(name);
        match std::fs::read(&p) {
            Ok(have) if have == bytes => return Ok(p),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::io::fsutil::write_atomic(&p, bytes, 0o600, false)?;
                return Ok(p);
            }
            Err(e) => return Err(Error::io_read(&p, e)),
        }
    }
    Err(Error::new(
        Code::OutputExists,
        format!("{}: 99 backups named {base} exist", dir.display()),
    )
    .with_hint("move old backups out of the state directory's licence/backup/"))
}

/// An earlier backup of the same licence (`…-github-enterprise-REF.EXT`,
/// whatever its time) holding exactly `bytes`.
fn same_backup(dir: &Path, base: &str, ext: &str, bytes: &[u8]) -> Option<PathBuf> {
    let licence = base.split_once("-github-enterprise-").map(|(_, r)| r)?;
    let tail = format!("-github-enterprise-{licence}.{ext}");
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&tail))
        })
        .collect();
    names.sort();
    names.into_iter().find(|p| {
        std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64)
            && std::fs::read(p).is_ok_and(|have| have == bytes)
    })
}

/// The backups an earlier run recorded for this bundle.
pub(super) fn backups_recorded(ledger: &Ledger, sha: &HexDigest) -> Result<Vec<String>> {
    Ok(ledger
        .events()?
        .into_iter()
        .rev()
        .find(|e| {
            e.bundle_sha256.as_ref() == Some(sha)
                && e.kind == Kind::Handover
                && matches!(e.outcome, Outcome::Done | Outcome::Failed)
                && !e.files.is_empty()
        })
        .map(|e| e.files)
        .unwrap_or_default())
}
