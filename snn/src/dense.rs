//! The dense actor: `obs → hidden… → act`, ReLU between layers, `tanh × act_limit` at the end
//! (CleanRL's TD3 actor). It runs beside the spiking actor in the same learner, actors and
//! reports, so that every comparison (return, time, energy) is one flag: `--actor mlp`.

use bincode::{Decode, Encode};

use crate::{OpCounts, ParamSet, SnnError};

/// The dense actor's shape.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub struct DenseSpec {
    pub obs_dim: usize,
    pub act_dim: usize,
    /// Actions are `tanh(·) × act_limit`.
    pub act_limit: f32,
    pub hidden: Vec<usize>,
}

impl DenseSpec {
    /// CleanRL's TD3 actor for a task of these dimensions: 256-256.
    pub fn new(obs_dim: usize, act_dim: usize, act_limit: f32) -> Self {
        Self { obs_dim, act_dim, act_limit, hidden: vec![256, 256] }
    }

    /// Widths of every layer, input first.
    pub fn layer_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![self.obs_dim];
        sizes.extend(&self.hidden);
        sizes.push(self.act_dim);
        sizes
    }

    /// Multiply–accumulates per action.
    pub fn macs(&self) -> u64 {
        self.layer_sizes().windows(2).map(|w| (w[0] * w[1]) as u64).sum()
    }

    pub fn validate(&self) -> Result<(), SnnError> {
        use crate::spec::{MAX_LAYERS, MAX_WEIGHTS, MAX_WIDTH};
        if self.obs_dim == 0 || self.act_dim == 0 || self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(SnnError::Spec("a dense actor needs positive dimensions and at least one hidden layer, each with neurons".into()));
        }
        if self.obs_dim > MAX_WIDTH || self.act_dim > MAX_WIDTH || self.hidden.len() > MAX_LAYERS || self.hidden.iter().any(|&n| n > MAX_WIDTH) {
            return Err(SnnError::Spec(format!("at most {MAX_LAYERS} hidden layers and {MAX_WIDTH} units per layer (asked: {:?})", self.hidden)));
        }
        if self.macs() > MAX_WEIGHTS {
            return Err(SnnError::Spec(format!("{} weights; at most {MAX_WEIGHTS}", self.macs())));
        }
        if !(self.act_limit.is_finite() && self.act_limit > 0.0) {
            return Err(SnnError::Spec("act_limit must be finite and positive".into()));
        }
        Ok(())
    }
}

/// The dense actor at inference: plain loops over its layers, no allocation per call.
pub struct DenseActor {
    spec: DenseSpec,
    version: u64,
    obs_mean: Vec<f32>,
    obs_inv_std: Vec<f32>,
    /// Per layer: the weight `[out, in]` and the bias.
    layers: Vec<(Vec<f32>, Vec<f32>)>,
    a: Vec<f32>,
    b: Vec<f32>,
    last: OpCounts,
    total: OpCounts,
}

impl DenseActor {
    pub fn new(params: &ParamSet) -> Result<Self, SnnError> {
        let spec = params.spec().dense().ok_or_else(|| SnnError::Spec("not a dense actor's parameters".into()))?.clone();
        spec.validate()?;
        let sizes = spec.layer_sizes();
        let layers = (0..sizes.len() - 1)
            .map(|i| {
                let w = params.tensor(&format!("layers.{i}.weight")).expect("layout has every layer").to_vec();
                let b = params.tensor(&format!("layers.{i}.bias")).expect("layout has every layer").to_vec();
                (w, b)
            })
            .collect();
        let widest = sizes.iter().copied().max().unwrap_or(0);
        let mut last = OpCounts::new(0);
        last.dense_macs = spec.macs();
        last.inferences = 1;
        Ok(Self {
            version: params.version,
            obs_mean: params.obs_mean().to_vec(),
            obs_inv_std: params.obs_std().iter().map(|s| 1.0 / s).collect(),
            layers,
            a: vec![0.0; widest],
            b: vec![0.0; widest],
            last,
            total: OpCounts::new(0),
            spec,
        })
    }

    pub fn spec(&self) -> &DenseSpec {
        &self.spec
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn total_counts(&self) -> &OpCounts {
        &self.total
    }

    /// One action for one observation: normalise (clip ±3), the layers, `tanh × act_limit`.
    pub fn act(&mut self, obs: &[f32], out: &mut [f32]) -> Result<(), SnnError> {
        let (od, ad) = (self.spec.obs_dim, self.spec.act_dim);
        if obs.len() != od || out.len() != ad {
            return Err(SnnError::Shape(format!("observation of {} and action of {} values; the network takes {od} and gives {ad}", obs.len(), out.len())));
        }
        if let Some(i) = obs.iter().position(|x| !x.is_finite()) {
            return Err(SnnError::Value(format!("observation[{i}] is {}", obs[i])));
        }
        for (i, &o) in obs.iter().enumerate() {
            self.a[i] = ((o - self.obs_mean[i]) * self.obs_inv_std[i]).clamp(-3.0, 3.0);
        }
        let mut n_in = od;
        let last_layer = self.layers.len() - 1;
        for (l, (w, bias)) in self.layers.iter().enumerate() {
            let n_out = bias.len();
            for o in 0..n_out {
                let z = bias[o] + dot(&w[o * n_in..(o + 1) * n_in], &self.a[..n_in]);
                self.b[o] = if l == last_layer { z } else { z.max(0.0) };
            }
            std::mem::swap(&mut self.a, &mut self.b);
            n_in = n_out;
        }
        for (o, z) in out.iter_mut().zip(&self.a[..ad]) {
            *o = z.tanh() * self.spec.act_limit;
        }
        self.total.add(&self.last);
        Ok(())
    }
}

/// `Σ a·b` in eight independent sums, which the compiler keeps in vector registers (one
/// running sum would serialise every addition).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8.remainder().iter().zip(b8.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a8.zip(b8) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}
