//! The ground under every pipeline: files and directories as airlock writes
//! them, one job per file. The `fsutil` module re-exports these items under
//! their old paths while callers move.

pub(crate) mod access;
pub(crate) mod blocks;
pub(crate) mod device;
pub(crate) mod dirs;
pub mod fsutil;
pub(crate) mod hash;
pub(crate) mod hooks;
pub(crate) mod mem;
pub(crate) mod publish;
pub(crate) mod sizes;
pub(crate) mod temp;
pub(crate) mod writeback;
