//! age's payload encryption — the STREAM of age v1 — over ring's
//! ChaCha20-Poly1305, which seals about 1.6 times as fast as the RustCrypto
//! implementation inside the age crate (docs/decisions.md, 48).
//!
//! The age crate still does everything else: it makes the file key, wraps it
//! for every recipient (X25519, ssh-ed25519, scrypt, and airlock's hybrid
//! post-quantum type), writes the header with its MAC, and draws the payload
//! nonce. Only the payload after that is computed here, to the letter of the
//! age v1 specification:
//!
//! - payload key = HKDF-SHA256(ikm = file key, salt = the 16-byte nonce,
//!   info = "payload"), 32 bytes;
//! - the plaintext in chunks of 64 KiB, each sealed with ChaCha20-Poly1305
//!   under the nonce `counter (11 bytes, big-endian) || last (1 byte)`, the
//!   counter starting at 0; the last chunk has the flag 1 and may be short,
//!   every other chunk is full; an empty last chunk only for an empty
//!   plaintext.
//!
//! The file key is taken where the age API hands it out: to each recipient's
//! `wrap_file_key` (encryption) and from an identity's `unwrap_stanzas`
//! (decryption). Encryption checks its own derivation against age's output
//! before it is used: the age crate seals an empty last chunk with the key it
//! derived, and this module must produce the same 16 bytes.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io::{self, Read};

use age::secrecy::ExposeSecret;
use age_core::format::{FileKey, Stanza};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::hkdf;
use zeroize::Zeroizing;

use crate::base::error::{Code, Error, Result};
use crate::crypto::crypt::{Identities, Recipients};

/// Plaintext bytes per chunk.
pub(crate) const CHUNK: usize = 64 * 1024;
/// Poly1305 tag bytes after each chunk.
pub(crate) const TAG: usize = 16;
/// A full chunk as stored.
pub(crate) const SEALED_CHUNK: usize = CHUNK + TAG;
/// The payload nonce that follows the header.
pub(crate) const NONCE_LEN: usize = 16;

fn internal(msg: &str) -> Error {
    Error::new(Code::Internal, format!("payload encryption: {msg}"))
}

/// The payload STREAM for one age file: the key and the chunk counter.
pub(crate) struct PayloadStream {
    key: LessSafeKey,
    counter: u64,
    /// The last chunk was sealed or opened: nothing may follow.
    finished: bool,
}

impl PayloadStream {
    /// The stream of the age file whose file key and payload nonce these are.
    pub fn new(file_key: &[u8; 16], nonce: &[u8; NONCE_LEN]) -> Result<PayloadStream> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, nonce).extract(file_key);
        let okm = prk
            .expand(&[b"payload"], &CHACHA20_POLY1305)
            .map_err(|_| internal("HKDF refused a 32-byte output"))?;
        let key = UnboundKey::from(okm);
        Ok(PayloadStream {
            key: LessSafeKey::new(key),
            counter: 0,
            finished: false,
        })
    }

    fn nonce(&self, last: bool) -> Nonce {
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&self.counter.to_be_bytes());
        n[11] = u8::from(last);
        Nonce::assume_unique_for_key(n)
    }

    fn advance(&mut self, last: bool) -> io::Result<()> {
        self.finished = last;
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| io::Error::other("the age payload is too long (chunk counter)"))?;
        Ok(())
    }

    /// True once the last chunk went through.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Encrypt one chunk in place and return its tag. A chunk that is not
    /// the last must be exactly `CHUNK` bytes; the last one at most that.
    pub fn seal(&mut self, chunk: &mut [u8], last: bool) -> io::Result<[u8; TAG]> {
        if self.finished {
            return Err(io::Error::other("age payload: a chunk after the last one"));
        }
        if chunk.len() > CHUNK || (!last && chunk.len() != CHUNK) {
            return Err(io::Error::other("age payload: a chunk of the wrong size"));
        }
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(last), Aad::empty(), chunk)
            .map_err(|_| io::Error::other("age payload: sealing failed"))?;
        self.advance(last)?;
        let mut out = [0u8; TAG];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypt one stored chunk (ciphertext, then tag) in place; the
    /// plaintext is the first `n` bytes, `n` returned. On failure nothing
    /// advances, so the caller may try the same chunk as the last one.
    pub fn open(&mut self, sealed: &mut [u8], last: bool) -> io::Result<usize> {
        if self.finished {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "data follows the last chunk of the age payload",
            ));
        }
        if sealed.len() < TAG
            || sealed.len() > SEALED_CHUNK
            || (!last && sealed.len() != SEALED_CHUNK)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an age payload chunk of the wrong size",
            ));
        }
        let n = self
            .key
            .open_in_place(self.nonce(last), Aad::empty(), sealed)
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "an age payload chunk failed authentication",
                )
            })?
            .len();
        self.advance(last)?;
        Ok(n)
    }
}

/// Encrypts a plaintext given in pieces of any size into sealed chunks. The
/// chunk that ends the plaintext seen so far is held back until more comes
/// (then it is not the last) or `finish` (then it is).
pub(crate) struct Sealer {
    stream: PayloadStream,
    held: Zeroizing<Vec<u8>>,
}

impl Sealer {
    /// A sealer for `stream`, with its one-chunk buffer allocated now
    /// (`RESOURCES` when it cannot be).
    pub fn new(stream: PayloadStream) -> Result<Sealer> {
        let mut held = Zeroizing::new(Vec::new());
        held.try_reserve_exact(CHUNK).map_err(|e| {
            Error::new(
                Code::Resources,
                format!("cannot allocate the encryption buffer: {e}"),
            )
        })?;
        Ok(Sealer { stream, held })
    }

    /// Most bytes `update` appends for `len` bytes of plaintext.
    pub fn max_output(len: usize) -> usize {
        (len / CHUNK + 2) * SEALED_CHUNK
    }

    fn seal_onto(
        stream: &mut PayloadStream,
        plain: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = stream.seal(&mut out[start..], last)?;
        out.extend_from_slice(&tag);
        Ok(())
    }

    /// Encrypt `data`, appending every chunk that is now complete and known
    /// not to be the last to `out`.
    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        while !data.is_empty() {
            if self.held.len() == CHUNK {
                Self::seal_onto(&mut self.stream, &self.held, false, out)?;
                self.held.clear();
            }
            if self.held.is_empty() && data.len() > CHUNK {
                // A full chunk with more after it: sealed straight from the input.
                Self::seal_onto(&mut self.stream, &data[..CHUNK], false, out)?;
                data = &data[CHUNK..];
                continue;
            }
            let take = (CHUNK - self.held.len()).min(data.len());
            self.held.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Seal the last chunk (empty only if the whole plaintext was).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        Self::seal_onto(&mut self.stream, &self.held, true, out)?;
        self.held.clear();
        Ok(())
    }
}

/// The start of an age file made by the age crate for some recipients: its
/// header and payload nonce, and the sealer for the payload that follows.
pub(crate) struct Encryption {
    /// Header and payload nonce, as the age crate wrote them.
    pub header: Vec<u8>,
    /// Seals the payload that follows the nonce.
    pub sealer: Sealer,
}

/// Hands every recipient the file key, noting it on the way.
struct Noting<'a> {
    inner: &'a dyn age::Recipient,
    key: &'a RefCell<Option<Zeroizing<[u8; 16]>>>,
    differs: &'a Cell<bool>,
}

impl age::Recipient for Noting<'_> {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> std::result::Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let k = file_key.expose_secret();
        let mut slot = self.key.borrow_mut();
        match slot.as_ref() {
            Some(seen) if **seen != *k => self.differs.set(true),
            Some(_) => {}
            None => *slot = Some(Zeroizing::new(*k)),
        }
        self.inner.wrap_file_key(file_key)
    }
}

impl Recipients {
    /// Start an age file for these recipients: the age crate writes the
    /// header; the payload is sealed by this module. Checked against the
    /// age crate's own output before it is used.
    pub(crate) fn encryption(&self) -> Result<Encryption> {
        let key = RefCell::new(None);
        let differs = Cell::new(false);
        let noting: Vec<Noting<'_>> = self
            .boxed
            .iter()
            .map(|b| Noting {
                inner: b.as_ref(),
                key: &key,
                differs: &differs,
            })
            .collect();
        let encryptor =
            age::Encryptor::with_recipients(noting.iter().map(|n| n as &dyn age::Recipient))
                .map_err(|e| {
                    Error::new(
                        Code::Args,
                        format!("cannot encrypt to these recipients: {e}"),
                    )
                })?;
        // An empty plaintext: header, nonce, and one sealed empty last chunk.
        let bytes = encryptor
            .wrap_output(Vec::new())
            .and_then(|w| w.finish())
            .map_err(|e| internal(&format!("the age crate wrote no header: {e}")))?;
        drop(noting);
        let key = key
            .into_inner()
            .ok_or_else(|| internal("no recipient was handed the file key"))?;
        if differs.get() {
            return Err(internal("the recipients were handed different file keys"));
        }
        let Some(head_len) = bytes.len().checked_sub(TAG) else {
            return Err(internal("the age crate's output is too short"));
        };
        let (header, age_tag) = bytes.split_at(head_len);
        let Some(nonce_at) = header.len().checked_sub(NONCE_LEN) else {
            return Err(internal("the age crate's output is too short"));
        };
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&header[nonce_at..]);
        let mut probe = PayloadStream::new(&key, &nonce)?;
        let tag = probe
            .seal(&mut [], true)
            .map_err(|e| internal(&e.to_string()))?;
        if tag[..] != age_tag[..] {
            return Err(internal(
                "the payload key differs from the age crate's (its empty last chunk does not match)",
            ));
        }
        Ok(Encryption {
            header: header.to_vec(),
            sealer: Sealer::new(PayloadStream::new(&key, &nonce)?)?,
        })
    }
}

/// Passes each stanza list to an identity, noting the file key it unwraps.
struct NotingIdentity<'a> {
    inner: &'a dyn age::Identity,
    key: &'a RefCell<Option<Zeroizing<[u8; 16]>>>,
}

impl age::Identity for NotingIdentity<'_> {
    fn unwrap_stanza(
        &self,
        stanza: &Stanza,
    ) -> Option<std::result::Result<FileKey, age::DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }

    // The inner identity's own `unwrap_stanzas` (scrypt's checks that its
    // stanza is alone live there).
    fn unwrap_stanzas(
        &self,
        stanzas: &[Stanza],
    ) -> Option<std::result::Result<FileKey, age::DecryptError>> {
        let got = self.inner.unwrap_stanzas(stanzas);
        if let Some(Ok(k)) = &got {
            *self.key.borrow_mut() = Some(Zeroizing::new(*k.expose_secret()));
        }
        got
    }
}

/// Reads the plaintext of an age payload (everything after the header and
/// nonce), accepting exactly what the age crate's `StreamReader` accepts:
/// full chunks then one last chunk, which may be full; an empty last chunk
/// only for an empty plaintext; a missing last chunk is a truncation;
/// nothing may follow the last chunk.
///
/// The age crate tries a full chunk as not-last and, when that fails, as
/// last. This reader reads one byte ahead instead: a full chunk with data
/// after it is opened as not-last, one at the end of the input as last. The
/// same files are accepted: a full chunk at the end that opens as not-last
/// leaves the payload without a last chunk, which the age crate then
/// refuses as truncated; one flagged last with data after it is refused by
/// both (here at once, there one chunk later). ring overwrites a chunk that
/// fails to open, so a second attempt would need a copy of every chunk.
pub(crate) struct StreamReader<R: Read> {
    inner: R,
    stream: PayloadStream,
    /// One sealed chunk and the byte after it.
    buf: Zeroizing<Vec<u8>>,
    /// The byte read ahead of the chunk before, the first of the next one.
    ahead: Option<u8>,
    /// Plaintext not yet handed out: `buf[pos..end]`.
    pos: usize,
    end: usize,
    plaintext: u64,
}

impl<R: Read> StreamReader<R> {
    /// Decrypt `inner`, the payload after the nonce, with `stream`; its
    /// buffer (one sealed chunk and a byte) is allocated now (`RESOURCES`
    /// when it cannot be).
    pub fn new(inner: R, stream: PayloadStream) -> Result<StreamReader<R>> {
        let mut buf = Zeroizing::new(Vec::new());
        buf.try_reserve_exact(SEALED_CHUNK + 1).map_err(|e| {
            Error::new(
                Code::Resources,
                format!("cannot allocate the decryption buffer: {e}"),
            )
        })?;
        buf.resize(SEALED_CHUNK + 1, 0);
        Ok(StreamReader {
            inner,
            stream,
            buf,
            ahead: None,
            pos: 0,
            end: 0,
            plaintext: 0,
        })
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        let mut n = 0;
        if let Some(b) = self.ahead.take() {
            self.buf[0] = b;
            n = 1;
        }
        while n < self.buf.len() {
            match self.inner.read(&mut self.buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "age file is truncated",
            ));
        }
        let last = n <= SEALED_CHUNK;
        if !last {
            self.ahead = Some(self.buf[SEALED_CHUNK]);
            n = SEALED_CHUNK;
        }
        let len = self.stream.open(&mut self.buf[..n], last)?;
        if len == 0 && self.plaintext > 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the last chunk of the age payload is empty",
            ));
        }
        self.pos = 0;
        self.end = len;
        self.plaintext += len as u64;
        Ok(())
    }
}

impl<R: Read> Read for StreamReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end {
            if self.stream.is_finished() {
                // The end, unless more data follows the last chunk.
                self.pos = 0;
                self.end = 0;
                let mut probe = [0u8; 1];
                loop {
                    match self.inner.read(&mut probe) {
                        Ok(0) => return Ok(0),
                        Ok(_) => {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "data follows the last chunk of the age payload",
                            ))
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            self.next_chunk()?;
        }
        let n = (self.end - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Identities {
    /// Like `unlock`, but for this module's `StreamReader`: the age crate
    /// reads and checks the header (its MAC too) and unwraps the file key;
    /// the payload key is derived here from that key and `nonce`, the 16
    /// bytes the age crate read after the header. The `age::stream` reader
    /// the crate returns is dropped unread.
    pub(crate) fn unlock_stream<R: Read>(
        &self,
        d: age::Decryptor<R>,
        max_work_factor: u8,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<PayloadStream> {
        let key = RefCell::new(None);
        self.with_identities(d, max_work_factor, |d, ids| {
            let noting: Vec<NotingIdentity<'_>> = ids
                .into_iter()
                .map(|inner| NotingIdentity { inner, key: &key })
                .collect();
            d.decrypt(noting.iter().map(|n| n as &dyn age::Identity))
                .map(drop)
        })?;
        let key = key
            .into_inner()
            .ok_or_else(|| internal("the age crate unwrapped no file key"))?;
        PayloadStream::new(&key, nonce)
    }
}

#[cfg(test)]
mod tests;
