//! The CPU backend: every pass on plain slices. At TD3's batch a tensor op costs microseconds
//! of dispatch, allocation and shape checks before any arithmetic (a third of an update, when
//! the CPU ran tensor ops); here the products are one BLAS call each ([`blas`]: the sgemm
//! inside libtorch) or event-driven sums over spikes ([`events`]), and everything else one
//! fused pass.

mod actor;
mod blas;
mod critic;
mod events;
mod simd;

use std::sync::Arc;

use spikerl_collective::{Collective, CollectiveError};

use super::Kernels;
use crate::Precision;
use crate::networks::{ActorNet, CriticShape, MlpShape};
use crate::optim::Adam;

/// The CPU backend: vectors are shared, reference-counted `Vec<f32>`s, so learner threads read
/// the parameters without copying them.
pub struct CpuKernels {
    actor: ActorNet,
    critic: CriticShape,
    proxy: Option<MlpShape>,
    precision: Precision,
}

impl CpuKernels {
    pub fn new(actor: impl Into<ActorNet>, critic: CriticShape, precision: Precision) -> Self {
        Self { actor: actor.into(), critic, proxy: None, precision }
    }

    /// With the proxy target actor's passes.
    pub fn with_proxy(self, proxy: MlpShape) -> Self {
        Self { proxy: Some(proxy), ..self }
    }

    fn proxy(&self) -> &MlpShape {
        self.proxy.as_ref().expect("a backend built with a proxy target actor")
    }
}

/// An MLP's layer inputs and its `tanh` outputs.
pub struct MlpTape {
    inputs: Vec<Vec<f32>>,
    squashed: Vec<f32>,
    rows: usize,
}

/// The actor's forward pass, spiking or dense.
pub enum ActorTape {
    Spiking(actor::ActorTape),
    Dense(MlpTape),
}

impl CpuKernels {
    /// `tanh(MLP(x)) × act_limit` and what its backward pass needs.
    fn mlp_forward(&self, net: &MlpShape, params: &[f32], x: &[f32]) -> (Vec<f32>, MlpTape) {
        let rows = x.len() / net.layers[0].inp;
        let (z, inputs) = critic::forward(params, &net.layers, x.to_vec(), rows, self.precision);
        let squashed: Vec<f32> = z.iter().map(|z| z.tanh()).collect();
        let actions = squashed.iter().map(|s| s * net.act_limit).collect();
        (actions, MlpTape { inputs, squashed, rows })
    }

    fn mlp_backward(&self, net: &MlpShape, params: &[f32], tape: &MlpTape, grad_actions: &[f32]) -> Vec<f32> {
        let g_z: Vec<f32> = grad_actions.iter().zip(&tape.squashed).map(|(g, s)| g * net.act_limit * (1.0 - s * s)).collect();
        let mut grad = vec![0.0f32; net.n_params];
        critic::backward(params, &net.layers, &tape.inputs, tape.rows, &g_z, Some(grad.as_mut_slice()), false, self.precision);
        grad
    }
}

/// Every critic layer's input, per critic (critic 2's empty after [`Kernels::q1_forward`]).
pub struct CriticTape {
    inputs: [Vec<Vec<f32>>; 2],
    rows: usize,
}

/// `f` applied element-wise to `a` and `b`.
fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> Arc<Vec<f32>> {
    Arc::new(a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect())
}

impl Kernels for CpuKernels {
    type Vector = Arc<Vec<f32>>;
    type ActorTape = ActorTape;
    type CriticTape = CriticTape;
    type MlpTape = MlpTape;

    fn upload(&self, values: &[f32]) -> Self::Vector {
        Arc::new(values.to_vec())
    }

    fn download(&self, v: &Self::Vector) -> Vec<f32> {
        v.to_vec()
    }

    fn all_reduce_mean(&self, v: &mut Self::Vector, collective: &dyn Collective) -> Result<(), CollectiveError> {
        collective.all_reduce_mean(Arc::make_mut(v).as_mut_slice())
    }

    fn share(v: &Self::Vector) -> Self::Vector {
        Arc::clone(v)
    }

    fn actor_forward(&self, params: &Self::Vector, x: &Self::Vector, uniforms: Option<&Self::Vector>) -> (Self::Vector, Self::ActorTape) {
        match &self.actor {
            ActorNet::Spiking(shape) => {
                let (actions, tape) = actor::forward(shape, params, x, uniforms.map(|u| u.as_slice()), self.precision);
                (Arc::new(actions), ActorTape::Spiking(tape))
            }
            ActorNet::Dense(net) => {
                let (actions, tape) = self.mlp_forward(net, params, x);
                (Arc::new(actions), ActorTape::Dense(tape))
            }
        }
    }

    fn actor_backward(&self, params: &Self::Vector, tape: &Self::ActorTape, grad_actions: &Self::Vector) -> Self::Vector {
        match (&self.actor, tape) {
            (ActorNet::Spiking(shape), ActorTape::Spiking(tape)) => {
                let mut grad = vec![0.0f32; shape.n_params];
                actor::backward(shape, params, tape, grad_actions, &mut grad, self.precision);
                Arc::new(grad)
            }
            (ActorNet::Dense(net), ActorTape::Dense(tape)) => Arc::new(self.mlp_backward(net, params, tape, grad_actions)),
            _ => unreachable!("a tape of this backend's own actor"),
        }
    }

    fn actor_activity(&self, tape: &Self::ActorTape) -> Option<Self::Vector> {
        match (&self.actor, tape) {
            (ActorNet::Spiking(shape), ActorTape::Spiking(tape)) => Some(Arc::new(tape.activity(shape.spec.threshold))),
            _ => None,
        }
    }

    fn critics_forward(&self, params: &Self::Vector, x: &Self::Vector, a: &Self::Vector) -> (Self::Vector, Self::Vector, Self::CriticTape) {
        let (input, rows) = critic::joined(x, a, self.critic.obs_dim, self.critic.act_dim);
        let [layers1, layers2] = self.critic.critics();
        let (q1, inputs1) = critic::forward(params, layers1, input.clone(), rows, self.precision);
        let (q2, inputs2) = critic::forward(params, layers2, input, rows, self.precision);
        (Arc::new(q1), Arc::new(q2), CriticTape { inputs: [inputs1, inputs2], rows })
    }

    fn critics_backward(&self, params: &Self::Vector, tape: &Self::CriticTape, grad_q1: &Self::Vector, grad_q2: &Self::Vector) -> Self::Vector {
        // Every element is written: each layer's weights and biases.
        let mut grad = vec![0.0f32; self.critic.n_params];
        for ((layers, inputs), g_q) in self.critic.critics().into_iter().zip(&tape.inputs).zip([grad_q1, grad_q2]) {
            critic::backward(params, layers, inputs, tape.rows, g_q, Some(grad.as_mut_slice()), false, self.precision);
        }
        Arc::new(grad)
    }

    fn q1_forward(&self, params: &Self::Vector, x: &Self::Vector, a: &Self::Vector) -> (Self::Vector, Self::CriticTape) {
        let (input, rows) = critic::joined(x, a, self.critic.obs_dim, self.critic.act_dim);
        let (q1, inputs) = critic::forward(params, self.critic.critics()[0], input, rows, self.precision);
        (Arc::new(q1), CriticTape { inputs: [inputs, Vec::new()], rows })
    }

    fn q1_action_grad(&self, params: &Self::Vector, tape: &Self::CriticTape, grad_q1: &Self::Vector) -> Self::Vector {
        let g_input = critic::backward(params, self.critic.critics()[0], &tape.inputs[0], tape.rows, grad_q1, None, true, self.precision);
        let (od, ad) = (self.critic.obs_dim, self.critic.act_dim);
        Arc::new(g_input.chunks_exact(od + ad).flat_map(|row| row[od..].iter().copied()).collect())
    }

    fn proxy_forward(&self, params: &Self::Vector, x: &Self::Vector) -> (Self::Vector, MlpTape) {
        let (actions, tape) = self.mlp_forward(self.proxy(), params, x);
        (Arc::new(actions), tape)
    }

    fn proxy_backward(&self, params: &Self::Vector, tape: &MlpTape, grad_actions: &Self::Vector) -> Self::Vector {
        Arc::new(self.mlp_backward(self.proxy(), params, tape, grad_actions))
    }

    fn add_clipped(&self, a: &Self::Vector, eps: &Self::Vector, limit: f32) -> Self::Vector {
        zip_map(a, eps, |a, e| (a + e).clamp(-limit, limit))
    }

    fn td_target(&self, r: &Self::Vector, d: &Self::Vector, gamma: f32, q1: &Self::Vector, q2: &Self::Vector) -> Self::Vector {
        Arc::new(r.iter().zip(d.iter()).zip(q1.iter().zip(q2.iter())).map(|((&r, &d), (&q1, &q2))| r + (1.0 - d) * gamma * q1.min(q2)).collect())
    }

    fn sub(&self, a: &Self::Vector, b: &Self::Vector) -> Self::Vector {
        zip_map(a, b, |a, b| a - b)
    }

    fn scale(&self, a: &Self::Vector, s: f32) -> Self::Vector {
        Arc::new(a.iter().map(|x| x * s).collect())
    }

    fn filled(&self, len: usize, value: f32) -> Self::Vector {
        Arc::new(vec![value; len])
    }

    fn sum(&self, a: &Self::Vector) -> Self::Vector {
        Arc::new(vec![a.iter().sum()])
    }

    fn sum_squares(&self, a: &Self::Vector) -> Self::Vector {
        Arc::new(vec![a.iter().map(|x| x * x).sum()])
    }

    fn all_finite(&self, a: &Self::Vector) -> bool {
        a.iter().all(|x| x.is_finite())
    }

    fn add_assign(&self, a: &mut Self::Vector, b: &Self::Vector) {
        let a = Arc::make_mut(a);
        simd::dispatch(#[inline(always)] || a.iter_mut().zip(b.iter()).for_each(|(a, b)| *a += b));
    }

    fn adam_step(&self, adam: &mut Adam<Self::Vector>, params: &mut Self::Vector, grad: &Self::Vector) {
        let (bias1, bias2) = adam.next_step();
        let (b1, b2, eps) = (adam.beta1 as f32, adam.beta2 as f32, adam.eps as f32);
        let (step, bias2_sqrt) = ((-adam.lr / bias1) as f32, bias2.sqrt() as f32);
        let (p, m, v) = (Arc::make_mut(params), Arc::make_mut(&mut adam.m), Arc::make_mut(&mut adam.v));
        simd::dispatch(#[inline(always)] || {
            for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(grad.iter()) {
                *m += (1.0 - b1) * (g - *m);
                *v = *v * b2 + g * g * (1.0 - b2);
                *p += *m * step / (v.sqrt() / bias2_sqrt + eps);
            }
        });
    }

    fn lerp(&self, target: &mut Self::Vector, online: &Self::Vector, w: f32) {
        let t = Arc::make_mut(target);
        simd::dispatch(#[inline(always)] || t.iter_mut().zip(online.iter()).for_each(|(t, o)| *t += w * (o - *t)));
    }
}
