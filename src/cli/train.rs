//! `spikerl train`, `spikerl learner`, `spikerl eval`, `spikerl plot`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{ArgMatches, Args};
use spikerl_learner::collective::Launch;
use spikerl_net::quic::{LearnerAddress, TlsFiles, run_token};
use spikerl_snn::Precision;

use crate::config::RunConfig;
use crate::sweep::{self, Manifest, SeedList};
use crate::train::output::{METRICS_FILE, read_metrics};
use crate::train::plot::{CURVE_FILE, learning_curve};
use crate::train::transport::remote::RemoteOptions;
use crate::train::{Run, TaskShape, checkpoints, cores};

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub run: RunConfig,
    /// Run directory [default: runs/<task>-seed<seed>; with --resume, the checkpoint's].
    #[arg(long, help_heading = "Files")]
    pub out: Option<PathBuf>,
    /// A TOML file of settings, keys named as the flags (batch_size for --batch-size) and as in
    /// report.md; flags given override it [default: none, the task's preset].
    #[arg(long, help_heading = "Files")]
    pub config: Option<PathBuf>,
    /// Continue from a checkpoint: its task (unless --env names one), hyperparameters, actor
    /// shape and seed are kept, and its precision unless --precision is given; raise --steps
    /// past its env steps [default: a new run].
    #[arg(long, help_heading = "Files")]
    pub resume: Option<PathBuf>,
    /// No progress bar (progress still goes to metrics.jsonl).
    #[arg(long, help_heading = "Files")]
    pub quiet: bool,
    /// Train several seeds (see --side-by-side), each in OUT/seed-K/, then aggregate them into
    /// OUT/summary.md, summary.json and curves.png (e.g. 0-4, or 0,3,7) [default: one run,
    /// --seed]. `--resume OUT` finishes what is unfinished; with --seeds, it adds seeds.
    #[arg(long, conflicts_with = "seed", help_heading = "Files")]
    pub seeds: Option<SeedList>,
    /// With --seeds: how many seeds train at once, the cores split between them (each
    /// learner gets cores/N threads) [default: 1, one after another on every core].
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256), help_heading = "Files")]
    pub side_by_side: u64,
}

#[derive(Args)]
pub struct LearnerArgs {
    /// Address to accept actors on, e.g. 0.0.0.0:7000 (the r-th learner rank on a machine:
    /// port + r).
    #[arg(long)]
    pub listen: std::net::SocketAddr,
    /// Directory of the run's certificates (`spikerl cert`).
    #[arg(long, default_value = "certs")]
    pub certs: PathBuf,
    /// This node's certificate name in --certs.
    #[arg(long, default_value = "learner")]
    pub name: String,
    /// The run token actors must present [default: $SPIKERL_TOKEN, else CERTS/token].
    #[arg(long)]
    pub token: Option<String>,
    /// Parameters on the wire: bf16 (half the bytes) or fp32 (exact).
    #[arg(long, value_enum, default_value_t = Precision::Bf16)]
    pub param_precision: Precision,
    /// With several learners: HOST:PORT where actors reach this one (HOST as in its
    /// certificate; the k-th learner on a machine at PORT + k, as it listens); the learner
    /// actors dial sends new ones to the least-loaded learner [default: --listen's address,
    /// which must then be a specific one].
    #[arg(long)]
    pub advertise: Option<String>,
    /// Training flags as for `spikerl train`; --actors counts local actor threads (default 0).
    #[command(flatten)]
    pub train: TrainArgs,
}

#[derive(Args)]
pub struct EvalArgs {
    /// A run's checkpoint.bin, policy.paramset or best_policy.paramset.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The task (as for `train --env`).
    #[arg(long)]
    pub env: String,
    /// Episodes to average over.
    #[arg(long, default_value_t = 10)]
    pub episodes: usize,
    /// Seed of the first episode (episode k: seed + k).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// One JSON object instead of a line: every episode's return (exact) and length.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PlotArgs {
    /// The run directory (holds metrics.jsonl).
    #[arg(long)]
    pub run: PathBuf,
    /// The plot's title.
    #[arg(long, default_value = "learning curve")]
    pub title: String,
}

/// `--learners N` outside a launcher: this command again as N MPI ranks, each with its share
/// of the cores (`None`: this process is the learner, or one rank of a launched run).
fn launch_learners(learners: usize, matches: &ArgMatches) -> Option<Result<()>> {
    if learners <= 1 || Launch::from_env().is_some() {
        return None;
    }
    let given = matches.value_source("learner_threads") == Some(clap::parser::ValueSource::CommandLine);
    let threads = (!given).then(|| ["--learner-threads".to_string(), (cores() / learners).max(1).to_string()]);
    Some(super::mpirun::relaunch(learners, threads.iter().flatten().map(String::as_str)))
}

pub fn train(args: TrainArgs, matches: &ArgMatches) -> Result<()> {
    if let Some(launched) = launch_learners(args.run.runtime.learners, matches) {
        return launched;
    }
    // Each learner rank on this machine gets its share of the cores.
    let share = (cores() / Launch::from_env().map_or(1, |l| l.world)).max(1);
    run_training(args, matches, share.saturating_sub(1).max(1), None)
}

pub fn learner(args: LearnerArgs, matches: &ArgMatches) -> Result<()> {
    if let Some(launched) = launch_learners(args.train.run.runtime.learners, matches) {
        return launched;
    }
    let token = run_token(args.token.as_deref(), &args.certs)?;
    let tls = TlsFiles::in_dir(&args.certs, &args.name);
    for path in [&tls.ca, &tls.cert, &tls.key] {
        if !path.exists() {
            bail!("{} is missing: make the run's certificates with `spikerl cert --dir {} --name {} --host <this machine's address>`", path.display(), args.certs.display(), args.name);
        }
    }
    // Learner ranks on one machine listen (and are reached) on consecutive ports.
    let local_rank = Launch::from_env().map(|l| l.local_rank);
    let port_of_this_rank = |port: u16, flag: &str| match local_rank {
        None => Ok(port),
        Some(k) => u16::try_from(usize::from(port) + k).ok().filter(|_| port != 0).with_context(|| format!("learner rank {k} on this machine has no port: {flag} must name a port below 65535 − ranks")),
    };
    let mut listen = args.listen;
    listen.set_port(port_of_this_rank(listen.port(), "--listen")?);
    let advertise = match &args.advertise {
        Some(a) => {
            let (host, _) = a.rsplit_once(':').with_context(|| format!("--advertise {a}: give HOST:PORT"))?;
            let mut addr = std::net::ToSocketAddrs::to_socket_addrs(a.as_str()).with_context(|| format!("--advertise {a}"))?.next().with_context(|| format!("--advertise {a} resolves to no address"))?;
            addr.set_port(port_of_this_rank(addr.port(), "--advertise")?);
            LearnerAddress { addr, server_name: host.trim_start_matches('[').trim_end_matches(']').to_string() }
        }
        None => {
            if listen.ip().is_unspecified() && local_rank.is_some() {
                bail!("--listen {} names no address the other learners can send actors to: give --advertise HOST:PORT", args.listen);
            }
            LearnerAddress { addr: listen, server_name: listen.ip().to_string() }
        }
    };
    let remote = RemoteOptions { listen, tls, token, param_precision: args.param_precision, advertise };
    run_training(args.train, matches, 0, Some(remote))
}

/// Resolves the run (task, configuration layers, device, run directory) and trains: one seed,
/// or several (`--seeds`, or `--resume` of a multi-seed run's directory).
fn run_training(args: TrainArgs, matches: &ArgMatches, default_actors: usize, remote: Option<RemoteOptions>) -> Result<()> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    if let Some(dir) = args.resume.as_ref().filter(|r| sweep::is_multi_seed_run(r)) {
        // A multi-seed run continues with its own configuration; --steps may grow, and
        // --seeds may add seeds.
        let m = Manifest::read(dir)?;
        let mut config = m.config;
        if matches.value_source("steps") == Some(clap::parser::ValueSource::CommandLine) {
            config.schedule.steps = args.run.schedule.steps;
        }
        let seeds = match &args.seeds {
            Some(more) => {
                if let Some(dropped) = m.seeds.0.iter().find(|s| !more.0.contains(s)) {
                    bail!("--seeds {more} leaves out seed {dropped} of {} (seeds {}): a resumed run may only add seeds", dir.display(), m.seeds);
                }
                more.clone()
            }
            None => m.seeds,
        };
        let run = resolved(config, dir.clone(), None, &args, default_actors, remote, command)?;
        sweep::run(run, &seeds, dir, args.side_by_side as usize)?;
        return Ok(());
    }
    // A registered task by its canonical id; an MJCF file by its path (every actor makes it
    // from there).
    let mut given = RunConfig::requested_env(&args.run, matches, args.config.as_deref())?;
    // A checkpoint resumes on its own task unless one is named.
    if let Some(ck) = &args.resume
        && matches.value_source("env") != Some(clap::parser::ValueSource::CommandLine)
        && args.config.is_none()
    {
        given = spikerl_learner::checkpoint::Checkpoint::load(ck)?.env_id;
    }
    let given = &given;
    let probe = spikerl_envs::make(given)?;
    let registered = spikerl_envs::make(&probe.spec().id).is_ok();
    let env = if registered { probe.spec().id.clone() } else { given.clone() };
    let config = RunConfig::resolve(&args.run, matches, args.config.as_deref(), &env)?;
    let run_name = if registered { env.replace(':', "-") } else { Path::new(given).file_stem().map_or("mjcf".into(), |s| s.to_string_lossy().into_owned()) };
    if let Some(seeds) = &args.seeds {
        if config.runtime.learners > 1 || Launch::from_env().is_some() {
            bail!("--seeds trains seeds with one learner each; run several learners (--learners) one seed at a time");
        }
        let dir = args.out.clone().unwrap_or_else(|| sweep::default_dir(&run_name, seeds));
        sweep::check_fresh(&dir, &config, seeds)?;
        let run = resolved(config, dir.clone(), None, &args, default_actors, remote, command)?;
        sweep::run(run, seeds, &dir, args.side_by_side as usize)?;
        return Ok(());
    }
    if args.side_by_side > 1 {
        bail!("--side-by-side trains several seeds at once: give --seeds (or --resume a multi-seed run)");
    }
    let out = match (&args.out, &args.resume) {
        (Some(out), _) => out.clone(),
        (None, Some(ck)) => ck.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".")),
        (None, None) => PathBuf::from("runs").join(format!("{run_name}-seed{}", config.runtime.seed)),
    };
    let run = resolved(config, out.clone(), args.resume.clone(), &args, default_actors, remote, command)?;
    let s = crate::train::train(run)?;
    if Launch::from_env().is_some_and(|l| l.rank > 0) {
        // Rank 0 speaks for the run.
        return Ok(());
    }
    let eval = s.final_eval.map_or("no evaluation".into(), |e| format!("final eval return {:.1} ± {:.1}", e.mean, e.std));
    let energy = s.energy.as_ref().map_or(String::new(), |e| format!(" · {}", e.training.headline()));
    println!(
        "{} env steps, {} updates · {eval} · {:.0} env steps/s, {:.0} updates/s this session{energy} · {}",
        s.env_steps,
        s.updates,
        s.steps_per_s(),
        s.updates_per_s(),
        out.join("report.md").display()
    );
    Ok(())
}

/// A run of `config` on this machine.
fn resolved(config: RunConfig, out: PathBuf, resume: Option<PathBuf>, args: &TrainArgs, default_actors: usize, remote: Option<RemoteOptions>, command: String) -> Result<Run> {
    Ok(Run {
        task: TaskShape::of(&config.env)?,
        device: config.runtime.device.resolve()?,
        precision: config.runtime.precision.unwrap_or(Precision::F32),
        actors: config.runtime.actors.unwrap_or(default_actors),
        out,
        resume,
        progress: !args.quiet,
        command,
        remote,
        config,
    })
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let params = checkpoints::load_policy(&args.checkpoint)?;
    let id = spikerl_envs::make(&args.env)?.spec().id.clone();
    if args.episodes == 0 {
        bail!("--episodes must be positive");
    }
    let r = spikerl_actors::evaluate(&params, &id, args.episodes, args.seed).with_context(|| format!("{} on {id}", args.checkpoint.display()))?;
    if args.json {
        println!("{}", serde_json::json!({"env": id, "seed": args.seed, "returns": r.returns, "lengths": r.lengths, "mean": r.mean(), "std": r.std()}));
    } else {
        println!("{id}: {} episodes, return {:.2} ± {:.2}, length {:.1}", args.episodes, r.mean(), r.std(), r.mean_len());
    }
    Ok(())
}

pub fn plot(args: PlotArgs) -> Result<()> {
    let metrics = read_metrics(&args.run.join(METRICS_FILE));
    if metrics.evals.is_empty() && metrics.train_returns.is_empty() {
        bail!("{} has no evaluations or training returns in {METRICS_FILE}", args.run.display());
    }
    let png = args.run.join(CURVE_FILE);
    learning_curve(&png, &args.title, &metrics)?;
    println!("{} evaluations → {}", metrics.evals.len(), png.display());
    Ok(())
}
