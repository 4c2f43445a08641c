//! Bundle format v1 (docs/format.md): the canonical container, the signed
//! manifest, and the export and verification pipelines built on them.

pub use crate::format::{container, licence, manifest, rules};
pub(crate) use crate::format::types;
#[path = "../export/mod.rs"]
pub mod export;
#[path = "../export/sign.rs"]
pub mod sign;
#[path = "../export/stage.rs"]
mod stage;
#[path = "../verify/tee.rs"]
mod tee;
#[path = "../verify/mod.rs"]
pub mod verify;

pub use export::{export, BundleSpec, ExportOptions, ExportReport, Input, InputSource};
pub use manifest::Manifest;
pub use verify::{inspect, verify_file, Verified, VerifyOptions};
