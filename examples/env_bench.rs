//! The README's environment benchmark: every port against Gymnasium+MuJoCo, same run.
//!
//!     make mujoco-venv && cargo run --release --example env_bench
//!
//! Prints a Markdown table. MuJoCo columns need `.venv-mujoco` (or `MUJOCO_PYTHON`).

use spikerl::bench;

fn main() -> anyhow::Result<()> {
    let python = std::env::var_os("MUJOCO_PYTHON").map(Into::into).or_else(bench::default_mujoco_python);
    let steps = 50_000;
    println!("| task | port 1 thread | Gymnasium+MuJoCo env.step | ratio | raw mj_step, same protocol | ratio | zero ctrl, lying: raw mj_step | port physics | ratio | VecEnv(64) 1→2 threads |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for id in ["Hopper-v4", "HalfCheetah-v4", "Ant-v4", "Walker2d-v4", "Humanoid-v4"] {
        let single = bench::single_env_rate(id, steps, 0)?;
        let vec1 = bench::vec_env_rate(id, 64, 1, 2 * steps / 64, 0)?;
        let vec2 = bench::vec_env_rate(id, 64, 2, 2 * steps / 64, 0)?;
        let physics = bench::physics_zero_ctrl_rate(id, steps)?;
        let mj = python.as_ref().map(|py| bench::mujoco_rates(py, id, steps)).transpose()?;
        let cell = |x: Option<f64>, fmt: &dyn Fn(f64) -> String| x.map_or("–".to_string(), fmt);
        println!(
            "| {id} | {single:.0}/s | {} | {} | {} | {} | {} | {} | {} | {:.2}× |",
            cell(mj.map(|m| m.env_step_per_s), &|v| format!("{v:.0}/s")),
            cell(mj.map(|m| single / m.env_step_per_s), &|v| format!("**{v:.2}×**")),
            cell(mj.map(|m| m.raw_mj_step_env_steps_per_s), &|v| format!("{v:.0}/s")),
            cell(mj.map(|m| single / m.raw_mj_step_env_steps_per_s), &|v| format!("{v:.2}×")),
            cell(mj.map(|m| m.raw_mj_step_zero_ctrl_env_steps_per_s), &|v| format!("{v:.0}/s")),
            cell(physics, &|v| format!("{v:.0}/s")),
            cell(physics.zip(mj).map(|(p, m)| p / m.raw_mj_step_zero_ctrl_env_steps_per_s), &|v| format!("{v:.2}×")),
            vec2 / vec1,
        );
    }
    Ok(())
}
