//! The strict reader: a container's layout checked before any member is read, and the sequential pass.

use super::*;

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
        let (entry, total) = parse_central_entry(&cd[p..], i)?;
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

/// One entry of the central directory, at the start of `h` (the directory
/// from there on), checked; with its length.
fn parse_central_entry(h: &[u8], i: u64) -> Result<(Entry, usize)> {
    if h.len() < CENTRAL_FIXED as usize {
        return Err(structure("the central directory is truncated"));
    }
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
    if h.len() < total {
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
    Ok((entry, total))
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
