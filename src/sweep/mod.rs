//! Multi-seed runs: `spikerl train --seeds 0-4` trains each seed in `RUN/seed-K/` (one after
//! another on every core, or `--side-by-side N` at a time sharing them), resumes as a whole
//! (`--resume RUN` finishes what is unfinished), and aggregates into `RUN/summary.{md,json}`
//! and `RUN/curves.png`.

pub mod plot;
pub mod stats;
pub mod summary;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use spikerl_learner::checkpoint::Checkpoint;

use crate::config::RunConfig;
use crate::train::checkpoints::CHECKPOINT_FILE;
use crate::train::output::{METRICS_FILE, read_metrics};
use crate::train::stop::stop_requested;
use crate::train::{Run, train};
use summary::{Summary, seed_dir};

/// What `--resume RUN` needs to finish a multi-seed run.
pub const MANIFEST: &str = "seeds.toml";

/// A list of seeds: `0-4`, `0,3,7` or `0-2,10`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedList(pub Vec<u64>);

impl FromStr for SeedList {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut seeds = Vec::new();
        for part in s.split(',').map(str::trim) {
            let bad = || format!("bad seed list '{s}' (e.g. 0-4, 0,3,7 or 0-2,10)");
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b): (u64, u64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
                    if a > b || b - a >= 1000 {
                        return Err(bad());
                    }
                    seeds.extend(a..=b);
                }
                None => seeds.push(part.parse().map_err(|_| bad())?),
            }
        }
        let mut unique = seeds.clone();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != seeds.len() {
            return Err(format!("seed list '{s}' names a seed twice"));
        }
        Ok(Self(seeds))
    }
}

impl std::fmt::Display for SeedList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let contiguous = self.0.windows(2).all(|w| w[1] == w[0] + 1);
        match (contiguous, self.0.first(), self.0.last()) {
            (true, Some(a), Some(b)) if self.0.len() > 1 => write!(f, "{a}-{b}"),
            _ => f.write_str(&self.0.iter().map(u64::to_string).collect::<Vec<_>>().join(",")),
        }
    }
}

/// The final evaluation return a seed must reach to count as learned, per task: the bars
/// the project holds its results to.
pub fn threshold(env: &str) -> Option<f64> {
    match env.strip_prefix(spikerl_envs::gym::PREFIX).unwrap_or(env) {
        "Hopper-v4" => Some(2000.0),
        "HalfCheetah-v4" => Some(5000.0),
        "Ant-v4" => Some(2000.0),
        "Walker2d-v4" => Some(2500.0),
        "Pendulum-v1" => Some(-300.0),
        _ => None,
    }
}

/// A multi-seed run's manifest: the seeds and the configuration they share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub seeds: SeedList,
    pub config: RunConfig,
}

impl Manifest {
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).with_context(|| format!("{} is not a multi-seed run (no {MANIFEST})", dir.display()))?;
        toml::from_str(&text).with_context(|| format!("{} is corrupt", path.display()))
    }

    fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = dir.join(format!(".{MANIFEST}.tmp"));
        std::fs::write(&tmp, toml::to_string(self)?).and_then(|_| std::fs::rename(&tmp, dir.join(MANIFEST))).with_context(|| format!("cannot write {}", dir.join(MANIFEST).display()))
    }
}

/// Whether `path` is a multi-seed run's directory.
pub fn is_multi_seed_run(path: &Path) -> bool {
    path.join(MANIFEST).is_file()
}

/// Trains every seed of `seeds` as `base` says, each in `dir/seed-K/`, skipping the finished
/// and resuming the interrupted, `side_by_side` seeds at a time (splitting the cores between
/// them), then writes the aggregate.
pub fn run(base: Run, seeds: &SeedList, dir: &Path, side_by_side: usize) -> Result<Option<Summary>> {
    let manifest = Manifest { seeds: seeds.clone(), config: base.config.clone() };
    manifest.write(dir)?;
    let side_by_side = side_by_side.clamp(1, seeds.0.len().max(1));
    let base = split_cores(base, side_by_side);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures: Vec<anyhow::Error> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..side_by_side)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some(&seed) = seeds.0.get(i) else { return Ok(()) };
                        if stop_requested() {
                            return Ok(());
                        }
                        train_seed(&base, seed, (i, seeds.0.len()), dir).with_context(|| format!("seed {seed}"))?;
                    }
                })
            })
            .collect();
        workers.into_iter().filter_map(|w| w.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a seed's training thread panicked"))).err()).collect()
    });
    if let Some(first) = failures.into_iter().next() {
        return Err(first);
    }
    let env = &base.config.env;
    let summary = match Summary::read(dir, env, threshold(env), &seeds.0, Some(base.config.schedule.eval_every)) {
        Ok(s) => s,
        Err(_) => return Ok(None),
    };
    let title = format!("{env} · {} · seeds {seeds}", crate::train::report::algorithm_name(&base.config));
    let paths = summary.write(dir, &title)?;
    println!("summary: {}, {}, {}", paths[0].display(), paths[1].display(), paths[2].display());
    Ok(Some(summary))
}

/// `base` with the machine's cores shared among `side_by_side` runs: each learner gets its
/// share of threads and, unless told otherwise, one actor.
fn split_cores(mut base: Run, side_by_side: usize) -> Run {
    if side_by_side > 1 {
        let share = (crate::train::cores() / side_by_side).max(1);
        let r = &mut base.config.runtime;
        r.learner_threads = Some(r.learner_threads.unwrap_or(share).min(share));
        if r.actors.is_none() {
            base.actors = share.saturating_sub(1).max(1);
        }
    }
    base
}

/// Trains (or finishes, or skips as done) one seed of a multi-seed run.
fn train_seed(base: &Run, seed: u64, (i, n): (usize, usize), dir: &Path) -> Result<()> {
    let out = seed_dir(dir, seed);
    let checkpoint = out.join(CHECKPOINT_FILE);
    let mut run = Run { out: out.clone(), resume: None, ..base.clone() };
    run.config.runtime.seed = seed;
    if checkpoint.is_file() {
        let ck = Checkpoint::load(&checkpoint)?;
        if ck.env_steps >= run.config.schedule.steps {
            println!("seed {seed} ({} of {n}): done ({} env steps)", i + 1, ck.env_steps);
            return Ok(());
        }
        run.resume = Some(checkpoint);
    } else if let Some(last) = read_metrics(&out.join(METRICS_FILE)).evals.last() {
        // A run kept without its checkpoints (results archived in a repository: the replay
        // buffer is too large to keep) is done if its evaluations reached the budget; anything
        // short of that cannot be continued and starts again.
        if last.env_steps >= run.config.schedule.steps {
            println!("seed {seed} ({} of {n}): done ({} env steps, no checkpoint)", i + 1, last.env_steps);
            return Ok(());
        }
        let stale = out.join(METRICS_FILE);
        println!("seed {seed}: {} has evaluations to {} env steps but no checkpoint to continue from: starting the seed again", out.display(), last.env_steps);
        std::fs::rename(&stale, out.join(format!("{METRICS_FILE}.abandoned"))).with_context(|| format!("cannot move aside {}", stale.display()))?;
    }
    println!("seed {seed} ({} of {n}) → {}", i + 1, out.display());
    let s = train(run)?;
    let energy = s.energy.as_ref().map_or(String::new(), |e| format!(" · {}", e.training.headline()));
    println!("seed {seed}: {} env steps · final eval {}{energy}", s.env_steps, s.final_eval.map_or("—".into(), |e| format!("{:.1}", e.mean)));
    Ok(())
}

/// The run directory a multi-seed run defaults to.
pub fn default_dir(run_name: &str, seeds: &SeedList) -> PathBuf {
    PathBuf::from("runs").join(format!("{run_name}-seeds{seeds}"))
}

/// Fails unless `dir` can take this configuration (a fresh run into an old run's directory
/// would mix two experiments).
pub fn check_fresh(dir: &Path, config: &RunConfig, seeds: &SeedList) -> Result<()> {
    if let Ok(m) = Manifest::read(dir)
        && (m.config != *config || m.seeds != *seeds)
    {
        bail!("{} holds a multi-seed run of another configuration or seed list; continue it with --resume {}, or choose another --out", dir.display(), dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lists_parse_and_print() {
        assert_eq!("0-4".parse::<SeedList>().unwrap().0, [0, 1, 2, 3, 4]);
        assert_eq!("0,3,7".parse::<SeedList>().unwrap().0, [0, 3, 7]);
        assert_eq!("0-2,10".parse::<SeedList>().unwrap().0, [0, 1, 2, 10]);
        assert_eq!("5-9".parse::<SeedList>().unwrap().to_string(), "5-9");
        assert_eq!("0,3".parse::<SeedList>().unwrap().to_string(), "0,3");
        for bad in ["", "4-0", "a", "1,1", "0-2,2", "1-x"] {
            assert!(bad.parse::<SeedList>().is_err(), "{bad}");
        }
    }
}
