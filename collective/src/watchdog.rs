//! A bound on how long a collective may wait: MPI and NCCL have no way to learn that another
//! rank died, so a survivor would wait in its next collective for ever.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Collective, CollectiveError};

/// Exit status of a rank that gave up waiting for the others.
pub const EXIT_PEER_LOST: i32 = 75;

/// A backend whose every operation is timed by a watchdog thread: one that lasts longer than
/// `timeout` ends the process (status [`EXIT_PEER_LOST`]) with a message naming the operation.
pub struct Watched {
    inner: Box<dyn Collective>,
    clock: Arc<Clock>,
}

struct Clock {
    start: Instant,
    /// Milliseconds since `start` at which the current operation began, plus one; 0 when idle.
    busy_since: AtomicU64,
    /// Which operation (an index into [`OPS`]).
    op: AtomicU64,
}

const OPS: [&str; 5] = ["all-reduce (mean)", "all-reduce (sum)", "broadcast", "barrier", "all-reduce on the device"];

impl Watched {
    pub fn new(inner: Box<dyn Collective>, timeout: Duration) -> Self {
        let clock = Arc::new(Clock { start: Instant::now(), busy_since: AtomicU64::new(0), op: AtomicU64::new(0) });
        let (watch, rank, world, backend) = (clock.clone(), inner.rank(), inner.world_size(), inner.backend());
        std::thread::Builder::new()
            .name("collective-watchdog".into())
            .spawn(move || {
                let tick = (timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
                loop {
                    std::thread::sleep(tick);
                    let since = watch.busy_since.load(Ordering::Acquire);
                    if since == 0 {
                        continue;
                    }
                    let waited = watch.start.elapsed().saturating_sub(Duration::from_millis(since - 1));
                    if waited > timeout {
                        let op = OPS[watch.op.load(Ordering::Relaxed) as usize];
                        eprintln!(
                            "error: learner rank {rank} of {world} waited {:.1} s in a {backend} {op} (the bound is {:.0} s, --rank-timeout): another learner died or hangs; this one stops too. Continue the run with --resume from its last checkpoint.",
                            waited.as_secs_f64(),
                            timeout.as_secs_f64()
                        );
                        // SAFETY: _exit ends the process at once; nothing here is left half-done
                        // that a clean exit could finish (the other ranks are gone).
                        unsafe { libc::_exit(EXIT_PEER_LOST) }
                    }
                }
            })
            .expect("a thread for the collective watchdog");
        Self { inner, clock }
    }

    fn timed<T>(&self, op: usize, f: impl FnOnce(&dyn Collective) -> T) -> T {
        self.clock.op.store(op as u64, Ordering::Relaxed);
        self.clock.busy_since.store(self.clock.start.elapsed().as_millis() as u64 + 1, Ordering::Release);
        let r = f(&*self.inner);
        self.clock.busy_since.store(0, Ordering::Release);
        r
    }
}

impl Collective for Watched {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn rank(&self) -> usize {
        self.inner.rank()
    }
    fn world_size(&self) -> usize {
        self.inner.world_size()
    }
    fn all_reduce_mean(&self, buf: &mut [f32]) -> Result<(), CollectiveError> {
        self.timed(0, |c| c.all_reduce_mean(buf))
    }
    fn all_reduce_sum(&self, buf: &mut [f64]) -> Result<(), CollectiveError> {
        self.timed(1, |c| c.all_reduce_sum(buf))
    }
    fn broadcast(&self, bytes: &mut Vec<u8>, root: usize) -> Result<(), CollectiveError> {
        self.timed(2, |c| c.broadcast(bytes, root))
    }
    fn barrier(&self) -> Result<(), CollectiveError> {
        self.timed(3, |c| c.barrier())
    }
    unsafe fn all_reduce_mean_device(&self, ptr: *mut f32, len: usize) -> Option<Result<(), CollectiveError>> {
        // SAFETY: the caller's promise, passed on.
        self.timed(4, |c| unsafe { c.all_reduce_mean_device(ptr, len) })
    }
    fn abort(&self, code: i32) -> ! {
        self.inner.abort(code)
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Instant;

    use super::*;
    use crate::Single;

    /// A backend whose peers never answer: every operation waits for ever.
    struct Deserted;

    impl Collective for Deserted {
        fn backend(&self) -> &'static str {
            "test"
        }
        fn rank(&self) -> usize {
            0
        }
        fn world_size(&self) -> usize {
            2
        }
        fn all_reduce_mean(&self, _buf: &mut [f32]) -> Result<(), CollectiveError> {
            loop {
                std::thread::park();
            }
        }
        fn all_reduce_sum(&self, _buf: &mut [f64]) -> Result<(), CollectiveError> {
            loop {
                std::thread::park();
            }
        }
        fn broadcast(&self, _bytes: &mut Vec<u8>, _root: usize) -> Result<(), CollectiveError> {
            Ok(())
        }
        fn barrier(&self) -> Result<(), CollectiveError> {
            Ok(())
        }
        fn abort(&self, code: i32) -> ! {
            std::process::exit(code)
        }
    }

    #[test]
    #[ignore = "run by `a_rank_whose_peers_died_stops_within_its_timeout` in a process of its own"]
    fn wait_for_a_dead_peer() {
        let c = Watched::new(Box::new(Deserted), Duration::from_millis(500));
        // Operations that return are not timed out, however many.
        let ok = Watched::new(Box::new(Single), Duration::from_millis(50));
        for _ in 0..100 {
            ok.barrier().unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = c.all_reduce_sum(&mut [1.0]);
        unreachable!("the watchdog ends the process");
    }

    #[test]
    fn a_rank_whose_peers_died_stops_within_its_timeout() {
        let start = Instant::now();
        let out = Command::new(std::env::current_exe().unwrap()).args(["watchdog::tests::wait_for_a_dead_peer", "--exact", "--ignored", "--nocapture"]).output().unwrap();
        let waited = start.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(EXIT_PEER_LOST), "{:?}: {stderr}", out.status);
        assert!(stderr.contains("waited") && stderr.contains("all-reduce (sum)") && stderr.contains("--rank-timeout"), "{stderr}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }
}
