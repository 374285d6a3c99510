//! Whether a run's learner fits in this machine's memory, checked before anything is
//! allocated: a size that cannot fit is a clear error naming what to change, never an
//! allocator abort.

use anyhow::{Result, bail};
use spikerl_learner::prelude::ReplayBuffer;
use spikerl_snn::ActorSpec;

use crate::config::RunConfig;

/// The learner's large allocations, in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Footprint {
    pub replay: u128,
    /// Parameters with their targets, Adam moments and gradients.
    pub networks: u128,
    /// What one update keeps for its backward passes.
    pub update: u128,
}

impl Footprint {
    pub fn of(c: &RunConfig, spec: &ActorSpec) -> Self {
        let (od, ad) = (spec.obs_dim() as u128, spec.act_dim() as u128);
        let layers = |widths: &[usize]| -> u128 { widths.windows(2).map(|w| (w[0] as u128 + 1) * w[1] as u128).sum() };
        let (sizes, timesteps) = match spec {
            ActorSpec::Spiking(s) => (s.layer_sizes(), s.timesteps as u128),
            ActorSpec::Dense(d) => (d.layer_sizes(), 1),
        };
        let actor = layers(&sizes) + 2 * sizes[0] as u128;
        let mlp = |inputs: u128, hidden: &[usize], outputs: u128| {
            let mut widths = vec![inputs as usize];
            widths.extend(hidden);
            widths.push(outputs as usize);
            layers(&widths)
        };
        let critics = 2 * mlp(od + ad, &c.algorithm.critic_hidden, 1);
        let proxy = mlp(od, &c.algorithm.proxy_hidden, ad);
        // Online, target, two Adam moments, a gradient per learner thread (at least one).
        let copies = 5 + c.runtime.learner_threads.unwrap_or(1) as u128;
        let neurons: u128 = sizes.iter().map(|&n| n as u128).sum();
        let batch = c.algorithm.batch_size as u128;
        Self {
            replay: ReplayBuffer::bytes(spec.obs_dim(), spec.act_dim(), c.algorithm.replay_size),
            networks: 4 * copies * (actor + critics + proxy),
            // Spikes, voltages and their gradients of every neuron at every timestep, for the
            // actor's pass and the target's.
            update: 4 * 2 * 4 * timesteps * batch * neurons,
        }
    }

    pub fn total(&self) -> u128 {
        self.replay + self.networks + self.update
    }

    /// Fails, saying what to lower, if the learner would take more than `available` bytes.
    pub fn check(&self, available: Option<u64>) -> Result<()> {
        let Some(available) = available else { return Ok(()) };
        if self.total() > available as u128 {
            let gb = |b: u128| b as f64 / 1e9;
            bail!(
                "this run's learner needs about {:.1} GB — replay buffer {:.1} GB (--replay-size), networks and optimiser {:.1} GB (--actor-hidden, --critic-hidden), update {:.1} GB (--timesteps, --batch-size) — and this machine has {:.1} GB: lower those settings",
                gb(self.total()),
                gb(self.replay),
                gb(self.networks),
                gb(self.update),
                gb(available as u128)
            );
        }
        Ok(())
    }
}

/// This machine's memory (Linux: `MemTotal`; elsewhere unknown).
pub fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default Hopper learner is far below a gigabyte; a 4e9-transition replay buffer,
    /// 100 000-neuron layers or 1e8 timesteps are refused by name before any allocation.
    #[test]
    fn sizes_that_cannot_fit_are_named() {
        let c = RunConfig::preset("Hopper-v4", crate::config::Recipe::Spikerl);
        let spec = c.actor.spec(11, 3, 1.0).unwrap();
        let f = Footprint::of(&c, &spec);
        assert!(f.total() < 1 << 30, "{f:?}");
        assert_eq!(f.replay, 1_000_000 * (2 * 11 + 3 + 2) * 4);
        let machine = Some(24 << 30);
        assert!(f.check(machine).is_ok());
        let mut big = c.clone();
        big.algorithm.replay_size = 4_000_000_000;
        let err = Footprint::of(&big, &spec).check(machine).unwrap_err().to_string();
        assert!(err.contains("--replay-size") && err.contains("432.0 GB"), "{err}");
        // Shapes past the spec's bounds never get this far.
        for (hidden, timesteps) in [(vec![100_000, 100_000], 5), (vec![256, 256], 100_000_000)] {
            let mut a = c.actor.clone();
            a.actor_hidden = hidden;
            a.timesteps = timesteps;
            assert!(a.spec(11, 3, 1.0).is_err());
        }
        let mut wide = c.clone();
        wide.actor.actor_hidden = vec![8192, 8192];
        let spec = wide.actor.spec(11, 3, 1.0).unwrap();
        let err = Footprint::of(&wide, &spec).check(Some(1 << 30)).unwrap_err().to_string();
        assert!(err.contains("--actor-hidden"), "{err}");
    }
}
