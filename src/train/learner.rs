//! The learner's side of a run, whichever runtime drives it: TD3 (with the observation
//! normaliser inside), the replay buffer, counters and the training-episode statistics.

use std::collections::VecDeque;

use std::sync::Arc;

use anyhow::{Result, bail};
use spikerl_learner::collective::Collective;
use spikerl_learner::checkpoint::{Checkpoint, ReplayState};
use spikerl_learner::prelude::*;
use spikerl_learner::UpdateOutcome;
use spikerl_net::{EpisodeSummary, TransitionBatch};
use spikerl_snn::ParamSet;
use spikerl_snn::rng::SplitMix;

use super::Run;
use super::ranks::RankFigures;

/// Updates skipped in a row (non-finite losses or gradients) after which a run stops.
pub const MAX_SKIPPED_IN_A_ROW: u32 = 100;

pub struct Learner {
    pub td3: Box<dyn Agent>,
    pub replay: ReplayBuffer,
    minibatch: Minibatch,
    /// Env steps and episodes this learner took in.
    pub env_steps: u64,
    pub episodes: u64,
    /// The run's, over every learner rank (this learner's alone when it is the only one; with
    /// several, as of the last [`super::ranks::Round`]).
    pub run_env_steps: u64,
    pub run_episodes: u64,
    /// The smallest replay shard of the run's learners.
    pub smallest_replay: usize,
    /// Learner ranks in the run.
    pub world: usize,
    /// With several ranks: observations taken in since the last round, which merges every
    /// rank's into the normaliser at once.
    pub unshared_observations: Option<Normalizer>,
    /// Version of the parameters last published.
    pub version: u64,
    recent: VecDeque<EpisodeSummary>,
    lag_sum: u64,
    lag_batches: u64,
    limits: IntakeLimits,
    skipped_in_a_row: u32,
    /// Batches [`Learner::ingest`] refused this session.
    pub refused_batches: u64,
}

/// What a batch may hold beyond its shape: actions inside the task's action space, and
/// observations and rewards within the run's bounds.
struct IntakeLimits {
    action_space: spikerl_envs::BoxSpace,
    max_abs_obs: f32,
    max_abs_reward: f32,
}

impl IntakeLimits {
    fn check(&self, batch: &TransitionBatch) -> Result<(), String> {
        let (low, high) = (&self.action_space.low, &self.action_space.high);
        for (i, a) in batch.act.iter().enumerate() {
            let k = i % low.len();
            // Actors clip in f32, as the bounds are; a rounding step of slack.
            let slack = 1e-5 * (high[k] - low[k]).abs().max(1.0);
            if !(*a >= low[k] - slack && *a <= high[k] + slack) {
                return Err(format!("action component {k} = {a} lies outside the action space [{}, {}]", low[k], high[k]));
            }
        }
        if let Some(o) = batch.obs.iter().chain(&batch.next_obs).find(|o| o.abs() > self.max_abs_obs) {
            return Err(format!("observation component {o} lies beyond ±{} (--max-abs-obs)", self.max_abs_obs));
        }
        if let Some(r) = batch.rew.iter().find(|r| r.abs() > self.max_abs_reward) {
            return Err(format!("reward {r} lies beyond ±{} (--max-abs-reward)", self.max_abs_reward));
        }
        if batch.episodes.iter().any(|e| !e.ret.is_finite()) {
            return Err("an episode summary's return is not finite".into());
        }
        Ok(())
    }
}

impl Learner {
    pub fn new(run: &Run) -> Result<Self> {
        let c = &run.config;
        let spec = c.actor.spec(run.task.obs_dim, run.task.act_dim, run.task.act_limit)?;
        let threads = c.runtime.learner_threads.unwrap_or_else(super::cores);
        let td3 = build(c.algorithm.clone(), spec, c.actor.surrogate, run.device, run.precision, c.runtime.seed, threads).map_err(anyhow::Error::msg)?;
        let replay = ReplayBuffer::try_new(run.task.obs_dim, run.task.act_dim, c.algorithm.replay_size).map_err(anyhow::Error::msg)?;
        let limits = IntakeLimits { action_space: run.task.action_space.clone(), max_abs_obs: c.runtime.max_abs_obs as f32, max_abs_reward: c.runtime.max_abs_reward as f32 };
        Ok(Self { td3, replay, minibatch: Minibatch::default(), env_steps: 0, episodes: 0, run_env_steps: 0, run_episodes: 0, smallest_replay: 0, world: 1, unshared_observations: None, version: 0, recent: VecDeque::new(), lag_sum: 0, lag_batches: 0, limits, skipped_in_a_row: 0, refused_batches: 0 })
    }

    /// Puts a batch into replay (all of it or, if it is malformed or out of bounds, none of it).
    pub fn ingest(&mut self, batch: &TransitionBatch) -> Result<(), String> {
        let (od, ad) = self.replay.dims();
        if let Err(e) = batch.validate(od, ad).and_then(|()| self.limits.check(batch)) {
            self.refused_batches += 1;
            return Err(e);
        }
        for i in 0..batch.len() {
            self.replay.push(&batch.obs[i * od..(i + 1) * od], &batch.act[i * ad..(i + 1) * ad], batch.rew[i], &batch.next_obs[i * od..(i + 1) * od], batch.done[i]);
        }
        match &mut self.unshared_observations {
            Some(n) => n.update(&batch.obs),
            None => self.td3.normalizer_mut().update(&batch.obs),
        }
        self.env_steps += batch.len() as u64;
        self.episodes += batch.episodes.len() as u64;
        if self.world == 1 {
            (self.run_env_steps, self.run_episodes, self.smallest_replay) = (self.env_steps, self.episodes, self.replay.len());
        }
        for e in &batch.episodes {
            if self.recent.len() == 20 {
                self.recent.pop_front();
            }
            self.recent.push_back(*e);
        }
        if batch.policy_version > 0 {
            self.lag_sum += self.version.saturating_sub(batch.policy_version);
            self.lag_batches += 1;
        }
        Ok(())
    }

    /// One TD3 update on a fresh minibatch. Fails when the parameters became non-finite, or
    /// after [`MAX_SKIPPED_IN_A_ROW`] updates in a row skipped for non-finite losses or
    /// gradients: the run stops there, its last checkpoint the last good state.
    pub fn update(&mut self) -> Result<()> {
        let batch = self.td3.config().batch_size;
        // Sampling draws from the learner's generator, which checkpoints hold.
        self.replay.sample_into(batch, self.td3.rng_mut(), &mut self.minibatch);
        match self.td3.update(&self.minibatch)? {
            UpdateOutcome::Applied => self.skipped_in_a_row = 0,
            UpdateOutcome::Skipped => {
                self.skipped_in_a_row += 1;
                if self.skipped_in_a_row == 1 || self.td3.skipped_steps().is_multiple_of(100) {
                    tracing::warn!("update {}: a non-finite loss or gradient, step skipped ({} so far)", self.td3.updates(), self.td3.skipped_steps());
                }
                if self.skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW {
                    bail!("{MAX_SKIPPED_IN_A_ROW} updates in a row had a non-finite loss or gradient (at update {}): the replay data or the hyperparameters make TD3 diverge", self.td3.updates());
                }
            }
        }
        Ok(())
    }

    pub fn updates(&self) -> u64 {
        self.td3.updates()
    }

    /// Makes this learner rank `collective.rank()` of the run's: from here on it holds rank 0's
    /// state and steps with the others. `mine` is what a checkpoint kept of this rank (its
    /// counters and generator), if anything.
    pub fn join(&mut self, collective: Arc<dyn Collective>, seed: u64, mine: Option<RankFigures>) -> Result<()> {
        let (rank, world) = (collective.rank(), collective.world_size());
        self.world = world;
        self.unshared_observations = Some(Normalizer::new(self.replay.dims().0));
        match mine {
            Some(m) => {
                (self.env_steps, self.episodes) = (m.env_steps, m.episodes);
                *self.td3.rng_mut() = SplitMix::new(m.rng);
            }
            None => {
                // A fresh run, or one resumed with another number of learners: the run's
                // counts shared out, and a generator of this rank's own.
                (self.env_steps, self.episodes) = (self.run_env_steps / world as u64, self.run_episodes / world as u64);
                if rank > 0 {
                    *self.td3.rng_mut() = SplitMix::new(SplitMix::new(seed ^ (rank as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64());
                }
            }
        }
        // Rank 0's state arrives; the generator stays this rank's own (Agent::join keeps it).
        self.td3.join(collective)?;
        Ok(())
    }

    /// The current actor under the current version.
    pub fn params(&self) -> ParamSet {
        self.td3.param_set(self.version)
    }

    /// The next `ParamSet` version, for the actors.
    pub fn publish(&mut self) -> ParamSet {
        self.version += 1;
        self.params()
    }

    /// Updates owed for the data so far: `updates_per_step` per env step after `update_after`,
    /// none before a minibatch's worth is in replay. With N learner ranks an update takes N
    /// minibatches, so the run owes N times fewer.
    pub fn updates_due(&self) -> u64 {
        let c = self.td3.config();
        if self.run_env_steps < c.updates_start() || self.smallest_replay < c.batch_size {
            return 0;
        }
        ((self.run_env_steps - c.update_after) as f64 * c.updates_per_step / self.world as f64) as u64
    }

    /// Mean return and length of the last (up to 20) training episodes.
    pub fn recent_return(&self) -> Option<(f64, f64)> {
        let n = self.recent.len();
        (n > 0).then(|| (self.recent.iter().map(|e| e.ret).sum::<f64>() / n as f64, self.recent.iter().map(|e| e.len as f64).sum::<f64>() / n as f64))
    }

    /// Mean policy lag (versions behind the learner) of the batches since the last call.
    pub fn take_policy_lag(&mut self) -> Option<f64> {
        let lag = (self.lag_batches > 0).then(|| self.lag_sum as f64 / self.lag_batches as f64);
        self.lag_sum = 0;
        self.lag_batches = 0;
        lag
    }

    pub fn checkpoint(&self, run: &Run, runtime: Vec<u8>) -> Checkpoint {
        let c = &run.config;
        Checkpoint {
            env_id: c.env.clone(),
            algorithm: c.algorithm.clone(),
            actor: c.actor.clone(),
            precision: run.precision,
            seed: c.runtime.seed,
            sync: c.runtime.sync,
            env_steps: self.run_env_steps,
            episodes: self.run_episodes,
            param_version: self.version,
            td3: self.td3.state(),
            runtime,
            replay: c.runtime.save_replay.then(|| ReplayState::of(&self.replay)),
        }
    }

    /// Continues from `ck` (already checked to fit the run).
    pub fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        self.td3.load_state(ck.td3.clone()).map_err(anyhow::Error::msg)?;
        if let Some(r) = &ck.replay {
            if r.capacity != self.replay.capacity() || (r.obs_dim, r.act_dim) != self.replay.dims() {
                bail!("the checkpoint's replay buffer ({} × ({}, {})) does not fit this run", r.capacity, r.obs_dim, r.act_dim);
            }
            self.replay = r.clone().into_buffer().map_err(anyhow::Error::msg)?;
        }
        (self.env_steps, self.episodes) = (ck.env_steps, ck.episodes);
        (self.run_env_steps, self.run_episodes, self.smallest_replay) = (ck.env_steps, ck.episodes, self.replay.len());
        self.version = ck.param_version;
        Ok(())
    }

    /// Losses, training returns and policy lag for a `progress` record.
    pub fn fill_progress(&mut self, r: &mut super::output::MetricsRecord) {
        if let Some((ret, len)) = self.recent_return() {
            r.train_return = Some(ret);
            r.train_length = Some(len);
        }
        if let Some(s) = self.td3.stats() {
            r.critic_loss = Some(s.critic_loss);
            r.actor_loss = s.actor_loss;
            r.q_mean = Some(s.q_mean);
            r.proxy_loss = s.proxy_loss;
        }
        r.skipped_steps = Some(self.td3.skipped_steps()).filter(|&n| n > 0);
        r.refused_batches = Some(self.refused_batches).filter(|&n| n > 0);
        r.actor_activity = self.td3.take_activity();
        r.policy_lag = self.take_policy_lag();
        r.param_version = Some(self.version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(act: [f32; 2], obs: f32, rew: f32) -> TransitionBatch {
        TransitionBatch { obs_dim: 1, act_dim: 2, obs: vec![obs], act: act.to_vec(), rew: vec![rew], next_obs: vec![0.0], done: vec![false], ..Default::default() }
    }

    /// Finite is not sane: actions outside the action space, observations and rewards beyond
    /// the run's bounds are refused with the reason, the rest accepted.
    #[test]
    fn intake_refuses_what_the_task_cannot_produce() {
        let limits = IntakeLimits { action_space: spikerl_envs::BoxSpace { low: vec![-1.0, -0.4], high: vec![1.0, 0.4] }, max_abs_obs: 100.0, max_abs_reward: 10.0 };
        assert!(limits.check(&batch([1.0, -0.4], -100.0, 10.0)).is_ok(), "the bounds themselves are inside");
        for (b, reason) in [
            (batch([3e38, 0.0], 0.0, 0.0), "action component 0"),
            (batch([0.0, 0.41], 0.0, 0.0), "action component 1"),
            (batch([0.0, 0.0], 101.0, 0.0), "--max-abs-obs"),
            (batch([0.0, 0.0], 0.0, -3e38), "--max-abs-reward"),
        ] {
            let err = limits.check(&b).unwrap_err();
            assert!(err.contains(reason), "{err}");
        }
    }
}
