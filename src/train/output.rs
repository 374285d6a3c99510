//! What a run shows while it goes and logs as it goes: the progress bar, lines above it, and
//! `metrics.jsonl` (one JSON record per progress tick and per evaluation). The report and the
//! curve drawn from them at the end are [`super::report`]'s and [`super::plot`]'s.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetricsRecord {
    /// `progress` or `eval`.
    pub kind: String,
    pub env_steps: u64,
    pub updates: u64,
    pub wall_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_steps_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updates_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_return: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_length: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critic_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q_mean: Option<f64>,
    /// `--target-actor proxy`: the proxy's mean squared distance to the spiking actor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_loss: Option<f64>,
    /// Optimiser steps skipped so far for a non-finite loss or gradient (when any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_steps: Option<u64>,
    /// Batches refused at intake so far: malformed, or outside the task's bounds (when any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_batches: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_lag: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param_version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_return_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_return_std: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_length: Option<f64>,
    /// The spiking actor's activity on the update batches since the last record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_activity: Option<spikerl_learner::ActorActivity>,
    /// `spikerl learner`: every remote actor's figures since the last record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_actors: Option<Vec<super::transport::remote::ActorReport>>,
    /// With several learner ranks: every rank's env steps, episodes and actors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learner_ranks: Option<Vec<super::ranks::RankFigures>>,
    /// Remote actors that have left, in sum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub departed_actors: Option<super::transport::remote::DepartedActors>,
}

/// An evaluation point of the learning curve.
#[derive(Debug, Clone, Copy)]
pub struct EvalPoint {
    pub env_steps: u64,
    pub mean: f64,
    pub std: f64,
}

pub const METRICS_FILE: &str = "metrics.jsonl";

pub struct RunOutput {
    pub dir: PathBuf,
    metrics: BufWriter<File>,
    started: Instant,
    /// Wall time of earlier sessions of a resumed run.
    wall_offset: f64,
    pub evals: Vec<EvalPoint>,
    bar: ProgressBar,
    last_rate: (Instant, u64, u64),
    last_log: Instant,
    last_eval: Option<EvalPoint>,
    /// The actor's activity of the latest record that had one.
    pub last_activity: Option<spikerl_learner::ActorActivity>,
    /// What the spiking actor did over the latest evaluation's actions.
    pub last_eval_counts: Option<spikerl_snn::OpCounts>,
    /// Consecutive records whose output population was ≥ 90 % gradient-dead.
    dead_records: usize,
    /// Whether a dead output population stops the actor's gradient (the rectangular
    /// surrogate's; the others pass a smaller one outside the window), and so earns a warning.
    pub warn_dead_output: bool,
    /// Nothing on the screen (learner ranks other than 0, whose rank 0 speaks for the run).
    pub silent: bool,
}

/// Records (2 s apart) of a ≥ 90 % gradient-dead output population before the run warns.
const DEAD_RECORDS_BEFORE_WARNING: usize = 5;
const DEAD_SHARE: f64 = 0.9;

impl RunOutput {
    /// Opens (or, resuming, continues) a run directory.
    pub fn open(dir: &Path, total_steps: u64, start_steps: u64, show_progress: bool) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create run directory {}", dir.display()))?;
        let path = dir.join(METRICS_FILE);
        let earlier = read_metrics(&path);
        let (evals, wall_offset) = (earlier.evals, earlier.wall_s);
        let file = OpenOptions::new().create(true).append(true).open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let bar = if show_progress { ProgressBar::new(total_steps) } else { ProgressBar::with_draw_target(Some(total_steps), ProgressDrawTarget::hidden()) };
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} env steps · {msg} · ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_position(start_steps);
        bar.enable_steady_tick(Duration::from_millis(250));
        let now = Instant::now();
        Ok(Self {
            dir: dir.to_path_buf(),
            metrics: BufWriter::new(file),
            started: now,
            wall_offset,
            last_eval: evals.last().copied(),
            evals,
            bar,
            last_rate: (now, start_steps, 0),
            last_log: now,
            last_activity: None,
            last_eval_counts: None,
            dead_records: 0,
            warn_dead_output: true,
            silent: false,
        })
    }

    pub fn wall_s(&self) -> f64 {
        self.wall_offset + self.started.elapsed().as_secs_f64()
    }

    /// Elapsed time of this session only.
    pub fn session_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn write(&mut self, record: &MetricsRecord) -> Result<()> {
        serde_json::to_writer(&mut self.metrics, record)?;
        self.metrics.write_all(b"\n")?;
        self.metrics.flush()?;
        Ok(())
    }

    /// Progress bar update and, every `every`, a `progress` record (rates since the last one).
    pub fn tick(&mut self, env_steps: u64, updates: u64, every: Duration, fill: impl FnOnce(&mut MetricsRecord)) -> Result<()> {
        self.bar.set_position(env_steps);
        let now = Instant::now();
        if now.duration_since(self.last_log) < every {
            return Ok(());
        }
        let (t0, s0, u0) = self.last_rate;
        let dt = now.duration_since(t0).as_secs_f64().max(1e-9);
        let sps = (env_steps - s0) as f64 / dt;
        let ups = (updates - u0) as f64 / dt;
        self.last_rate = (now, env_steps, updates);
        self.last_log = now;
        let mut record = MetricsRecord { kind: "progress".into(), env_steps, updates, wall_s: self.wall_s(), env_steps_per_s: Some(sps), updates_per_s: Some(ups), ..Default::default() };
        fill(&mut record);
        let eval = self.last_eval.map_or("eval —".to_string(), |e| format!("eval {:.1}", e.mean));
        let train = record.train_return.map_or(String::new(), |r| format!(" · train {r:.1}"));
        let actors = record.remote_actors.as_ref().map_or(String::new(), |a| format!(" · {} remote actor(s)", a.iter().filter(|a| a.connected).count()));
        let dead = record.actor_activity.as_ref().map_or(String::new(), |a| format!(" · output {:.0} % gradient-dead", 100.0 * a.output_dead()));
        self.bar.set_message(format!("{sps:.0} steps/s · {ups:.0} upd/s · {eval}{train}{dead}{actors}"));
        if let Some(a) = &record.actor_activity {
            self.watch_output(a, env_steps);
            self.last_activity = Some(a.clone());
        }
        self.write(&record)
    }

    /// Warns once the output population has stayed ≥ 90 % gradient-dead for
    /// [`DEAD_RECORDS_BEFORE_WARNING`] records in a row (again after each recovery).
    fn watch_output(&mut self, a: &spikerl_learner::ActorActivity, env_steps: u64) {
        if !self.warn_dead_output || a.output_dead() < DEAD_SHARE {
            self.dead_records = 0;
            return;
        }
        self.dead_records += 1;
        if self.dead_records == DEAD_RECORDS_BEFORE_WARNING {
            let line = format!(
                "warning: at {env_steps} env steps the spiking actor's output population has been ≥ {:.0} % gradient-dead for {} progress records ({:.0} % now: membranes outside the surrogate window pass no gradient); the actor learns only through the rest, and stalls if it stays (docs/results/hopper.md)",
                100.0 * DEAD_SHARE,
                DEAD_RECORDS_BEFORE_WARNING,
                100.0 * a.output_dead()
            );
            self.println(line);
        }
    }

    /// Logs an evaluation; with `params`, keeps them as `best_policy.paramset` when this is
    /// the best evaluation of the run so far.
    pub fn eval(&mut self, env_steps: u64, updates: u64, mean: f64, std: f64, length: f64, params: Option<&spikerl_snn::ParamSet>) -> Result<()> {
        let best = self.evals.iter().all(|e| mean > e.mean);
        if let (true, Some(p)) = (best, params) {
            super::checkpoints::write_policy(&self.dir.join(super::checkpoints::BEST_POLICY_FILE), p)?;
        }
        let point = EvalPoint { env_steps, mean, std };
        self.evals.push(point);
        self.last_eval = Some(point);
        self.bar.println(format!("eval at {env_steps} env steps: return {mean:.1} ± {std:.1}, length {length:.0}"));
        let record = MetricsRecord {
            kind: "eval".into(),
            env_steps,
            updates,
            wall_s: self.wall_s(),
            eval_return_mean: Some(mean),
            eval_return_std: Some(std),
            eval_length: Some(length),
            ..Default::default()
        };
        self.write(&record)
    }

    /// A line for the user, above the progress bar (or on stdout with --quiet).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.silent {
            return;
        }
        if self.bar.is_hidden() {
            println!("{}", line.as_ref());
        } else {
            self.bar.println(line.as_ref());
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// What a run's `metrics.jsonl` holds so far (nothing, for a new run).
#[derive(Debug, Default)]
pub struct Metrics {
    pub evals: Vec<EvalPoint>,
    /// Mean training-episode return at each progress record that had one: (env steps, return).
    pub train_returns: Vec<(u64, f64)>,
    /// Wall time of the sessions so far.
    pub wall_s: f64,
    /// The output population's gradient-dead share at each progress record that had one:
    /// (env steps, share).
    pub output_dead: Vec<(u64, f64)>,
}

pub fn read_metrics(path: &Path) -> Metrics {
    let Ok(text) = std::fs::read_to_string(path) else { return Metrics::default() };
    let mut m = Metrics::default();
    for r in text.lines().filter_map(|l| serde_json::from_str::<MetricsRecord>(l).ok()) {
        m.wall_s = m.wall_s.max(r.wall_s);
        if let (Some(mean), Some(std)) = (r.eval_return_mean, r.eval_return_std) {
            m.evals.push(EvalPoint { env_steps: r.env_steps, mean, std });
        }
        if let Some(ret) = r.train_return {
            m.train_returns.push((r.env_steps, ret));
        }
        if let Some(a) = &r.actor_activity {
            m.output_dead.push((r.env_steps, a.output_dead()));
        }
    }
    m
}
