//! The old paths of the file-system helpers, which now live in `crate::io`
//! one job per file (publication, temporary files, output directories,
//! access, hashing, buffers and threads, writeback, test hooks). Callers
//! move to the new paths later; nothing here but re-exports.

pub(crate) use crate::io::access::other_process_running;
pub use crate::io::access::{effective_uid, run_as_owner, OutboxAccess, OUTBOX_GROUP};
pub(crate) use crate::io::dirs::real_subdir;
pub use crate::io::dirs::{ensure_dir, ensure_mounted_media, parent_dir};
pub use crate::io::hash::sha256_file;
pub(crate) use crate::io::hash::Hasher;
pub(crate) use crate::io::hooks::{fault_point, injected_read_error};
pub use crate::io::hooks::{injected_disk_full, pause_point, Fault, Pause};
pub use crate::io::mem::buffer;
pub(crate) use crate::io::mem::helper_thread;
pub(crate) use crate::io::publish::{persist_noclobber, publish_synced, sync_dir, write_atomic_as};
pub use crate::io::publish::{publish, write_atomic};
pub use crate::io::temp::{remove_temporaries_for_exit, track_temp_dir};
pub(crate) use crate::io::temp::{sweep_stale, temp_beside};
pub(crate) use crate::io::writeback::{evict_cache, EarlyWriteback};
