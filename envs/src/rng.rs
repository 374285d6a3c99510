//! The tasks' generator (reset noise, random policies), from `spikerl-rng`.

pub use spikerl_rng::EnvRng;
