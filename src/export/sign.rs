//! Adding a signature to an existing bundle (co-signing, or attaching a
//! signature made elsewhere, e.g. by `ssh-keygen -Y sign`).
//!
//! The manifest and payload bytes are copied unchanged; the container is
//! rewritten in canonical form with the signatures in name order, into a
//! temporary file that replaces the original only once it is complete.

use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::Path;

use tempfile::NamedTempFile;

use crate::base::error::{Code, Error, Result};
use crate::crypto::sshsig::{SshSig, BUNDLE_NAMESPACE};
use crate::format::container::{member_read_error, open_bundle, Writer};
use crate::format::manifest::{Manifest, MANIFEST_NAME, MAX_SIGNATURES};
use crate::format::rules::signature_member_name;
use crate::io::fsutil;
use crate::io::sizes::STREAM_BUFFER;
use crate::verify::{open_layout, read_signed, Layout, Signed};

/// The manifest bytes of a bundle whose container and existing signatures
/// check out (trust is not evaluated here).
pub fn manifest_bytes(path: &Path) -> Result<Vec<u8>> {
    let mut layout = open_layout(open_bundle(path)?)?;
    let bytes = read_signed(&mut layout)?.manifest;
    Manifest::parse(&bytes)?;
    Ok(bytes)
}

/// Add `sig` (armored SSHSIG) to the bundle at `path`. The signature must be
/// valid over the manifest in namespace `airlock-bundle`; a key that already
/// signed is refused.
pub fn add_signature(path: &Path, armored: &[u8]) -> Result<SshSig> {
    let sig = SshSig::from_armored(armored)
        .map_err(|e| Error::new(Code::SigInvalid, format!("the new signature: {e}")))?;
    if sig.namespace != BUNDLE_NAMESPACE {
        return Err(Error::new(
            Code::SigNamespace,
            format!(
                "the new signature is for namespace {:?}, not {BUNDLE_NAMESPACE:?}",
                sig.namespace
            ),
        ));
    }
    let mut layout = open_layout(open_bundle(path)?)?;
    let signed = read_signed(&mut layout)?;
    let (manifest, existing) = (signed.manifest, signed.sigs);
    Manifest::parse(&manifest)?;
    let sigs = signature_members(&sig, &manifest, &existing)?;
    let tmp = rewrite(path, &mut layout, &manifest, &sigs)?;
    // Check the rewritten container before it replaces the original.
    let check = File::open(tmp.path()).map_err(|e| Error::io_read(tmp.path(), e))?;
    let mut l2 = open_layout(check)?;
    let Signed {
        manifest: m2,
        sigs: s2,
        ..
    } = read_signed(&mut l2)?;
    if m2 != manifest || s2.len() != sigs.len() {
        return Err(Error::new(
            Code::Readback,
            "the rewritten bundle does not read back as written",
        ));
    }
    fsutil::publish(tmp, path, true)?;
    Ok(sig)
}

/// The signature members of the bundle once `sig` is added to `existing`:
/// (member name, armored text) in name order. `sig` must verify over
/// `manifest`, be by a key that has not signed yet, and fit the limit.
fn signature_members(
    sig: &SshSig,
    manifest: &[u8],
    existing: &[SshSig],
) -> Result<Vec<(String, String)>> {
    sig.verify(manifest)
        .map_err(|e| Error::new(Code::SigInvalid, format!("the new signature: {e}")))?;
    if existing.iter().any(|s| s.public_key == sig.public_key) {
        return Err(Error::new(
            Code::Args,
            format!(
                "key {} has already signed this bundle",
                sig.public_key.fingerprint()
            ),
        ));
    }
    if existing.len() + 1 > MAX_SIGNATURES {
        return Err(Error::new(
            Code::ZipLimit,
            format!("a bundle holds at most {MAX_SIGNATURES} signatures"),
        ));
    }
    let mut sigs: Vec<(String, String)> = existing
        .iter()
        .chain(std::iter::once(sig))
        .map(|s| (signature_member_name(s), s.to_armored()))
        .collect();
    sigs.sort();
    Ok(sigs)
}

/// Write the canonical container again into a temporary file beside
/// `path`: the payload members copied from `layout` byte for byte, then
/// `manifest`, then `sigs`.
fn rewrite(
    path: &Path,
    layout: &mut Layout,
    manifest: &[u8],
    sigs: &[(String, String)],
) -> Result<NamedTempFile> {
    let tmp = fsutil::temp_beside(path, 0o644)?;
    let out = tmp
        .as_file()
        .try_clone()
        .map_err(|e| Error::io_write(path, e))?;
    let mut zw = Writer::new(BufWriter::with_capacity(STREAM_BUFFER, out));
    let mut buf = crate::io::fsutil::buffer(STREAM_BUFFER)?;
    for e in layout.payload.clone() {
        let mut r = layout.reader.member(&e)?;
        let mut w = zw
            .begin(&e.name)
            .map_err(|err| Error::io_write(path, err))?;
        loop {
            let n = r.read(&mut buf).map_err(|err| member_read_error(&e, err))?;
            if n == 0 {
                break;
            }
            io::Write::write_all(&mut w, &buf[..n]).map_err(|err| Error::io_write(path, err))?;
        }
        w.finish().map_err(|err| Error::io_write(path, err))?;
    }
    zw.add_bytes(MANIFEST_NAME, manifest)
        .map_err(|e| Error::io_write(path, e))?;
    for (name, text) in sigs {
        zw.add_bytes(name, text.as_bytes())
            .map_err(|e| Error::io_write(path, e))?;
    }
    let b = zw.finish().map_err(|e| Error::io_write(path, e))?;
    b.into_inner()
        .map_err(|e| Error::io_write(path, e.into_error()))?;
    Ok(tmp)
}
