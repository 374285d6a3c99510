//! The learner side of spikerl.
pub mod popsan;
