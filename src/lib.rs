//! spikerl: deep spiking reinforcement learning for continuous control.
//!
//! The binary's commands live in `main.rs`; this library holds what examples and tests share.

pub mod bench;
pub mod envserve;
pub mod train;
pub mod transport_bench;
