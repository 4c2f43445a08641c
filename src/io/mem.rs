//! Resources allocated fallibly: large I/O buffers and helper threads,
//! which under a memory limit must fail with `RESOURCES`, not abort.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{JoinHandle, Scope, ScopedJoinHandle};

/// A zeroed I/O buffer of `n` bytes, allocated fallibly: under a memory
/// limit the large buffers are where allocation fails, and that must be an
/// error with a code, not an abort.
pub fn buffer(n: usize) -> crate::Result<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|e| {
        crate::Error::new(
            crate::Code::Resources,
            format!("cannot allocate a {} KiB buffer: {e}", n / 1024),
        )
    })?;
    // Zeroed by copying a zero block: `resize` writes byte by byte in
    // debug builds, a third of a debug import's time (tests).
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    while v.len() < n {
        let k = (n - v.len()).min(ZEROS.len());
        v.extend_from_slice(&ZEROS[..k]);
    }
    Ok(v)
}

/// Stack size of airlock's helper threads (hashing, parsing, writeback,
/// pipes): they need little, and a small stack leaves more of a limited
/// address space to the rest.
pub const HELPER_STACK: usize = 256 * 1024;

/// Stack size of a thread that runs a whole command (the watcher): the
/// standard library's default for new threads.
pub const WORKER_STACK: usize = 2 << 20;

/// What a new thread needs besides its stack (its signal stack, guard
/// pages, thread-local storage, its first allocations), generously.
const THREAD_OVERHEAD: usize = 1 << 20;

/// Start a thread named `name` with a `stack`-byte stack running `f`, or
/// `RESOURCES` when the system refuses it, never a panic.
///
/// The standard library allocates a new thread's signal stack inside the
/// thread, and when that fails it panics where the panic cannot unwind:
/// the process aborts or hangs. So first map (and unmap) more address space
/// than the thread needs, and refuse early if that fails; then wait until
/// the thread runs, so that this thread cannot take the room meanwhile.
/// The probe is a real mapping, not a heap allocation: glibc keeps a freed
/// block of a size it has seen before in the heap, where it proves nothing
/// and takes the very room the thread needs (a CI run at 25 MiB).
pub fn spawn_thread<F, T>(name: &str, stack: usize, f: F) -> crate::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (ready, started) = start_signal(name, stack)?;
    let handle = builder(name, stack)
        .spawn(move || {
            let _ = ready.send(());
            f()
        })
        .map_err(|e| refused(name, e))?;
    let _ = started.recv();
    Ok(handle)
}

/// [`spawn_thread`] for a scoped thread (one that borrows from the caller).
pub(crate) fn spawn_scoped<'scope, F, T>(
    scope: &'scope Scope<'scope, '_>,
    name: &str,
    stack: usize,
    f: F,
) -> crate::Result<ScopedJoinHandle<'scope, T>>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    let (ready, started) = start_signal(name, stack)?;
    let handle = builder(name, stack)
        .spawn_scoped(scope, move || {
            let _ = ready.send(());
            f()
        })
        .map_err(|e| refused(name, e))?;
    let _ = started.recv();
    Ok(handle)
}

/// Prove the room for a thread with a `stack`-byte stack, and make the
/// channel it reports its start through (allocated here: sending on it
/// from the new thread allocates nothing).
fn start_signal(name: &str, stack: usize) -> crate::Result<(SyncSender<()>, Receiver<()>)> {
    let probe = memmap2::MmapOptions::new()
        .len(stack.saturating_add(THREAD_OVERHEAD))
        .map_anon()
        .map_err(|e| {
            crate::Error::new(
                crate::Code::Resources,
                format!("not enough memory to start a helper thread ({name}): {e}"),
            )
        })?;
    // Untouched: mapping it proves the address space; unmapping returns it.
    drop(probe);
    Ok(sync_channel(1))
}

fn builder(name: &str, stack: usize) -> std::thread::Builder {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(stack)
}

fn refused(name: &str, e: std::io::Error) -> crate::Error {
    crate::Error::new(
        crate::Code::Resources,
        format!("cannot start a helper thread ({name}): {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_runs_and_returns() {
        let h = spawn_thread("t", HELPER_STACK, || 6 * 7).unwrap();
        assert_eq!(h.thread().name(), Some("t"));
        assert_eq!(h.join().unwrap(), 42);
    }

    #[test]
    fn a_scoped_thread_borrows() {
        let mut v = vec![1, 2, 3];
        std::thread::scope(|s| {
            let h = spawn_scoped(s, "t", HELPER_STACK, || v.push(4)).unwrap();
            h.join().unwrap();
        });
        assert_eq!(v, [1, 2, 3, 4]);
    }

    #[test]
    fn a_stack_beyond_the_address_space_is_resources() {
        let e = spawn_thread("t", usize::MAX, || ()).unwrap_err();
        assert_eq!(e.code, crate::Code::Resources);
        assert!(e.cause.contains("a helper thread (t)"), "{}", e.cause);
    }
}
