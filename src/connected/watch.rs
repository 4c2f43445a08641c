//! The drop-folder importer behind `airlock watch DIR`: bundles that cross a
//! data diode or a cross-domain gateway land in DIR with no one present.
//!
//! The claim rule (docs/automation.md): a file is *settled* when its size,
//! modification and status-change times have not changed for `settle` (by
//! `stat`, by name); a settled file that ends with a zip trailer is
//! *claimed*: renamed into the private `DIR/.airlock-claim/` (same file
//! system), then opened there once, without following links and without
//! blocking (a FIFO, device or socket is refused at once), and its trailer
//! checked again on that descriptor. From then on only the descriptor is
//! read, and only what was claimed is moved: a stat by name before each move
//! detects a replacement (device and inode numbers are unreliable on FUSE,
//! SMB and vfat: they can say "replaced", never "same"). A file renamed over
//! the original name meanwhile is a new arrival, judged in a later pass.
//!
//! Each pass judges its settled files together, newest first per instance
//! (`import::batch_order`), as one batch: a bundle older than one accepted
//! in the same pass is superseded; older than one accepted before is a
//! rollback and is quarantined. Imported (already imported, superseded)
//! files go to `DIR/done/`, refused ones to `DIR/quarantine/` with
//! `NAME.reason.json` beside them; a failure of this host puts the file
//! back and tries again after `retry_after`. Derived names stay within 255
//! bytes (`crate::base::names`).
//!
//! Restarts and `kill -9` are safe at any moment: files left in the claim
//! directory are put back at start (and reported), the ledger makes a second
//! import of the same bundle `ALREADY-IMPORTED`, and an interrupted
//! hand-over is finished (or superseded) by the import rules.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::base::error::{Code, Error, Result};
use crate::base::names;
use crate::connected::import::{batch_order, disposition, Disposition, ImportReport, Opened};
use crate::format::manifest::format_time;
use crate::io::fsutil;
use crate::state::lifecycle::Batch;
use crate::verify::Clock;

mod watcher;
use watcher::*;

/// The suffix of the files a drop folder takes; anything else is left alone.
pub const SUFFIX: &str = ".airlock.zip";
/// Where judged files go: imported (or already imported, or superseded)…
const DONE: &str = "done";
/// …or refused, with `NAME.reason.json` beside each.
const QUARANTINE: &str = "quarantine";
/// Where a file is claimed (renamed) before it is opened.
pub const CLAIM: &str = ".airlock-claim";
const LOCK: &str = ".airlock-watch.lock";

/// How a drop folder is watched.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The drop folder; `done/`, `quarantine/` and `.airlock-claim/` are
    /// made inside it.
    pub dir: PathBuf,
    /// A file is complete once its size and times have not changed for
    /// this long and it ends with a zip trailer.
    pub settle: Duration,
    /// A settled file without a trailer this long after it was first seen
    /// is quarantined (`BUNDLE-INCOMPLETE`).
    pub incomplete_after: Duration,
    /// Rescan at least this often (the only trigger without inotify).
    pub poll: Duration,
    /// Wait this long before trying again after a failure of this host.
    pub retry_after: Duration,
    /// `--once`: judge what is in the folder and stop (module doc of
    /// [`Summary`] for the rules).
    pub once: bool,
    /// The clock a quarantine's reason file is dated by.
    pub now: Clock,
}

/// What the watcher did, for the caller to print or log. Names are the
/// files' names in the drop folder, as bytes (escape them to show them).
#[derive(Debug)]
pub enum WatchEvent<'a, R = ImportReport> {
    /// Watching: with inotify, or by polling only (and why).
    Started {
        /// `Ok` when inotify watches the folder; else why not (the watcher
        /// then polls only).
        inotify: Result<(), String>,
    },
    /// A file a stopped watcher had claimed was put back to be judged again.
    Recovered {
        /// Its name in the claim directory.
        name: &'a OsStr,
        /// Where it is now, in the drop folder.
        to: &'a Path,
    },
    /// A file was judged and moved.
    Placed {
        /// The file's name in the drop folder.
        name: &'a OsStr,
        /// The verdict that decided where it went.
        disposition: Disposition,
        /// Where it is now: in `done/` or `quarantine/`.
        to: &'a Path,
        /// The import's report, when the import succeeded.
        report: Option<&'a R>,
        /// The error, when the import ended in one (including already
        /// imported and superseded, which go to `done/`).
        error: Option<&'a Error>,
    },
    /// A failure of this host; the file is back in the drop folder and is
    /// tried again (with `--once`: once).
    Retry {
        /// The file's name in the drop folder.
        name: &'a OsStr,
        /// The failure (setup, I/O, lock, hand-over…).
        error: &'a Error,
    },
    /// `--once` ends with this file not judged: it kept changing, or a
    /// failure of this host repeated. It stays in the drop folder.
    Left {
        /// The file's name in the drop folder.
        name: &'a OsStr,
        /// Why it was not judged.
        error: &'a Error,
    },
}

/// Why a file was quarantined, written beside it as `NAME.reason.json`.
#[derive(Debug, Serialize)]
struct Reason<'a> {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_bytes: Option<String>,
    code: &'a str,
    class: &'a str,
    exit_code: i32,
    cause: &'a str,
    hint: &'a str,
    time: String,
}

/// What a run judged. With `--once` it decides the exit status: anything
/// quarantined, failed or left is a failure (docs/automation.md).
#[derive(Debug, Default)]
pub struct Summary {
    /// Files moved to `done/`, by disposition (imported, already imported,
    /// superseded).
    pub done: usize,
    /// Files moved to `quarantine/`.
    pub quarantined: usize,
    /// Files whose host failure repeated (`--once`), left in the folder.
    pub failed: usize,
    /// Files still changing when `--once` ended, left in the folder.
    pub left: usize,
    /// The first file quarantined, failed or left, and why.
    pub first_failure: Option<(OsString, Error)>,
}

impl Summary {
    fn failure(&mut self, name: &OsStr, e: &Error) {
        if self.first_failure.is_none() {
            let copy = Error::new(e.code, e.cause.clone()).with_hint(e.hint().to_string());
            self.first_failure = Some((name.to_os_string(), copy));
        }
    }
}

/// A file being watched until it is complete.
struct Track {
    stamp: Stamp,
    changed_at: Instant,
    first_seen: Instant,
    retry_at: Option<Instant>,
    retries: u32,
}

/// What `stat` says of a file by name: size, modification and change times.
type Stamp = (u64, i64, i64, i64, i64);

fn stamp(md: &fs::Metadata) -> Stamp {
    (
        md.len(),
        md.mtime(),
        md.mtime_nsec(),
        md.ctime(),
        md.ctime_nsec(),
    )
}

/// Import one opened bundle (or its refusal to open) as part of `batch`.
/// The outer error is a failure to set up (trust file, identities, state
/// directory): the file is tried again later. The inner result is the
/// import's verdict on the bundle.
pub type ImportFn<'a, R = ImportReport> =
    dyn FnMut(Result<Opened>, &mut Batch) -> Result<Result<R>> + 'a;

/// The drop folder's directories, checked once at start.
struct Dirs {
    root: PathBuf,
    claim: PathBuf,
    done: PathBuf,
    quarantine: PathBuf,
}

impl Dirs {
    /// The configured folder may be a symbolic link (resolved once, here);
    /// the subdirectories airlock makes must be real directories.
    fn open(dir: &Path) -> Result<Dirs> {
        let root = fs::canonicalize(dir).map_err(|e| {
            Error::new(Code::IoRead, format!("drop folder {}: {e}", dir.display()))
                .with_hint("create the drop folder, or check the path given to airlock watch")
        })?;
        if !root.is_dir() {
            return Err(Error::new(
                Code::NotAFile,
                format!("{} is not a directory", dir.display()),
            ));
        }
        let d = Dirs {
            claim: root.join(CLAIM),
            done: root.join(DONE),
            quarantine: root.join(QUARANTINE),
            root,
        };
        // done/ and quarantine/ as the folder's group may read them (an
        // administrator reads the reasons); the claim directory private.
        for (sub, mode) in [(&d.claim, 0o700), (&d.done, 0o750), (&d.quarantine, 0o750)] {
            fsutil::real_subdir(sub, mode).map_err(|e| {
                Error::io_write(sub, e).with_hint(
                    "remove or rename what is there (a symbolic link or a file): airlock moves files only into real directories it made",
                )
            })?;
        }
        fsutil::sweep_stale(&d.done);
        fsutil::sweep_stale(&d.quarantine);
        Ok(d)
    }
}

/// Watch `opts.dir` until `stop` is set (checked at least twice a second
/// and between bundles), or with `once` until what is in it was judged.
pub fn watch<R>(
    opts: &WatchOptions,
    stop: &AtomicBool,
    import: &mut ImportFn<'_, R>,
    on: &mut dyn FnMut(WatchEvent<'_, R>),
) -> Result<Summary> {
    let dirs = Dirs::open(&opts.dir)?;
    let _lock = lock_dir(&dirs.root)?;
    recover(&dirs, on)?;
    let mut wake = Wake::new(&dirs.root);
    on(WatchEvent::Started {
        inotify: wake.status(),
    });
    let mut w = Watcher {
        opts,
        dirs: &dirs,
        tracked: HashMap::new(),
        summary: Summary::default(),
        on,
    };
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(w.summary);
        }
        let now = Instant::now();
        scan(&dirs.root, &mut w.tracked, now)?;
        let ready = w.ready(now);
        w.pass(ready, import, stop)?;
        if opts.once && w.once_finished(Instant::now()) {
            return Ok(w.summary);
        }
        wake.wait(w.next_wake(Instant::now()), stop);
    }
}

/// Put back what a stopped watcher had claimed, to be judged again.
fn recover<R>(dirs: &Dirs, on: &mut dyn FnMut(WatchEvent<'_, R>)) -> Result<()> {
    let rd = fs::read_dir(&dirs.claim).map_err(|e| Error::io_read(&dirs.claim, e))?;
    for entry in rd.flatten() {
        let name = entry.file_name();
        let to = put_back(dirs, &name)?;
        on(WatchEvent::Recovered {
            name: &name,
            to: &to,
        });
    }
    Ok(())
}

/// Rescan: track new and changed candidate files, forget vanished ones.
/// Names are bytes: any name that ends in `.airlock.zip` is a candidate.
fn scan(dir: &Path, tracked: &mut HashMap<OsString, Track>, now: Instant) -> Result<()> {
    let rd = fs::read_dir(dir).map_err(|e| Error::io_read(dir, e))?;
    let mut seen = Vec::new();
    for entry in rd.flatten() {
        let name = entry.file_name();
        if name.as_bytes().starts_with(b".") || !names::has_suffix(&name, SUFFIX) {
            continue;
        }
        // lstat: a link, FIFO or device is claimed too, and refused then.
        let Ok(md) = fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if md.is_dir() {
            continue;
        }
        let st = stamp(&md);
        seen.push(name.clone());
        let t = tracked.entry(name).or_insert(Track {
            stamp: st,
            changed_at: now,
            first_seen: now,
            retry_at: None,
            retries: 0,
        });
        if t.stamp != st {
            t.stamp = st;
            t.changed_at = now;
        }
    }
    tracked.retain(|n, _| seen.contains(n));
    Ok(())
}

/// What a look at a settled file by name found.
enum Peek {
    /// A regular file that ends with airlock's zip trailer.
    Complete,
    /// A regular file without it (yet).
    Incomplete,
    /// Not a regular file (or a link): claimed and refused.
    NotAFile,
    /// Gone.
    Gone,
}

/// Look at a settled file by name, opened without following links or
/// blocking (a FIFO opens at once).
fn peek(path: &Path) -> Peek {
    match crate::format::container::open_unblocked(path, rustix::fs::OFlags::NOFOLLOW) {
        Ok(f) => match f.metadata() {
            Ok(m) if m.is_file() => {
                if crate::format::container::ends_with_trailer(&f) {
                    Peek::Complete
                } else {
                    Peek::Incomplete
                }
            }
            Ok(_) => Peek::NotAFile,
            Err(_) => Peek::Gone,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Peek::Gone,
        Err(_) => Peek::NotAFile,
    }
}

/// Move a claimed file back into the drop folder (under a free name: a new
/// file may have arrived under its name).
fn put_back(dirs: &Dirs, name: &OsStr) -> Result<PathBuf> {
    let to = free_name(&dirs.root, name);
    let from = dirs.claim.join(name);
    rename_noreplace(&from, &to).map_err(|e| Error::io_write(&to, e))?;
    fsutil::sync_dir(&dirs.root)?;
    Ok(to)
}

/// `NAME` in `DIR`, or `STEM.N.airlock.zip` when that is taken (a file
/// dropped twice keeps both copies); never longer than 255 bytes.
fn free_name(dir: &Path, name: &OsStr) -> PathBuf {
    let first = dir.join(name);
    if fs::symlink_metadata(&first).is_err() {
        return first;
    }
    let b = name.as_bytes();
    let stem = b.strip_suffix(SUFFIX.as_bytes()).unwrap_or(b);
    let stem = OsString::from_vec(stem.to_vec());
    (2..)
        .map(|n| dir.join(names::derived_name(&stem, &format!(".{n}{SUFFIX}"))))
        .find(|p| fs::symlink_metadata(p).is_err())
        .unwrap_or(first)
}

/// Rename without replacing what is at `to` (`EEXIST` instead).
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        // Without RENAME_NOREPLACE (old kernels, some FUSE file systems):
        // a hard link never replaces either; then drop the old name.
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            fs::hard_link(from, to)?;
            fs::remove_file(from)
        }
        Err(e) => Err(e.into()),
    }
}

/// One watcher per drop folder: an exclusive lock on `DIR/.airlock-watch.lock`.
fn lock_dir(dir: &Path) -> Result<File> {
    let p = dir.join(LOCK);
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&p)
        .map_err(|e| Error::io_write(&p, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(fs::TryLockError::WouldBlock) => Err(Error::new(
            Code::StateLock,
            format!("another airlock watch is running on {}", dir.display()),
        )
        .with_hint("run one watcher per drop folder; stop the other one first")),
        Err(fs::TryLockError::Error(e)) => Err(Error::io_write(&p, e)),
    }
}

/// What wakes the watcher: inotify on the folder where available, a timer
/// always.
struct Wake {
    inotify: std::result::Result<inotify::Inotify, String>,
}

impl Wake {
    fn new(dir: &Path) -> Wake {
        let inotify = inotify::Inotify::init()
            .and_then(|i| {
                use inotify::WatchMask;
                i.watches().add(
                    dir,
                    WatchMask::CLOSE_WRITE
                        | WatchMask::MOVED_TO
                        | WatchMask::CREATE
                        | WatchMask::ATTRIB,
                )?;
                Ok(i)
            })
            .map_err(|e| e.to_string());
        Wake { inotify }
    }

    fn status(&self) -> Result<(), String> {
        self.inotify.as_ref().map(|_| ()).map_err(|e| e.clone())
    }

    /// Sleep up to `d`, or until the folder changes or `stop` is set.
    fn wait(&mut self, d: Duration, stop: &AtomicBool) {
        let deadline = Instant::now() + d;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
            if let Ok(i) = self.inotify.as_mut() {
                // Any event means "look now"; the scan decides what it was.
                if i.read_events(&mut buf)
                    .is_ok_and(|mut ev| ev.next().is_some())
                {
                    return;
                }
            }
            std::thread::sleep(
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
        }
    }
}
