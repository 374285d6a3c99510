//! TD3's twin critics: two `(obs, act) → Q` ReLU MLPs whose parameters are one flat tensor
//! (one optimiser step and one Polyak update for both).

use tch::{Device, Kind, Tensor};

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

    fn mlp(&self, flat: &Tensor, layers: &[(i64, i64, i64)], input: &Tensor, precision: Precision) -> Tensor {
        let mut h = input.shallow_clone();
        for (i, &(offset, out, inp)) in layers.iter().enumerate() {
            let w = flat.narrow(0, offset, out * inp).view([out, inp]);
            let b = flat.narrow(0, offset + out * inp, out);
            h = match precision {
                Precision::F32 => h.linear(&w, Some(&b)),
                Precision::Bf16 => h.to_kind(Kind::BFloat16).linear(&w.to_kind(Kind::BFloat16), Some(&b.to_kind(Kind::BFloat16))).to_kind(Kind::Float),
            };
            if i + 1 < layers.len() {
                h = h.relu();
            }
        }
        h.squeeze_dim(-1)
    }

    /// `(Q1, Q2)`, each `[B]`, for normalised observations `x` and actions `a`.
    pub fn forward(&self, flat: &Tensor, x: &Tensor, a: &Tensor, precision: Precision) -> (Tensor, Tensor) {
        let input = Tensor::cat(&[x, a], 1);
        let half = self.layers.len() / 2;
        (self.mlp(flat, &self.layers[..half], &input, precision), self.mlp(flat, &self.layers[half..], &input, precision))
    }

    /// Q1 alone (the actor's objective).
    pub fn q1(&self, flat: &Tensor, x: &Tensor, a: &Tensor, precision: Precision) -> Tensor {
        let input = Tensor::cat(&[x, a], 1);
        self.mlp(flat, &self.layers[..self.layers.len() / 2], &input, precision)
    }
}
