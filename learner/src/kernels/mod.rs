//! The arithmetic of a TD3 update, chosen once as a type: [`CpuKernels`] runs on plain slices
//! (BLAS, event-driven spike products, fused passes), [`TchKernels`] on libtorch tensors of any
//! device (what CUDA runs). [`crate::td3::Td3`] is written once over the [`Kernels`] trait.
//!
//! Every method works on rows of a minibatch: `x` are normalised observations `[B, obs_dim]`,
//! `a` actions `[B, act_dim]`, `q` values `[B]`, all flat and row-major. Parameters, gradients
//! and optimiser moments are flat vectors in the layouts of [`crate::networks`].

mod cpu;
mod tch;

pub use self::cpu::CpuKernels;
pub use self::tch::TchKernels;

use spikerl_collective::{Collective, CollectiveError};

use crate::optim::Adam;

/// Below this many multiply-adds a bf16 product costs more than the fp32 one on the CPU:
/// every oneDNN bf16 call pays a fixed ~20 µs (one thread of this project's 2-core AMD EPYC VM:
/// `[50,256]×[256,1]` 2.6 µs fp32, 24 µs bf16; `[50,256]×[256,256]` 72 / 66 µs;
/// `[250,256]×[256,256]` 382 / 175 µs). Smaller products stay fp32 in bf16 mode.
pub const CPU_BF16_MIN_MACS: usize = 3 << 20;

/// Half the width of the rectangular surrogate gradient: a spiking neuron passes gradient
/// only while its membrane lies within this of the threshold (PopSAN's pseudo-gradient).
pub const SURROGATE_HALF_WIDTH: f32 = 0.5;

/// One backend's implementation of the networks' passes and the update's vector arithmetic.
pub trait Kernels: Send + Sync + 'static {
    /// A flat `f32` vector on this backend. Cheap to [`Kernels::share`] with learner threads.
    type Vector: Send + 'static;
    /// What the actor's forward pass keeps for its backward pass.
    type ActorTape: Send + 'static;
    /// What the critics' forward pass keeps for their backward pass.
    type CriticTape: Send + 'static;
    /// What an MLP's forward pass (the proxy target actor's) keeps for its backward pass.
    type MlpTape: Send + 'static;

    fn upload(&self, values: &[f32]) -> Self::Vector;
    fn download(&self, v: &Self::Vector) -> Vec<f32>;
    /// Another handle to the same values, for a learner thread to read.
    fn share(v: &Self::Vector) -> Self::Vector;

    /// Actions `π(x)` (`[B, act_dim]`); Poisson encoding takes its draws from `uniforms`
    /// (`[T, B, encoder neurons]`).
    fn actor_forward(&self, params: &Self::Vector, x: &Self::Vector, uniforms: Option<&Self::Vector>) -> (Self::Vector, Self::ActorTape);
    /// `∂loss/∂params` (the flat actor layout) from `∂loss/∂actions`.
    fn actor_backward(&self, params: &Self::Vector, tape: &Self::ActorTape, grad_actions: &Self::Vector) -> Self::Vector;
    /// What a spiking actor's neurons did in a forward pass: `[encoder firing rate, then per
    /// spiking layer (hidden, …, output): its firing rate and the fraction of (timestep,
    /// sample, neuron) whose membrane lay inside the surrogate window |v − threshold| < 0.5]`;
    /// `None` for a dense actor.
    fn actor_activity(&self, tape: &Self::ActorTape) -> Option<Self::Vector>;
    /// `(Q1(x, a), Q2(x, a))`, each `[B]`.
    fn critics_forward(&self, params: &Self::Vector, x: &Self::Vector, a: &Self::Vector) -> (Self::Vector, Self::Vector, Self::CriticTape);
    /// `∂loss/∂params` (both critics, flat) from `∂loss/∂Q1` and `∂loss/∂Q2`.
    fn critics_backward(&self, params: &Self::Vector, tape: &Self::CriticTape, grad_q1: &Self::Vector, grad_q2: &Self::Vector) -> Self::Vector;
    /// `Q1(x, a)` alone, keeping what [`Kernels::q1_action_grad`] needs.
    fn q1_forward(&self, params: &Self::Vector, x: &Self::Vector, a: &Self::Vector) -> (Self::Vector, Self::CriticTape);
    /// `∂loss/∂a` (`[B, act_dim]`) from `∂loss/∂Q1`.
    fn q1_action_grad(&self, params: &Self::Vector, tape: &Self::CriticTape, grad_q1: &Self::Vector) -> Self::Vector;

    /// The proxy target actor's actions `tanh(MLP(x)) × a_max` (`[B, act_dim]`). Panics on a
    /// backend built without a proxy.
    fn proxy_forward(&self, params: &Self::Vector, x: &Self::Vector) -> (Self::Vector, Self::MlpTape);
    /// `∂loss/∂params` of the proxy from `∂loss/∂actions`.
    fn proxy_backward(&self, params: &Self::Vector, tape: &Self::MlpTape, grad_actions: &Self::Vector) -> Self::Vector;

    /// `clip(a + ε, ±limit)`.
    fn add_clipped(&self, a: &Self::Vector, eps: &Self::Vector, limit: f32) -> Self::Vector;
    /// The TD target `r + γ·(1 − d)·min(q1, q2)`.
    fn td_target(&self, r: &Self::Vector, d: &Self::Vector, gamma: f32, q1: &Self::Vector, q2: &Self::Vector) -> Self::Vector;
    /// `a − b`.
    fn sub(&self, a: &Self::Vector, b: &Self::Vector) -> Self::Vector;
    /// `s·a`.
    fn scale(&self, a: &Self::Vector, s: f32) -> Self::Vector;
    /// A vector of `len` copies of `value`.
    fn filled(&self, len: usize, value: f32) -> Self::Vector;
    /// `Σ a`, a one-element vector.
    fn sum(&self, a: &Self::Vector) -> Self::Vector;
    /// `Σ a²`, a one-element vector.
    fn sum_squares(&self, a: &Self::Vector) -> Self::Vector;
    /// `a += b` (learner threads' partial gradients and losses).
    fn add_assign(&self, a: &mut Self::Vector, b: &Self::Vector);
    /// Whether every element is finite.
    fn all_finite(&self, a: &Self::Vector) -> bool;

    /// One Adam step of `params` along `grad` (see [`Adam`]).
    fn adam_step(&self, adam: &mut Adam<Self::Vector>, params: &mut Self::Vector, grad: &Self::Vector);
    /// Polyak averaging `target ← target + w·(online − target)`.
    fn lerp(&self, target: &mut Self::Vector, online: &Self::Vector, w: f32);

    /// `v` ← its mean over the learner ranks of `collective` (in device memory where the
    /// collective can, else through the host).
    fn all_reduce_mean(&self, v: &mut Self::Vector, collective: &dyn Collective) -> Result<(), CollectiveError>;
}
