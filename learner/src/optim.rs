//! Adam over one flat vector, step for step as `torch.optim.Adam` (bias-corrected, ε outside
//! the square root), with state a checkpoint can hold:
//!
//! `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`,
//! `θ ← θ − lr·(m/(1 − β₁ᵗ)) / (√v/√(1 − β₂ᵗ) + ε)`.
//!
//! The step itself is a backend's ([`crate::kernels::Kernels::adam_step`]).

#[derive(Debug)]
pub struct Adam<V> {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// First and second moments, in the parameters' layout.
    pub m: V,
    pub v: V,
    pub steps: i64,
}

impl<V> Adam<V> {
    /// Fresh moments `m` and `v` (zeros of the parameters' length).
    pub fn new(m: V, v: V, lr: f64) -> Self {
        Self { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, m, v, steps: 0 }
    }

    /// Counts a step; its bias corrections `(1 − β₁ᵗ, 1 − β₂ᵗ)`.
    pub fn next_step(&mut self) -> (f64, f64) {
        self.steps += 1;
        (1.0 - self.beta1.powi(self.steps as i32), 1.0 - self.beta2.powi(self.steps as i32))
    }
}
