//! The medium a bundle is read from, how it is opened, and what was read of it.

use super::*;

/// What a bundle is read from: a regular file, kept open for the whole run.
/// The trait exists so tests can put a medium that lies (different bytes on
/// a second read) under the real reader.
pub trait Medium: Read + Seek + Send {
    /// Size and times, compared at the end of a run: a bundle rewritten while
    /// it was read fails with `BUNDLE-CHANGED`.
    fn stamp(&self) -> io::Result<Stamp>;

    /// Up to `max` next bytes as a shared piece, for a medium that holds
    /// them in shared blocks already (export's device reader): `None` when
    /// it does not, and the reader copies into blocks of its own. An empty
    /// piece is the end of the medium.
    #[doc(hidden)]
    fn read_piece(&mut self, _max: usize) -> Option<io::Result<Piece>> {
        None
    }
}

/// A file's size, modification time and status-change time (seconds and
/// nanoseconds). The change time catches a rewrite that restored the
/// modification time afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Size in bytes.
    pub len: u64,
    /// Modification time: seconds since the Unix epoch, nanoseconds.
    pub mtime: (i64, i64),
    /// Status-change time: seconds since the Unix epoch, nanoseconds.
    pub ctime: (i64, i64),
}

impl Medium for File {
    fn stamp(&self) -> io::Result<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = self.metadata()?;
        Ok(Stamp {
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The device under the file, past the page cache (export's read-back).
impl Medium for crate::io::device::DeviceReader {
    fn stamp(&self) -> io::Result<Stamp> {
        self.file().stamp()
    }

    fn read_piece(&mut self, max: usize) -> Option<io::Result<Piece>> {
        Some(crate::io::device::DeviceReader::read_piece(self, max))
    }
}

/// Bytes in memory: a medium that cannot change under the reader, for a
/// library user who holds the bundle already (a download, a test).
impl Medium for io::Cursor<Vec<u8>> {
    fn stamp(&self) -> io::Result<Stamp> {
        Ok(Stamp {
            len: self.get_ref().len() as u64,
            mtime: (0, 0),
            ctime: (0, 0),
        })
    }
}

/// Open a bundle for reading: a regular file, or a clear error. A FIFO is
/// opened without blocking so it can be refused (reading one would consume
/// it, and a second read would see other bytes); devices and directories are
/// refused too.
pub(crate) fn open_bundle(path: &std::path::Path) -> Result<File> {
    open_with(path, rustix::fs::OFlags::empty())
}

/// [`open_bundle`], refusing a symbolic link (`O_NOFOLLOW`): what `import`
/// and `watch` open, so that the file judged is the one named, not what a
/// link on the medium points to.
pub(crate) fn open_bundle_nofollow(path: &std::path::Path) -> Result<File> {
    open_with(path, rustix::fs::OFlags::NOFOLLOW)
}

/// Open for reading without blocking (a FIFO opens at once) and without
/// taking a controlling terminal, plus `extra` flags; nothing checked yet.
pub(crate) fn open_unblocked(
    path: &std::path::Path,
    extra: rustix::fs::OFlags,
) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY | extra;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
}

fn open_with(path: &std::path::Path, extra: rustix::fs::OFlags) -> Result<File> {
    let file = open_unblocked(path, extra).map_err(|e| {
        if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            Error::new(
                Code::NotAFile,
                format!("{} is a symbolic link, not a bundle file", path.display()),
            )
            .with_hint("give the path of the file the link points to")
        } else {
            Error::io_read(path, e)
        }
    })?;
    let ft = file
        .metadata()
        .map_err(|e| Error::io_read(path, e))?
        .file_type();
    if !ft.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO (named pipe)"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(Error::new(
            Code::NotAFile,
            format!("{} is {what}, not a bundle file", path.display()),
        ));
    }
    // Regular files ignore O_NONBLOCK; clear it all the same.
    let _ = rustix::fs::fcntl_setfl(&file, rustix::fs::OFlags::empty());
    Ok(file)
}

/// Does the file end with airlock's zip trailer (Zip64 locator, then the
/// end-of-central-directory record)? A copy still in progress does not.
/// Reads the last 42 bytes of the descriptor (positioned reads only).
pub(crate) fn ends_with_trailer(f: &File) -> bool {
    use std::os::unix::fs::FileExt;
    let check = || -> io::Result<bool> {
        let len = f.metadata()?.len();
        if len < 98 {
            return Ok(false);
        }
        let mut t = [0u8; 42];
        f.read_exact_at(&mut t, len - 42)?;
        Ok(t[..4] == 0x0706_4b50u32.to_le_bytes() && t[20..24] == 0x0605_4b50u32.to_le_bytes())
    };
    check().unwrap_or(false)
}

pub(super) fn changed(msg: impl Into<String>) -> Error {
    Error::new(Code::BundleChanged, msg)
}

/// What one read of a bundle established about the file, whether or not it
/// verified: its size, and one contiguous range of it with the SHA-256 of
/// the bytes the read got there. Import records these for a refusal, so a
/// refusal costs no second read (docs/import.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadFacts {
    /// The file's size from `fstat` when the read began.
    pub size: u64,
    /// Where the hashed range starts: 0 for the sequential pass (a prefix;
    /// the whole file when `read_bytes == size`), else the end of the file
    /// the trailer check read before it refused (a suffix).
    pub read_offset: u64,
    /// Bytes in the hashed range (0 when nothing was read).
    pub read_bytes: u64,
    /// SHA-256 of those bytes as the read got them, lowercase hex.
    pub read_sha256: String,
}

impl ReadFacts {
    /// Nothing read yet from a file of `size` bytes.
    pub(super) fn unread(size: u64) -> ReadFacts {
        ReadFacts {
            size,
            read_offset: 0,
            read_bytes: 0,
            read_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest([])),
        }
    }

    /// The read got `bytes` at the end of the file; kept when it covers
    /// more than what is noted.
    pub(super) fn note_suffix(&mut self, parts: &[&[u8]]) {
        use sha2::Digest;
        let n: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if n <= self.read_bytes || n > self.size {
            return;
        }
        let mut h = sha2::Sha256::new();
        parts.iter().for_each(|p| h.update(p));
        self.read_offset = self.size - n;
        self.read_bytes = n;
        self.read_sha256 = hex::encode(h.finalize());
    }

    /// The sequential pass read the first `n` bytes, hashing to `sha`.
    pub(super) fn prefix(size: u64, n: u64, sha: [u8; 32]) -> ReadFacts {
        ReadFacts {
            size,
            read_offset: 0,
            read_bytes: n,
            read_sha256: hex::encode(sha),
        }
    }
}
