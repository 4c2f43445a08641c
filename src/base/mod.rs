//! The ground every other layer stands on: errors and their codes, time as
//! an input, names as bytes, the build's own facts, and the progress sink.

pub mod build_info;
pub mod clock;
pub mod error;
pub mod names;
pub mod progress;
