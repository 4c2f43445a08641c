//! Test hooks, in one place: every fault and pause point airlock has, and
//! the environment variables that arm them. They act in debug builds only
//! (`cfg(debug_assertions)`, what `cargo test` builds); release builds
//! read none of these variables and compile every hook to nothing.
//!
//! - `AIRLOCK_FAULT=NAME` arms one [`Fault`] (its [`Fault::name`]).
//! - `AIRLOCK_PAUSE=NAME[,NAME…]` with `AIRLOCK_PAUSE_DIR=DIR` arms
//!   [`Pause`] points.
//! - `AIRLOCK_TEST_MEDIA_ROOTS=DIR[:DIR…]` replaces the media roots
//!   (tests cannot mount a stick under /media).
//!
//! The names are the tests' contract (tests/faults.rs, tests/watch.rs, …):
//! never rename one.

use std::path::{Path, PathBuf};

use crate::base::error::{Error, Result};

/// Declares an enum of hook points and the name each is armed by.
macro_rules! points {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vm])* $v,)* }

        impl $name {
            /// Every point, for the tests.
            #[cfg(test)]
            pub const ALL: &'static [$name] = &[$($name::$v,)*];

            /// The name a test arms it by.
            pub fn name(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
        }
    };
}

points! {
    /// What `AIRLOCK_FAULT` can name.
    Fault {
        /// Export aborts once the sequence number is reserved in the ledger.
        ExportReserved = "export:reserved",
        /// Export aborts once the bundle is written, before its read-back.
        ExportWritten = "export:written",
        /// Export aborts once the bundle is published.
        ExportPublished = "export:published",
        /// A destination's staged file aborts once synced, before its rename.
        PublishSynced = "publish:synced",
        /// Publication by reservation aborts between reserving and renaming.
        PublishReserved = "publish:reserved",
        /// The hand-over fails as a full disk would.
        HandoverDiskFull = "handover:disk-full",
        /// The hand-over aborts once the payload is published.
        HandoverPayloadPublished = "handover:payload-published",
        /// Import aborts once the bundle is handed over, before the record.
        ImportHandedOver = "import:handed-over",
        /// Import aborts once the bundle is verified and staged, before the
        /// ledger's rules.
        ImportVerified = "import:verified",
        /// Import aborts once the ledger accepted the bundle.
        ImportAccepted = "import:accepted",
        /// The atomic no-clobber rename fails as without hard links.
        NoHardLinks = "no-hard-links",
        /// A read fails with EIO past the first 1 MiB of a stream.
        ReadError = "read-error",
    }
}

points! {
    /// What `AIRLOCK_PAUSE` can name.
    Pause {
        /// Verification has checked the signature, not yet the payload.
        VerifySigned = "verify:signed",
        /// Verification has read the payload, not yet decided.
        VerifyPayloadRead = "verify:payload-read",
        /// The watcher has claimed a bundle.
        WatchClaimed = "watch:claimed",
        /// Verification refused a bundle, before import records the refusal.
        ImportRefused = "import:refused",
    }
}

/// Whether `AIRLOCK_FAULT` names `f` (debug builds only).
fn armed(f: Fault) -> bool {
    #[cfg(debug_assertions)]
    return std::env::var("AIRLOCK_FAULT").as_deref() == Ok(f.name());
    #[cfg(not(debug_assertions))]
    {
        let _ = f;
        false
    }
}

/// `AIRLOCK_FAULT=no-hard-links`: the atomic no-clobber rename is to fail
/// as on a file system without hard links.
pub(crate) fn no_hard_links() -> bool {
    armed(Fault::NoHardLinks)
}

/// Past how many bytes of a stream `read-error` fails a read.
const READ_ERROR_AFTER: u64 = 1 << 20;

/// `AIRLOCK_FAULT=read-error`: a read fails with EIO once more than
/// [`READ_ERROR_AFTER`] bytes have been read from the same stream (an input
/// file or a bundle member), as a failing disk or a pulled USB stick would.
pub(crate) fn injected_read_error(done: u64) -> std::io::Result<()> {
    if done > READ_ERROR_AFTER && armed(Fault::ReadError) {
        return Err(std::io::Error::from_raw_os_error(5));
    }
    Ok(())
}

/// When `AIRLOCK_FAULT` names `point`, fail as a full disk would (ENOSPC
/// writing `path`).
pub fn injected_disk_full(point: Fault, path: &Path) -> Result<()> {
    if armed(point) {
        return Err(Error::io_write(path, std::io::Error::from_raw_os_error(28)));
    }
    Ok(())
}

/// For crash tests: abort the process (no destructors run, as with
/// `kill -9`) when `AIRLOCK_FAULT` names `point`.
pub(crate) fn fault_point(point: Fault) {
    if armed(point) {
        std::process::abort();
    }
}

/// For races: when `AIRLOCK_PAUSE` names `point`, create
/// `$AIRLOCK_PAUSE_DIR/POINT.reached`, then wait (at most 60 s) until
/// `$AIRLOCK_PAUSE_DIR/POINT.go` exists. Tests use it to rewrite a bundle
/// between two steps, or to let time pass, at an exact moment.
pub fn pause_point(point: Pause) {
    #[cfg(debug_assertions)]
    {
        let point = point.name();
        if std::env::var("AIRLOCK_PAUSE").is_ok_and(|v| v.split(',').any(|p| p == point)) {
            if let Some(dir) = std::env::var_os("AIRLOCK_PAUSE_DIR") {
                let dir = PathBuf::from(dir);
                let _ = std::fs::write(dir.join(format!("{point}.reached")), b"");
                let go = dir.join(format!("{point}.go"));
                for _ in 0..6000 {
                    if go.exists() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// The media roots `AIRLOCK_TEST_MEDIA_ROOTS` gives (colon-separated, each
/// made canonical when it exists), or `None` to use the real ones.
pub(crate) fn media_roots() -> Option<Vec<PathBuf>> {
    #[cfg(debug_assertions)]
    if let Some(v) = std::env::var_os("AIRLOCK_TEST_MEDIA_ROOTS") {
        use std::os::unix::ffi::OsStrExt;
        return Some(
            v.as_bytes()
                .split(|&b| b == b':')
                .filter(|r| !r.is_empty())
                .map(|r| {
                    let p = PathBuf::from(std::ffi::OsStr::from_bytes(r));
                    std::fs::canonicalize(&p).unwrap_or(p)
                })
                .collect(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_names_are_unique_and_kept() {
        let mut names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
        names.extend(Pause::ALL.iter().map(|p| p.name()));
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        assert_eq!(Fault::ExportWritten.name(), "export:written");
        assert_eq!(Pause::WatchClaimed.name(), "watch:claimed");
    }
}
