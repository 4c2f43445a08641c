//! Bundle format v1 (docs/format.md): the canonical container, the signed
//! manifest, and the export and verification pipelines built on them.

pub mod container;
pub mod export;
pub mod licence;
pub mod manifest;
pub mod rules;
pub mod sign;
mod stage;
mod tee;
mod types;
pub mod verify;

pub use export::{export, BundleSpec, ExportOptions, ExportReport, Input, InputSource};
pub use manifest::Manifest;
pub use verify::{inspect, verify_file, Verified, VerifyOptions};
