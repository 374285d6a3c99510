//! TD3 (Fujimoto et al. 2018) with the PopSAN actor, as PopSAN and SpikeRL train it.
//!
//! Per update, on a minibatch `(o, a, r, o', d)` with `x = clip((o − μ)/σ, ±3)`:
//! - target: `a' = clip(π_targ(x') + clip(ε, ±c), ±a_max)`, `ε ~ N(0, σ_t²)`;
//!   `y = r + γ·(1 − d)·min(Q1_targ(x', a'), Q2_targ(x', a'))`;
//! - critics: `L_Q = mean((Q1(x, a) − y)²) + mean((Q2(x, a) − y)²)`, one Adam step;
//! - every `policy_delay` updates: actor `L_π = −mean(Q1(x, π(x)))`, one Adam step, then
//!   Polyak averaging of both targets, `θ_targ ← ρ·θ_targ + (1 − ρ)·θ`.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

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
    actor: Arc<SpikingActor>,
    critic: Arc<TwinCritic>,
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
    /// Threads beyond this one that take a slice of each minibatch.
    workers: Vec<Worker>,
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
        let actor = Arc::new(SpikingActor::new(spec.clone()));
        let critic = Arc::new(TwinCritic::new(spec.obs_dim, spec.act_dim, &config.critic_hidden));
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
            workers: Vec::new(),
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

    /// Splits each update's minibatch over `threads` CPU threads (gradients are summed, so
    /// the update is the same up to float rounding); 1 on a GPU.
    pub fn set_threads(&mut self, threads: usize) {
        let extra = if self.device == Device::Cpu { threads.max(1) - 1 } else { 0 };
        self.workers.truncate(extra);
        while self.workers.len() < extra {
            self.workers.push(Worker::spawn(self.workers.len()));
        }
    }

    /// One TD3 update on `mb`.
    pub fn update(&mut self, mb: &Minibatch) {
        let c = self.config.clone();
        let (od, ad) = (self.spec.obs_dim, self.spec.act_dim);
        let b = mb.rew.len();
        let x = self.normalize(&self.rows(&mb.obs, od));
        let x2 = self.normalize(&self.rows(&mb.next_obs, od));
        let a = self.rows(&mb.act, ad);
        let r = Tensor::from_slice(&mb.rew).to_device(self.device);
        let d = Tensor::from_slice(&mb.done).to_device(self.device);
        // Random draws for the whole batch, in one order, whatever the thread count.
        let eps: Vec<f32> = (0..b * ad).map(|_| (self.rng.normal() * c.target_noise).clamp(-c.noise_clip, c.noise_clip)).collect();
        let eps = self.rows(&eps, ad);
        let target_uniforms = self.encoder_uniforms(b);
        let actor_step = (self.updates + 1).is_multiple_of(c.policy_delay);
        let pi_uniforms = if actor_step { self.encoder_uniforms(b) } else { None };

        let parts = (1 + self.workers.len()).min(b);
        let shards: Vec<Shard> = (0..parts)
            .map(|i| {
                let (start, len) = ((i * b / parts) as i64, ((i + 1) * b / parts - i * b / parts) as i64);
                let rows = |t: &Tensor| t.narrow(0, start, len);
                let steps = |t: &Option<Tensor>| t.as_ref().map(|u| u.narrow(1, start, len));
                Shard { x: rows(&x), x2: rows(&x2), a: rows(&a), r: rows(&r), d: rows(&d), eps: rows(&eps), target_uniforms: steps(&target_uniforms), pi_uniforms: steps(&pi_uniforms) }
            })
            .collect();
        let nets = Nets { actor: self.actor_params.shallow_clone(), actor_target: self.actor_target.shallow_clone(), critic: self.critic_params.shallow_clone(), critic_target: self.critic_target.shallow_clone() };
        let pass = Pass { actor: self.actor.clone(), critic: self.critic.clone(), config: c.clone(), precision: self.precision, act_limit: self.spec.act_limit as f64, batch: b as f64 };

        // Critics.
        let (grad, critic_loss, q_mean) = sum_parts(self.on_shards(&pass, PassKind::Critic, &nets, shards.iter().map(Shard::share).collect()));
        self.critic_adam.step(&mut self.critic_params, &grad);
        self.updates += 1;

        // Delayed actor and targets.
        let mut actor_loss = None;
        if actor_step {
            let nets = Nets { critic: self.critic_params.shallow_clone(), ..nets };
            let (grad, loss, _) = sum_parts(self.on_shards(&pass, PassKind::Actor, &nets, shards));
            self.actor_adam.step(&mut self.actor_params, &grad);
            tch::no_grad(|| {
                let _ = self.actor_target.lerp_(&self.actor_params, 1.0 - c.polyak);
                let _ = self.critic_target.lerp_(&self.critic_params, 1.0 - c.polyak);
            });
            actor_loss = Some(loss);
        }
        self.last = Some((critic_loss, actor_loss.or_else(|| self.last.as_mut().and_then(|l| l.1.take())), q_mean));
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

/// The networks a gradient pass reads, as handles a worker thread can own.
struct Nets {
    actor: Tensor,
    actor_target: Tensor,
    critic: Tensor,
    critic_target: Tensor,
}

impl Nets {
    fn share(&self) -> Self {
        Self { actor: self.actor.shallow_clone(), actor_target: self.actor_target.shallow_clone(), critic: self.critic.shallow_clone(), critic_target: self.critic_target.shallow_clone() }
    }
}

/// Rows of the minibatch (and their random draws) one thread works on.
struct Shard {
    x: Tensor,
    x2: Tensor,
    a: Tensor,
    r: Tensor,
    d: Tensor,
    eps: Tensor,
    target_uniforms: Option<Tensor>,
    pi_uniforms: Option<Tensor>,
}

impl Shard {
    fn share(&self) -> Self {
        let opt = |t: &Option<Tensor>| t.as_ref().map(Tensor::shallow_clone);
        Self {
            x: self.x.shallow_clone(),
            x2: self.x2.shallow_clone(),
            a: self.a.shallow_clone(),
            r: self.r.shallow_clone(),
            d: self.d.shallow_clone(),
            eps: self.eps.shallow_clone(),
            target_uniforms: opt(&self.target_uniforms),
            pi_uniforms: opt(&self.pi_uniforms),
        }
    }
}

/// The losses and gradients of one update, each written for a slice of the minibatch but
/// scaled by the whole batch size, so that slices sum to the full-batch values.
#[derive(Clone)]
struct Pass {
    actor: Arc<SpikingActor>,
    critic: Arc<TwinCritic>,
    config: Td3Config,
    precision: Precision,
    act_limit: f64,
    batch: f64,
}

impl Pass {
    /// `y = r + γ(1 − d)·min Q_targ(x', clip(π_targ(x') + ε))`, then `L_Q` and its gradient.
    /// Returns (gradient, this slice's share of `L_Q`, of mean Q1).
    fn critic_gradient(&self, n: &Nets, s: &Shard) -> (Tensor, Tensor, Tensor) {
        let backup = tch::no_grad(|| {
            let a_targ = match &s.target_uniforms {
                None => self.actor.forward(&n.actor_target, &s.x2, self.precision),
                Some(u) => self.actor.forward_tape(&n.actor_target, &s.x2, self.precision, Some(u)).0,
            };
            let a2 = (a_targ + &s.eps).clamp(-self.act_limit, self.act_limit);
            let (q1, q2) = self.critic.forward(&n.critic_target, &s.x2, &a2, self.precision);
            &s.r + (1.0 - &s.d) * self.config.gamma * q1.minimum(&q2)
        });
        // L_Q = mean((Q1 − y)²) + mean((Q2 − y)²).
        let (q1, q2, tape) = self.critic.forward_tape(&n.critic, &s.x, &s.a, self.precision);
        let (e1, e2) = (&q1 - &backup, &q2 - &backup);
        let loss = (e1.square().sum(Kind::Float) + e2.square().sum(Kind::Float)) / self.batch;
        let grad = self.critic.backward(&n.critic, &tape, &(e1 * (2.0 / self.batch)), &(e2 * (2.0 / self.batch)), self.precision);
        (grad, loss, q1.sum(Kind::Float) / self.batch)
    }

    /// `L_π = −mean(Q1(x, π(x)))` and its gradient. Returns (gradient, this slice's share of
    /// `L_π`, 0).
    fn actor_gradient(&self, n: &Nets, s: &Shard) -> (Tensor, Tensor, Tensor) {
        let (a_pi, actor_tape): (Tensor, ActorTape) = self.actor.forward_tape(&n.actor, &s.x, self.precision, s.pi_uniforms.as_ref());
        let (q_pi, q_tape) = self.critic.q1_tape(&n.critic, &s.x, &a_pi, self.precision);
        let loss = -q_pi.sum(Kind::Float) / self.batch;
        let grad_a = self.critic.q1_action_grad(&n.critic, &q_tape, &q_pi.full_like(-1.0 / self.batch), self.actor.spec().act_dim, self.precision);
        let grad = self.actor.backward(&n.actor, &actor_tape, &grad_a, self.precision);
        let zero = loss.zeros_like();
        (grad, loss, zero)
    }
}

#[derive(Clone, Copy)]
enum PassKind {
    Critic,
    Actor,
}

impl Pass {
    fn run(&self, kind: PassKind, nets: &Nets, shard: &Shard) -> (Tensor, Tensor, Tensor) {
        tch::no_grad(|| match kind {
            PassKind::Critic => self.critic_gradient(nets, shard),
            PassKind::Actor => self.actor_gradient(nets, shard),
        })
    }
}

/// A learner thread that runs passes on the shards it is sent.
struct Worker {
    jobs: Sender<(Pass, PassKind, Nets, Shard)>,
    results: Receiver<(Tensor, Tensor, Tensor)>,
}

impl Worker {
    fn spawn(id: usize) -> Self {
        let (jobs, job_rx) = channel::<(Pass, PassKind, Nets, Shard)>();
        let (result_tx, results) = channel();
        std::thread::Builder::new()
            .name(format!("learner-{}", id + 1))
            .spawn(move || {
                for (pass, kind, nets, shard) in job_rx {
                    if result_tx.send(pass.run(kind, &nets, &shard)).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn a learner thread");
        Self { jobs, results }
    }
}

impl Td3 {
    /// The pass on every shard: the first on this thread, the others on the workers.
    fn on_shards(&self, pass: &Pass, kind: PassKind, nets: &Nets, mut shards: Vec<Shard>) -> Vec<(Tensor, Tensor, Tensor)> {
        let first = shards.remove(0);
        let busy = shards.len();
        assert!(busy <= self.workers.len(), "one shard per thread");
        for (worker, shard) in self.workers.iter().zip(shards) {
            worker.jobs.send((pass.clone(), kind, nets.share(), shard)).expect("learner thread alive");
        }
        let mut out = vec![pass.run(kind, nets, &first)];
        out.extend(self.workers[..busy].iter().map(|w| w.results.recv().expect("learner thread panicked")));
        out
    }
}

/// Element-wise sums of the parts, in shard order.
fn sum_parts(parts: Vec<(Tensor, Tensor, Tensor)>) -> (Tensor, Tensor, Tensor) {
    let mut parts = parts.into_iter();
    let first = parts.next().expect("at least one shard");
    parts.fold(first, |(g, l, q), (g2, l2, q2)| (g + g2, l + l2, q + q2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::ReplayBuffer;

    fn learner(threads: usize, poisson: bool) -> Td3 {
        let config = Td3Config { batch_size: 33, poisson_encoding: poisson, replay_size: 1000, ..Td3Config::default() };
        let spec = config.actor_spec(4, 2, 1.0).unwrap();
        let mut td3 = Td3::new(config, spec, Device::Cpu, Precision::F32, 9).unwrap();
        td3.set_threads(threads);
        td3
    }

    /// Splitting the minibatch over threads computes the same update (summed gradients differ
    /// only in float rounding), with the same random draws.
    #[test]
    fn threaded_updates_equal_single_threaded() {
        for poisson in [false, true] {
            let (mut one, mut three) = (learner(1, poisson), learner(3, poisson));
            // Same start whatever other tests do to libtorch's global generator meanwhile.
            three.load_state(one.state()).unwrap();
            let mut rb = ReplayBuffer::new(4, 2, 1000);
            let mut rng = SplitMix::new(4);
            for _ in 0..500 {
                let o: Vec<f32> = (0..4).map(|_| rng.normal()).collect();
                let a: Vec<f32> = (0..2).map(|_| rng.uniform(1.0)).collect();
                let o2: Vec<f32> = (0..4).map(|_| rng.normal()).collect();
                rb.push(&o, &a, rng.normal(), &o2, rng.below(10) == 0);
            }
            let mut mb = Minibatch::default();
            for _ in 0..6 {
                rb.sample_into(33, &mut rng, &mut mb);
                one.update(&mb);
                three.update(&mb);
            }
            let (a, b) = (one.state(), three.state());
            assert_eq!(a.rng, b.rng, "same random draws");
            let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| (p - q).abs() <= 1e-4 * (1.0 + p.abs()));
            assert!(close(&a.actor, &b.actor) && close(&a.critic, &b.critic) && close(&a.actor_target, &b.actor_target));
            assert!(a.actor != a.actor_target, "the actor was updated");
            let (s1, s3) = (one.stats().unwrap(), three.stats().unwrap());
            assert!((s1.critic_loss - s3.critic_loss).abs() <= 1e-4 * (1.0 + s1.critic_loss.abs()));
            assert!((s1.actor_loss.unwrap() - s3.actor_loss.unwrap()).abs() <= 1e-4 * (1.0 + s1.actor_loss.unwrap().abs()));
        }
    }

    /// Targets move only on actor steps, by `θ_targ += (1 − ρ)·(θ − θ_targ)` of the newly
    /// stepped parameters.
    #[test]
    fn targets_follow_by_polyak_averaging_on_actor_steps() {
        let mut td3 = learner(2, false);
        let mut rb = ReplayBuffer::new(4, 2, 1000);
        let mut rng = SplitMix::new(5);
        for _ in 0..200 {
            let o: Vec<f32> = (0..4).map(|_| rng.normal()).collect();
            let a: Vec<f32> = (0..2).map(|_| rng.uniform(1.0)).collect();
            rb.push(&o, &a, rng.normal(), &o, false);
        }
        let mut mb = Minibatch::default();
        rb.sample_into(33, &mut rng, &mut mb);
        let start = td3.state();
        td3.update(&mb);
        let critic_step = td3.state();
        assert_eq!(critic_step.critic_target, start.critic_target, "no target update without an actor step");
        assert_ne!(critic_step.critic, start.critic);
        td3.update(&mb);
        let actor_step = td3.state();
        let w = (1.0 - td3.config.polyak) as f32;
        let follows = |before: &[f32], after: &[f32], online: &[f32]| {
            before.iter().zip(after).zip(online).all(|((t0, t1), p)| (t1 - (t0 + w * (p - t0))).abs() <= 1e-6 * (1.0 + t0.abs()))
        };
        assert!(follows(&critic_step.critic_target, &actor_step.critic_target, &actor_step.critic));
        assert!(follows(&critic_step.actor_target, &actor_step.actor_target, &actor_step.actor));
        assert_ne!(actor_step.actor_target, critic_step.actor_target);
    }

}
