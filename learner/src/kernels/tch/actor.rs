//! The PopSAN actor as tensor ops (what CUDA runs): a layer's synaptic input for all T
//! timesteps is one matrix product (`[T·B, in] × Wᵀ`) — a neuron's current depends only on the
//! input spikes, never on its own — and the LIF recurrence forward and its surrogate backward
//! each run a few ops per timestep over `[B, n]`. The backward is three products per layer
//! (`∂W = gIᵀ·S`, `∂S = gI·W`, and the bias sum).
//!
//! Gradients, with `sg(v) = 1{|v − th| < 0.5}` the rectangular surrogate:
//! - LIF, reverse in time: `∂s_t = g_t − dv·v_t·∂v_{t+1}`, `∂v_t = sg(v_t)·∂s_t +
//!   dv·(1 − s_t)·∂v_{t+1}` (+ the membrane penalty's `∂/∂v_t` on the output population),
//!   `∂c_t = ∂v_t + dc·∂c_{t+1}`, `∂I_t = ∂c_t`.
//! - Deterministic encoder (straight-through, `v −= th·s` included): `∂v_t = ∂s_t + (1 −
//!   th)·∂v_{t+1}`, `∂A = Σ_t ∂v_t`; Poisson: `∂A = Σ_t ∂s_t`.

use spikerl_snn::{Encoding, PopSanSpec};
use tch::{Kind, Tensor};

use super::mm;
use crate::Precision;
use crate::config::Surrogate;
use crate::kernels::SURROGATE_HALF_WIDTH;
use crate::networks::ActorShape;

/// What the forward pass keeps for the backward pass.
pub struct ActorTape {
    /// Normalised observations `[B, obs_dim]`.
    x: Tensor,
    /// Encoder activations `[B, obs_dim·pop]`.
    activation: Tensor,
    /// Spikes of the encoder and every layer, `[T, B, n]`.
    spikes: Vec<Tensor>,
    /// Membrane voltages of every layer, `[T, B, n]`.
    voltages: Vec<Tensor>,
    /// Output firing rates `[B, act_dim·pop]`.
    rates: Tensor,
    /// `tanh` of the decoder output `[B, act_dim]`.
    squashed: Tensor,
    poisson: bool,
}

impl ActorTape {
    /// [`crate::kernels::Kernels::actor_activity`] of this pass, on the tape's device.
    pub fn activity(&self, threshold: f32) -> Tensor {
        let mut parts = vec![self.spikes[0].mean(Kind::Float).view([1])];
        for (s, v) in self.spikes[1..].iter().zip(&self.voltages) {
            parts.push(s.mean(Kind::Float).view([1]));
            parts.push((v - threshold as f64).abs().lt(SURROGATE_HALF_WIDTH as f64).to_kind(Kind::Float).mean(Kind::Float).view([1]));
        }
        Tensor::cat(&parts, 0)
    }
}

/// A named parameter of `flat` as a view in its PyTorch shape.
fn view(shape: &ActorShape, flat: &Tensor, name: &str) -> Tensor {
    let info = shape.info(name);
    let dims: Vec<i64> = info.shape.iter().map(|&d| d as i64).collect();
    flat.narrow(0, info.offset as i64, info.len() as i64).view(dims.as_slice())
}

/// Actions `[B, act_dim]` for normalised observations `x` (`[B, obs_dim]`); Poisson encoding
/// draws from `uniforms` (`[T, B, encoder neurons]`).
pub fn forward(shape: &ActorShape, flat: &Tensor, x: &Tensor, precision: Precision, uniforms: Option<&Tensor>) -> (Tensor, ActorTape) {
    let spec = &shape.spec;
    let (b, t_steps) = (x.size()[0], spec.timesteps as i64);
    let (obs_dim, pop) = (spec.obs_dim as i64, spec.encoder_pop as i64);
    let (act_dim, dpop) = (spec.act_dim as i64, spec.decoder_pop as i64);
    let z = (x.unsqueeze(-1) - view(shape, flat, "encoder.mean").unsqueeze(0)) / view(shape, flat, "encoder.std").unsqueeze(0);
    let activation = (z.square() * -0.5).exp().view([b, obs_dim * pop]);

    let poisson = spec.encoding == Encoding::Poisson || uniforms.is_some();
    let enc_spikes = if poisson {
        let u = match uniforms {
            Some(u) => u.shallow_clone(),
            None => Tensor::rand([t_steps, b, obs_dim * pop], (Kind::Float, x.device())),
        };
        u.lt_tensor(&activation.unsqueeze(0)).to_kind(Kind::Float)
    } else {
        let th = spec.encoder_threshold as f64;
        let mut v = activation.zeros_like();
        let mut steps = Vec::with_capacity(t_steps as usize);
        for _ in 0..t_steps {
            v += &activation;
            let s = v.gt(th).to_kind(Kind::Float);
            v -= &s * th;
            steps.push(s);
        }
        Tensor::stack(&steps, 0)
    };

    let mut spikes = vec![enc_spikes];
    let mut voltages = Vec::new();
    for l in 0..spec.hidden.len() + 1 {
        let w = view(shape, flat, &format!("layers.{l}.weight"));
        let bias = view(shape, flat, &format!("layers.{l}.bias"));
        let input = spikes.last().expect("encoder spikes");
        let n_in = input.size()[2];
        let synaptic = mm(precision, &input.view([t_steps * b, n_in]), &w.tr()).view([t_steps, b, -1]);
        let (s, v) = lif_forward(&synaptic, &bias, spec);
        spikes.push(s);
        voltages.push(v);
    }

    let rates = spikes.last().expect("output spikes").sum_dim_intlist([0i64].as_slice(), false, Kind::Float) / t_steps as f64;
    let dec_w = view(shape, flat, "decoder.weight");
    let pre = (rates.view([b, act_dim, dpop]) * dec_w.unsqueeze(0)).sum_dim_intlist([-1i64].as_slice(), false, Kind::Float)
        + view(shape, flat, "decoder.bias");
    let squashed = pre.tanh();
    let actions = &squashed * spec.act_limit as f64;
    let tape = ActorTape { x: x.shallow_clone(), activation, spikes, voltages, rates, squashed, poisson };
    (actions, tape)
}

/// The gradient w.r.t. the flat parameters from `∂loss/∂actions` (`[B, act_dim]`).
pub fn backward(shape: &ActorShape, flat: &Tensor, tape: &ActorTape, grad_actions: &Tensor, precision: Precision) -> Tensor {
    let spec = &shape.spec;
    let (b, t_steps) = (tape.x.size()[0], spec.timesteps as i64);
    let (obs_dim, pop) = (spec.obs_dim as i64, spec.encoder_pop as i64);
    let (act_dim, dpop) = (spec.act_dim as i64, spec.decoder_pop as i64);
    let n_layers = spec.hidden.len() + 1;
    let mut grads: Vec<(String, Tensor)> = Vec::new();

    // Decoder.
    let g_pre: Tensor = grad_actions * spec.act_limit as f64 * (1.0 - tape.squashed.square());
    let rates = tape.rates.view([b, act_dim, dpop]);
    grads.push(("decoder.weight".into(), (g_pre.unsqueeze(-1) * &rates).sum_dim_intlist([0i64].as_slice(), false, Kind::Float)));
    grads.push(("decoder.bias".into(), g_pre.sum_dim_intlist([0i64].as_slice(), false, Kind::Float)));
    let g_rates = (g_pre.unsqueeze(-1) * view(shape, flat, "decoder.weight").unsqueeze(0)).view([b, act_dim * dpop]);
    let mut g_spikes = (g_rates / t_steps as f64).unsqueeze(0).expand([t_steps, b, act_dim * dpop], false).contiguous();

    // Spiking layers, last to first.
    for l in (0..n_layers).rev() {
        // The membrane penalty acts on the output population only.
        let reg = if l == n_layers - 1 { shape.membrane_reg_scale(b as usize) } else { 0.0 };
        let g_current = lif_backward(&g_spikes, &tape.spikes[l + 1], &tape.voltages[l], spec, shape.surrogate, reg);
        let n_out = g_current.size()[2];
        let input = &tape.spikes[l];
        let n_in = input.size()[2];
        let g2 = g_current.view([t_steps * b, n_out]);
        let w = view(shape, flat, &format!("layers.{l}.weight"));
        grads.push((format!("layers.{l}.weight"), mm(precision, &g2.tr(), &input.view([t_steps * b, n_in]))));
        grads.push((format!("layers.{l}.bias"), g2.sum_dim_intlist([0i64].as_slice(), false, Kind::Float)));
        g_spikes = mm(precision, &g2, &w).view([t_steps, b, n_in]);
    }

    // Encoder: straight-through spikes back to the receptive-field activations.
    let g_activation = if tape.poisson {
        g_spikes.sum_dim_intlist([0i64].as_slice(), false, Kind::Float)
    } else {
        let keep = 1.0 - spec.encoder_threshold as f64;
        let mut g_v = g_spikes.get(t_steps - 1);
        let mut total = g_v.shallow_clone();
        for t in (0..t_steps - 1).rev() {
            g_v = g_spikes.get(t) + g_v * keep;
            total += &g_v;
        }
        total
    };
    let std = view(shape, flat, "encoder.std").unsqueeze(0);
    let z = (tape.x.unsqueeze(-1) - view(shape, flat, "encoder.mean").unsqueeze(0)) / &std;
    // dA/dμ = A·z/σ, dA/dσ = A·z²/σ.
    let g_az = g_activation.view([b, obs_dim, pop]) * tape.activation.view([b, obs_dim, pop]) * &z / &std;
    grads.push(("encoder.mean".into(), g_az.sum_dim_intlist([0i64].as_slice(), false, Kind::Float)));
    grads.push(("encoder.std".into(), (g_az * z).sum_dim_intlist([0i64].as_slice(), false, Kind::Float)));

    let ordered: Vec<Tensor> = shape
        .layout
        .iter()
        .map(|info| grads.iter().find(|(n, _)| *n == info.name).expect("a gradient for every tensor").1.reshape([-1]))
        .collect();
    Tensor::cat(&ordered, 0)
}

/// LIF layer over all timesteps: synaptic input `[T, B, n]` and bias `[n]` → (spikes,
/// voltages), each `[T, B, n]`.
fn lif_forward(synaptic: &Tensor, bias: &Tensor, spec: &PopSanSpec) -> (Tensor, Tensor) {
    let (dc, dv, th) = (spec.current_decay as f64, spec.voltage_decay as f64, spec.threshold as f64);
    let size = synaptic.size();
    let mut c = synaptic.get(0).zeros_like();
    let mut v = c.zeros_like();
    let mut s = c.zeros_like();
    let (mut ss, mut vs) = (Vec::new(), Vec::new());
    for t in 0..size[0] {
        c = &c * dc + synaptic.get(t) + bias;
        v = &v * dv * (1.0 - &s) + &c;
        s = v.gt(th).to_kind(Kind::Float);
        ss.push(s.shallow_clone());
        vs.push(v.shallow_clone());
    }
    (Tensor::stack(&ss, 0), Tensor::stack(&vs, 0))
}

/// Surrogate backward of [`lif_forward`]: `∂loss/∂spikes` → `∂loss/∂synaptic input`, with
/// `reg · relu(|v − th| − 0.5)·sign(v − th)` added to every `∂v` (the membrane penalty).
fn lif_backward(g_spikes: &Tensor, spikes: &Tensor, voltages: &Tensor, spec: &PopSanSpec, sg: Surrogate, reg: f32) -> Tensor {
    let (dc, dv, th) = (spec.current_decay as f64, spec.voltage_decay as f64, spec.threshold as f64);
    let size = spikes.size();
    let mut gv_next = g_spikes.get(0).zeros_like();
    let mut gc_next = gv_next.zeros_like();
    let mut out = Vec::new();
    for t in (0..size[0]).rev() {
        let (vt, st) = (voltages.get(t), spikes.get(t));
        let x = &vt - th;
        let surrogate = match sg {
            Surrogate::Rectangle => x.abs().lt(SURROGATE_HALF_WIDTH as f64).to_kind(Kind::Float),
            Surrogate::Arctan => ((&x * std::f64::consts::PI).square() + 1.0).reciprocal(),
            Surrogate::FastSigmoid => (x.abs() * 4.0 + 1.0).square().reciprocal(),
        };
        let g_s = g_spikes.get(t) - &vt * dv * &gv_next;
        let mut g_v = surrogate * g_s + (1.0 - st) * dv * &gv_next;
        if reg != 0.0 {
            g_v += (x.abs() - SURROGATE_HALF_WIDTH as f64).relu() * x.sign() * reg as f64;
        }
        let g_c = &g_v + &gc_next * dc;
        out.push(g_c.shallow_clone());
        gv_next = g_v;
        gc_next = g_c;
    }
    out.reverse();
    Tensor::stack(&out, 0)
}
