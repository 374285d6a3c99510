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
