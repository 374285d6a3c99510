//! `spikerl bench env`, `transport`, `collective` and `all` (the suite).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::bench;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Env steps/s: one env on one thread, a VecEnv on 1 and 2 threads, and MuJoCo for scale.
    Env(BenchEnvArgs),
    /// QUIC transport on loopback: transitions/s, MB/s and batch latency into a learner's
    /// replay buffer, for each actor count.
    Transport(BenchTransportArgs),
    /// The learners' all-reduce: time to average the critics' and the spiking actor's
    /// gradients over the ranks (started with mpirun, or by --ranks on this machine).
    Collective(BenchCollectiveArgs),
    /// The whole suite in one run, each part beside its peer measured in the same run: the
    /// tasks vs Gymnasium + MuJoCo, the spiking and the dense actor's forward and TD3 updates
    /// with each vs PyTorch (bench/peers/torch_popsan.py), training end to end with its energy,
    /// QUIC transport scaling. Writes OUT/<date>-<host>.json, .md and plots.
    All(BenchAllArgs),
}

#[derive(Args)]
pub struct BenchAllArgs {
    /// Fewer steps and repetitions (about 2 minutes; noisier): what CI runs.
    #[arg(long)]
    quick: bool,
    /// Directory for the results.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Python of a venv with gymnasium and mujoco [default: .venv-mujoco/bin/python if present].
    #[arg(long)]
    mujoco_python: Option<PathBuf>,
    /// Python with torch, for the PyTorch peer [default: .venv/bin/python if it has torch].
    #[arg(long)]
    torch_python: Option<PathBuf>,
    /// Rewrite this README's performance section (between `<!-- bench:start -->` and
    /// `<!-- bench:end -->`) from the results [default: leave it].
    #[arg(long)]
    update_readme: Option<PathBuf>,
}

#[derive(Args)]
pub struct BenchCollectiveArgs {
    /// The task whose networks' gradients are averaged (their sizes follow its dimensions).
    #[arg(long, default_value = "Hopper-v4")]
    env: String,
    /// Ranks to start with mpirun on this machine (under a launcher: the launcher's ranks).
    #[arg(long, default_value_t = 2)]
    ranks: usize,
    /// Timed all-reduces of each gradient (after 20 untimed ones).
    #[arg(long, default_value_t = 500)]
    reps: usize,
    /// The collective: auto (NCCL under torchrun, MPI under mpirun/srun), mpi or nccl.
    #[arg(long, default_value = "auto")]
    collective: spikerl_learner::collective::Backend,
}

#[derive(Args)]
pub struct BenchTransportArgs {
    /// Actor counts to measure, comma-separated.
    #[arg(long, default_value = "1,2,4,8,16,32,64", value_delimiter = ',')]
    actors: Vec<usize>,
    /// Shape of the transitions (a Gymnasium id).
    #[arg(long, default_value = "Hopper-v4")]
    env: String,
    /// Seconds measured per actor count (after half a second of warm-up).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Directory for the results: transport-scaling.png and transport-scaling.json.
    #[arg(long, default_value = "runs/bench")]
    out: PathBuf,
}

#[derive(Args)]
pub struct BenchEnvArgs {
    /// The task (any case): Hopper-v4, HalfCheetah-v4, Ant-v4, Walker2d-v4, Humanoid-v4, Pendulum-v1 or an MJCF file.
    #[arg(long)]
    env: String,
    /// Timed steps of the single env and of the MuJoCo run (the VecEnv runs twice as many).
    #[arg(long, default_value_t = 50_000)]
    steps: usize,
    /// Envs in the VecEnv.
    #[arg(long, default_value_t = 64)]
    envs: usize,
    /// Python of a venv with gymnasium and mujoco [default: .venv-mujoco/bin/python if present].
    #[arg(long)]
    mujoco_python: Option<PathBuf>,
    /// Skip the MuJoCo measurement.
    #[arg(long)]
    no_mujoco: bool,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Env(args) => bench_env(args),
        BenchCommand::Transport(args) => bench_transport(args),
        BenchCommand::Collective(args) => bench_collective(args),
        BenchCommand::All(args) => bench_all(args),
    }
}

fn bench_all(args: BenchAllArgs) -> Result<()> {
    use crate::bench_suite::{SuiteOptions, run, update_readme, write};
    let opts = SuiteOptions { quick: args.quick, out: args.out.clone(), mujoco_python: args.mujoco_python, torch_python: args.torch_python, readme: args.update_readme };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let results = run(&opts, command)?;
    let paths = write(&results, &opts.out)?;
    print!("{}", std::fs::read_to_string(&paths[1]).unwrap_or_default());
    println!("\nresults: {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    if let Some(readme) = &opts.readme {
        update_readme(readme, &results, &opts.out)?;
        println!("{}: performance section rewritten", readme.display());
    }
    Ok(())
}

fn bench_transport(args: BenchTransportArgs) -> Result<()> {
    use crate::transport_bench::{measure, plot};
    if args.actors.is_empty() || args.actors.contains(&0) || !args.duration.is_finite() || args.duration <= 0.0 {
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
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let (png, json) = (args.out.join("transport-scaling.png"), args.out.join("transport-scaling.json"));
    plot(&png, &env_id, &points)?;
    std::fs::write(&json, serde_json::to_string_pretty(&points)?).with_context(|| format!("cannot write {}", json.display()))?;
    println!("results: {} and {}", png.display(), json.display());
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
    let physics = bench::physics_zero_ctrl_rate(&id, args.steps)?;
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
        physics_zero_ctrl_steps_per_s: physics,
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
            println!("  raw mj_step × frame_skip     {:>10.0} steps/s  (port = {raw:.2}×; same actions and resets, no observations)", m.raw_mj_step_env_steps_per_s);
            if let (Some(p), Some(same)) = (physics, result.physics_ratio_vs_raw_mujoco()) {
                println!("zero controls from one reset, no termination (a walker falls and lies on the floor)");
                println!("  raw mj_step × frame_skip     {:>10.0} steps/s", m.raw_mj_step_zero_ctrl_env_steps_per_s);
                println!("  port physics                 {p:>10.0} steps/s  (= {same:.2}× raw mj_step)");
            }
        }
        _ => println!("  (MuJoCo not measured: `make mujoco-venv` or pass --mujoco-python)"),
    }
    Ok(())
}

/// Mean time of an all-reduce of each of the update's gradients; rank 0 prints them.
fn bench_collective(args: BenchCollectiveArgs) -> Result<()> {
    use spikerl_learner::collective::{Launch, connect};
    use spikerl_learner::networks::{ActorNet, CriticShape};
    if args.reps == 0 || args.ranks == 0 {
        bail!("--reps and --ranks must be positive");
    }
    if Launch::from_env().is_none() {
        if args.ranks == 1 {
            bail!("one rank has nothing to average with: --ranks 2 or more");
        }
        return super::mpirun::relaunch(args.ranks, []);
    }
    let task = crate::train::TaskShape::of(&args.env)?;
    let spec = spikerl_learner::ActorConfig::default().spec(task.obs_dim, task.act_dim, task.act_limit)?;
    let td3 = spikerl_learner::Td3Config::default();
    let sizes = [("critics", CriticShape::new(task.obs_dim, task.act_dim, &td3.critic_hidden).n_params), ("actor", ActorNet::of(&spec).n_params())];
    let c = connect(args.collective, std::time::Duration::from_secs(120))?;
    let mut results = Vec::new();
    for (name, n) in sizes {
        let mut buf: Vec<f32> = (0..n).map(|i| (i % 97) as f32 * 1e-3).collect();
        for _ in 0..20 {
            c.all_reduce_mean(&mut buf)?;
        }
        c.barrier()?;
        let start = std::time::Instant::now();
        for _ in 0..args.reps {
            c.all_reduce_mean(&mut buf)?;
        }
        results.push((name, n, start.elapsed().as_secs_f64() / args.reps as f64));
    }
    if c.rank() == 0 {
        println!("{} ranks ({}), {} gradients, mean of {} all-reduces each:", c.world_size(), c.backend(), args.env, args.reps);
        for (name, n, s) in &results {
            println!("  {name:<14} {n:>8} f32 ({:>7.1} kB) {:>9.1} µs", (*n * 4) as f64 / 1e3, s * 1e6);
        }
        // An update averages the critics' gradient, and the actor's every policy_delay updates.
        let per_update = results[0].2 + results[1].2 / td3.policy_delay as f64;
        println!("  per update (critics + actor / policy delay {}): {:.1} µs", td3.policy_delay, per_update * 1e6);
    }
    Ok(())
}
