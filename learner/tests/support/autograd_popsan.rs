//! The reference the learner's kernels are checked against (tests and `popsan_bench`): PopSAN
//! as plain tch modules with its surrogate gradients recorded by autograd — the same function
//! as `spikerl_snn::PopSan`, and the gradients the hand-written backward passes must give.
//!
//! - Hidden and output neurons spike with `v > 0.5`; the gradient of the spike is the
//!   rectangle `1{|v − 0.5| < 0.5}` (PopSAN's pseudo-gradient).
//! - Encoder spikes (deterministic or Poisson) pass their gradient straight through to the
//!   receptive-field activation, so the means and stds learn.
//! - Mixed precision: master weights stay fp32 in the VarStore; with `Precision::Bf16` each
//!   layer's weights and input spikes are cast to bfloat16 for the matrix product (exact for
//!   0/1 spikes), neuron state stays fp32, and gradients come back fp32.

// Each test binary and the bench use part of it.
#![allow(dead_code)]

use spikerl_snn::{Encoding, ParamSet, PopSanSpec, Precision, SnnError};
use tch::{Device, Kind, Tensor, nn};

/// Spikes of every spiking layer at every timestep (`[timestep][layer]`, each `[batch,
/// neurons]`, 0/1), and the membrane voltages of the non-encoder layers (still in autograd's
/// graph).
pub struct Recording {
    pub spikes: Vec<Vec<Tensor>>,
    pub voltages: Vec<Vec<Tensor>>,
}

/// A PopSAN whose parameters live in a tch `VarStore`.
pub struct PopSanModule {
    spec: PopSanSpec,
    vs: nn::VarStore,
    enc_mean: Tensor,
    enc_std: Tensor,
    layers: Vec<(Tensor, Tensor)>,
    dec_w: Tensor,
    dec_b: Tensor,
    obs_mean: Tensor,
    obs_std: Tensor,
    pub version: u64,
}

fn tensor_of(values: &[f32], shape: &[usize], device: Device) -> Tensor {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(values).view(dims.as_slice()).to_device(device)
}

fn values_of(t: &Tensor) -> Vec<f32> {
    let flat = t.detach().to_kind(Kind::Float).to_device(Device::Cpu).contiguous().view([-1]);
    Vec::<f32>::try_from(&flat).expect("a float tensor converts to Vec<f32>")
}

/// A spiking nonlinearity: `v > th` forward, gradient `1{|v − th| < 0.5}` backward.
pub fn spike(v: &Tensor, th: f64) -> Tensor {
    let hard = v.gt(th).to_kind(Kind::Float);
    let window = (v - th + 0.5).clamp(0.0, 1.0);
    straight_through(&hard, &window)
}

/// `hard` in the forward pass, `d soft` in the backward pass.
fn straight_through(hard: &Tensor, soft: &Tensor) -> Tensor {
    hard.detach() + (soft - soft.detach())
}

impl PopSanModule {
    /// A module holding `params` (the learner's initialisation, or what it loads).
    pub fn from_param_set(params: &ParamSet, device: Device) -> Result<Self, SnnError> {
        let spec = params.spec().spiking().ok_or_else(|| SnnError::Spec("not a PopSAN".into()))?.clone();
        spec.validate()?;
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let var = |name: &str| -> Tensor {
            let info = params.layout().into_iter().find(|t| t.name == name).expect("layout name");
            let init = tensor_of(params.tensor(name).expect("layout name"), &info.shape, device);
            root.var_copy(&name.replace('.', "_"), &init)
        };
        let enc_mean = var("encoder.mean");
        let enc_std = var("encoder.std");
        let layers = (0..spec.hidden.len() + 1)
            .map(|i| (var(&format!("layers.{i}.weight")), var(&format!("layers.{i}.bias"))))
            .collect();
        let dec_w = var("decoder.weight");
        let dec_b = var("decoder.bias");
        let obs_mean = tensor_of(params.obs_mean(), &[spec.obs_dim], device);
        let obs_std = tensor_of(params.obs_std(), &[spec.obs_dim], device);
        Ok(Self { spec, vs, enc_mean, enc_std, layers, dec_w, dec_b, obs_mean, obs_std, version: params.version })
    }

    pub fn spec(&self) -> &PopSanSpec {
        &self.spec
    }

    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// Replaces the observation normaliser (not a trainable parameter).
    pub fn set_normalizer(&mut self, mean: &[f32], std: &[f32]) {
        let device = self.vs.device();
        self.obs_mean = tensor_of(mean, &[mean.len()], device);
        self.obs_std = tensor_of(std, &[std.len()], device);
    }

    /// The parameters in `ParamSet` layout, for the actors.
    pub fn to_param_set(&self) -> Result<ParamSet, SnnError> {
        let mut flat = values_of(&self.enc_mean);
        flat.extend(values_of(&self.enc_std));
        for (w, b) in &self.layers {
            flat.extend(values_of(w));
            flat.extend(values_of(b));
        }
        flat.extend(values_of(&self.dec_w));
        flat.extend(values_of(&self.dec_b));
        ParamSet::from_flat(self.spec.clone(), self.version, values_of(&self.obs_mean), values_of(&self.obs_std), flat)
    }

    /// Actions `[batch, act_dim]` for observations `[batch, obs_dim]`.
    pub fn forward(&self, obs: &Tensor, precision: Precision) -> Tensor {
        self.run(obs, precision, None, false).0
    }

    /// [`PopSanModule::forward`] with the Poisson encoder's uniforms given
    /// (`[timesteps, batch, encoder neurons]`), and every layer's spikes recorded.
    pub fn forward_recorded(&self, obs: &Tensor, precision: Precision, uniforms: Option<&Tensor>) -> (Tensor, Recording) {
        let (actions, recording) = self.run(obs, precision, uniforms, true);
        (actions, recording.expect("recording requested"))
    }

    fn run(&self, obs: &Tensor, precision: Precision, uniforms: Option<&Tensor>, record: bool) -> (Tensor, Option<Recording>) {
        let spec = &self.spec;
        let batch = obs.size()[0];
        let (pop, dpop) = (spec.encoder_pop as i64, spec.decoder_pop as i64);
        let (obs_dim, act_dim) = (spec.obs_dim as i64, spec.act_dim as i64);
        let options = (Kind::Float, obs.device());

        // Normalise, clip, and encode with Gaussian receptive fields: A is [batch, obs·pop].
        let x = ((obs - &self.obs_mean) / &self.obs_std).clamp(-3.0, 3.0);
        let z = (x.unsqueeze(-1) - self.enc_mean.view([1, obs_dim, pop])) / self.enc_std.view([1, obs_dim, pop]);
        let activation = (z.square() * -0.5).exp().view([batch, obs_dim * pop]);

        let sizes = spec.layer_sizes();
        let mut enc_v = Tensor::zeros([batch, sizes[0] as i64], options);
        let mut current: Vec<Tensor> = sizes[1..].iter().map(|&n| Tensor::zeros([batch, n as i64], options)).collect();
        let mut voltage: Vec<Tensor> = sizes[1..].iter().map(|&n| Tensor::zeros([batch, n as i64], options)).collect();
        let mut fired: Vec<Tensor> = sizes[1..].iter().map(|&n| Tensor::zeros([batch, n as i64], options)).collect();
        let mut out_sum = Tensor::zeros([batch, act_dim * dpop], options);
        let mut recording = record.then(|| Recording { spikes: Vec::new(), voltages: Vec::new() });
        let poisson = spec.encoding == Encoding::Poisson || uniforms.is_some();
        let (th, enc_th) = (spec.threshold as f64, spec.encoder_threshold as f64);

        for t in 0..spec.timesteps as i64 {
            let enc_spike = if poisson {
                let u = match uniforms {
                    Some(u) => u.get(t),
                    None => Tensor::rand_like(&activation),
                };
                straight_through(&u.lt_tensor(&activation).to_kind(Kind::Float), &activation)
            } else {
                enc_v = &enc_v + &activation;
                let spike = straight_through(&enc_v.gt(enc_th).to_kind(Kind::Float), &enc_v);
                enc_v = &enc_v - &spike * enc_th;
                spike
            };
            let mut input = enc_spike;
            let mut step_spikes = vec![input.detach()];
            let mut step_voltages = Vec::new();
            for (l, (w, b)) in self.layers.iter().enumerate() {
                let synaptic = match precision {
                    Precision::F32 => input.matmul(&w.tr()),
                    Precision::Bf16 => input.to_kind(Kind::BFloat16).matmul(&w.to_kind(Kind::BFloat16).tr()).to_kind(Kind::Float),
                };
                current[l] = &current[l] * spec.current_decay as f64 + synaptic + b;
                voltage[l] = &voltage[l] * spec.voltage_decay as f64 * (1.0 - &fired[l]) + &current[l];
                fired[l] = spike(&voltage[l], th);
                input = fired[l].shallow_clone();
                if record {
                    step_spikes.push(fired[l].detach());
                    // In the graph: a test's loss may depend on them (the membrane penalty).
                    step_voltages.push(voltage[l].shallow_clone());
                }
            }
            out_sum += &input;
            if let Some(r) = &mut recording {
                r.spikes.push(step_spikes);
                r.voltages.push(step_voltages);
            }
        }
        let rates = (out_sum / spec.timesteps as f64).view([batch, act_dim, dpop]);
        let decoded = (rates * self.dec_w.view([1, act_dim, dpop])).sum_dim_intlist([-1i64].as_slice(), false, Kind::Float) + &self.dec_b;
        (decoded.tanh() * spec.act_limit as f64, recording)
    }
}
