//! `spikerl train`: the learner, the actors, evaluation, checkpoints and the run's outputs.
//!
//! Two runtimes share the learner side ([`Learner`]):
//! - [`local`]: one learner thread and A actor threads, crossbeam channels between them,
//!   replay-ratio control by back-pressure (the default);
//! - [`sync`]: the published algorithm step for step in one thread (`--sync`), reproducible
//!   bitwise from a seed and across `--resume`.

pub mod local;
pub mod output;
pub mod remote;
pub mod sync;

use std::collections::VecDeque;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use spikerl_learner::checkpoint::{Checkpoint, ReplayState};
use spikerl_learner::prelude::*;
use spikerl_net::{EpisodeSummary, TransitionBatch};
use spikerl_snn::ParamSet;
use tch::Device;

/// Everything a run is told, resolved.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub env_id: String,
    pub steps: u64,
    pub actors: usize,
    pub envs_per_actor: usize,
    pub precision: Precision,
    /// `--resume` takes the checkpoint's precision (false: the one asked for; the master
    /// weights are fp32 either way).
    pub keep_precision_on_resume: bool,
    pub device: Device,
    pub seed: u64,
    pub out: PathBuf,
    pub sync: bool,
    pub eval_every: u64,
    pub checkpoint_every: u64,
    pub save_replay: bool,
    pub resume: Option<PathBuf>,
    pub config: Td3Config,
    pub learner_threads: usize,
    pub progress: bool,
    /// Stop once an evaluation's mean return reaches this.
    pub target_return: Option<f64>,
    /// The command line, for the report.
    pub command: String,
    /// `spikerl learner`: accept actors over QUIC too.
    pub remote: Option<remote::RemoteOptions>,
}

pub fn precision_name(p: Precision) -> &'static str {
    match p {
        Precision::F32 => "fp32",
        Precision::Bf16 => "bf16",
    }
}

pub fn parse_precision(s: &str) -> Result<Precision> {
    match s {
        "fp32" | "f32" => Ok(Precision::F32),
        "bf16" => Ok(Precision::Bf16),
        _ => bail!("unknown precision '{s}' (fp32 or bf16)"),
    }
}

/// `auto`, `cpu`, `cuda` or `cuda:N`; CUDA must be present.
pub fn parse_device(s: &str) -> Result<Device> {
    let cuda = |i: usize| -> Result<Device> {
        if !tch::Cuda::is_available() {
            bail!("--device {s}: CUDA is not available on this machine (use cpu or auto)");
        }
        let n = tch::Cuda::device_count() as usize;
        if i >= n {
            bail!("--device {s}: this machine has {n} CUDA device(s)");
        }
        Ok(Device::Cuda(i))
    };
    match s {
        "auto" => Ok(if tch::Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu }),
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(0),
        _ => match s.strip_prefix("cuda:").and_then(|i| i.parse().ok()) {
            Some(i) => cuda(i),
            None => bail!("unknown device '{s}' (auto, cpu, cuda or cuda:N)"),
        },
    }
}

/// The learner side of either runtime: TD3, the replay buffer, the normaliser (inside TD3),
/// counters and the training-episode statistics.
pub struct Learner {
    pub td3: Td3,
    pub replay: ReplayBuffer,
    minibatch: Minibatch,
    pub env_steps: u64,
    pub episodes: u64,
    pub version: u64,
    recent: VecDeque<EpisodeSummary>,
    lag_sum: u64,
    lag_batches: u64,
}

impl Learner {
    pub fn new(opts: &TrainOptions, act_limit: f32, obs_dim: usize, act_dim: usize) -> Result<Self> {
        let spec = opts.config.actor_spec(obs_dim, act_dim, act_limit)?;
        let mut td3 = Td3::new(opts.config.clone(), spec, opts.device, opts.precision, opts.seed).map_err(anyhow::Error::msg)?;
        td3.set_threads(opts.learner_threads);
        let replay = ReplayBuffer::new(obs_dim, act_dim, opts.config.replay_size);
        Ok(Self { td3, replay, minibatch: Minibatch::default(), env_steps: 0, episodes: 0, version: 0, recent: VecDeque::new(), lag_sum: 0, lag_batches: 0 })
    }

    /// Puts a batch into replay (all of it or, if it is malformed, none of it).
    pub fn ingest(&mut self, batch: &TransitionBatch) -> Result<(), String> {
        let (od, ad) = self.replay.dims();
        batch.validate(od, ad)?;
        for i in 0..batch.len() {
            self.replay.push(&batch.obs[i * od..(i + 1) * od], &batch.act[i * ad..(i + 1) * ad], batch.rew[i], &batch.next_obs[i * od..(i + 1) * od], batch.done[i]);
        }
        self.td3.normalizer.update(&batch.obs);
        self.env_steps += batch.len() as u64;
        for e in &batch.episodes {
            self.episodes += 1;
            if self.recent.len() == 20 {
                self.recent.pop_front();
            }
            self.recent.push_back(*e);
        }
        if batch.policy_version > 0 {
            self.lag_sum += self.version.saturating_sub(batch.policy_version);
            self.lag_batches += 1;
        }
        Ok(())
    }

    pub fn update(&mut self) {
        let batch = self.td3.config.batch_size;
        // Sampling draws from the learner's generator, which checkpoints hold.
        self.replay.sample_into(batch, self.td3.rng_mut(), &mut self.minibatch);
        self.td3.update(&self.minibatch);
    }

    /// The next `ParamSet` version, for the actors.
    pub fn publish(&mut self) -> ParamSet {
        self.version += 1;
        self.td3.param_set(self.version)
    }

    /// Mean return and length of the last (up to 20) training episodes.
    pub fn recent_return(&self) -> Option<(f64, f64)> {
        let n = self.recent.len();
        (n > 0).then(|| (self.recent.iter().map(|e| e.ret).sum::<f64>() / n as f64, self.recent.iter().map(|e| e.len as f64).sum::<f64>() / n as f64))
    }

    /// Mean policy lag (versions behind the learner) of the batches since the last call.
    pub fn take_policy_lag(&mut self) -> Option<f64> {
        let lag = (self.lag_batches > 0).then(|| self.lag_sum as f64 / self.lag_batches as f64);
        self.lag_sum = 0;
        self.lag_batches = 0;
        lag
    }

    pub fn checkpoint(&self, opts: &TrainOptions, runtime: Vec<u8>) -> Checkpoint {
        Checkpoint {
            env_id: opts.env_id.clone(),
            config: opts.config.clone(),
            precision: precision_name(opts.precision).into(),
            seed: opts.seed,
            sync: opts.sync,
            env_steps: self.env_steps,
            episodes: self.episodes,
            param_version: self.version,
            td3: self.td3.state(),
            runtime,
            replay: opts.save_replay.then(|| ReplayState::of(&self.replay)),
        }
    }

    /// Continues from `ck` (already checked to fit the run).
    pub fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        self.td3.load_state(ck.td3.clone()).map_err(anyhow::Error::msg)?;
        if let Some(r) = &ck.replay {
            if r.capacity != self.replay.capacity() || (r.obs_dim, r.act_dim) != self.replay.dims() {
                bail!("the checkpoint's replay buffer ({} × ({}, {})) does not fit this run", r.capacity, r.obs_dim, r.act_dim);
            }
            self.replay = r.clone().into_buffer().map_err(anyhow::Error::msg)?;
        }
        self.env_steps = ck.env_steps;
        self.episodes = ck.episodes;
        self.version = ck.param_version;
        Ok(())
    }

    /// Updates owed for the data so far: `updates_per_step` per env step after `update_after`.
    pub fn updates_due(&self) -> u64 {
        let c = &self.td3.config;
        if self.env_steps < c.update_after || self.replay.len() < c.batch_size {
            return 0;
        }
        ((self.env_steps - c.update_after) as f64 * c.updates_per_step) as u64
    }
}

/// Loads a checkpoint for `--resume` and checks it fits the options given.
pub fn load_for_resume(opts: &mut TrainOptions) -> Result<Option<Checkpoint>> {
    let Some(path) = opts.resume.clone() else { return Ok(None) };
    let ck = Checkpoint::load(&path)?;
    if ck.env_id != opts.env_id {
        bail!("{} is a checkpoint of {}, not {}", path.display(), ck.env_id, opts.env_id);
    }
    if ck.sync != opts.sync {
        bail!("{} was written by a {} run; resume it {}", path.display(), if ck.sync { "--sync" } else { "non---sync" }, if ck.sync { "with --sync" } else { "without --sync" });
    }
    if ck.env_steps >= opts.steps {
        bail!("{} has already taken {} env steps; ask for more with --steps", path.display(), ck.env_steps);
    }
    // The run continues with the checkpoint's hyperparameters and seed, and its precision
    // unless another was asked for.
    opts.config = ck.config.clone();
    opts.seed = ck.seed;
    if opts.keep_precision_on_resume {
        opts.precision = parse_precision(&ck.precision).context("checkpoint precision")?;
    }
    Ok(Some(ck))
}

/// What a finished (or stopped) session measured.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub env_steps: u64,
    pub updates: u64,
    /// Env steps and updates of this session (a resumed run counts from its checkpoint).
    pub session_steps: u64,
    pub session_updates: u64,
    pub session_s: f64,
    pub final_eval: Option<output::EvalPoint>,
    pub best_eval: Option<output::EvalPoint>,
}

impl RunSummary {
    pub fn new(learner: &Learner, out: &output::RunOutput, session_start: (u64, u64)) -> Self {
        let best = out.evals.iter().copied().max_by(|a, b| a.mean.total_cmp(&b.mean));
        Self {
            env_steps: learner.env_steps,
            updates: learner.td3.updates(),
            session_steps: learner.env_steps - session_start.0,
            session_updates: learner.td3.updates() - session_start.1,
            session_s: out.session_s(),
            final_eval: out.evals.last().copied(),
            best_eval: best,
        }
    }

    pub fn steps_per_s(&self) -> f64 {
        self.session_steps as f64 / self.session_s.max(1e-9)
    }

    pub fn updates_per_s(&self) -> f64 {
        self.session_updates as f64 / self.session_s.max(1e-9)
    }
}

/// Seeds of evaluation episodes: apart from every training env's.
fn eval_seed(opts: &TrainOptions) -> u64 {
    opts.seed.wrapping_add(1_000_000_007)
}

/// Evaluates the learner's current policy (no noise) and logs it.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Ctrl-C (or SIGTERM, as batch schedulers send) ends a run the way reaching `--steps` does:
/// last checkpoint, report, curve.
fn stop_on_ctrl_c() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    static FIRST: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            let first = *FIRST.get_or_init(std::time::Instant::now);
            if STOP.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // One Ctrl-C under `make run` reaches this process several times (the terminal's
                // SIGINT, then make's own): only a later one means "abort".
                if first.elapsed() < std::time::Duration::from_secs(2) {
                    return;
                }
                // SAFETY: _exit ends the process at once, without running atexit handlers or
                // C++ static destructors, which would pull libtorch's global state from under
                // learner threads still inside it.
                unsafe { libc::_exit(130) };
            }
            eprintln!("\nstopping: finishing the checkpoint and the report (Ctrl-C again to abort)");
        });
    });
}

pub fn stop_requested() -> bool {
    STOP.load(std::sync::atomic::Ordering::SeqCst)
}

/// Whether the run has reached `--target-return`.
pub fn target_reached(opts: &TrainOptions, out: &output::RunOutput) -> bool {
    matches!((opts.target_return, out.evals.last()), (Some(target), Some(e)) if e.mean >= target)
}

pub fn evaluate_into(opts: &TrainOptions, learner: &Learner, out: &mut output::RunOutput) -> Result<()> {
    let params = learner.td3.param_set(learner.version);
    let r = spikerl_actors::evaluate(&params, &opts.env_id, opts.config.eval_episodes, eval_seed(opts))?;
    out.eval(learner.env_steps, learner.td3.updates(), r.mean(), r.std(), r.mean_len(), Some(&params))
}

pub const CHECKPOINT_FILE: &str = "checkpoint.bin";
pub const POLICY_FILE: &str = "policy.paramset";

/// Writes the checkpoint and the current policy (a `ParamSet`, f32) atomically.
pub fn save_checkpoint(opts: &TrainOptions, learner: &Learner, out: &output::RunOutput, runtime: Vec<u8>) -> Result<()> {
    learner.checkpoint(opts, runtime).save(&out.dir.join(CHECKPOINT_FILE))?;
    let policy = learner.td3.param_set(learner.version).encode(spikerl_snn::Precision::F32);
    let tmp = out.dir.join(format!(".{POLICY_FILE}.tmp"));
    std::fs::write(&tmp, policy).and_then(|_| std::fs::rename(&tmp, out.dir.join(POLICY_FILE))).context("cannot write the policy file")?;
    Ok(())
}

/// Runs `spikerl train` as `opts` says, then writes the report and the curve.
pub fn train(mut opts: TrainOptions) -> Result<RunSummary> {
    opts.config.validate().map_err(anyhow::Error::msg)?;
    if (opts.actors == 0 && opts.remote.is_none()) || opts.envs_per_actor == 0 || opts.steps == 0 {
        bail!("--steps, --actors and --envs-per-actor must be positive");
    }
    if opts.remote.is_some() && opts.sync {
        bail!("--sync runs actors in the learner's thread; a learner with remote actors is asynchronous");
    }
    let resume = load_for_resume(&mut opts)?;
    stop_on_ctrl_c();
    // The learner splits each minibatch over its own threads; libtorch's OpenMP workers would
    // spin on the cores those and the actors need.
    tch::set_num_threads(1);
    spikerl_learner::keep_large_allocations();
    let start = resume.as_ref().map_or(0, |c| c.env_steps);
    let mut out = output::RunOutput::open(&opts.out, opts.steps, start, opts.progress)?;
    let summary = if opts.sync { sync::run(&opts, &mut out, resume)? } else { local::run(&opts, &mut out, resume)? };
    out.finish();
    let png = out.dir.join("learning_curve.png");
    if !out.evals.is_empty() {
        output::plot_curve(&png, &format!("{} · PopSAN-TD3 · seed {}", opts.env_id, opts.seed), &out.evals)?;
    }
    write_report(&opts, &out, &summary)?;
    Ok(summary)
}

fn write_report(opts: &TrainOptions, out: &output::RunOutput, s: &RunSummary) -> Result<()> {
    use std::fmt::Write as _;
    let c = &opts.config;
    let mut r = String::new();
    let _ = writeln!(r, "# {} · PopSAN-TD3\n", opts.env_id);
    let _ = writeln!(r, "Command: `{}`\n", opts.command);
    let eval = |e: Option<output::EvalPoint>| e.map_or("—".to_string(), |e| format!("{:.1} ± {:.1} (at {} env steps)", e.mean, e.std, e.env_steps));
    let _ = writeln!(r, "| | |\n|---|---|");
    let _ = writeln!(r, "| final evaluation ({} episodes, no noise) | {} |", c.eval_episodes, eval(s.final_eval));
    let _ = writeln!(r, "| best evaluation | {} |", eval(s.best_eval));
    let _ = writeln!(r, "| env steps / updates | {} / {} |", s.env_steps, s.updates);
    if let Some(t) = opts.target_return {
        let _ = writeln!(r, "| target return | {t} ({}) |", if target_reached(opts, out) { "reached" } else { "not reached" });
    }
    let _ = writeln!(r, "| this session | {} env steps, {} updates in {:.0} s: {:.0} env steps/s, {:.0} updates/s |", s.session_steps, s.session_updates, s.session_s, s.steps_per_s(), s.updates_per_s());
    let mode = if opts.sync { "synchronous (--sync)".to_string() } else { format!("{} actor(s) × {} env(s), learner threads {}", opts.actors, opts.envs_per_actor, opts.learner_threads) };
    let _ = writeln!(r, "| runtime | {mode} |");
    let _ = writeln!(r, "| precision / device | {} / {:?} |", precision_name(opts.precision), opts.device);
    let _ = writeln!(r, "| seed | {} |\n", opts.seed);
    if !out.evals.is_empty() {
        let _ = writeln!(r, "![learning curve](learning_curve.png)\n");
    }
    let _ = writeln!(r, "## Hyperparameters\n\n```toml\n{}```", toml::to_string(c).unwrap_or_default());
    let _ = writeln!(r, "\nFiles: `metrics.jsonl` (progress and evaluations), `{CHECKPOINT_FILE}` (resume with `--resume`), `{POLICY_FILE}` (the actor, for `spikerl eval` / `snn-report`), `best_policy.paramset` (the actor of the best evaluation).");
    std::fs::write(out.dir.join("report.md"), r).context("cannot write report.md")
}
