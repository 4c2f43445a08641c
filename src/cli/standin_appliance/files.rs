//! The stand-in appliance's state directory: the file names it reads and
//! writes. tests/common/standin.rs includes this file, so the tests and the
//! stand-in name the same files.

/// The active licence file in the state directory.
pub const ACTIVE_FILE: &str = "enterprise.ghl";
/// Marker: a config-apply is running; applying is refused (busy).
pub const BUSY: &str = "config-apply-running";
/// Marker: an apply reports success but the old licence stays active.
pub const LIE: &str = "lie-after-apply";
/// Marker: the check says the active licence is invalid.
pub const CHECK_INVALID: &str = "check-invalid";
/// Marker: SSH logins are refused ("Permission denied").
pub const DENY_LOGIN: &str = "deny-login";
/// Marker: SSH cannot connect ("Connection refused").
pub const UNREACHABLE: &str = "unreachable";
/// The host key (an OpenSSH public key line) the SSH face presents when it
/// acts as the SSH command.
pub const HOST_KEY: &str = "host-key.pub";
/// Seats in use, a decimal number.
pub const SEATS_USED: &str = "seats-used";
/// One line per licence applied: its reference number.
pub const APPLIED_LOG: &str = "applied.log";
