//! A counting, hashing pass-through writer: what export and verification
//! use to take a member's size and SHA-256 on its way to its destination.

use std::io::{self, Write};

use crate::fsutil;
use crate::usage::Sniffer;

/// Counts and hashes bytes on their way to another writer, optionally
/// feeding them to the usage-file sniffer too.
pub(crate) struct Tee<'a, W: Write> {
    /// Where the bytes go.
    pub(crate) inner: W,
    /// SHA-256 of every byte `inner` accepted.
    pub(crate) sha: fsutil::Hasher,
    /// Number of bytes `inner` accepted.
    pub(crate) size: u64,
    /// Also fed every accepted byte, when set.
    pub(crate) sniffer: Option<&'a mut Sniffer>,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.size += n as u64;
        if let Some(s) = self.sniffer.as_mut() {
            s.feed(&buf[..n]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
