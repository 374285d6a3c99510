//! Which learner a new actor goes to, when several learners train one run: the first learner
//! an actor dials sends it on to the least-loaded one, so that actor machines need one address
//! however many learners there are.

use std::net::SocketAddr;
use std::sync::Mutex;

/// A learner actors can be sent to: its address and the name in its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerAddress {
    pub addr: SocketAddr,
    pub server_name: String,
}

/// The learners of a run with their loads (actors connected), as the learner that spreads
/// actors knows them.
#[derive(Debug)]
pub struct Spread {
    /// This learner's index in `learners`.
    me: usize,
    learners: Vec<LearnerAddress>,
    loads: Mutex<Vec<u64>>,
}

impl Spread {
    pub fn new(me: usize, learners: Vec<LearnerAddress>) -> Self {
        let loads = Mutex::new(vec![0; learners.len()]);
        Self { me, learners, loads }
    }

    /// Every learner's connected actors, as last counted.
    pub fn set_loads(&self, loads: &[u64]) {
        let mut l = self.loads.lock().expect("loads");
        if loads.len() == l.len() {
            l.copy_from_slice(loads);
        }
    }

    /// Where a new actor should go: `None` to stay here, else the least-loaded other learner
    /// (this one wins ties). Counts the actor there at once, so that a burst of new actors
    /// spreads before the next count.
    pub fn pick(&self) -> Option<LearnerAddress> {
        let mut loads = self.loads.lock().expect("loads");
        let least = (0..loads.len()).min_by_key(|&i| (loads[i], i != self.me, i))?;
        loads[least] += 1;
        (least != self.me).then(|| self.learners[least].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_actors_go_to_the_least_loaded_learner() {
        let at = |port| LearnerAddress { addr: SocketAddr::from(([10, 0, 0, 1], port)), server_name: "learner".into() };
        let spread = Spread::new(0, vec![at(7000), at(7001), at(7002)]);
        // Three actors in a burst: one each, this learner first.
        let picks: Vec<Option<u16>> = (0..3).map(|_| spread.pick().map(|l| l.addr.port())).collect();
        assert_eq!(picks, [None, Some(7001), Some(7002)]);
        // Counted loads replace the guesses: the emptiest learner is next.
        spread.set_loads(&[4, 1, 3]);
        assert_eq!(spread.pick().map(|l| l.addr.port()), Some(7001));
        spread.set_loads(&[2, 2, 2]);
        assert_eq!(spread.pick(), None);
        spread.set_loads(&[1, 2]);
        assert_eq!(spread.pick().map(|l| l.addr.port()), Some(7001), "a count of the wrong length is ignored");
    }
}
