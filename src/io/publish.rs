//! Atomic publication: a temporary file beside the target, fsync, a
//! rename that never replaces unless asked, fsync of the directory.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use tempfile::NamedTempFile;

use super::access::OutboxAccess;
use super::dirs::parent_dir;
use super::hooks::{self, Fault};
use super::temp::temp_beside;
use crate::base::error::{Code, Error, Result};

/// fsync a directory so a rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io_write(dir, e))
}

/// fsync the temporary file and rename it to `target`. Without `overwrite`,
/// an existing target is an error and is left alone.
pub fn publish(tmp: NamedTempFile, target: &Path, overwrite: bool) -> Result<()> {
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io_write(target, e))?;
    publish_synced(tmp, target, overwrite)
}

/// `publish` for a temporary file the caller has already fsynced.
pub(crate) fn publish_synced(tmp: NamedTempFile, target: &Path, overwrite: bool) -> Result<()> {
    let persisted = match overwrite {
        true => tmp.persist(target).map(drop).map_err(|e| e.error),
        false => persist_noclobber(tmp, target),
    };
    persisted.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::new(
                Code::OutputExists,
                format!("{} already exists", crate::base::names::shown(target)),
            )
        } else {
            Error::io_write(target, e)
        }
    })?;
    sync_dir(&parent_dir(target))
}

/// Rename `tmp` to `target` unless `target` exists (`AlreadyExists`).
/// tempfile does it atomically with `renameat2(RENAME_NOREPLACE)`, else a
/// hard link. A file system with neither (FAT and exFAT through FUSE, as
/// older distributions mount removable media; some network file systems)
/// refuses both with `EINVAL`, `EPERM` or `EOPNOTSUPP`: there the name is
/// reserved by creating it exclusively, and the temporary file renamed over
/// that reservation (decision 69).
pub(crate) fn persist_noclobber(tmp: NamedTempFile, target: &Path) -> std::io::Result<()> {
    let tried = match hooks::no_hard_links() {
        true => Err(tempfile::PersistError {
            error: std::io::Error::from_raw_os_error(rustix::io::Errno::PERM.raw_os_error()),
            file: tmp,
        }),
        false => tmp.persist_noclobber(target).map(drop),
    };
    match tried {
        Ok(()) => Ok(()),
        Err(e) if cannot_rename_noreplace(&e.error) => persist_reserving(e.file, target),
        Err(e) => Err(e.error),
    }
}

/// Whether `e` says the file system has no atomic no-clobber rename (rather
/// than that the target exists, or permission is denied).
fn cannot_rename_noreplace(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    let e = Errno::from_io_error(e);
    [Errno::INVAL, Errno::PERM, Errno::OPNOTSUPP, Errno::NOSYS]
        .iter()
        .any(|c| e == Some(*c))
}

/// Reserve `target` by creating it exclusively (empty, 0600), then rename
/// `tmp` over it. If the rename fails, the reservation is removed, but only
/// while it is still the file this call created. A crash between the two
/// steps leaves an empty file under the name, which no reader takes for a
/// bundle or a usage file.
fn persist_reserving(tmp: NamedTempFile, target: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let reserved = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)?
        .metadata()?;
    hooks::fault_point(Fault::PublishReserved);
    tmp.persist(target).map(drop).map_err(|e| {
        let ours = fs::symlink_metadata(target)
            .is_ok_and(|m| m.dev() == reserved.dev() && m.ino() == reserved.ino() && m.len() == 0);
        if ours {
            let _ = fs::remove_file(target);
        }
        e.error
    })
}

/// Write `data` to `target` atomically with the given mode.
pub fn write_atomic(target: &Path, data: &[u8], mode: u32, overwrite: bool) -> Result<()> {
    let mut tmp = temp_beside(target, mode)?;
    tmp.write_all(data)
        .map_err(|e| Error::io_write(target, e))?;
    publish(tmp, target, overwrite)
}

/// Write `data` to `target` atomically, readable as `access` allows (an
/// outbox file: decision 74).
pub(crate) fn write_atomic_as(
    target: &Path,
    data: &[u8],
    access: OutboxAccess,
    overwrite: bool,
) -> Result<()> {
    let mut tmp = temp_beside(target, 0o600)?;
    let mode = access.grant(tmp.as_file());
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|_| tmp.write_all(data))
        .map_err(|e| Error::io_write(target, e))?;
    publish(tmp, target, overwrite)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_with(dir: &Path, bytes: &[u8]) -> NamedTempFile {
        let mut t = NamedTempFile::new_in(dir).unwrap();
        t.write_all(bytes).unwrap();
        t
    }

    // Regression: on FUSE exFAT (and FAT) neither renameat2(RENAME_NOREPLACE)
    // nor link() works, and publishing a bundle failed with EPERM.
    #[test]
    fn publishing_by_reservation_never_replaces_a_file() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("b.airlock.zip");
        persist_reserving(temp_with(d.path(), b"first"), &target).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"first");
        let e = persist_reserving(temp_with(d.path(), b"second"), &target).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).unwrap(), b"first");
        // Only the target is left: both temporary files are gone.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn only_a_missing_no_clobber_rename_falls_back() {
        use rustix::io::Errno;
        let e = |c: Errno| std::io::Error::from_raw_os_error(c.raw_os_error());
        for c in [Errno::INVAL, Errno::PERM, Errno::OPNOTSUPP, Errno::NOSYS] {
            assert!(cannot_rename_noreplace(&e(c)), "{c:?}");
        }
        for c in [
            Errno::EXIST,
            Errno::ACCESS,
            Errno::NOSPC,
            Errno::IO,
            Errno::ROFS,
        ] {
            assert!(!cannot_rename_noreplace(&e(c)), "{c:?}");
        }
    }
}
