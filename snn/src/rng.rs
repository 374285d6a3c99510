//! The generator of initialisation and Poisson encoding (and of the learner's and actors'
//! draws), from `spikerl-rng`.

pub use spikerl_rng::SplitMix;
