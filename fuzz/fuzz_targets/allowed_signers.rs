//! allowed_signers and revoked-keys parsing (text lists and binary KRLs),
//! OpenSSH pattern lists and the time formats they use.
#![no_main]
use airlock::trust::{match_pattern_list, parse_allowed_signers, parse_revoked, parse_ssh_time};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Both parsers take raw bytes: BOM, NUL and invalid UTF-8 are theirs to
    // refuse; a binary KRL is bytes too.
    let _ = parse_allowed_signers("fuzz", data);
    let _ = parse_revoked("fuzz", data);
    let mut krl = b"SSHKRL\n\0\0\0\0\x01".to_vec();
    krl.extend_from_slice(data);
    let _ = parse_revoked("fuzz", &krl);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_ssh_time(text);
    if let Some((s, list)) = text.split_once('\n') {
        let _ = match_pattern_list(s, list);
    }
});
