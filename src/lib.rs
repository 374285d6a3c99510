//! spikerl: deep spiking reinforcement learning for continuous control — the `spikerl`
//! command's jobs ([`cli`]), the run configuration ([`config`]), the training runtimes
//! ([`train`]), multi-seed runs and their statistics ([`sweep`]), the task server ([`envserve`]) and the benchmarks ([`bench`],
//! [`transport_bench`]).

pub mod bench;
pub mod bench_suite;
pub mod cli;
pub mod config;
pub mod envserve;
pub mod render;
pub mod sweep;
pub mod train;
pub mod transport_bench;
