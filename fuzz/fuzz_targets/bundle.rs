//! The container reader and the whole verify path: any bytes as a bundle file,
//! checked against the test trust store. Must return an error, never panic,
//! and never allocate beyond the reader's limits.
#![no_main]
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use airlock::crypt::Identities;
use airlock::format::container::Reader;
use airlock::trust::TrustStore;
use airlock::verify::{verify, VerifyOptions};
use libfuzzer_sys::fuzz_target;

fn trust() -> &'static TrustStore {
    static T: OnceLock<TrustStore> = OnceLock::new();
    T.get_or_init(|| {
        let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../keys");
        TrustStore::load(
            &keys.join("allowed_signers"),
            Some(&keys.join("revoked_keys")),
        )
        .expect("test trust store")
    })
}

fn file_with(data: &[u8]) -> std::fs::File {
    let mut f = tempfile::tempfile().expect("temp file");
    f.write_all(data).expect("write");
    f.seek(SeekFrom::Start(0)).expect("seek");
    f
}

fuzz_target!(|data: &[u8]| {
    // Layer 1: the strict container reader, then every member read in full.
    if let Ok(mut r) = Reader::open(file_with(data)) {
        let entries = r.entries().to_vec();
        for e in &entries {
            if let Ok(mut m) = r.member(e) {
                let _ = std::io::copy(&mut m.by_ref(), &mut std::io::sink());
            }
        }
    }
    // Layer 2: full verification (signature, trust, members, freshness).
    let ids = Identities::default();
    let opts = VerifyOptions {
        trust: trust(),
        identities: Some(&ids),
        require_signers: 1,
        now: (UNIX_EPOCH + Duration::from_secs(1_793_491_200)).into(),
        skew: Duration::from_secs(300),
    };
    let _ = verify(file_with(data), &opts);
});
