//! SplitMix64: enough randomness for initialisation and Poisson encoding, and the same stream
//! on every platform.

#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Uniform on [0, 1) with 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform on (−bound, bound).
    pub fn uniform(&mut self, bound: f32) -> f32 {
        (2.0 * self.next_f32() - 1.0) * bound
    }
}
