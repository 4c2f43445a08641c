//! What airlock reads and writes, byte for byte: the bundle's container,
//! manifest, rules and licence names (docs/format.md), the GHES usage file,
//! and the lines monitoring systems read.

pub mod container;
pub mod licence;
pub mod manifest;
pub mod monitoring;
pub mod rules;
pub(crate) mod types;
pub mod usage;
