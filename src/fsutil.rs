//! File-system helpers: atomic publication (temporary file in the target
//! directory, fsync, rename, fsync of the directory), and page-cache eviction
//! for read-back checks.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::{Code, Error, Result};

/// The directory a path lives in ("." for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A temporary file beside `target`, removed on drop unless published.
pub fn temp_beside(target: &Path, mode: u32) -> Result<NamedTempFile> {
    let dir = parent_dir(target);
    let tmp = tempfile::Builder::new()
        .prefix(".airlock-")
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(&dir)
        .map_err(|e| Error::io_write(&dir, e))?;
    Ok(tmp)
}

/// fsync a directory so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
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
pub fn publish_synced(tmp: NamedTempFile, target: &Path, overwrite: bool) -> Result<()> {
    if overwrite {
        tmp.persist(target)
            .map_err(|e| Error::io_write(target, e.error))?;
    } else {
        tmp.persist_noclobber(target).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                Error::new(
                    Code::OutputExists,
                    format!("{} already exists", target.display()),
                )
            } else {
                Error::io_write(target, e.error)
            }
        })?;
    }
    sync_dir(&parent_dir(target))
}

/// Write `data` to `target` atomically with the given mode.
pub fn write_atomic(target: &Path, data: &[u8], mode: u32, overwrite: bool) -> Result<()> {
    let mut tmp = temp_beside(target, mode)?;
    tmp.write_all(data)
        .map_err(|e| Error::io_write(target, e))?;
    publish(tmp, target, overwrite)
}

/// Ask the kernel to drop a (synced, hence clean) file's cached pages, so the
/// next read comes from the device. Best effort: some file systems ignore it.
pub fn evict_cache(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

/// Fault injection for I/O tests: in debug builds only, with
/// `AIRLOCK_FAULT=read-error`, a read fails with EIO once more than 1 MiB has
/// been read from the same stream (an input file or a bundle member), as a
/// failing disk or a pulled USB stick would. Release builds never fail here.
pub fn injected_read_error(done: u64) -> std::io::Result<()> {
    #[cfg(debug_assertions)]
    if done > 1 << 20 && std::env::var("AIRLOCK_FAULT").as_deref() == Ok("read-error") {
        return Err(std::io::Error::from_raw_os_error(5));
    }
    let _ = done;
    Ok(())
}

/// Fault injection for crash tests: in debug builds only, abort the process
/// (no destructors run, as with `kill -9`) when `AIRLOCK_FAULT` names this
/// point. Release builds compile this to nothing.
pub fn fault_point(point: &str) {
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
pub fn sha256_reader<R: std::io::Read>(f: &mut R) -> std::io::Result<String> {
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
    v.resize(n, 0);
    Ok(v)
}

/// SHA-256 either computed in line or on a second core. Export uses the
/// second core: hashing (about 1.1 GB/s with SHA instructions) then runs
/// beside the CRC, the zip writing and the encryption instead of after them.
pub enum Hasher {
    Inline(sha2::Sha256),
    Side {
        tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
        handle: std::thread::JoinHandle<sha2::Sha256>,
    },
}

impl Hasher {
    pub fn inline() -> Hasher {
        Hasher::Inline(sha2::Sha256::default())
    }

    /// A hashing thread fed through a short queue (at most 4 chunks in
    /// flight, so memory stays bounded whatever the payload size).
    pub fn side() -> crate::Result<Hasher> {
        use sha2::Digest;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let handle = std::thread::Builder::new()
            .name("sha256".into())
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

    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Inline(h) => h.update(data),
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

    pub fn finish(self) -> crate::Result<[u8; 32]> {
        use sha2::Digest;
        match self {
            Hasher::Inline(h) => Ok(h.finalize().into()),
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
pub struct EarlyWriteback {
    file: File,
    since: u64,
    tx: Option<std::sync::mpsc::SyncSender<()>>,
    handle: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

const WRITEBACK_EVERY: u64 = 32 << 20;

impl EarlyWriteback {
    pub fn new(file: File) -> Result<EarlyWriteback> {
        let clone = file.try_clone().map_err(|e| {
            Error::new(
                Code::IoWrite,
                format!("cannot duplicate a file handle: {e}"),
            )
        })?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let handle = std::thread::Builder::new()
            .name("writeback".into())
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
    pub fn finish(mut self) -> std::io::Result<File> {
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
    fn side_hasher_equals_inline() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 255) as u8).collect();
        let mut a = Hasher::inline();
        let mut b = Hasher::side().unwrap();
        for c in data.chunks(65_537) {
            a.update(c);
            b.update(c);
        }
        assert_eq!(a.finish().unwrap(), b.finish().unwrap());
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
