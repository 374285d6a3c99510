//! Ctrl-C (or SIGTERM, as batch schedulers send) ends a run the way reaching `--steps` does:
//! last checkpoint, report, curve. A second one within 2 s of the first is the same request;
//! a later one aborts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

pub fn stop_on_ctrl_c() {
    static ONCE: Once = Once::new();
    static FIRST: OnceLock<Instant> = OnceLock::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            let first = *FIRST.get_or_init(Instant::now);
            if STOP.swap(true, Ordering::SeqCst) {
                // One Ctrl-C under `make run` reaches this process several times (the terminal's
                // SIGINT, then make's own): only a later one means "abort".
                if first.elapsed() < Duration::from_secs(2) {
                    return;
                }
                // SAFETY: _exit ends the process at once, without running atexit handlers or
                // C++ static destructors, which would pull libtorch's global state from under
                // learner threads still inside it.
                unsafe { libc::_exit(130) };
            }
            eprintln!("\nstopping: finishing the checkpoint and the report (Ctrl-C again to abort)");
        });
    });
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
