//! One actor's envs and policy.

use serde::{Deserialize, Serialize};
use spikerl_envs::{BoxSpace, EnvError, EnvSnapshot, VecEnv, VecStep};
use spikerl_net::{EpisodeSummary, TransitionBatch};
use spikerl_snn::rng::SplitMix;
use spikerl_snn::{ParamSet, Policy, SnnError};

/// Steps `n` envs of one task: uniform random actions for its first `random_steps` env steps,
/// then the policy (spiking or dense) plus Gaussian noise, clipped to the action box.
pub struct RolloutWorker {
    id: u32,
    envs: VecEnv,
    policy: Option<Policy>,
    rng: SplitMix,
    steps: u64,
    random_steps: u64,
    act_noise: f32,
    space: BoxSpace,
    obs: Vec<f32>,
    actions: Vec<f32>,
    ep_ret: Vec<f64>,
    ep_len: Vec<u32>,
    seq: u64,
    step_results: Vec<VecStep>,
}

/// A worker's whole state for a checkpoint (its envs included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSnapshot {
    pub envs: Vec<EnvSnapshot>,
    pub rng: u64,
    pub steps: u64,
    pub ep_ret: Vec<f64>,
    pub ep_len: Vec<u32>,
    pub seq: u64,
}

impl RolloutWorker {
    /// `n_envs` copies of `env_id`; env `i` is reset with seed `seed + i`.
    pub fn new(id: u32, env_id: &str, n_envs: usize, seed: u64, random_steps: u64, act_noise: f32) -> Result<Self, EnvError> {
        let mut envs = VecEnv::make(env_id, n_envs, 1)?;
        envs.reset(Some(seed))?;
        let space = envs.spec().action_space.clone();
        Ok(Self {
            id,
            obs: envs.obs().to_vec(),
            actions: vec![0.0; n_envs * space.dim()],
            ep_ret: vec![0.0; n_envs],
            ep_len: vec![0; n_envs],
            rng: SplitMix::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(id)),
            space,
            envs,
            policy: None,
            steps: 0,
            random_steps,
            act_noise,
            seq: 0,
            step_results: Vec::with_capacity(n_envs),
        })
    }

    pub fn spec(&self) -> &spikerl_envs::EnvSpec {
        self.envs.spec()
    }

    pub fn n_envs(&self) -> usize {
        self.envs.len()
    }

    /// Env steps taken so far (every env's step counts).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    pub fn policy_version(&self) -> u64 {
        self.policy.as_ref().map_or(0, |p| p.version())
    }

    /// Acts with `params` from now on.
    pub fn set_policy(&mut self, params: &ParamSet) -> Result<(), SnnError> {
        let spec = self.envs.spec();
        let s = params.spec();
        if s.obs_dim() != spec.obs_dim() || s.act_dim() != spec.act_dim() {
            return Err(SnnError::Shape(format!("policy for ({}, {}) dims, task {} has ({}, {})", s.obs_dim(), s.act_dim(), spec.id, spec.obs_dim(), spec.act_dim())));
        }
        self.policy = Some(Policy::new(params)?);
        Ok(())
    }

    /// Steps every env `steps_per_env` times, appending the transitions to `out` (which is
    /// cleared and stamped first).
    pub fn collect(&mut self, steps_per_env: usize, out: &mut TransitionBatch) -> Result<(), EnvError> {
        let (od, ad, n) = (self.envs.spec().obs_dim(), self.envs.spec().act_dim(), self.envs.len());
        out.clear(self.id, od, ad);
        out.policy_version = self.policy_version();
        out.seq = self.seq;
        self.seq += 1;
        for _ in 0..steps_per_env {
            self.choose_actions();
            self.step_results.clear();
            self.step_results.extend_from_slice(self.envs.step(&self.actions)?);
            for (i, s) in self.step_results.iter().enumerate() {
                let next = if s.done() { self.envs.final_obs(i) } else { &self.envs.obs()[i * od..(i + 1) * od] };
                out.push(&self.obs[i * od..(i + 1) * od], &self.actions[i * ad..(i + 1) * ad], s.reward as f32, next, s.terminated);
                self.ep_ret[i] += s.reward;
                self.ep_len[i] += 1;
                if s.done() {
                    out.episodes.push(EpisodeSummary { ret: self.ep_ret[i], len: self.ep_len[i] });
                    self.ep_ret[i] = 0.0;
                    self.ep_len[i] = 0;
                }
            }
            self.obs.copy_from_slice(self.envs.obs());
            self.steps += n as u64;
        }
        Ok(())
    }

    fn choose_actions(&mut self) {
        let ad = self.envs.spec().act_dim();
        let od = self.envs.spec().obs_dim();
        let random = self.steps < self.random_steps || self.policy.is_none();
        for (i, a) in self.actions.chunks_exact_mut(ad).enumerate() {
            if random {
                self.space.sample_into(a, || f64::from(self.rng.next_f32()));
            } else {
                let policy = self.policy.as_mut().expect("checked above");
                policy.act(&self.obs[i * od..(i + 1) * od], a).expect("observation sized from the task");
                for ((a, lo), hi) in a.iter_mut().zip(&self.space.low).zip(&self.space.high) {
                    *a = (*a + self.act_noise * self.rng.normal()).clamp(*lo, *hi);
                }
            }
        }
    }

    pub fn snapshot(&self) -> WorkerSnapshot {
        WorkerSnapshot { envs: self.envs.snapshot(), rng: self.rng.state(), steps: self.steps, ep_ret: self.ep_ret.clone(), ep_len: self.ep_len.clone(), seq: self.seq }
    }

    pub fn restore(&mut self, s: &WorkerSnapshot) -> Result<(), EnvError> {
        let n = self.envs.len();
        if s.ep_ret.len() != n || s.ep_len.len() != n {
            return Err(EnvError::Snapshot { task: self.envs.spec().id.clone(), reason: format!("worker state for {} envs, this worker has {n}", s.ep_ret.len()) });
        }
        self.envs.restore(&s.envs)?;
        self.obs.copy_from_slice(self.envs.obs());
        self.rng = SplitMix::new(s.rng);
        self.steps = s.steps;
        self.ep_ret.clone_from(&s.ep_ret);
        self.ep_len.clone_from(&s.ep_len);
        self.seq = s.seq;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dense actor's parameters, as they arrive over the wire (bf16), drive a worker like a
    /// spiking actor's: no libtorch on this side either way.
    #[test]
    fn a_worker_acts_with_a_dense_actor_from_the_wire() {
        let mut worker = RolloutWorker::new(0, "Pendulum-v1", 2, 0, 0, 0.0).unwrap();
        let spec = spikerl_snn::DenseSpec { hidden: vec![16], ..spikerl_snn::DenseSpec::new(3, 1, 2.0) };
        let mut params = ParamSet::init(&spec, 1).unwrap();
        params.version = 5;
        let wire = ParamSet::decode(&params.encode(spikerl_snn::Precision::Bf16)).unwrap();
        worker.set_policy(&wire).unwrap();
        let mut batch = TransitionBatch::default();
        worker.collect(8, &mut batch).unwrap();
        assert_eq!((batch.len(), batch.policy_version), (16, 5));
        assert!(batch.act.iter().all(|a| a.abs() <= 2.0) && batch.act.iter().any(|a| *a != 0.0));
        let wrong = ParamSet::init(&spikerl_snn::DenseSpec::new(4, 1, 1.0), 1).unwrap();
        assert!(worker.set_policy(&wrong).is_err(), "a policy for other dimensions is refused");
    }
}
