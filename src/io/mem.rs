//! Resources allocated fallibly: large I/O buffers and helper threads,
//! which under a memory limit must fail with `RESOURCES`, not abort.

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

/// Stack size of airlock's helper threads (hashing, parsing, writeback):
/// they need little, and a small stack leaves more of a limited address
/// space to the rest.
const HELPER_STACK: usize = 256 * 1024;

/// What a new thread needs besides its stack (its signal stack, guard
/// pages, thread-local storage), generously.
const THREAD_OVERHEAD: usize = 1 << 20;

/// A thread builder for a helper thread, or `RESOURCES` when the address
/// space is too short to start one safely. The standard library panics
/// inside a new thread whose signal stack cannot be allocated, and under a
/// memory limit that panic cannot print and hangs the process; so first
/// reserve (and free) more than a thread needs, fallibly, and refuse early.
pub(crate) fn helper_thread(name: &str) -> crate::Result<std::thread::Builder> {
    let mut probe: Vec<u8> = Vec::new();
    probe
        .try_reserve_exact(4 * HELPER_STACK + THREAD_OVERHEAD)
        .map_err(|e| {
            crate::Error::new(
                crate::Code::Resources,
                format!("not enough memory to start the {name} thread: {e}"),
            )
        })?;
    // Touching nothing: the reservation alone proves the address space.
    drop(probe);
    Ok(std::thread::Builder::new()
        .name(name.into())
        .stack_size(HELPER_STACK))
}
