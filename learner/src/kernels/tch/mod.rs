//! The tensor backend: libtorch ops on any device — what CUDA runs (on the CPU, the tests
//! compare it with [`crate::kernels::CpuKernels`]). Each pass is a few ops per layer and
//! timestep; on a GPU the update is launch-bound, so nothing here reads a value back.

mod actor;
mod critic;

use spikerl_collective::{Collective, CollectiveError};
use tch::{Device, Kind, Tensor};

use super::{CPU_BF16_MIN_MACS, Kernels};
use crate::Precision;
use crate::networks::{ActorNet, CriticShape, MlpShape};
use crate::optim::Adam;

/// The tensor backend on one device.
pub struct TchKernels {
    actor: ActorNet,
    critic: CriticShape,
    proxy: Option<MlpShape>,
    precision: Precision,
    device: Device,
}

impl TchKernels {
    pub fn new(actor: impl Into<ActorNet>, critic: CriticShape, precision: Precision, device: Device) -> Self {
        Self { actor: actor.into(), critic, proxy: None, precision, device }
    }

    /// `tanh(MLP(x)) × act_limit` and what its backward pass needs.
    fn mlp_forward(&self, net: &MlpShape, params: &Tensor, x: &Tensor) -> (Tensor, MlpTape) {
        let (z, inputs) = critic::forward(params, &net.layers, &self.rows(x, net.layers[0].inp), self.precision);
        let squashed = z.view([-1, net.act_dim() as i64]).tanh();
        let actions = (&squashed * net.act_limit as f64).view([-1]);
        (actions, MlpTape { inputs, squashed })
    }

    fn mlp_backward(&self, net: &MlpShape, params: &Tensor, tape: &MlpTape, grad_actions: &Tensor) -> Tensor {
        let g_z = self.rows(grad_actions, net.act_dim()) * net.act_limit as f64 * (1.0 - tape.squashed.square());
        let grad = params.zeros_like();
        let _ = critic::backward(params, &net.layers, &tape.inputs, &g_z, self.precision, Some(&grad));
        grad
    }

    /// With the proxy target actor's passes.
    pub fn with_proxy(self, proxy: MlpShape) -> Self {
        Self { proxy: Some(proxy), ..self }
    }

    fn proxy(&self) -> &MlpShape {
        self.proxy.as_ref().expect("a backend built with a proxy target actor")
    }

    pub fn device(&self) -> Device {
        self.device
    }

    fn rows(&self, v: &Tensor, cols: usize) -> Tensor {
        v.view([-1, cols as i64])
    }

    fn joined(&self, x: &Tensor, a: &Tensor) -> Tensor {
        Tensor::cat(&[self.rows(x, self.critic.obs_dim), self.rows(a, self.critic.act_dim)], 1)
    }
}

/// `a × b` (2-D) with an fp32 result: in bf16 when so asked and, on the CPU, when the product
/// is large enough for bf16 to pay; in fp32 otherwise.
pub(crate) fn mm(precision: Precision, a: &Tensor, b: &Tensor) -> Tensor {
    let macs = a.size()[0] * a.size()[1] * b.size()[1];
    if precision == Precision::Bf16 && (a.device() != Device::Cpu || macs >= CPU_BF16_MIN_MACS as i64) {
        a.to_kind(Kind::BFloat16).mm(&b.to_kind(Kind::BFloat16)).to_kind(Kind::Float)
    } else {
        a.mm(b)
    }
}

/// What the critics' backward pass needs: every layer's input, per critic.
pub struct CriticTape {
    inputs: [Vec<Tensor>; 2],
}

/// An MLP's layer inputs and its `tanh` outputs.
pub struct MlpTape {
    inputs: Vec<Tensor>,
    squashed: Tensor,
}

/// The actor's forward pass, spiking or dense.
pub enum ActorTape {
    Spiking(actor::ActorTape),
    Dense(MlpTape),
}

impl Kernels for TchKernels {
    type Vector = Tensor;
    type ActorTape = ActorTape;
    type CriticTape = CriticTape;
    type MlpTape = MlpTape;

    fn upload(&self, values: &[f32]) -> Tensor {
        Tensor::from_slice(values).to_device(self.device)
    }

    fn download(&self, v: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(&v.detach().to_device(Device::Cpu).to_kind(Kind::Float).contiguous().view([-1])).expect("an fp32 tensor")
    }

    fn share(v: &Tensor) -> Tensor {
        v.shallow_clone()
    }

    fn all_reduce_mean(&self, v: &mut Tensor, collective: &dyn Collective) -> Result<(), CollectiveError> {
        if self.device.is_cuda() && v.kind() == Kind::Float && v.is_contiguous() {
            // SAFETY: a contiguous f32 tensor of this learner's device, which no other stream uses.
            if let Some(r) = unsafe { collective.all_reduce_mean_device(v.data_ptr().cast(), v.numel()) } {
                return r;
            }
        }
        let mut host = self.download(v);
        collective.all_reduce_mean(&mut host)?;
        *v = self.upload(&host);
        Ok(())
    }

    fn actor_forward(&self, params: &Tensor, x: &Tensor, uniforms: Option<&Tensor>) -> (Tensor, Self::ActorTape) {
        match &self.actor {
            ActorNet::Spiking(shape) => {
                let x = self.rows(x, shape.spec.obs_dim);
                let uniforms = uniforms.map(|u| u.view([shape.spec.timesteps as i64, x.size()[0], -1]));
                let (actions, tape) = actor::forward(shape, params, &x, self.precision, uniforms.as_ref());
                (actions.view([-1]), ActorTape::Spiking(tape))
            }
            ActorNet::Dense(net) => {
                let (actions, tape) = self.mlp_forward(net, params, x);
                (actions, ActorTape::Dense(tape))
            }
        }
    }

    fn actor_backward(&self, params: &Tensor, tape: &Self::ActorTape, grad_actions: &Tensor) -> Tensor {
        match (&self.actor, tape) {
            (ActorNet::Spiking(shape), ActorTape::Spiking(tape)) => actor::backward(shape, params, tape, &self.rows(grad_actions, shape.spec.act_dim), self.precision),
            (ActorNet::Dense(net), ActorTape::Dense(tape)) => self.mlp_backward(net, params, tape, grad_actions),
            _ => unreachable!("a tape of this backend's own actor"),
        }
    }

    fn actor_activity(&self, tape: &Self::ActorTape) -> Option<Tensor> {
        match (&self.actor, tape) {
            (ActorNet::Spiking(shape), ActorTape::Spiking(tape)) => Some(tape.activity(shape.spec.threshold)),
            _ => None,
        }
    }

    fn critics_forward(&self, params: &Tensor, x: &Tensor, a: &Tensor) -> (Tensor, Tensor, CriticTape) {
        let input = self.joined(x, a);
        let [layers1, layers2] = self.critic.critics();
        let (q1, inputs1) = critic::forward(params, layers1, &input, self.precision);
        let (q2, inputs2) = critic::forward(params, layers2, &input, self.precision);
        (q1, q2, CriticTape { inputs: [inputs1, inputs2] })
    }

    fn critics_backward(&self, params: &Tensor, tape: &CriticTape, grad_q1: &Tensor, grad_q2: &Tensor) -> Tensor {
        let grad = params.zeros_like();
        for ((layers, inputs), g_q) in self.critic.critics().into_iter().zip(&tape.inputs).zip([grad_q1, grad_q2]) {
            let _ = critic::backward(params, layers, inputs, g_q, self.precision, Some(&grad));
        }
        grad
    }

    fn q1_forward(&self, params: &Tensor, x: &Tensor, a: &Tensor) -> (Tensor, CriticTape) {
        let (q1, inputs) = critic::forward(params, self.critic.critics()[0], &self.joined(x, a), self.precision);
        (q1, CriticTape { inputs: [inputs, Vec::new()] })
    }

    fn q1_action_grad(&self, params: &Tensor, tape: &CriticTape, grad_q1: &Tensor) -> Tensor {
        let g_input = critic::backward(params, self.critic.critics()[0], &tape.inputs[0], grad_q1, self.precision, None);
        let (od, ad) = (self.critic.obs_dim as i64, self.critic.act_dim as i64);
        g_input.narrow(1, od, ad).contiguous().view([-1])
    }

    fn proxy_forward(&self, params: &Tensor, x: &Tensor) -> (Tensor, MlpTape) {
        self.mlp_forward(self.proxy(), params, x)
    }

    fn proxy_backward(&self, params: &Tensor, tape: &MlpTape, grad_actions: &Tensor) -> Tensor {
        self.mlp_backward(self.proxy(), params, tape, grad_actions)
    }

    fn add_clipped(&self, a: &Tensor, eps: &Tensor, limit: f32) -> Tensor {
        (a + eps).clamp(-limit as f64, limit as f64)
    }

    fn td_target(&self, r: &Tensor, d: &Tensor, gamma: f32, q1: &Tensor, q2: &Tensor) -> Tensor {
        r + (1.0 - d) * gamma as f64 * q1.minimum(q2)
    }

    fn sub(&self, a: &Tensor, b: &Tensor) -> Tensor {
        a - b
    }

    fn scale(&self, a: &Tensor, s: f32) -> Tensor {
        a * s as f64
    }

    fn filled(&self, len: usize, value: f32) -> Tensor {
        Tensor::full([len as i64], value as f64, (Kind::Float, self.device))
    }

    fn sum(&self, a: &Tensor) -> Tensor {
        a.sum(Kind::Float)
    }

    fn sum_squares(&self, a: &Tensor) -> Tensor {
        a.square().sum(Kind::Float)
    }

    fn all_finite(&self, a: &Tensor) -> bool {
        a.isfinite().all().int64_value(&[]) != 0
    }

    fn add_assign(&self, a: &mut Tensor, b: &Tensor) {
        *a = &*a + b;
    }

    fn adam_step(&self, adam: &mut Adam<Tensor>, params: &mut Tensor, grad: &Tensor) {
        let (bias1, bias2) = adam.next_step();
        tch::no_grad(|| {
            let _ = adam.m.lerp_(grad, 1.0 - adam.beta1);
            let _ = adam.v.g_mul_scalar_(adam.beta2);
            let _ = adam.v.g_add_(&(grad.square() * (1.0 - adam.beta2)));
            let denom = adam.v.sqrt() / bias2.sqrt() + adam.eps;
            let _ = params.addcdiv_(&(&adam.m * (-adam.lr / bias1)), &denom);
        });
    }

    fn lerp(&self, target: &mut Tensor, online: &Tensor, w: f32) {
        tch::no_grad(|| {
            let _ = target.lerp_(online, w as f64);
        });
    }
}
