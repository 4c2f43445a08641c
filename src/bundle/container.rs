//! The canonical zip container: the one byte layout airlock writes, and a
//! strict reader that accepts that layout and nothing else.
//!
//! Every member is stored (no compression), carries a fixed timestamp and
//! mode, and Zip64 fields are always present, so the bytes of every header
//! follow from (name, size, CRC, offset) alone. The reader parses the few
//! variable fields, regenerates the headers and demands byte equality, so no
//! byte of a bundle is ignored: prepended or appended data, gaps, overlapping
//! members, extra fields, comments, data descriptors and local/central
//! disagreements all fail. See `docs/format.md` §2.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use serde::Serialize;

use crate::blocks::{Piece, Pool, SideSha};
use crate::error::{Code, Error, Result};
use crate::io::sizes::SHARED_BLOCK;

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;

/// Version 4.5: Zip64.
const VERSION_NEEDED: u16 = 45;
/// Upper byte 3 = Unix, so the external attributes carry a Unix mode.
const VERSION_MADE_BY: u16 = 0x0300 | 45;
/// 1980-01-01 00:00:00, the earliest DOS date: times live in the manifest.
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;
/// Regular file, mode 0644.
const EXTERNAL_ATTR: u32 = 0o100644 << 16;

/// Header and record lengths in bytes: fixed part, then airlock's one
/// Zip64 extra field where there is one.
const LOCAL_FIXED: u64 = 30;
const LOCAL_EXTRA: u64 = 20;
const CENTRAL_FIXED: u64 = 46;
const CENTRAL_EXTRA: u64 = 28;
const ZIP64_EOCD_LEN: u64 = 56;
const ZIP64_LOCATOR_LEN: u64 = 20;
const EOCD_LEN: u64 = 22;
const TAIL_LEN: u64 = ZIP64_EOCD_LEN + ZIP64_LOCATOR_LEN + EOCD_LEN;

/// Format limits (docs/format.md §5).
const MAX_MEMBERS: usize = 64;
const MAX_NAME_LEN: usize = 128;

/// One member as the container records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The member's name as stored (UTF-8, `/`-separated, checked by
    /// `check_name_syntax`).
    pub name: String,
    /// Offset of the local header.
    pub header_offset: u64,
    /// Length of the member's data in bytes (stored, so compressed and
    /// uncompressed sizes are both this).
    pub size: u64,
    /// CRC-32 of the member's data, as the headers record it.
    pub crc32: u32,
}

impl Entry {
    /// Offset of the first data byte.
    pub(crate) fn data_offset(&self) -> u64 {
        self.header_offset + LOCAL_FIXED + self.name.len() as u64 + LOCAL_EXTRA
    }

    /// Offset just past the last data byte.
    pub fn end(&self) -> u64 {
        self.data_offset() + self.size
    }
}

/// The canonical local header. Public so fixtures can build hostile zips byte
/// by byte (`examples/make_fixtures.rs`).
pub fn local_header(name: &str, size: u64, crc: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(LOCAL_FIXED as usize + name.len() + LOCAL_EXTRA as usize);
    h.extend_from_slice(&LOCAL_SIG.to_le_bytes());
    h.extend_from_slice(&VERSION_NEEDED.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // flags
    h.extend_from_slice(&0u16.to_le_bytes()); // method: stored
    h.extend_from_slice(&DOS_TIME.to_le_bytes());
    h.extend_from_slice(&DOS_DATE.to_le_bytes());
    h.extend_from_slice(&crc.to_le_bytes());
    h.extend_from_slice(&u32::MAX.to_le_bytes()); // compressed size: in Zip64 extra
    h.extend_from_slice(&u32::MAX.to_le_bytes()); // uncompressed size: in Zip64 extra
    h.extend_from_slice(&(name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(LOCAL_EXTRA as u16).to_le_bytes());
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // Zip64 extended information
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes()); // uncompressed
    h.extend_from_slice(&size.to_le_bytes()); // compressed
    h
}

/// The canonical central directory entry.
pub fn central_header(e: &Entry) -> Vec<u8> {
    let mut h = Vec::with_capacity(CENTRAL_FIXED as usize + e.name.len() + CENTRAL_EXTRA as usize);
    h.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
    h.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
    h.extend_from_slice(&VERSION_NEEDED.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // flags
    h.extend_from_slice(&0u16.to_le_bytes()); // method
    h.extend_from_slice(&DOS_TIME.to_le_bytes());
    h.extend_from_slice(&DOS_DATE.to_le_bytes());
    h.extend_from_slice(&e.crc32.to_le_bytes());
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(CENTRAL_EXTRA as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // comment length
    h.extend_from_slice(&0u16.to_le_bytes()); // disk number start
    h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    h.extend_from_slice(&EXTERNAL_ATTR.to_le_bytes());
    h.extend_from_slice(&u32::MAX.to_le_bytes()); // local header offset: in Zip64 extra
    h.extend_from_slice(e.name.as_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&24u16.to_le_bytes());
    h.extend_from_slice(&e.size.to_le_bytes());
    h.extend_from_slice(&e.size.to_le_bytes());
    h.extend_from_slice(&e.header_offset.to_le_bytes());
    h
}

/// The canonical trailer: Zip64 end record, locator, end record.
pub fn tail(count: u64, cd_offset: u64, cd_size: u64) -> Vec<u8> {
    let zip64_eocd_offset = cd_offset + cd_size;
    let mut t = Vec::with_capacity(TAIL_LEN as usize);
    t.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
    t.extend_from_slice(&(ZIP64_EOCD_LEN - 12).to_le_bytes());
    t.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
    t.extend_from_slice(&VERSION_NEEDED.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes()); // this disk
    t.extend_from_slice(&0u32.to_le_bytes()); // disk with central directory
    t.extend_from_slice(&count.to_le_bytes());
    t.extend_from_slice(&count.to_le_bytes());
    t.extend_from_slice(&cd_size.to_le_bytes());
    t.extend_from_slice(&cd_offset.to_le_bytes());
    t.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&zip64_eocd_offset.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes()); // total disks
    t.extend_from_slice(&EOCD_SIG.to_le_bytes());
    t.extend_from_slice(&0u16.to_le_bytes());
    t.extend_from_slice(&0u16.to_le_bytes());
    t.extend_from_slice(&u16::MAX.to_le_bytes());
    t.extend_from_slice(&u16::MAX.to_le_bytes());
    t.extend_from_slice(&u32::MAX.to_le_bytes());
    t.extend_from_slice(&u32::MAX.to_le_bytes());
    t.extend_from_slice(&0u16.to_le_bytes()); // comment length
    t
}

fn structure(msg: impl Into<String>) -> Error {
    Error::new(Code::ZipStructure, msg)
}

// ---------------------------------------------------------------------------
// Writer

/// Writes members one after another in canonical form. Member data is
/// streamed; the local header is patched once size and CRC are known, so the
/// target must be seekable (airlock always writes to a temporary file).
pub struct Writer<W: Write + Seek> {
    out: W,
    entries: Vec<Entry>,
    pos: u64,
}

impl<W: Write + Seek> Writer<W> {
    /// A writer for an empty `out`: the zip starts at offset 0 and headers
    /// are patched by absolute offset.
    pub fn new(out: W) -> Self {
        Writer {
            out,
            entries: Vec::new(),
            pos: 0,
        }
    }

    /// The members finished so far, in write order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Add a member whose bytes are all in memory (its header is final when
    /// written: nothing is patched).
    pub fn add_bytes(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        let mut m = self.begin_known(name, data.len() as u64, crc32fast::hash(data))?;
        m.write_all(data)?;
        m.finish()?;
        Ok(())
    }

    /// Start a streamed member. Write its data to the returned handle, then
    /// call `finish`.
    pub fn begin(&mut self, name: &str) -> io::Result<MemberWriter<'_, W>> {
        self.begin_known(name, 0, 0)
    }

    /// Start a member whose size and CRC-32 are known beforehand: the
    /// header written now is final when the data agrees; `finish` patches
    /// it only if the data disagreed.
    fn begin_known(&mut self, name: &str, size: u64, crc: u32) -> io::Result<MemberWriter<'_, W>> {
        let header_offset = self.pos;
        let header = local_header(name, size, crc);
        self.out.write_all(&header)?;
        self.pos += header.len() as u64;
        Ok(MemberWriter {
            writer: self,
            name: name.to_string(),
            header_offset,
            size: 0,
            crc: crc32fast::Hasher::new(),
            written: (size, crc),
        })
    }

    /// Flush buffered bytes to the inner writer (so another handle on the
    /// same file can read them).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Write the central directory and trailer; return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let cd_offset = self.pos;
        let mut cd = Vec::new();
        for e in &self.entries {
            cd.extend_from_slice(&central_header(e));
        }
        self.out.write_all(&cd)?;
        let t = tail(self.entries.len() as u64, cd_offset, cd.len() as u64);
        self.out.write_all(&t)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A member being streamed into the container.
pub struct MemberWriter<'a, W: Write + Seek> {
    writer: &'a mut Writer<W>,
    name: String,
    header_offset: u64,
    size: u64,
    crc: crc32fast::Hasher,
    /// Size and CRC in the header as written.
    written: (u64, u32),
}

impl<W: Write + Seek> MemberWriter<'_, W> {
    /// Patch the local header with the final size and CRC, unless it holds
    /// them already.
    pub fn finish(self) -> io::Result<Entry> {
        let crc = self.crc.finalize();
        let w = self.writer;
        if self.written != (self.size, crc) {
            let header = local_header(&self.name, self.size, crc);
            w.out.flush()?;
            w.out.seek(SeekFrom::Start(self.header_offset))?;
            w.out.write_all(&header)?;
            w.out.flush()?;
            w.out.seek(SeekFrom::End(0))?;
        }
        let entry = Entry {
            name: self.name,
            header_offset: self.header_offset,
            size: self.size,
            crc32: crc,
        };
        w.entries.push(entry.clone());
        Ok(entry)
    }
}

impl<W: Write + Seek> Write for MemberWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.writer.out.write(buf)?;
        self.crc.update(&buf[..n]);
        self.size += n as u64;
        self.writer.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.out.flush()
    }
}

// ---------------------------------------------------------------------------
// Names

/// Syntax every member name must have: `manifest.json`, `payload/NAME` or
/// `signatures/NAME`, where NAME is 1..=MAX_NAME_LEN of `[A-Za-z0-9._-]`, not
/// starting with a dot. This rules out traversal, absolute paths,
/// directories, backslashes, control characters and Unicode look-alikes.
pub(crate) fn check_name_syntax(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::new(
            Code::ZipName,
            format!(
                "member name {:?} is not allowed: {why}",
                name.escape_debug().to_string()
            ),
        )
    };
    if name.len() > MAX_NAME_LEN {
        return Err(bad("too long"));
    }
    if name == "manifest.json" {
        return Ok(());
    }
    let base = if let Some(b) = name.strip_prefix("payload/") {
        b
    } else if let Some(b) = name.strip_prefix("signatures/") {
        b
    } else {
        return Err(bad(
            "only manifest.json, payload/* and signatures/* may appear",
        ));
    };
    if base.is_empty() {
        return Err(bad("empty file name"));
    }
    if base.starts_with('.') {
        return Err(bad("file name starts with a dot"));
    }
    if !base
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(bad(
            "only letters, digits, '.', '_' and '-' may appear after the directory",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The medium

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
impl Medium for crate::device::DeviceReader {
    fn stamp(&self) -> io::Result<Stamp> {
        self.file().stamp()
    }

    fn read_piece(&mut self, max: usize) -> Option<io::Result<Piece>> {
        Some(crate::device::DeviceReader::read_piece(self, max))
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

fn changed(msg: impl Into<String>) -> Error {
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
    fn unread(size: u64) -> ReadFacts {
        ReadFacts {
            size,
            read_offset: 0,
            read_bytes: 0,
            read_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest([])),
        }
    }

    /// The read got `bytes` at the end of the file; kept when it covers
    /// more than what is noted.
    fn note_suffix(&mut self, parts: &[&[u8]]) {
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
    fn prefix(size: u64, n: u64, sha: [u8; 32]) -> ReadFacts {
        ReadFacts {
            size,
            read_offset: 0,
            read_bytes: n,
            read_sha256: hex::encode(sha),
        }
    }
}

// ---------------------------------------------------------------------------
// Strict reader

/// A container whose layout has been checked. Member data is not yet read.
pub struct Reader {
    medium: Box<dyn Medium>,
    stamp: Stamp,
    entries: Vec<Entry>,
    cd_offset: u64,
    /// The end of the file `open` read (trailer, central directory).
    suffix: ReadFacts,
    /// The sequential pass's hash of what it has read so far.
    pass_sha: Option<SideSha>,
    /// The pass's prefix, once its hash was finished.
    prefix: Option<ReadFacts>,
}

fn read_exact_at(file: &mut dyn Medium, offset: u64, buf: &mut [u8]) -> Result<()> {
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(buf))
        .map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                structure("the container ends early")
            } else {
                Error::new(Code::IoRead, format!("cannot read bundle: {e}"))
            }
        })
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

/// The trailer's verdict: member count, central directory offset and size.
fn read_tail(
    file: &mut dyn Medium,
    len: u64,
    facts: &mut ReadFacts,
) -> Result<(u64, u64, u64, Vec<u8>)> {
    if len < TAIL_LEN {
        return Err(Error::new(
            Code::NotABundle,
            format!("file is {len} bytes, too short to be a bundle"),
        ));
    }
    let mut t = vec![0u8; TAIL_LEN as usize];
    read_exact_at(file, len - TAIL_LEN, &mut t)?;
    facts.note_suffix(&[&t]);
    let eocd = &t[(ZIP64_EOCD_LEN + ZIP64_LOCATOR_LEN) as usize..];
    if u32_at(eocd, 0) != EOCD_SIG {
        // Distinguish "not a zip at all" from "zip with junk after it".
        let back = len.min(64 * 1024);
        let mut w = vec![0u8; back as usize];
        read_exact_at(file, len - back, &mut w)?;
        facts.note_suffix(&[&w]);
        if w.windows(4).any(|x| x == EOCD_SIG.to_le_bytes()) {
            return Err(structure("data follows the end of the zip"));
        }
        return Err(Error::new(
            Code::NotABundle,
            "no zip end-of-central-directory record at the end of the file",
        ));
    }
    if u32_at(&t, 0) != ZIP64_EOCD_SIG {
        return Err(structure(
            "no Zip64 end-of-central-directory record where airlock puts it",
        ));
    }
    let count = u64_at(&t, 24);
    let cd_size = u64_at(&t, 40);
    let cd_offset = u64_at(&t, 48);
    if count == 0 || count > MAX_MEMBERS as u64 {
        return Err(Error::new(
            Code::ZipLimit,
            format!("the bundle declares {count} members; the limit is 1..={MAX_MEMBERS}"),
        ));
    }
    let max_cd = count * (CENTRAL_FIXED + MAX_NAME_LEN as u64 + CENTRAL_EXTRA);
    if cd_size > max_cd {
        return Err(structure(
            "the central directory is larger than its entries allow",
        ));
    }
    if cd_offset.checked_add(cd_size) != Some(len - TAIL_LEN) {
        return Err(structure(
            "the central directory does not end where the trailer starts (data before, after or inside the zip)",
        ));
    }
    if tail(count, cd_offset, cd_size) != t {
        return Err(structure("the zip trailer is not in canonical form"));
    }
    Ok((count, cd_offset, cd_size, t))
}

/// Parse the central directory into entries, each checked for canonical form.
fn parse_central(cd: &[u8], count: u64) -> Result<Vec<Entry>> {
    let mut entries = Vec::with_capacity(count as usize);
    let mut p = 0usize;
    for i in 0..count {
        if cd.len() - p < CENTRAL_FIXED as usize {
            return Err(structure("the central directory is truncated"));
        }
        let h = &cd[p..];
        if u32_at(h, 0) != CENTRAL_SIG {
            return Err(structure(format!(
                "central directory entry {i} has a bad signature"
            )));
        }
        let name_len = u16_at(h, 28) as usize;
        let extra_len = u16_at(h, 30) as u64;
        if name_len == 0 || name_len > MAX_NAME_LEN {
            return Err(Error::new(
                Code::ZipName,
                format!("central directory entry {i} has a name of {name_len} bytes"),
            ));
        }
        if extra_len != CENTRAL_EXTRA {
            return Err(structure(format!(
                "central directory entry {i} is not canonical"
            )));
        }
        let total = CENTRAL_FIXED as usize + name_len + CENTRAL_EXTRA as usize;
        if cd.len() - p < total {
            return Err(structure("the central directory is truncated"));
        }
        let name_bytes = &h[CENTRAL_FIXED as usize..CENTRAL_FIXED as usize + name_len];
        let name = std::str::from_utf8(name_bytes)
            .map_err(|_| {
                Error::new(
                    Code::ZipName,
                    format!("central directory entry {i} has a name that is not UTF-8"),
                )
            })?
            .to_string();
        check_name_syntax(&name)?;
        let x = CENTRAL_FIXED as usize + name_len;
        let entry = Entry {
            crc32: u32_at(h, 16),
            size: u64_at(h, x + 4),
            header_offset: u64_at(h, x + 20),
            name,
        };
        if central_header(&entry) != h[..total] {
            return Err(structure(format!(
                "central directory entry for {} is not in canonical form",
                entry.name
            )));
        }
        entries.push(entry);
        p += total;
    }
    if p != cd.len() {
        return Err(structure("bytes left over in the central directory"));
    }
    // Duplicate names, exact or differing only in case (case-insensitive
    // file systems would merge them on extraction).
    let mut names = std::collections::HashSet::new();
    for e in &entries {
        if !names.insert(e.name.to_ascii_lowercase()) {
            return Err(Error::new(
                Code::ZipDuplicate,
                format!("the member name {} appears more than once", e.name),
            ));
        }
    }
    Ok(entries)
}

impl Reader {
    /// Check the whole layout: trailer, central directory, every local header,
    /// contiguity from offset 0 to the end of the file, names.
    pub fn open<M: Medium + 'static>(medium: M) -> Result<Reader> {
        Reader::open_noting(medium, &mut None)
    }

    /// `open`, noting in `facts` what it read, also when it refuses: the
    /// size once the file was stat'ed, then the end of the file it read.
    pub(crate) fn open_noting<M: Medium + 'static>(
        medium: M,
        facts: &mut Option<ReadFacts>,
    ) -> Result<Reader> {
        let mut medium: Box<dyn Medium> = Box::new(medium);
        let stamp = medium
            .stamp()
            .map_err(|e| Error::new(Code::IoRead, format!("cannot stat bundle: {e}")))?;
        let len = stamp.len;
        let noted = facts.insert(ReadFacts::unread(len));
        let (count, cd_offset, cd_size, t) = read_tail(medium.as_mut(), len, noted)?;
        let mut cd = vec![0u8; cd_size as usize];
        read_exact_at(medium.as_mut(), cd_offset, &mut cd)?;
        // The central directory ends where the trailer starts (read_tail).
        noted.note_suffix(&[&cd, &t]);
        let entries = parse_central(&cd, count)?;

        // Contiguity: members follow each other from offset 0 and the last
        // one ends where the central directory starts.
        let mut expect = 0u64;
        for e in &entries {
            if e.header_offset != expect {
                return Err(structure(format!(
                    "member {} starts at offset {} instead of {} (gap, overlap or reordering)",
                    e.name, e.header_offset, expect
                )));
            }
            let end = e
                .data_offset()
                .checked_add(e.size)
                .filter(|end| *end <= cd_offset)
                .ok_or_else(|| {
                    structure(format!("member {} runs past the central directory", e.name))
                })?;
            let want = local_header(&e.name, e.size, e.crc32);
            let mut got = vec![0u8; want.len()];
            read_exact_at(medium.as_mut(), e.header_offset, &mut got)?;
            if got != want {
                return Err(structure(format!(
                    "the local header of {} disagrees with the central directory",
                    e.name
                )));
            }
            expect = end;
        }
        if expect != cd_offset {
            return Err(structure(
                "data between the last member and the central directory",
            ));
        }
        Ok(Reader {
            medium,
            stamp,
            entries,
            cd_offset,
            suffix: noted.clone(),
            pass_sha: None,
            prefix: None,
        })
    }

    /// What this read established so far: the sequential pass's prefix
    /// once it read anything and was hashing (`pass(true)`), else the end
    /// of the file `open` read. Finishes the pass's hash.
    pub(crate) fn facts(&mut self) -> ReadFacts {
        if let Some(h) = self.pass_sha.take() {
            let n = h.fed;
            if let Ok(sha) = h.finish() {
                self.prefix = Some(ReadFacts::prefix(self.stamp.len, n, sha));
            }
        }
        match &self.prefix {
            Some(p) if p.read_bytes > 0 => p.clone(),
            _ => self.suffix.clone(),
        }
    }

    /// The members in central-directory order (which is also file order).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Read a small member whole, checking its CRC and an upper bound.
    pub fn read_small(&mut self, entry: &Entry, limit: u64) -> Result<Vec<u8>> {
        if entry.size > limit {
            return Err(Error::new(
                Code::ZipLimit,
                format!(
                    "{} is {} bytes; the limit is {limit}",
                    entry.name, entry.size
                ),
            ));
        }
        let mut buf = Vec::with_capacity(entry.size as usize);
        let mut r = self.member(entry)?;
        r.read_to_end(&mut buf)
            .map_err(|e| member_read_error(entry, e))?;
        Ok(buf)
    }

    /// A reader over one member's data that checks the CRC when it reaches the
    /// end (an error is returned from the final `read`).
    pub fn member(&mut self, entry: &Entry) -> Result<MemberReader<'_>> {
        self.medium
            .seek(SeekFrom::Start(entry.data_offset()))
            .map_err(|e| Error::new(Code::IoRead, format!("cannot read bundle: {e}")))?;
        // A small member (the manifest, a signature) gets a block of its size.
        let size = entry.size.clamp(1, SHARED_BLOCK as u64) as usize;
        Ok(MemberReader::new(
            &mut *self.medium,
            Blocks::Own(Pool::new(size, 1)),
            entry,
            None,
        ))
    }

    /// Start the one sequential read of the whole file, from offset 0 to its
    /// end. With `Hashing::Take`, every byte it returns is also fed to the bundle's
    /// SHA-256 for the ledger (on a thread of its own), and every structural
    /// byte is compared with what `open` checked: a medium that answers
    /// differently the second time fails with `BUNDLE-CHANGED`.
    pub(crate) fn pass(&mut self, hash: Hashing) -> Result<Pass<'_>> {
        self.medium
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::new(Code::IoRead, format!("cannot read bundle: {e}")))?;
        self.pass_sha = match hash {
            Hashing::Take => Some(SideSha::spawn("bundle-sha256")?),
            Hashing::Skip => None,
        };
        self.prefix = None;
        Ok(Pass {
            reader: self,
            next: 0,
            pool: Pool::new(SHARED_BLOCK, READ_POOL),
        })
    }

    /// Has the file's size or time changed since `open`?
    pub(crate) fn check_unchanged(&self) -> Result<()> {
        let now = self
            .medium
            .stamp()
            .map_err(|e| Error::new(Code::IoRead, format!("cannot stat bundle: {e}")))?;
        if now != self.stamp {
            return Err(changed(format!(
                "the bundle file changed while it was read (size {} -> {}, modified {}.{:09} -> {}.{:09})",
                self.stamp.len, now.len, self.stamp.mtime.0, self.stamp.mtime.1, now.mtime.0, now.mtime.1
            )));
        }
        Ok(())
    }
}

/// Blocks of the pass: each consumer queues a few (`blocks::QUEUE`, the
/// parser 4), and a block is back only when the slowest one is done with it.
const READ_POOL: usize = 8;

/// The sequential pass over a bundle: members in file order, then the
/// central directory and trailer. See `Reader::pass`.
pub(crate) struct Pass<'a> {
    reader: &'a mut Reader,
    /// Index of the next member.
    next: usize,
    pool: Pool,
}

impl Pass<'_> {
    /// Read exactly `want.len()` bytes and demand they equal `want`.
    fn expect(&mut self, want: &[u8], what: &str) -> Result<()> {
        let mut got = vec![0u8; want.len()];
        self.reader
            .medium
            .read_exact(&mut got)
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => {
                    changed(format!("the bundle ended early on a second read ({what})"))
                }
                _ => Error::new(Code::IoRead, format!("cannot read bundle: {e}")),
            })?;
        if got != want {
            return Err(changed(format!(
                "the medium returned different bytes for {what} on a second read"
            )));
        }
        if let Some(h) = self.reader.pass_sha.as_mut() {
            h.feed(Piece::owned(got));
        }
        Ok(())
    }

    /// The next member in file order: its local header is checked again and
    /// a reader over its data returned (CRC checked at its end).
    pub(crate) fn next_member(&mut self) -> Result<Option<(Entry, MemberReader<'_>)>> {
        let Some(e) = self.reader.entries.get(self.next).cloned() else {
            return Ok(None);
        };
        self.next += 1;
        let header = local_header(&e.name, e.size, e.crc32);
        self.expect(&header, &format!("the local header of {}", e.name))?;
        let r = MemberReader::new(
            &mut *self.reader.medium,
            Blocks::Pass(&mut self.pool),
            &e,
            self.reader.pass_sha.as_mut(),
        );
        Ok(Some((e, r)))
    }

    /// After the last member: the central directory and trailer again, then
    /// the end of the file, then the file's size and times. Returns the
    /// SHA-256 of every byte read, when asked for.
    pub fn finish(mut self) -> Result<Option<[u8; 32]>> {
        if self.next != self.reader.entries.len() {
            return Err(Error::new(
                Code::Internal,
                "the sequential read stopped before the last member",
            ));
        }
        let mut cd = Vec::new();
        for e in &self.reader.entries {
            cd.extend_from_slice(&central_header(e));
        }
        let t = tail(
            self.reader.entries.len() as u64,
            self.reader.cd_offset,
            cd.len() as u64,
        );
        self.expect(&cd, "the central directory")?;
        self.expect(&t, "the zip trailer")?;
        let mut probe = [0u8; 1];
        match self.reader.medium.read(&mut probe) {
            Ok(0) => {}
            Ok(_) => return Err(changed("the bundle file grew while it was read")),
            Err(e) => return Err(Error::new(Code::IoRead, format!("cannot read bundle: {e}"))),
        }
        self.reader.check_unchanged()?;
        let Some(h) = self.reader.pass_sha.take() else {
            return Ok(None);
        };
        let n = h.fed;
        let sha = h.finish()?;
        self.reader.prefix = Some(ReadFacts::prefix(self.reader.stamp.len, n, sha));
        Ok(Some(sha))
    }
}

/// Whether a SHA-256 is taken on the way (of a whole bundle, a member's
/// content): `Skip` when nobody needs it, so none is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hashing {
    /// Take it.
    Take,
    /// Do not compute it: it is `None` where it would be reported.
    #[default]
    Skip,
}

/// Turn an error from a `MemberReader` back into an airlock error.
pub(crate) fn member_read_error(entry: &Entry, e: io::Error) -> Error {
    read_error(&entry.name, e)
}

fn read_error(name: &str, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::InvalidData {
        Error::new(Code::ZipCrc, format!("{name}: {e}"))
    } else if e.kind() == io::ErrorKind::UnexpectedEof {
        structure(format!("{name} ends early"))
    } else {
        Error::new(Code::IoRead, format!("cannot read {name} from bundle: {e}"))
    }
}

/// Where a member reader's blocks come from: the pass's pool, or one of its
/// own for a member read alone.
enum Blocks<'a> {
    Pass(&'a mut Pool),
    Own(Pool),
}

impl Blocks<'_> {
    fn pool(&mut self) -> &mut Pool {
        match self {
            Blocks::Pass(p) => p,
            Blocks::Own(p) => p,
        }
    }
}

/// One member's data: bounded to its size, CRC-checked at its end, and fed to
/// the whole-file hash during a sequential pass. Read it block by block with
/// `next_piece` (the blocks are shared, not copied), or through `Read`; a
/// verifying read also takes the member's own SHA-256 on the way (`tap`).
pub struct MemberReader<'a> {
    medium: &'a mut dyn Medium,
    blocks: Blocks<'a>,
    name: String,
    crc: crc32fast::Hasher,
    expected: u32,
    size: u64,
    remaining: u64,
    whole: Option<&'a mut SideSha>,
    /// The piece `Read` is serving, and how much of it was served.
    current: Option<(Piece, usize)>,
    tap: Option<Tap>,
}

/// How many of a member's first bytes a tapped reader keeps: enough for an
/// age header and the payload nonce after it.
pub(crate) const HEAD_LEN: usize = 64 * 1024;

/// The first bytes a tapped reader handed out, shared so that they can be
/// looked at while another reader (age) holds the member reader.
pub(crate) type Head = std::rc::Rc<std::cell::RefCell<Vec<u8>>>;

/// What a verifying read takes of a member besides its CRC.
struct Tap {
    /// SHA-256 of the member's bytes, on a thread of its own, fed the
    /// blocks without a copy.
    sha: SideSha,
    /// The first `HEAD_LEN` bytes handed out, exactly as handed out.
    head: Head,
    /// The reader's own complaint (CRC, short member, I/O), kept even when
    /// age or another consumer reported it under its own name.
    failed: Option<Error>,
}

impl<'a> MemberReader<'a> {
    fn new(
        medium: &'a mut dyn Medium,
        blocks: Blocks<'a>,
        entry: &Entry,
        whole: Option<&'a mut SideSha>,
    ) -> MemberReader<'a> {
        MemberReader {
            medium,
            blocks,
            name: entry.name.clone(),
            crc: crc32fast::Hasher::new(),
            expected: entry.crc32,
            size: entry.size,
            remaining: entry.size,
            whole,
            current: None,
            tap: None,
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// From here on, also take the member's SHA-256 and keep its first
    /// bytes and the first complaint (see `digest`, `head`, `failure`).
    pub(crate) fn tap(&mut self) -> Result<()> {
        self.tap = Some(Tap {
            sha: SideSha::spawn("sha256")?,
            head: Head::default(),
            failed: None,
        });
        Ok(())
    }

    /// The first bytes handed out so far (empty when not tapped).
    pub(crate) fn head(&self) -> Head {
        self.tap
            .as_ref()
            .map(|t| t.head.clone())
            .unwrap_or_default()
    }

    /// The reader's own first complaint, taken (never one when not tapped).
    pub(crate) fn failure(&mut self) -> Option<Error> {
        self.tap.as_mut().and_then(|t| t.failed.take())
    }

    /// The SHA-256 of the bytes read (`tap` must have been called).
    pub(crate) fn digest(&mut self) -> Result<[u8; 32]> {
        match self.tap.take() {
            Some(t) => t.sha.finish(),
            None => Err(Error::new(Code::Internal, "the member read was not tapped")),
        }
    }

    /// Keep what was handed out, up to `HEAD_LEN` bytes in all.
    fn keep_head(&self, bytes: &[u8]) {
        let Some(t) = &self.tap else { return };
        let mut head = t.head.borrow_mut();
        if head.len() < HEAD_LEN {
            let take = bytes.len().min(HEAD_LEN - head.len());
            head.extend_from_slice(&bytes[..take]);
        }
    }

    /// Up to `want` bytes read from the medium into a block of the
    /// reader's pool (empty at the end of the medium).
    fn read_own_block(&mut self, want: usize) -> io::Result<Piece> {
        let mut buf = self
            .blocks
            .pool()
            .take()
            .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e.cause))?;
        let want = want.min(buf.len());
        let mut n = 0;
        while n < want {
            match self.medium.read(&mut buf[n..want]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.blocks.pool().share(buf, n))
    }

    /// The next block of the member (up to `SHARED_BLOCK` bytes), `None` at
    /// its end. The block that completes the member is returned only if the
    /// CRC matches (else `InvalidData`); a member shorter than its entry is
    /// `UnexpectedEof`.
    pub(crate) fn next_piece(&mut self) -> io::Result<Option<Piece>> {
        if let Some((p, at)) = self.current.take() {
            // Mixed use: the rest of what `Read` had not served yet.
            if at < p.bytes().len() {
                let rest = p.slice(at, p.bytes().len());
                self.keep_head(rest.bytes());
                return Ok(Some(rest));
            }
        }
        let piece = self.pull()?;
        if let Some(p) = &piece {
            self.keep_head(p.bytes());
        }
        Ok(piece)
    }

    /// The next block from the medium, counted, CRC-checked and hashed; a
    /// failure is noted by the tap.
    fn pull(&mut self) -> io::Result<Option<Piece>> {
        let piece = self.read_piece();
        match &piece {
            Ok(Some(p)) => {
                if let Some(t) = self.tap.as_mut() {
                    t.sha.feed(p.clone());
                }
            }
            Ok(None) => {}
            Err(e) => {
                let name = &self.name;
                if let Some(t) = self.tap.as_mut().filter(|t| t.failed.is_none()) {
                    if e.kind() != io::ErrorKind::Interrupted {
                        let copy = io::Error::new(e.kind(), e.to_string());
                        t.failed = Some(read_error(name, copy));
                    }
                }
            }
        }
        piece
    }

    fn read_piece(&mut self) -> io::Result<Option<Piece>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        crate::fsutil::injected_read_error(self.size - self.remaining)?;
        let want = self.remaining.min(SHARED_BLOCK as u64) as usize;
        let piece = match self.medium.read_piece(want) {
            Some(p) => p?,
            None => self.read_own_block(want)?,
        };
        if piece.bytes().is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "member ends early",
            ));
        }
        let n = piece.bytes().len();
        self.crc.update(piece.bytes());
        if let Some(h) = self.whole.as_mut() {
            h.feed(piece.clone());
        }
        self.remaining -= n as u64;
        if self.remaining == 0 && self.crc.clone().finalize() != self.expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "CRC-32 mismatch",
            ));
        }
        Ok(Some(piece))
    }

    /// A failure of this reader as an airlock error (see `member_read_error`).
    pub(crate) fn error(&self, e: io::Error) -> Error {
        read_error(&self.name, e)
    }

    /// Read what is left of the member. Returns the byte count.
    pub(crate) fn drain(&mut self) -> Result<u64> {
        let mut n = 0u64;
        loop {
            match self.next_piece() {
                Ok(None) => return Ok(n),
                Ok(Some(p)) => n += p.bytes().len() as u64,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(read_error(&self.name, err)),
            }
        }
    }
}

impl Read for MemberReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (piece, at) = match self.current.take() {
            Some((p, at)) if at < p.bytes().len() => (p, at),
            used => {
                // Back to the pool before the next block is taken from it.
                drop(used);
                match self.pull()? {
                    Some(p) => (p, 0),
                    None => return Ok(0),
                }
            }
        };
        let rest = &piece.bytes()[at..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        // What was handed out, exactly: age reads the header through here.
        self.keep_head(&rest[..n]);
        self.current = Some((piece, at + n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
