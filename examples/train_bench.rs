//! Throughput of training on this machine, in one run:
//! - the actor loop (env + spiking inference + noise + batching, one thread) against the bare
//!   env stepping with random actions;
//! - `spikerl train` end to end on Hopper-v4 with `updates_per_step` 1.0 (the published replay
//!   ratio) and 0 (collection only), local runtime, default actors and threads.
//!
//!     cargo run --release --example train_bench [-- --steps 20000]

use std::time::Instant;

use spikerl_actors::RolloutWorker;
use spikerl_net::TransitionBatch;
use spikerl_snn::{ParamSet, PopSanSpec};

/// (actor loop rate, bare env rate): the actor loop with the spiking policy, and the bare
/// env replaying the very actions it took (same seed, so the same states and resets).
fn actor_loop_rates(env: &str, steps: usize) -> anyhow::Result<(f64, f64)> {
    let mut worker = RolloutWorker::new(0, env, 1, 0, 0, 0.1)?;
    let s = worker.spec();
    let spec = PopSanSpec::new(s.obs_dim(), s.act_dim(), 1.0);
    // Parameters as actors receive them (bf16 on the wire).
    let p = ParamSet::init(&spec, 0)?;
    worker.set_policy(&ParamSet::decode(&p.encode(spikerl_snn::Precision::Bf16))?)?;
    let mut batch = TransitionBatch::default();
    let mut actions = Vec::with_capacity(steps * spec.act_dim);
    let start = Instant::now();
    for _ in 0..steps / 64 {
        worker.collect(64, &mut batch)?;
        actions.extend_from_slice(&batch.act);
    }
    let acting = (steps / 64 * 64) as f64 / start.elapsed().as_secs_f64();
    let mut bare = spikerl_envs::VecEnv::make(env, 1, 1)?;
    bare.reset(Some(0))?;
    let start = Instant::now();
    for a in actions.chunks_exact(spec.act_dim) {
        bare.step(a)?;
    }
    let bare_rate = (actions.len() / spec.act_dim) as f64 / start.elapsed().as_secs_f64();
    Ok((acting, bare_rate))
}

fn train_rate(steps: u64, updates_per_step: f64) -> anyhow::Result<f64> {
    let out = std::env::temp_dir().join(format!("spikerl-train-bench-{}-{updates_per_step}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let exe = std::env::current_exe()?.parent().and_then(|p| p.parent()).map(|p| p.join("spikerl")).expect("target dir");
    // Updates from the start (start_steps and update_after small) so the timed part is steady.
    let status = std::process::Command::new(exe)
        .args(["train", "--env", "Hopper-v4", "--quiet", "--eval-every", "0", "--checkpoint-every", "0", "--start-steps", "1000", "--update-after", "1000"])
        .args(["--steps", &steps.to_string(), "--updates-per-step", &updates_per_step.to_string(), "--out", out.to_str().unwrap()])
        .status()?;
    anyhow::ensure!(status.success(), "spikerl train failed");
    let text = std::fs::read_to_string(out.join("metrics.jsonl"))?;
    // Steady state: the mean of the progress records after the first quarter of the run.
    let rates: Vec<f64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["kind"] == "progress" && r["env_steps"].as_u64().unwrap_or(0) > steps / 4)
        .filter_map(|r| r["env_steps_per_s"].as_f64())
        .collect();
    let _ = std::fs::remove_dir_all(&out);
    anyhow::ensure!(!rates.is_empty(), "run too short for a steady-state rate");
    Ok(rates.iter().sum::<f64>() / rates.len() as f64)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let steps: u64 = args.iter().position(|a| a == "--steps").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let (acting, bare) = actor_loop_rates("Hopper-v4", 50_000)?;
    println!("Hopper-v4 actor loop, one thread: spiking policy + noise + batching {acting:.0} steps/s; bare env on the same actions {bare:.0} steps/s (actor loop = {:.2}× bare)", acting / bare);
    let collect = train_rate(steps * 20, 0.0)?;
    let learn = train_rate(steps, 1.0)?;
    println!("spikerl train Hopper-v4, {steps} steps, local runtime: updates-per-step 1.0 → {learn:.0} env steps/s; 0 (collection only, {} steps) → {collect:.0} env steps/s", steps * 20);
    Ok(())
}
