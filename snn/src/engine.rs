//! Event-driven PopSAN inference on the CPU.
//!
//! Spikes are binary, so a layer's input current is the sum of the weight columns of the
//! neurons that fired: each spike adds one contiguous column (weights are stored transposed,
//! input-major), silent neurons cost nothing, and no multiplication happens between layers.
//! All buffers are allocated once; `act` allocates nothing.

use crate::rng::SplitMix;
use crate::{Encoding, OpCounts, ParamSet, PopSanSpec, SnnError};

/// A connection layer: transposed weights (`in × out`, input-major) and biases.
#[derive(Debug, Clone)]
struct Dense {
    n_out: usize,
    wt: Weights,
    bias: Vec<f32>,
}

/// Weights in the precision they arrived in: a `ParamSet` sent in bfloat16 holds only
/// bf16-representable values, and keeping them as bf16 halves the memory each spike reads,
/// with the same result.
#[derive(Debug, Clone)]
enum Weights {
    F32(Vec<f32>),
    Bf16(Vec<u16>),
}

/// A stored weight, widened to f32 exactly.
trait Weight: Copy {
    fn widen(self) -> f32;
}

impl Weight for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

impl Weight for u16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from_bits((self as u32) << 16)
    }
}

/// State of one spiking layer.
#[derive(Debug, Clone)]
struct Neurons {
    current: Vec<f32>,
    voltage: Vec<f32>,
    /// Last timestep's spikes (0/1) for the voltage reset.
    fired: Vec<f32>,
    /// Indices of this timestep's spikes.
    spikes: Vec<u32>,
}

impl Neurons {
    fn new(n: usize) -> Self {
        Self { current: vec![0.0; n], voltage: vec![0.0; n], fired: vec![0.0; n], spikes: Vec::with_capacity(n) }
    }

    fn reset(&mut self) {
        self.current.fill(0.0);
        self.voltage.fill(0.0);
        self.fired.fill(0.0);
        self.spikes.clear();
    }
}

/// A PopSAN ready to act; see the crate docs for the function it computes.
#[derive(Debug, Clone)]
pub struct PopSan {
    spec: PopSanSpec,
    version: u64,
    obs_mean: Vec<f32>,
    obs_inv_std: Vec<f32>,
    enc_mean: Vec<f32>,
    enc_inv_std: Vec<f32>,
    layers: Vec<Dense>,
    dec_w: Vec<f32>,
    dec_b: Vec<f32>,
    // Working state.
    activation: Vec<f32>,
    enc_voltage: Vec<f32>,
    enc_spikes: Vec<u32>,
    neurons: Vec<Neurons>,
    out_counts: Vec<f32>,
    rng: SplitMix,
    last: OpCounts,
    total: OpCounts,
    /// `[timestep][layer]` spike indices of the last call, when recording.
    recording: Option<Vec<Vec<Vec<u32>>>>,
}

impl PopSan {
    pub fn new(params: &ParamSet) -> Result<Self, SnnError> {
        let spec = params.spec().spiking().ok_or_else(|| SnnError::Spec("a dense actor's parameters, not a PopSAN's (use Policy)".into()))?.clone();
        spec.validate()?;
        let sizes = spec.layer_sizes();
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                let (n_in, n_out) = (w[0], w[1]);
                let weight = params.tensor(&format!("layers.{i}.weight")).expect("layout has every layer");
                let mut wt = vec![0.0; n_in * n_out];
                for o in 0..n_out {
                    for j in 0..n_in {
                        wt[j * n_out + o] = weight[o * n_in + j];
                    }
                }
                let bf16_exact = wt.iter().all(|w| w.to_bits() & 0xffff == 0);
                let wt = if bf16_exact { Weights::Bf16(wt.iter().map(|w| (w.to_bits() >> 16) as u16).collect()) } else { Weights::F32(wt) };
                let bias = params.tensor(&format!("layers.{i}.bias")).expect("layout has every layer").to_vec();
                Dense { n_out, wt, bias }
            })
            .collect::<Vec<_>>();
        let enc_std = params.tensor("encoder.std").expect("layout");
        if let Some(i) = enc_std.iter().position(|s| *s == 0.0) {
            return Err(SnnError::Value(format!("encoder std {i} is zero")));
        }
        let mut engine = Self {
            version: params.version,
            obs_mean: params.obs_mean().to_vec(),
            obs_inv_std: params.obs_std().iter().map(|s| 1.0 / s).collect(),
            enc_mean: params.tensor("encoder.mean").expect("layout").to_vec(),
            enc_inv_std: enc_std.iter().map(|s| 1.0 / s).collect(),
            dec_w: params.tensor("decoder.weight").expect("layout").to_vec(),
            dec_b: params.tensor("decoder.bias").expect("layout").to_vec(),
            activation: vec![0.0; sizes[0]],
            enc_voltage: vec![0.0; sizes[0]],
            enc_spikes: Vec::with_capacity(sizes[0]),
            neurons: sizes[1..].iter().map(|&n| Neurons::new(n)).collect(),
            out_counts: vec![0.0; spec.act_dim * spec.decoder_pop],
            rng: SplitMix::new(0x853C_49E6_748F_EA9B),
            last: OpCounts::new(sizes.len()),
            total: OpCounts::new(sizes.len()),
            recording: None,
            layers,
            spec,
        };
        engine.last.layer_neurons = sizes.clone();
        engine.total.layer_neurons = sizes;
        Ok(engine)
    }

    pub fn spec(&self) -> &PopSanSpec {
        &self.spec
    }

    /// Version of the `ParamSet` this engine was built from.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Keeps every layer's spikes of each call (for comparison with another implementation;
    /// recording allocates).
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on.then(Vec::new);
    }

    /// `[timestep][layer]` spike indices of the last call (layer 0 is the encoder), if
    /// recording.
    pub fn recorded_spikes(&self) -> Option<&[Vec<Vec<u32>>]> {
        self.recording.as_deref()
    }

    /// Seeds the Poisson encoder's random generator.
    pub fn seed(&mut self, seed: u64) {
        self.rng = SplitMix::new(seed);
    }

    /// Operation counts of the last `act` call.
    pub fn last_counts(&self) -> &OpCounts {
        &self.last
    }

    /// Operation counts summed over every call since construction or `reset_counts`.
    pub fn total_counts(&self) -> &OpCounts {
        &self.total
    }

    pub fn reset_counts(&mut self) {
        let sizes = self.total.layer_neurons.clone();
        self.total = OpCounts::new(sizes.len());
        self.total.layer_neurons = sizes;
    }

    /// One action for one observation (`out` has act_dim entries).
    pub fn act(&mut self, obs: &[f32], out: &mut [f32]) -> Result<(), SnnError> {
        self.run(obs, None, out)
    }

    /// [`PopSan::act`] with the Poisson encoder's uniforms given: `timesteps × encoder
    /// neurons` values in `[0, 1)`, timestep-major (to reproduce another implementation).
    pub fn act_with_uniforms(&mut self, obs: &[f32], uniforms: &[f32], out: &mut [f32]) -> Result<(), SnnError> {
        let need = self.spec.timesteps * self.activation.len();
        if uniforms.len() != need {
            return Err(SnnError::Shape(format!("{} uniforms, need {need}", uniforms.len())));
        }
        self.run(obs, Some(uniforms), out)
    }

    /// Actions for a batch: `obs` is `n × obs_dim`, `out` is `n × act_dim`, row-major.
    pub fn act_batch(&mut self, obs: &[f32], out: &mut [f32]) -> Result<(), SnnError> {
        let (od, ad) = (self.spec.obs_dim, self.spec.act_dim);
        if !obs.len().is_multiple_of(od) || out.len() != obs.len() / od * ad {
            return Err(SnnError::Shape(format!("batch of {} observation values for {} action values", obs.len(), out.len())));
        }
        for (o, a) in obs.chunks_exact(od).zip(out.chunks_exact_mut(ad)) {
            self.act(o, a)?;
        }
        Ok(())
    }

    fn run(&mut self, obs: &[f32], uniforms: Option<&[f32]>, out: &mut [f32]) -> Result<(), SnnError> {
        let spec = &self.spec;
        if obs.len() != spec.obs_dim || out.len() != spec.act_dim {
            return Err(SnnError::Shape(format!(
                "observation of {} and action of {} values; the network takes {} and gives {}",
                obs.len(),
                out.len(),
                spec.obs_dim,
                spec.act_dim
            )));
        }
        let (pop, dpop, act_limit) = (spec.encoder_pop, spec.decoder_pop, spec.act_limit);
        let (timesteps, th, enc_th) = (spec.timesteps, spec.threshold, spec.encoder_threshold);
        let (decay_c, decay_v) = (spec.current_decay, spec.voltage_decay);
        let poisson = spec.encoding == Encoding::Poisson || uniforms.is_some();
        if let Some(i) = obs.iter().position(|x| !x.is_finite()) {
            return Err(SnnError::Value(format!("observation[{i}] is {}", obs[i])));
        }

        // Normalise (clip ±3) and encode with Gaussian receptive fields.
        for (i, &o) in obs.iter().enumerate() {
            let x = ((o - self.obs_mean[i]) * self.obs_inv_std[i]).clamp(-3.0, 3.0);
            for k in i * pop..(i + 1) * pop {
                let z = (x - self.enc_mean[k]) * self.enc_inv_std[k];
                self.activation[k] = (-0.5 * z * z).exp();
            }
        }
        let mut counts = std::mem::take(&mut self.last);
        counts.clear();
        counts.encoder_macs = 3 * self.activation.len() as u64;
        self.enc_voltage.fill(0.0);
        for n in &mut self.neurons {
            n.reset();
        }
        self.out_counts.fill(0.0);
        if let Some(r) = &mut self.recording {
            r.clear();
        }

        for t in 0..timesteps {
            // Encoder spikes.
            self.enc_spikes.clear();
            if poisson {
                for k in 0..self.activation.len() {
                    let u = match uniforms {
                        Some(us) => us[t * self.activation.len() + k],
                        None => self.rng.next_f32(),
                    };
                    if u < self.activation[k] {
                        self.enc_spikes.push(k as u32);
                    }
                }
            } else {
                let mut count = 0;
                self.enc_spikes.resize(self.activation.len(), 0);
                for (k, (v, a)) in self.enc_voltage.iter_mut().zip(&self.activation).enumerate() {
                    *v += a;
                    let fired = *v > enc_th;
                    *v -= if fired { enc_th } else { 0.0 };
                    self.enc_spikes[count] = k as u32;
                    count += fired as usize;
                }
                self.enc_spikes.truncate(count);
            }
            counts.spikes[0] += self.enc_spikes.len() as u64;

            // Spiking layers, each fed by the previous layer's spikes of this timestep.
            for l in 0..self.layers.len() {
                let (before, after) = self.neurons.split_at_mut(l);
                let input: &[u32] = if l == 0 { &self.enc_spikes } else { &before[l - 1].spikes };
                let dense = &self.layers[l];
                let n = &mut after[0];
                layer_step(n, dense, input, decay_c, decay_v, th);
                counts.sops += (input.len() * dense.n_out) as u64;
                counts.spikes[l + 1] += n.spikes.len() as u64;
            }
            let last = self.neurons.last().expect("at least one layer");
            for &o in &last.spikes {
                self.out_counts[o as usize] += 1.0;
            }
            if let Some(r) = &mut self.recording {
                r.push(std::iter::once(self.enc_spikes.clone()).chain(self.neurons.iter().map(|n| n.spikes.clone())).collect());
            }
        }
        counts.neuron_updates = (timesteps * counts.layer_neurons.iter().sum::<usize>()) as u64;

        // Decode: firing rates, per-action weighted sum + bias, tanh, scale.
        let inv_t = 1.0 / timesteps as f32;
        for (i, a) in out.iter_mut().enumerate() {
            let mut s = self.dec_b[i];
            for k in 0..dpop {
                s += self.dec_w[i * dpop + k] * self.out_counts[i * dpop + k] * inv_t;
            }
            *a = s.tanh() * act_limit;
        }
        counts.decoder_macs = (out.len() * dpop) as u64;
        counts.inferences = 1;
        self.total.add(&counts);
        self.last = counts;
        Ok(())
    }
}

/// One timestep of one spiking layer: current decay and bias, the event-driven synaptic input
/// `Σ_{j ∈ spikes} W[:, j]`, the membrane update, and the new spikes.
fn layer_step(n: &mut Neurons, dense: &Dense, input: &[u32], decay_c: f32, decay_v: f32, th: f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F, checked just above.
        unsafe { layer_step_avx512(n, dense, input, decay_c, decay_v, th) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { layer_step_avx2(n, dense, input, decay_c, decay_v, th) };
        return;
    }
    layer_step_portable(n, dense, input, decay_c, decay_v, th);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn layer_step_avx512(n: &mut Neurons, dense: &Dense, input: &[u32], decay_c: f32, decay_v: f32, th: f32) {
    // The same code, compiled for 16-wide vectors.
    layer_step_portable(n, dense, input, decay_c, decay_v, th);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn layer_step_avx2(n: &mut Neurons, dense: &Dense, input: &[u32], decay_c: f32, decay_v: f32, th: f32) {
    // The same code, compiled for 8-wide vectors.
    layer_step_portable(n, dense, input, decay_c, decay_v, th);
}

#[inline(always)]
fn layer_step_portable(n: &mut Neurons, dense: &Dense, input: &[u32], decay_c: f32, decay_v: f32, th: f32) {
    for (c, b) in n.current.iter_mut().zip(&dense.bias) {
        *c = decay_c * *c + b;
    }
    match &dense.wt {
        Weights::F32(wt) => accumulate(&mut n.current, wt, dense.n_out, input),
        Weights::Bf16(wt) => accumulate(&mut n.current, wt, dense.n_out, input),
    }
    // Membrane update; spikes gathered from a bit mask per 64 neurons (they are sparse).
    n.spikes.clear();
    let chunks = n.voltage.chunks_mut(64).zip(n.current.chunks(64)).zip(n.fired.chunks_mut(64));
    for (chunk, ((vs, cs), fs)) in chunks.enumerate() {
        let mut mask = 0u64;
        for (i, ((v, c), f)) in vs.iter_mut().zip(cs).zip(fs.iter_mut()).enumerate() {
            *v = decay_v * *v * (1.0 - *f) + c;
            let spike = *v > th;
            *f = if spike { 1.0 } else { 0.0 };
            mask |= (spike as u64) << i;
        }
        while mask != 0 {
            n.spikes.push((chunk * 64) as u32 + mask.trailing_zeros());
            mask &= mask - 1;
        }
    }
}

/// `current += Σ_{j ∈ spikes} wt[j]`, in register-sized blocks of the current so that each
/// spike costs only the loads of its weights.
#[inline(always)]
fn accumulate<W: Weight>(current: &mut [f32], wt: &[W], n_out: usize, input: &[u32]) {
    const BLOCK: usize = 64;
    let mut start = 0;
    while start < n_out {
        let len = BLOCK.min(n_out - start);
        if len == BLOCK {
            let mut acc = [0.0f32; BLOCK];
            acc.copy_from_slice(&current[start..start + BLOCK]);
            for &j in input {
                let column = &wt[j as usize * n_out + start..j as usize * n_out + start + BLOCK];
                for (a, w) in acc.iter_mut().zip(column) {
                    *a += w.widen();
                }
            }
            current[start..start + BLOCK].copy_from_slice(&acc);
        } else {
            for &j in input {
                let column = &wt[j as usize * n_out + start..j as usize * n_out + start + len];
                for (c, w) in current[start..start + len].iter_mut().zip(column) {
                    *c += w.widen();
                }
            }
        }
        start += len;
    }
}
