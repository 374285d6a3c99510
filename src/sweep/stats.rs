//! Aggregates over seeds, as rliable recommends for few runs (Agarwal et al., NeurIPS 2021):
//! the interquartile mean, and percentile bootstrap confidence intervals over seeds.

use serde::{Deserialize, Serialize};
use spikerl_rng::SplitMix;

/// Bootstrap resamples behind every interval.
pub const BOOTSTRAP_SAMPLES: usize = 2000;

/// A statistic with its 95 % bootstrap confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The interquartile mean: the mean of what is left after cutting `⌊n/4⌋` values from each
/// end of the sorted values (scipy's `trim_mean(x, 0.25)`, which rliable uses).
pub fn iqm(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let cut = v.len() / 4;
    mean(&v[cut..v.len() - cut])
}

/// `statistic` of `values` with a 95 % percentile-bootstrap interval: `values` resampled with
/// replacement [`BOOTSTRAP_SAMPLES`] times from a fixed seed (the same data give the same
/// interval).
pub fn bootstrap(values: &[f64], statistic: impl Fn(&[f64]) -> f64) -> Estimate {
    let value = statistic(values);
    if values.len() < 2 {
        return Estimate { value, ci_low: value, ci_high: value };
    }
    let mut rng = SplitMix::new(0x5EED_B007);
    let mut sample = vec![0.0; values.len()];
    let mut stats: Vec<f64> = (0..BOOTSTRAP_SAMPLES)
        .map(|_| {
            for s in sample.iter_mut() {
                *s = values[rng.below(values.len())];
            }
            statistic(&sample)
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    let at = |q: f64| stats[((q * (stats.len() - 1) as f64).round() as usize).min(stats.len() - 1)];
    Estimate { value, ci_low: at(0.025), ci_high: at(0.975) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iqm_cuts_a_quarter_from_each_end() {
        // n = 8: cut 2 from each end.
        assert_eq!(iqm(&[100.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -50.0]), 3.5);
        // n = 5: cut 1 from each end (scipy: int(0.25 · 5) = 1).
        assert_eq!(iqm(&[1000.0, 20.0, 10.0, 30.0, -7.0]), 20.0);
        // n = 3: nothing to cut.
        assert_eq!(iqm(&[1.0, 2.0, 6.0]), 3.0);
    }

    #[test]
    fn bootstrap_interval_brackets_the_statistic_and_narrows_with_agreement() {
        let spread = [900.0, 1100.0, 2500.0, 3000.0, 3400.0];
        let e = bootstrap(&spread, mean);
        assert_eq!(e.value, mean(&spread));
        assert!(e.ci_low < e.value && e.value < e.ci_high, "{e:?}");
        // A mean of resampled seeds cannot leave their range.
        assert!(e.ci_low >= 900.0 && e.ci_high <= 3400.0);
        let tight = bootstrap(&[2000.0, 2010.0, 1990.0, 2005.0, 1995.0], mean);
        assert!(tight.ci_high - tight.ci_low < 0.1 * (e.ci_high - e.ci_low));
        assert_eq!(bootstrap(&spread, mean), e, "the same data give the same interval");
        let one = bootstrap(&[5.0], iqm);
        assert_eq!((one.ci_low, one.value, one.ci_high), (5.0, 5.0, 5.0));
    }
}
