//! Fidelity by distribution: episodes of uniform random actions on the port and on
//! Gymnasium + MuJoCo (`gym:ID`), their lengths and returns compared by two-sample
//! Kolmogorov–Smirnov tests. Long-horizon contact behaviour shows up here before it shows in
//! fixed-action trajectories.

use crate::rng::EnvRng;
use crate::{Env, EnvError};

/// Lengths and returns of `episodes` episodes of uniform random actions, episode `k` reset
/// with seed `seed + k` and actions from one generator seeded by `seed`.
pub fn random_episodes(env: &mut dyn Env, episodes: usize, seed: u64) -> Result<(Vec<f64>, Vec<f64>), EnvError> {
    let space = env.spec().action_space.clone();
    let mut rng = EnvRng::seed_from_u64(seed ^ 0xD157_0B5E);
    let mut obs = vec![0.0; env.spec().obs_dim()];
    let mut action = vec![0.0; space.dim()];
    let (mut lengths, mut returns) = (Vec::with_capacity(episodes), Vec::with_capacity(episodes));
    for k in 0..episodes {
        env.reset_into(Some(seed + k as u64), &mut obs)?;
        let (mut len, mut ret) = (0u32, 0.0);
        loop {
            space.sample_into(&mut action, || rng.next_f64());
            let step = env.step_into(&action, &mut obs)?;
            len += 1;
            ret += step.reward;
            if step.done() {
                break;
            }
        }
        lengths.push(f64::from(len));
        returns.push(ret);
    }
    Ok((lengths, returns))
}

/// The two-sample Kolmogorov–Smirnov statistic `D` (the largest gap between the empirical
/// distribution functions) and its asymptotic p-value (Numerical Recipes' `kstwo`: `Q_KS` at
/// `(√n_e + 0.12 + 0.11/√n_e)·D`, `n_e = nm/(n+m)`).
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len(), b.len());
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < n && j < m {
        let x = a[i].min(b[j]);
        while i < n && a[i] <= x {
            i += 1;
        }
        while j < m && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n as f64 - j as f64 / m as f64).abs());
    }
    let ne = (n * m) as f64 / (n + m) as f64;
    let lambda = (ne.sqrt() + 0.12 + 0.11 / ne.sqrt()) * d;
    (d, q_ks(lambda))
}

/// `Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2j²λ²}`.
fn q_ks(lambda: f64) -> f64 {
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    for j in 1..=100 {
        let term = (-2.0 * (j * j) as f64 * lambda * lambda).exp();
        sum += if j % 2 == 1 { term } else { -term };
        if term < 1e-12 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_statistic_and_p_value_match_hand_computed_cases() {
        // Identical samples: no gap.
        let a = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(ks_two_sample(&a, &a), (0.0, 1.0));
        // Disjoint samples: D = 1, and with 50 each the p-value is tiny.
        let low: Vec<f64> = (0..50).map(f64::from).collect();
        let high: Vec<f64> = (100..150).map(f64::from).collect();
        let (d, p) = ks_two_sample(&low, &high);
        assert_eq!(d, 1.0);
        assert!(p < 1e-10, "{p}");
        // [1, 2, 3] vs [2, 3, 4]: the ECDFs differ by 1/3 at most.
        assert!((ks_two_sample(&[1.0, 2.0, 3.0], &[2.0, 3.0, 4.0]).0 - 1.0 / 3.0).abs() < 1e-12);
        // Q_KS(1) = 0.27 (tabulated: 0.2700).
        assert!((q_ks(1.0) - 0.27).abs() < 1e-3);
        // Two draws of one distribution: a high p-value.
        let mut rng = EnvRng::seed_from_u64(1);
        let (x, y): (Vec<f64>, Vec<f64>) = (0..400).map(|_| (rng.normal(), rng.normal())).unzip();
        assert!(ks_two_sample(&x, &y).1 > 0.05);
    }
}
