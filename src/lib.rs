//! airlock: carry data across an air gap in signed, optionally encrypted
//! bundles. The library does the work; `src/main.rs` only parses arguments
//! and prints. The library never prints and never exits.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The folders are the layers (docs/architecture.md). This commit only
// moves files; the old paths below are kept until the next one.
mod base;
mod connected;
mod crypto;
mod format;
pub(crate) mod io;

pub mod appliance;
pub mod bundle;
pub mod config;
pub mod net;
#[path = "standin/sample.rs"]
pub mod sample;
pub mod standin;
pub mod state;
#[path = "state"]
mod state_files {
    pub mod ledger;
    pub mod lifecycle;
}

pub use base::{build_info, clock, error, names, progress};
pub use connected::{cloud, fleet, handover, import, report, watch};
pub use crypto::{agent, crypt, keys, sshsig, trust};
pub use format::{monitoring, usage};
pub use state_files::{ledger, lifecycle};
pub(crate) use io::{blocks, device};
pub use io::fsutil;

pub use error::{Code, Error, Result};

/// `airlock X.Y.Z`, recorded in every manifest.
pub fn tool_version() -> String {
    format!("airlock {}", env!("CARGO_PKG_VERSION"))
}
