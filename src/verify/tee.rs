//! A counting, hashing pass-through writer: what verification uses to take
//! decrypted content's size and SHA-256 on its way to its destination.

use std::io::{self, Write};

use crate::base::error::Result;
use crate::format::usage::Sniffer;
use crate::io::fsutil;

/// Counts and hashes bytes on their way to another writer, and feeds them
/// to the usage-file sniffer.
pub(crate) struct Tee<'a, W: Write> {
    /// Where the bytes go.
    inner: W,
    /// SHA-256 of every byte `inner` accepted, when it is taken.
    sha: Option<fsutil::Hasher>,
    /// Number of bytes `inner` accepted.
    size: u64,
    /// Also fed every accepted byte.
    sniffer: &'a mut Sniffer,
}

impl<'a, W: Write> Tee<'a, W> {
    /// Bytes to `inner` and `sniffer`, hashed by `sha` when given.
    pub(crate) fn new(inner: W, sha: Option<fsutil::Hasher>, sniffer: &'a mut Sniffer) -> Self {
        Tee {
            inner,
            sha,
            size: 0,
            sniffer,
        }
    }

    /// The writer back, the byte count, and the SHA-256 when it was taken.
    pub(crate) fn finish(self) -> Result<(W, u64, Option<[u8; 32]>)> {
        let sha = self.sha.map(fsutil::Hasher::finish).transpose()?;
        Ok((self.inner, self.size, sha))
    }
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(sha) = self.sha.as_mut() {
            sha.update(&buf[..n]);
        }
        self.size += n as u64;
        self.sniffer.feed(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
