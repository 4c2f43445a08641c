//! The file-system helpers the binary uses, and, inside the crate, the old
//! paths of the helpers that live in `crate::io` one job per file
//! (publication, temporary files, output directories, access, hashing,
//! buffers and threads, writeback, test hooks). Nothing here but
//! re-exports; only the first group is public.

pub use crate::io::access::effective_uid;
pub use crate::io::dirs::{ensure_dir, parent_dir};
pub use crate::io::hash::sha256_file;
pub use crate::io::publish::write_atomic;
/// The binary's signal handling and its test hooks' pause points: not API.
#[doc(hidden)]
pub use crate::io::{
    hooks::pause_point,
    temp::{remove_temporaries_for_exit, track_temp_dir},
};

pub(crate) use crate::io::access::{other_process_running, run_as_owner, OutboxAccess};
pub(crate) use crate::io::dirs::{ensure_mounted_media, real_subdir};
pub(crate) use crate::io::hash::Hasher;
pub(crate) use crate::io::hooks::{
    fault_point, injected_disk_full, injected_read_error, Fault, Pause,
};
pub(crate) use crate::io::mem::{buffer, spawn_scoped};
pub use crate::io::mem::{spawn_thread, HELPER_STACK, WORKER_STACK};
pub(crate) use crate::io::publish::{
    persist_noclobber, publish, publish_synced, sync_dir, write_atomic_as,
};
pub(crate) use crate::io::temp::{sweep_stale, temp_beside};
pub(crate) use crate::io::writeback::{evict_cache, EarlyWriteback};
