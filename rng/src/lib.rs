//! Small, fast random generators whose streams are the same on every platform and build, so
//! that a seed reproduces a run bit for bit and a checkpoint can continue one:
//!
//! - [`SplitMix`] (SplitMix64): a one-word state; initialisation, Poisson encoding, replay
//!   sampling, exploration and target noise;
//! - [`EnvRng`] (xoshiro256++ seeded through SplitMix64): the tasks' reset noise and policies.
//!
//! [`mutate`] makes damaged copies of valid inputs for the tests of parsers.

pub mod mutate;

/// SplitMix64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The whole state; `SplitMix::new(state)` continues the stream exactly.
    pub fn state(&self) -> u64 {
        self.0
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1) with 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform on (−bound, bound).
    pub fn uniform(&mut self, bound: f32) -> f32 {
        (2.0 * self.next_f32() - 1.0) * bound
    }

    /// Uniform integer in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 11) as u128 * n as u128) >> 53) as usize
    }

    /// Standard normal (Box–Muller, one draw per call).
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64; // (0, 1]
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

/// xoshiro256++, seeded through SplitMix64.
#[derive(Debug, Clone)]
pub struct EnvRng {
    s: [u64; 4],
}

impl EnvRng {
    pub fn seed_from_u64(seed: u64) -> Self {
        let mut seeds = SplitMix::new(seed);
        Self { s: [seeds.next_u64(), seeds.next_u64(), seeds.next_u64(), seeds.next_u64()] }
    }

    /// The whole state; [`EnvRng::from_state`] continues the stream exactly.
    pub fn state(&self) -> [u64; 4] {
        self.s
    }

    /// None for the all-zero state, which xoshiro never leaves.
    pub fn from_state(s: [u64; 4]) -> Option<Self> {
        (s != [0; 4]).then_some(Self { s })
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform on [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on [low, high).
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next_f64()
    }

    /// Standard normal (Box–Muller; one draw per call keeps the stream simple to reason about).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]: ln is finite
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_sane_moments() {
        let mut a = EnvRng::seed_from_u64(7);
        let mut b = EnvRng::seed_from_u64(7);
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        let mut c = EnvRng::seed_from_u64(8);
        assert_ne!(a.next_u64(), c.next_u64());

        let n = 100_000;
        let mut r = EnvRng::seed_from_u64(1);
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.02, "mean {mean} var {var}");
        let us: Vec<f64> = (0..n).map(|_| r.uniform(-2.0, 3.0)).collect();
        assert!(us.iter().all(|u| (-2.0..3.0).contains(u)));
        let umean = us.iter().sum::<f64>() / n as f64;
        assert!((umean - 0.5).abs() < 0.02, "uniform mean {umean}");
    }
}
