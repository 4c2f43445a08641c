//! The writer: members one after another in canonical form.

use super::*;

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
