//! The drop-folder importer behind `airlock watch DIR`: bundles that cross a
//! data diode or a cross-domain gateway land in DIR with no one present.
//!
//! A file is judged once, when it is complete: its size and modification
//! time unchanged for `settle`, and a zip trailer at its end. It is then
//! imported with exactly the rules of `airlock import` (the caller's import
//! function), and moved to `DIR/done/` (imported, already imported, or
//! superseded by a newer bundle) or `DIR/quarantine/` with
//! `NAME.reason.json` beside it (refused, or still incomplete after
//! `incomplete_after`). A failure of this host (disk, lock, outbox,
//! endpoint) leaves the file where it is, to be tried again.
//!
//! Restarts and `kill -9` are safe at any moment: the ledger makes a second
//! import of the same bundle `ALREADY-IMPORTED` (moved to `done/`), an
//! interrupted hand-over is finished (or superseded) by the import rules,
//! and files only ever move by rename within DIR. New files are noticed
//! through inotify where the file system supports it, and by rescanning
//! every `poll` everywhere (network and removable file systems).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::bundle::manifest::format_time;
use crate::bundle::verify::Clock;
use crate::error::{Code, Error, Result};
use crate::fsutil;
use crate::import::{disposition, Disposition, ImportReport};
use crate::names;

/// The suffix of the files a drop folder takes; anything else is left alone.
pub const SUFFIX: &str = ".airlock.zip";
/// Where judged files go: imported (or already imported, or superseded)…
const DONE: &str = "done";
/// …or refused, with `NAME.reason.json` beside each.
const QUARANTINE: &str = "quarantine";
const LOCK: &str = ".airlock-watch.lock";

/// How a drop folder is watched.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The drop folder; `done/` and `quarantine/` are made inside it.
    pub dir: PathBuf,
    /// A file is complete once its size and time have not changed for this
    /// long and it ends with a zip trailer.
    pub settle: Duration,
    /// A file still incomplete this long after it was first seen is
    /// quarantined (`BUNDLE-INCOMPLETE`).
    pub incomplete_after: Duration,
    /// Rescan at least this often (the only trigger without inotify).
    pub poll: Duration,
    /// Wait this long before trying again after a failure of this host.
    pub retry_after: Duration,
    /// Stop once no file is waiting (for tests and one-shot runs).
    pub until_idle: bool,
    /// The clock a quarantine's reason file is dated by.
    pub now: Clock,
}

/// What the watcher did, for the caller to print or log.
#[derive(Debug)]
pub enum WatchEvent<'a> {
    /// Watching: with inotify, or by polling only (and why).
    Started {
        /// `Ok` when inotify watches the folder; else why not (the watcher
        /// then polls only).
        inotify: Result<(), String>,
    },
    /// A file was judged and moved.
    Placed {
        /// The file's name in the drop folder (bytes: escape it to print).
        name: &'a OsStr,
        /// The verdict that decided where it went.
        disposition: Disposition,
        /// Where it is now: in `done/` or `quarantine/`.
        to: &'a Path,
        /// The import's report, when the import succeeded.
        report: Option<&'a ImportReport>,
        /// The error, when the import ended in one (including already
        /// imported and superseded, which go to `done/`).
        error: Option<&'a Error>,
    },
    /// A failure of this host; the file stays and is tried again.
    Retry {
        /// The file's name in the drop folder (bytes: escape it to print).
        name: &'a OsStr,
        /// The failure (setup, I/O, lock, hand-over…).
        error: &'a Error,
    },
}

/// Why a file was quarantined, written beside it as `NAME.reason.json`.
#[derive(Debug, Serialize)]
struct Reason<'a> {
    /// Lossy when the name is not UTF-8; `file_bytes` then has its bytes.
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

/// A file being watched until it is complete.
struct Track {
    len: u64,
    mtime: SystemTime,
    changed_at: Instant,
    first_seen: Instant,
    retry_at: Option<Instant>,
}

/// Import one bundle. The outer error is a failure to set up (trust file,
/// identities, state directory): the file is tried again later. The inner
/// result is the import's verdict on the bundle.
pub type ImportFn<'a> = dyn FnMut(&Path) -> Result<Result<ImportReport>> + 'a;

/// Watch `opts.dir` until `stop` is set (checked at least twice a second,
/// and between bundles: a bundle being imported is finished first).
pub fn watch(
    opts: &WatchOptions,
    stop: &AtomicBool,
    import: &mut ImportFn<'_>,
    on: &mut dyn FnMut(WatchEvent<'_>),
) -> Result<()> {
    let dir = &opts.dir;
    let md = fs::metadata(dir).map_err(|e| {
        Error::new(Code::IoRead, format!("drop folder {}: {e}", dir.display()))
            .with_hint("create the drop folder, or check the path given to airlock watch")
    })?;
    if !md.is_dir() {
        return Err(Error::new(
            Code::NotAFile,
            format!("{} is not a directory", dir.display()),
        ));
    }
    for sub in [DONE, QUARANTINE] {
        fs::create_dir_all(dir.join(sub)).map_err(|e| Error::io_write(&dir.join(sub), e))?;
        fsutil::sweep_stale(&dir.join(sub));
    }
    let _lock = lock_dir(dir)?;
    let mut wake = Wake::new(dir);
    on(WatchEvent::Started {
        inotify: wake.status(),
    });
    let mut tracked: HashMap<OsString, Track> = HashMap::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let now = Instant::now();
        scan(dir, &mut tracked, now)?;
        let mut ready: Vec<OsString> = tracked
            .iter()
            .filter(|(_, t)| {
                now.duration_since(t.changed_at) >= opts.settle
                    && t.retry_at.is_none_or(|r| r <= now)
            })
            .map(|(n, _)| n.clone())
            .collect();
        ready.sort();
        for name in ready {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            judge(opts, &name, &mut tracked, import, on)?;
        }
        if opts.until_idle && tracked.is_empty() {
            return Ok(());
        }
        wake.wait(next_wake(opts, &tracked, Instant::now()), stop);
    }
}

/// How long to sleep: until the next file could be complete or retried, at
/// most `poll`, and at most half a second so `stop` is seen promptly.
fn next_wake(opts: &WatchOptions, tracked: &HashMap<OsString, Track>, now: Instant) -> Duration {
    let mut d = opts.poll.min(Duration::from_millis(500));
    for t in tracked.values() {
        let due = t.retry_at.unwrap_or(t.changed_at + opts.settle);
        d = d.min(due.saturating_duration_since(now));
    }
    d.max(Duration::from_millis(20))
}

/// Rescan: track new and changed candidate files, forget vanished ones.
fn scan(dir: &Path, tracked: &mut HashMap<OsString, Track>, now: Instant) -> Result<()> {
    let rd = fs::read_dir(dir).map_err(|e| Error::io_read(dir, e))?;
    let mut seen = Vec::new();
    for entry in rd.flatten() {
        let name = entry.file_name();
        // Bytes, not UTF-8: every name is a candidate (decision 71).
        if name.as_encoded_bytes().starts_with(b".") || !names::has_suffix(&name, SUFFIX) {
            continue;
        }
        let Ok(md) = entry.metadata() else { continue };
        if !md.is_file() {
            continue;
        }
        let (len, mtime) = (md.len(), md.modified().unwrap_or(SystemTime::UNIX_EPOCH));
        seen.push(name.clone());
        let t = tracked.entry(name).or_insert(Track {
            len,
            mtime,
            changed_at: now,
            first_seen: now,
            retry_at: None,
        });
        if t.len != len || t.mtime != mtime {
            t.len = len;
            t.mtime = mtime;
            t.changed_at = now;
        }
    }
    tracked.retain(|n, _| seen.contains(n));
    Ok(())
}

/// Does the file end with airlock's zip trailer (Zip64 locator, then the
/// end-of-central-directory record)? A copy still in progress does not.
fn has_trailer(path: &Path) -> bool {
    let check = || -> std::io::Result<bool> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        if len < 98 {
            return Ok(false);
        }
        let mut t = [0u8; 42];
        f.seek(SeekFrom::Start(len - 42))?;
        f.read_exact(&mut t)?;
        Ok(t[..4] == 0x0706_4b50u32.to_le_bytes() && t[20..24] == 0x0605_4b50u32.to_le_bytes())
    };
    check().unwrap_or(false)
}

/// Judge one settled file: import it, or quarantine it as incomplete.
fn judge(
    opts: &WatchOptions,
    name: &OsString,
    tracked: &mut HashMap<OsString, Track>,
    import: &mut ImportFn<'_>,
    on: &mut dyn FnMut(WatchEvent<'_>),
) -> Result<()> {
    let path = opts.dir.join(name);
    let shown = names::escape(name);
    let Some(t) = tracked.get_mut(name) else {
        return Ok(());
    };
    if !has_trailer(&path) {
        if t.first_seen.elapsed() < opts.incomplete_after {
            // Still arriving (or stalled): look again once it changes.
            t.changed_at = Instant::now();
            return Ok(());
        }
        let e = Error::new(
            Code::BundleIncomplete,
            format!(
                "{shown} stopped growing at {} bytes without a zip trailer, {} s after it appeared",
                t.len,
                t.first_seen.elapsed().as_secs()
            ),
        );
        let to = quarantine(opts, name, &e)?;
        tracked.remove(name);
        on(WatchEvent::Placed {
            name,
            disposition: Disposition::Refused,
            to: &to,
            report: None,
            error: Some(&e),
        });
        return Ok(());
    }
    let result = match import(&path) {
        Ok(r) => r,
        Err(setup) => {
            t.retry_at = Some(Instant::now() + opts.retry_after);
            on(WatchEvent::Retry {
                name,
                error: &setup,
            });
            return Ok(());
        }
    };
    place(opts, name, tracked, &result, on)
}

/// Act on an import's verdict: try again later (a failure of this host, or
/// a file still being written), quarantine a refused file, or move an
/// imported (already imported, superseded) one into `done/`.
fn place(
    opts: &WatchOptions,
    name: &OsString,
    tracked: &mut HashMap<OsString, Track>,
    result: &Result<ImportReport>,
    on: &mut dyn FnMut(WatchEvent<'_>),
) -> Result<()> {
    let d = disposition(result);
    match d {
        Disposition::Retry => {
            if let Err(e) = result {
                if let Some(t) = tracked.get_mut(name) {
                    if e.code == Code::BundleChanged {
                        // Still being written: wait for it to settle again.
                        t.changed_at = Instant::now();
                    } else {
                        t.retry_at = Some(Instant::now() + opts.retry_after);
                    }
                }
                on(WatchEvent::Retry { name, error: e });
            }
            return Ok(());
        }
        Disposition::Refused => {
            let e = result
                .as_ref()
                .err()
                .ok_or_else(|| Error::new(Code::Internal, "a refusal without an error"))?;
            let to = quarantine(opts, name, e)?;
            tracked.remove(name);
            on(WatchEvent::Placed {
                name,
                disposition: d,
                to: &to,
                report: None,
                error: Some(e),
            });
        }
        Disposition::Imported | Disposition::AlreadyImported | Disposition::Superseded => {
            let to = move_into(&opts.dir, name, DONE)?;
            tracked.remove(name);
            on(WatchEvent::Placed {
                name,
                disposition: d,
                to: &to,
                report: result.as_ref().ok(),
                error: result.as_ref().err(),
            });
        }
    }
    Ok(())
}

/// `NAME` in `DIR/SUB`, or `STEM.N.airlock.zip` when that is taken (a file
/// dropped twice keeps both copies), shortened to fit 255 bytes.
fn free_name(dir: &Path, name: &OsStr) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let b = name.as_encoded_bytes();
    let stem = names::from_bytes(b.strip_suffix(SUFFIX.as_bytes()).unwrap_or(b));
    (2..)
        .map(|n| dir.join(names::derived_name(&stem, &format!(".{n}{SUFFIX}"))))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// Move `DIR/NAME` into `DIR/SUB/` by rename; durable.
fn move_into(dir: &Path, name: &OsString, sub: &str) -> Result<PathBuf> {
    let to = free_name(&dir.join(sub), name);
    fs::rename(dir.join(name), &to).map_err(|e| Error::io_write(&to, e))?;
    fsutil::sync_dir(&dir.join(sub))?;
    fsutil::sync_dir(dir)?;
    Ok(to)
}

/// Write `NAME.reason.json` into the quarantine, then move the file there.
fn quarantine(opts: &WatchOptions, name: &OsString, e: &Error) -> Result<PathBuf> {
    let dir = opts.dir.as_path();
    let q = dir.join(QUARANTINE);
    let to = free_name(&q, name);
    let file = to.file_name().unwrap_or(name);
    let reason = Reason {
        file: names::lossy(file),
        file_bytes: names::bytes_field(file),
        code: e.code.as_str(),
        class: e.code.class().name(),
        exit_code: e.exit_code(),
        cause: &e.cause,
        hint: e.hint(),
        time: format_time(opts.now.now()),
    };
    let mut text = serde_json::to_vec_pretty(&reason)
        .map_err(|err| Error::new(Code::Internal, format!("reason file: {err}")))?;
    text.push(b'\n');
    let reason_file = names::derived_name(file, ".reason.json");
    fsutil::write_atomic(&q.join(reason_file), &text, 0o644, true)?;
    fs::rename(dir.join(name), &to).map_err(|err| Error::io_write(&to, err))?;
    fsutil::sync_dir(&q)?;
    fsutil::sync_dir(dir)?;
    Ok(to)
}

/// One watcher per drop folder: an exclusive lock on `DIR/.airlock-watch.lock`.
fn lock_dir(dir: &Path) -> Result<File> {
    let p = dir.join(LOCK);
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
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
