//! The twin critics as tensor ops, with the backward pass written out (three products per
//! layer, the ReLU mask in one op) into one flat gradient: autograd through views of a flat
//! tensor would zero-fill and add a parameter-sized gradient for every view, every update.

use tch::{Kind, Tensor};

use super::mm;
use crate::Precision;
use crate::networks::Linear;

fn weight(flat: &Tensor, l: &Linear) -> Tensor {
    flat.narrow(0, l.offset as i64, (l.out * l.inp) as i64).view([l.out as i64, l.inp as i64])
}

fn bias(flat: &Tensor, l: &Linear) -> Tensor {
    flat.narrow(0, l.bias().start as i64, l.out as i64)
}

/// An MLP's output (`[B]` for one output, else `[B, out]`) and each layer's input (`[B, in]`; the last is the last hidden
/// activation).
pub fn forward(flat: &Tensor, layers: &[Linear], input: &Tensor, precision: Precision) -> (Tensor, Vec<Tensor>) {
    let mut inputs = Vec::with_capacity(layers.len());
    let mut h = input.shallow_clone();
    for (i, l) in layers.iter().enumerate() {
        let (w, b) = (weight(flat, l), bias(flat, l));
        let z = match precision {
            Precision::F32 => h.linear(&w, Some(&b)),
            Precision::Bf16 => mm(precision, &h, &w.tr()) + b,
        };
        inputs.push(h);
        h = if i + 1 < layers.len() { z.relu() } else { z };
    }
    (h.squeeze_dim(-1), inputs)
}

/// Backward of [`forward`] from `∂loss/∂output` (`[B]` for one output, else `[B, out]`):
/// writes the layers' gradient into `grad` (the flat gradient, when given) and returns
/// `∂loss/∂input`.
pub fn backward(flat: &Tensor, layers: &[Linear], inputs: &[Tensor], g_q: &Tensor, precision: Precision, grad: Option<&Tensor>) -> Tensor {
    let mut g = if g_q.dim() == 1 { g_q.unsqueeze(-1) } else { g_q.shallow_clone() };
    for (i, l) in layers.iter().enumerate().rev() {
        let h = &inputs[i];
        if let Some(grad) = grad {
            weight(grad, l).copy_(&mm(precision, &g.tr(), h));
            bias(grad, l).copy_(&g.sum_dim_intlist([0i64].as_slice(), false, Kind::Float));
        }
        let g_h = mm(precision, &g, &weight(flat, l));
        // The ReLU passes gradient where its output (this layer's input) is positive.
        g = if i > 0 { h.threshold_backward(&g_h, 0.0) } else { g_h };
    }
    g
}
