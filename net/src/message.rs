//! Messages of the actor → learner stream.

use serde::{Deserialize, Serialize};

/// A finished training episode, as the actor saw it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpisodeSummary {
    pub ret: f64,
    pub len: u32,
}

/// Transitions from one actor, row-major: `n` rows of each field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransitionBatch {
    pub actor_id: u32,
    /// Version of the `ParamSet` that chose these actions (0: uniform random actions).
    pub policy_version: u64,
    /// Per-actor sequence number, for loss and reordering checks.
    pub seq: u64,
    pub obs_dim: u32,
    pub act_dim: u32,
    pub obs: Vec<f32>,
    pub act: Vec<f32>,
    pub rew: Vec<f32>,
    pub next_obs: Vec<f32>,
    /// Terminated (not truncated): the target does not bootstrap.
    pub done: Vec<bool>,
    pub episodes: Vec<EpisodeSummary>,
}

impl TransitionBatch {
    pub fn new(actor_id: u32, obs_dim: usize, act_dim: usize) -> Self {
        Self { actor_id, obs_dim: obs_dim as u32, act_dim: act_dim as u32, ..Default::default() }
    }

    /// Empties the batch for reuse (keeping its allocations) and stamps it.
    pub fn clear(&mut self, actor_id: u32, obs_dim: usize, act_dim: usize) {
        self.actor_id = actor_id;
        (self.obs_dim, self.act_dim) = (obs_dim as u32, act_dim as u32);
        self.policy_version = 0;
        self.seq = 0;
        self.obs.clear();
        self.act.clear();
        self.rew.clear();
        self.next_obs.clear();
        self.done.clear();
        self.episodes.clear();
    }

    pub fn len(&self) -> usize {
        self.rew.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rew.is_empty()
    }

    pub fn push(&mut self, obs: &[f32], act: &[f32], rew: f32, next_obs: &[f32], done: bool) {
        self.obs.extend_from_slice(obs);
        self.act.extend_from_slice(act);
        self.rew.push(rew);
        self.next_obs.extend_from_slice(next_obs);
        self.done.push(done);
    }

    /// Every field has `len()` rows of the declared dimensions and every value is finite:
    /// what a learner checks before anything reaches its replay buffer.
    pub fn validate(&self, obs_dim: usize, act_dim: usize) -> Result<(), String> {
        let n = self.rew.len();
        if self.obs_dim as usize != obs_dim || self.act_dim as usize != act_dim {
            return Err(format!("batch of ({}, {}) dims for a task of ({obs_dim}, {act_dim})", self.obs_dim, self.act_dim));
        }
        if self.obs.len() != n * obs_dim || self.next_obs.len() != n * obs_dim || self.act.len() != n * act_dim || self.done.len() != n {
            return Err(format!("batch of {n} rewards has fields of other lengths"));
        }
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        if !(finite(&self.obs) && finite(&self.act) && finite(&self.rew) && finite(&self.next_obs)) {
            return Err("batch holds non-finite values".into());
        }
        Ok(())
    }
}
