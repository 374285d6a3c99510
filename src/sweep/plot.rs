//! Pictures of multi-seed runs: every seed's curve with the mean and its 95 % band, and
//! several runs' means side by side (`spikerl compare`).

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use super::summary::Summary;
use crate::train::plot::{register_font, steps_label};

const PALETTE: [RGBColor; 6] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(148, 103, 189), RGBColor(255, 127, 14), RGBColor(23, 190, 207)];

/// The y range of everything drawn, padded.
fn y_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (lo.min(0.0) - 1.0, hi.max(0.0) + 1.0) };
    let pad = 0.05 * (hi - lo);
    (lo - pad)..(hi + pad)
}

/// Each seed thin, the mean over seeds thick with its 95 % bootstrap band.
pub fn seed_curves(path: &Path, title: &str, s: &Summary) -> Result<()> {
    runs(path, title, &[(format!("mean of {} seeds, 95 % CI", s.seeds.len()), s)], true)
}

/// Several runs' mean curves and bands; with `seeds`, each seed's curve too.
pub fn runs(path: &Path, title: &str, runs: &[(String, &Summary)], seeds: bool) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = runs.iter().flat_map(|(_, s)| s.seeds.iter().flat_map(|r| r.curve.iter().map(|c| c.0))).max().unwrap_or(1).max(1) as f64;
    let values = runs.iter().flat_map(|(_, s)| s.seeds.iter().flat_map(|r| r.curve.iter().map(|c| c.1)).chain(s.curve.iter().flat_map(|p| [p.mean.ci_low, p.mean.ci_high])));
    let mut chart = ChartBuilder::on(&root).caption(title, ("sans-serif", 22)).margin(15).x_label_area_size(45).y_label_area_size(70).build_cartesian_2d(0.0..x_max * 1.02, y_range(values))?;
    chart.configure_mesh().x_desc("env steps").y_desc("evaluation return").x_label_formatter(&|x| steps_label(*x)).label_style(("sans-serif", 14)).draw()?;
    for (i, (name, s)) in runs.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        if seeds {
            for r in &s.seeds {
                chart.draw_series(LineSeries::new(r.curve.iter().map(|&(x, y)| (x as f64, y)), color.mix(0.35).stroke_width(1)))?;
            }
        }
        let band: Vec<(f64, f64)> = s.curve.iter().map(|p| (p.env_steps as f64, p.mean.ci_high)).chain(s.curve.iter().rev().map(|p| (p.env_steps as f64, p.mean.ci_low))).collect();
        chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.15))))?;
        chart
            .draw_series(LineSeries::new(s.curve.iter().map(|p| (p.env_steps as f64, p.mean.value)), color.stroke_width(3)))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
    }
    chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).background_style(WHITE.mix(0.8)).border_style(BLACK).label_font(("sans-serif", 14)).draw()?;
    root.present()?;
    Ok(())
}
