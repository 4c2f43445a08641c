//! SIGINT, SIGTERM and SIGHUP: remove this run's temporary files, report,
//! and exit with 128 + the signal's number (130, 143, 129), as shells do.
//!
//! A thread waits for the signals (signal-hook's iterator: the handler only
//! writes to a pipe). When one comes, the library removes every temporary
//! file and directory the run made and keeps new ones from being made; then
//! the process exits. Published files are complete (they are renamed into
//! place only after they were written and synced), so what is left is
//! either the old state or the new one, never a partial file.

use std::sync::atomic::{AtomicBool, Ordering};

use airlock::error::{Code, Error};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Start the signal thread. Without it (the system refused a thread), the
/// signals keep their default action; temporary files left then are swept
/// by the next run that writes to the same directory.
pub fn install() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    let _ = airlock::fsutil::spawn_thread("signals", airlock::fsutil::HELPER_STACK, move || {
        if let Some(sig) = signals.forever().next() {
            INTERRUPTED.store(true, Ordering::SeqCst);
            let removed = airlock::fsutil::remove_temporaries_for_exit();
            let name = match sig {
                SIGINT => "SIGINT",
                SIGTERM => "SIGTERM",
                _ => "SIGHUP",
            };
            let e = Error::new(
                Code::Interrupted,
                format!("interrupted by {name}; removed {removed} temporary file(s)"),
            );
            // A plugin runner reads one status line and 0-3 only.
            let code = if super::plugin_mode() { 3 } else { 128 + sig };
            super::print_error_exit(&e, super::json(), code);
            if super::plugin_mode() {
                super::raw_out(&format!("{}\n", super::check::unknown_line(&e)));
            }
            std::process::exit(code);
        }
    });
}

/// The main thread, failing because the signal thread removed its files,
/// waits here for the process to exit instead of reporting a second error.
pub fn wait_if_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}
