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

use crate::base::error::{Code, Error, Result};
use crate::io::blocks::{Piece, Pool, SideSha};
use crate::io::sizes::SHARED_BLOCK;

mod medium;
mod member;
mod read;
mod write;
pub use medium::*;
pub use member::*;
pub use read::*;
pub use write::*;

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
pub(crate) const MAX_NAME_LEN: usize = 128;

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
        return Err(bad(&format!(
            "{} bytes long, more than {MAX_NAME_LEN}",
            name.len()
        )));
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

#[cfg(test)]
mod tests;
