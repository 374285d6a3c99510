//! `spikerl compare`: several multi-seed runs' aggregates on one plot and in one table — the
//! tool for A/B tests of recipes and for ablations.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::sweep::plot::runs;
use crate::sweep::summary::Summary;
use crate::sweep::{Manifest, threshold};

#[derive(Args)]
pub struct CompareArgs {
    /// Multi-seed run directories (`spikerl train --seeds …`), two or more.
    #[arg(required = true, num_args = 1..)]
    pub runs: Vec<PathBuf>,
    /// Directory for compare.png and compare.md.
    #[arg(long, default_value = "runs/compare")]
    pub out: PathBuf,
    /// The plot's title [default: the task of the first run].
    #[arg(long)]
    pub title: Option<String>,
}

/// A run's aggregate, recomputed from its seeds' metrics (so that a run still going counts
/// what it has so far).
fn summary_of(dir: &std::path::Path) -> Result<Summary> {
    let m = Manifest::read(dir)?;
    let env = &m.config.env;
    Summary::read(dir, env, threshold(env), &m.seeds.0, Some(m.config.schedule.eval_every)).with_context(|| format!("{}", dir.display()))
}

pub fn compare(args: CompareArgs) -> Result<()> {
    if args.runs.len() < 2 {
        bail!("compare needs two or more runs");
    }
    let summaries: Vec<(String, Summary)> = args.runs.iter().map(|d| Ok((d.file_name().map_or_else(|| d.display().to_string(), |n| n.to_string_lossy().into_owned()), summary_of(d)?))).collect::<Result<_>>()?;
    let mut table = String::new();
    let _ = writeln!(table, "| run | task | seeds | IQM of final evaluations [95 % CI] | mean [95 % CI] | seeds ≥ threshold | output gradient-dead (late) |");
    let _ = writeln!(table, "|---|---|---:|---:|---:|---:|---:|");
    for (name, s) in &summaries {
        let reached = match (s.threshold, s.seeds_reaching_threshold) {
            (Some(t), Some(k)) => format!("{k} of {} (≥ {t})", s.seeds.len()),
            _ => "—".into(),
        };
        let e = |e: &crate::sweep::stats::Estimate| format!("{:.1} [{:.1}, {:.1}]", e.value, e.ci_low, e.ci_high);
        let dead = s.output_dead.map_or("—".to_string(), |d| format!("{:.0} %", 100.0 * d));
        let _ = writeln!(table, "| {name} | {} | {} | {} | {} | {reached} | {dead} |", s.env, s.seeds.len(), e(&s.iqm_final), e(&s.mean_final));
    }
    table.push_str(&costs(&args.runs)?);
    print!("{table}");
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let (png, md) = (args.out.join("compare.png"), args.out.join("compare.md"));
    let title = args.title.unwrap_or_else(|| format!("{} · mean evaluation return over seeds, 95 % CI", summaries[0].1.env));
    let refs: Vec<(String, &Summary)> = summaries.iter().map(|(n, s)| (n.clone(), s)).collect();
    runs(&png, &title, &refs, false)?;
    let runs_list: Vec<String> = args.runs.iter().map(|d| d.display().to_string()).collect();
    std::fs::write(&md, format!("# {title}\n\nRuns: {}\n\n{table}\n![compare](compare.png)\n", runs_list.join(", "))).with_context(|| format!("cannot write {}", md.display()))?;
    println!("results: {} and {}", png.display(), md.display());
    Ok(())
}

/// What each run cost, from its seeds' records: the actor, wall time per seed (`metrics.jsonl`),
/// training energy (`energy.json`: per million env steps over the sessions metered, and per
/// seed where every session was), and the actor's energy per action.
fn costs(dirs: &[PathBuf]) -> Result<String> {
    use crate::train::energy::{ENERGY_FILE, read};
    use crate::train::output::{METRICS_FILE, read_metrics};
    let mut t = String::new();
    let _ = writeln!(t, "\n| run | actor | wall time per seed | training energy per seed | per million env steps | energy per action, 45 nm |");
    let _ = writeln!(t, "|---|---|---:|---:|---:|---:|");
    for dir in dirs {
        let m = Manifest::read(dir)?;
        let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
        let (mut wall, mut energy, mut per_million, mut per_action, mut fully_metered, mut estimated) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), true, false);
        for &seed in &m.seeds.0 {
            let dir = crate::sweep::summary::seed_dir(dir, seed);
            let metrics = read_metrics(&dir.join(METRICS_FILE));
            if metrics.wall_s > 0.0 {
                wall.push(metrics.wall_s);
            }
            let path = dir.join(ENERGY_FILE);
            if !path.is_file() {
                fully_metered = false;
                continue;
            }
            let e = read(&path)?;
            estimated |= e.training.estimated_share > 0.0;
            per_million.extend(e.training.kwh_per_million_env_steps);
            per_action.extend(e.inference.as_ref().map(|i| i.nj_45nm));
            let run_steps = metrics.evals.last().map_or(0, |p| p.env_steps);
            if e.training.env_steps + 1000 >= run_steps {
                energy.push(e.training.total_kwh);
            } else {
                fully_metered = false;
            }
        }
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let label = if estimated { " (estimated)" } else { "" };
        let wall = mean(&wall).map_or("—".into(), |s| format!("{:.2} h", s / 3600.0));
        let energy = match (mean(&energy), fully_metered) {
            (Some(kwh), true) => format!("{:.1} Wh{label}", kwh * 1000.0),
            _ => "— (sessions before energy metering)".into(),
        };
        let per_million = mean(&per_million).map_or("—".into(), |k| format!("{k:.3} kWh{label}"));
        let per_action = mean(&per_action).map_or("—".into(), |nj| format!("{nj:.1} nJ"));
        let _ = writeln!(t, "| {name} | {} | {wall} | {energy} | {per_million} | {per_action} |", crate::train::report::algorithm_name(&m.config));
    }
    Ok(t)
}
