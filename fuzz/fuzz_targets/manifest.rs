//! The manifest parser and its semantic checks, plus the age header reader
//! that the recipient check runs on an encrypted member's first bytes.
#![no_main]
use airlock::format::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data) {
        // Whatever parsed passed every rule; what we write back must parse
        // again to the same manifest.
        m.check().expect("a parsed manifest passes check");
        let again = Manifest::parse(&m.to_bytes()).expect("re-parse of written manifest");
        assert_eq!(again.to_bytes(), m.to_bytes());
        let _ = m.created.system_time();
    }
    let _ = airlock::crypt::header_stanzas(data);
});
