//! What a learner is told: TD3's hyperparameters and the spiking actor's shape, each with its
//! default (PopSAN/SpikeRL's), as command-line flags and as TOML keys of the same names.

use clap::Args;
use serde::{Deserialize, Serialize};
use spikerl_snn::{ActorSpec, DenseSpec, Encoding, PopSanSpec, SnnError};

/// The largest learning rate accepted.
pub const MAX_LEARNING_RATE: f64 = 1.0;
/// The largest replay ratio accepted (REDQ, among the highest in use, takes 20).
pub const MAX_UPDATES_PER_STEP: f64 = 100.0;

/// TD3's hyperparameters (Fujimoto et al. 2018, with PopSAN/SpikeRL's values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Algorithm (TD3)")]
pub struct Td3Config {
    /// Discount factor γ.
    #[arg(long, default_value_t = 0.99)]
    pub gamma: f64,
    /// Target networks keep this share each step: θ_targ ← ρ·θ_targ + (1 − ρ)·θ.
    #[arg(long, default_value_t = 0.995)]
    pub polyak: f64,
    /// Adam learning rate of the spiking actor.
    #[arg(long, default_value_t = 1e-4)]
    pub actor_lr: f64,
    /// Adam learning rate of the twin critics.
    #[arg(long, default_value_t = 1e-3)]
    pub critic_lr: f64,
    /// Transitions per update.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// Transitions the replay buffer holds (the oldest go first).
    #[arg(long, default_value_t = 1_000_000)]
    pub replay_size: usize,
    /// Env steps with uniform random actions before the policy acts.
    #[arg(long, default_value_t = 10_000)]
    pub start_steps: u64,
    /// Env steps before the first update.
    #[arg(long, default_value_t = 1000)]
    pub update_after: u64,
    /// --sync: collect this many env steps, then run as many updates (× --updates-per-step).
    #[arg(long, default_value_t = 50)]
    pub update_every: u64,
    /// Updates per env step (1: the published algorithm; 0: collection only).
    #[arg(long, default_value_t = 1.0)]
    pub updates_per_step: f64,
    /// Std of the Gaussian exploration noise added to actions (absolute, as in Spinning Up).
    #[arg(long, default_value_t = 0.1)]
    pub act_noise: f32,
    /// Std of the target-policy smoothing noise.
    #[arg(long, default_value_t = 0.2)]
    pub target_noise: f32,
    /// The smoothing noise is clipped to ± this.
    #[arg(long, default_value_t = 0.5)]
    pub noise_clip: f32,
    /// The actor and the targets move every this many critic updates.
    #[arg(long, default_value_t = 2)]
    pub policy_delay: u64,
    /// Hidden layer widths of each critic (ReLU MLPs), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "256,256")]
    pub critic_hidden: Vec<usize>,
    /// What the critics' targets act with: the Polyak-averaged spiking actor (PopSAN's), or a
    /// proxy ANN that imitates the spiking actor (Proxy Target, Xu et al. 2025).
    #[arg(long, value_enum, default_value_t = TargetActor::Spiking)]
    pub target_actor: TargetActor,
    /// Proxy target: Adam steps per update towards the spiking actor's actions.
    #[arg(long, default_value_t = 3)]
    pub proxy_steps: u64,
    /// Proxy target: Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub proxy_lr: f64,
    /// Proxy target: hidden ReLU layer widths (tanh output × the action limit), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "512,512")]
    pub proxy_hidden: Vec<usize>,
    /// Weight λ of a penalty that keeps the output population's membranes near threshold:
    /// the actor's loss gains λ · mean over (timestep, sample, neuron) of the squared distance
    /// of v outside the surrogate window `|v − th| < 0.5` (0: none). Default: the recipe's
    /// (spikerl 10, popsan 0; this library's 0).
    #[arg(long, default_value_t = 0.0, hide_default_value = true)]
    pub membrane_reg: f64,
}

/// The actor whose actions the critics' TD targets use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TargetActor {
    /// A Polyak-averaged copy of the spiking actor (TD3's and PopSAN's).
    #[default]
    Spiking,
    /// An ANN that, before every critic update, takes `proxy_steps` Adam steps on the mean
    /// squared distance between its actions and the spiking actor's at the batch's next
    /// observations; the critics' targets stay Polyak-averaged.
    Proxy,
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
            target_actor: TargetActor::Spiking,
            proxy_steps: 3,
            proxy_lr: 1e-3,
            proxy_hidden: vec![512, 512],
            membrane_reg: 0.0,
        }
    }
}

impl Td3Config {
    /// Env steps before the first update: `update_after`, or more if a minibatch needs more.
    pub fn updates_start(&self) -> u64 {
        self.update_after.max(self.batch_size as u64)
    }

    pub fn validate(&self) -> Result<(), String> {
        let bad = |what: &str| Err(format!("invalid TD3 config: {what}"));
        if !(0.0..1.0).contains(&self.gamma) {
            return bad("gamma must be in [0, 1)");
        }
        if !(0.0..=1.0).contains(&self.polyak) {
            return bad("polyak must be in [0, 1]");
        }
        for (name, lr) in [("actor_lr", self.actor_lr), ("critic_lr", self.critic_lr), ("proxy_lr", self.proxy_lr)] {
            // Adam moves each parameter by about lr per step: beyond 1 no network survives.
            if !(lr > 0.0 && lr <= MAX_LEARNING_RATE) {
                return Err(format!("invalid TD3 config: {name} must be in (0, {MAX_LEARNING_RATE}] (it is {lr})"));
            }
        }
        if self.batch_size == 0 || self.replay_size == 0 || self.update_every == 0 || self.policy_delay == 0 {
            return bad("batch_size, replay_size, update_every and policy_delay must be positive");
        }
        if self.batch_size > self.replay_size {
            return Err(format!("invalid TD3 config: batch_size {} exceeds replay_size {}", self.batch_size, self.replay_size));
        }
        if !(self.updates_per_step >= 0.0 && self.updates_per_step <= MAX_UPDATES_PER_STEP) {
            return Err(format!("invalid TD3 config: updates_per_step must be in [0, {MAX_UPDATES_PER_STEP}] (it is {})", self.updates_per_step));
        }
        let noise = [self.act_noise, self.target_noise, self.noise_clip];
        if !noise.iter().all(|n| *n >= 0.0 && n.is_finite()) {
            return bad("noise scales must be finite and ≥ 0");
        }
        if !(self.membrane_reg >= 0.0 && self.membrane_reg.is_finite()) {
            return bad("membrane_reg must be a finite number ≥ 0");
        }
        if self.critic_hidden.is_empty() || self.critic_hidden.contains(&0) {
            return bad("critic_hidden needs at least one non-empty layer");
        }
        if self.target_actor == TargetActor::Proxy {
            if self.proxy_steps == 0 || self.proxy_steps > 100 {
                return bad("a proxy target takes 1 to 100 proxy_steps per update");
            }
            if self.proxy_hidden.is_empty() || self.proxy_hidden.contains(&0) {
                return bad("proxy_hidden needs at least one non-empty layer");
            }
        }
        Ok(())
    }
}

/// Which actor a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// PopSAN: population-coded spiking actor, trained through surrogate gradients.
    #[default]
    Spiking,
    /// A dense ReLU MLP with a tanh output (CleanRL's TD3 actor), for comparisons on the same
    /// system; the spiking settings below do not apply to it.
    Mlp,
}

/// The actor's shape: spiking (PopSAN, Tang et al. 2020; its neuron constants are
/// [`PopSanSpec`]'s) or dense.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Actor (spiking PopSAN, or dense)")]
pub struct ActorConfig {
    /// The actor: spiking (PopSAN) or mlp (dense, same hidden widths).
    #[arg(long, value_enum, default_value_t = ActorKind::Spiking)]
    pub actor: ActorKind,
    /// Hidden layer widths, comma-separated (LIF neurons, or the dense actor's ReLU units).
    #[arg(long, value_delimiter = ',', default_value = "256,256")]
    pub actor_hidden: Vec<usize>,
    /// Simulation timesteps per action.
    #[arg(long, default_value_t = 5)]
    pub timesteps: usize,
    /// Encoder neurons (Gaussian receptive fields) per observation dimension.
    #[arg(long, default_value_t = 10)]
    pub encoder_pop: usize,
    /// Output neurons per action dimension.
    #[arg(long, default_value_t = 10)]
    pub decoder_pop: usize,
    /// How observations become spikes.
    #[arg(long, value_enum, default_value_t = Encoding::Deterministic)]
    pub encoding: Encoding,
    /// The spike's pseudo-derivative in the actor's backward pass. Default: the recipe's
    /// (spikerl fast-sigmoid, popsan rectangle; this library's rectangle).
    #[arg(long, value_enum, default_value_t = Surrogate::Rectangle, hide_default_value = true)]
    pub surrogate: Surrogate,
}

/// The pseudo-derivative `∂s/∂v` of a spike `s = 1{v > threshold}` at `x = v − threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Surrogate {
    /// `1{|x| < 0.5}`: PopSAN's; no gradient once a membrane leaves the window.
    #[default]
    Rectangle,
    /// `1 / (1 + (πx)²)` (arctan, α = 2): 1 at threshold, never zero.
    Arctan,
    /// `1 / (1 + 4|x|)²` (SuperSpike's fast sigmoid): 1 at threshold, never zero.
    FastSigmoid,
}

impl Surrogate {
    #[inline(always)]
    pub fn grad(self, x: f32) -> f32 {
        match self {
            Surrogate::Rectangle => {
                if x.abs() < 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Surrogate::Arctan => {
                let y = std::f32::consts::PI * x;
                1.0 / (1.0 + y * y)
            }
            Surrogate::FastSigmoid => {
                let d = 1.0 + 4.0 * x.abs();
                1.0 / (d * d)
            }
        }
    }
}

impl Default for ActorConfig {
    fn default() -> Self {
        Self { actor: ActorKind::Spiking, actor_hidden: vec![256, 256], timesteps: 5, encoder_pop: 10, decoder_pop: 10, encoding: Encoding::Deterministic, surrogate: Surrogate::Rectangle }
    }
}

impl ActorConfig {
    /// The actor's spec for a task of these dimensions.
    pub fn spec(&self, obs_dim: usize, act_dim: usize, act_limit: f32) -> Result<ActorSpec, SnnError> {
        if self.actor == ActorKind::Mlp {
            let spec = DenseSpec { hidden: self.actor_hidden.clone(), ..DenseSpec::new(obs_dim, act_dim, act_limit) };
            spec.validate()?;
            return Ok(spec.into());
        }
        let mut spec = PopSanSpec::new(obs_dim, act_dim, act_limit);
        spec.hidden = self.actor_hidden.clone();
        spec.timesteps = self.timesteps;
        spec.encoder_pop = self.encoder_pop;
        spec.decoder_pop = self.decoder_pop;
        spec.encoding = self.encoding;
        spec.validate()?;
        Ok(spec.into())
    }
}
