//! The PopSAN actor on plain slices (CPU): the same function and gradients as the tensor
//! backend's ([`crate::kernels::TchKernels`]), with every product an event-driven sum or one BLAS call, the
//! encoder, LIF layers and decoder each one pass, and the gradient written straight into the
//! flat parameter layout. At TD3's batch the tensor path spent a third of its time in tensor
//! ops' dispatch and copies (views, `cat`, the encoder's and decoder's small ops).

use spikerl_snn::{Encoding, PopSanSpec};

use super::blas::{self, Mat, round_bf16};
use super::events::{IndexSets, StripTable};
use super::simd;
use crate::Precision;
use crate::config::Surrogate;
use crate::kernels::SURROGATE_HALF_WIDTH;
use crate::networks::ActorShape;

/// What the forward pass keeps for the backward pass.
pub struct ActorTape {
    rows: usize,
    /// Normalised observations `[B, obs_dim]`.
    x: Vec<f32>,
    /// Encoder activations `[B, obs_dim·pop]`.
    activation: Vec<f32>,
    /// Spikes of the encoder and every layer, `[T, B, n]`.
    spikes: Vec<Vec<f32>>,
    /// Membrane voltages of every layer, `[T, B, n]`.
    voltages: Vec<Vec<f32>>,
    /// Output firing rates `[B, act_dim·pop]`.
    rates: Vec<f32>,
    /// `tanh` of the decoder output `[B, act_dim]`.
    squashed: Vec<f32>,
    poisson: bool,
}

impl ActorTape {
    /// [`crate::kernels::Kernels::actor_activity`] of this pass.
    pub fn activity(&self, threshold: f32) -> Vec<f32> {
        let rate = |s: &[f32]| s.iter().filter(|&&x| x != 0.0).count() as f32 / s.len().max(1) as f32;
        let mut out = vec![rate(&self.spikes[0])];
        for (s, v) in self.spikes[1..].iter().zip(&self.voltages) {
            let inside = v.iter().filter(|&&v| (v - threshold).abs() < SURROGATE_HALF_WIDTH).count();
            out.extend([rate(s), inside as f32 / v.len().max(1) as f32]);
        }
        out
    }
}

/// Actions `[B, act_dim]` for normalised observations `x` (`[B, obs_dim]`); Poisson encoding
/// draws from `uniforms` (`[T, B, obs_dim·pop]`).
pub fn forward(shape: &ActorShape, flat: &[f32], x: &[f32], uniforms: Option<&[f32]>, precision: Precision) -> (Vec<f32>, ActorTape) {
    let spec = &shape.spec;
    let rows = x.len() / spec.obs_dim;
    let t_steps = spec.timesteps;
    let (pop, n_enc) = (spec.encoder_pop, spec.obs_dim * spec.encoder_pop);
    let (mean, std) = (&flat[shape.span("encoder.mean")], &flat[shape.span("encoder.std")]);

    // Gaussian receptive fields, then the encoder's spikes.
    let mut activation = vec![0.0f32; rows * n_enc];
    for (a_row, x_row) in activation.chunks_exact_mut(n_enc).zip(x.chunks_exact(spec.obs_dim)) {
        for (k, a) in a_row.iter_mut().enumerate() {
            let z = (x_row[k / pop] - mean[k]) / std[k];
            *a = (-0.5 * z * z).exp();
        }
    }
    let poisson = spec.encoding == Encoding::Poisson || uniforms.is_some();
    let per_step = rows * n_enc;
    let mut enc = vec![0.0f32; t_steps * per_step];
    if poisson {
        let u = uniforms.expect("Poisson encoding needs its uniform draws");
        for (t, step) in enc.chunks_exact_mut(per_step).enumerate() {
            for ((s, &a), &u) in step.iter_mut().zip(&activation).zip(&u[t * per_step..(t + 1) * per_step]) {
                *s = if u < a { 1.0 } else { 0.0 };
            }
        }
    } else {
        let th = spec.encoder_threshold;
        let mut v = vec![0.0f32; per_step];
        for step in enc.chunks_exact_mut(per_step) {
            for ((s, v), &a) in step.iter_mut().zip(v.iter_mut()).zip(&activation) {
                *v += a;
                *s = if *v > th { 1.0 } else { 0.0 };
                *v -= *s * th;
            }
        }
    }

    let mut spikes = vec![enc];
    let mut voltages = Vec::new();
    for l in 0..spec.hidden.len() + 1 {
        let (w, bias) = (&flat[shape.span(&format!("layers.{l}.weight"))], &flat[shape.span(&format!("layers.{l}.bias"))]);
        let n_out = bias.len();
        let input = spikes.last().expect("encoder spikes");
        let n_in = input.len() / (t_steps * rows);
        let mut synaptic = vec![0.0f32; t_steps * rows * n_out];
        spikes_times_wt(input, n_in, w, n_out, &mut synaptic, precision);
        let mut s = vec![0.0f32; synaptic.len()];
        let mut v = vec![0.0f32; synaptic.len()];
        lif_forward(spec, &synaptic, bias, t_steps, &mut s, &mut v);
        spikes.push(s);
        voltages.push(v);
    }

    // Decoder: population firing rates, weighted per action, squashed.
    let (act_dim, dpop) = (spec.act_dim, spec.decoder_pop);
    let out = spikes.last().expect("output spikes");
    let per_step = rows * act_dim * dpop;
    let mut rates = vec![0.0f32; per_step];
    for step in out.chunks_exact(per_step) {
        for (r, s) in rates.iter_mut().zip(step) {
            *r += s;
        }
    }
    rates.iter_mut().for_each(|r| *r /= t_steps as f32);
    let (dec_w, dec_b) = (&flat[shape.span("decoder.weight")], &flat[shape.span("decoder.bias")]);
    let mut squashed = vec![0.0f32; rows * act_dim];
    for (sq, r_row) in squashed.chunks_exact_mut(act_dim).zip(rates.chunks_exact(act_dim * dpop)) {
        for (a, sq) in sq.iter_mut().enumerate() {
            let pre: f32 = r_row[a * dpop..(a + 1) * dpop].iter().zip(&dec_w[a * dpop..(a + 1) * dpop]).map(|(r, w)| r * w).sum::<f32>() + dec_b[a];
            *sq = pre.tanh();
        }
    }
    let actions = squashed.iter().map(|s| s * spec.act_limit).collect();
    let tape = ActorTape { rows, x: x.to_vec(), activation, spikes, voltages, rates, squashed, poisson };
    (actions, tape)
}

/// The gradient w.r.t. the flat parameters (written into `grad`, every element) from
/// `∂loss/∂actions` (`[B, act_dim]`).
pub fn backward(shape: &ActorShape, flat: &[f32], tape: &ActorTape, grad_actions: &[f32], grad: &mut [f32], precision: Precision) {
    let spec = &shape.spec;
    let (rows, t_steps) = (tape.rows, spec.timesteps);
    let (act_dim, dpop) = (spec.act_dim, spec.decoder_pop);

    // Decoder.
    let g_pre: Vec<f32> = grad_actions.iter().zip(&tape.squashed).map(|(g, s)| g * spec.act_limit * (1.0 - s * s)).collect();
    let dec_w = &flat[shape.span("decoder.weight")];
    {
        let g_w = &mut grad[shape.span("decoder.weight")];
        g_w.fill(0.0);
        for (g_row, r_row) in g_pre.chunks_exact(act_dim).zip(tape.rates.chunks_exact(act_dim * dpop)) {
            for (k, g) in g_w.iter_mut().enumerate() {
                *g += g_row[k / dpop] * r_row[k];
            }
        }
    }
    {
        let g_b = &mut grad[shape.span("decoder.bias")];
        g_b.fill(0.0);
        for g_row in g_pre.chunks_exact(act_dim) {
            for (g, x) in g_b.iter_mut().zip(g_row) {
                *g += x;
            }
        }
    }
    // Every timestep's output spikes count 1/T towards the rate.
    let n_dec = act_dim * dpop;
    let mut g_rates = vec![0.0f32; rows * n_dec];
    for (g_r, g_row) in g_rates.chunks_exact_mut(n_dec).zip(g_pre.chunks_exact(act_dim)) {
        for (k, g) in g_r.iter_mut().enumerate() {
            *g = g_row[k / dpop] * dec_w[k] / t_steps as f32;
        }
    }
    let mut g_spikes: Vec<f32> = g_rates.repeat(t_steps);

    // Spiking layers, last to first.
    for l in (0..spec.hidden.len() + 1).rev() {
        let (w_span, b_span) = (shape.span(&format!("layers.{l}.weight")), shape.span(&format!("layers.{l}.bias")));
        let n_out = b_span.len();
        let mut g_current = vec![0.0f32; g_spikes.len()];
        // The membrane penalty acts on the output population only.
        let reg = if l == spec.hidden.len() { shape.membrane_reg_scale(rows) } else { 0.0 };
        lif_backward(spec, shape.surrogate, reg, &g_spikes, &tape.spikes[l + 1], &tape.voltages[l], t_steps, &mut g_current);
        let input = &tape.spikes[l];
        let n_in = input.len() / (t_steps * rows);
        grad_times_spikes(&g_current, n_out, input, n_in, &mut grad[w_span.clone()], precision);
        let g_b = &mut grad[b_span];
        g_b.fill(0.0);
        for g_row in g_current.chunks_exact(n_out) {
            for (g, x) in g_b.iter_mut().zip(g_row) {
                *g += x;
            }
        }
        let mut g_in = vec![0.0f32; t_steps * rows * n_in];
        blas::gemm(precision, Mat::new(&g_current, t_steps * rows, n_out), Mat::new(&flat[w_span], n_out, n_in), &mut g_in);
        g_spikes = g_in;
    }

    // Encoder: straight-through spikes back to the receptive-field activations.
    let n_enc = spec.obs_dim * spec.encoder_pop;
    let per_step = rows * n_enc;
    let mut g_activation = vec![0.0f32; per_step];
    if tape.poisson {
        for step in g_spikes.chunks_exact(per_step) {
            for (g, x) in g_activation.iter_mut().zip(step) {
                *g += x;
            }
        }
    } else {
        // The membrane carries (1 − th) of its gradient back one step.
        let keep = 1.0 - spec.encoder_threshold;
        let mut g_v = vec![0.0f32; per_step];
        for step in g_spikes.chunks_exact(per_step).rev() {
            for ((gv, total), &g) in g_v.iter_mut().zip(g_activation.iter_mut()).zip(step) {
                *gv = g + *gv * keep;
                *total += *gv;
            }
        }
    }
    let (m_span, s_span) = (shape.span("encoder.mean"), shape.span("encoder.std"));
    let (mean, std) = (&flat[m_span.clone()], &flat[s_span.clone()]);
    let mut g_mean = vec![0.0f32; n_enc];
    let mut g_std = vec![0.0f32; n_enc];
    let pop = spec.encoder_pop;
    for ((g_row, a_row), x_row) in g_activation.chunks_exact(n_enc).zip(tape.activation.chunks_exact(n_enc)).zip(tape.x.chunks_exact(spec.obs_dim)) {
        for k in 0..n_enc {
            // dA/dμ = A·z/σ, dA/dσ = A·z²/σ.
            let z = (x_row[k / pop] - mean[k]) / std[k];
            let g_az = g_row[k] * a_row[k] * z / std[k];
            g_mean[k] += g_az;
            g_std[k] += g_az * z;
        }
    }
    grad[m_span].copy_from_slice(&g_mean);
    grad[s_span].copy_from_slice(&g_std);
}

/// Above this fraction of spiking inputs a BLAS product beats adding a weight row per spike
/// (Hopper end to end on this VM: event-driven only 249 env steps/s, always BLAS 266, switching
/// at 0.15 → 297, 0.3 → 302–317, 0.5 → 294).
const DENSE_ABOVE: f64 = 0.3;

/// Whether spikes are dense enough for a BLAS product.
fn dense(spikes: &[f32]) -> bool {
    let fired = simd::dispatch(#[inline(always)] || spikes.iter().filter(|&&x| x != 0.0).count());
    fired as f64 > DENSE_ABOVE * spikes.len() as f64
}

/// `out = S·Wᵀ` for binary spikes `S` (`[R, n_in]`) and `W` (`[n_out, n_in]`): each spike
/// adds one column of `W`, or one product in `precision` when spikes are dense.
fn spikes_times_wt(spikes: &[f32], n_in: usize, w: &[f32], n_out: usize, out: &mut [f32], precision: Precision) {
    let rows = spikes.len() / n_in;
    if dense(spikes) {
        return blas::gemm(precision, Mat::new(spikes, rows, n_in), Mat::new(w, n_out, n_in).t(), out);
    }
    StripTable::from_columns(&as_seen(w, precision), n_in, n_out).sum_sets(&IndexSets::of_rows(spikes, n_in), out);
}

/// `out = Gᵀ·S` (`[n_out, n_in]`) for gradients `G` (`[R, n_out]`) and binary spikes `S`
/// (`[R, n_in]`): column `j` sums the rows of `G` at which input `j` spiked.
fn grad_times_spikes(g: &[f32], n_out: usize, spikes: &[f32], n_in: usize, out: &mut [f32], precision: Precision) {
    let rows = spikes.len() / n_in;
    if dense(spikes) {
        return blas::gemm(precision, Mat::new(g, rows, n_out).t(), Mat::new(spikes, rows, n_in), out);
    }
    let mut by_input = vec![0.0f32; n_in * n_out];
    StripTable::from_rows(&as_seen(g, precision), rows, n_out).sum_sets(&IndexSets::of_columns(spikes, n_in), &mut by_input);
    for (j, row) in by_input.chunks_exact(n_out).enumerate() {
        for (i, &x) in row.iter().enumerate() {
            out[i * n_in + j] = x;
        }
    }
}

/// An operand as a product in `precision` sees it: rounded to bf16 in bf16 mode (the event
/// sums then add what a bf16 product would multiply; spikes are exact either way).
fn as_seen(values: &[f32], precision: Precision) -> std::borrow::Cow<'_, [f32]> {
    match precision {
        Precision::F32 => values.into(),
        Precision::Bf16 => values.iter().map(|&x| round_bf16(x)).collect::<Vec<f32>>().into(),
    }
}

/// LIF layer over all timesteps: synaptic input `[T, B, n]` and bias `[n]` → spikes and
/// voltages, each `[T, B, n]`.
fn lif_forward(spec: &PopSanSpec, input: &[f32], bias: &[f32], t_steps: usize, s_out: &mut [f32], v_out: &mut [f32]) {
    let (dc, dv, th) = (spec.current_decay, spec.voltage_decay, spec.threshold);
    let n = input.len() / t_steps;
    let width = bias.len();
    // State of every (batch row, neuron), carried across timesteps.
    let mut c = vec![0.0f32; n];
    let mut v = vec![0.0f32; n];
    let mut s = vec![0.0f32; n];
    simd::dispatch(#[inline(always)] || for t in 0..t_steps {
        let rows = t * n..(t + 1) * n;
        let state = c.chunks_exact_mut(width).zip(v.chunks_exact_mut(width)).zip(s.chunks_exact_mut(width));
        let io = input[rows.clone()].chunks_exact(width).zip(s_out[rows.clone()].chunks_exact_mut(width)).zip(v_out[rows].chunks_exact_mut(width));
        for (((c, v), s), ((i, so), vo)) in state.zip(io) {
            for k in 0..width {
                c[k] = dc * c[k] + i[k] + bias[k];
                v[k] = dv * v[k] * (1.0 - s[k]) + c[k];
                s[k] = if v[k] > th { 1.0 } else { 0.0 };
                so[k] = s[k];
                vo[k] = v[k];
            }
        }
    });
}

/// Surrogate backward of [`lif_forward`]: `∂loss/∂spikes` → `∂loss/∂synaptic input`, with
/// `reg · relu(|v − th| − 0.5)·sign(v − th)` added to every `∂v` (the membrane penalty).
#[allow(clippy::too_many_arguments)]
fn lif_backward(spec: &PopSanSpec, surrogate: Surrogate, reg: f32, g_spikes: &[f32], spikes: &[f32], voltages: &[f32], t_steps: usize, g_current: &mut [f32]) {
    // One loop per surrogate, so that each compiles to straight-line vector code; the
    // penalty's arithmetic only where there is one (the output layer, with --membrane-reg).
    let sg = move |x: f32| surrogate.grad(x);
    match (surrogate, reg != 0.0) {
        (Surrogate::Rectangle, false) => lif_backward_with::<false>(spec, |x| Surrogate::Rectangle.grad(x), reg, g_spikes, spikes, voltages, t_steps, g_current),
        (Surrogate::Arctan, false) => lif_backward_with::<false>(spec, |x| Surrogate::Arctan.grad(x), reg, g_spikes, spikes, voltages, t_steps, g_current),
        (Surrogate::FastSigmoid, false) => lif_backward_with::<false>(spec, |x| Surrogate::FastSigmoid.grad(x), reg, g_spikes, spikes, voltages, t_steps, g_current),
        (_, true) => lif_backward_with::<true>(spec, sg, reg, g_spikes, spikes, voltages, t_steps, g_current),
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lif_backward_with<const PENALTY: bool>(spec: &PopSanSpec, sg: impl Fn(f32) -> f32, reg: f32, g_spikes: &[f32], spikes: &[f32], voltages: &[f32], t_steps: usize, g_current: &mut [f32]) {
    let (dc, dv, th) = (spec.current_decay, spec.voltage_decay, spec.threshold);
    let n = spikes.len() / t_steps;
    let mut gv_next = vec![0.0f32; n];
    let mut gc_next = vec![0.0f32; n];
    simd::dispatch(#[inline(always)] || for t in (0..t_steps).rev() {
        let rows = t * n..(t + 1) * n;
        let step = g_spikes[rows.clone()].iter().zip(&spikes[rows.clone()]).zip(&voltages[rows.clone()]).zip(&mut g_current[rows]);
        for ((((&g, &st), &vt), out), (gv, gc)) in step.zip(gv_next.iter_mut().zip(gc_next.iter_mut())) {
            let g_s = g - dv * vt * *gv;
            let x = vt - th;
            let mut g_v = sg(x) * g_s + dv * (1.0 - st) * *gv;
            if PENALTY {
                g_v += reg * (x.abs() - SURROGATE_HALF_WIDTH).max(0.0).copysign(x);
            }
            let g_c = g_v + dc * *gc;
            *out = g_c;
            *gv = g_v;
            *gc = g_c;
        }
    });
}
