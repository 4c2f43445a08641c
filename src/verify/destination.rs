//! Where a verified bundle's payload goes: the [`Destination`] the core
//! drives member by member, as ripgrep's `Searcher` drives a `Sink`, and the
//! two the commands use: [`Discard`] (verify) and [`Dir`] (extract, and
//! import's outbox or HTTP spool). Export's read-back is its own, in
//! bundle/export.rs.

use std::io;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::{PayloadCheck, Verified};
use crate::base::error::{Code, Error, Result};
use crate::format::container::Hashing;
use crate::format::manifest::{HexDigest, Manifest, PayloadEntry};
use crate::io::fsutil;

/// What the verification core tells its destination, in this order: `begin`
/// once; for each payload member `member`, its content through `write`,
/// `written` at its end, then `checked` with what was established about it;
/// `finish` once the whole bundle verified. An error from any method refuses
/// the bundle (the core reports it as it reports its own). Every method has
/// a default that takes nothing, so a destination says only what it keeps.
pub trait Destination {
    /// Whether the SHA-256 of decrypted content is taken (a clear member's
    /// content digest is its signed one, known without hashing).
    fn plaintext_sha256(&self) -> Hashing {
        Hashing::Take
    }

    /// The manifest is signed by trusted keys, lists exactly the bundle's
    /// members and is fresh; no payload byte was read yet. What must be
    /// refused before the payload is read is refused here.
    fn begin(&mut self, _manifest: &Manifest) -> Result<()> {
        Ok(())
    }

    /// Member `p`'s content (clear, or decrypted) follows.
    fn member(&mut self, _manifest: &Manifest, _p: &PayloadEntry) -> Result<()> {
        Ok(())
    }

    /// The next bytes of the member's content, in order, each byte once.
    fn write(&mut self, _bytes: &[u8]) -> io::Result<()> {
        Ok(())
    }

    /// The member's content ended (it has not been judged yet).
    fn written(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// The member checked out: its digest matched and its content was
    /// validated as far as `check` says.
    fn checked(&mut self, _check: &PayloadCheck) -> Result<()> {
        Ok(())
    }

    /// The bundle verified: freshness was judged at `verified.decided_at`.
    fn finish(&mut self, _verified: &Verified) -> Result<()> {
        Ok(())
    }
}

/// Verify only: the content is checked and dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl Destination for Discard {}

/// Names the file a payload member becomes in a destination directory.
pub type Naming<'a> = &'a dyn Fn(&Manifest, &PayloadEntry) -> String;

/// How `Staged::publish` treats a target that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Fail with `OUTPUT-EXISTS` and leave it alone.
    Never,
    /// Replace it.
    Always,
    /// Leave it when it holds the same bytes (a re-run); fail otherwise.
    IfIdentical,
}

/// Private (0600) temporary files in a directory, one per member, to be
/// published by the caller (`into_staged`, then `Staged::publish`) under
/// the names `name` gives. Dropped, they are deleted.
pub struct Dir<'a> {
    dir: &'a Path,
    name: Naming<'a>,
    replace: Replace,
    plaintext: Hashing,
    /// The member being staged: its file and its target.
    current: Option<(NamedTempFile, PathBuf)>,
    /// Its writer, until its content ended.
    writer: Option<fsutil::EarlyWriteback>,
    staged: Staged,
}

impl<'a> Dir<'a> {
    /// Files for `dir`, named by `name`. With `Replace::Never` a target that
    /// exists is refused before any payload byte is read (extract without
    /// --force). `plaintext`: whether decrypted content is hashed (import
    /// lists it and checks re-runs by it; extract needs only the signed
    /// ciphertext digest).
    pub fn new(dir: &'a Path, name: Naming<'a>, replace: Replace, plaintext: Hashing) -> Dir<'a> {
        Dir {
            dir,
            name,
            replace,
            plaintext,
            current: None,
            writer: None,
            staged: Staged::default(),
        }
    }

    /// The files written, not yet published.
    pub fn into_staged(self) -> Staged {
        self.staged
    }
}

impl Destination for Dir<'_> {
    fn plaintext_sha256(&self) -> Hashing {
        self.plaintext
    }

    fn begin(&mut self, m: &Manifest) -> Result<()> {
        if self.replace != Replace::Never {
            return Ok(());
        }
        for p in &m.payload {
            let target = self.dir.join((self.name)(m, p));
            if target.exists() {
                return Err(Error::new(
                    Code::OutputExists,
                    format!("{} already exists", target.display()),
                ));
            }
        }
        Ok(())
    }

    fn member(&mut self, m: &Manifest, p: &PayloadEntry) -> Result<()> {
        let target = self.dir.join((self.name)(m, p));
        let temp = fsutil::temp_beside(&target, 0o600)?;
        // Written with early writeback (see `fsutil::EarlyWriteback`).
        let file = temp
            .as_file()
            .try_clone()
            .map_err(|e| Error::io_write(temp.path(), e))?;
        self.writer = Some(fsutil::EarlyWriteback::new(file)?);
        self.current = Some((temp, target));
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.writer {
            Some(w) => io::Write::write_all(w, bytes),
            None => Err(io::Error::other("no member is being written")),
        }
    }

    fn written(&mut self) -> io::Result<()> {
        self.writer.take().map_or(Ok(()), |w| w.finish().map(drop))
    }

    fn checked(&mut self, check: &PayloadCheck) -> Result<()> {
        self.writer = None;
        let Some((temp, target)) = self.current.take() else {
            return Err(Error::new(Code::Internal, "no member was staged"));
        };
        if check.encrypted && !check.decrypted {
            return Err(Error::new(
                Code::DecryptNoIdentity,
                format!("{} is encrypted; writing it out needs an identity", check.name),
            )
            .with_hint("pass --identity FILE (age identity or OpenSSH key), or --passphrase-file for a passphrase bundle"));
        }
        self.staged.files.push(StagedFile {
            temp,
            target,
            sha256: check.plaintext_sha256.clone(),
            size: check.plaintext_size.unwrap_or_default(),
        });
        Ok(())
    }
}

/// One payload file, written and synced in a private temporary file.
pub struct StagedFile {
    temp: NamedTempFile,
    /// Where it will be published.
    pub target: PathBuf,
    /// Its content's SHA-256 (`None` when it was not taken).
    pub sha256: Option<HexDigest>,
    /// Its size in bytes.
    pub size: u64,
}

impl StagedFile {
    /// The temporary file (for hand-overs that read it, such as HTTP).
    pub fn path(&self) -> &Path {
        self.temp.path()
    }
}

/// The payload files of a verified bundle, not yet published. Dropping it
/// deletes them.
#[derive(Default)]
pub struct Staged {
    /// One per payload member, in member order.
    pub files: Vec<StagedFile>,
}

impl Staged {
    /// Give every file the outbox's group when it has one (decision 74);
    /// the mode to publish them with: 0640 only when every file has it.
    pub(crate) fn grant(&self, access: fsutil::OutboxAccess) -> u32 {
        self.files
            .iter()
            .fold(0o640, |mode, f| mode & access.grant(f.temp.as_file()))
    }

    /// Publish every file: mode, fsync, rename, then fsync of each
    /// directory. Returns the published paths (also those left in place by
    /// `IfIdentical`).
    pub fn publish(self, mode: u32, replace: Replace) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut dirs: Vec<PathBuf> = Vec::new();
        for f in self.files {
            if replace == Replace::IfIdentical && f.target.exists() {
                f.same_as_target()?;
                out.push(f.target);
                continue;
            }
            let target = f.publish(mode, replace)?;
            let dir = fsutil::parent_dir(&target);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
            out.push(target);
        }
        for d in dirs {
            fsutil::sync_dir(&d)?;
        }
        Ok(out)
    }
}

impl StagedFile {
    /// The target that exists holds these very bytes (a re-run), or
    /// `OUTPUT-EXISTS`.
    fn same_as_target(&self) -> Result<()> {
        match (fsutil::sha256_file(&self.target), &self.sha256) {
            (Ok(have), Some(want)) if have == want.as_str() => Ok(()),
            _ => Err(Error::new(
                Code::OutputExists,
                format!("{} exists with other content", self.target.display()),
            )),
        }
    }

    /// Mode, fsync, rename (over the target only with `Replace::Always`).
    fn publish(self, mode: u32, replace: Replace) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let StagedFile { temp, target, .. } = self;
        let file = temp.as_file();
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io_write(&target, e))?;
        fsutil::fault_point(fsutil::Fault::PublishSynced);
        let result = if replace == Replace::Always {
            temp.persist(&target).map(drop).map_err(|e| e.error)
        } else {
            fsutil::persist_noclobber(temp, &target)
        };
        result.map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Error::new(
                    Code::OutputExists,
                    format!("{} already exists", target.display()),
                )
            } else {
                Error::io_write(&target, e)
            }
        })?;
        Ok(target)
    }
}
