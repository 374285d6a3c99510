//! The learner's side of a run, whichever runtime drives it: TD3 (with the observation
//! normaliser inside), the replay buffer, counters and the training-episode statistics.

use std::collections::VecDeque;

use anyhow::{Result, bail};
use spikerl_learner::checkpoint::{Checkpoint, ReplayState};
use spikerl_learner::prelude::*;
use spikerl_net::{EpisodeSummary, TransitionBatch};
use spikerl_snn::ParamSet;

use super::Run;

pub struct Learner {
    pub td3: Box<dyn Agent>,
    pub replay: ReplayBuffer,
    minibatch: Minibatch,
    pub env_steps: u64,
    pub episodes: u64,
    /// Version of the parameters last published.
    pub version: u64,
    recent: VecDeque<EpisodeSummary>,
    lag_sum: u64,
    lag_batches: u64,
}

impl Learner {
    pub fn new(run: &Run) -> Result<Self> {
        let c = &run.config;
        let spec = c.actor.spec(run.task.obs_dim, run.task.act_dim, run.task.act_limit)?;
        let threads = c.runtime.learner_threads.unwrap_or_else(super::cores);
        let td3 = build(c.algorithm.clone(), spec, c.actor.surrogate, run.device, run.precision, c.runtime.seed, threads).map_err(anyhow::Error::msg)?;
        let replay = ReplayBuffer::new(run.task.obs_dim, run.task.act_dim, c.algorithm.replay_size);
        Ok(Self { td3, replay, minibatch: Minibatch::default(), env_steps: 0, episodes: 0, version: 0, recent: VecDeque::new(), lag_sum: 0, lag_batches: 0 })
    }

    /// Puts a batch into replay (all of it or, if it is malformed, none of it).
    pub fn ingest(&mut self, batch: &TransitionBatch) -> Result<(), String> {
        let (od, ad) = self.replay.dims();
        batch.validate(od, ad)?;
        for i in 0..batch.len() {
            self.replay.push(&batch.obs[i * od..(i + 1) * od], &batch.act[i * ad..(i + 1) * ad], batch.rew[i], &batch.next_obs[i * od..(i + 1) * od], batch.done[i]);
        }
        self.td3.normalizer_mut().update(&batch.obs);
        self.env_steps += batch.len() as u64;
        for e in &batch.episodes {
            self.episodes += 1;
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

    pub fn update(&mut self) {
        let batch = self.td3.config().batch_size;
        // Sampling draws from the learner's generator, which checkpoints hold.
        self.replay.sample_into(batch, self.td3.rng_mut(), &mut self.minibatch);
        self.td3.update(&self.minibatch);
    }

    pub fn updates(&self) -> u64 {
        self.td3.updates()
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

    /// Updates owed for the data so far: `updates_per_step` per env step after `update_after`.
    pub fn updates_due(&self) -> u64 {
        let c = self.td3.config();
        if self.env_steps < c.update_after || self.replay.len() < c.batch_size {
            return 0;
        }
        ((self.env_steps - c.update_after) as f64 * c.updates_per_step) as u64
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
            env_steps: self.env_steps,
            episodes: self.episodes,
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
        self.env_steps = ck.env_steps;
        self.episodes = ck.episodes;
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
        r.actor_activity = self.td3.take_activity();
        r.policy_lag = self.take_policy_lag();
        r.param_version = Some(self.version);
    }
}
