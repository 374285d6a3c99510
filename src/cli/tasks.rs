//! `spikerl rollout`, `spikerl envcheck`, `spikerl envserve`: the tasks on their own.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use spikerl_envs::reference::{self, ActionKind, CHECK_HEADER};
use spikerl_envs::rng::EnvRng;

#[derive(Clone, Copy, ValueEnum)]
pub enum Policy {
    /// All-zero actions.
    Zero,
    /// Uniform random actions inside the action space.
    Random,
    /// a[j] = 0.5·sin(2π·1.5·t·dt + j), the reference rollouts' sine.
    Sine,
}

#[derive(Args)]
pub struct RolloutArgs {
    /// Gymnasium id (Hopper-v4, HalfCheetah-v4, Ant-v4, Walker2d-v4, Humanoid-v4, Pendulum-v1; any case) or an MJCF file.
    #[arg(long)]
    pub env: String,
    /// The actions taken.
    #[arg(long, value_enum, default_value_t = Policy::Random)]
    pub policy: Policy,
    /// Episodes to run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub episodes: u32,
    /// Seed of the first reset and of the random policy (later episodes continue the stream).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// One JSON object per episode instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct EnvserveArgs {
    /// Gymnasium id (any case) or an MJCF file.
    #[arg(long)]
    pub env: String,
}

#[derive(Args)]
pub struct EnvcheckArgs {
    /// The port to check: Hopper-v4, HalfCheetah-v4, Ant-v4, Walker2d-v4 or Humanoid-v4 (any case).
    #[arg(long)]
    pub env: String,
    /// Folder with `<Env>.model.json` etc. [default: $SPIKERL_REFERENCE_DIR, else
    /// shared/reference/mujoco found upwards from here].
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Print every model fact, not only the summary.
    #[arg(long)]
    pub all: bool,
    /// Also compare this many episodes of uniform random actions on the port and on
    /// Gymnasium + MuJoCo (Python of .venv-mujoco or $SPIKERL_GYM_PYTHON): episode lengths and
    /// returns by two-sample Kolmogorov–Smirnov tests at 5 % (≥ 200 recommended) [default: 0, off].
    #[arg(long, default_value_t = 0)]
    pub episodes: usize,
}

/// One episode of `rollout --json`.
#[derive(Serialize)]
struct EpisodeReport {
    episode: u32,
    #[serde(rename = "return")]
    ret: f64,
    length: u32,
    final_x: f64,
    end: String,
}

pub fn rollout(args: RolloutArgs) -> Result<()> {
    let mut env = spikerl_envs::make(&args.env)?;
    let spec = env.spec().clone();
    let mut rng = EnvRng::seed_from_u64(args.seed ^ 0x5EED_F00D);
    let mut obs = vec![0.0; spec.obs_dim()];
    let mut action = vec![0.0; spec.act_dim()];
    if !args.json {
        println!("{} · policy {} · seed {}", spec.id, policy_name(args.policy), args.seed);
        println!("{:>7} {:>11} {:>6} {:>9}  end", "episode", "return", "length", "final x");
    }
    let (mut sum, mut count) = (0.0, 0);
    for episode in 0..args.episodes {
        let seed = (episode == 0).then_some(args.seed);
        env.reset_into(seed, &mut obs)?;
        let (mut ret, mut length) = (0.0, 0u32);
        let (final_x, end) = loop {
            match args.policy {
                Policy::Zero => action.fill(0.0),
                Policy::Random => spec.action_space.sample_into(&mut action, || rng.next_f64()),
                Policy::Sine => ActionKind::Sine.action(length as usize, spec.dt, &mut action),
            }
            let step = env.step_into(&action, &mut obs)?;
            ret += step.reward;
            length += 1;
            if let Some(reason) = step.info.end {
                break (step.info.x_position, reason);
            }
        };
        sum += ret;
        count += 1;
        let report = EpisodeReport { episode, ret, length, final_x, end: end.to_string() };
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!("{:>7} {:>11.2} {:>6} {:>9.3}  {}", episode, ret, length, final_x, end);
        }
    }
    if !args.json && count > 1 {
        println!("mean return {:.2} over {count} episodes", sum / count as f64);
    }
    Ok(())
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::Zero => "zero",
        Policy::Random => "random",
        Policy::Sine => "sine",
    }
}

pub fn envcheck(args: EnvcheckArgs) -> Result<()> {
    let id = spikerl_envs::canonical_id(&args.env)
        .filter(|id| *id != "Pendulum-v1")
        .with_context(|| format!("no MuJoCo reference for '{}' (the ports are Hopper-v4, HalfCheetah-v4, Ant-v4, Walker2d-v4, Humanoid-v4)", args.env))?;
    let dir = match args.reference {
        Some(dir) => dir,
        None => reference::find_reference_dir()
            .context("MuJoCo reference data not found (looked for shared/reference/mujoco upwards); pass --reference DIR")?,
    };
    let model = reference::model_checks(id, &dir)?;
    let dynamics = reference::dynamics_checks(id, &dir)?;
    println!("{id}: the port beside MuJoCo's reference data ({})\n", dir.display());
    println!("{CHECK_HEADER}");
    let failed_model = model.iter().filter(|c| !c.passed()).count();
    for c in model.iter().filter(|c| args.all || !c.passed() || c.what.starts_with("mass") || c.what.contains("dt") || c.what.contains("dim") || c.what.starts_with("timestep") || c.what == "frame_skip") {
        println!("{c}");
    }
    if !args.all {
        println!("… {} model facts compared (joint ranges, armature, damping, stiffness, gears, ctrl ranges, friction), {failed_model} differ; --all lists them", model.len());
    }
    println!();
    for c in &dynamics {
        println!("{c}");
    }
    let failed = failed_model + dynamics.iter().filter(|c| !c.passed()).count();
    println!("\n{} of {} checks within tolerance", model.len() + dynamics.len() - failed, model.len() + dynamics.len());
    if args.episodes > 0 {
        use spikerl_envs::distribution::{ks_two_sample, random_episodes};
        let mut port = spikerl_envs::make(id)?;
        let mut mujoco = spikerl_envs::make(&format!("{}{id}", spikerl_envs::gym::PREFIX))?;
        let (port_len, port_ret) = random_episodes(port.as_mut(), args.episodes, 0)?;
        let (mj_len, mj_ret) = random_episodes(mujoco.as_mut(), args.episodes, 0)?;
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!("\n{} episodes of uniform random actions each, port vs Gymnasium + MuJoCo:", args.episodes);
        for (what, a, b) in [("episode length", &port_len, &mj_len), ("episode return", &port_ret, &mj_ret)] {
            let (d, p) = ks_two_sample(a, b);
            println!("  {what:<15} mean {:>9.2} vs {:>9.2} · KS D {d:.3}, p {p:.3} · {}", mean(a), mean(b), if p >= 0.05 { "same distribution at 5 %" } else { "DIFFERENT at 5 %" });
        }
    }
    Ok(())
}

pub fn envserve(args: EnvserveArgs) -> Result<()> {
    let env = spikerl_envs::make(&args.env)?;
    crate::envserve::serve(env, std::io::stdin().lock(), std::io::stdout().lock())
}
