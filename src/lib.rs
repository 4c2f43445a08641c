//! airlock: carry data across an air gap in signed, optionally encrypted
//! bundles. The library does the work; `src/main.rs` only parses arguments
//! and prints. The library never prints and never exits.
//!
//! The folders of `src/` are the layers (docs/architecture.md), each using
//! only those below it: `base` < `io`, `net` < `crypto` < `format` <
//! `verify` < `state` < `export` (isolated side), `connected`, `appliance`
//! (isolated side, licence in) < `config` < `sample` (hidden). A layer named for its job is a
//! public module; a folder that only groups (`base`, `io`, `crypto`,
//! `connected`) is private and its modules are re-exported by name below.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod base;
mod connected;
mod crypto;
mod io;

pub mod appliance;
pub mod config;
pub mod export;
pub mod format;
pub mod net;
pub mod state;
pub mod verify;

/// Sample data (usage files, stand-in licences) that `airlock demo`, the
/// fixtures and the tests share. Not part of the API.
#[doc(hidden)]
pub mod sample;

pub use base::{build_info, clock, error, names, progress};
pub use connected::{cloud, confirm, fleet, handover, import, report, watch};
pub use crypto::{agent, crypt, keys, sshsig, trust};
pub use format::{monitoring, usage};
pub use io::fsutil;
pub use state::{ledger, lifecycle};

pub use error::{Code, Error, Result};

/// `airlock X.Y.Z`, recorded in every manifest.
pub fn tool_version() -> String {
    format!("airlock {}", env!("CARGO_PKG_VERSION"))
}
