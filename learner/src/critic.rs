//! TD3's twin critics: two `(obs, act) → Q` ReLU MLPs whose parameters are one flat tensor
//! (one optimiser step and one Polyak update for both).
//!
//! The backward pass is written out (three products per layer, the ReLU mask in one op) and
//! writes straight into one flat gradient: autograd through views of a flat tensor would
//! zero-fill and add a parameter-sized gradient for every view, every update.

use tch::{Device, Kind, Tensor};

use crate::blas::{self, Mat};
use crate::cpu::{cpu_values, cpu_values_mut, on_cpu_f32, simd};
use crate::popsan::Precision;

/// Shapes of the twin critics; parameters are passed in (online or target).
#[derive(Debug, Clone)]
pub struct TwinCritic {
    /// `(offset, out, in)` of each linear layer: critic 1's layers, then critic 2's.
    layers: Vec<(i64, i64, i64)>,
    n_params: i64,
}

impl TwinCritic {
    pub fn new(obs_dim: usize, act_dim: usize, hidden: &[usize]) -> Self {
        let mut sizes = vec![(obs_dim + act_dim) as i64];
        sizes.extend(hidden.iter().map(|&h| h as i64));
        sizes.push(1);
        let mut layers = Vec::new();
        let mut offset = 0;
        for _ in 0..2 {
            for w in sizes.windows(2) {
                layers.push((offset, w[1], w[0]));
                offset += w[1] * w[0] + w[1];
            }
        }
        Self { layers, n_params: offset }
    }

    pub fn n_params(&self) -> usize {
        self.n_params as usize
    }

    /// PyTorch's `nn.Linear` initialisation, `U(±1/√fan_in)` for weights and biases, drawn
    /// from tch's generator (seed it with `tch::manual_seed`).
    pub fn init(&self, device: Device) -> Tensor {
        let parts: Vec<Tensor> = self
            .layers
            .iter()
            .map(|&(_, out, inp)| {
                let bound = 1.0 / (inp as f64).sqrt();
                (Tensor::rand([out * inp + out], (Kind::Float, device)) * 2.0 - 1.0) * bound
            })
            .collect();
        Tensor::cat(&parts, 0)
    }

    fn weight(flat: &Tensor, (offset, out, inp): (i64, i64, i64)) -> Tensor {
        flat.narrow(0, offset, out * inp).view([out, inp])
    }

    fn bias(flat: &Tensor, (offset, out, inp): (i64, i64, i64)) -> Tensor {
        flat.narrow(0, offset + out * inp, out)
    }

    /// Q `[B]`, and each layer's input (`[B, in]`, the last is the last hidden activation).
    fn mlp(&self, flat: &Tensor, layers: &[(i64, i64, i64)], input: &Tensor, precision: Precision) -> (Tensor, Vec<Tensor>) {
        let mut inputs = Vec::with_capacity(layers.len());
        let mut h = input.shallow_clone();
        for (i, &layer) in layers.iter().enumerate() {
            let (w, b) = (Self::weight(flat, layer), Self::bias(flat, layer));
            let z = match precision {
                Precision::F32 => h.linear(&w, Some(&b)),
                Precision::Bf16 => precision.mm(&h, &w.tr()) + b,
            };
            inputs.push(h);
            h = if i + 1 < layers.len() { z.relu() } else { z };
        }
        (h.squeeze_dim(-1), inputs)
    }

    /// Backward of [`TwinCritic::mlp`] from `∂loss/∂Q` (`[B]`): writes the parameter gradient
    /// into `grad` (the flat gradient, when given) and returns `∂loss/∂input`.
    fn mlp_backward(&self, flat: &Tensor, layers: &[(i64, i64, i64)], inputs: &[Tensor], g_q: &Tensor, precision: Precision, grad: Option<&Tensor>) -> Tensor {
        let mut g = g_q.unsqueeze(-1);
        for (i, &layer) in layers.iter().enumerate().rev() {
            let h = &inputs[i];
            if let Some(grad) = grad {
                Self::weight(grad, layer).copy_(&precision.mm(&g.tr(), h));
                Self::bias(grad, layer).copy_(&g.sum_dim_intlist([0i64].as_slice(), false, Kind::Float));
            }
            let g_h = precision.mm(&g, &Self::weight(flat, layer));
            // The ReLU passes gradient where its output (this layer's input) is positive.
            g = if i > 0 { h.threshold_backward(&g_h, 0.0) } else { g_h };
        }
        g
    }

    /// [`TwinCritic::mlp`] on plain slices: one sgemm per layer, the bias and ReLU in one
    /// pass. Returns Q (`[B]`) and each layer's input.
    fn mlp_cpu(&self, flat: &[f32], layers: &[(i64, i64, i64)], input: Vec<f32>, rows: usize, precision: Precision) -> (Vec<f32>, Vec<Vec<f32>>) {
        let mut inputs = Vec::with_capacity(layers.len());
        let mut h = input;
        for (i, &(offset, out, inp)) in layers.iter().enumerate() {
            let (offset, out, inp) = (offset as usize, out as usize, inp as usize);
            let (w, bias) = (&flat[offset..offset + out * inp], &flat[offset + out * inp..offset + out * inp + out]);
            let mut z = vec![0.0f32; rows * out];
            blas::gemm(precision, Mat::new(&h, rows, inp), Mat::new(w, out, inp).t(), &mut z);
            let hidden = i + 1 < layers.len();
            simd::dispatch(#[inline(always)] || {
                for row in z.chunks_exact_mut(out) {
                    for (z, b) in row.iter_mut().zip(bias) {
                        *z = if hidden { (*z + b).max(0.0) } else { *z + b };
                    }
                }
            });
            inputs.push(h);
            h = z;
        }
        (h, inputs)
    }

    /// [`TwinCritic::mlp_backward`] on plain slices; `∂loss/∂input` only when asked for.
    #[allow(clippy::too_many_arguments)]
    fn mlp_backward_cpu(&self, flat: &[f32], layers: &[(i64, i64, i64)], inputs: &[Vec<f32>], rows: usize, g_q: &[f32], mut grad: Option<&mut [f32]>, input_grad: bool, precision: Precision) -> Vec<f32> {
        let mut g = g_q.to_vec();
        for (i, &(offset, out, inp)) in layers.iter().enumerate().rev() {
            let (offset, out, inp) = (offset as usize, out as usize, inp as usize);
            let h = &inputs[i];
            if let Some(grad) = grad.as_deref_mut() {
                let (g_w, g_b) = grad[offset..offset + out * inp + out].split_at_mut(out * inp);
                blas::gemm(precision, Mat::new(&g, rows, out).t(), Mat::new(h, rows, inp), g_w);
                g_b.fill(0.0);
                for row in g.chunks_exact(out) {
                    for (acc, x) in g_b.iter_mut().zip(row) {
                        *acc += x;
                    }
                }
            }
            if i == 0 && !input_grad {
                return Vec::new();
            }
            let mut g_h = vec![0.0f32; rows * inp];
            blas::gemm(precision, Mat::new(&g, rows, out), Mat::new(&flat[offset..offset + out * inp], out, inp), &mut g_h);
            if i > 0 {
                // The ReLU passes gradient where its output (this layer's input) is positive.
                simd::dispatch(#[inline(always)] || {
                    for (g, &x) in g_h.iter_mut().zip(h) {
                        if x <= 0.0 {
                            *g = 0.0;
                        }
                    }
                });
            }
            g = g_h;
        }
        g
    }

    /// Whether these tensors take the slice path (the CPU's).
    fn on_slices(tensors: &[&Tensor]) -> bool {
        tensors.iter().all(|t| on_cpu_f32(t))
    }

    /// `[x, a]` row by row.
    fn joined(x: &Tensor, a: &Tensor) -> (Vec<f32>, usize) {
        let (xs, as_) = (cpu_values(x), cpu_values(a));
        let rows = x.size()[0] as usize;
        let (od, ad) = (xs.len() / rows.max(1), as_.len() / rows.max(1));
        let mut input = Vec::with_capacity(rows * (od + ad));
        for (xr, ar) in xs.chunks_exact(od.max(1)).zip(as_.chunks_exact(ad.max(1))).take(rows) {
            input.extend_from_slice(xr);
            input.extend_from_slice(ar);
        }
        (input, rows)
    }

    /// `(Q1, Q2)`, each `[B]`, for normalised observations `x` and actions `a`.
    pub fn forward(&self, flat: &Tensor, x: &Tensor, a: &Tensor, precision: Precision) -> (Tensor, Tensor) {
        let (q1, q2, _) = self.forward_tape(flat, x, a, precision);
        (q1, q2)
    }

    /// [`TwinCritic::forward`], keeping what [`TwinCritic::backward`] needs.
    pub fn forward_tape(&self, flat: &Tensor, x: &Tensor, a: &Tensor, precision: Precision) -> (Tensor, Tensor, CriticTape) {
        let half = self.layers.len() / 2;
        let (x, a) = (x.contiguous(), a.contiguous());
        if Self::on_slices(&[flat, &x, &a]) {
            let (input, rows) = Self::joined(&x, &a);
            let flat_v = cpu_values(flat);
            let (q1, inputs1) = self.mlp_cpu(flat_v, &self.layers[..half], input.clone(), rows, precision);
            let (q2, inputs2) = self.mlp_cpu(flat_v, &self.layers[half..], input, rows, precision);
            let tape = CriticTape { inputs: [Layers::Slices(inputs1), Layers::Slices(inputs2)], rows };
            return (Tensor::from_slice(&q1), Tensor::from_slice(&q2), tape);
        }
        tch::no_grad(|| {
            let input = Tensor::cat(&[&x, &a], 1);
            let (q1, inputs1) = self.mlp(flat, &self.layers[..half], &input, precision);
            let (q2, inputs2) = self.mlp(flat, &self.layers[half..], &input, precision);
            (q1, q2, CriticTape { inputs: [Layers::Tensors(inputs1), Layers::Tensors(inputs2)], rows: input.size()[0] as usize })
        })
    }

    /// The flat gradient of both critics from `∂loss/∂Q1` and `∂loss/∂Q2`.
    pub fn backward(&self, flat: &Tensor, tape: &CriticTape, g_q1: &Tensor, g_q2: &Tensor, precision: Precision) -> Tensor {
        let half = self.layers.len() / 2;
        if let [Layers::Slices(inputs1), Layers::Slices(inputs2)] = &tape.inputs {
            let (g_q1, g_q2) = (g_q1.contiguous(), g_q2.contiguous());
            // Every element is written: each layer's weights and biases.
            let mut grad = Tensor::empty([self.n_params], (Kind::Float, Device::Cpu));
            let g = cpu_values_mut(&mut grad);
            let flat = cpu_values(flat);
            self.mlp_backward_cpu(flat, &self.layers[..half], inputs1, tape.rows, cpu_values(&g_q1), Some(g), false, precision);
            self.mlp_backward_cpu(flat, &self.layers[half..], inputs2, tape.rows, cpu_values(&g_q2), Some(g), false, precision);
            return grad;
        }
        let [Layers::Tensors(inputs1), Layers::Tensors(inputs2)] = &tape.inputs else { unreachable!("a tape is all slices or all tensors") };
        tch::no_grad(|| {
            let grad = flat.zeros_like();
            let _ = self.mlp_backward(flat, &self.layers[..half], inputs1, g_q1, precision, Some(&grad));
            let _ = self.mlp_backward(flat, &self.layers[half..], inputs2, g_q2, precision, Some(&grad));
            grad
        })
    }

    /// Q1 alone (the actor's objective), keeping what [`TwinCritic::q1_action_grad`] needs.
    pub fn q1_tape(&self, flat: &Tensor, x: &Tensor, a: &Tensor, precision: Precision) -> (Tensor, CriticTape) {
        let half = self.layers.len() / 2;
        let (x, a) = (x.contiguous(), a.contiguous());
        if Self::on_slices(&[flat, &x, &a]) {
            let (input, rows) = Self::joined(&x, &a);
            let (q1, inputs) = self.mlp_cpu(cpu_values(flat), &self.layers[..half], input, rows, precision);
            return (Tensor::from_slice(&q1), CriticTape { inputs: [Layers::Slices(inputs), Layers::Slices(Vec::new())], rows });
        }
        tch::no_grad(|| {
            let input = Tensor::cat(&[&x, &a], 1);
            let (q1, inputs) = self.mlp(flat, &self.layers[..half], &input, precision);
            (q1, CriticTape { inputs: [Layers::Tensors(inputs), Layers::Tensors(Vec::new())], rows: input.size()[0] as usize })
        })
    }

    /// `∂loss/∂a` (`[B, act_dim]`) from `∂loss/∂Q1`, through a [`TwinCritic::q1_tape`].
    pub fn q1_action_grad(&self, flat: &Tensor, tape: &CriticTape, g_q1: &Tensor, act_dim: usize, precision: Precision) -> Tensor {
        let half = self.layers.len() / 2;
        let width = self.layers[0].2;
        match &tape.inputs[0] {
            Layers::Slices(inputs) => {
                let g_q1 = g_q1.contiguous();
                let g_input = self.mlp_backward_cpu(cpu_values(flat), &self.layers[..half], inputs, tape.rows, cpu_values(&g_q1), None, true, precision);
                Tensor::from_slice(&g_input).view([tape.rows as i64, width]).narrow(1, width - act_dim as i64, act_dim as i64)
            }
            Layers::Tensors(inputs) => tch::no_grad(|| {
                let g_input = self.mlp_backward(flat, &self.layers[..half], inputs, g_q1, precision, None);
                g_input.narrow(1, width - act_dim as i64, act_dim as i64)
            }),
        }
    }
}

/// What the critics' backward pass needs: every layer's input, per critic.
pub struct CriticTape {
    inputs: [Layers; 2],
    rows: usize,
}

/// A critic's layer inputs: tensors, or plain vectors on the slice path.
enum Layers {
    Tensors(Vec<Tensor>),
    Slices(Vec<Vec<f32>>),
}


#[cfg(test)]
mod tests {
    use super::*;

    /// The same twin MLP recorded by autograd, as the reference.
    fn autograd_q(critic: &TwinCritic, flat: &Tensor, input: &Tensor, which: usize) -> Tensor {
        let half = critic.layers.len() / 2;
        let layers = &critic.layers[which * half..(which + 1) * half];
        let mut h = input.shallow_clone();
        for (i, &layer) in layers.iter().enumerate() {
            h = h.linear(&TwinCritic::weight(flat, layer), Some(&TwinCritic::bias(flat, layer)));
            if i + 1 < layers.len() {
                h = h.relu();
            }
        }
        h.squeeze_dim(-1)
    }

    #[test]
    fn written_out_gradients_equal_autograd() {
        tch::manual_seed(3);
        let critic = TwinCritic::new(5, 2, &[32, 16]);
        let flat = critic.init(Device::Cpu);
        let (x, a, y) = (Tensor::randn([7, 5], (Kind::Float, Device::Cpu)), Tensor::randn([7, 2], (Kind::Float, Device::Cpu)), Tensor::randn([7], (Kind::Float, Device::Cpu)));

        let leaf = flat.detach().set_requires_grad(true);
        let a_leaf = a.detach().set_requires_grad(true);
        let input = Tensor::cat(&[&x, &a_leaf], 1);
        let (r1, r2) = (autograd_q(&critic, &leaf, &input, 0), autograd_q(&critic, &leaf, &input, 1));
        let loss = (&r1 - &y).square().mean(Kind::Float) + (&r2 - &y).square().mean(Kind::Float);
        let reference = Tensor::run_backward(&[&loss], &[&leaf], false, false).remove(0);
        let reference_pi = Tensor::run_backward(&[&(-autograd_q(&critic, &leaf, &input, 0).mean(Kind::Float))], &[&a_leaf], false, false).remove(0);

        // The slice path (CPU, fp32, BLAS) and the tensor-op path every other device runs.
        for tensor_ops in [false, true] {
            crate::cpu::FORCE_TENSOR_OPS.store(tensor_ops, std::sync::atomic::Ordering::Relaxed);
            let (q1, q2, tape) = critic.forward_tape(&flat, &x, &a, Precision::F32);
            assert!(q1.allclose(&r1.detach(), 1e-6, 1e-6, false) && q2.allclose(&r2.detach(), 1e-6, 1e-6, false));
            let grad = critic.backward(&flat, &tape, &((&q1 - &y) * (2.0 / 7.0)), &((&q2 - &y) * (2.0 / 7.0)), Precision::F32);
            assert!(grad.allclose(&reference, 1e-5, 1e-6, false), "max diff {}", (&grad - &reference).abs().max().double_value(&[]));
            // Every layer of both critics gets a gradient.
            for &(offset, out, inp) in &critic.layers {
                assert!(grad.narrow(0, offset, out * inp).abs().sum(Kind::Float).double_value(&[]) > 0.0);
            }

            let (q, tape) = critic.q1_tape(&flat, &x, &a, Precision::F32);
            let g_a = critic.q1_action_grad(&flat, &tape, &q.full_like(-1.0 / 7.0), 2, Precision::F32);
            assert!(g_a.allclose(&reference_pi, 1e-5, 1e-6, false));
        }
        crate::cpu::FORCE_TENSOR_OPS.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// At TD3's sizes the 256×256 products run in bf16 (the small ones stay fp32 on the CPU,
    /// see `CPU_BF16_MIN_MACS`) and the gradient stays close to fp32's.
    #[test]
    fn bf16_gradients_stay_close_to_fp32() {
        tch::manual_seed(4);
        let critic = TwinCritic::new(11, 3, &[256, 256]);
        let flat = critic.init(Device::Cpu);
        let b = 64;
        let (x, a, y) = (Tensor::randn([b, 11], (Kind::Float, Device::Cpu)), Tensor::randn([b, 3], (Kind::Float, Device::Cpu)), Tensor::randn([b], (Kind::Float, Device::Cpu)));
        let grad = |precision| {
            let (q1, q2, tape) = critic.forward_tape(&flat, &x, &a, precision);
            critic.backward(&flat, &tape, &((&q1 - &y) * (2.0 / b as f64)), &((&q2 - &y) * (2.0 / b as f64)), precision)
        };
        let (g32, g16) = (grad(Precision::F32), grad(Precision::Bf16));
        let rel = (&g16 - &g32).norm().double_value(&[]) / g32.norm().double_value(&[]);
        assert!(rel > 1e-5, "bf16 products did not run (relative difference {rel})");
        assert!(rel < 0.05, "bf16 gradient off by {rel}");
    }
}
