//! Cumulative hardware counters that wrap around.

/// Increments of a counter that counts up to `range` (exclusive) and starts again at 0, as
/// RAPL's `energy_uj` does at `max_energy_range_uj`. Read it more often than it can wrap
/// twice (a package at 200 W wraps a 262 J·10⁶ range in about 20 minutes).
#[derive(Debug, Clone)]
pub struct WrappingCounter {
    range: u64,
    last: Option<u64>,
}

impl WrappingCounter {
    /// `range`: the value at which the counter restarts from 0 (0: it never wraps).
    pub fn new(range: u64) -> Self {
        Self { range, last: None }
    }

    /// The increment since the previous reading (0 for the first, which sets the baseline).
    pub fn advance(&mut self, now: u64) -> u64 {
        let increment = match self.last {
            None => 0,
            Some(last) if now >= last => now - last,
            // Wrapped: up to the end of the range, then from 0.
            Some(last) if self.range > last => self.range - last + now,
            // A counter that went back without a known range (a reset): start again from it.
            Some(_) => 0,
        };
        self.last = Some(now);
        increment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_add_up_across_a_wrap() {
        let mut c = WrappingCounter::new(1000);
        assert_eq!(c.advance(900), 0, "the first reading is the baseline");
        assert_eq!(c.advance(950), 50);
        assert_eq!(c.advance(20), 70, "50 to the end of the range, then 20");
        assert_eq!(c.advance(20), 0);
    }

    #[test]
    fn a_counter_without_a_range_that_goes_back_restarts() {
        let mut c = WrappingCounter::new(0);
        c.advance(500);
        assert_eq!(c.advance(100), 0);
        assert_eq!(c.advance(160), 60);
    }
}
