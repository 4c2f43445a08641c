//! A bundle opened once: the descriptor every later step reads (the one
//! verifying read, the claim's device and inode check), never its name.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::base::error::Result;
use crate::format::manifest::{Manifest, Timestamp};

/// A bundle opened once, and the name it was opened by (for messages and
/// the ledger). Every later step reads this descriptor, never the name.
#[derive(Debug)]
pub struct Opened {
    file: File,
    name: PathBuf,
}

impl Opened {
    /// Open `path` once, without following a symbolic link and without
    /// blocking (a FIFO, device, socket or directory is refused at once,
    /// by `fstat` of what was opened: `NOT-A-FILE`).
    pub fn open(path: &Path) -> Result<Opened> {
        let file = crate::format::container::open_bundle_nofollow(path)?;
        Ok(Opened {
            file,
            name: path.to_path_buf(),
        })
    }

    /// A descriptor opened by the caller (the watcher's claimed file).
    pub fn from_file(file: File, name: PathBuf) -> Opened {
        Opened { file, name }
    }

    /// The descriptor, for the one verifying read.
    pub fn into_file(self) -> File {
        self.file
    }

    /// The descriptor and the name, for the one verifying read and its
    /// messages.
    pub fn into_parts(self) -> (File, PathBuf) {
        (self.file, self.name)
    }

    /// The name it was opened by.
    pub fn path(&self) -> &Path {
        &self.name
    }

    /// What was opened: its device and inode (`fstat`), to detect a
    /// replacement by name later.
    pub fn identity(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        self.file.metadata().ok().map(|m| (m.dev(), m.ino()))
    }

    /// Whether what was opened ends with a bundle's zip trailer (a complete
    /// transfer), read through the descriptor.
    pub fn has_trailer(&self) -> bool {
        crate::format::container::ends_with_trailer(&self.file)
    }

    /// Its manifest's instance and creation time, read through the
    /// descriptor without verifying (only to order a batch: verification
    /// decides later, on its own read). `None` when it does not read.
    pub(crate) fn sort_key(&self) -> Option<((String, String), Timestamp)> {
        let f = self.file.try_clone().ok()?;
        let mut layout = super::open_layout(f).ok()?;
        let signed = super::read_signed(&mut layout).ok()?;
        let m = Manifest::parse(&signed.manifest).ok()?;
        Some((
            (
                m.source.principal().to_string(),
                m.source.server_id.unwrap_or_default(),
            ),
            m.created,
        ))
    }
}
