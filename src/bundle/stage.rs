//! Payload staging for export (issue #20): each input byte is read once,
//! into shared 1 MiB blocks that other threads read in place — the
//! usage-file parser, the SHA-256 hashers, the encryption — while this
//! thread reads.
//!
//! Two digests cover the payload: the member's SHA-256 (for the manifest)
//! and, without a read-back, the whole bundle file's (for the exporter's
//! ledger; with the read-back, that one comes from the read-back). The
//! bundle's can be taken while the file is written only if each local
//! header is final before its data, so the size and CRC-32 of the member
//! must be known beforehand:
//!
//! - a clear regular file: a CRC-only pre-pass over the input (CRC-32 runs
//!   at many GB/s, so this costs about one read from the page cache, on two
//!   threads) gives them, and both digests are taken in the writing pass.
//!   Threads: this one reads and writes (with the zip CRC), `sha256`,
//!   `bundle-sha256`, `usage-parser`. If the main pass reads other bytes
//!   (the file changed in between), the header is patched as before and the
//!   bundle is hashed after it is written.
//! - an encrypted member: the ciphertext's CRC is known only at its end.
//!   The writing pass then only reads (this thread), parses, seals
//!   (`encrypt`) and writes (`write`); once the member is complete, both
//!   digests are taken together in one read of it from the page cache, on
//!   two threads. That balances the two cores better than hashing the
//!   member while writing and the bundle after.
//! - standard input: the member's digest in the writing pass, the bundle's
//!   after it (beside the final fsync), as before.
//! - with a read-back: the member's digest in the writing pass.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::blocks::{Piece, Pool, SideSha, QUEUE};
use crate::bundle::container::{local_header, Entry, MemberWriter, Writer};
use crate::bundle::manifest::HexDigest;
use crate::crypt::stream::Sealer;
use crate::crypt::Recipients;
use crate::error::{Code, Error, Result};
use crate::fsutil;
use crate::usage::{Sniff, Sniffer};

/// Bytes per block: large reads and writes are markedly faster than 64 KiB
/// ones, and it is a whole number of age chunks.
pub const BLOCK: usize = 1 << 20;
/// Blocks of each pool: enough to keep every thread busy, few enough to
/// keep peak memory low (a slower thread holds the others back).
const POOL: usize = 4;
/// How many bytes of an input are kept to describe it in errors.
const HEAD: usize = 256;
/// Inputs smaller than this are CRC'd on one thread.
const SPLIT_AT: u64 = 32 << 20;

/// What staging a member produced.
pub struct Staged {
    /// The member's container entry (size and CRC as written).
    pub entry: Entry,
    /// SHA-256 of the member's bytes (the age file when encrypted), hex.
    pub sha256: HexDigest,
    /// What the usage-file sniffer made of the input.
    pub verdict: Sniff,
    /// The first bytes of the input, to describe it when it is refused.
    pub head: Vec<u8>,
    /// Bytes read from the input.
    pub read: u64,
}

/// The SHA-256 of the whole bundle file for the exporter's ledger when
/// there is no read-back, taken while the file is written (or, for an
/// encrypted member, right after it, from the page cache). Invariant: the
/// first `fed` bytes of the file are final and were fed. Given up (the file
/// is then hashed after it is written, as before) when a header turned out
/// not to be final, and for standard input.
pub struct BundleHash {
    /// The bundle file being written, for the reads from the page cache.
    file: File,
    sha: Option<SideSha>,
    spoiled: bool,
}

impl BundleHash {
    /// Hash `file`, the bundle being written, as it is written.
    pub fn new(file: File) -> BundleHash {
        BundleHash {
            file,
            sha: None,
            spoiled: false,
        }
    }

    /// Still taken in the writing pass.
    pub fn usable(&self) -> bool {
        !self.spoiled
    }

    fn fed(&self) -> u64 {
        self.sha.as_ref().map_or(0, |s| s.fed)
    }

    fn spoil(&mut self) {
        self.spoiled = true;
        self.sha = None;
    }

    fn feed(&mut self, piece: Piece) -> Result<()> {
        if self.spoiled {
            return Ok(());
        }
        if self.sha.is_none() {
            self.sha = Some(SideSha::spawn("bundle-sha256")?);
        }
        if let Some(s) = self.sha.as_mut() {
            s.feed(piece);
        }
        Ok(())
    }

    /// Read the file from `fed` to `end` back from the page cache (every
    /// byte there is final), feeding it to the bundle's hash and the part
    /// from `member_at` on to `member` too.
    fn catch_up(
        &mut self,
        end: u64,
        member_at: u64,
        mut member: Option<&mut SideSha>,
    ) -> Result<()> {
        let mut at = self.fed();
        if member_at < at || end < member_at {
            return Err(Error::new(
                Code::Internal,
                "bundle hash: members out of order",
            ));
        }
        let mut pool = Pool::new(BLOCK, POOL);
        while at < end {
            // The bytes before the member alone, then whole blocks of it.
            let stop = if at < member_at { member_at } else { end };
            let want = (stop - at).min(BLOCK as u64) as usize;
            let mut buf = pool.take()?;
            let n = match self.file.read_at(&mut buf[..want], at) {
                Ok(0) => return Err(readback_error(io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(readback_error(e)),
            };
            let piece = pool.share(buf, n);
            if at >= member_at {
                if let Some(m) = member.as_deref_mut() {
                    m.feed(piece.clone());
                }
            }
            self.feed(piece)?;
            at += n as u64;
        }
        Ok(())
    }

    /// Hash what follows the payload (manifest, signatures, central
    /// directory: a few KB), read back from the finished file, and return
    /// the digest; `None` if the hash was given up.
    pub fn finish(mut self) -> Result<Option<String>> {
        if self.spoiled {
            return Ok(None);
        }
        let len = self.file.metadata().map_err(readback_error)?.len();
        self.catch_up(len, len, None)?;
        let digest = match self.sha.take() {
            Some(s) => s.finish()?,
            // Nothing was fed: the file is empty.
            None => {
                use sha2::Digest;
                sha2::Sha256::digest(b"").into()
            }
        };
        Ok(Some(hex::encode(digest)))
    }
}

fn readback_error(e: io::Error) -> Error {
    Error::new(
        Code::IoRead,
        format!("cannot read back the bundle being written: {e}"),
    )
}

fn read_error(label: &str, e: io::Error) -> Error {
    Error::new(Code::IoRead, format!("cannot read {label}: {e}"))
}

/// CRC-32 and length of `file[from..to]` (to the end if `to` is None),
/// with positioned reads: the file offset is left for the main pass.
fn crc_range(file: &File, from: u64, to: Option<u64>) -> io::Result<(crc32fast::Hasher, u64)> {
    let mut crc = crc32fast::Hasher::new();
    let mut buf =
        fsutil::buffer(BLOCK).map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e.cause))?;
    let mut at = from;
    loop {
        let want = match to {
            Some(end) if at >= end => break,
            Some(end) => (end - at).min(BLOCK as u64) as usize,
            None => BLOCK,
        };
        match file.read_at(&mut buf[..want], at) {
            Ok(0) => break,
            Ok(n) => {
                crc.update(&buf[..n]);
                at += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((crc, at - from))
}

/// Size and CRC-32 of a regular file, the two halves of a large one on two
/// threads. A file that changes meanwhile gives numbers the main pass will
/// not match, which it detects.
fn crc_prepass(file: &File, label: &str) -> Result<(u64, u32)> {
    let len = file.metadata().map_err(|e| read_error(label, e))?.len();
    if len < SPLIT_AT {
        let (crc, n) = crc_range(file, 0, None).map_err(|e| read_error(label, e))?;
        return Ok((n, crc.finalize()));
    }
    let mid = (len / 2) & !(BLOCK as u64 - 1);
    std::thread::scope(|s| {
        let second = fsutil::helper_thread("crc32")?
            .spawn_scoped(s, || crc_range(file, mid, None))
            .map_err(|e| {
                Error::new(Code::Resources, format!("cannot start the CRC thread: {e}"))
            })?;
        let first = crc_range(file, 0, Some(mid));
        let second = second
            .join()
            .map_err(|_| Error::new(Code::Internal, "the CRC thread panicked"))?;
        let (mut crc, n1) = first.map_err(|e| read_error(label, e))?;
        let (crc2, n2) = second.map_err(|e| read_error(label, e))?;
        if n1 < mid {
            // It shrank: whatever is returned, the main pass will differ.
            return Ok((n1, crc.finalize()));
        }
        crc.combine(&crc2);
        Ok((n1 + n2, crc.finalize()))
    })
}

/// Fill `buf` from `reader` up to its end or the end of input.
fn read_full(reader: &mut dyn Read, buf: &mut [u8], done: u64, label: &str) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match fsutil::injected_read_error(done + n as u64).and_then(|_| reader.read(&mut buf[n..]))
        {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(label, e)),
        }
    }
    Ok(n)
}

/// The plaintext, block by block, into `each` (which hands it on), and to
/// the usage-file parser. Returns the first bytes and the byte count.
fn read_blocks(
    reader: &mut dyn Read,
    label: &str,
    sniffer: &mut Sniffer,
    mut each: impl FnMut(Piece) -> Result<()>,
) -> Result<(Vec<u8>, u64)> {
    let mut pool = Pool::new(BLOCK, POOL);
    let mut head = Vec::new();
    let mut done = 0u64;
    loop {
        let mut buf = pool.take()?;
        let n = read_full(reader, &mut buf, done, label)?;
        if n == 0 {
            break;
        }
        if head.len() < HEAD {
            head.extend_from_slice(&buf[..n.min(HEAD - head.len())]);
        }
        done += n as u64;
        crate::progress::advance(n as u64);
        let piece = pool.share(buf, n);
        sniffer.feed_piece(piece.clone());
        each(piece)?;
        if n < BLOCK {
            break; // read_full stops short only at the end of input
        }
    }
    Ok((head, done))
}

/// The member's SHA-256, from its side hasher, or, for a member whose
/// hashing was deferred, from the page cache together with the bundle's.
/// A clear member whose input changed between the CRC pre-pass and the
/// write (its header was patched) spoils the in-pass bundle hash.
fn member_digest<W: Write + Seek + Send>(
    zw: &mut Writer<W>,
    entry: &Entry,
    sha: Option<SideSha>,
    bundle: Option<&mut BundleHash>,
    known: Option<(u64, u32)>,
    out_path: &Path,
) -> Result<[u8; 32]> {
    match (sha, bundle) {
        (Some(s), Some(b)) => {
            if known.is_some_and(|k| k != (entry.size, entry.crc32)) {
                b.spoil();
            }
            s.finish()
        }
        (Some(s), None) => s.finish(),
        (None, Some(b)) => {
            zw.flush().map_err(|e| Error::io_write(out_path, e))?;
            let mut s = SideSha::spawn("sha256")?;
            b.catch_up(entry.end(), entry.data_offset(), Some(&mut s))?;
            s.finish()
        }
        (None, None) => Err(Error::new(Code::Internal, "a member was not hashed")),
    }
}

/// Stream one input into a new member `member` of `zw`: plain, or as an
/// age file when there are recipients.
#[allow(clippy::too_many_arguments)]
pub fn stage<W: Write + Seek + Send>(
    zw: &mut Writer<W>,
    member: &str,
    reader: &mut dyn Read,
    file: Option<&File>,
    label: &str,
    out_path: &Path,
    recipients: &Recipients,
    mut bundle: Option<&mut BundleHash>,
) -> Result<Staged> {
    let werr = |e: io::Error| Error::io_write(out_path, e);
    let encrypt = !recipients.is_empty();
    let regular = file.filter(|f| f.metadata().is_ok_and(|m| m.is_file()));
    let offset = zw.entries().last().map_or(0, |e| e.end());
    let usable = bundle
        .as_deref()
        .is_some_and(|b| b.usable() && b.fed() == offset);
    // Known size and CRC: worth a pre-pass only when the bundle is hashed
    // in this pass, and possible only for a clear regular file.
    let known = match regular {
        Some(f) if usable && !encrypt => Some(crc_prepass(f, label)?),
        _ => None,
    };
    // An encrypted member is hashed after it is written, with the bundle.
    let deferred = usable && encrypt;
    if let Some(b) = bundle.as_deref_mut() {
        if known.is_none() && !deferred {
            b.spoil();
        }
    }
    let mut sniffer = Sniffer::spawn()?;
    let mut sha = if deferred {
        None
    } else {
        Some(SideSha::spawn("sha256")?)
    };
    let mut mw = match known {
        Some((size, crc)) => {
            if let Some(b) = bundle.as_deref_mut() {
                b.feed(Piece::owned(local_header(member, size, crc)))?;
            }
            zw.begin_known(member, size, crc)
        }
        None => zw.begin(member),
    }
    .map_err(werr)?;
    let (head, read) = if encrypt {
        encrypted(
            &mut mw,
            sha.as_mut(),
            recipients,
            reader,
            label,
            out_path,
            &mut sniffer,
        )?
    } else {
        read_blocks(reader, label, &mut sniffer, |p| {
            if let Some(s) = sha.as_mut() {
                s.feed(p.clone());
            }
            if known.is_some() {
                if let Some(b) = bundle.as_deref_mut() {
                    b.feed(p.clone())?;
                }
            }
            mw.write_all(p.bytes()).map_err(werr)
        })?
    };
    let entry = mw.finish().map_err(werr)?;
    let digest = member_digest(zw, &entry, sha, bundle, known, out_path)?;
    Ok(Staged {
        entry,
        sha256: HexDigest::from_bytes(&digest),
        verdict: sniffer.finish()?,
        head,
        read,
    })
}

fn thread_error(what: &str, e: io::Error) -> Error {
    Error::new(
        Code::Resources,
        format!("cannot start the {what} thread: {e}"),
    )
}

/// The encrypted member: this thread reads, `encrypt` seals the plaintext
/// blocks, `write` writes the age file (and hands it to `sha`, if any).
fn encrypted<W: Write + Seek + Send>(
    mw: &mut MemberWriter<'_, W>,
    mut sha: Option<&mut SideSha>,
    recipients: &Recipients,
    reader: &mut dyn Read,
    label: &str,
    out_path: &Path,
    sniffer: &mut Sniffer,
) -> Result<(Vec<u8>, u64)> {
    let werr = |e: io::Error| Error::io_write(out_path, e);
    let enc = recipients.encryption()?;
    let mut sealer = enc.sealer;
    mw.write_all(&enc.header).map_err(werr)?;
    if let Some(s) = sha.as_deref_mut() {
        s.feed(Piece::owned(enc.header));
    }
    let (plain_tx, plain_rx) = std::sync::mpsc::sync_channel::<Piece>(QUEUE);
    let (sealed_tx, sealed_rx) = std::sync::mpsc::sync_channel::<Piece>(QUEUE);
    std::thread::scope(|s| {
        let sealing = fsutil::helper_thread("encrypt")?
            .spawn_scoped(s, move || -> Result<()> {
                let mut pool = Pool::new(Sealer::max_output(BLOCK), POOL);
                let mut plain = plain_rx.into_iter();
                loop {
                    let next = plain.next();
                    let mut out = pool.take()?;
                    out.clear();
                    match &next {
                        Some(p) => sealer.update(p.bytes(), &mut out),
                        None => sealer.finish(&mut out),
                    }
                    .map_err(werr)?;
                    let last = next.is_none();
                    drop(next); // the plaintext block goes back to its pool
                    let n = out.len();
                    if sealed_tx.send(pool.share(out, n)).is_err() || last {
                        // The writer stopped (its error is reported), or the end.
                        return Ok(());
                    }
                }
            })
            .map_err(|e| thread_error("encryption", e))?;
        let writing = fsutil::helper_thread("write")?
            .spawn_scoped(s, move || -> Result<()> {
                for piece in sealed_rx {
                    if let Some(s) = sha.as_deref_mut() {
                        s.feed(piece.clone());
                    }
                    mw.write_all(piece.bytes()).map_err(werr)?;
                }
                Ok(())
            })
            .map_err(|e| thread_error("writing", e))?;
        let read = read_blocks(reader, label, sniffer, |p| {
            // A failed send means a thread stopped on an error: it is
            // reported by the joins below.
            plain_tx
                .send(p)
                .map_err(|_| Error::new(Code::Internal, "the encryption thread stopped"))
        });
        drop(plain_tx);
        let sealed = sealing
            .join()
            .map_err(|_| Error::new(Code::Internal, "the encryption thread panicked"))?;
        let written = writing
            .join()
            .map_err(|_| Error::new(Code::Internal, "the writing thread panicked"))?;
        // The downstream error first: it is why the threads before it stopped.
        written?;
        sealed?;
        read
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::container::Reader;
    use sha2::Digest;
    use std::io::Cursor;

    fn data(n: usize, salt: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31) ^ salt ^ (i >> 13) as u8)
            .collect()
    }

    /// A bundle-like file: the staged members, then a small tail as the
    /// manifest would be. Returns the file's bytes, the entries, the
    /// digests, and the bundle hash (if it was taken in the pass).
    fn run(
        inputs: &[(Vec<u8>, Option<Vec<u8>>)],
        recipients: &Recipients,
        hash_bundle: bool,
    ) -> (Vec<u8>, Vec<Staged>, Option<String>, bool) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.zip");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&out)
            .unwrap();
        let mut bundle = hash_bundle.then(|| BundleHash::new(f.try_clone().unwrap()));
        let mut zw = Writer::new(std::io::BufWriter::with_capacity(BLOCK, f));
        let mut staged = Vec::new();
        for (i, (read, on_disk)) in inputs.iter().enumerate() {
            // `on_disk`: what the CRC pre-pass sees (None: standard input).
            let src = dir.path().join(format!("in{i}"));
            if let Some(d) = on_disk {
                std::fs::write(&src, d).unwrap();
            }
            let file = on_disk.as_ref().map(|_| File::open(&src).unwrap());
            let name = format!("payload/in{i}");
            staged.push(
                stage(
                    &mut zw,
                    &name,
                    &mut Cursor::new(read.clone()),
                    file.as_ref(),
                    "test input",
                    &out,
                    recipients,
                    bundle.as_mut(),
                )
                .unwrap(),
            );
        }
        zw.add_bytes("manifest.json", b"{\"tail\":true}").unwrap();
        zw.finish().unwrap().into_inner().unwrap();
        let usable = bundle.as_ref().is_some_and(BundleHash::usable);
        let hash = bundle.and_then(|b| b.finish().unwrap());
        (std::fs::read(&out).unwrap(), staged, hash, usable)
    }

    fn check(bytes: &[u8], staged: &[Staged], hash: Option<&String>) {
        // The strict reader accepts the layout (headers agree with data).
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        let entries = Reader::open(f).unwrap();
        assert_eq!(entries.entries().len(), staged.len() + 1);
        for (s, e) in staged.iter().zip(entries.entries()) {
            assert_eq!(&s.entry, e);
            let member = &bytes[e.data_offset() as usize..e.end() as usize];
            assert_eq!(s.sha256.as_str(), hex::encode(sha2::Sha256::digest(member)));
            assert_eq!(e.crc32, crc32fast::hash(member));
        }
        if let Some(h) = hash {
            assert_eq!(*h, hex::encode(sha2::Sha256::digest(bytes)));
        }
    }

    #[test]
    fn clear_files_are_hashed_whole_in_the_writing_pass() {
        for n in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 5] {
            let a = data(n, 1);
            let b = data(n / 2 + 7, 2);
            let (bytes, staged, hash, usable) = run(
                &[(a.clone(), Some(a.clone())), (b.clone(), Some(b))],
                &Recipients::default(),
                true,
            );
            assert!(usable, "{n}: the bundle hash was given up");
            assert!(hash.is_some());
            check(&bytes, &staged, hash.as_ref());
            assert_eq!(staged[0].read, n as u64);
        }
    }

    #[test]
    fn a_large_file_is_crc_d_on_two_threads() {
        let a = data(SPLIT_AT as usize + 3 * BLOCK + 17, 3);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, &a).unwrap();
        let (n, crc) = crc_prepass(&File::open(&p).unwrap(), "a").unwrap();
        assert_eq!((n, crc), (a.len() as u64, crc32fast::hash(&a)));
        let (bytes, staged, hash, usable) =
            run(&[(a.clone(), Some(a))], &Recipients::default(), true);
        assert!(usable);
        check(&bytes, &staged, hash.as_ref());
    }

    /// The input changed between the CRC pre-pass and the main pass: the
    /// header is patched, the member is what the main pass read, and the
    /// bundle hash is left to be taken after the writing.
    #[test]
    fn an_input_that_changes_between_the_passes_is_patched_and_hashed_after() {
        for (read, seen) in [
            (data(5000, 1), data(5000, 2)),
            (data(5000, 1), data(4000, 1)),
            (data(3 * BLOCK, 1), data(3 * BLOCK + 1, 1)),
        ] {
            let (bytes, staged, hash, usable) =
                run(&[(read.clone(), Some(seen))], &Recipients::default(), true);
            assert!(!usable && hash.is_none());
            check(&bytes, &staged, None);
            let e = &staged[0].entry;
            assert_eq!(
                &bytes[e.data_offset() as usize..e.end() as usize],
                &read[..]
            );
        }
    }

    #[test]
    fn standard_input_and_read_back_leave_the_bundle_hash_to_others() {
        let a = data(BLOCK + 3, 4);
        let (bytes, staged, hash, usable) = run(&[(a.clone(), None)], &Recipients::default(), true);
        assert!(!usable && hash.is_none());
        check(&bytes, &staged, None);
        let (bytes, staged, hash, _) = run(&[(a.clone(), Some(a))], &Recipients::default(), false);
        assert!(hash.is_none());
        check(&bytes, &staged, None);
    }

    #[test]
    fn encrypted_members_are_hashed_with_the_bundle_after_they_are_written() {
        let id = age::x25519::Identity::generate();
        let mut r = Recipients::default();
        r.add(&id.to_public().to_string()).unwrap();
        for n in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 70_000] {
            let a = data(n, 5);
            let b = data(777, 6);
            for hash_bundle in [true, false] {
                let (bytes, staged, hash, usable) = run(
                    &[(a.clone(), Some(a.clone())), (b.clone(), None)],
                    &r,
                    hash_bundle,
                );
                assert_eq!(usable, hash_bundle);
                assert_eq!(hash.is_some(), hash_bundle);
                check(&bytes, &staged, hash.as_ref());
                for (s, want) in staged.iter().zip([&a, &b]) {
                    let e = &s.entry;
                    let file = &bytes[e.data_offset() as usize..e.end() as usize];
                    let d = age::Decryptor::new(file).unwrap();
                    let mut got = Vec::new();
                    d.decrypt(std::iter::once(&id as &dyn age::Identity))
                        .unwrap()
                        .read_to_end(&mut got)
                        .unwrap();
                    assert!(got == **want, "{n} bytes");
                }
            }
        }
    }
}
