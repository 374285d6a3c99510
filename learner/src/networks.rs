//! The networks' shapes and flat parameter layouts, whichever backend computes them.
//!
//! - The spiking actor: PopSAN in [`spikerl_snn::layout`]'s order (encoder means and stds,
//!   each layer's weight and bias, the decoder), so a learner's vector is a `ParamSet`'s.
//! - The twin critics: two `(obs, act) → Q` ReLU MLPs, critic 1's layers then critic 2's,
//!   each layer's weight `[out, in]` then its bias, so that one optimiser step and one Polyak
//!   update cover both.

use std::ops::Range;

use spikerl_snn::{PopSanSpec, TensorInfo, layout};
use tch::{Device, Kind, Tensor};

use crate::config::Surrogate;

/// The spiking actor's spec and where each of its tensors lies in the flat vector.
#[derive(Debug, Clone)]
pub struct ActorShape {
    pub spec: PopSanSpec,
    pub layout: Vec<TensorInfo>,
    pub n_params: usize,
    /// The spike's pseudo-derivative in the backward pass.
    pub surrogate: Surrogate,
    /// λ of the output membranes' penalty ([`crate::Td3Config::membrane_reg`]).
    pub membrane_reg: f32,
}

impl ActorShape {
    /// PopSAN's shape, trained with its rectangular surrogate.
    pub fn new(spec: PopSanSpec) -> Self {
        let layout = layout(&spec);
        let n_params = layout.last().map_or(0, |t| t.offset + t.len());
        Self { spec, layout, n_params, surrogate: Surrogate::Rectangle, membrane_reg: 0.0 }
    }

    pub fn with_surrogate(self, surrogate: Surrogate) -> Self {
        Self { surrogate, ..self }
    }

    pub fn with_membrane_reg(self, membrane_reg: f32) -> Self {
        Self { membrane_reg, ..self }
    }

    /// `∂penalty/∂v` per unit of `relu(|v − th| − 0.5)·sign(v − th)` for an output population
    /// of `rows` samples: λ's mean over `T · rows · n_out` squared distances, differentiated.
    pub fn membrane_reg_scale(&self, rows: usize) -> f32 {
        let n_out = self.spec.act_dim * self.spec.decoder_pop;
        2.0 * self.membrane_reg / (self.spec.timesteps * rows.max(1) * n_out) as f32
    }

    /// A named tensor's place in the flat vector.
    pub fn span(&self, name: &str) -> Range<usize> {
        let info = self.info(name);
        info.offset..info.offset + info.len()
    }

    pub fn info(&self, name: &str) -> &TensorInfo {
        self.layout.iter().find(|t| t.name == name).expect("name in the actor's layout")
    }

    /// Spiking layers (hidden and output), each with a weight and a bias.
    pub fn n_layers(&self) -> usize {
        self.spec.hidden.len() + 1
    }
}

/// One linear layer's place in the critics' flat vector.
#[derive(Debug, Clone, Copy)]
pub struct Linear {
    pub offset: usize,
    pub out: usize,
    pub inp: usize,
}

impl Linear {
    pub fn weight(&self) -> Range<usize> {
        self.offset..self.offset + self.out * self.inp
    }

    pub fn bias(&self) -> Range<usize> {
        self.offset + self.out * self.inp..self.offset + self.out * self.inp + self.out
    }
}

/// The twin critics' layers.
#[derive(Debug, Clone)]
pub struct CriticShape {
    layers: Vec<Linear>,
    pub n_params: usize,
    pub obs_dim: usize,
    pub act_dim: usize,
}

impl CriticShape {
    pub fn new(obs_dim: usize, act_dim: usize, hidden: &[usize]) -> Self {
        let mut sizes = vec![obs_dim + act_dim];
        sizes.extend(hidden);
        sizes.push(1);
        let mut layers = Vec::new();
        let mut offset = 0;
        for _ in 0..2 {
            for w in sizes.windows(2) {
                layers.push(Linear { offset, out: w[1], inp: w[0] });
                offset += w[1] * w[0] + w[1];
            }
        }
        Self { layers, n_params: offset, obs_dim, act_dim }
    }

    /// Critic 1's layers, then critic 2's.
    pub fn critics(&self) -> [&[Linear]; 2] {
        let half = self.layers.len() / 2;
        [&self.layers[..half], &self.layers[half..]]
    }

    pub fn layers(&self) -> &[Linear] {
        &self.layers
    }

    /// PyTorch's initialisation of both critics (see [`linear_init`]).
    pub fn init(&self, device: Device) -> Tensor {
        linear_init(&self.layers, device)
    }
}

/// PyTorch's `nn.Linear` initialisation of `layers`, `U(±1/√fan_in)` for weights and biases,
/// drawn from libtorch's generator on `device` (seed it with `tch::manual_seed`).
pub fn linear_init(layers: &[Linear], device: Device) -> Tensor {
    let parts: Vec<Tensor> = layers
        .iter()
        .map(|l| {
            let bound = 1.0 / (l.inp as f64).sqrt();
            (Tensor::rand([(l.out * l.inp + l.out) as i64], (Kind::Float, device)) * 2.0 - 1.0) * bound
        })
        .collect();
    Tensor::cat(&parts, 0)
}

/// An `obs → act` ReLU MLP with a `tanh` output times the action limit: the dense actor, and
/// the proxy target actor.
#[derive(Debug, Clone)]
pub struct MlpShape {
    pub layers: Vec<Linear>,
    pub n_params: usize,
    pub act_limit: f32,
}

impl MlpShape {
    pub fn new(obs_dim: usize, act_dim: usize, hidden: &[usize], act_limit: f32) -> Self {
        let mut sizes = vec![obs_dim];
        sizes.extend(hidden);
        sizes.push(act_dim);
        let mut layers = Vec::new();
        let mut offset = 0;
        for w in sizes.windows(2) {
            layers.push(Linear { offset, out: w[1], inp: w[0] });
            offset += w[1] * w[0] + w[1];
        }
        Self { layers, n_params: offset, act_limit }
    }

    pub fn act_dim(&self) -> usize {
        self.layers.last().map_or(0, |l| l.out)
    }
}

/// The actor a learner trains: spiking (PopSAN) or dense (an MLP of the same hidden widths).
#[derive(Debug, Clone)]
pub enum ActorNet {
    Spiking(ActorShape),
    Dense(MlpShape),
}

impl ActorNet {
    /// The network of `spec`; a spiking one with PopSAN's rectangular surrogate.
    pub fn of(spec: &spikerl_snn::ActorSpec) -> Self {
        match spec {
            spikerl_snn::ActorSpec::Spiking(s) => Self::Spiking(ActorShape::new(s.clone())),
            spikerl_snn::ActorSpec::Dense(d) => Self::Dense(MlpShape::new(d.obs_dim, d.act_dim, &d.hidden, d.act_limit)),
        }
    }

    pub fn n_params(&self) -> usize {
        match self {
            Self::Spiking(s) => s.n_params,
            Self::Dense(m) => m.n_params,
        }
    }
}

impl From<ActorShape> for ActorNet {
    fn from(s: ActorShape) -> Self {
        Self::Spiking(s)
    }
}

impl From<MlpShape> for ActorNet {
    fn from(m: MlpShape) -> Self {
        Self::Dense(m)
    }
}
