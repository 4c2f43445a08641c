//! Block sizes, one per purpose, each named for it. They are 1 MiB
//! because large reads and writes are markedly faster than 64 KiB ones,
//! and a whole number of age chunks (64 KiB), so a block never splits a
//! chunk; they are separate so that one can change without the others.

/// A payload block read once and shared, not copied, with the hashing,
/// parsing, sealing and writing threads (the pools of shared blocks): export's
/// read of an input and verification's read of a bundle member.
pub(crate) const SHARED_BLOCK: usize = 1 << 20;

/// One direct-I/O (`O_DIRECT`) write or read of a bundle on its device
/// (the device writer and reader): a multiple of the 4 KiB alignment.
pub(crate) const DIRECT_BLOCK: usize = 1 << 20;

/// The buffer a member or file is streamed through when it is not in
/// shared blocks: signing's copy of a bundle, hashing a whole file,
/// verification's read of each payload member.
pub(crate) const STREAM_BUFFER: usize = 1 << 20;

/// Bytes written between two early writeback requests (`fdatasync` on a
/// helper thread, or the device writer's flush), so the final fsync has
/// little left to wait for.
pub(crate) const WRITEBACK_EVERY: u64 = 32 << 20;
