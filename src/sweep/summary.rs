//! A multi-seed run's aggregate: `summary.json`, `summary.md` and `curves.png` — every seed's
//! final and best evaluation, the interquartile mean of the final evaluations and the mean
//! curve with 95 % bootstrap intervals, and how many seeds reached the task's threshold.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::stats::{Estimate, bootstrap, iqm, mean};
use crate::train::output::{EvalPoint, METRICS_FILE, Metrics, read_metrics};

pub const SUMMARY_JSON: &str = "summary.json";
pub const SUMMARY_MD: &str = "summary.md";
pub const CURVES_PNG: &str = "curves.png";

/// One seed's run, as its `metrics.jsonl` tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedResult {
    pub seed: u64,
    /// Env steps of its last evaluation.
    pub env_steps: u64,
    pub final_return: f64,
    pub best_return: f64,
    pub best_at: u64,
    pub reached_threshold: Option<bool>,
    /// Its evaluations: (env steps, mean return).
    pub curve: Vec<(u64, f64)>,
    /// The output population's gradient-dead share, averaged over the last fifth of the run's
    /// env steps (`None` without activity records).
    #[serde(default)]
    pub output_dead: Option<f64>,
}

/// The mean curve over seeds at one evaluation step (where every seed has been evaluated).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub env_steps: u64,
    pub mean: Estimate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub env: String,
    /// A seed "learned" at or above this final evaluation return.
    pub threshold: Option<f64>,
    pub seeds: Vec<SeedResult>,
    /// Interquartile mean of the seeds' final evaluations.
    pub iqm_final: Estimate,
    pub mean_final: Estimate,
    pub seeds_reaching_threshold: Option<usize>,
    /// Mean over seeds of their late output-population gradient-dead share.
    #[serde(default)]
    pub output_dead: Option<f64>,
    pub curve: Vec<CurvePoint>,
}

impl SeedResult {
    /// From a seed's `metrics.jsonl`.
    pub fn from_metrics(seed: u64, m: &Metrics, threshold: Option<f64>) -> Option<Self> {
        let mut r = Self::from_evals(seed, &m.evals, threshold)?;
        let end = m.output_dead.last().map_or(0, |d| d.0);
        let late: Vec<f64> = m.output_dead.iter().filter(|d| d.0 * 5 >= end * 4).map(|d| d.1).collect();
        r.output_dead = (!late.is_empty()).then(|| mean(&late));
        Some(r)
    }

    pub fn from_evals(seed: u64, evals: &[EvalPoint], threshold: Option<f64>) -> Option<Self> {
        let last = evals.last()?;
        let best = evals.iter().max_by(|a, b| a.mean.total_cmp(&b.mean))?;
        Some(Self {
            seed,
            env_steps: last.env_steps,
            final_return: last.mean,
            best_return: best.mean,
            best_at: best.env_steps,
            reached_threshold: threshold.map(|t| last.mean >= t),
            curve: evals.iter().map(|e| (e.env_steps, e.mean)).collect(),
            output_dead: None,
        })
    }
}

impl Summary {
    /// Aggregates the seeds' results (at least one). With `eval_every`, each evaluation counts
    /// at its scheduled mark (a multiple of `eval_every`): asynchronous runs evaluate at the
    /// first env step past the mark, which differs from seed to seed by part of a batch.
    pub fn of(env: &str, threshold: Option<f64>, seeds: Vec<SeedResult>, eval_every: Option<u64>) -> Result<Self> {
        if seeds.is_empty() {
            bail!("no seed has an evaluation yet");
        }
        let finals: Vec<f64> = seeds.iter().map(|s| s.final_return).collect();
        // The mean curve where every seed has an evaluation at that step.
        let mut by_step: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        let mark = |step: u64| eval_every.filter(|&e| e > 0).map_or(step, |e| step / e * e);
        for s in &seeds {
            for &(step, r) in &s.curve {
                by_step.entry(mark(step)).or_default().push(r);
            }
        }
        let curve = by_step.into_iter().filter(|(_, v)| v.len() == seeds.len()).map(|(env_steps, v)| CurvePoint { env_steps, mean: bootstrap(&v, mean) }).collect();
        Ok(Self {
            env: env.to_string(),
            threshold,
            iqm_final: bootstrap(&finals, iqm),
            mean_final: bootstrap(&finals, mean),
            seeds_reaching_threshold: threshold.map(|_| seeds.iter().filter(|s| s.reached_threshold == Some(true)).count()),
            output_dead: {
                let dead: Vec<f64> = seeds.iter().filter_map(|s| s.output_dead).collect();
                (!dead.is_empty()).then(|| mean(&dead))
            },
            seeds,
            curve,
        })
    }

    /// Reads every `seed-K` directory of a multi-seed run.
    pub fn read(dir: &Path, env: &str, threshold: Option<f64>, seeds: &[u64], eval_every: Option<u64>) -> Result<Self> {
        let results = seeds
            .iter()
            .filter_map(|&seed| SeedResult::from_metrics(seed, &read_metrics(&seed_dir(dir, seed).join(METRICS_FILE)), threshold))
            .collect();
        Self::of(env, threshold, results, eval_every)
    }

    /// Writes `summary.json`, `summary.md` and `curves.png` into `dir`; their paths.
    pub fn write(&self, dir: &Path, title: &str) -> Result<[PathBuf; 3]> {
        let paths = [dir.join(SUMMARY_JSON), dir.join(SUMMARY_MD), dir.join(CURVES_PNG)];
        std::fs::write(&paths[0], serde_json::to_string_pretty(self)?).with_context(|| format!("cannot write {}", paths[0].display()))?;
        std::fs::write(&paths[1], self.markdown(title)).with_context(|| format!("cannot write {}", paths[1].display()))?;
        super::plot::seed_curves(&paths[2], title, self)?;
        Ok(paths)
    }

    fn markdown(&self, title: &str) -> String {
        let mut r = String::new();
        let est = |e: &Estimate| format!("{:.1} [{:.1}, {:.1}]", e.value, e.ci_low, e.ci_high);
        let _ = writeln!(r, "# {title}\n");
        let _ = writeln!(r, "| | |\n|---|---|");
        let _ = writeln!(r, "| seeds | {} |", self.seeds.len());
        let _ = writeln!(r, "| IQM of the final evaluations [95 % bootstrap CI] | {} |", est(&self.iqm_final));
        let _ = writeln!(r, "| mean of the final evaluations [95 % CI] | {} |", est(&self.mean_final));
        if let (Some(t), Some(k)) = (self.threshold, self.seeds_reaching_threshold) {
            let _ = writeln!(r, "| seeds with a final evaluation ≥ {t} | {k} of {} |", self.seeds.len());
        }
        let _ = writeln!(r, "\n![curves]({CURVES_PNG})\n");
        let _ = writeln!(r, "| seed | env steps | final evaluation | best evaluation (at env steps) | output gradient-dead (last fifth) |");
        let _ = writeln!(r, "|---:|---:|---:|---:|---:|");
        for s in &self.seeds {
            let dead = s.output_dead.map_or("—".to_string(), |d| format!("{:.0} %", 100.0 * d));
            let _ = writeln!(r, "| {} | {} | {:.1} | {:.1} ({}) | {dead} |", s.seed, s.env_steps, s.final_return, s.best_return, s.best_at);
        }
        let _ = writeln!(r, "\nEach seed's run is in `seed-K/` (report.md, metrics.jsonl, checkpoint.bin). Evaluations: the deterministic policy, no exploration noise; the mean curve is drawn where every seed has been evaluated.");
        r
    }
}

/// Where seed `seed` of a multi-seed run lives.
pub fn seed_dir(dir: &Path, seed: u64) -> PathBuf {
    dir.join(format!("seed-{seed}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evals(points: &[(u64, f64)]) -> Vec<EvalPoint> {
        points.iter().map(|&(env_steps, mean)| EvalPoint { env_steps, mean, std: 0.0 }).collect()
    }

    /// Recorded curves of three seeds: per-seed finals and bests, the IQM (three seeds: the
    /// plain mean), the threshold count and the mean curve where all three were evaluated.
    #[test]
    fn aggregates_recorded_curves() {
        let a = SeedResult::from_evals(0, &evals(&[(1000, 10.0), (2000, 300.0), (3000, 2500.0)]), Some(2000.0)).unwrap();
        let b = SeedResult::from_evals(1, &evals(&[(1000, 20.0), (2000, 3100.0), (3000, 1900.0)]), Some(2000.0)).unwrap();
        let c = SeedResult::from_evals(2, &evals(&[(1000, 30.0), (2000, 500.0)]), Some(2000.0)).unwrap();
        assert_eq!((b.final_return, b.best_return, b.best_at), (1900.0, 3100.0, 2000));
        let s = Summary::of("Hopper-v4", Some(2000.0), vec![a, b, c.clone()], None).unwrap();
        assert_eq!(s.iqm_final.value, (2500.0 + 1900.0 + 500.0) / 3.0);
        assert_eq!(s.seeds_reaching_threshold, Some(1));
        let steps: Vec<u64> = s.curve.iter().map(|p| p.env_steps).collect();
        assert_eq!(steps, [1000, 2000], "3000 lacks seed 2");
        assert_eq!(s.curve[1].mean.value, (300.0 + 3100.0 + 500.0) / 3.0);
        assert!(s.curve[1].mean.ci_low < s.curve[1].mean.value && s.curve[1].mean.value < s.curve[1].mean.ci_high);
        let md = s.markdown("test");
        assert!(md.contains("1 of 3") && md.contains("| 1 | 3000 | 1900.0 | 3100.0 (2000) | — |"), "{md}");
        // The late gradient-dead share: records in the last fifth of the steps only.
        let m = Metrics { evals: evals(&[(1000, 5.0)]), output_dead: vec![(100, 0.1), (700, 0.5), (800, 0.8), (1000, 1.0)], ..Metrics::default() };
        assert_eq!(SeedResult::from_metrics(4, &m, None).unwrap().output_dead, Some(0.9));
        assert!(Summary::of("Hopper-v4", None, Vec::new(), None).is_err());
        // Evaluations a little past their marks (as asynchronous runs take them) count at the mark.
        let late = SeedResult::from_evals(3, &evals(&[(1003, 40.0), (2001, 700.0)]), None).unwrap();
        let s = Summary::of("Hopper-v4", None, vec![c, late], Some(1000)).unwrap();
        assert_eq!(s.curve.iter().map(|p| (p.env_steps, p.mean.value)).collect::<Vec<_>>(), [(1000, 35.0), (2000, 600.0)]);
    }
}
