//! `spikerl train` and `spikerl learner`: a learner, its actors, evaluation, checkpoints and
//! the run's outputs.
//!
//! Two runtimes drive the same [`Learner`]:
//! - [`runtime`]: the learner on this thread, fed by [`transport`]s — local actor threads over
//!   crossbeam channels, remote actors over QUIC, or both — with the replay ratio held by
//!   back-pressure;
//! - [`sync`]: the published algorithm step for step in one thread (`--sync`), reproducible
//!   bitwise from a seed and across `--resume`.

pub mod checkpoints;
pub mod energy;
pub mod evaluator;
pub mod learner;
pub mod memory;
pub mod output;
pub mod ranks;
pub mod plot;
pub mod report;
pub mod runtime;
pub mod stop;
pub mod sync;
pub mod transport;

use std::path::PathBuf;

use anyhow::{Result, bail};
use spikerl_learner::Precision;

pub use learner::Learner;

use crate::config::RunConfig;

/// The task's dimensions and action space, as the learner's networks and its intake need them.
#[derive(Debug, Clone)]
pub struct TaskShape {
    pub obs_dim: usize,
    pub act_dim: usize,
    /// The largest |action| (the spiking actor's output scale).
    pub act_limit: f32,
    pub action_space: spikerl_envs::BoxSpace,
}

impl TaskShape {
    pub fn of(env_id: &str) -> Result<Self> {
        let env = spikerl_envs::make(env_id)?;
        let s = env.spec();
        Ok(Self { obs_dim: s.obs_dim(), act_dim: s.act_dim(), act_limit: s.action_space.max_abs(), action_space: s.action_space.clone() })
    }
}

/// A run, resolved: its configuration and what follows from it on this machine.
#[derive(Debug, Clone)]
pub struct Run {
    pub config: RunConfig,
    pub task: TaskShape,
    pub device: tch::Device,
    /// The compute precision (the checkpoint's on `--resume`, unless asked for).
    pub precision: Precision,
    /// Local actor threads.
    pub actors: usize,
    pub out: PathBuf,
    pub resume: Option<PathBuf>,
    pub progress: bool,
    /// The command line, for the report.
    pub command: String,
    /// `spikerl learner`: accept actors over QUIC too.
    pub remote: Option<transport::remote::RemoteOptions>,
}

/// The machine's cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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
    /// The run's energy so far (`energy.json`), once the session has ended.
    pub energy: Option<energy::EnergyFile>,
    /// What remote actors' processes reported using this session.
    pub actor_energy: Vec<spikerl_energy::ComponentEnergy>,
}

impl RunSummary {
    pub fn new(learner: &Learner, out: &output::RunOutput, session_start: (u64, u64)) -> Self {
        let best = out.evals.iter().copied().max_by(|a, b| a.mean.total_cmp(&b.mean));
        Self {
            env_steps: learner.run_env_steps,
            updates: learner.updates(),
            session_steps: learner.run_env_steps - session_start.0,
            session_updates: learner.updates() - session_start.1,
            session_s: out.session_s(),
            final_eval: out.evals.last().copied(),
            best_eval: best,
            energy: None,
            actor_energy: Vec::new(),
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
pub fn eval_seed(run: &Run) -> u64 {
    run.config.runtime.seed.wrapping_add(1_000_000_007)
}

/// Whether the run has reached `--target-return`.
pub fn target_reached(run: &Run, out: &output::RunOutput) -> bool {
    matches!((run.config.schedule.target_return, out.evals.last()), (Some(target), Some(e)) if e.mean >= target)
}

/// Runs a training session as `run` says, then writes the report and the curve. Under a
/// launcher (`mpirun`, `srun`, torchrun), this process is one learner rank of the run.
pub fn train(mut run: Run) -> Result<RunSummary> {
    run.config.validate()?;
    if run.actors == 0 && run.remote.is_none() {
        bail!("--actors must be positive (a learner without remote actors needs local ones)");
    }
    if run.remote.is_some() && run.config.runtime.sync {
        bail!("--sync runs actors in the learner's thread; a learner with remote actors is asynchronous");
    }
    let collective = ranks::connect(&run.config.runtime)?;
    let rank = collective.as_ref().map_or(0, |c| c.rank());
    let result = train_rank(&mut run, collective.clone());
    if let (Err(e), Some(c)) = (&result, &collective) {
        // The other ranks cannot see this error, and would wait for this one until their
        // timeout: end them now.
        eprintln!("error: learner rank {rank}: {e:#}");
        c.abort(1);
    }
    result
}

fn train_rank(run: &mut Run, collective: Option<std::sync::Arc<dyn spikerl_learner::collective::Collective>>) -> Result<RunSummary> {
    let rank = collective.as_ref().map_or(0, |c| c.rank());
    let resume = match &collective {
        // Rank 0's checkpoint, wherever the other ranks run.
        Some(c) => ranks::load_for_resume(run, &**c)?,
        None => checkpoints::load_for_resume(run)?,
    };
    // Sizes (the checkpoint's, when resuming) are checked before anything is allocated.
    let spec = run.config.actor.spec(run.task.obs_dim, run.task.act_dim, run.task.act_limit)?;
    memory::Footprint::of(&run.config, &spec).check(memory::machine_memory())?;
    stop::stop_on_ctrl_c();
    // The learner splits each minibatch over its own threads; libtorch's OpenMP workers would
    // spin on the cores those and the actors need.
    tch::set_num_threads(1);
    spikerl_learner::keep_large_allocations();
    let start = resume.as_ref().map_or(0, |c| c.env_steps);
    // Rank 0 writes the run; the others keep their own progress records in RUN/rank-K/.
    let dir = if rank == 0 { run.out.clone() } else { run.out.join(format!("rank-{rank}")) };
    let mut out = output::RunOutput::open(&dir, run.config.schedule.steps, start, run.progress && rank == 0)?;
    out.silent = rank > 0;
    checkpoints::remove_stale_temporaries(&run.out);
    out.warn_dead_output = run.config.actor.surrogate == spikerl_learner::Surrogate::Rectangle && run.config.actor.actor == spikerl_learner::ActorKind::Spiking;
    out.println(report::banner(run, resume.as_ref()));
    if let Some(c) = &collective {
        out.println(format!("learners: {} ranks ({}), gradients averaged every update; per-rank batch {}", c.world_size(), c.backend(), run.config.algorithm.batch_size));
    }
    let (a, steps) = (&run.config.algorithm, run.config.schedule.steps);
    if a.updates_per_step > 0.0 && a.updates_start() >= steps {
        out.println(format!("note: updates start after {} env steps (the larger of --update-after {} and --batch-size {}), not before --steps {steps}: this run only collects", a.updates_start(), a.update_after, a.batch_size));
    }
    let metered = energy::RunEnergy::start(run, collective.as_ref().map_or(1, |c| c.world_size()));
    let mut summary = if run.config.runtime.sync { sync::run(run, &mut out, resume, &metered)? } else { runtime::run(run, &mut out, resume, collective.clone(), &metered)? };
    out.finish();
    // Every rank takes part (the ranks' parts are summed); rank 0 writes energy.json.
    match metered.finish(run, &summary, collective.as_deref(), out.last_eval_counts.as_ref()) {
        Ok(file) => summary.energy = file,
        Err(e) => out.println(format!("note: the session's energy is not recorded: {e:#}")),
    }
    if rank > 0 {
        return Ok(summary);
    }
    if !out.evals.is_empty() {
        let title = format!("{} · {} · seed {}", run.config.env, report::algorithm_name(&run.config), run.config.runtime.seed);
        plot::learning_curve(&out.dir.join(plot::CURVE_FILE), &title, &output::read_metrics(&out.dir.join(output::METRICS_FILE)))?;
    }
    picture_of_best_policy(run, &out);
    report::write(run, &out, &summary)?;
    Ok(summary)
}

/// The picture of a locomotion run's best policy: `best_policy.gif`, an episode of 300 steps.
/// A run without one (no evaluation yet, or a task that is not drawn) goes on without it.
fn picture_of_best_policy(run: &Run, out: &output::RunOutput) {
    let best = out.dir.join(checkpoints::BEST_POLICY_FILE);
    if !best.is_file() || spikerl_envs::make_locomotion(&run.config.env).is_err() {
        return;
    }
    let picture = out.dir.join(report::BEST_POLICY_PICTURE);
    let opts = crate::render::RenderOptions { steps: 300, width: 320, height: 240, seed: 0 };
    let drawn = checkpoints::load_policy(&best).and_then(|p| crate::render::Driver::policy(&p)).and_then(|mut d| crate::render::render(&run.config.env, &mut d, &opts, &picture));
    if let Err(e) = drawn {
        out.println(format!("note: no picture of the best policy: {e:#}"));
    }
}
