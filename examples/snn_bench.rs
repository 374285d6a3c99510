//! Latency of the event-driven PopSAN engine (Hopper dims: 11 → 110 → 256 → 256 → 30 → 3,
//! T = 5), one observation and batches of 64, one thread.
//!
//!     cargo run --release --example snn_bench

use std::time::Instant;

use spikerl_snn::{ParamSet, PopSan, PopSanSpec};

fn main() -> anyhow::Result<()> {
    let spec = PopSanSpec::new(11, 3, 1.0);
    // As actors receive parameters: over the wire in bf16 (`--f32` for exact fp32).
    let exact = std::env::args().any(|a| a == "--f32");
    let params = ParamSet::init(&spec, 0)?;
    let params = if exact { params } else { ParamSet::decode(&params.encode(spikerl_snn::Precision::Bf16))? };
    let mut net = PopSan::new(&params)?;
    // Observations like a hopper's: a few standard deviations around the normaliser's mean.
    let mut state = 1u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
    };
    let observations: Vec<f32> = (0..1024 * 11).map(|_| next()).collect();
    let mut action = [0.0f32; 3];
    for o in observations.chunks_exact(11).take(200) {
        net.act(o, &mut action)?;
    }
    net.reset_counts();
    let rounds = 20;
    let start = Instant::now();
    for _ in 0..rounds {
        for o in observations.chunks_exact(11) {
            net.act(o, &mut action)?;
        }
    }
    let single = start.elapsed().as_secs_f64() / (rounds * 1024) as f64;
    let mut out = vec![0.0f32; 64 * 3];
    let start = Instant::now();
    for _ in 0..rounds {
        for batch in observations.chunks_exact(64 * 11) {
            net.act_batch(batch, &mut out)?;
        }
    }
    let batched = start.elapsed().as_secs_f64() / (rounds * 1024) as f64;
    let counts = net.total_counts();
    let rates = counts.firing_rates(spec.timesteps);
    println!("PopSAN 11→110→256→256→30→3, T=5, random init, {} weights, one thread", if exact { "fp32" } else { "bf16-wire" });
    println!("  batch 1:  {:.2} µs per action", single * 1e6);
    println!("  batch 64: {:.2} µs per action ({:.1} µs per batch)", batched * 1e6, batched * 64.0 * 1e6);
    println!(
        "  firing rates per layer {:?}, {:.0} SOPs per action",
        rates.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>(),
        counts.sops as f64 / counts.inferences as f64
    );
    Ok(())
}
