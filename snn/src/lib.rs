//! PopSAN — the population-coded spiking actor network of Tang et al. (CoRL 2020), as SpikeRL
//! uses it — without libtorch: its spec, its parameters, a fast event-driven CPU engine, and
//! the operation counts and energy estimates of what it computed; beside it the dense actor
//! it is compared with ([`DenseActor`]), and [`Policy`], either of them.
//!
//! The function, for an observation `o` (T timesteps, all state zero at the start):
//!
//! - normalise: `x = clip((o − μ_obs)/σ_obs, ±3)`;
//! - encode: `A = exp(−½((x − μ)/σ)²)` per receptive field; deterministic encoding integrates
//!   `v += A`, spikes when `v > 0.999` and subtracts 0.999; Poisson encoding spikes with
//!   probability `A`;
//! - each spiking layer: `c ← 0.5·c + W·s_in + b`, `v ← 0.75·v·(1 − s) + c`, `s = v > 0.5`;
//! - decode: output-population firing rates (spike count / T), per action a weighted sum plus
//!   bias, `tanh`, × act_limit.

mod dense;
mod energy;
mod engine;
mod params;
mod policy;
pub mod rng;
mod spec;

pub use energy::{E_AC_PJ, E_MAC_PJ, EnergyEstimate, LOIHI_NEURON_UPDATE_PJ, LOIHI_SOP_PJ, OpCounts, ann_macs, energy_per_inference};
pub use dense::{DenseActor, DenseSpec};
pub use engine::PopSan;
pub use params::{ParamSet, Precision, TensorInfo, dense_layout, layout};
pub use policy::Policy;
pub use spec::{ActorSpec, Encoding, PopSanSpec};

/// What can go wrong building or running a PopSAN.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SnnError {
    #[error("invalid PopSAN spec: {0}")]
    Spec(String),
    #[error("shape mismatch: {0}")]
    Shape(String),
    #[error("invalid value: {0}")]
    Value(String),
    #[error("cannot decode ParamSet: {0}")]
    Decode(String),
}

pub mod prelude {
    pub use crate::{ActorSpec, DenseSpec, Encoding, OpCounts, ParamSet, Policy, PopSan, PopSanSpec, Precision, SnnError};
}
