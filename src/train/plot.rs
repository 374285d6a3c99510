//! A run's learning curve: evaluation return (mean ± std over its episodes) and the mean
//! return of recent training episodes, against env steps.

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use super::output::Metrics;

pub const CURVE_FILE: &str = "learning_curve.png";

/// Env steps as a reader writes them: 500, 50k, 1.2M.
pub fn steps_label(x: f64) -> String {
    let trim = |v: f64, unit: &str| {
        let s = format!("{v:.1}");
        format!("{}{unit}", s.strip_suffix(".0").unwrap_or(&s))
    };
    match x.abs() {
        a if a >= 1e6 => trim(x / 1e6, "M"),
        a if a >= 1e3 => trim(x / 1e3, "k"),
        _ => format!("{x:.0}"),
    }
}

/// Makes the embedded DejaVu Sans the plots' "sans-serif" (no system fonts needed).
pub fn register_font() {
    static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
    // Registering twice is harmless; the first registration wins.
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
}

pub fn learning_curve(path: &Path, title: &str, m: &Metrics) -> Result<()> {
    register_font();
    let root = BitMapBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = m.evals.iter().map(|e| e.env_steps).chain(m.train_returns.iter().map(|t| t.0)).max().unwrap_or(1).max(1) as f64;
    let values = m.evals.iter().flat_map(|e| [e.mean - e.std, e.mean + e.std]).chain(m.train_returns.iter().map(|t| t.1));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo { (lo, hi) } else { (lo.min(-1.0), hi.max(1.0)) };
    let pad = 0.05 * (hi - lo);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max * 1.02, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("env steps")
        .y_desc("return")
        .x_label_formatter(&|x| steps_label(*x))
        .label_style(("sans-serif", 14))
        .draw()?;
    let grey = RGBColor(150, 150, 150);
    if !m.train_returns.is_empty() {
        chart
            .draw_series(LineSeries::new(m.train_returns.iter().map(|&(s, r)| (s as f64, r)), grey.stroke_width(1)))?
            .label("training episodes (mean of the last 20)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(2)));
    }
    let band: Vec<(f64, f64)> = m.evals.iter().map(|e| (e.env_steps as f64, e.mean + e.std)).chain(m.evals.iter().rev().map(|e| (e.env_steps as f64, e.mean - e.std))).collect();
    chart.draw_series(std::iter::once(Polygon::new(band, BLUE.mix(0.15))))?;
    chart
        .draw_series(LineSeries::new(m.evals.iter().map(|e| (e.env_steps as f64, e.mean)), BLUE.stroke_width(2)))?
        .label("evaluation (no noise), mean ± std")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart.draw_series(m.evals.iter().map(|e| Circle::new((e.env_steps as f64, e.mean), 3, BLUE.filled())))?;
    chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).background_style(WHITE.mix(0.8)).border_style(BLACK).label_font(("sans-serif", 14)).draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::steps_label;

    #[test]
    fn steps_read_as_people_write_them() {
        assert_eq!(steps_label(0.0), "0");
        assert_eq!(steps_label(500.0), "500");
        assert_eq!(steps_label(50_000.0), "50k");
        assert_eq!(steps_label(12_500.0), "12.5k");
        assert_eq!(steps_label(1_000_000.0), "1M");
        assert_eq!(steps_label(1_250_000.0), "1.2M");
    }
}
