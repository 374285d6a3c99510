//! Deterministic evaluation: the policy without noise, on envs of its own.

use spikerl_envs::EnvError;
use spikerl_snn::{OpCounts, ParamSet, Policy};

#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    pub returns: Vec<f64>,
    pub lengths: Vec<u32>,
    /// What the actor computed over every action of the episodes (spikes and synaptic
    /// operations, or a dense actor's multiply–accumulates): the basis of its energy estimate.
    pub counts: OpCounts,
}

impl EvalResult {
    pub fn mean(&self) -> f64 {
        self.returns.iter().sum::<f64>() / self.returns.len().max(1) as f64
    }

    pub fn std(&self) -> f64 {
        let m = self.mean();
        (self.returns.iter().map(|r| (r - m).powi(2)).sum::<f64>() / self.returns.len().max(1) as f64).sqrt()
    }

    pub fn mean_len(&self) -> f64 {
        self.lengths.iter().map(|&l| l as f64).sum::<f64>() / self.lengths.len().max(1) as f64
    }
}

/// `episodes` episodes of `env_id` with `params`' actions, episode `k` seeded `seed + k`.
pub fn evaluate(params: &ParamSet, env_id: &str, episodes: usize, seed: u64) -> Result<EvalResult, EnvError> {
    let mut env = spikerl_envs::make(env_id)?;
    let spec = env.spec().clone();
    let mut policy = Policy::new(params).map_err(|e| EnvError::Model { path: env_id.into(), reason: format!("policy does not fit: {e}") })?;
    if params.spec().obs_dim() != spec.obs_dim() || params.spec().act_dim() != spec.act_dim() {
        return Err(EnvError::Model { path: env_id.into(), reason: "policy dimensions do not match the task".into() });
    }
    let mut obs = vec![0.0; spec.obs_dim()];
    let mut action = vec![0.0; spec.act_dim()];
    let mut result = EvalResult { returns: Vec::new(), lengths: Vec::new(), counts: OpCounts::default() };
    for k in 0..episodes {
        env.reset_into(Some(seed + k as u64), &mut obs)?;
        let (mut ret, mut len) = (0.0, 0);
        loop {
            policy.act(&obs, &mut action).expect("sized from the task");
            let out = env.step_into(&action, &mut obs)?;
            ret += out.reward;
            len += 1;
            if out.done() {
                break;
            }
        }
        result.returns.push(ret);
        result.lengths.push(len);
    }
    result.counts = policy.total_counts().clone();
    Ok(result)
}
