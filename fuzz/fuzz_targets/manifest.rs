//! The manifest parser and its semantic checks, plus the age header reader
//! that the recipient check runs on an encrypted member's first bytes.
#![no_main]
use airlock::bundle::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data) {
        let _ = m.check();
        let _ = m.created_time();
        let _ = m.expires_time();
        // What we write back must parse again to the same manifest.
        let again = Manifest::parse(&m.to_bytes()).expect("re-parse of written manifest");
        assert_eq!(again.to_bytes(), m.to_bytes());
    }
    let _ = airlock::crypt::header_stanzas(data);
});
