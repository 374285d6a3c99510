//! ReLU MLPs on plain slices — each twin critic, and the proxy target actor before its
//! `tanh`: one sgemm per layer with the bias and ReLU fused, and a backward pass that writes
//! straight into the flat gradient (three products per layer, the ReLU mask in one pass).

use super::blas::{self, Mat};
use super::simd;
use crate::Precision;
use crate::networks::Linear;

/// An MLP's output (`[B, out]`) and each layer's input (the last is the last hidden
/// activation).
pub fn forward(flat: &[f32], layers: &[Linear], input: Vec<f32>, rows: usize, precision: Precision) -> (Vec<f32>, Vec<Vec<f32>>) {
    let mut inputs = Vec::with_capacity(layers.len());
    let mut h = input;
    for (i, layer) in layers.iter().enumerate() {
        let (out, inp) = (layer.out, layer.inp);
        let (w, bias) = (&flat[layer.weight()], &flat[layer.bias()]);
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

/// Backward of [`forward`] from `∂loss/∂output` (`[B, out]`): writes the layers' gradient into
/// `grad` (a flat gradient, when given) and returns `∂loss/∂input` when asked for.
#[allow(clippy::too_many_arguments)]
pub fn backward(flat: &[f32], layers: &[Linear], inputs: &[Vec<f32>], rows: usize, g_q: &[f32], mut grad: Option<&mut [f32]>, input_grad: bool, precision: Precision) -> Vec<f32> {
    let mut g = g_q.to_vec();
    for (i, layer) in layers.iter().enumerate().rev() {
        let (out, inp) = (layer.out, layer.inp);
        let h = &inputs[i];
        if let Some(grad) = grad.as_deref_mut() {
            let (g_w, g_b) = grad[layer.offset..layer.bias().end].split_at_mut(out * inp);
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
        blas::gemm(precision, Mat::new(&g, rows, out), Mat::new(&flat[layer.weight()], out, inp), &mut g_h);
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

/// `[x, a]` row by row: the critics' input.
pub fn joined(x: &[f32], a: &[f32], obs_dim: usize, act_dim: usize) -> (Vec<f32>, usize) {
    let rows = a.len() / act_dim.max(1);
    let mut input = Vec::with_capacity(rows * (obs_dim + act_dim));
    for (xr, ar) in x.chunks_exact(obs_dim.max(1)).zip(a.chunks_exact(act_dim.max(1))).take(rows) {
        input.extend_from_slice(xr);
        input.extend_from_slice(ar);
    }
    (input, rows)
}
