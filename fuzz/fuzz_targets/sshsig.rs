//! SSHSIG parsing (armored and binary) and verification, and OpenSSH public
//! key parsing.
#![no_main]
use airlock::sshsig::{PublicKey, SshSig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for sig in [SshSig::from_armored(data), SshSig::from_blob(data)]
        .into_iter()
        .flatten()
    {
        let _ = sig.verify(b"airlock fuzz message");
        let _ = sig.user_present();
        // Serialising a parsed signature must give a blob that parses again.
        let blob = sig.to_blob();
        SshSig::from_blob(&blob).expect("re-parse of written signature");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let mut parts = text.splitn(2, ' ');
        if let (Some(t), Some(b)) = (parts.next(), parts.next()) {
            if let Ok(k) = PublicKey::from_openssh_parts(t, b) {
                let _ = k.verifying_key();
                let _ = k.fingerprint();
            }
        }
    }
});
