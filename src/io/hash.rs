//! SHA-256 of files, readers and (on a helper thread) decrypted bytes.

use std::fs::File;
use std::path::Path;

use super::mem::{buffer, spawn_thread, HELPER_STACK};
use super::sizes::STREAM_BUFFER;

/// SHA-256 of a whole file, streamed in [`STREAM_BUFFER`] reads (lowercase hex).
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    sha256_reader(&mut File::open(path)?)
}

/// SHA-256 of everything a reader yields (lowercase hex).
fn sha256_reader<R: std::io::Read>(f: &mut R) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut buf = buffer(STREAM_BUFFER)
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
        let handle = spawn_thread("sha256", HELPER_STACK, move || {
            let mut h = sha2::Sha256::new();
            for chunk in rx {
                h.update(&chunk);
            }
            h
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
