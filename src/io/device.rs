//! A bundle written to, and read back from, the device itself rather than
//! the page cache (`O_DIRECT`), for export (issue #20, decision 68).
//!
//! Export writes a file it will not read from the cache again, then reads it
//! back to prove what the medium holds. Through the page cache, the writing
//! costs a kernel copy of every byte into freshly allocated cache pages, and
//! the read-back could only ask the kernel to drop those pages first
//! (`posix_fadvise`, advice). Past the cache, the device is written by DMA
//! from airlock's own buffers, and the read-back reads the device by
//! construction.
//!
//! Direct I/O needs buffers, offsets and lengths aligned to the device's
//! block size; [`ALIGN`] (4096) suits 512-byte and 4 KiB sectors alike. A
//! file system that refuses it (tmpfs, some network and FUSE file systems)
//! refuses the flag, or a transfer, with `EINVAL` (FUSE ones also with
//! `EPERM` or `EOPNOTSUPP`): both sides then fall
//! back to the page cache, the writer with an early `fdatasync` every 32 MiB
//! as before, the reader after evicting the file's pages.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use crate::base::error::{Code, Error, Result};
use crate::io::blocks::{Piece, Pool};
use crate::io::mem::{spawn_thread, HELPER_STACK};
use crate::io::sizes::{DIRECT_BLOCK, WRITEBACK_EVERY};

/// Alignment of direct I/O buffers, offsets and lengths.
pub(crate) const ALIGN: usize = 4096;
/// Buffers of the writer: one filling, the others queued or being written.
const WRITE_BUFFERS: usize = 4;

/// A buffer whose window `[off, off + len)` starts at an `ALIGN`ed address.
struct Aligned {
    mem: Vec<u8>,
    off: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Result<Aligned> {
        let mem = crate::io::fsutil::buffer(len + ALIGN)?;
        let off = mem.as_ptr().align_offset(ALIGN);
        if off > ALIGN {
            return Err(Error::new(Code::Internal, "cannot align an I/O buffer"));
        }
        Ok(Aligned { mem, off, len })
    }

    fn bytes(&self) -> &[u8] {
        &self.mem[self.off..self.off + self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.mem[self.off..self.off + self.len]
    }
}

fn round_up(n: u64) -> u64 {
    n.div_ceil(ALIGN as u64) * ALIGN as u64
}

fn round_down(n: u64) -> u64 {
    n / ALIGN as u64 * ALIGN as u64
}

/// Turn direct I/O on for `file` where it means the device: not on a FUSE
/// file system, whose daemon writes the device however it does (so direct
/// I/O proves nothing there) and whose direct paths vary (`fusefat` then
/// reports sizes rounded to 4096 and refuses reads at the end). `false`
/// when not turned on.
fn try_direct(file: &File) -> bool {
    const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
    // `f_type`'s integer type differs between targets.
    #[allow(clippy::unnecessary_cast)]
    let fuse = rustix::fs::fstatfs(file).is_ok_and(|s| s.f_type as i64 == FUSE_SUPER_MAGIC);
    !fuse && set_direct(file, true)
}

/// Turn direct I/O on or off for `file` (an open file description: every
/// clone of the `File` shares it). `false` when the file system refuses it.
fn set_direct(file: &File, on: bool) -> bool {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    let Ok(flags) = fcntl_getfl(file) else {
        return false;
    };
    let flags = match on {
        true => flags | OFlags::DIRECT,
        false => flags - OFlags::DIRECT,
    };
    fcntl_setfl(file, flags).is_ok()
}

/// Whether a direct transfer was refused (rather than failed): `EINVAL`
/// from file systems that take the flag but not the transfer, `EPERM` and
/// `EOPNOTSUPP` from FUSE file systems (`fusefat` refuses a direct read
/// that runs past the end of the file). Refused, the same transfer is
/// retried through the page cache; an I/O error is reported as it is.
fn refused(e: &io::Error) -> bool {
    use rustix::io::Errno;
    [Errno::INVAL, Errno::PERM, Errno::OPNOTSUPP]
        .iter()
        .any(|c| e.raw_os_error() == Some(c.raw_os_error()))
}

enum Job {
    /// Write `buf`'s first `len` bytes (a multiple of ALIGN) at `at`.
    Write { buf: Aligned, len: usize, at: u64 },
    /// Answer once every job before this one is done.
    Barrier(Sender<()>),
}

/// What the writing thread shares with the writer.
struct Shared {
    /// Still writing past the page cache.
    direct: AtomicBool,
    /// The first error of a write; later writes are skipped.
    error: Mutex<Option<io::Error>>,
}

impl Shared {
    fn take_error(&self) -> io::Result<()> {
        match self.error.lock().map(|mut e| e.take()) {
            Ok(Some(e)) => Err(e),
            Ok(None) => Ok(()),
            Err(_) => Err(io::Error::other("the writing thread panicked")),
        }
    }
}

/// The writing thread: each job's write, in order; buffers go back to the
/// writer when written.
fn writing(file: File, jobs: Receiver<Job>, back: Sender<Aligned>, shared: Arc<Shared>) {
    let mut since_sync = 0u64;
    for job in jobs {
        match job {
            Job::Barrier(done) => {
                let _ = done.send(());
            }
            Job::Write { buf, len, at } => {
                let failed = shared.error.lock().map_or(true, |e| e.is_some());
                if !failed {
                    let mut r = file.write_all_at(&buf.bytes()[..len], at);
                    if r.as_ref().is_err_and(refused) && shared.direct.load(Ordering::SeqCst) {
                        // The file system takes the flag but not the write:
                        // the page cache, from here on.
                        shared.direct.store(false, Ordering::SeqCst);
                        set_direct(&file, false);
                        r = file.write_all_at(&buf.bytes()[..len], at);
                    }
                    if r.is_ok() && !shared.direct.load(Ordering::SeqCst) {
                        since_sync += len as u64;
                        if since_sync >= WRITEBACK_EVERY {
                            since_sync = 0;
                            r = file.sync_data();
                        }
                    }
                    if let Err(e) = r {
                        if let Ok(mut slot) = shared.error.lock() {
                            slot.get_or_insert(e);
                        }
                    }
                }
                // The writer may be gone (an error path): then it is freed.
                let _ = back.send(buf);
            }
        }
    }
}

/// Writes a new, empty file sequentially, past the page cache when the file
/// system allows it, from a thread of its own: `write` copies into aligned
/// blocks and returns; full blocks are written by the thread. Seeking back
/// to rewrite bytes already written (the zip writer patching a local
/// header) is supported; seeking past the end is not. [`DeviceWriter::finish`]
/// writes the last block (its whole sectors directly, the bytes after them
/// through the page cache); it does not sync.
pub(crate) struct DeviceWriter {
    file: File,
    /// The block being filled, for file offsets `[base, base + fill)`.
    cur: Option<Aligned>,
    base: u64,
    fill: usize,
    /// The position of the next write.
    pos: u64,
    made: usize,
    jobs: Option<SyncSender<Job>>,
    back: Receiver<Aligned>,
    shared: Arc<Shared>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl DeviceWriter {
    /// Write `file` (empty, opened for reading and writing) from offset 0.
    pub(crate) fn new(file: File) -> Result<DeviceWriter> {
        DeviceWriter::with(file, true)
    }

    /// As `new`, trying direct I/O only if `try_direct` (tests take the
    /// page-cache path with `false`).
    fn with(file: File, try_direct: bool) -> Result<DeviceWriter> {
        let direct = try_direct && self::try_direct(&file);
        let clone = file.try_clone().map_err(|e| {
            Error::new(
                Code::IoWrite,
                format!("cannot duplicate a file handle: {e}"),
            )
        })?;
        let shared = Arc::new(Shared {
            direct: AtomicBool::new(direct),
            error: Mutex::new(None),
        });
        let (jobs, rx) = sync_channel::<Job>(WRITE_BUFFERS);
        let (home, back) = channel();
        let s = shared.clone();
        let handle = spawn_thread("device-write", HELPER_STACK, move || {
            writing(clone, rx, home, s)
        })?;
        Ok(DeviceWriter {
            file,
            cur: None,
            base: 0,
            fill: 0,
            pos: 0,
            made: 0,
            jobs: Some(jobs),
            back,
            shared,
            handle: Some(handle),
        })
    }

    /// Whether the bytes went past the page cache (so far).
    pub(crate) fn direct(&self) -> bool {
        self.shared.direct.load(Ordering::SeqCst)
    }

    fn send(&mut self, job: Job) -> io::Result<()> {
        let sent = self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok());
        self.shared.take_error()?;
        match sent {
            true => Ok(()),
            false => Err(io::Error::other("the writing thread stopped")),
        }
    }

    /// A buffer for the next block: one that came back, a new one while
    /// fewer than WRITE_BUFFERS exist, else the next to come back.
    fn fresh(&mut self) -> io::Result<Aligned> {
        if let Ok(b) = self.back.try_recv() {
            return Ok(b);
        }
        if self.made < WRITE_BUFFERS {
            self.made += 1;
            return Aligned::new(DIRECT_BLOCK)
                .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e.cause));
        }
        self.back
            .recv()
            .map_err(|_| io::Error::other("the writing thread stopped"))
    }

    /// Hand the full block to the thread and start the next one.
    fn ship(&mut self) -> io::Result<()> {
        if let Some(buf) = self.cur.take() {
            let at = self.base;
            self.send(Job::Write {
                buf,
                len: DIRECT_BLOCK,
                at,
            })?;
        }
        self.base += DIRECT_BLOCK as u64;
        self.fill = 0;
        Ok(())
    }

    /// Wait until every block handed over is written.
    fn barrier(&mut self) -> io::Result<()> {
        let (tx, rx) = channel();
        self.send(Job::Barrier(tx))?;
        rx.recv()
            .map_err(|_| io::Error::other("the writing thread stopped"))?;
        self.shared.take_error()
    }

    /// Rewrite `data` at `at`, all of it before `base` (already handed
    /// over): after the thread wrote everything, read the aligned blocks
    /// around it, change them and write them again.
    fn patch_written(&mut self, at: u64, data: &[u8]) -> io::Result<()> {
        self.barrier()?;
        if !self.direct() {
            return self.file.write_all_at(data, at);
        }
        let from = round_down(at);
        let to = round_up(at + data.len() as u64);
        let mut buf = Aligned::new((to - from) as usize)
            .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e.cause))?;
        self.file.read_exact_at(buf.bytes_mut(), from)?;
        let i = (at - from) as usize;
        buf.bytes_mut()[i..i + data.len()].copy_from_slice(data);
        self.file.write_all_at(buf.bytes(), from)
    }

    /// Write the last block: its whole sectors past the page cache, the
    /// bytes after them through it. Returns the file, not yet synced.
    pub(crate) fn finish(mut self) -> io::Result<File> {
        let mut tail = Vec::new();
        if let Some(buf) = self.cur.take() {
            // The whole aligned sectors go direct; the few bytes after the
            // last one through the page cache below, so the file never
            // needs truncating (FAT through FUSE refuses to shrink a file).
            let aligned = round_down(self.fill as u64) as usize;
            tail = buf.bytes()[aligned..self.fill].to_vec();
            if aligned > 0 {
                let at = self.base;
                self.send(Job::Write {
                    buf,
                    len: aligned,
                    at,
                })?;
            }
            self.base += aligned as u64;
        }
        self.jobs = None;
        if let Some(h) = self.handle.take() {
            h.join()
                .map_err(|_| io::Error::other("the writing thread panicked"))?;
        }
        self.shared.take_error()?;
        if !tail.is_empty() {
            set_direct(&self.file, false);
            self.file.write_all_at(&tail, self.base)?;
        }
        self.file.try_clone()
    }
}

impl Write for DeviceWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let end = self.base + self.fill as u64;
        if self.pos > end {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "writing past the end of a device-written file",
            ));
        }
        if self.pos < self.base {
            // Bytes already handed over: rewrite those before `base`.
            let n = data.len().min((self.base - self.pos) as usize);
            let at = self.pos;
            self.patch_written(at, &data[..n])?;
            self.pos += n as u64;
            return Ok(n);
        }
        if self.cur.is_none() {
            self.cur = Some(self.fresh()?);
        }
        let i = (self.pos - self.base) as usize;
        let n = data.len().min(DIRECT_BLOCK - i);
        if let Some(cur) = self.cur.as_mut() {
            cur.bytes_mut()[i..i + n].copy_from_slice(&data[..n]);
        }
        self.pos += n as u64;
        self.fill = self.fill.max(i + n);
        if self.fill == DIRECT_BLOCK && self.pos == self.base + DIRECT_BLOCK as u64 {
            self.ship()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Blocks are written when full, the last one by `finish`.
        self.shared.take_error()
    }
}

impl Seek for DeviceWriter {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let end = self.base + self.fill as u64;
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => end.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

impl Drop for DeviceWriter {
    fn drop(&mut self) {
        // On an error path: stop the thread without waiting for it.
        self.jobs = None;
    }
}

/// Reads in flight ahead of the one being served, once reading is
/// sequential: a direct read waits for the device, so without them the
/// device would idle while the blocks are hashed.
const READ_AHEAD: usize = 4;
/// Blocks of the reader at most: the one served, those read ahead, and
/// those its consumers still hold (each hashing queue holds a few, see
/// `blocks::QUEUE`). Pieces are windows of these blocks, not copies.
const READ_BUFFERS: usize = 16;

/// One block read by the reading thread: its buffer, file offset, and the
/// byte count or error.
type Filled = (Vec<u8>, u64, io::Result<usize>);

/// Read the aligned block at `at` into `buf` (`DIRECT_BLOCK` bytes at an
/// aligned address): whole, or up to the end of the file. A file system
/// that takes the direct flag but refuses the read is read through the
/// page cache from then on.
fn read_block(file: &File, buf: &mut [u8], at: u64, direct: &AtomicBool) -> io::Result<usize> {
    let mut n = 0;
    loop {
        match file.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) => return Ok(n),
            Ok(k) => {
                n += k;
                // A direct read stops short only at the end of the file.
                if n == buf.len() || (direct.load(Ordering::SeqCst) && n % ALIGN != 0) {
                    return Ok(n);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if refused(&e) && direct.load(Ordering::SeqCst) => {
                direct.store(false, Ordering::SeqCst);
                set_direct(file, false);
                crate::io::fsutil::evict_cache(file);
            }
            Err(e) => return Err(e),
        }
    }
}

/// The aligned `DIRECT_BLOCK` window of a pool buffer.
fn window(buf: &[u8]) -> Option<(usize, usize)> {
    let off = buf.as_ptr().align_offset(ALIGN);
    (off.checked_add(DIRECT_BLOCK)? <= buf.len()).then_some((off, off + DIRECT_BLOCK))
}

/// Reads a file from the device, past the page cache when the file system
/// allows it (else from the cache after evicting the file's pages): for
/// export's read-back of what it just wrote. Blocks are read by a thread of
/// its own, up to `READ_AHEAD` ahead once the reads are sequential, and
/// handed on as shared pieces (`read_piece`) or copied (`Read`).
pub(crate) struct DeviceReader {
    file: File,
    /// The block being served (its valid bytes) and its file offset.
    current: Option<(Piece, u64)>,
    pos: u64,
    /// Offsets asked of the thread, in order; answers come in that order.
    asked: std::collections::VecDeque<u64>,
    pool: Pool,
    /// Offset of the block fetched before `current`, to tell sequential
    /// reading from seeks.
    last: Option<u64>,
    len: u64,
    jobs: Option<Sender<(Vec<u8>, u64)>>,
    done: Receiver<Filled>,
    /// Shared with the thread, which turns it off if reads are refused.
    #[cfg_attr(not(test), allow(dead_code))]
    direct: Arc<AtomicBool>,
}

impl DeviceReader {
    /// Read `file` from the device.
    pub(crate) fn new(file: File) -> Result<DeviceReader> {
        DeviceReader::with(file, true)
    }

    fn with(file: File, try_direct: bool) -> Result<DeviceReader> {
        let direct = try_direct && self::try_direct(&file);
        if !direct {
            crate::io::fsutil::evict_cache(&file);
        }
        let len = file
            .metadata()
            .map_err(|e| Error::new(Code::IoRead, format!("cannot stat bundle: {e}")))?
            .len();
        let direct = Arc::new(AtomicBool::new(direct));
        let clone = file.try_clone().map_err(|e| {
            Error::new(Code::IoRead, format!("cannot duplicate a file handle: {e}"))
        })?;
        let (jobs, rx) = channel::<(Vec<u8>, u64)>();
        let (tx, done) = channel::<Filled>();
        let d = direct.clone();
        spawn_thread("device-read", HELPER_STACK, move || {
            for (mut buf, at) in rx {
                let r = match window(&buf) {
                    Some((from, to)) => read_block(&clone, &mut buf[from..to], at, &d),
                    None => Err(io::Error::other("cannot align a read buffer")),
                };
                if tx.send((buf, at, r)).is_err() {
                    return;
                }
            }
        })?;
        Ok(DeviceReader {
            file,
            current: None,
            pos: 0,
            asked: Default::default(),
            pool: Pool::new(DIRECT_BLOCK + ALIGN, READ_BUFFERS),
            last: None,
            len,
            jobs: Some(jobs),
            done,
            direct,
        })
    }

    /// Whether the reads go past the page cache.
    #[cfg(test)]
    fn direct(&self) -> bool {
        self.direct.load(Ordering::SeqCst)
    }

    /// The file, for its size and times.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Ask the thread for the block at `at`. Waits for a free buffer when
    /// `wait`, else gives up (`false`) when none is free: reading ahead
    /// never waits for the consumers.
    fn ask(&mut self, at: u64, wait: bool) -> io::Result<bool> {
        let buf = match wait {
            true => Some(self.pool.take()),
            false => self.pool.try_take(),
        };
        let Some(buf) = buf else {
            return Ok(false);
        };
        let buf = buf.map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e.cause))?;
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|j| j.send((buf, at)).is_ok());
        if !sent {
            return Err(io::Error::other("the reading thread stopped"));
        }
        self.asked.push_back(at);
        Ok(true)
    }

    /// The next answer: the block's valid bytes (the buffer goes back to
    /// the pool when the piece and every part of it are dropped), its
    /// offset, and whether the read succeeded.
    fn answer(&mut self) -> io::Result<(Piece, u64, io::Result<()>)> {
        self.asked.pop_front();
        let (buf, at, r) = self
            .done
            .recv()
            .map_err(|_| io::Error::other("the reading thread stopped"))?;
        let (from, n) = match (&r, window(&buf)) {
            (Ok(n), Some((from, _))) => (from, *n),
            _ => (0, 0),
        };
        Ok((self.pool.share_window(buf, from, n), at, r.map(|_| ())))
    }

    /// Make the block at `base` current: from what was asked ahead, else
    /// asked now; then ask for the next ones if reading is sequential.
    fn fetch(&mut self, base: u64) -> io::Result<()> {
        self.current = None;
        // Answers for other offsets (a seek) are dropped, failed or not.
        while self.asked.front().is_some_and(|&a| a != base) {
            let _ = self.answer()?;
        }
        if self.asked.is_empty() {
            self.ask(base, true)?;
        }
        let (piece, at, r) = self.answer()?;
        r?;
        let sequential = self.last.is_some_and(|l| l + DIRECT_BLOCK as u64 == base);
        self.last = Some(base);
        self.current = Some((piece, at));
        if sequential {
            let mut next = self.asked.back().copied().unwrap_or(base) + DIRECT_BLOCK as u64;
            while self.asked.len() < READ_AHEAD && next < self.len && self.ask(next, false)? {
                next += DIRECT_BLOCK as u64;
            }
        }
        Ok(())
    }

    /// The current block, made to hold `pos` if it does not: `None` at or
    /// past the end of the file.
    fn serving(&mut self) -> io::Result<Option<(&Piece, usize)>> {
        let pos = self.pos;
        let serves = |c: &Option<(Piece, u64)>| {
            c.as_ref()
                .is_some_and(|(p, at)| pos >= *at && pos < at + p.bytes().len() as u64)
        };
        if !serves(&self.current) {
            self.fetch(pos / DIRECT_BLOCK as u64 * DIRECT_BLOCK as u64)?;
            if !serves(&self.current) {
                return Ok(None);
            }
        }
        Ok(self
            .current
            .as_ref()
            .map(|(p, at)| (p, (pos - at) as usize)))
    }

    /// Up to `max` next bytes as a window of the block read, not a copy; an
    /// empty piece at the end of the file.
    pub(crate) fn read_piece(&mut self, max: usize) -> io::Result<Piece> {
        let piece = match self.serving()? {
            Some((p, i)) => p.slice(i, i.saturating_add(max)),
            None => Piece::owned(Vec::new()),
        };
        self.pos += piece.bytes().len() as u64;
        Ok(piece)
    }
}

impl Read for DeviceReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let Some((p, i)) = self.serving()? else {
            return Ok(0);
        };
        let bytes = &p.bytes()[i..];
        let n = out.len().min(bytes.len());
        out[..n].copy_from_slice(&bytes[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for DeviceReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.file.metadata()?.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 4093) as u8).collect()
    }

    /// Sequential writes of odd sizes, and patches before and inside the
    /// block being filled, give the same file as a `Cursor` would.
    #[test]
    fn writes_and_patches_match_a_plain_file() {
        for direct in [true, false] {
            writes_and_patches(direct);
        }
    }

    fn writes_and_patches(direct: bool) {
        let dir = tempfile::tempdir().unwrap();
        for total in [0, 1, ALIGN - 1, ALIGN, DIRECT_BLOCK, 3 * DIRECT_BLOCK + 123] {
            let bytes = data(total);
            let path = dir.path().join(format!("f{total}"));
            let f = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .unwrap();
            let mut w = DeviceWriter::with(f, direct).unwrap();
            // Asked for, direct I/O is still up to the file system.
            assert!(direct || !w.direct());
            let mut model = Cursor::new(Vec::new());
            let mut at = 0;
            let mut step = 1;
            while at < total {
                let n = step.min(total - at);
                w.write_all(&bytes[at..at + n]).unwrap();
                model.write_all(&bytes[at..at + n]).unwrap();
                at += n;
                step = step * 3 + 5;
                // Now and then, patch a few bytes far back and near.
                for back in [at / 2, at.saturating_sub(10)] {
                    let patch = [0xAB, 0xCD, 0xEF];
                    let n = patch.len().min(at - back);
                    for s in [&mut w as &mut dyn WriteSeek, &mut model] {
                        s.seek(SeekFrom::Start(back as u64)).unwrap();
                        s.write_all(&patch[..n]).unwrap();
                        s.seek(SeekFrom::End(0)).unwrap();
                    }
                }
            }
            w.finish().unwrap();
            assert!(
                std::fs::read(&path).unwrap() == model.into_inner(),
                "{total}"
            );
        }
    }

    trait WriteSeek: Write + Seek {}
    impl<T: Write + Seek> WriteSeek for T {}

    #[test]
    fn only_refusals_fall_back_to_the_page_cache() {
        use rustix::io::Errno;
        let e = |c: Errno| io::Error::from_raw_os_error(c.raw_os_error());
        for c in [Errno::INVAL, Errno::PERM, Errno::OPNOTSUPP] {
            assert!(refused(&e(c)), "{c:?}");
        }
        for c in [Errno::IO, Errno::NOSPC, Errno::FBIG, Errno::ACCESS] {
            assert!(!refused(&e(c)), "{c:?}");
        }
    }

    #[test]
    fn the_reader_returns_the_file_with_seeks_anywhere() {
        for direct in [true, false] {
            reads_anywhere(direct);
        }
    }

    fn reads_anywhere(direct: bool) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = data(5 * DIRECT_BLOCK + 777);
        let path = dir.path().join("r");
        std::fs::write(&path, &bytes).unwrap();
        let mut r = DeviceReader::with(File::open(&path).unwrap(), direct).unwrap();
        assert!(direct || !r.direct());
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert!(all == bytes);
        for at in [
            0,
            1,
            4095,
            4096,
            DIRECT_BLOCK + 3,
            3 * DIRECT_BLOCK - 2,
            bytes.len() - 5,
            7,
        ] {
            r.seek(SeekFrom::Start(at as u64)).unwrap();
            let mut got = [0u8; 5];
            r.read_exact(&mut got).unwrap();
            assert_eq!(got, bytes[at..at + 5]);
        }
        r.seek(SeekFrom::End(0)).unwrap();
        assert_eq!(r.read(&mut [0u8; 8]).unwrap(), 0);
        // Pieces: the same bytes, never more than asked, none past a block.
        for (start, max) in [(0, DIRECT_BLOCK), (3, 100_000), (DIRECT_BLOCK - 1, 5)] {
            r.seek(SeekFrom::Start(start as u64)).unwrap();
            let mut got = Vec::new();
            let mut held = Vec::new();
            loop {
                let p = r.read_piece(max).unwrap();
                if p.bytes().is_empty() {
                    break;
                }
                assert!(p.bytes().len() <= max);
                got.extend_from_slice(p.bytes());
                // Hold a few, as a hashing queue does; the pool lends others.
                held.push(p);
                if held.len() > 3 {
                    held.remove(0);
                }
            }
            assert!(got == bytes[start..], "{start} {max}");
        }
    }
}
