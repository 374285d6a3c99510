//! The shape and constants of a PopSAN actor.

use bincode::{Decode, Encode};

use crate::SnnError;

/// Bounds a spec must keep (see [`PopSanSpec::validate`]).
pub const MAX_TIMESTEPS: usize = 1000;
pub const MAX_LAYERS: usize = 16;
pub const MAX_WIDTH: usize = 65_536;
pub const MAX_POPULATION: usize = 1024;
/// 256 M weights (1 GB in f32).
pub const MAX_WEIGHTS: u64 = 1 << 28;

/// How observations become spikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Integrate-and-fire on the receptive-field activation, soft reset (PopSAN's default).
    Deterministic,
    /// `spike ~ Bernoulli(activation)` each timestep.
    Poisson,
}

/// Everything that fixes a PopSAN's function besides its learned parameters. Defaults are
/// the published PopSAN/SpikeRL constants.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct PopSanSpec {
    pub obs_dim: usize,
    pub act_dim: usize,
    /// Actions are `tanh(·) × act_limit`.
    pub act_limit: f32,
    /// Encoder neurons per observation dimension.
    pub encoder_pop: usize,
    /// Output neurons per action dimension.
    pub decoder_pop: usize,
    pub hidden: Vec<usize>,
    /// Simulation timesteps per action.
    pub timesteps: usize,
    /// Initial receptive-field means are evenly spaced on this closed range.
    pub mean_range: (f32, f32),
    /// Initial receptive-field standard deviation.
    pub std: f32,
    /// Hidden/output neuron firing threshold.
    pub threshold: f32,
    /// `c ← current_decay·c + W·s + b`.
    pub current_decay: f32,
    /// `v ← voltage_decay·v·(1 − s_prev) + c`.
    pub voltage_decay: f32,
    /// Encoder integrate-and-fire threshold.
    pub encoder_threshold: f32,
    pub encoding: Encoding,
}

impl PopSanSpec {
    /// PopSAN's defaults for a task of these dimensions.
    pub fn new(obs_dim: usize, act_dim: usize, act_limit: f32) -> Self {
        Self {
            obs_dim,
            act_dim,
            act_limit,
            encoder_pop: 10,
            decoder_pop: 10,
            hidden: vec![256, 256],
            timesteps: 5,
            mean_range: (-3.0, 3.0),
            std: 0.15f32.sqrt(),
            threshold: 0.5,
            current_decay: 0.5,
            voltage_decay: 0.75,
            encoder_threshold: 0.999,
            encoding: Encoding::Deterministic,
        }
    }

    /// Neurons of each spiking layer, input first: encoder, hidden…, output population.
    pub fn layer_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![self.obs_dim * self.encoder_pop];
        sizes.extend(&self.hidden);
        sizes.push(self.act_dim * self.decoder_pop);
        sizes
    }

    /// Checks that the spec describes a network that can exist.
    pub fn validate(&self) -> Result<(), SnnError> {
        let bad = |what: &str| Err(SnnError::Spec(what.to_string()));
        if self.obs_dim == 0 || self.act_dim == 0 {
            return bad("obs_dim and act_dim must be positive");
        }
        if self.encoder_pop == 0 || self.decoder_pop == 0 || self.timesteps == 0 {
            return bad("populations and timesteps must be positive");
        }
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return bad("at least one hidden layer, each with neurons");
        }
        // Far beyond any published spiking actor, and small enough that sizes never overflow.
        if self.obs_dim > MAX_WIDTH || self.act_dim > MAX_WIDTH || self.encoder_pop > MAX_POPULATION || self.decoder_pop > MAX_POPULATION {
            return Err(SnnError::Spec(format!("at most {MAX_WIDTH} observation and action dimensions and {MAX_POPULATION} neurons per population")));
        }
        if self.timesteps > MAX_TIMESTEPS || self.hidden.len() > MAX_LAYERS || self.hidden.iter().any(|&n| n > MAX_WIDTH) {
            return Err(SnnError::Spec(format!("at most {MAX_TIMESTEPS} timesteps and {MAX_LAYERS} hidden layers of at most {MAX_WIDTH} neurons (asked: {} timesteps, layers {:?})", self.timesteps, self.hidden)));
        }
        let sizes = self.layer_sizes();
        let weights: u64 = sizes.windows(2).map(|w| w[0] as u64 * w[1] as u64).sum();
        if weights > MAX_WEIGHTS {
            return Err(SnnError::Spec(format!("{weights} synaptic weights; at most {MAX_WEIGHTS}")));
        }
        let finite = [self.act_limit, self.std, self.threshold, self.current_decay, self.voltage_decay, self.encoder_threshold];
        if finite.iter().any(|x| !x.is_finite()) || self.std <= 0.0 || self.act_limit <= 0.0 {
            return bad("constants must be finite; std and act_limit positive");
        }
        if self.mean_range.0.partial_cmp(&self.mean_range.1) != Some(std::cmp::Ordering::Less) {
            return bad("mean_range must be increasing");
        }
        Ok(())
    }
}

/// Which actor a set of parameters belongs to: the spiking PopSAN, or the dense MLP it is
/// compared with.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub enum ActorSpec {
    Spiking(PopSanSpec),
    Dense(crate::DenseSpec),
}

impl ActorSpec {
    pub fn obs_dim(&self) -> usize {
        match self {
            Self::Spiking(s) => s.obs_dim,
            Self::Dense(d) => d.obs_dim,
        }
    }

    pub fn act_dim(&self) -> usize {
        match self {
            Self::Spiking(s) => s.act_dim,
            Self::Dense(d) => d.act_dim,
        }
    }

    pub fn act_limit(&self) -> f32 {
        match self {
            Self::Spiking(s) => s.act_limit,
            Self::Dense(d) => d.act_limit,
        }
    }

    pub fn spiking(&self) -> Option<&PopSanSpec> {
        match self {
            Self::Spiking(s) => Some(s),
            Self::Dense(_) => None,
        }
    }

    pub fn dense(&self) -> Option<&crate::DenseSpec> {
        match self {
            Self::Spiking(_) => None,
            Self::Dense(d) => Some(d),
        }
    }

    pub fn validate(&self) -> Result<(), SnnError> {
        match self {
            Self::Spiking(s) => s.validate(),
            Self::Dense(d) => d.validate(),
        }
    }
}

impl From<PopSanSpec> for ActorSpec {
    fn from(s: PopSanSpec) -> Self {
        Self::Spiking(s)
    }
}

impl From<crate::DenseSpec> for ActorSpec {
    fn from(d: crate::DenseSpec) -> Self {
        Self::Dense(d)
    }
}
