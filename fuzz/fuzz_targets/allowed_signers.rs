//! allowed_signers and revoked-keys parsing, OpenSSH pattern lists and the
//! time formats they use.
#![no_main]
use airlock::trust::{match_pattern_list, parse_allowed_signers, parse_revoked, parse_ssh_time};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_allowed_signers("fuzz", text);
    let _ = parse_revoked("fuzz", text);
    let _ = parse_ssh_time(text);
    if let Some((s, list)) = text.split_once('\n') {
        let _ = match_pattern_list(s, list);
    }
});
