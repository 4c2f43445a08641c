//! Reading one member: its bytes, checked against the central directory, hashed on the way.

use super::*;

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
pub(super) enum Blocks<'a> {
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
    pub(super) fn new(
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
        crate::io::fsutil::injected_read_error(self.size - self.remaining)?;
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
