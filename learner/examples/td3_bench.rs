//! TD3 updates per second on this machine: Hopper's dimensions (11 → 3), batch 100 (or
//! `--batch N`), fp32 and bf16, on the CPU with 1 and all threads, and on CUDA when present —
//! there also with every gradient all-reduced by NCCL in a world of one rank (NCCL's own cost).
//!
//!     cargo run --release -p spikerl-learner --example td3_bench [-- --batch 100 --updates 300]

use std::sync::Arc;
use std::time::Instant;

use spikerl_learner::collective::{Collective, Nccl};
use spikerl_learner::prelude::*;
use spikerl_snn::rng::SplitMix;
use tch::Device;

fn rate(device: Device, precision: Precision, batch: usize, updates: usize, threads: usize, collective: Option<Arc<dyn Collective>>) -> f64 {
    let config = Td3Config { batch_size: batch, replay_size: 10_000, ..Td3Config::default() };
    let spec = ActorConfig::default().spec(11, 3, 1.0).unwrap();
    let mut td3 = build(config, spec, Surrogate::Rectangle, device, precision, 0, threads).unwrap();
    if let Some(c) = collective {
        td3.join(c).expect("a world of one joins");
    }
    let mut rng = SplitMix::new(1);
    let rb = ReplayBuffer::random(11, 3, 10_000, &mut rng);
    let mut mb = Minibatch::default();
    let mut run = |n: usize| {
        for _ in 0..n {
            rb.sample_into(batch, &mut rng, &mut mb);
            td3.update(&mb).expect("finite parameters");
        }
        td3.stats().unwrap().critic_loss // synchronises a GPU
    };
    run(updates / 10 + 2);
    let start = Instant::now();
    run(updates);
    updates as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    spikerl_learner::keep_large_allocations();
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default);
    let (batch, updates) = (arg("--batch", 100), arg("--updates", 300));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let thread_counts = match arg("--threads", 0) {
        0 => vec![1, cores],
        n => vec![n],
    };
    println!("TD3 + PopSAN actor, Hopper dims, batch {batch}, {updates} updates timed");
    for threads in thread_counts {
        // The update splits its minibatch over its own threads; libtorch's stay at one.
        tch::set_num_threads(1);
        let f = rate(Device::Cpu, Precision::F32, batch, updates, threads, None);
        let b = rate(Device::Cpu, Precision::Bf16, batch, updates, threads, None);
        println!("CPU, {threads} thread(s): fp32 {f:.0} updates/s, bf16 {b:.0} updates/s (bf16 = {:.2}× fp32)", b / f);
        if cores == 1 {
            break;
        }
    }
    if tch::Cuda::is_available() {
        for b in [batch, 1024] {
            let f = rate(Device::Cuda(0), Precision::F32, b, updates * 3, 1, None);
            let h = rate(Device::Cuda(0), Precision::Bf16, b, updates * 3, 1, None);
            println!("CUDA, batch {b}: fp32 {f:.0} updates/s, bf16 {h:.0} updates/s (bf16 = {:.2}× fp32)", h / f);
        }
        match Nccl::alone(0) {
            Ok(nccl) => {
                let nccl: Arc<dyn Collective> = Arc::new(nccl);
                // Interleaved, so that drifts of the machine fall on both.
                let (mut off, mut on) = (0.0, 0.0);
                for _ in 0..2 {
                    off += rate(Device::Cuda(0), Precision::F32, batch, updates * 3, 1, None) / 2.0;
                    on += rate(Device::Cuda(0), Precision::F32, batch, updates * 3, 1, Some(nccl.clone())) / 2.0;
                }
                println!("CUDA, batch {batch}, fp32: NCCL all-reduce (world of one) off {off:.0} updates/s, on {on:.0} updates/s (on = {:.2}× off)", on / off);
            }
            Err(e) => println!("CUDA NCCL: {e}"),
        }
    } else {
        println!("CUDA: not available here");
    }
}
