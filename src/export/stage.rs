//! Payload staging for export (issue #20): each input byte is read once,
//! into shared 1 MiB blocks that other threads read in place — the
//! usage-file parser, the SHA-256 hasher, the encryption — while this
//! thread reads.
//!
//! One SHA-256 pass covers the payload: the member's digest, for the
//! manifest, on a thread of its own beside the writing. The whole bundle's
//! SHA-256, which the exporter's ledger records, is not taken here: it comes
//! from the read-back, the one read of the finished file that is verified
//! (decision 67). Threads:
//!
//! - a clear member: this one reads and writes (with the zip CRC),
//!   `sha256` hashes, `usage-parser` parses;
//! - an encrypted member: this one reads, `encrypt` seals, `write` writes
//!   (with the zip CRC) and hands the age file to `sha256`, `usage-parser`
//!   parses the plaintext.

use std::io::{self, Read, Seek, Write};
use std::path::Path;

use crate::base::error::{Code, Error, Result};
use crate::crypto::crypt::stream::Sealer;
use crate::crypto::crypt::Recipients;
use crate::format::container::{Entry, MemberWriter, Writer};
use crate::format::manifest::HexDigest;
use crate::format::usage::{Sniff, Sniffer};
use crate::io::blocks::{Piece, Pool, SideSha, QUEUE};
use crate::io::fsutil;
use crate::io::sizes::SHARED_BLOCK;

/// Blocks of each pool: enough to keep every thread busy, few enough to
/// keep peak memory low (a slower thread holds the others back).
const POOL: usize = 4;
/// How many bytes of an input are kept to describe it in errors.
const HEAD: usize = 256;

/// What staging a member produced.
pub struct StagedMember {
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

fn read_error(label: &str, e: io::Error) -> Error {
    Error::new(Code::IoRead, format!("cannot read {label}: {e}"))
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
    let mut pool = Pool::new(SHARED_BLOCK, POOL);
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
        let piece = pool.share(buf, n);
        sniffer.feed_piece(piece.clone());
        each(piece)?;
        if n < SHARED_BLOCK {
            break; // read_full stops short only at the end of input
        }
    }
    Ok((head, done))
}

/// Stream one input into a new member `member` of `zw`: plain, or as an
/// age file when there are recipients.
pub fn stage<W: Write + Seek + Send>(
    zw: &mut Writer<W>,
    member: &str,
    reader: &mut dyn Read,
    label: &str,
    out_path: &Path,
    recipients: &Recipients,
) -> Result<StagedMember> {
    let werr = |e: io::Error| Error::io_write(out_path, e);
    let mut sniffer = Sniffer::spawn()?;
    let mut sha = SideSha::spawn("sha256")?;
    let mut mw = zw.begin(member).map_err(werr)?;
    let (head, read) = if recipients.is_empty() {
        read_blocks(reader, label, &mut sniffer, |p| {
            sha.feed(p.clone());
            mw.write_all(p.bytes()).map_err(werr)
        })?
    } else {
        encrypted(
            &mut mw,
            &mut sha,
            recipients,
            reader,
            label,
            out_path,
            &mut sniffer,
        )?
    };
    let entry = mw.finish().map_err(werr)?;
    let digest = sha.finish()?;
    Ok(StagedMember {
        entry,
        sha256: HexDigest::from_bytes(&digest),
        verdict: sniffer.finish()?,
        head,
        read,
    })
}

/// The encrypted member: this thread reads, `encrypt` seals the plaintext
/// blocks, `write` writes the age file and hands it to `sha`.
fn encrypted<W: Write + Seek + Send>(
    mw: &mut MemberWriter<'_, W>,
    sha: &mut SideSha,
    recipients: &Recipients,
    reader: &mut dyn Read,
    label: &str,
    out_path: &Path,
    sniffer: &mut Sniffer,
) -> Result<(Vec<u8>, u64)> {
    let werr = |e: io::Error| Error::io_write(out_path, e);
    let enc = recipients.encryption()?;
    let sealer = enc.sealer;
    mw.write_all(&enc.header).map_err(werr)?;
    sha.feed(Piece::owned(enc.header));
    let (plain_tx, plain_rx) = std::sync::mpsc::sync_channel::<Piece>(QUEUE);
    let (sealed_tx, sealed_rx) = std::sync::mpsc::sync_channel::<Piece>(QUEUE);
    std::thread::scope(|s| {
        let sealing = fsutil::spawn_scoped(s, "encrypt", fsutil::HELPER_STACK, move || {
            seal_blocks(sealer, plain_rx, sealed_tx, out_path)
        })?;
        let writing =
            fsutil::spawn_scoped(s, "write", fsutil::HELPER_STACK, move || -> Result<()> {
                for piece in sealed_rx {
                    sha.feed(piece.clone());
                    mw.write_all(piece.bytes()).map_err(werr)?;
                }
                Ok(())
            })?;
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

/// The encryption thread: seals each plaintext block from `plain` and sends
/// the sealed one to `sealed`, the last after the plaintext ends.
fn seal_blocks(
    mut sealer: Sealer,
    plain: std::sync::mpsc::Receiver<Piece>,
    sealed: std::sync::mpsc::SyncSender<Piece>,
    out_path: &Path,
) -> Result<()> {
    let werr = |e: io::Error| Error::io_write(out_path, e);
    let mut pool = Pool::new(Sealer::max_output(SHARED_BLOCK), POOL);
    let mut plain = plain.into_iter();
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
        if sealed.send(pool.share(out, n)).is_err() || last {
            // The writer stopped (its error is reported), or the end.
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::container::Reader;
    use sha2::Digest;
    use std::io::Cursor;

    fn data(n: usize, salt: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31) ^ salt ^ (i >> 13) as u8)
            .collect()
    }

    /// A bundle-like file: the staged members, then a small tail as the
    /// manifest would be. Returns the file's bytes and what was staged.
    fn run(inputs: &[Vec<u8>], recipients: &Recipients) -> (Vec<u8>, Vec<StagedMember>) {
        let mut zw = Writer::new(Cursor::new(Vec::new()));
        let mut staged = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            staged.push(
                stage(
                    &mut zw,
                    &format!("payload/in{i}"),
                    &mut Cursor::new(input.clone()),
                    "test input",
                    Path::new("test bundle"),
                    recipients,
                )
                .unwrap(),
            );
        }
        zw.add_bytes("manifest.json", b"{\"tail\":true}").unwrap();
        (zw.finish().unwrap().into_inner(), staged)
    }

    /// The strict reader accepts the layout, and each entry's size, CRC and
    /// digest are those of the member's bytes.
    fn check(bytes: &[u8], staged: &[StagedMember]) {
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
    }

    #[test]
    fn clear_members_at_block_boundaries() {
        for n in [
            0,
            1,
            SHARED_BLOCK - 1,
            SHARED_BLOCK,
            SHARED_BLOCK + 1,
            3 * SHARED_BLOCK + 5,
        ] {
            let a = data(n, 1);
            let b = data(n / 2 + 7, 2);
            let (bytes, staged) = run(&[a.clone(), b.clone()], &Recipients::default());
            check(&bytes, &staged);
            assert_eq!(staged[0].read, n as u64);
            let e = &staged[0].entry;
            assert!(bytes[e.data_offset() as usize..e.end() as usize] == a[..]);
        }
    }

    #[test]
    fn encrypted_members_decrypt_to_the_input() {
        let id = age::x25519::Identity::generate();
        let mut r = Recipients::default();
        r.add(&id.to_public().to_string()).unwrap();
        for n in [
            0,
            1,
            SHARED_BLOCK - 1,
            SHARED_BLOCK,
            SHARED_BLOCK + 1,
            2 * SHARED_BLOCK + 70_000,
        ] {
            let a = data(n, 5);
            let b = data(777, 6);
            let (bytes, staged) = run(&[a.clone(), b.clone()], &r);
            check(&bytes, &staged);
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
