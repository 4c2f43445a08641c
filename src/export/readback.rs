//! The read-back: the written bundle verified by the core before it counts as exported.

use super::*;

/// Verify a freshly written bundle with the exporter's own key as the only
/// trusted key, after evicting it from the page cache, through the same core
/// as `verify`. Returns the SHA-256 of the bundle as that pass read it.
pub fn readback(
    path: &Path,
    signer: &Signer,
    manifest_bytes: &[u8],
    created: SystemTime,
    progress: &Progress,
) -> Result<HexDigest> {
    // From the device itself, not the page cache (decision 68).
    let file = crate::io::device::DeviceReader::new(crate::format::container::open_bundle(path)?)?;
    let trust = TrustStore::only(signer.public.clone(), "the exporting key");
    let opts = VerifyOptions {
        progress: progress.clone(),
        trust: &trust,
        now: Clock::Fixed(created),
        skew: Duration::from_secs(0),
        identities: None,
        require_signers: 1,
    };
    let ask = Ask {
        bundle_sha256: Hashing::Take,
        kind: None,
    };
    let dest = ReadBack {
        written: manifest_bytes,
    };
    let (v, _) = verify_bundle(file, &opts, ask, dest).map_err(|r| readback_error(r.error))?;
    v.bundle_sha256
        .ok_or_else(|| Error::new(Code::Internal, "the read-back took no bundle hash"))
}

/// Export's read-back as the core's destination: the payload is checked
/// and dropped, and the manifest that verified must be the one written.
struct ReadBack<'a> {
    written: &'a [u8],
}

impl Destination for ReadBack<'_> {
    fn finish(&mut self, v: &Verified) -> Result<()> {
        if v.manifest_bytes != self.written {
            return Err(Error::new(
                Code::Readback,
                "the manifest read back differs from the one written",
            ));
        }
        Ok(())
    }
}

/// The core's refusal of the read-back: `READBACK` (or `BUNDLE-CHANGED`,
/// when the file changed while it was read), with the core's error kept as
/// the source; the read-back's own refusal as it is.
fn readback_error(e: Error) -> Error {
    let code = match e.code {
        Code::Readback => return e,
        Code::BundleChanged => Code::BundleChanged,
        _ => Code::Readback,
    };
    Error::new(
        code,
        format!("the bundle read back from disk does not verify: {e}"),
    )
    .with_source(e)
}
