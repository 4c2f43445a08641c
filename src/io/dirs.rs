//! Output directories: the one rule for creating them (inside the home
//! directory only), and the check that a directory under a media root is
//! on a mounted stick.

use std::fs;
use std::path::{Path, PathBuf};

use crate::base::error::{Code, Error, Result};
use crate::base::names::shown;

/// The directory a path lives in ("." for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Roots under which removable media are mounted.
const MEDIA_ROOTS: [&str; 4] = ["/media", "/mnt", "/run/media", "/Volumes"];

/// The media roots in use: [`MEDIA_ROOTS`], or the test hook's
/// (`hooks::media_roots`). Each is made canonical when it exists.
fn media_roots() -> Vec<PathBuf> {
    if let Some(roots) = super::hooks::media_roots() {
        return roots;
    }
    MEDIA_ROOTS
        .iter()
        .map(|r| fs::canonicalize(r).unwrap_or_else(|_| PathBuf::from(r)))
        .collect()
}

/// The media root that `full` (absolute, canonical) lies under or is.
fn media_root_of(full: &Path) -> Option<PathBuf> {
    media_roots().into_iter().find(|r| full.starts_with(r))
}

/// Whether `dir` is a mount point: on another device than its parent, or
/// listed as one in /proc/self/mountinfo (a bind mount keeps the device).
fn is_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(parent) = dir.parent() else {
        return true; // "/"
    };
    match (fs::metadata(dir), fs::metadata(parent)) {
        (Ok(d), Ok(p)) if d.dev() != p.dev() => return true,
        (Ok(_), Ok(_)) => {}
        _ => return false,
    }
    let Ok(info) = fs::read("/proc/self/mountinfo") else {
        return false;
    };
    use std::os::unix::ffi::OsStrExt;
    let want = dir.as_os_str().as_bytes();
    info.split(|&b| b == b'\n').any(|line| {
        line.split(|&b| b == b' ')
            .nth(4)
            .is_some_and(|m| unescape_mountinfo(m) == want)
    })
}

/// A mount point as /proc/self/mountinfo writes it: space, tab, newline
/// and backslash as `\ooo` octal escapes.
fn unescape_mountinfo(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let oct = field
            .get(i + 1..i + 4)
            .filter(|o| field[i] == b'\\' && o.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(o) => {
                let v = o.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

/// Refuse an existing directory under /media, /mnt or /run/media (or one
/// of those roots itself) unless a stick is mounted there: some directory
/// from the media root down to `dir` must be a mount point. Otherwise the
/// file lands on the host's own disk, where the stick should have been,
/// and later blocks mounting it (docs/decisions.md, decision 79).
pub fn ensure_mounted_media(dir: &Path, what: &str) -> Result<()> {
    let Ok(full) = fs::canonicalize(dir) else {
        return Ok(()); // ensure_dir has refused a missing directory already
    };
    let Some(root) = media_root_of(&full) else {
        return Ok(());
    };
    let mut d = full.as_path();
    loop {
        if is_mount_point(d) {
            return Ok(());
        }
        if d == root {
            break;
        }
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
    Err(Error::new(
        Code::OutputDir,
        format!(
            "{what} {} is under {} but no file system is mounted there",
            dir.display(),
            root.display()
        ),
    )
    .with_hint(format!(
        "is the stick mounted? mount it (`lsblk -f` lists sticks and where they are mounted), then run again; to write to this host's own disk, give a directory outside {}",
        media_roots()
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The home directory, canonical, if HOME names one.
fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .and_then(|h| fs::canonicalize(h).ok())
        .filter(|h| h.as_os_str() != "/")
}

/// `path` made absolute and canonical as far as it exists, and the first
/// component that does not exist (if any).
fn resolve_existing(path: &Path) -> (PathBuf, Option<PathBuf>) {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let mut existing = abs.clone();
    let mut rest = Vec::new();
    while fs::symlink_metadata(&existing).is_err() {
        match (existing.file_name(), existing.parent()) {
            (Some(n), Some(p)) => {
                rest.push(n.to_os_string());
                existing = p.to_path_buf();
            }
            _ => break,
        }
    }
    let mut full = fs::canonicalize(&existing).unwrap_or(existing);
    let first_missing = rest.last().map(|n| full.join(n));
    for n in rest.iter().rev() {
        full.push(n);
    }
    (full, first_missing)
}

/// The one rule for output directories (docs/operator-guide.md): a
/// directory that exists is used; a missing one is created (mode 0700) when
/// it lies inside the user's home directory (~/.config/airlock,
/// ~/.local/state/airlock, ~/.ssh, an outbox in the home directory);
/// anything else must exist, and the error says what is missing — under
/// /media, /mnt or /run/media that is usually a stick that is not mounted.
/// `what` names the directory in messages ("output directory", "outbox").
pub fn ensure_dir(dir: &Path, what: &str) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(Error::new(
                Code::OutputDir,
                format!("{what} {} is a file, not a directory", shown(dir)),
            )
            .with_hint("give the path of a directory, or remove the file that is in the way"))
        }
        Err(_) => {}
    }
    let (full, first_missing) = resolve_existing(dir);
    let in_home = home_dir().is_some_and(|h| full.starts_with(&h) && full != h);
    if in_home {
        use std::os::unix::fs::DirBuilderExt;
        return fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&full)
            .map_err(|e| {
                Error::new(
                    Code::OutputDir,
                    format!("cannot create {what} {}: {e}", shown(dir)),
                )
                .with_hint("check the permissions of its parent directory")
            });
    }
    let missing = first_missing.unwrap_or_else(|| full.clone());
    let parent = missing.parent().unwrap_or(Path::new("/"));
    let on_media = media_root_of(&full).is_some();
    let cause = if missing == full {
        format!("{what} {} does not exist", shown(dir))
    } else {
        format!(
            "{what} {} does not exist ({} is missing)",
            shown(dir),
            shown(&missing)
        )
    };
    let hint = if on_media {
        format!(
            "is the stick mounted? {} is where removable media appear and {} is not there; mount it (or check the path with `ls {}`), then run again",
            shown(parent),
            shown(&missing),
            shown(parent)
        )
    } else {
        format!(
            "create it first (mkdir -p {}); airlock creates missing directories only inside your home directory",
            shown(dir)
        )
    };
    Err(Error::new(Code::OutputDir, cause).with_hint(hint))
}

/// Make sure `dir` is a real directory that airlock may put files in:
/// created with `mode` (less the umask) when missing, and refused when it
/// is a symbolic link or anything but a directory (`ENOTDIR`): a link there
/// would send files elsewhere than the user named.
pub(crate) fn real_subdir(dir: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let m = std::fs::symlink_metadata(dir)?;
    if m.file_type().is_dir() {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!(
                "{} is not a real directory (a symbolic link or a file); nothing is moved there",
                dir.display()
            ),
        ))
    }
}
