//! TD3 (Fujimoto et al. 2018) with the PopSAN actor, as PopSAN and SpikeRL train it.
//!
//! Per update, on a minibatch `(o, a, r, o', d)` with `x = clip((o − μ)/σ, ±3)`:
//! 1. target: `a' = clip(π_targ(x') + clip(ε, ±c), ±a_max)`, `ε ~ N(0, σ_t²)`;
//!    `y = r + γ·(1 − d)·min(Q1_targ(x', a'), Q2_targ(x', a'))`;
//! 2. critics: `L_Q = mean((Q1(x, a) − y)²) + mean((Q2(x, a) − y)²)`, one Adam step;
//! 3. every `policy_delay` updates: actor `L_π = −mean(Q1(x, π(x)))`, one Adam step, then
//!    Polyak averaging of both targets, `θ_targ ← ρ·θ_targ + (1 − ρ)·θ`.
//!
//! The arithmetic is a [`Kernels`] backend's, chosen once ([`build`]). Each pass runs on
//! shards of the minibatch, one per learner thread, each shard's loss and gradient scaled by
//! the whole batch size so that the shards sum to the full-batch values.
//!
//! With several learner ranks ([`Agent::join`]) every rank samples its own minibatch of `B`
//! from its own replay shard, and each gradient is replaced by its mean over the ranks before
//! the step: the same step on every rank, the one a single learner would take on the `N·B`
//! rows together (each rank's gradient is scaled by its own `B`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use spikerl_collective::{Collective, CollectiveError, Single};
use spikerl_snn::rng::SplitMix;
use spikerl_snn::{ActorSpec, Encoding, ParamSet};
use tch::Device;

use crate::Precision;
use crate::config::{Surrogate, TargetActor, Td3Config};
use crate::kernels::{CpuKernels, Kernels, TchKernels};
use crate::networks::{ActorNet, ActorShape, CriticShape, MlpShape, linear_init};
use crate::normalizer::Normalizer;
use crate::optim::Adam;
use crate::replay::Minibatch;
use crate::threads::LearnerThreads;

/// A TD3 learner, whatever its backend: what a training runtime drives.
pub trait Agent {
    fn config(&self) -> &Td3Config;
    fn spec(&self) -> &ActorSpec;
    /// One TD3 update on `mb`.
    /// One update; a non-finite loss or gradient skips its step (nothing moves), non-finite
    /// parameters after a step are an error the run cannot go on from.
    fn update(&mut self, mb: &Minibatch) -> Result<UpdateOutcome, UpdateError>;
    /// Updates so far (skipped ones included).
    fn updates(&self) -> u64;
    /// Steps skipped so far for a non-finite loss or gradient.
    fn skipped_steps(&self) -> u64;
    /// The running observation statistics (the actors normalise with them too).
    fn normalizer_mut(&mut self) -> &mut Normalizer;
    /// The learner's random generator (replay sampling, target noise), saved in checkpoints.
    fn rng_mut(&mut self) -> &mut SplitMix;
    /// The current actor, for the actors to load.
    fn param_set(&self, version: u64) -> ParamSet;
    /// Losses of the most recent update (the actor's from the most recent actor update).
    fn stats(&self) -> Option<UpdateStats>;
    /// The spiking actor's activity on the update batches, averaged over the actor updates
    /// since the last call (`None` before the first).
    fn take_activity(&mut self) -> Option<ActorActivity>;
    fn state(&self) -> Td3State;
    /// Restores [`Agent::state`] into a learner built with the same config and spec.
    fn load_state(&mut self, s: Td3State) -> Result<(), String>;
    /// Makes this learner one rank of `collective`'s: it takes rank 0's state (parameters,
    /// targets, optimiser moments, normaliser, update count), then averages every gradient
    /// over the ranks. Every rank calls it, at the same point.
    fn join(&mut self, collective: Arc<dyn Collective>) -> Result<(), UpdateError>;
    /// A checksum of everything the ranks must hold alike (all of [`Agent::state`] but the
    /// random generator's, which is each rank's own).
    fn checksum(&self) -> u32;
}

/// A fresh TD3 learner on `device` (the CPU backend there, the tensor backend elsewhere):
/// PopSAN's initialisation for a spiking actor and PyTorch's for a dense one and the critics.
/// On the CPU each update's minibatch is split over `threads` threads.
pub fn build(config: Td3Config, spec: impl Into<ActorSpec>, surrogate: Surrogate, device: Device, precision: Precision, seed: u64, threads: usize) -> Result<Box<dyn Agent>, String> {
    let spec: ActorSpec = spec.into();
    config.validate()?;
    spec.validate().map_err(|e| e.to_string())?;
    let actor = match &spec {
        ActorSpec::Spiking(s) => ActorNet::Spiking(ActorShape::new(s.clone()).with_surrogate(surrogate).with_membrane_reg(config.membrane_reg as f32)),
        ActorSpec::Dense(_) if config.target_actor == TargetActor::Proxy => return Err("the proxy target actor stands in for a spiking actor's target; a dense actor keeps its own (--target-actor spiking)".into()),
        ActorSpec::Dense(_) => ActorNet::of(&spec),
    };
    let (obs_dim, act_dim, act_limit) = (spec.obs_dim(), spec.act_dim(), spec.act_limit());
    let critic = CriticShape::new(obs_dim, act_dim, &config.critic_hidden);
    tch::manual_seed(seed as i64);
    let download = |t: tch::Tensor| Vec::<f32>::try_from(&t.to_device(Device::Cpu)).map_err(|e| e.to_string());
    let critic_init = download(critic.init(device))?;
    let proxy = (config.target_actor == TargetActor::Proxy).then(|| MlpShape::new(obs_dim, act_dim, &config.proxy_hidden, act_limit));
    let proxy_init = proxy.as_ref().map(|p| download(linear_init(&p.layers, device))).transpose()?;
    let init = Init { critic: &critic_init, proxy: proxy_init.as_deref() };
    Ok(match device {
        Device::Cpu => {
            let k = CpuKernels::new(actor, critic, precision);
            Box::new(Td3::new(match proxy { Some(p) => k.with_proxy(p), None => k }, config, spec, init, seed, threads)?)
        }
        _ => {
            let k = TchKernels::new(actor, critic, precision, device);
            Box::new(Td3::new(match proxy { Some(p) => k.with_proxy(p), None => k }, config, spec, init, seed, 1)?)
        }
    })
}

/// Initial parameters drawn outside the backend (PyTorch's initialisation).
pub struct Init<'a> {
    pub critic: &'a [f32],
    /// The proxy target actor's, when there is one.
    pub proxy: Option<&'a [f32]>,
}

/// Losses of the last update (read lazily: on a GPU each read synchronises).
pub struct UpdateStats {
    pub critic_loss: f64,
    pub actor_loss: Option<f64>,
    pub q_mean: f64,
    /// The proxy target actor's mean squared distance to the spiking actor, after its steps.
    pub proxy_loss: Option<f64>,
}

/// What the spiking actor's neurons did on the update batches: the encoder's firing rate, and
/// per spiking layer (hidden, …, output) the firing rate and the fraction of (timestep,
/// sample, neuron) whose membrane lay inside the surrogate window — where gradient flows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorActivity {
    pub encoder_firing: f64,
    pub firing: Vec<f64>,
    pub in_window: Vec<f64>,
}

impl ActorActivity {
    /// From a backend's [`Kernels::actor_activity`] layout, divided by `passes`.
    fn from_sums(sums: &[f32], passes: f64) -> Self {
        let v = |x: f32| f64::from(x) / passes;
        Self { encoder_firing: v(sums[0]), firing: sums[1..].iter().step_by(2).map(|&x| v(x)).collect(), in_window: sums[2..].iter().step_by(2).map(|&x| v(x)).collect() }
    }

    /// The share of the output population's (timestep, sample, neuron) that passes no
    /// gradient: when it nears 1, the actor stops learning.
    pub fn output_dead(&self) -> f64 {
        1.0 - self.in_window.last().copied().unwrap_or(1.0)
    }
}

/// Everything a checkpoint holds of the learner, as plain values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Td3State {
    pub actor: Vec<f32>,
    pub actor_target: Vec<f32>,
    pub critic: Vec<f32>,
    pub critic_target: Vec<f32>,
    pub actor_adam: AdamState,
    pub critic_adam: AdamState,
    pub normalizer: Vec<f64>,
    pub rng: u64,
    pub updates: u64,
    /// The proxy target actor: parameters and Adam state.
    pub proxy: Option<(Vec<f32>, AdamState)>,
}

/// What became of an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Every step it owed was taken.
    Applied,
    /// A loss or gradient was not finite: the critics' step (and with it the update) or the
    /// actor's step was skipped, its parameters unmoved.
    Skipped,
}

/// Parameters that left the finite numbers: the learner cannot continue from them.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the parameters of the {net} became non-finite at update {update} after a step along a finite gradient (a step too large: lower the learning rates)")]
pub struct Diverged {
    pub net: &'static str,
    pub update: u64,
}

/// Why an update could not go on.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Diverged(#[from] Diverged),
    /// Averaging over the learner ranks failed.
    #[error("averaging gradients over the learners failed: {0}")]
    Collective(#[from] CollectiveError),
    /// The ranks' states are no longer the same.
    #[error("the learners' states differ at update {update}: rank {rank}'s checksum {checksum:08x} against rank 0's {rank0:08x} — the ranks no longer train one policy (a fault on one machine, or a bug); the run stops, resume it from its last checkpoint")]
    RanksDiffer { update: u64, rank: usize, checksum: u32, rank0: u32 },
}

/// Compares `agent`'s [`Agent::checksum`] across the ranks of `collective` (every rank calls
/// it at the same point): an error names the first rank that differs from rank 0.
pub fn check_ranks_agree(agent: &dyn Agent, collective: &dyn Collective) -> Result<(), UpdateError> {
    let (rank, world) = (collective.rank(), collective.world_size());
    let mut sums = vec![0f64; world];
    sums[rank] = f64::from(agent.checksum());
    collective.all_reduce_sum(&mut sums)?;
    match sums.iter().position(|&c| c != sums[0]) {
        None => Ok(()),
        Some(r) => Err(UpdateError::RanksDiffer { update: agent.updates(), rank: r, checksum: sums[r] as u32, rank0: sums[0] as u32 }),
    }
}

/// Adam's first and second moments and its step count.
pub type AdamState = (Vec<f32>, Vec<f32>, i64);

pub struct Td3<K: Kernels> {
    config: Td3Config,
    spec: ActorSpec,
    kernels: Arc<K>,
    actor: K::Vector,
    actor_target: K::Vector,
    critic: K::Vector,
    critic_target: K::Vector,
    actor_adam: Adam<K::Vector>,
    critic_adam: Adam<K::Vector>,
    normalizer: Normalizer,
    rng: SplitMix,
    updates: u64,
    skipped: u64,
    last: Option<Losses<K::Vector>>,
    /// Summed actor activity of the shards' actor passes since the last read, and their count.
    activity: Option<(K::Vector, usize)>,
    /// The proxy target actor and its optimiser (`--target-actor proxy`).
    proxy: Option<(K::Vector, Adam<K::Vector>)>,
    threads: LearnerThreads,
    /// Lengths of the actor's and the critics' parameter vectors.
    sizes: (usize, usize),
    /// The learner ranks gradients are averaged over ([`Single`] alone).
    collective: Arc<dyn Collective>,
}

impl<K: Kernels> Td3<K> {
    pub fn new(kernels: K, config: Td3Config, spec: impl Into<ActorSpec>, init: Init, seed: u64, threads: usize) -> Result<Self, String> {
        let spec: ActorSpec = spec.into();
        let actor = ParamSet::init(&spec, seed).map_err(|e| e.to_string())?;
        let k = &kernels;
        let zeros = |n: usize| k.filled(n, 0.0);
        let (na, nc) = (actor.flat().len(), init.critic.len());
        Ok(Self {
            actor: k.upload(actor.flat()),
            actor_target: k.upload(actor.flat()),
            critic: k.upload(init.critic),
            critic_target: k.upload(init.critic),
            proxy: init.proxy.map(|p| (k.upload(p), Adam::new(zeros(p.len()), zeros(p.len()), config.proxy_lr))),
            actor_adam: Adam::new(zeros(na), zeros(na), config.actor_lr),
            critic_adam: Adam::new(zeros(nc), zeros(nc), config.critic_lr),
            normalizer: Normalizer::new(spec.obs_dim()),
            rng: SplitMix::new(seed ^ 0x0005_EED0_F7D3),
            updates: 0,
            skipped: 0,
            last: None,
            activity: None,
            threads: LearnerThreads::new(threads.max(1) - 1),
            sizes: (na, nc),
            collective: Arc::new(Single),
            kernels: Arc::new(kernels),
            config,
            spec,
        })
    }

    /// One TD3 update on `mb`.
    pub fn update(&mut self, mb: &Minibatch) -> Result<UpdateOutcome, UpdateError> {
        let c = self.config.clone();
        let (batch, act_dim) = (mb.rew.len(), self.spec.act_dim());
        // Random draws for the whole batch, in one order, whatever the thread count.
        let eps: Vec<f32> = (0..batch * act_dim).map(|_| (self.rng.normal() * c.target_noise).clamp(-c.noise_clip, c.noise_clip)).collect();
        let target_uniforms = self.encoder_uniforms(batch);
        let actor_step = (self.updates + 1).is_multiple_of(c.policy_delay);
        let pi_uniforms = if actor_step { self.encoder_uniforms(batch) } else { None };
        // x = clip((o − μ)/σ, ±3) and x', once for the shards and the proxy.
        let (x, x2) = (self.normalized(&mb.obs), self.normalized(&mb.next_obs));
        let shards = self.shards(mb, &x, &x2, &eps, target_uniforms.as_deref(), pi_uniforms.as_deref());
        let scale = Scale { batch: batch as f32, gamma: c.gamma as f32, act_limit: self.spec.act_limit() };

        // Proxy target (Xu et al. 2025): before the critics learn, the ANN the targets act with
        // takes proxy_steps Adam steps towards the spiking actor's actions at x'.
        let proxy_loss = self.proxy.is_some().then(|| self.step_proxy(&x2, mb.rew.len(), c.proxy_steps)).transpose()?;

        // Critics: one Adam step along ∇L_Q (averaged over the ranks) — none if the loss or its
        // gradient is not finite.
        let mut critics = self.across_threads(&shards, scale, critic_pass::<K>);
        self.average_over_ranks(&mut critics.grad, &critics.loss)?;
        self.updates += 1;
        if !(self.kernels.all_finite(&critics.loss) && self.kernels.all_finite(&critics.grad)) {
            self.skipped += 1;
            return Ok(UpdateOutcome::Skipped);
        }
        self.kernels.adam_step(&mut self.critic_adam, &mut self.critic, &critics.grad);
        self.check_finite(&self.critic, "critics")?;
        let mut outcome = UpdateOutcome::Applied;

        // Every policy_delay updates: the actor's Adam step along ∇L_π (through the critic just
        // stepped), then both targets follow.
        let mut actor_loss = None;
        if actor_step {
            let mut actor = self.across_threads(&shards, scale, actor_pass::<K>);
            self.average_over_ranks(&mut actor.grad, &actor.loss)?;
            if let Some(a) = actor.activity {
                match &mut self.activity {
                    Some((sum, passes)) => {
                        self.kernels.add_assign(sum, &a);
                        *passes += shards.len();
                    }
                    None => self.activity = Some((a, shards.len())),
                }
            }
            if self.kernels.all_finite(&actor.loss) && self.kernels.all_finite(&actor.grad) {
                self.kernels.adam_step(&mut self.actor_adam, &mut self.actor, &actor.grad);
                self.check_finite(&self.actor, "actor")?;
                actor_loss = Some(actor.loss);
            } else {
                self.skipped += 1;
                outcome = UpdateOutcome::Skipped;
            }
            let w = (1.0 - c.polyak) as f32;
            self.kernels.lerp(&mut self.actor_target, &self.actor, w);
            self.kernels.lerp(&mut self.critic_target, &self.critic, w);
        }
        let previous_actor_loss = self.last.take().and_then(|l| l.actor);
        self.last = Some(Losses { critic: critics.loss, actor: actor_loss.or(previous_actor_loss), q_mean: critics.q_mean.expect("the critic pass reports Q"), proxy: proxy_loss });
        Ok(outcome)
    }

    /// `grad` ← its mean over the learner ranks. A rank whose loss is not finite contributes
    /// NaN, so that every rank sees a non-finite mean and skips the same step.
    fn average_over_ranks(&self, grad: &mut K::Vector, loss: &K::Vector) -> Result<(), CollectiveError> {
        if self.collective.backend() == "single" {
            return Ok(());
        }
        let k = &*self.kernels;
        if !k.all_finite(loss) {
            *grad = k.scale(grad, f32::NAN);
        }
        k.all_reduce_mean(grad, &*self.collective)
    }

    fn check_finite(&self, params: &K::Vector, net: &'static str) -> Result<(), Diverged> {
        if self.kernels.all_finite(params) { Ok(()) } else { Err(Diverged { net, update: self.updates }) }
    }

    /// `steps` Adam steps of the proxy on `L = Σ (proxy(x') − π(x'))² / (B·act_dim)`, the
    /// spiking actor's actions taken once; the loss after the last step's forward pass. A
    /// non-finite gradient ends the steps early.
    fn step_proxy(&mut self, x2: &[f32], batch: usize, steps: u64) -> Result<K::Vector, UpdateError> {
        let uniforms = self.encoder_uniforms(batch);
        let k = &*self.kernels;
        let x2 = k.upload(x2);
        let uniforms = uniforms.map(|u| k.upload(&u));
        let (target, _) = k.actor_forward(&self.actor, &x2, uniforms.as_ref());
        let n = (batch * self.spec.act_dim()) as f32;
        let (params, adam) = self.proxy.as_mut().expect("a proxy target actor");
        let mut loss = None;
        for _ in 0..steps {
            let (a, tape) = k.proxy_forward(params, &x2);
            let diff = k.sub(&a, &target);
            let mut grad = k.proxy_backward(params, &tape, &k.scale(&diff, 2.0 / n));
            if self.collective.backend() != "single" {
                k.all_reduce_mean(&mut grad, &*self.collective)?;
            }
            loss = Some(k.scale(&k.sum_squares(&diff), 1.0 / n));
            if !k.all_finite(&grad) {
                break;
            }
            k.adam_step(adam, params, &grad);
            if !k.all_finite(params) {
                return Err(Diverged { net: "proxy target actor", update: self.updates }.into());
            }
        }
        Ok(loss.expect("at least one proxy step"))
    }

    /// `clip((o − μ)/σ, ±3)` for rows of observations.
    fn normalized(&self, obs: &[f32]) -> Vec<f32> {
        let od = self.spec.obs_dim();
        let (mean, std) = (self.normalizer.mean(), self.normalizer.std());
        obs.iter().enumerate().map(|(i, &o)| ((o - mean[i % od]) / std[i % od]).clamp(-3.0, 3.0)).collect()
    }

    /// Normalised rows of `mb` and their random draws, one shard per learner thread, on the
    /// backend.
    fn shards(&self, mb: &Minibatch, x: &[f32], x2: &[f32], eps: &[f32], target_uniforms: Option<&[f32]>, pi_uniforms: Option<&[f32]>) -> Vec<Shard<K::Vector>> {
        let (od, ad) = (self.spec.obs_dim(), self.spec.act_dim());
        let batch = mb.rew.len();
        let k = &*self.kernels;
        let parts = self.threads.count().min(batch);
        let enc = self.spec.spiking().map_or(0, |s| s.obs_dim * s.encoder_pop);
        (0..parts)
            .map(|i| {
                let rows = i * batch / parts..(i + 1) * batch / parts;
                let of = |values: &[f32], width: usize| k.upload(&values[rows.start * width..rows.end * width]);
                // Encoder draws are [T, B, n]: this shard's rows of every timestep.
                let steps = |u: Option<&[f32]>| u.map(|u| k.upload(&u.chunks_exact(batch * enc).flat_map(|step| &step[rows.start * enc..rows.end * enc]).copied().collect::<Vec<f32>>()));
                Shard {
                    rows: rows.len(),
                    x: of(x, od),
                    a: of(&mb.act, ad),
                    r: of(&mb.rew, 1),
                    x2: of(x2, od),
                    d: of(&mb.done, 1),
                    eps: of(eps, ad),
                    target_uniforms: steps(target_uniforms),
                    pi_uniforms: steps(pi_uniforms),
                }
            })
            .collect()
    }

    /// `pass` on every shard, one learner thread each, summed in shard order.
    fn across_threads(&self, shards: &[Shard<K::Vector>], scale: Scale, pass: PassFn<K>) -> Pass<K::Vector> {
        let jobs: Vec<Box<dyn FnOnce() -> Pass<K::Vector> + Send>> = shards
            .iter()
            .map(|shard| {
                let (k, nets, shard) = (self.kernels.clone(), self.nets(), shard.share::<K>());
                Box::new(move || pass(&k, &nets, &shard, scale)) as Box<dyn FnOnce() -> Pass<K::Vector> + Send>
            })
            .collect();
        let k = &*self.kernels;
        let mut parts = self.threads.map(jobs).into_iter();
        let mut total = parts.next().expect("one shard at least");
        for part in parts {
            k.add_assign(&mut total.grad, &part.grad);
            k.add_assign(&mut total.loss, &part.loss);
            if let (Some(q), Some(part_q)) = (total.q_mean.as_mut(), part.q_mean.as_ref()) {
                k.add_assign(q, part_q);
            }
            if let (Some(a), Some(part_a)) = (total.activity.as_mut(), part.activity.as_ref()) {
                k.add_assign(a, part_a);
            }
        }
        total
    }

    fn nets(&self) -> Nets<K::Vector> {
        Nets {
            actor: K::share(&self.actor),
            actor_target: K::share(&self.actor_target),
            critic: K::share(&self.critic),
            critic_target: K::share(&self.critic_target),
            proxy: self.proxy.as_ref().map(|(p, _)| K::share(p)),
        }
    }

    /// Uniform draws `[T, B, encoder neurons]` for a Poisson encoder from the learner's own
    /// generator (so that a resumed run draws the same), `None` for deterministic encoding.
    fn encoder_uniforms(&mut self, batch: usize) -> Option<Vec<f32>> {
        let s = self.spec.spiking().filter(|s| s.encoding == Encoding::Poisson)?;
        Some((0..s.timesteps * batch * s.obs_dim * s.encoder_pop).map(|_| self.rng.next_f32()).collect())
    }
}

/// The last update's losses (the actor's from the last actor update) and mean Q1, on the
/// backend until read.
struct Losses<V> {
    critic: V,
    actor: Option<V>,
    q_mean: V,
    proxy: Option<V>,
}

/// The batch size every shard scales its loss by, and the constants of the losses.
#[derive(Clone, Copy)]
struct Scale {
    batch: f32,
    gamma: f32,
    act_limit: f32,
}

/// One shard's part of a loss: its gradient, its share of the loss and, for the critics, of
/// mean Q1.
struct Pass<V> {
    grad: V,
    loss: V,
    q_mean: Option<V>,
    /// The actor pass: [`Kernels::actor_activity`] of its forward pass.
    activity: Option<V>,
}

type PassFn<K> = fn(&K, &Nets<<K as Kernels>::Vector>, &Shard<<K as Kernels>::Vector>, Scale) -> Pass<<K as Kernels>::Vector>;

/// The networks a pass reads, as handles a learner thread can own.
struct Nets<V> {
    actor: V,
    actor_target: V,
    critic: V,
    critic_target: V,
    /// The proxy target actor, which then acts for the targets instead of `actor_target`.
    proxy: Option<V>,
}

/// Rows of the minibatch (normalised observations `x`, `x2`) and their random draws.
struct Shard<V> {
    rows: usize,
    x: V,
    a: V,
    r: V,
    x2: V,
    d: V,
    eps: V,
    target_uniforms: Option<V>,
    pi_uniforms: Option<V>,
}

impl<V> Shard<V> {
    fn share<K: Kernels<Vector = V>>(&self) -> Self {
        Self {
            rows: self.rows,
            x: K::share(&self.x),
            a: K::share(&self.a),
            r: K::share(&self.r),
            x2: K::share(&self.x2),
            d: K::share(&self.d),
            eps: K::share(&self.eps),
            target_uniforms: self.target_uniforms.as_ref().map(K::share),
            pi_uniforms: self.pi_uniforms.as_ref().map(K::share),
        }
    }
}

/// The critics' loss on a shard:
/// `y = r + γ(1 − d)·min(Q1_targ, Q2_targ)(x', a')` at `a' = clip(π_targ(x') + ε, ±a_max)`,
/// `L_Q = Σ(Q1(x, a) − y)²/B + Σ(Q2(x, a) − y)²/B`, `∂L_Q/∂Q_i = 2(Q_i − y)/B`. `π_targ` is the
/// proxy when there is one.
fn critic_pass<K: Kernels>(k: &K, n: &Nets<K::Vector>, s: &Shard<K::Vector>, c: Scale) -> Pass<K::Vector> {
    let a_targ = match &n.proxy {
        Some(proxy) => k.proxy_forward(proxy, &s.x2).0,
        None => k.actor_forward(&n.actor_target, &s.x2, s.target_uniforms.as_ref()).0,
    };
    let a2 = k.add_clipped(&a_targ, &s.eps, c.act_limit);
    let (q1_targ, q2_targ, _) = k.critics_forward(&n.critic_target, &s.x2, &a2);
    let y = k.td_target(&s.r, &s.d, c.gamma, &q1_targ, &q2_targ);

    let (q1, q2, tape) = k.critics_forward(&n.critic, &s.x, &s.a);
    let (e1, e2) = (k.sub(&q1, &y), k.sub(&q2, &y));
    let mut loss = k.sum_squares(&e1);
    k.add_assign(&mut loss, &k.sum_squares(&e2));
    let grad = k.critics_backward(&n.critic, &tape, &k.scale(&e1, 2.0 / c.batch), &k.scale(&e2, 2.0 / c.batch));
    Pass { grad, loss: k.scale(&loss, 1.0 / c.batch), q_mean: Some(k.scale(&k.sum(&q1), 1.0 / c.batch)), activity: None }
}

/// The actor's loss on a shard: `L_π = −Σ Q1(x, π(x))/B`; `∂L_π/∂Q1 = −1/B`, back through Q1
/// to the action and through the spiking actor (surrogate gradients) to its parameters.
fn actor_pass<K: Kernels>(k: &K, n: &Nets<K::Vector>, s: &Shard<K::Vector>, c: Scale) -> Pass<K::Vector> {
    let (a_pi, actor_tape) = k.actor_forward(&n.actor, &s.x, s.pi_uniforms.as_ref());
    let (q_pi, q_tape) = k.q1_forward(&n.critic, &s.x, &a_pi);
    let grad_a = k.q1_action_grad(&n.critic, &q_tape, &k.filled(s.rows, -1.0 / c.batch));
    let grad = k.actor_backward(&n.actor, &actor_tape, &grad_a);
    Pass { grad, loss: k.scale(&k.sum(&q_pi), -1.0 / c.batch), q_mean: None, activity: k.actor_activity(&actor_tape) }
}

impl<K: Kernels> Agent for Td3<K> {
    fn config(&self) -> &Td3Config {
        &self.config
    }

    fn spec(&self) -> &ActorSpec {
        &self.spec
    }

    fn update(&mut self, mb: &Minibatch) -> Result<UpdateOutcome, UpdateError> {
        Td3::update(self, mb)
    }

    fn updates(&self) -> u64 {
        self.updates
    }

    fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    fn normalizer_mut(&mut self) -> &mut Normalizer {
        &mut self.normalizer
    }

    fn rng_mut(&mut self) -> &mut SplitMix {
        &mut self.rng
    }

    fn param_set(&self, version: u64) -> ParamSet {
        ParamSet::from_flat(self.spec.clone(), version, self.normalizer.mean(), self.normalizer.std(), self.kernels.download(&self.actor))
            .expect("the learner's parameters are finite and fit the spec")
    }

    fn stats(&self) -> Option<UpdateStats> {
        let k = &*self.kernels;
        let scalar = |v: &K::Vector| f64::from(k.download(v)[0]);
        self.last.as_ref().map(|l| UpdateStats { critic_loss: scalar(&l.critic), actor_loss: l.actor.as_ref().map(scalar), q_mean: scalar(&l.q_mean), proxy_loss: l.proxy.as_ref().map(scalar) })
    }

    fn take_activity(&mut self) -> Option<ActorActivity> {
        let (sums, passes) = self.activity.take()?;
        Some(ActorActivity::from_sums(&self.kernels.download(&sums), passes as f64))
    }

    fn state(&self) -> Td3State {
        let k = &*self.kernels;
        Td3State {
            actor: k.download(&self.actor),
            actor_target: k.download(&self.actor_target),
            critic: k.download(&self.critic),
            critic_target: k.download(&self.critic_target),
            actor_adam: (k.download(&self.actor_adam.m), k.download(&self.actor_adam.v), self.actor_adam.steps),
            critic_adam: (k.download(&self.critic_adam.m), k.download(&self.critic_adam.v), self.critic_adam.steps),
            normalizer: self.normalizer.to_vec(),
            rng: self.rng.state(),
            updates: self.updates,
            proxy: self.proxy.as_ref().map(|(p, adam)| (k.download(p), (k.download(&adam.m), k.download(&adam.v), adam.steps))),
        }
    }

    fn load_state(&mut self, s: Td3State) -> Result<(), String> {
        let k = &*self.kernels;
        let (na, nc) = self.sizes;
        let sizes_ok = [&s.actor, &s.actor_target, &s.actor_adam.0, &s.actor_adam.1].iter().all(|v| v.len() == na)
            && [&s.critic, &s.critic_target, &s.critic_adam.0, &s.critic_adam.1].iter().all(|v| v.len() == nc);
        if !sizes_ok {
            return Err(format!("checkpoint networks do not match this configuration ({na} actor and {nc} critic parameters expected)"));
        }
        match (&mut self.proxy, &s.proxy) {
            (Some((p, adam)), Some((params, (m, v, steps)))) => {
                let n = k.download(p).len();
                if [params, m, v].iter().any(|x| x.len() != n) {
                    return Err(format!("the checkpoint's proxy target actor does not match this configuration ({n} parameters expected)"));
                }
                (*p, adam.m, adam.v, adam.steps) = (k.upload(params), k.upload(m), k.upload(v), *steps);
            }
            (None, None) => {}
            (Some(_), None) => return Err("the checkpoint has no proxy target actor; resume it with --target-actor spiking".into()),
            (None, Some(_)) => return Err("the checkpoint has a proxy target actor; resume it with --target-actor proxy".into()),
        }
        self.normalizer = Normalizer::from_vec(self.spec.obs_dim(), &s.normalizer)?;
        self.actor = k.upload(&s.actor);
        self.actor_target = k.upload(&s.actor_target);
        self.critic = k.upload(&s.critic);
        self.critic_target = k.upload(&s.critic_target);
        (self.actor_adam.m, self.actor_adam.v, self.actor_adam.steps) = (k.upload(&s.actor_adam.0), k.upload(&s.actor_adam.1), s.actor_adam.2);
        (self.critic_adam.m, self.critic_adam.v, self.critic_adam.steps) = (k.upload(&s.critic_adam.0), k.upload(&s.critic_adam.1), s.critic_adam.2);
        self.rng = SplitMix::new(s.rng);
        self.updates = s.updates;
        self.last = None;
        self.activity = None;
        Ok(())
    }

    fn join(&mut self, collective: Arc<dyn Collective>) -> Result<(), UpdateError> {
        let config = bincode::config::standard();
        let mut bytes = if collective.rank() == 0 { bincode::serde::encode_to_vec(self.state(), config).expect("learner state encodes") } else { Vec::new() };
        collective.broadcast(&mut bytes, 0)?;
        if collective.rank() != 0 {
            let broken = |why: String| CollectiveError::Failed { backend: collective.backend(), what: format!("rank 0's learner state does not fit this rank's: {why}") };
            let (mut state, _): (Td3State, usize) = bincode::serde::decode_from_slice(&bytes, config).map_err(|e| broken(e.to_string()))?;
            // The random generator stays this rank's own: its own minibatches and noise.
            state.rng = self.rng.state();
            self.load_state(state).map_err(broken)?;
        }
        self.collective = collective;
        Ok(())
    }

    fn checksum(&self) -> u32 {
        let mut hash = crc32fast::Hasher::new();
        let s = self.state();
        for v in [&s.actor, &s.actor_target, &s.critic, &s.critic_target, &s.actor_adam.0, &s.actor_adam.1, &s.critic_adam.0, &s.critic_adam.1] {
            v.iter().for_each(|x| hash.update(&x.to_le_bytes()));
        }
        if let Some((p, (m, v, steps))) = &s.proxy {
            [p, m, v].iter().for_each(|v| v.iter().for_each(|x| hash.update(&x.to_le_bytes())));
            hash.update(&steps.to_le_bytes());
        }
        s.normalizer.iter().for_each(|x| hash.update(&x.to_le_bytes()));
        for n in [s.actor_adam.2, s.critic_adam.2, s.updates as i64] {
            hash.update(&n.to_le_bytes());
        }
        hash.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ActorConfig, ActorKind};
    use crate::replay::ReplayBuffer;

    fn learner(threads: usize, encoding: Encoding) -> Box<dyn Agent> {
        let config = Td3Config { batch_size: 33, replay_size: 1000, ..Td3Config::default() };
        let spec = ActorConfig { encoding, ..ActorConfig::default() }.spec(4, 2, 1.0).unwrap();
        build(config, spec, Surrogate::Rectangle, Device::Cpu, Precision::F32, 9, threads).unwrap()
    }

    fn replay(seed: u64) -> (ReplayBuffer, SplitMix) {
        let mut rb = ReplayBuffer::new(4, 2, 1000);
        let mut rng = SplitMix::new(seed);
        for _ in 0..500 {
            let o: Vec<f32> = (0..4).map(|_| rng.normal()).collect();
            let a: Vec<f32> = (0..2).map(|_| rng.uniform(1.0)).collect();
            let o2: Vec<f32> = (0..4).map(|_| rng.normal()).collect();
            rb.push(&o, &a, rng.normal(), &o2, rng.below(10) == 0);
        }
        (rb, rng)
    }

    /// Starts `b` from `a`'s state, makes `updates` updates of both on the same minibatches, and
    /// checks that they end in the same state (up to float rounding) with the same draws.
    fn side_by_side(a: &mut dyn Agent, b: &mut dyn Agent, updates: usize) -> (Td3State, Td3State) {
        // Same start whatever other tests do to libtorch's global generator meanwhile.
        b.load_state(a.state()).unwrap();
        let (rb, mut rng) = replay(4);
        let mut mb = Minibatch::default();
        for _ in 0..updates {
            rb.sample_into(33, &mut rng, &mut mb);
            a.update(&mb).unwrap();
            b.update(&mb).unwrap();
        }
        let (sa, sb) = (a.state(), b.state());
        assert_eq!(sa.rng, sb.rng, "same random draws");
        // Float rounding differs between the backends (and, under load, with the BLAS's thread
        // count); Adam turns a rounding-level difference of a gradient that is itself ≈ 0
        // into a step-sized one. So: every parameter within 1e-2, and all but one in a thousand
        // within 1e-4 (typically all within 1e-6) — a wrong gradient moves far more of them.
        let close = |x: &[f32], y: &[f32]| {
            let gap = |(p, q): (&f32, &f32)| (p - q).abs() / (1.0 + p.abs());
            let outliers = x.iter().zip(y).filter(|&pq| gap(pq) > 1e-4).count();
            x.iter().zip(y).all(|pq| gap(pq) <= 1e-2) && outliers <= x.len() / 1000
        };
        for (what, x, y) in [("actor", &sa.actor, &sb.actor), ("critics", &sa.critic, &sb.critic), ("actor target", &sa.actor_target, &sb.actor_target), ("critic target", &sa.critic_target, &sb.critic_target)] {
            assert!(close(x, y), "{what} differ");
        }
        (sa, sb)
    }

    /// Splitting the minibatch over threads computes the same update (summed gradients differ
    /// only in float rounding), with the same random draws.
    #[test]
    fn threaded_updates_equal_single_threaded() {
        for encoding in [Encoding::Deterministic, Encoding::Poisson] {
            let (mut one, mut three) = (learner(1, encoding), learner(3, encoding));
            let (a, _) = side_by_side(&mut *one, &mut *three, 6);
            assert!(a.actor != a.actor_target, "the actor was updated");
            let (s1, s3) = (one.stats().unwrap(), three.stats().unwrap());
            assert!((s1.critic_loss - s3.critic_loss).abs() <= 1e-4 * (1.0 + s1.critic_loss.abs()));
            assert!((s1.actor_loss.unwrap() - s3.actor_loss.unwrap()).abs() <= 1e-4 * (1.0 + s1.actor_loss.unwrap().abs()));
        }
    }

    /// The CPU backend and the tensor backend (what CUDA runs, here on the CPU) make the same
    /// updates, with the spiking actor and with the dense one.
    #[test]
    fn both_backends_make_the_same_updates() {
        let config = Td3Config { batch_size: 33, replay_size: 1000, ..Td3Config::default() };
        for kind in [ActorKind::Spiking, ActorKind::Mlp] {
            let spec = ActorConfig { actor: kind, actor_hidden: vec![32, 32], ..ActorConfig::default() }.spec(4, 2, 1.0).unwrap();
            let (actor, critic) = (ActorNet::of(&spec), CriticShape::new(4, 2, &config.critic_hidden));
            let init = vec![0.01f32; critic.n_params];
            let init = || Init { critic: &init, proxy: None };
            let mut cpu = Td3::new(CpuKernels::new(actor.clone(), critic.clone(), Precision::F32), config.clone(), spec.clone(), init(), 3, 2).unwrap();
            let mut ops = Td3::new(TchKernels::new(actor, critic, Precision::F32, Device::Cpu), config.clone(), spec, init(), 3, 1).unwrap();
            let start = Agent::state(&cpu);
            let (a, _) = side_by_side(&mut cpu, &mut ops, 4);
            assert_ne!(a.critic, start.critic, "the critics moved ({kind:?})");
            assert_ne!(a.actor, start.actor, "the actor moved ({kind:?})");
            assert_eq!(cpu.take_activity().is_some(), kind == ActorKind::Spiking, "only spiking neurons have activity");
        }
    }

    /// With a proxy target actor the ANN learns to act as the spiking actor does (its loss
    /// falls), both backends make the same updates, and a checkpoint carries it.
    #[test]
    fn a_proxy_target_actor_imitates_the_spiking_actor() {
        let config = Td3Config { batch_size: 33, replay_size: 1000, target_actor: TargetActor::Proxy, proxy_hidden: vec![64, 64], proxy_steps: 3, ..Td3Config::default() };
        let spec = ActorConfig::default().spec(4, 2, 1.0).unwrap();
        let mut cpu = build(config.clone(), spec.clone(), Surrogate::Rectangle, Device::Cpu, Precision::F32, 3, 2).unwrap();
        let (actor, critic) = (ActorNet::of(&spec), CriticShape::new(4, 2, &config.critic_hidden));
        let proxy = MlpShape::new(4, 2, &config.proxy_hidden, 1.0);
        let state = cpu.state();
        let (c, p) = (state.critic.clone(), state.proxy.clone().unwrap().0);
        let mut ops = Td3::new(TchKernels::new(actor, critic, Precision::F32, Device::Cpu).with_proxy(proxy), config.clone(), spec, Init { critic: &c, proxy: Some(&p) }, 3, 1).unwrap();
        side_by_side(&mut *cpu, &mut ops, 4);
        // A spiking actor far from the fresh proxy's ≈ 0 actions: decoder biases ±1 (the flat
        // layout ends with them).
        let mut s = cpu.state();
        let n = s.actor.len();
        s.actor[n - 2..].copy_from_slice(&[1.0, -1.0]);
        cpu.load_state(s).unwrap();
        let (rb, mut rng) = replay(7);
        let mut mb = Minibatch::default();
        rb.sample_into(33, &mut rng, &mut mb);
        cpu.update(&mb).unwrap();
        let first = cpu.stats().unwrap().proxy_loss.expect("the proxy's loss");
        for _ in 0..60 {
            rb.sample_into(33, &mut rng, &mut mb);
            cpu.update(&mb).unwrap();
        }
        let last = cpu.stats().unwrap().proxy_loss.unwrap();
        assert!(first > 0.1 && last < 0.1 * first, "the proxy's distance to the spiking actor: {first} → {last}");
        let s = cpu.state();
        assert!(s.proxy.is_some());
        let mut plain = learner(1, Encoding::Deterministic);
        assert!(plain.load_state(s).unwrap_err().contains("--target-actor proxy"));
    }

    /// Targets move only on actor steps, by `θ_targ += (1 − ρ)·(θ − θ_targ)` of the newly
    /// stepped parameters.
    #[test]
    fn targets_follow_by_polyak_averaging_on_actor_steps() {
        let mut td3 = learner(2, Encoding::Deterministic);
        let (rb, mut rng) = replay(5);
        let mut mb = Minibatch::default();
        rb.sample_into(33, &mut rng, &mut mb);
        let start = td3.state();
        td3.update(&mb).unwrap();
        let critic_step = td3.state();
        assert_eq!(critic_step.critic_target, start.critic_target, "no target update without an actor step");
        assert_ne!(critic_step.critic, start.critic);
        td3.update(&mb).unwrap();
        let actor_step = td3.state();
        // One actor update, two shards: the actor's activity of those passes, read once.
        let a = td3.take_activity().expect("an actor update happened");
        assert_eq!((a.firing.len(), a.in_window.len()), (3, 3), "two hidden layers and the output");
        assert!([a.encoder_firing].iter().chain(&a.firing).chain(&a.in_window).all(|x| (0.0..=1.0).contains(x)), "{a:?}");
        assert!(td3.take_activity().is_none(), "read and reset");
        let w = (1.0 - td3.config().polyak) as f32;
        let follows = |before: &[f32], after: &[f32], online: &[f32]| {
            before.iter().zip(after).zip(online).all(|((t0, t1), p)| (t1 - (t0 + w * (p - t0))).abs() <= 1e-6 * (1.0 + t0.abs()))
        };
        assert!(follows(&critic_step.critic_target, &actor_step.critic_target, &actor_step.critic));
        assert!(follows(&critic_step.actor_target, &actor_step.actor_target, &actor_step.actor));
        assert_ne!(actor_step.actor_target, critic_step.actor_target);
    }

    /// A minibatch whose rewards overflow the critics' loss (3e38, finite) moves nothing and
    /// is counted; the next sane minibatch updates as usual. Parameters a step made
    /// non-finite are an error, on both backends.
    #[test]
    fn a_non_finite_loss_skips_the_step_and_non_finite_parameters_are_an_error() {
        for device in [Device::Cpu, Device::Cuda(0)].into_iter().filter(|d| *d == Device::Cpu || tch::Cuda::is_available()) {
            let config = Td3Config { batch_size: 33, replay_size: 1000, policy_delay: 1, ..Td3Config::default() };
            let spec = ActorConfig::default().spec(4, 2, 1.0).unwrap();
            let mut td3 = build(config.clone(), spec.clone(), Surrogate::Rectangle, device, Precision::F32, 9, 2).unwrap();
            let (rb, mut rng) = replay(6);
            let mut mb = Minibatch::default();
            rb.sample_into(33, &mut rng, &mut mb);
            let before = td3.state();
            let mut hostile = mb.clone();
            hostile.rew.iter_mut().for_each(|r| *r = 3e38);
            assert_eq!(td3.update(&hostile).unwrap(), UpdateOutcome::Skipped, "{device:?}");
            let after = td3.state();
            assert_eq!((after.critic == before.critic, after.actor == before.actor, td3.skipped_steps(), td3.updates()), (true, true, 1, 1), "{device:?}");
            assert_eq!(td3.update(&mb).unwrap(), UpdateOutcome::Applied, "{device:?}");
            assert_ne!(td3.state().critic, before.critic);

            // A finite gradient, but Adam's moments say step by 3e38 / 1e-8: the step is not.
            let mut state = td3.state();
            state.critic_adam.0.iter_mut().for_each(|m| *m = 3e38);
            state.critic_adam.1.iter_mut().for_each(|v| *v = 0.0);
            td3.load_state(state).unwrap();
            let err = td3.update(&mb).map(|_| ()).unwrap_err();
            assert!(err.to_string().contains("critics"), "{err}");
        }
    }
}
