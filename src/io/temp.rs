//! Temporary files: made beside their target, locked while they live,
//! registered so the signal handler can remove them, and stale ones a
//! killed run left swept once per directory and run.

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use tempfile::NamedTempFile;

use super::dirs::parent_dir;
use crate::base::error::{Code, Error, Result};

/// A temporary file or directory this process made: where, and which inode,
/// so that only that very file is ever removed for it.
struct Live {
    path: PathBuf,
    dev: u64,
    ino: u64,
    dir: bool,
}

impl Live {
    /// The path still names the file this process made (not published, not
    /// removed, not replaced).
    fn still_there(&self) -> bool {
        fs::symlink_metadata(&self.path).is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino)
    }
}

/// The temporary files and directories this process has made, for the
/// signal handler. Held while a temporary file is created, so an interrupt
/// cannot miss one; the handler keeps it locked until the process exits.
static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());

/// Directories already swept for stale temporary files in this run.
static SWEPT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn lock_live() -> MutexGuard<'static, Vec<Live>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

fn register(live: &mut Vec<Live>, path: &Path, meta: &fs::Metadata) {
    live.retain(Live::still_there);
    live.push(Live {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
        dir: meta.is_dir(),
    });
}

/// Register a temporary directory (say the demo's) for removal if the
/// process is interrupted.
pub fn track_temp_dir(path: &Path) {
    let mut live = lock_live();
    if let Ok(meta) = fs::symlink_metadata(path) {
        register(&mut live, path, &meta);
    }
}

/// For the signal handler: remove every temporary file and directory this
/// process made and has not published, and stop new ones from being made
/// (the registry stays locked, so a `temp_beside` running meanwhile waits
/// until the process exits). Returns how many were removed.
pub fn remove_temporaries_for_exit() -> usize {
    let live = lock_live();
    let mut n = 0;
    for l in live.iter().filter(|l| l.still_there()) {
        let removed = if l.dir {
            fs::remove_dir_all(&l.path)
        } else {
            fs::remove_file(&l.path)
        };
        if removed.is_ok() {
            n += 1;
        }
    }
    // Never unlocked: the process is about to exit.
    std::mem::forget(live);
    n
}

/// `.airlock-XXXXXX.tmp`: the names `temp_beside` gives (tempfile's six
/// random letters and digits).
fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(".airlock-")
        .and_then(|r| r.strip_suffix(".tmp"))
        .is_some_and(|mid| mid.len() == 6 && mid.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Remove airlock's temporary files in `dir` that no running airlock holds:
/// those a killed run (SIGKILL, power loss) left. A live temporary file is
/// always locked (`flock`) by the process writing it, so a file whose lock
/// can be taken belongs to no running airlock. Only regular files with
/// airlock's own temporary names are considered. Returns what was removed,
/// with sizes.
pub(crate) fn sweep_stale(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        if !name.to_str().is_some_and(is_temp_name) {
            continue;
        }
        let path = e.path();
        let Ok(lmeta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !lmeta.file_type().is_file() {
            continue;
        }
        let Ok(f) = File::open(&path) else {
            continue;
        };
        let Ok(meta) = f.metadata() else {
            continue;
        };
        if meta.dev() != lmeta.dev() || meta.ino() != lmeta.ino() {
            continue;
        }
        // Held by a running airlock (or locks unsupported here): leave it.
        if f.try_lock().is_err() {
            continue;
        }
        let same = fs::symlink_metadata(&path)
            .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
        if same && fs::remove_file(&path).is_ok() {
            out.push((path, meta.len()));
        }
    }
    out
}

/// Sweep `dir` once per run, telling the user what was removed.
fn sweep_once(dir: &Path) {
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|p| p.into_inner());
        if swept.iter().any(|d| d == dir) {
            return;
        }
        swept.push(dir.to_path_buf());
    }
    for (p, size) in sweep_stale(dir) {
        crate::base::progress::note(&format!(
            "removed {} ({size} bytes), a temporary file left by an interrupted airlock run",
            crate::base::names::shown(&p)
        ));
    }
}

/// A temporary file beside `target`, removed on drop unless published.
///
/// It is registered for the signal handler and locked (`flock`) while it
/// lives, so another airlock sweeping the directory never takes it for a
/// stale one; stale ones in the directory are swept first.
pub(crate) fn temp_beside(target: &Path, mode: u32) -> Result<NamedTempFile> {
    let dir = parent_dir(target);
    sweep_once(&dir);
    for _ in 0..100 {
        let mut live = lock_live();
        let tmp = tempfile::Builder::new()
            .prefix(".airlock-")
            .suffix(".tmp")
            .permissions(fs::Permissions::from_mode(mode))
            .tempfile_in(&dir)
            .map_err(|e| {
                // tempfile adds the random name to its errors ("at path
                // …/.airlock-XXXXXX.tmp"): the directory is what matters.
                let text = e.to_string();
                let e = text.split(" at path ").next().unwrap_or(&text);
                Error::new(
                    Code::IoWrite,
                    format!("cannot write in {}: {e}", crate::base::names::shown(&dir)),
                )
            })?;
        // Where locks are not supported (rare), the file is left unlocked:
        // a sweeper there cannot lock it either, so it never removes it.
        let locked = tmp.as_file().lock().is_ok();
        let meta = tmp
            .as_file()
            .metadata()
            .map_err(|e| Error::io_write(tmp.path(), e))?;
        // A sweeper may have taken the lock between creation and ours, and
        // removed the file: then make another.
        let ours = fs::symlink_metadata(tmp.path())
            .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
        if locked && !ours {
            // Not ours to delete any more: forget the name.
            let _ = tmp.into_temp_path().keep();
            continue;
        }
        register(&mut live, tmp.path(), &meta);
        return Ok(tmp);
    }
    Err(Error::new(
        Code::IoWrite,
        format!(
            "cannot keep a temporary file in {}: something removes them as they are made",
            crate::base::names::shown(&dir)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        assert!(is_temp_name(".airlock-AbC123.tmp"));
        for n in [
            ".airlock-AbC12.tmp",
            ".airlock-AbC1234.tmp",
            ".airlock-Ab/123.tmp",
            "airlock-AbC123.tmp",
            ".airlock-AbC123.zip",
            ".airlock-notours.tmp",
        ] {
            assert!(!is_temp_name(n), "{n}");
        }
    }

    /// A live temporary file (locked by its writer, here this process) is
    /// kept; an unlocked one with airlock's name is removed; other names,
    /// directories and symlinks are left alone.
    #[test]
    fn sweep_removes_only_unlocked_airlock_temporaries() {
        let d = tempfile::tempdir().unwrap();
        let live = temp_beside(&d.path().join("target"), 0o600).unwrap();
        let stale = d.path().join(".airlock-Stale1.tmp");
        fs::write(&stale, b"partial").unwrap();
        let other = d.path().join(".airlock-other.tmp");
        fs::write(&other, b"x").unwrap();
        fs::create_dir(d.path().join(".airlock-Dir123.tmp")).unwrap();
        std::os::unix::fs::symlink(&other, d.path().join(".airlock-Link12.tmp")).unwrap();
        let removed = sweep_stale(d.path());
        assert_eq!(removed, vec![(stale.clone(), 7)]);
        assert!(live.path().exists() && other.exists() && !stale.exists());
        assert!(d.path().join(".airlock-Dir123.tmp").is_dir());
        assert!(d
            .path()
            .join(".airlock-Link12.tmp")
            .symlink_metadata()
            .is_ok());
        drop(live);
    }
}
