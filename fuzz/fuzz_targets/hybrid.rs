//! Post-quantum (mlkem768x25519) age: recipient and identity strings, and
//! whole age files (header, hybrid stanzas, payload) decrypted with a fixed
//! hybrid identity and an X25519 one. Nothing may panic.
#![no_main]
use std::io::Read;
use std::str::FromStr;

use airlock::crypt::hybrid;
use libfuzzer_sys::fuzz_target;

const ID: &str = "AGE-SECRET-KEY-PQ-1XX76JRALNLXDMEW0CRK45QMCCH4X06SE84UN3VPM33W6HWDX0H3SK3ZQFR";

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hybrid::Recipient::from_str(text).map(|r| r.to_string());
        let _ = hybrid::Identity::from_str(text).map(|i| i.to_public());
    }
    let pq = hybrid::Identity::from_str(ID).expect("the spec's example identity");
    let x = age::x25519::Identity::generate();
    if let Ok(d) = age::Decryptor::new(data) {
        let ids: [&dyn age::Identity; 2] = [&pq, &x];
        if let Ok(mut s) = d.decrypt(ids.into_iter()) {
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
    }
});
