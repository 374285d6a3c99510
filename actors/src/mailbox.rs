//! Coordination between a learner and its actors: the newest parameters, and how far ahead
//! of the learner the actors may run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spikerl_snn::ParamSet;

/// Holds only the newest `ParamSet`: a slow actor skips versions, never works through a
/// backlog.
#[derive(Default)]
pub struct ParamMailbox {
    latest: Mutex<Option<Arc<ParamSet>>>,
    version: AtomicU64,
}

impl ParamMailbox {
    pub fn publish(&self, params: ParamSet) {
        let version = params.version;
        *self.latest.lock().expect("mailbox lock") = Some(Arc::new(params));
        self.version.store(version, Ordering::Release);
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The newest parameters if newer than `have`.
    pub fn newer_than(&self, have: u64) -> Option<Arc<ParamSet>> {
        if self.version() <= have {
            return None;
        }
        self.latest.lock().expect("mailbox lock").clone()
    }
}

/// Back-pressure: actors reserve env steps against a budget the learner raises as it
/// updates, so that the replay ratio holds however fast either side runs.
pub struct Throttle {
    collected: AtomicU64,
    allowed: AtomicU64,
    stop: AtomicBool,
}

impl Throttle {
    pub fn new(allowed: u64) -> Self {
        Self { collected: AtomicU64::new(0), allowed: AtomicU64::new(allowed), stop: AtomicBool::new(false) }
    }

    /// Reserves `steps`, waiting while the budget is spent; false once stopped.
    pub fn reserve(&self, steps: u64) -> bool {
        let mut wait = Duration::from_micros(50);
        loop {
            if self.stop.load(Ordering::Acquire) {
                return false;
            }
            let have = self.collected.load(Ordering::Acquire);
            if have + steps <= self.allowed.load(Ordering::Acquire) {
                if self.collected.compare_exchange(have, have + steps, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    return true;
                }
                continue;
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_millis(5));
        }
    }

    pub fn set_allowed(&self, allowed: u64) {
        self.allowed.fetch_max(allowed, Ordering::AcqRel);
    }

    pub fn collected(&self) -> u64 {
        self.collected.load(Ordering::Acquire)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}
