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

    /// Reserves up to `steps` env steps, in multiples of `unit` (an actor's env count),
    /// waiting while less than one unit is left; 0 once stopped.
    pub fn reserve(&self, steps: u64, unit: u64) -> u64 {
        let mut wait = Duration::from_micros(50);
        loop {
            if self.stop.load(Ordering::Acquire) {
                return 0;
            }
            let have = self.collected.load(Ordering::Acquire);
            let left = self.allowed.load(Ordering::Acquire).saturating_sub(have);
            let grant = steps.min(left) / unit * unit;
            if grant > 0 {
                if self.collected.compare_exchange(have, have + grant, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    return grant;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_grants_whole_units_up_to_the_budget_and_releases_on_stop() {
        let t = Arc::new(Throttle::new(10));
        assert_eq!(t.reserve(8, 4), 8);
        assert_eq!(t.reserve(8, 1), 2, "the tail of the budget is granted, not withheld");
        let waiting = {
            let t = t.clone();
            std::thread::spawn(move || t.reserve(4, 4))
        };
        std::thread::sleep(Duration::from_millis(20));
        t.set_allowed(14);
        assert_eq!(waiting.join().unwrap(), 4);
        let blocked = {
            let t = t.clone();
            std::thread::spawn(move || t.reserve(4, 4))
        };
        t.stop();
        assert_eq!(blocked.join().unwrap(), 0);
        assert_eq!(t.collected(), 14);
    }

    #[test]
    fn mailbox_hands_out_only_the_newest_version() {
        let m = ParamMailbox::default();
        assert!(m.newer_than(0).is_none());
        let spec = spikerl_snn::PopSanSpec::new(3, 1, 1.0);
        for v in 1..=3 {
            let mut p = ParamSet::init(&spec, v).unwrap();
            p.version = v;
            m.publish(p);
        }
        assert_eq!(m.newer_than(0).unwrap().version, 3);
        assert!(m.newer_than(3).is_none());
    }
}
