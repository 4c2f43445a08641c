//! Shared I/O blocks: bytes read once and read in place by several threads
//! (hashing, parsing, encrypting, writing) instead of copied to each. A
//! block goes back to its pool when the last thread drops it, so a pass
//! holds a bounded number of blocks whatever the size of the data.

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;

use crate::base::error::{Code, Error, Result};
use crate::io::mem::{spawn_thread, HELPER_STACK};

/// Bytes shared between threads; returned to its pool when dropped.
pub struct Block {
    data: Vec<u8>,
    home: Sender<Vec<u8>>,
}

impl Drop for Block {
    fn drop(&mut self) {
        // The pool may be gone (the pass ended): then the memory is freed.
        let _ = self.home.send(std::mem::take(&mut self.data));
    }
}

/// A piece of a byte stream handed to another thread: a window of a shared
/// block, or a few bytes of its own (a header, a trailer). Cloning or
/// narrowing a piece shares its bytes; nothing is copied.
#[derive(Clone)]
pub struct Piece {
    data: Data,
    start: usize,
    end: usize,
}

#[derive(Clone)]
enum Data {
    /// A pool's block (see `Pool::share`).
    Shared(Arc<Block>),
    /// Bytes of its own, outside any pool.
    Owned(Arc<Vec<u8>>),
}

impl Piece {
    /// A piece holding `bytes` itself (no pool).
    pub fn owned(bytes: Vec<u8>) -> Piece {
        let end = bytes.len();
        Piece {
            data: Data::Owned(Arc::new(bytes)),
            start: 0,
            end,
        }
    }

    /// The bytes of the window.
    pub fn bytes(&self) -> &[u8] {
        let all = match &self.data {
            Data::Shared(b) => &b.data,
            Data::Owned(v) => v.as_slice(),
        };
        &all[self.start..self.end]
    }

    /// The part `from..to` of this piece's bytes (clamped to them), sharing
    /// the same block.
    pub fn slice(&self, from: usize, to: usize) -> Piece {
        let len = self.end - self.start;
        let to = to.min(len);
        Piece {
            data: self.data.clone(),
            start: self.start + from.min(to),
            end: self.start + to,
        }
    }
}

/// Buffers of one size, reused: at most `max` exist at a time, so `take`
/// waits for one to come back when all are in use. Nothing that holds a
/// block may wait for the pool's owner, or the two would wait for each
/// other; airlock's passes only hand blocks downstream.
pub(crate) struct Pool {
    size: usize,
    max: usize,
    made: usize,
    home: Sender<Vec<u8>>,
    back: Receiver<Vec<u8>>,
}

impl Pool {
    /// A pool of buffers of `size` bytes, at most `max` (at least 1) at a
    /// time; none is allocated until taken.
    pub fn new(size: usize, max: usize) -> Pool {
        let (home, back) = channel();
        Pool {
            size,
            max: max.max(1),
            made: 0,
            home,
            back,
        }
    }

    /// A buffer of `size` bytes (zeroed the first time, else as last used):
    /// one that came back, a new one while fewer than `max` exist, or the
    /// next to come back.
    pub fn take(&mut self) -> Result<Vec<u8>> {
        let v = match self.back.try_recv() {
            Ok(v) => v,
            Err(_) if self.made < self.max => {
                self.made += 1;
                crate::io::fsutil::buffer(self.size)?
            }
            // `self.home` keeps the channel open: this only waits.
            Err(_) => self
                .back
                .recv()
                .map_err(|_| Error::new(Code::Internal, "a buffer pool lost its blocks"))?,
        };
        Ok(v)
    }

    /// A buffer that is free now, without waiting: `None` when all `max`
    /// are in use.
    pub fn try_take(&mut self) -> Option<Result<Vec<u8>>> {
        match self.back.try_recv() {
            Ok(v) => Some(Ok(v)),
            Err(_) if self.made < self.max => Some(self.take()),
            Err(_) => None,
        }
    }

    /// Share the first `len` bytes of a buffer taken from this pool.
    pub fn share(&self, data: Vec<u8>, len: usize) -> Piece {
        self.share_window(data, 0, len)
    }

    /// Share the bytes `start..start + len` of a buffer taken from this
    /// pool (clamped to the buffer).
    pub fn share_window(&self, data: Vec<u8>, start: usize, len: usize) -> Piece {
        let end = start.saturating_add(len).min(data.len());
        Piece {
            data: Data::Shared(Arc::new(Block {
                data,
                home: self.home.clone(),
            })),
            start: start.min(end),
            end,
        }
    }
}

/// SHA-256 on a thread of its own, fed pieces through a short queue (at
/// most `QUEUE` pieces wait, so memory stays bounded).
pub(crate) struct SideSha {
    tx: Option<SyncSender<Piece>>,
    handle: std::thread::JoinHandle<sha2::Sha256>,
    /// Bytes fed so far.
    pub fed: u64,
}

/// Pieces that may wait for a consumer thread.
pub(crate) const QUEUE: usize = 3;

impl SideSha {
    /// Start the hashing thread, named `name`; a refused thread is
    /// `RESOURCES`, not a panic.
    pub fn spawn(name: &str) -> Result<SideSha> {
        use sha2::Digest;
        let (tx, rx) = sync_channel::<Piece>(QUEUE);
        let handle = spawn_thread(name, HELPER_STACK, move || {
            let mut h = sha2::Sha256::new();
            for piece in rx {
                h.update(piece.bytes());
            }
            h
        })?;
        Ok(SideSha {
            tx: Some(tx),
            handle,
            fed: 0,
        })
    }

    /// Hash the next piece (counted in `fed`; dropped if the thread died).
    pub fn feed(&mut self, piece: Piece) {
        self.fed += piece.bytes().len() as u64;
        if let Some(t) = &self.tx {
            // The thread ends only when the sender is dropped: a failed send
            // means it died, which `finish` reports.
            if t.send(piece).is_err() {
                self.tx = None;
            }
        }
    }

    /// End of input: the SHA-256 of every piece fed, in order, or an
    /// internal error if the thread died before it saw them all.
    pub fn finish(mut self) -> Result<[u8; 32]> {
        use sha2::Digest;
        let complete = self.tx.is_some();
        self.tx = None;
        let h = self
            .handle
            .join()
            .map_err(|_| Error::new(Code::Internal, "the hashing thread panicked"))?;
        if !complete {
            return Err(Error::new(
                Code::Internal,
                "the hashing thread stopped early",
            ));
        }
        Ok(h.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn blocks_come_back_and_the_pool_stays_bounded() {
        let mut pool = Pool::new(1000, 2);
        let mut a = pool.take().unwrap();
        a[..3].copy_from_slice(b"abc");
        let pa = pool.share(a, 3);
        let b = pool.take().unwrap();
        let pb = pool.share(b, 10);
        assert_eq!(pa.bytes(), b"abc");
        assert_eq!(pb.bytes().len(), 10);
        // Both are out: the next take waits until one is dropped elsewhere.
        let t = spawn_thread("t", HELPER_STACK, move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(pa);
            drop(pb);
        })
        .unwrap();
        let c = pool.take().unwrap();
        assert_eq!(c.len(), 1000);
        assert_eq!(pool.made, 2);
        t.join().unwrap();
    }

    #[test]
    fn windows_and_slices_share_the_block_until_the_last_is_dropped() {
        let mut pool = Pool::new(100, 1);
        let mut a = pool.take().unwrap();
        a.iter_mut().enumerate().for_each(|(i, x)| *x = i as u8);
        let w = pool.share_window(a, 10, 50);
        assert_eq!(w.bytes(), &(10..60).collect::<Vec<u8>>()[..]);
        let s = w.slice(5, 8);
        assert_eq!(s.bytes(), &[15, 16, 17]);
        assert_eq!(w.slice(45, 1000).bytes(), &[55, 56, 57, 58, 59]);
        assert!(w.slice(70, 80).bytes().is_empty());
        assert!(
            Pool::new(4, 1)
                .share_window(vec![0; 4], 3, usize::MAX)
                .bytes()
                == [0]
        );
        drop(w);
        // The slice still holds the block: nothing is free yet.
        assert!(pool.try_take().is_none());
        drop(s);
        assert_eq!(pool.try_take().unwrap().unwrap().len(), 100);
    }

    #[test]
    fn side_sha_hashes_shared_and_owned_pieces_in_order() {
        let mut pool = Pool::new(1 << 16, 4);
        let mut h = SideSha::spawn("sha256").unwrap();
        let mut all = Vec::new();
        h.feed(Piece::owned(b"head".to_vec()));
        all.extend_from_slice(b"head");
        for i in 0..20u8 {
            let mut b = pool.take().unwrap();
            b.iter_mut().for_each(|x| *x = i);
            let n = 1000 + i as usize;
            all.extend_from_slice(&b[..n]);
            h.feed(pool.share(b, n));
        }
        assert_eq!(h.fed, all.len() as u64);
        assert_eq!(
            h.finish().unwrap(),
            <[u8; 32]>::from(sha2::Sha256::digest(&all))
        );
    }
}
