//! Running observation mean/std (parallel Welford), owned by the learner and shipped to the
//! actors inside every `ParamSet`.

#[derive(Debug, Clone, PartialEq)]
pub struct Normalizer {
    count: f64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

/// Smallest std reported, so that constant observation entries do not blow up.
const MIN_STD: f64 = 1e-2;

impl Normalizer {
    pub fn new(dim: usize) -> Self {
        Self { count: 0.0, mean: vec![0.0; dim], m2: vec![0.0; dim] }
    }

    pub fn count(&self) -> f64 {
        self.count
    }

    /// Adds rows of `obs` (`n × dim`).
    pub fn update(&mut self, obs: &[f32]) {
        let dim = self.mean.len();
        for row in obs.chunks_exact(dim) {
            self.count += 1.0;
            for ((m, m2), &x) in self.mean.iter_mut().zip(&mut self.m2).zip(row) {
                let delta = x as f64 - *m;
                *m += delta / self.count;
                *m2 += delta * (x as f64 - *m);
            }
        }
    }

    /// Adds the statistics of rows `other` saw (Chan et al.'s pairwise combination).
    pub fn merge(&mut self, other: &Normalizer) {
        if other.count == 0.0 {
            return;
        }
        let count = self.count + other.count;
        for ((m, m2), (&om, &om2)) in self.mean.iter_mut().zip(&mut self.m2).zip(other.mean.iter().zip(&other.m2)) {
            let delta = om - *m;
            *m += delta * other.count / count;
            *m2 += om2 + delta * delta * self.count * other.count / count;
        }
        self.count = count;
    }

    pub fn mean(&self) -> Vec<f32> {
        self.mean.iter().map(|&m| m as f32).collect()
    }

    /// Population std, at least 0.01; 1 before any data.
    pub fn std(&self) -> Vec<f32> {
        if self.count < 2.0 {
            return vec![1.0; self.mean.len()];
        }
        self.m2.iter().map(|&m2| (m2 / self.count).sqrt().max(MIN_STD) as f32).collect()
    }

    /// State for a checkpoint: count, then means, then M2s.
    pub fn to_vec(&self) -> Vec<f64> {
        let mut v = vec![self.count];
        v.extend(&self.mean);
        v.extend(&self.m2);
        v
    }

    pub fn from_vec(dim: usize, v: &[f64]) -> Result<Self, String> {
        if v.len() != 1 + 2 * dim {
            return Err(format!("normaliser state has {} values, expected {}", v.len(), 1 + 2 * dim));
        }
        Ok(Self { count: v[0], mean: v[1..1 + dim].to_vec(), m2: v[1 + dim..].to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_two_pass_statistics() {
        let rows: Vec<f32> = (0..200).flat_map(|i| [i as f32 * 0.5, 3.0, (i % 7) as f32]).collect();
        let mut n = Normalizer::new(3);
        n.update(&rows[..90]);
        n.update(&rows[90..]);
        let col = |k: usize| rows.iter().skip(k).step_by(3).map(|&x| x as f64).collect::<Vec<_>>();
        for k in 0..3 {
            let c = col(k);
            let mean = c.iter().sum::<f64>() / c.len() as f64;
            let std = (c.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / c.len() as f64).sqrt().max(MIN_STD);
            assert!((n.mean()[k] as f64 - mean).abs() < 1e-4);
            assert!((n.std()[k] as f64 - std).abs() < 1e-4);
        }
        assert_eq!(Normalizer::from_vec(3, &n.to_vec()).unwrap(), n);
        // Statistics gathered apart and merged are those of all the rows.
        let (mut a, mut b) = (Normalizer::new(3), Normalizer::new(3));
        a.update(&rows[..33]);
        b.update(&rows[33..]);
        a.merge(&b);
        a.merge(&Normalizer::new(3));
        assert_eq!(a.count(), n.count());
        for k in 0..3 {
            assert!((a.mean[k] - n.mean[k]).abs() < 1e-9 && (a.m2[k] - n.m2[k]).abs() < 1e-6 * n.m2[k].max(1.0), "{a:?} vs {n:?}");
        }
    }
}
