//! File-system helpers: atomic publication (temporary file in the target
//! directory, fsync, rename, fsync of the directory), and page-cache eviction
//! for read-back checks.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use tempfile::NamedTempFile;

use crate::error::{Code, Error, Result};

/// The directory a path lives in ("." for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

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
        crate::progress::note(&format!(
            "removed {} ({size} bytes), a temporary file left by an interrupted airlock run",
            crate::names::shown(&p)
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
                    format!("cannot write in {}: {e}", crate::names::shown(&dir)),
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
            crate::names::shown(&dir)
        ),
    ))
}

/// Roots under which removable media are mounted.
const MEDIA_ROOTS: [&str; 4] = ["/media", "/mnt", "/run/media", "/Volumes"];

/// The media roots in use: [`MEDIA_ROOTS`], or, in debug builds only, the
/// colon-separated list in `AIRLOCK_TEST_MEDIA_ROOTS` (tests cannot mount a
/// stick under /media). Each is made canonical when it exists.
fn media_roots() -> Vec<PathBuf> {
    #[cfg(debug_assertions)]
    if let Some(v) = std::env::var_os("AIRLOCK_TEST_MEDIA_ROOTS") {
        use std::os::unix::ffi::OsStrExt;
        return v
            .as_bytes()
            .split(|&b| b == b':')
            .filter(|r| !r.is_empty())
            .map(|r| {
                let p = PathBuf::from(std::ffi::OsStr::from_bytes(r));
                fs::canonicalize(&p).unwrap_or(p)
            })
            .collect();
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
                format!(
                    "{what} {} is a file, not a directory",
                    crate::names::shown(dir)
                ),
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
                    format!("cannot create {what} {}: {e}", crate::names::shown(dir)),
                )
                .with_hint("check the permissions of its parent directory")
            });
    }
    let missing = first_missing.unwrap_or_else(|| full.clone());
    let parent = missing.parent().unwrap_or(Path::new("/"));
    let on_media = media_root_of(&full).is_some();
    let cause = if missing == full {
        format!("{what} {} does not exist", crate::names::shown(dir))
    } else {
        format!(
            "{what} {} does not exist ({} is missing)",
            crate::names::shown(dir),
            crate::names::shown(&missing)
        )
    };
    let hint = if on_media {
        format!(
            "is the stick mounted? {} is where removable media appear and {} is not there; mount it (or check the path with `ls {}`), then run again",
            crate::names::shown(parent),
            crate::names::shown(&missing),
            crate::names::shown(parent)
        )
    } else {
        format!(
            "create it first (mkdir -p {}); airlock creates missing directories only inside your home directory",
            crate::names::shown(dir)
        )
    };
    Err(Error::new(Code::OutputDir, cause).with_hint(hint))
}

/// fsync a directory so a rename in it is durable.
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
                format!("{} already exists", crate::names::shown(target)),
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
    let tried = match no_link_injected() {
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
    fault_point("publish:reserved");
    tmp.persist(target).map(drop).map_err(|e| {
        let ours = fs::symlink_metadata(target)
            .is_ok_and(|m| m.dev() == reserved.dev() && m.ino() == reserved.ino() && m.len() == 0);
        if ours {
            let _ = fs::remove_file(target);
        }
        e.error
    })
}

/// Test hook, debug builds only: `AIRLOCK_FAULT=no-hard-links` makes the
/// atomic no-clobber rename fail as on a file system without hard links.
fn no_link_injected() -> bool {
    #[cfg(debug_assertions)]
    return std::env::var("AIRLOCK_FAULT").as_deref() == Ok("no-hard-links");
    #[cfg(not(debug_assertions))]
    false
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

/// The group whose members may read outbox files: the packaged units run
/// as user and group `airlock` (decision 64).
pub const OUTBOX_GROUP: &str = "airlock";

/// Who may read the files placed in an outbox (decision 74): their owner
/// only (0600), whatever the directory's mode, or also the group
/// [`OUTBOX_GROUP`] when the outbox directory belongs to that group (0640).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxAccess {
    /// The outbox directory's group id, when that group is `airlock`.
    pub group: Option<u32>,
}

impl OutboxAccess {
    /// The access for files placed in `dir`.
    pub fn of(dir: &Path) -> OutboxAccess {
        let group = fs::metadata(dir).ok().map(|m| m.gid()).filter(|g| {
            fs::read_to_string("/etc/group")
                .is_ok_and(|t| group_named(&t, *g).as_deref() == Some(OUTBOX_GROUP))
        });
        OutboxAccess { group }
    }

    /// Give `file` the group when there is one (a member of it may); the
    /// mode the file is to have: 0640 when it belongs to the group, else
    /// 0600 (never readable by a group it was not meant for).
    pub(crate) fn grant(&self, file: &File) -> u32 {
        let Some(g) = self.group else {
            return 0o600;
        };
        let ours = file.metadata().is_ok_and(|m| m.gid() == g)
            || rustix::fs::fchown(file, None, Some(rustix::fs::Gid::from_raw(g))).is_ok();
        if ours {
            0o640
        } else {
            0o600
        }
    }
}

/// The name of group `gid` in the text of `/etc/group`.
fn group_named(text: &str, gid: u32) -> Option<String> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == gid).then(|| name.to_string())
    })
}

/// The name and login shell of user `uid` in the text of `/etc/passwd`.
fn user_entry(text: &str, uid: u32) -> Option<(String, String)> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let id: u32 = f.get(2)?.parse().ok()?;
        (id == uid).then(|| (f[0].to_string(), f.get(6).unwrap_or(&"").to_string()))
    })
}

/// This process's effective user: the owner of `/proc/self` (Linux).
pub fn effective_uid() -> Option<u32> {
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Whether another process `pid` runs on this host (`/proc/PID` exists):
/// a lease or spool of this very process does not count.
pub(crate) fn other_process_running(pid: u32) -> bool {
    pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()
}

/// The user to run a command as that reads `path`'s state, for a person
/// pasting it: `path`'s owner when that is not this process's user, or is
/// an account without a login shell (the packaged `airlock`, which only a
/// unit runs as). The name from `/etc/passwd`, else `#UID` as `sudo -u`
/// takes it; `None` when this user may run it as it is.
pub fn run_as_owner(path: &Path) -> Option<String> {
    let uid = fs::metadata(path).ok()?.uid();
    let entry = fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| user_entry(&t, uid));
    let no_login = entry
        .as_ref()
        .is_some_and(|(_, shell)| shell.ends_with("/nologin") || shell.ends_with("/false"));
    if effective_uid() == Some(uid) && !no_login {
        return None;
    }
    Some(
        entry
            .map(|(name, _)| name)
            .unwrap_or_else(|| format!("#{uid}")),
    )
}

/// Ask the kernel to drop a (synced, hence clean) file's cached pages, so the
/// next read comes from the device. Best effort: some file systems ignore it.
pub(crate) fn evict_cache(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

/// Fault injection for I/O tests: in debug builds only, with
/// `AIRLOCK_FAULT=read-error`, a read fails with EIO once more than 1 MiB has
/// been read from the same stream (an input file or a bundle member), as a
/// failing disk or a pulled USB stick would. Release builds never fail here.
pub(crate) fn injected_read_error(done: u64) -> std::io::Result<()> {
    #[cfg(debug_assertions)]
    if done > 1 << 20 && std::env::var("AIRLOCK_FAULT").as_deref() == Ok("read-error") {
        return Err(std::io::Error::from_raw_os_error(5));
    }
    let _ = done;
    Ok(())
}

/// Fault injection for tests: in debug builds only, when `AIRLOCK_FAULT`
/// names this point, fail as a full disk would (ENOSPC writing `path`).
/// Release builds never fail here.
pub fn injected_disk_full(point: &str, path: &Path) -> Result<()> {
    #[cfg(debug_assertions)]
    if std::env::var("AIRLOCK_FAULT").as_deref() == Ok(point) {
        return Err(Error::io_write(path, std::io::Error::from_raw_os_error(28)));
    }
    let _ = (point, path);
    Ok(())
}

/// Fault injection for crash tests: in debug builds only, abort the process
/// (no destructors run, as with `kill -9`) when `AIRLOCK_FAULT` names this
/// point. Release builds compile this to nothing.
pub(crate) fn fault_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("AIRLOCK_FAULT").as_deref() == Ok(point) {
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// Test hook for races, in debug builds only: when `AIRLOCK_PAUSE` names
/// this point, create `$AIRLOCK_PAUSE_DIR/POINT.reached`, then wait (at most
/// 60 s) until `$AIRLOCK_PAUSE_DIR/POINT.go` exists. Tests use it to rewrite
/// a bundle between two steps, or to let time pass, at an exact moment.
/// Release builds compile this to nothing.
pub fn pause_point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("AIRLOCK_PAUSE").is_ok_and(|v| v.split(',').any(|p| p == point)) {
        if let Some(dir) = std::env::var_os("AIRLOCK_PAUSE_DIR") {
            let dir = PathBuf::from(dir);
            let _ = fs::write(dir.join(format!("{point}.reached")), b"");
            let go = dir.join(format!("{point}.go"));
            for _ in 0..6000 {
                if go.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// SHA-256 of a whole file, streamed in 1 MiB reads (lowercase hex).
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    sha256_reader(&mut File::open(path)?)
}

/// SHA-256 of everything a reader yields (lowercase hex).
pub(crate) fn sha256_reader<R: std::io::Read>(f: &mut R) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut buf = buffer(1 << 20)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::OutOfMemory, e.cause))?;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// A zeroed I/O buffer of `n` bytes, allocated fallibly: under a memory
/// limit the large buffers are where allocation fails, and that must be an
/// error with a code, not an abort.
pub fn buffer(n: usize) -> crate::Result<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|e| {
        crate::Error::new(
            crate::Code::Resources,
            format!("cannot allocate a {} KiB buffer: {e}", n / 1024),
        )
    })?;
    // Zeroed by copying a zero block: `resize` writes byte by byte in
    // debug builds, a third of a debug import's time (tests).
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    while v.len() < n {
        let k = (n - v.len()).min(ZEROS.len());
        v.extend_from_slice(&ZEROS[..k]);
    }
    Ok(v)
}

/// Stack size of airlock's helper threads (hashing, parsing, writeback):
/// they need little, and a small stack leaves more of a limited address
/// space to the rest.
const HELPER_STACK: usize = 256 * 1024;

/// A thread builder for a helper thread, or `RESOURCES` when the address
/// space is too short to start one safely. The standard library panics
/// inside a new thread whose signal stack cannot be allocated, and under a
/// memory limit that panic cannot print and hangs the process; so first
/// reserve (and free) more than a thread needs, fallibly, and refuse early.
pub(crate) fn helper_thread(name: &str) -> crate::Result<std::thread::Builder> {
    let mut probe: Vec<u8> = Vec::new();
    probe
        .try_reserve_exact(4 * HELPER_STACK + (1 << 20))
        .map_err(|e| {
            crate::Error::new(
                crate::Code::Resources,
                format!("not enough memory to start the {name} thread: {e}"),
            )
        })?;
    // Touching nothing: the reservation alone proves the address space.
    drop(probe);
    Ok(std::thread::Builder::new()
        .name(name.into())
        .stack_size(HELPER_STACK))
}

/// SHA-256 of bytes that are not in shared blocks (decrypted plaintext),
/// on a second core. Bytes in shared blocks go to
/// `blocks::SideSha` instead, without a copy.
pub(crate) enum Hasher {
    /// Computed by a helper thread (see [`Hasher::side`]).
    Side {
        /// Copies of the chunks go to the thread; `None` once a send failed.
        tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
        /// The thread, which returns the hasher when `tx` is dropped.
        handle: std::thread::JoinHandle<sha2::Sha256>,
    },
}

impl Hasher {
    /// A hashing thread fed through a short queue (at most 4 chunks in
    /// flight, so memory stays bounded whatever the payload size).
    pub(crate) fn side() -> crate::Result<Hasher> {
        use sha2::Digest;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let handle = helper_thread("sha256")?
            .spawn(move || {
                let mut h = sha2::Sha256::new();
                for chunk in rx {
                    h.update(&chunk);
                }
                h
            })
            .map_err(|e| {
                crate::Error::new(
                    crate::Code::Resources,
                    format!("cannot start the hashing thread: {e}"),
                )
            })?;
        Ok(Hasher::Side {
            tx: Some(tx),
            handle,
        })
    }

    /// Hash `data` next (for `Side`, a copy goes to the thread).
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Side { tx, .. } => {
                if let Some(t) = tx {
                    // The thread only ends when the sender is dropped, so a
                    // send cannot fail; if it ever did, finish() reports it.
                    if t.send(data.to_vec()).is_err() {
                        *tx = None;
                    }
                }
            }
        }
    }

    /// The SHA-256 of everything given to `update`; an
    /// `Internal` error if the thread died or missed a chunk.
    pub(crate) fn finish(self) -> crate::Result<[u8; 32]> {
        use sha2::Digest;
        match self {
            Hasher::Side { tx, handle } => {
                let complete = tx.is_some();
                drop(tx);
                let h = handle.join().map_err(|_| {
                    crate::Error::new(crate::Code::Internal, "the hashing thread panicked")
                })?;
                if !complete {
                    return Err(crate::Error::new(
                        crate::Code::Internal,
                        "the hashing thread stopped early",
                    ));
                }
                Ok(h.finalize().into())
            }
        }
    }
}

/// A file writer that starts the device writing early: every 32 MiB it asks a
/// helper thread to `fdatasync` what has been written so far, so the final
/// fsync has little left to wait for and the device works while airlock
/// hashes and writes. An error from an early sync is kept and returned by
/// `finish` (after a failed fsync, a later one may wrongly succeed).
pub(crate) struct EarlyWriteback {
    file: File,
    since: u64,
    tx: Option<std::sync::mpsc::SyncSender<()>>,
    handle: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

const WRITEBACK_EVERY: u64 = 32 << 20;

impl EarlyWriteback {
    /// Wrap `file` (written from its current position) and start the
    /// helper thread.
    pub(crate) fn new(file: File) -> Result<EarlyWriteback> {
        let clone = file.try_clone().map_err(|e| {
            Error::new(
                Code::IoWrite,
                format!("cannot duplicate a file handle: {e}"),
            )
        })?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let handle = helper_thread("writeback")?
            .spawn(move || {
                for () in rx {
                    clone.sync_data()?;
                }
                Ok(())
            })
            .map_err(|e| {
                Error::new(
                    Code::Resources,
                    format!("cannot start the writeback thread: {e}"),
                )
            })?;
        Ok(EarlyWriteback {
            file,
            since: 0,
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    /// Stop the helper; the first error of an early sync, if any.
    pub(crate) fn finish(mut self) -> std::io::Result<File> {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            h.join()
                .map_err(|_| std::io::Error::other("the writeback thread panicked"))??;
        }
        self.file.try_clone()
    }
}

impl Write for EarlyWriteback {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.since += n as u64;
        if self.since >= WRITEBACK_EVERY {
            self.since = 0;
            if let Some(tx) = &self.tx {
                // Full: a sync is already running and will cover these pages
                // or the next request will. Disconnected: finish() reports.
                let _ = tx.try_send(());
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl std::io::Seek for EarlyWriteback {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.file.seek(pos)
    }
}

impl Drop for EarlyWriteback {
    fn drop(&mut self) {
        // On an error path: stop the helper without waiting for it.
        self.tx = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom};

    #[test]
    fn group_and_user_names_are_read_by_id() {
        let text = "root:x:0:\nairlock:x:998:alice,bob\nbad line\nstaff:x:50:\n";
        assert_eq!(group_named(text, 998).as_deref(), Some("airlock"));
        assert_eq!(group_named(text, 50).as_deref(), Some("staff"));
        assert_eq!(group_named(text, 7), None);
        let pw = "root:x:0:0:root:/root:/bin/sh\nairlock:x:997:998::/var/lib/airlock:/usr/sbin/nologin\n";
        assert_eq!(
            user_entry(pw, 997),
            Some(("airlock".into(), "/usr/sbin/nologin".into()))
        );
        assert_eq!(user_entry(pw, 0).unwrap().0, "root");
        assert_eq!(user_entry(pw, 5), None);
    }

    #[test]
    fn outbox_files_are_private_without_the_airlock_group() {
        let dir = tempfile::tempdir().unwrap();
        let f = tempfile::tempfile().unwrap();
        assert_eq!(OutboxAccess::default().grant(&f), 0o600);
        // A group this process may not give the file: still private.
        let other = OutboxAccess {
            group: Some(u32::MAX - 7),
        };
        let mode = other.grant(&f);
        let gid = f.metadata().unwrap().gid();
        assert!(mode == 0o600 || gid == u32::MAX - 7);
        // A temporary directory is not the airlock group's.
        assert_eq!(OutboxAccess::of(dir.path()).group, None);
        let t = dir.path().join("UPLOAD.txt");
        write_atomic_as(&t, b"x", OutboxAccess::default(), false).unwrap();
        assert_eq!(fs::metadata(&t).unwrap().mode() & 0o777, 0o600);
    }

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

    #[test]
    fn side_hasher_equals_sha256() {
        use sha2::Digest;
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 255) as u8).collect();
        let mut b = Hasher::side().unwrap();
        for c in data.chunks(65_537) {
            b.update(c);
        }
        assert_eq!(
            b.finish().unwrap(),
            <[u8; 32]>::from(sha2::Sha256::digest(&data))
        );
    }

    #[test]
    fn early_writeback_writes_seeks_and_syncs_everything() {
        let f = tempfile::tempfile().unwrap();
        let mut w = EarlyWriteback::new(f.try_clone().unwrap()).unwrap();
        let block = vec![0xabu8; 1 << 20];
        for _ in 0..70 {
            w.write_all(&block).unwrap(); // crosses the 32 MiB mark twice
        }
        w.seek(SeekFrom::Start(0)).unwrap();
        w.write_all(b"head").unwrap();
        let mut f2 = w.finish().unwrap();
        assert_eq!(f2.metadata().unwrap().len(), 70 << 20);
        f2.seek(SeekFrom::Start(0)).unwrap();
        let mut head = [0u8; 5];
        f2.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"head\xab");
    }
}
