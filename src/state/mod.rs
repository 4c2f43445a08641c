//! The exporter's state directory: per-signer sequence numbers, kept under an
//! exclusive lock and updated crash-safely (write, fsync, rename).
//!
//! A number is reserved before the bundle that uses it is written, so a crash
//! can leave a gap but never hand out the same number twice.

pub mod ledger;
pub mod lifecycle;

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::base::error::{Code, Error, Result};
use crate::io::fsutil;

/// Where state lives when none of `--state-dir`, `AIRLOCK_STATE_DIR` and
/// `state_dir` is given (`config::Settings::state_dir`), from the values of
/// `XDG_STATE_HOME` and `HOME` that `Settings` read (each `None` when unset
/// or empty): `$XDG_STATE_HOME/airlock`, else `~/.local/state/airlock`.
pub fn default_state_dir_in(
    xdg_state_home: Option<&std::ffi::OsStr>,
    home: Option<&std::ffi::OsStr>,
) -> Result<PathBuf> {
    if let Some(x) = xdg_state_home {
        return Ok(PathBuf::from(x).join("airlock"));
    }
    match home {
        Some(h) => Ok(PathBuf::from(h).join(".local/state/airlock")),
        None => Err(
            Error::new(Code::Args, "cannot find a state directory: HOME is not set").with_hint(
                "pass --state-dir DIR, set AIRLOCK_STATE_DIR, or set state_dir in airlock.toml",
            ),
        ),
    }
}

/// How often a bounded wait for the lock tries again.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// The outcome of a bounded wait for the state directory's lock.
pub enum Locked {
    /// Locked: the directory, to record in.
    Yes(StateDir),
    /// Another process kept the lock for the whole wait.
    No {
        /// The lock file.
        lock_path: PathBuf,
        /// The process that holds it, as it wrote into the file.
        holder: Option<u32>,
        /// How long this one waited.
        waited: Duration,
    },
}

/// An opened, locked state directory. The lock is released on drop.
pub struct StateDir {
    path: PathBuf,
    _lock: File,
    /// How long `open` waited for another airlock process's lock.
    pub waited: Option<Duration>,
}

impl StateDir {
    /// Create the directory (0700) if needed and take its exclusive lock,
    /// waiting for another airlock process that holds it.
    pub fn open(path: &Path) -> Result<StateDir> {
        StateDir::open_reporting(path, &mut |_| {})
    }

    /// `open`, calling `on_wait` with the lock file's path before it starts
    /// waiting for a lock another process holds (so a caller can say so);
    /// `waited` then says for how long.
    pub fn open_reporting(path: &Path, on_wait: &mut dyn FnMut(&Path)) -> Result<StateDir> {
        match StateDir::open_within(path, None, on_wait)? {
            Locked::Yes(s) => Ok(s),
            // Without a limit the wait ends only with the lock.
            Locked::No { lock_path, .. } => Err(Error::new(
                Code::StateLock,
                format!("cannot lock {}", lock_path.display()),
            )),
        }
    }

    /// `open`, waiting at most `limit` for another process's lock: for
    /// readers that can make do with the committed state (`cloud status`),
    /// so that a run holding the lock (say one waiting on a slow endpoint)
    /// does not hold them up without bound.
    pub fn open_waiting_at_most(path: &Path, limit: Duration) -> Result<Locked> {
        StateDir::open_within(path, Some(limit), &mut |_| {})
    }

    /// Take the lock, waiting for it without limit or for at most `limit`.
    fn open_within(
        path: &Path,
        limit: Option<Duration>,
        on_wait: &mut dyn FnMut(&Path),
    ) -> Result<Locked> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path.join("sequence"))
            .map_err(|e| Error::io_write(path, e))?;
        let lock_path = path.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io_write(&lock_path, e))?;
        let lock_err = |e: std::io::Error| {
            Error::new(
                Code::StateLock,
                format!("cannot lock {}: {e}", lock_path.display()),
            )
        };
        let waited = match lock.try_lock() {
            Ok(()) => None,
            Err(fs::TryLockError::WouldBlock) => {
                // Say why nothing happens: another run holds the directory.
                let holder = fs::read_to_string(&lock_path)
                    .ok()
                    .and_then(|t| t.trim().parse::<u32>().ok());
                note_waiting(&lock_path, holder, limit);
                on_wait(&lock_path);
                let start = Instant::now();
                if !wait_for(&lock, limit).map_err(lock_err)? {
                    return Ok(Locked::No {
                        lock_path,
                        holder,
                        waited: start.elapsed(),
                    });
                }
                Some(start.elapsed())
            }
            Err(fs::TryLockError::Error(e)) => return Err(lock_err(e)),
        };
        // Who holds it, for the message above in other processes.
        {
            use std::io::Write;
            let _ = lock.set_len(0);
            let _ = (&lock).write_all(format!("{}\n", std::process::id()).as_bytes());
        }
        Ok(Locked::Yes(StateDir {
            path: path.to_path_buf(),
            _lock: lock,
            waited,
        }))
    }

    /// Run `f` with the lock released, and take it again before returning:
    /// for a wait on the network (an HTTP hand-over), which must not hold
    /// other airlock processes up. The ledger's lease keeps them from the
    /// same work meanwhile (the lifecycle module).
    pub fn unlocked<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let lock_path = self.path.join("lock");
        let lock_err = |e: std::io::Error| {
            Error::new(
                Code::StateLock,
                format!("cannot lock {}: {e}", lock_path.display()),
            )
        };
        self._lock.unlock().map_err(lock_err)?;
        let r = f();
        self._lock.lock().map_err(lock_err)?;
        Ok(r)
    }

    /// The state directory itself (the ledger lives in it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sequence_path(&self, key_id_hex: &str) -> PathBuf {
        self.path.join("sequence").join(key_id_hex)
    }

    /// The last number handed out for a key (0 if none).
    fn last_sequence(&self, key_id_hex: &str) -> Result<u64> {
        let p = self.sequence_path(key_id_hex);
        match fs::read_to_string(&p) {
            Ok(s) => s.trim().parse::<u64>().map_err(|_| {
                Error::new(
                    Code::IoRead,
                    format!("{} does not hold a sequence number", p.display()),
                )
                .with_hint("restore the file from backup; never lower it, or bundles will be refused as rollbacks")
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::io_read(&p, e)),
        }
    }

    /// Reserve and durably record the next number for a key.
    pub fn next_sequence(&self, key_id_hex: &str) -> Result<u64> {
        let n = self.last_sequence(key_id_hex)? + 1;
        if n > crate::format::manifest::MAX_SEQUENCE {
            return Err(Error::new(
                Code::IoRead,
                "the sequence number for this key would pass the format's limit 2^53-1",
            )
            .with_hint("rotate to a new signing key (docs/key-management.md)"));
        }
        fsutil::write_atomic(
            &self.sequence_path(key_id_hex),
            format!("{n}\n").as_bytes(),
            0o600,
            true,
        )?;
        Ok(n)
    }
}

/// Wait for the lock: without limit, or for at most `limit` (false: not
/// taken in that time).
fn wait_for(lock: &File, limit: Option<Duration>) -> std::io::Result<bool> {
    let Some(limit) = limit else {
        lock.lock()?;
        return Ok(true);
    };
    // flock has no timeout: poll.
    let start = Instant::now();
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(true),
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < limit => {
                std::thread::sleep(LOCK_POLL.min(limit));
            }
            Err(fs::TryLockError::WouldBlock) => return Ok(false),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// Say why nothing happens: another run (`holder`, if it wrote its pid)
/// holds the directory's lock, and how long airlock waits for it.
fn note_waiting(lock_path: &Path, holder: Option<u32>, limit: Option<Duration>) {
    let shown = holder
        .map(|pid| format!(" (pid {pid})"))
        .unwrap_or_default();
    let until = match limit {
        None => "it ends when that run ends (Ctrl-C to give up)".to_string(),
        Some(l) => format!("waiting at most {}", humantime::format_duration(l)),
    };
    crate::base::progress::note(&format!(
        "waiting for another airlock process{shown} that holds {}; {until}",
        lock_path.display()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_wait_gives_up_and_then_locks_once_free() {
        let d = tempfile::tempdir().unwrap();
        let held = StateDir::open(d.path()).unwrap();
        let start = Instant::now();
        match StateDir::open_waiting_at_most(d.path(), Duration::from_millis(300)).unwrap() {
            Locked::No { holder, waited, .. } => {
                assert_eq!(holder, Some(std::process::id()));
                assert!(waited >= Duration::from_millis(300));
            }
            Locked::Yes(_) => panic!("locked while another holder has it"),
        }
        assert!(start.elapsed() < Duration::from_secs(30));
        drop(held);
        assert!(matches!(
            StateDir::open_waiting_at_most(d.path(), Duration::from_millis(300)).unwrap(),
            Locked::Yes(_)
        ));
    }

    #[test]
    fn sequences_increase_and_persist() {
        let d = tempfile::tempdir().unwrap();
        {
            let s = StateDir::open(d.path()).unwrap();
            assert_eq!(s.next_sequence("ab").unwrap(), 1);
            assert_eq!(s.next_sequence("ab").unwrap(), 2);
            assert_eq!(s.next_sequence("cd").unwrap(), 1);
        }
        let s = StateDir::open(d.path()).unwrap();
        assert_eq!(s.next_sequence("ab").unwrap(), 3);
    }
}
