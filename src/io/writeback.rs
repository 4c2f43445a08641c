//! Writeback: a writer that has the device write early, on a helper
//! thread, and page-cache eviction for read-back checks.

use std::fs::File;
use std::io::Write;

use super::mem::{spawn_thread, HELPER_STACK};
use super::sizes::WRITEBACK_EVERY;
use crate::base::error::{Code, Error, Result};

/// Ask the kernel to drop a (synced, hence clean) file's cached pages, so the
/// next read comes from the device. Best effort: some file systems ignore it.
pub(crate) fn evict_cache(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
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
        let handle = spawn_thread("writeback", HELPER_STACK, move || {
            for () in rx {
                clone.sync_data()?;
            }
            Ok(())
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
    use std::io::{Read, Seek, SeekFrom};

    use super::*;

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
