//! airlock: carry data across an air gap in signed, optionally encrypted
//! bundles. The library does the work; `src/main.rs` only parses arguments
//! and prints. The library never prints and never exits.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod appliance;
pub(crate) mod blocks;
pub mod build_info;
pub mod bundle;
pub mod clock;
pub mod cloud;
pub mod config;
pub mod crypt;
pub(crate) mod device;
pub mod error;
pub mod fleet;
pub mod fsutil;
pub mod handover;
pub mod import;
pub(crate) mod io;
pub mod keys;
pub mod ledger;
pub mod lifecycle;
pub mod monitoring;
pub mod names;
pub mod net;
pub mod progress;
pub mod report;
pub mod sample;
pub mod sshsig;
pub mod standin;
pub mod state;
pub mod trust;
pub mod usage;
pub mod watch;

pub use error::{Code, Error, Result};

/// `airlock X.Y.Z`, recorded in every manifest.
pub fn tool_version() -> String {
    format!("airlock {}", env!("CARGO_PKG_VERSION"))
}
