//! Either actor at inference, chosen by its parameters.

use crate::{ActorSpec, DenseActor, OpCounts, ParamSet, PopSan, SnnError};

/// The actor a `ParamSet` describes, ready to act.
pub enum Policy {
    Spiking(Box<PopSan>),
    Dense(Box<DenseActor>),
}

impl Policy {
    pub fn new(params: &ParamSet) -> Result<Self, SnnError> {
        Ok(match params.spec() {
            ActorSpec::Spiking(_) => Self::Spiking(Box::new(PopSan::new(params)?)),
            ActorSpec::Dense(_) => Self::Dense(Box::new(DenseActor::new(params)?)),
        })
    }

    /// One action for one observation.
    pub fn act(&mut self, obs: &[f32], out: &mut [f32]) -> Result<(), SnnError> {
        match self {
            Self::Spiking(p) => p.act(obs, out),
            Self::Dense(d) => d.act(obs, out),
        }
    }

    pub fn version(&self) -> u64 {
        match self {
            Self::Spiking(p) => p.version(),
            Self::Dense(d) => d.version(),
        }
    }

    pub fn obs_dim(&self) -> usize {
        match self {
            Self::Spiking(p) => p.spec().obs_dim,
            Self::Dense(d) => d.spec().obs_dim,
        }
    }

    pub fn act_dim(&self) -> usize {
        match self {
            Self::Spiking(p) => p.spec().act_dim,
            Self::Dense(d) => d.spec().act_dim,
        }
    }

    /// Seeds a Poisson encoder's generator (a dense actor draws nothing).
    pub fn seed(&mut self, seed: u64) {
        if let Self::Spiking(p) = self {
            p.seed(seed);
        }
    }

    /// What the actor computed over every action since it was built (or reset).
    pub fn total_counts(&self) -> &OpCounts {
        match self {
            Self::Spiking(p) => p.total_counts(),
            Self::Dense(d) => d.total_counts(),
        }
    }
}
