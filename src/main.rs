//! The `spikerl` command line.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use spikerl::bench;
use spikerl_envs::reference::{self, ActionKind, CHECK_HEADER};
use spikerl_envs::rng::EnvRng;

#[derive(Parser)]
#[command(name = "spikerl", version, about = "Deep spiking reinforcement learning for continuous control")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run episodes of a task with a fixed policy and print how each went.
    Rollout(RolloutArgs),
    /// Compare a rapier port with MuJoCo's reference data, figure by figure.
    Envcheck(EnvcheckArgs),
    /// Firing rates, synaptic operations and energy of the spiking actor on a task.
    SnnReport(SnnReportArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Args)]
struct SnnReportArgs {
    #[arg(long)]
    env: String,
    /// A ParamSet file (as the learner publishes it); default: PopSAN's initialisation.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Env steps to measure over.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Policy {
    /// All-zero actions.
    Zero,
    /// Uniform random actions inside the action space.
    Random,
    /// a[j] = 0.5·sin(2π·1.5·t·dt + j), the reference rollouts' sine.
    Sine,
}

#[derive(Args)]
struct RolloutArgs {
    /// Gymnasium id (Hopper-v4, HalfCheetah-v4, Ant-v4, Pendulum-v1; any case) or an MJCF file.
    #[arg(long)]
    env: String,
    #[arg(long, value_enum, default_value_t = Policy::Random)]
    policy: Policy,
    #[arg(long, default_value_t = 1)]
    episodes: u32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One JSON object per episode instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EnvcheckArgs {
    #[arg(long)]
    env: String,
    /// Folder with `<Env>.model.json` etc. (default: ../shared/reference/mujoco, found upwards).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Print every model fact, not only the summary.
    #[arg(long)]
    all: bool,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Env steps/s: one env on one thread, a VecEnv on 1 and 2 threads, and MuJoCo for scale.
    Env(BenchEnvArgs),
}

#[derive(Args)]
struct BenchEnvArgs {
    #[arg(long)]
    env: String,
    /// Timed steps of the single env and of the MuJoCo run (the VecEnv runs twice as many).
    #[arg(long, default_value_t = 50_000)]
    steps: usize,
    /// Envs in the VecEnv.
    #[arg(long, default_value_t = 64)]
    envs: usize,
    /// Python of a venv with gymnasium and mujoco (default: .venv-mujoco/bin/python if present).
    #[arg(long)]
    mujoco_python: Option<PathBuf>,
    /// Skip the MuJoCo measurement.
    #[arg(long)]
    no_mujoco: bool,
    #[arg(long)]
    json: bool,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Rollout(args) => rollout(args),
        Command::Envcheck(args) => envcheck(args),
        Command::SnnReport(args) => snn_report(args),
        Command::Bench(BenchCommand::Env(args)) => bench_env(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

#[derive(Serialize)]
struct EpisodeReport {
    episode: u32,
    #[serde(rename = "return")]
    ret: f64,
    length: u32,
    final_x: f64,
    end: String,
}

fn rollout(args: RolloutArgs) -> Result<()> {
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
                Policy::Random => {
                    for (i, a) in action.iter_mut().enumerate() {
                        *a = rng.uniform(spec.action_space.low[i] as f64, spec.action_space.high[i] as f64) as f32;
                    }
                }
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

fn envcheck(args: EnvcheckArgs) -> Result<()> {
    let id = spikerl_envs::canonical_id(&args.env)
        .filter(|id| *id != "Pendulum-v1")
        .with_context(|| format!("no MuJoCo reference for '{}' (the ports are Hopper-v4, HalfCheetah-v4, Ant-v4)", args.env))?;
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
    Ok(())
}

fn bench_env(args: BenchEnvArgs) -> Result<()> {
    let id = spikerl_envs::make(&args.env)?.spec().id.clone();
    if args.steps == 0 || args.envs == 0 {
        bail!("--steps and --envs must be positive");
    }
    eprintln!("timing {id}: single env …");
    let single = bench::single_env_rate(&id, args.steps, 0)?;
    let per_env = (2 * args.steps / args.envs).max(100);
    eprintln!("timing {id}: VecEnv of {} on 1 and 2 threads …", args.envs);
    let vec1 = bench::vec_env_rate(&id, args.envs, 1, per_env, 0)?;
    let vec2 = bench::vec_env_rate(&id, args.envs, 2, per_env, 0)?;
    let python = if args.no_mujoco { None } else { args.mujoco_python.clone().or_else(bench::default_mujoco_python) };
    let mujoco = match &python {
        Some(py) => {
            eprintln!("timing {id}: Gymnasium + MuJoCo ({}) …", py.display());
            Some(bench::mujoco_rates(py, &id, args.steps)?)
        }
        None => None,
    };
    let result = bench::EnvBench {
        env: id.clone(),
        single_thread_steps_per_s: single,
        vec_envs: args.envs,
        vec_1_thread_steps_per_s: vec1,
        vec_2_threads_steps_per_s: vec2,
        mujoco,
    };
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
        return Ok(());
    }
    println!("{id} (random actions, auto-reset)");
    println!("  port, 1 env, 1 thread        {:>10.0} steps/s", single);
    println!("  port, VecEnv {:>3}, 1 thread   {:>10.0} steps/s", args.envs, vec1);
    println!("  port, VecEnv {:>3}, 2 threads  {:>10.0} steps/s  ({:.2}× the 1-thread VecEnv)", args.envs, vec2, result.vec_scaling());
    match (mujoco, result.ratio_vs_gymnasium(), result.ratio_vs_raw_mujoco()) {
        (Some(m), Some(r), Some(raw)) => {
            println!("  Gymnasium+MuJoCo env.step    {:>10.0} steps/s  (port = {r:.2}×)", m.env_step_per_s);
            println!("  raw mj_step × frame_skip     {:>10.0} steps/s  (port = {raw:.2}×)", m.raw_mj_step_env_steps_per_s);
        }
        _ => println!("  (MuJoCo not measured: `make mujoco-venv` or pass --mujoco-python)"),
    }
    Ok(())
}

fn snn_report(args: SnnReportArgs) -> Result<()> {
    use spikerl_snn::{ParamSet, PopSan, PopSanSpec, energy_per_inference};
    let mut env = spikerl_envs::make(&args.env)?;
    let spec_env = env.spec().clone();
    let params = match &args.checkpoint {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let p = ParamSet::decode(&bytes).with_context(|| format!("{} is not a ParamSet", path.display()))?;
            if p.spec().obs_dim != spec_env.obs_dim() || p.spec().act_dim != spec_env.act_dim() {
                bail!(
                    "{} is a {}→{} actor; {} needs {}→{}",
                    path.display(),
                    p.spec().obs_dim,
                    p.spec().act_dim,
                    spec_env.id,
                    spec_env.obs_dim(),
                    spec_env.act_dim()
                );
            }
            p
        }
        None => {
            let limit = spec_env.action_space.high.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            ParamSet::init(&PopSanSpec::new(spec_env.obs_dim(), spec_env.act_dim(), limit), args.seed)?
        }
    };
    let mut net = PopSan::new(&params)?;
    let mut obs = vec![0.0; spec_env.obs_dim()];
    let mut action = vec![0.0; spec_env.act_dim()];
    env.reset_into(Some(args.seed), &mut obs)?;
    for _ in 0..args.steps {
        net.act(&obs, &mut action)?;
        if env.step_into(&action, &mut obs)?.done() {
            env.reset_into(None, &mut obs)?;
        }
    }
    let spec = net.spec().clone();
    let counts = net.total_counts().clone();
    let e = energy_per_inference(&spec, &counts);
    let source = args.checkpoint.as_ref().map_or("PopSAN initialisation".to_string(), |p| p.display().to_string());
    println!("{}: PopSAN {:?}, T = {}, parameters: {source} (version {})", spec_env.id, spec.layer_sizes(), spec.timesteps, params.version);
    println!("over {} actions taken in the task:\n", counts.inferences);
    println!("{:<18} {:>8} {:>14}", "layer", "neurons", "firing rate");
    let names = std::iter::once("encoder".to_string())
        .chain((0..spec.hidden.len()).map(|i| format!("hidden {}", i + 1)))
        .chain(std::iter::once("output population".to_string()));
    for ((name, n), r) in names.zip(&counts.layer_neurons).zip(counts.firing_rates(spec.timesteps)) {
        println!("{name:<18} {n:>8} {r:>14.4}");
    }
    println!("\nper action: {:.0} synaptic ops, {:.0} float MACs (encoder + decoder), {:.0} neuron updates", e.sops, e.macs, e.neuron_updates);
    println!("energy per action (45 nm: E_AC 0.9 pJ, E_MAC 4.6 pJ; Loihi: 23.6 pJ/SOP, 81 pJ/update):");
    println!("  spiking actor     {:>10.1} nJ", e.snn_pj / 1000.0);
    println!("  on Loihi          {:>10.1} nJ", e.loihi_pj / 1000.0);
    println!("  dense ANN actor   {:>10.1} nJ  ({:.0} MACs)", e.ann_pj / 1000.0, e.ann_macs);
    println!("  ratio ANN / SNN   {:>10.2}×", e.ann_pj / e.snn_pj);
    Ok(())
}
