//! TD3 (Fujimoto et al. 2018) with the PopSAN actor, as PopSAN and SpikeRL train it.
//!
//! Per update, on a minibatch `(o, a, r, o', d)` with `x = clip((o − μ)/σ, ±3)`:
//! - target: `a' = clip(π_targ(x') + clip(ε, ±c), ±a_max)`, `ε ~ N(0, σ_t²)`;
//!   `y = r + γ·(1 − d)·min(Q1_targ(x', a'), Q2_targ(x', a'))`;
//! - critics: `L_Q = mean((Q1(x, a) − y)²) + mean((Q2(x, a) − y)²)`, one Adam step;
//! - every `policy_delay` updates: actor `L_π = −mean(Q1(x, π(x)))`, one Adam step, then
//!   Polyak averaging of both targets, `θ_targ ← ρ·θ_targ + (1 − ρ)·θ`.

use serde::{Deserialize, Serialize};
use spikerl_snn::rng::SplitMix;
use spikerl_snn::{Encoding, ParamSet, PopSanSpec, SnnError};
use tch::{Device, Kind, Tensor};

use crate::actor::{ActorTape, SpikingActor};
use crate::critic::TwinCritic;
use crate::normalizer::Normalizer;
use crate::optim::Adam;
use crate::popsan::Precision;
use crate::replay::Minibatch;

/// Every hyperparameter of a run; the defaults are PopSAN/SpikeRL's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Td3Config {
    pub gamma: f64,
    pub polyak: f64,
    pub actor_lr: f64,
    pub critic_lr: f64,
    pub batch_size: usize,
    pub replay_size: usize,
    /// Env steps with uniform random actions before the policy acts.
    pub start_steps: u64,
    /// Env steps before the first update.
    pub update_after: u64,
    /// Collect this many steps, then run as many updates (times `updates_per_step`).
    pub update_every: u64,
    pub updates_per_step: f64,
    /// Std of the Gaussian exploration noise (absolute, as in Spinning Up).
    pub act_noise: f32,
    pub target_noise: f32,
    pub noise_clip: f32,
    pub policy_delay: u64,
    pub critic_hidden: Vec<usize>,
    pub actor_hidden: Vec<usize>,
    pub timesteps: usize,
    pub encoder_pop: usize,
    pub decoder_pop: usize,
    pub poisson_encoding: bool,
    /// Updates between parameter publications to the actors.
    pub publish_every: u64,
    pub eval_episodes: usize,
}

impl Default for Td3Config {
    fn default() -> Self {
        Self {
            gamma: 0.99,
            polyak: 0.995,
            actor_lr: 1e-4,
            critic_lr: 1e-3,
            batch_size: 100,
            replay_size: 1_000_000,
            start_steps: 10_000,
            update_after: 1000,
            update_every: 50,
            updates_per_step: 1.0,
            act_noise: 0.1,
            target_noise: 0.2,
            noise_clip: 0.5,
            policy_delay: 2,
            critic_hidden: vec![256, 256],
            actor_hidden: vec![256, 256],
            timesteps: 5,
            encoder_pop: 10,
            decoder_pop: 10,
            poisson_encoding: false,
            publish_every: 50,
            eval_episodes: 10,
        }
    }
}

impl Td3Config {
    /// Defaults for a task: PopSAN's everywhere, except where a task needs its own.
    pub fn for_env(env_id: &str) -> Self {
        let mut c = Self::default();
        if env_id == "Pendulum-v1" {
            // 200-step episodes and a small state: start learning early.
            c.start_steps = 1000;
            c.update_after = 500;
            c.actor_lr = 1e-3;
        }
        c
    }

    pub fn validate(&self) -> Result<(), String> {
        let bad = |what: &str| Err(format!("invalid TD3 config: {what}"));
        if !(0.0..1.0).contains(&self.gamma) {
            return bad("gamma must be in [0, 1)");
        }
        if !(0.0..=1.0).contains(&self.polyak) {
            return bad("polyak must be in [0, 1]");
        }
        if !(self.actor_lr > 0.0 && self.critic_lr > 0.0) {
            return bad("learning rates must be positive");
        }
        if self.batch_size == 0 || self.replay_size == 0 || self.update_every == 0 || self.policy_delay == 0 || self.publish_every == 0 {
            return bad("batch_size, replay_size, update_every, policy_delay and publish_every must be positive");
        }
        if !(self.updates_per_step >= 0.0 && self.updates_per_step.is_finite()) {
            return bad("updates_per_step must be ≥ 0");
        }
        if !(self.act_noise >= 0.0 && self.target_noise >= 0.0 && self.noise_clip >= 0.0) {
            return bad("noise scales must be ≥ 0");
        }
        if self.critic_hidden.is_empty() || self.critic_hidden.contains(&0) {
            return bad("critic_hidden needs at least one non-empty layer");
        }
        Ok(())
    }

    /// The actor's spec for a task of these dimensions.
    pub fn actor_spec(&self, obs_dim: usize, act_dim: usize, act_limit: f32) -> Result<PopSanSpec, SnnError> {
        let mut spec = PopSanSpec::new(obs_dim, act_dim, act_limit);
        spec.hidden = self.actor_hidden.clone();
        spec.timesteps = self.timesteps;
        spec.encoder_pop = self.encoder_pop;
        spec.decoder_pop = self.decoder_pop;
        spec.encoding = if self.poisson_encoding { Encoding::Poisson } else { Encoding::Deterministic };
        spec.validate()?;
        Ok(spec)
    }
}

/// Losses of the last update (read lazily: on a GPU each read synchronises).
pub struct UpdateStats {
    pub critic_loss: f64,
    pub actor_loss: Option<f64>,
    pub q_mean: f64,
}

/// Everything a checkpoint holds of the learner, as plain values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Td3State {
    pub actor: Vec<f32>,
    pub actor_target: Vec<f32>,
    pub critic: Vec<f32>,
    pub critic_target: Vec<f32>,
    pub actor_adam: (Vec<f32>, Vec<f32>, i64),
    pub critic_adam: (Vec<f32>, Vec<f32>, i64),
    pub normalizer: Vec<f64>,
    pub rng: u64,
    pub updates: u64,
}

pub struct Td3 {
    pub config: Td3Config,
    spec: PopSanSpec,
    actor: SpikingActor,
    critic: TwinCritic,
    device: Device,
    precision: Precision,
    actor_params: Tensor,
    actor_target: Tensor,
    critic_params: Tensor,
    critic_target: Tensor,
    actor_adam: Adam,
    critic_adam: Adam,
    pub normalizer: Normalizer,
    rng: SplitMix,
    updates: u64,
    last: Option<(Tensor, Option<Tensor>, Tensor)>,
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.detach().to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view([-1])).expect("float tensor")
}

impl Td3 {
    /// A fresh learner: PopSAN's initialisation for the actor, PyTorch's for the critics.
    pub fn new(config: Td3Config, spec: PopSanSpec, device: Device, precision: Precision, seed: u64) -> Result<Self, String> {
        config.validate()?;
        spec.validate().map_err(|e| e.to_string())?;
        tch::manual_seed(seed as i64);
        let actor = SpikingActor::new(spec.clone());
        let critic = TwinCritic::new(spec.obs_dim, spec.act_dim, &config.critic_hidden);
        let init = ParamSet::init(&spec, seed).map_err(|e| e.to_string())?;
        let actor_params = SpikingActor::params_tensor(&init, device);
        let critic_params = critic.init(device);
        let normalizer = Normalizer::new(spec.obs_dim);
        Ok(Self {
            actor_target: actor_params.copy(),
            critic_target: critic_params.detach().copy(),
            actor_adam: Adam::new(&actor_params, config.actor_lr),
            critic_adam: Adam::new(&critic_params, config.critic_lr),
            rng: SplitMix::new(seed ^ 0x0005_EED0_F7D3),
            updates: 0,
            last: None,
            config,
            spec,
            actor,
            critic,
            device,
            precision,
            actor_params,
            critic_params,
            normalizer,
        })
    }

    pub fn spec(&self) -> &PopSanSpec {
        &self.spec
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// The learner's random generator (replay sampling, target noise), saved in checkpoints.
    pub fn rng_mut(&mut self) -> &mut SplitMix {
        &mut self.rng
    }

    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// The current actor for the actors to load.
    pub fn param_set(&self, version: u64) -> ParamSet {
        ParamSet::from_flat(self.spec.clone(), version, self.normalizer.mean(), self.normalizer.std(), to_vec(&self.actor_params))
            .expect("the learner's parameters are finite and fit the spec")
    }

    fn rows(&self, values: &[f32], cols: usize) -> Tensor {
        Tensor::from_slice(values).view([-1, cols as i64]).to_device(self.device)
    }

    fn normalize(&self, obs: &Tensor) -> Tensor {
        let mean = Tensor::from_slice(&self.normalizer.mean()).to_device(self.device);
        let std = Tensor::from_slice(&self.normalizer.std()).to_device(self.device);
        ((obs - mean) / std).clamp(-3.0, 3.0)
    }

    /// Uniform draws for a Poisson encoder from the learner's own generator (so that a resumed
    /// run draws the same), `None` for deterministic encoding.
    fn encoder_uniforms(&mut self, batch: usize) -> Option<Tensor> {
        if self.spec.encoding != Encoding::Poisson {
            return None;
        }
        let n = self.spec.timesteps * batch * self.spec.obs_dim * self.spec.encoder_pop;
        let u: Vec<f32> = (0..n).map(|_| self.rng.next_f32()).collect();
        let shape = [self.spec.timesteps as i64, batch as i64, (self.spec.obs_dim * self.spec.encoder_pop) as i64];
        Some(Tensor::from_slice(&u).view(shape).to_device(self.device))
    }

    /// One TD3 update on `mb`.
    pub fn update(&mut self, mb: &Minibatch) {
        let c = self.config.clone();
        let (od, ad) = (self.spec.obs_dim, self.spec.act_dim);
        let b = mb.rew.len();
        let act_limit = self.spec.act_limit as f64;
        let x = self.normalize(&self.rows(&mb.obs, od));
        let x2 = self.normalize(&self.rows(&mb.next_obs, od));
        let a = self.rows(&mb.act, ad);
        let r = Tensor::from_slice(&mb.rew).to_device(self.device);
        let d = Tensor::from_slice(&mb.done).to_device(self.device);

        // Target with policy smoothing.
        let eps: Vec<f32> = (0..b * ad).map(|_| (self.rng.normal() * c.target_noise).clamp(-c.noise_clip, c.noise_clip)).collect();
        let eps = self.rows(&eps, ad);
        let uniforms = self.encoder_uniforms(b);
        let backup = tch::no_grad(|| {
            let a_targ = match &uniforms {
                None => self.actor.forward(&self.actor_target, &x2, self.precision),
                Some(u) => self.actor.forward_tape(&self.actor_target, &x2, self.precision, Some(u)).0,
            };
            let a2 = (a_targ + eps).clamp(-act_limit, act_limit);
            let (q1, q2) = self.critic.forward(&self.critic_target, &x2, &a2, self.precision);
            &r + (1.0 - &d) * c.gamma * q1.minimum(&q2)
        });

        // Critics: loss = mean((Q1 − y)²) + mean((Q2 − y)²).
        let (q1, q2, tape) = self.critic.forward_tape(&self.critic_params, &x, &a, self.precision);
        let critic_loss = (&q1 - &backup).square().mean(Kind::Float) + (&q2 - &backup).square().mean(Kind::Float);
        let g_q1 = (&q1 - &backup) * (2.0 / b as f64);
        let g_q2 = (&q2 - &backup) * (2.0 / b as f64);
        let grad = self.critic.backward(&self.critic_params, &tape, &g_q1, &g_q2, self.precision);
        self.critic_adam.step(&mut self.critic_params, &grad);
        self.updates += 1;

        // Delayed actor and targets: loss = −mean(Q1(x, π(x))).
        let mut actor_loss = None;
        if self.updates.is_multiple_of(c.policy_delay) {
            let uniforms = self.encoder_uniforms(b);
            let (a_pi, actor_tape): (Tensor, ActorTape) = self.actor.forward_tape(&self.actor_params, &x, self.precision, uniforms.as_ref());
            let (q_pi, q_tape) = self.critic.q1_tape(&self.critic_params, &x, &a_pi, self.precision);
            let loss = -q_pi.mean(Kind::Float);
            let g_q = q_pi.full_like(-1.0 / b as f64);
            let grad_a = self.critic.q1_action_grad(&self.critic_params, &q_tape, &g_q, ad, self.precision);
            let grad = self.actor.backward(&self.actor_params, &actor_tape, &grad_a, self.precision);
            self.actor_adam.step(&mut self.actor_params, &grad);
            tch::no_grad(|| {
                let _ = self.actor_target.lerp_(&self.actor_params, 1.0 - c.polyak);
                let _ = self.critic_target.lerp_(&self.critic_params, 1.0 - c.polyak);
            });
            actor_loss = Some(loss.detach());
        }
        self.last = Some((critic_loss.detach(), actor_loss.or_else(|| self.last.as_mut().and_then(|l| l.1.take())), q1.detach().mean(Kind::Float)));
    }

    /// Losses of the most recent update (the actor's from the most recent actor update).
    pub fn stats(&self) -> Option<UpdateStats> {
        self.last.as_ref().map(|(q, pi, qm)| UpdateStats { critic_loss: q.double_value(&[]), actor_loss: pi.as_ref().map(|p| p.double_value(&[])), q_mean: qm.double_value(&[]) })
    }

    pub fn state(&self) -> Td3State {
        Td3State {
            actor: to_vec(&self.actor_params),
            actor_target: to_vec(&self.actor_target),
            critic: to_vec(&self.critic_params),
            critic_target: to_vec(&self.critic_target),
            actor_adam: (to_vec(&self.actor_adam.m), to_vec(&self.actor_adam.v), self.actor_adam.steps),
            critic_adam: (to_vec(&self.critic_adam.m), to_vec(&self.critic_adam.v), self.critic_adam.steps),
            normalizer: self.normalizer.to_vec(),
            rng: self.rng.state(),
            updates: self.updates,
        }
    }

    /// Restores [`Td3::state`] into a learner built with the same config and spec.
    pub fn load_state(&mut self, s: Td3State) -> Result<(), String> {
        let (na, nc) = (self.actor.n_params(), self.critic.n_params());
        let sizes_ok = s.actor.len() == na
            && s.actor_target.len() == na
            && s.actor_adam.0.len() == na
            && s.actor_adam.1.len() == na
            && s.critic.len() == nc
            && s.critic_target.len() == nc
            && s.critic_adam.0.len() == nc
            && s.critic_adam.1.len() == nc;
        if !sizes_ok {
            return Err(format!("checkpoint networks do not match this configuration ({na} actor and {nc} critic parameters expected)"));
        }
        let dev = self.device;
        let t = |v: &[f32]| Tensor::from_slice(v).to_device(dev);
        self.normalizer = Normalizer::from_vec(self.spec.obs_dim, &s.normalizer)?;
        self.actor_params = t(&s.actor);
        self.actor_target = t(&s.actor_target);
        self.critic_params = t(&s.critic);
        self.critic_target = t(&s.critic_target);
        self.actor_adam.m = t(&s.actor_adam.0);
        self.actor_adam.v = t(&s.actor_adam.1);
        self.actor_adam.steps = s.actor_adam.2;
        self.critic_adam.m = t(&s.critic_adam.0);
        self.critic_adam.v = t(&s.critic_adam.1);
        self.critic_adam.steps = s.critic_adam.2;
        self.rng = SplitMix::new(s.rng);
        self.updates = s.updates;
        self.last = None;
        Ok(())
    }
}
