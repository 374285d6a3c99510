//! The `spikerl` command line.

use std::path::{Path, PathBuf};

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
    /// Step one task for another program over stdin/stdout (binary protocol: see
    /// scripts/spikerl_env.py, a Gymnasium-style client).
    Envserve(EnvserveArgs),
    /// Firing rates, synaptic operations and energy of the spiking actor on a task.
    SnnReport(SnnReportArgs),
    /// Train a spiking actor with TD3 (learner + actor threads in this process).
    Train(Box<TrainArgs>),
    /// Train as `train` does, with actors on other machines connecting over QUIC
    /// (`spikerl-actor --connect`).
    Learner(Box<LearnerArgs>),
    /// Make a run's certificates: the run CA (once), a node certificate, and the run token.
    Cert(CertArgs),
    /// Evaluate a trained policy: mean ± std return over deterministic episodes.
    Eval(EvalArgs),
    /// Redraw a run's learning curve from its metrics.jsonl (e.g. after the run was killed).
    Plot(PlotArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Args)]
struct TrainArgs {
    /// Gymnasium id (any case) or an MJCF file.
    #[arg(long, default_value = "Hopper-v4")]
    env: String,
    /// Total env steps (default: 1 000 000; 20 000 for Pendulum-v1).
    #[arg(long)]
    steps: Option<u64>,
    /// Actor threads (default: the machine's cores minus one for the learner, at least 1).
    #[arg(long)]
    actors: Option<usize>,
    #[arg(long, default_value_t = 1)]
    envs_per_actor: usize,
    /// fp32 (default), or bf16 (fp32 master weights, bf16 matrix products, fp32 gradients).
    /// With --resume: the checkpoint's, unless given.
    #[arg(long)]
    precision: Option<String>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run directory (default: runs/<env>-seed<seed>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// A TOML file of hyperparameters (names as in report.md); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The published algorithm exactly, in one thread, reproducible from the seed.
    #[arg(long)]
    sync: bool,
    /// Evaluate every this many env steps (default: 5000; 2000 for Pendulum-v1).
    #[arg(long)]
    eval_every: Option<u64>,
    /// Checkpoint every this many env steps (0: only at the end).
    #[arg(long, default_value_t = 50_000)]
    checkpoint_every: u64,
    /// Keep the replay buffer in checkpoints (needed for a bitwise-identical resume).
    #[arg(long)]
    save_replay: bool,
    /// Continue from a checkpoint (its hyperparameters and seed are kept, and its precision
    /// unless --precision is given).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Threads that share each minibatch on a CPU learner (default: every core — the actors'
    /// share of a core is small at the learner's pace).
    #[arg(long)]
    learner_threads: Option<usize>,
    /// Stop early once an evaluation's mean return reaches this.
    #[arg(long, allow_negative_numbers = true)]
    target_return: Option<f64>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    hyper: HyperArgs,
}

#[derive(Args)]
struct LearnerArgs {
    /// Address to accept actors on, e.g. 0.0.0.0:7000.
    #[arg(long)]
    listen: std::net::SocketAddr,
    /// Directory of the run's certificates (`spikerl cert`).
    #[arg(long, default_value = "certs")]
    certs: PathBuf,
    /// This node's certificate name in --certs.
    #[arg(long, default_value = "learner")]
    name: String,
    /// The run token actors must present (default: $SPIKERL_TOKEN, else CERTS/token).
    #[arg(long)]
    token: Option<String>,
    /// Parameters on the wire: bf16, or f32 (exact).
    #[arg(long, default_value = "bf16")]
    param_precision: String,
    /// Training flags as for `spikerl train`; --actors counts local actor threads (default 0).
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Args)]
struct CertArgs {
    /// Directory of the run's certificates; the CA is made there once.
    #[arg(long, default_value = "certs")]
    dir: PathBuf,
    /// Name of the node certificate to make (NAME.pem, NAME.key).
    #[arg(long)]
    name: String,
    /// Host names or IP addresses the node is reached at (learners; repeatable).
    #[arg(long = "host")]
    hosts: Vec<String>,
}

/// TD3 hyperparameters; unset ones come from --config, else the task's defaults.
#[derive(Args, Default)]
struct HyperArgs {
    #[arg(long)]
    gamma: Option<f64>,
    #[arg(long)]
    polyak: Option<f64>,
    #[arg(long)]
    actor_lr: Option<f64>,
    #[arg(long)]
    critic_lr: Option<f64>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    replay_size: Option<usize>,
    #[arg(long)]
    start_steps: Option<u64>,
    #[arg(long)]
    update_after: Option<u64>,
    #[arg(long)]
    update_every: Option<u64>,
    /// Updates per env step (1.0: the published algorithm; 0: collection only).
    #[arg(long)]
    updates_per_step: Option<f64>,
    #[arg(long)]
    act_noise: Option<f32>,
    #[arg(long)]
    target_noise: Option<f32>,
    #[arg(long)]
    noise_clip: Option<f32>,
    #[arg(long)]
    policy_delay: Option<u64>,
    /// Publish parameters to the actors every this many updates.
    #[arg(long)]
    publish_every: Option<u64>,
    #[arg(long)]
    eval_episodes: Option<usize>,
    /// Poisson instead of deterministic encoding.
    #[arg(long)]
    poisson: bool,
}

#[derive(Args)]
struct PlotArgs {
    /// The run directory.
    #[arg(long)]
    run: PathBuf,
    #[arg(long, default_value = "learning curve")]
    title: String,
}

#[derive(Args)]
struct EvalArgs {
    /// A run's checkpoint.bin or policy.paramset.
    #[arg(long)]
    checkpoint: PathBuf,
    #[arg(long)]
    env: String,
    #[arg(long, default_value_t = 10)]
    episodes: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
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
struct EnvserveArgs {
    /// Gymnasium id (any case) or an MJCF file.
    #[arg(long)]
    env: String,
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
    /// QUIC transport on loopback: transitions/s, MB/s and batch latency into a learner's
    /// replay buffer, for each actor count.
    Transport(BenchTransportArgs),
}

#[derive(Args)]
struct BenchTransportArgs {
    /// Actor counts to measure, comma-separated.
    #[arg(long, default_value = "1,2,4,8,16,32,64", value_delimiter = ',')]
    actors: Vec<usize>,
    /// Shape of the transitions (a Gymnasium id).
    #[arg(long, default_value = "Hopper-v4")]
    env: String,
    /// Seconds measured per actor count (after half a second of warm-up).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Where the plot goes.
    #[arg(long, default_value = "transport_scaling.png")]
    plot: PathBuf,
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
        Command::Envserve(args) => spikerl_envs::make(&args.env)
            .map_err(anyhow::Error::from)
            .and_then(|env| spikerl::envserve::serve(env, std::io::stdin().lock(), std::io::stdout().lock())),
        Command::SnnReport(args) => snn_report(args),
        Command::Train(args) => train(*args, None),
        Command::Learner(args) => learner(*args),
        Command::Cert(args) => cert(args),
        Command::Eval(args) => eval(args),
        Command::Plot(args) => plot(args),
        Command::Bench(BenchCommand::Env(args)) => bench_env(args),
        Command::Bench(BenchCommand::Transport(args)) => bench_transport(args),
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

fn bench_transport(args: BenchTransportArgs) -> Result<()> {
    use spikerl::transport_bench::{measure, plot};
    if args.actors.is_empty() || args.actors.contains(&0) || !(args.duration > 0.0) {
        bail!("--actors needs positive counts and --duration a positive number of seconds");
    }
    let env_id = spikerl_envs::make(&args.env)?.spec().id.clone();
    let dir = std::env::temp_dir().join(format!("spikerl-bench-certs-{}", std::process::id()));
    println!("QUIC loopback, {env_id}-shaped transitions in batches of 64, {} s per point", args.duration);
    println!("{:>7} {:>15} {:>9} {:>9} {:>9}", "actors", "transitions/s", "MB/s", "p50 ms", "p99 ms");
    let mut points = Vec::new();
    for &n in &args.actors {
        let p = measure(&env_id, n, std::time::Duration::from_secs_f64(args.duration), &dir)?;
        println!("{:>7} {:>15.0} {:>9.1} {:>9.2} {:>9.2}", p.actors, p.transitions_per_s, p.mb_per_s, p.p50_ms, p.p99_ms);
        points.push(p);
    }
    let _ = std::fs::remove_dir_all(&dir);
    plot(&args.plot, &env_id, &points)?;
    println!("plot: {}", args.plot.display());
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
            let p = load_policy(path)?;
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

fn learner(args: LearnerArgs) -> Result<()> {
    use spikerl::train::remote::RemoteOptions;
    use spikerl_net::quic::{TlsFiles, read_token};
    let token = match (args.token, std::env::var("SPIKERL_TOKEN")) {
        (Some(t), _) => t,
        (None, Ok(t)) if !t.is_empty() => t,
        _ => read_token(&args.certs.join("token")).context("no run token: pass --token, set SPIKERL_TOKEN, or make one with `spikerl cert`")?,
    };
    let param_precision = match args.param_precision.as_str() {
        "bf16" => spikerl_snn::Precision::Bf16,
        "f32" | "fp32" => spikerl_snn::Precision::F32,
        other => bail!("--param-precision {other}: bf16 or f32"),
    };
    let tls = TlsFiles::in_dir(&args.certs, &args.name);
    for path in [&tls.ca, &tls.cert, &tls.key] {
        if !path.exists() {
            bail!("{} is missing: make the run's certificates with `spikerl cert --dir {} --name {} --host <this machine's address>`", path.display(), args.certs.display(), args.name);
        }
    }
    train(args.train, Some(RemoteOptions { listen: args.listen, tls, token, param_precision }))
}

fn cert(args: CertArgs) -> Result<()> {
    use spikerl_net::quic::{ensure_ca, ensure_token, make_node};
    if ensure_ca(&args.dir)? {
        println!("made the run CA: {}/ca.pem (keep ca.key on this machine)", args.dir.display());
    }
    ensure_token(&args.dir)?;
    let files = make_node(&args.dir, &args.name, &args.hosts)?;
    println!("made {} and {}", files.cert.display(), files.key.display());
    println!("a node needs ca.pem, its NAME.pem and NAME.key, and the token file ({}/token)", args.dir.display());
    Ok(())
}

fn train(args: TrainArgs, remote: Option<spikerl::train::remote::RemoteOptions>) -> Result<()> {
    use spikerl::train::{TrainOptions, parse_device, parse_precision};
    use spikerl_learner::Td3Config;
    // A registered task by its canonical id; an MJCF file by its path (every actor makes it
    // from there).
    let probe = spikerl_envs::make(&args.env)?;
    let registered = spikerl_envs::make(&probe.spec().id).is_ok();
    let env_id = if registered { probe.spec().id.clone() } else { args.env.clone() };
    let run_name = if registered { env_id.replace(':', "-") } else { Path::new(&args.env).file_stem().map_or("mjcf".into(), |s| s.to_string_lossy().into_owned()) };
    // Gymnasium's own task (`gym:ID`) gets the port's presets.
    let preset_id = env_id.strip_prefix(spikerl_envs::gym::PREFIX).unwrap_or(&env_id);
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let base = toml::to_string(&Td3Config::for_env(preset_id))?;
            // The file overrides the task's defaults key by key.
            let mut merged: toml::Table = toml::from_str(&base)?;
            let overrides: toml::Table = toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
            merged.extend(overrides);
            toml::Value::Table(merged).try_into::<Td3Config>().with_context(|| format!("{}: bad hyperparameters", path.display()))?
        }
        None => Td3Config::for_env(preset_id),
    };
    let h = &args.hyper;
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = h.$field.clone() { config.$field = v; } )* };
    }
    set!(gamma, polyak, actor_lr, critic_lr, batch_size, replay_size, start_steps, update_after, update_every, updates_per_step, act_noise, target_noise, noise_clip, policy_delay, publish_every, eval_episodes);
    if h.poisson {
        config.poisson_encoding = true;
    }
    config.validate().map_err(anyhow::Error::msg)?;
    let pendulum = env_id == "Pendulum-v1";
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let actors = args.actors.unwrap_or(if remote.is_some() { 0 } else { cores.saturating_sub(1).max(1) });
    let learner_threads = args.learner_threads.unwrap_or(cores);
    let seed = args.seed;
    let opts = TrainOptions {
        steps: args.steps.unwrap_or(if pendulum { 20_000 } else { 1_000_000 }),
        actors,
        envs_per_actor: args.envs_per_actor,
        precision: parse_precision(args.precision.as_deref().unwrap_or("fp32"))?,
        keep_precision_on_resume: args.precision.is_none(),
        device: parse_device(&args.device)?,
        seed,
        out: match (&args.out, &args.resume) {
            (Some(out), _) => out.clone(),
            (None, Some(ck)) => ck.parent().map(|p| p.to_path_buf()).unwrap_or_else(|| PathBuf::from(".")),
            (None, None) => PathBuf::from("runs").join(format!("{run_name}-seed{seed}")),
        },
        sync: args.sync,
        eval_every: args.eval_every.unwrap_or(if pendulum { 2000 } else { 5000 }),
        checkpoint_every: args.checkpoint_every,
        save_replay: args.save_replay,
        resume: args.resume.clone(),
        config,
        learner_threads,
        progress: !args.quiet,
        target_return: args.target_return,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        env_id,
        remote,
    };
    let out = opts.out.clone();
    let s = spikerl::train::train(opts)?;
    let eval = s.final_eval.map_or("no evaluation".into(), |e| format!("final eval return {:.1} ± {:.1}", e.mean, e.std));
    println!(
        "{} env steps, {} updates · {eval} · {:.0} env steps/s, {:.0} updates/s this session · {}",
        s.env_steps,
        s.updates,
        s.steps_per_s(),
        s.updates_per_s(),
        out.join("report.md").display()
    );
    Ok(())
}

fn eval(args: EvalArgs) -> Result<()> {
    let params = load_policy(&args.checkpoint)?;
    let id = spikerl_envs::make(&args.env)?.spec().id.clone();
    let r = spikerl_actors::evaluate(&params, &id, args.episodes, args.seed)?;
    println!("{id}: {} episodes, return {:.2} ± {:.2}, length {:.1}", args.episodes, r.mean(), r.std(), r.mean_len());
    Ok(())
}

/// The actor of a training checkpoint, or a `ParamSet` file.
fn load_policy(path: &std::path::Path) -> Result<spikerl_snn::ParamSet> {
    use spikerl_learner::checkpoint::Checkpoint;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(b"SPIKERL-CKPT") {
        let ck = Checkpoint::load(path)?;
        let (obs_dim, act_dim, act_limit) = {
            let env = spikerl_envs::make(&ck.env_id)?;
            let s = env.spec();
            (s.obs_dim(), s.act_dim(), s.action_space.high.iter().fold(0.0f32, |m, x| m.max(x.abs())))
        };
        let spec = ck.config.actor_spec(obs_dim, act_dim, act_limit)?;
        let mean: Vec<f32> = spikerl_learner::normalizer::Normalizer::from_vec(obs_dim, &ck.td3.normalizer).map_err(anyhow::Error::msg)?.mean();
        let std = spikerl_learner::normalizer::Normalizer::from_vec(obs_dim, &ck.td3.normalizer).map_err(anyhow::Error::msg)?.std();
        return Ok(spikerl_snn::ParamSet::from_flat(spec, ck.param_version, mean, std, ck.td3.actor)?);
    }
    spikerl_snn::ParamSet::decode(&bytes).with_context(|| format!("{} is neither a checkpoint nor a ParamSet", path.display()))
}

fn plot(args: PlotArgs) -> Result<()> {
    let evals = spikerl::train::output::read_evals(&args.run.join("metrics.jsonl")).0;
    if evals.is_empty() {
        bail!("{} has no evaluations in metrics.jsonl", args.run.display());
    }
    let png = args.run.join("learning_curve.png");
    spikerl::train::output::plot_curve(&png, &args.title, &evals)?;
    println!("{} evaluations → {}", evals.len(), png.display());
    Ok(())
}
