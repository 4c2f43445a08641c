//! The stand-in appliance as the tests drive it: the files of its state
//! directory (what `airlock standin-appliance` reads and writes; see
//! src/cli/standin_appliance.rs) and its HTTP face, started as a process of
//! the real binary (`--serve-http`) and stopped when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

#[path = "../../src/cli/standin_appliance/files.rs"]
mod files;
#[allow(unused_imports)] // not every test binary names them
pub use files::*;

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
