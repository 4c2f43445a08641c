//! The stand-in appliance as the tests drive it: the files of its state
//! directory (what `airlock standin-appliance` reads and writes; see
//! src/cli/standin_appliance.rs) and its HTTP face, started as a process of
//! the real binary (`--serve-http`) and stopped when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The active licence file (the appliance's `/data/user/common/enterprise.ghl`).
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
/// The host key (an OpenSSH public key line) the SSH face presents.
pub const HOST_KEY: &str = "host-key.pub";
/// Seats in use, a decimal number.
pub const SEATS_USED: &str = "seats-used";
/// One line per licence applied: its reference number.
pub const APPLIED_LOG: &str = "applied.log";

/// The stand-in's HTTP face (Manage API, REST licence endpoint), a child
/// process of the real binary.
pub struct ManageStandIn {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    child: Child,
}

impl ManageStandIn {
    /// Serve `state` with basic auth `api_key:password` and `token`.
    pub fn start(state: &Path, password: &str, token: &str) -> std::io::Result<ManageStandIn> {
        let mut child = Command::new(super::airlock_bin())
            .arg("standin-appliance")
            .arg("--state")
            .arg(state)
            .args(["--serve-http", password, token])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        let out = child.stdout.take().expect("piped stdout");
        BufReader::new(out).read_line(&mut line)?;
        let addr: SocketAddr = line
            .trim()
            .parse()
            .map_err(|e| std::io::Error::other(format!("stand-in address {line:?}: {e}")))?;
        Ok(ManageStandIn {
            url: format!("http://{addr}"),
            addr,
            child,
        })
    }
}

impl Drop for ManageStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
