//! `ParamSet`: an actor's learned parameters and the observation normaliser, as the learner
//! publishes them and actors load them.
//!
//! A dense actor's layout is `layers.{i}.weight` `[out, in]` then `layers.{i}.bias` `[out]`
//! for each layer. A PopSAN's (row-major, PyTorch's shapes, concatenated in this order in
//! [`ParamSet::flat`]):
//!
//! | name | shape |
//! |---|---|
//! | `encoder.mean` | `[obs_dim, encoder_pop]` |
//! | `encoder.std` | `[obs_dim, encoder_pop]` |
//! | `layers.{i}.weight`, `layers.{i}.bias` | `[out, in]`, `[out]` for each hidden layer and then the output population |
//! | `decoder.weight` | `[act_dim, decoder_pop]` (the grouped Conv1d's `[act_dim, 1, pop]`) |
//! | `decoder.bias` | `[act_dim]` |

use bincode::{Decode, Encode};
use half::bf16;

use crate::rng::SplitMix;
use crate::{ActorSpec, DenseSpec, PopSanSpec, SnnError};

/// One named tensor of the flat layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
}

impl TensorInfo {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The tensors of a spec, in layout order.
pub fn layout(spec: &PopSanSpec) -> Vec<TensorInfo> {
    let mut tensors = Vec::new();
    let mut offset = 0;
    let mut push = |name: String, shape: Vec<usize>| {
        let len: usize = shape.iter().product();
        tensors.push(TensorInfo { name, shape, offset });
        offset += len;
    };
    push("encoder.mean".into(), vec![spec.obs_dim, spec.encoder_pop]);
    push("encoder.std".into(), vec![spec.obs_dim, spec.encoder_pop]);
    let sizes = spec.layer_sizes();
    for (i, w) in sizes.windows(2).enumerate() {
        push(format!("layers.{i}.weight"), vec![w[1], w[0]]);
        push(format!("layers.{i}.bias"), vec![w[1]]);
    }
    push("decoder.weight".into(), vec![spec.act_dim, spec.decoder_pop]);
    push("decoder.bias".into(), vec![spec.act_dim]);
    tensors
}

/// A dense actor's tensors, in layout order.
pub fn dense_layout(spec: &DenseSpec) -> Vec<TensorInfo> {
    let mut tensors = Vec::new();
    let mut offset = 0;
    for (i, w) in spec.layer_sizes().windows(2).enumerate() {
        for (name, shape) in [(format!("layers.{i}.weight"), vec![w[1], w[0]]), (format!("layers.{i}.bias"), vec![w[1]])] {
            let len: usize = shape.iter().product();
            tensors.push(TensorInfo { name, shape, offset });
            offset += len;
        }
    }
    tensors
}

impl ActorSpec {
    /// The actor's tensors, in layout order.
    pub fn layout(&self) -> Vec<TensorInfo> {
        match self {
            ActorSpec::Spiking(s) => layout(s),
            ActorSpec::Dense(d) => dense_layout(d),
        }
    }

    /// Parameters in all.
    pub fn n_params(&self) -> usize {
        self.layout().last().map_or(0, |t| t.offset + t.len())
    }
}

/// Numeric precision: of parameters on the wire, and of a learner's matrix products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Precision {
    /// IEEE single precision.
    #[serde(rename = "fp32", alias = "f32")]
    #[cfg_attr(feature = "clap", value(name = "fp32", alias = "f32"))]
    F32,
    /// bfloat16: half the bytes, about 3 significant digits.
    #[serde(rename = "bf16")]
    #[cfg_attr(feature = "clap", value(name = "bf16"))]
    Bf16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An actor's parameters, a version number, and the observation normaliser.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSet {
    spec: ActorSpec,
    pub version: u64,
    obs_mean: Vec<f32>,
    obs_std: Vec<f32>,
    data: Vec<f32>,
}

const MAGIC: u32 = 0x5053_4e31; // "PSN1"
/// 3: the actor may be dense (`ActorSpec`). 2: a CRC-32 of the encoding follows it; 2 and 1
/// (without) hold a PopSAN and are still read.
const FORMAT: u16 = 3;
/// Decoding refuses anything larger (a corrupt length must not allocate gigabytes).
const MAX_BYTES: usize = 512 << 20;

#[derive(Encode, Decode)]
enum WireValues {
    F32(Vec<f32>),
    /// Little-endian bfloat16 bits, two bytes per value (bincode would varint a `u16`).
    Bf16(Vec<u8>),
}

#[derive(Encode, Decode)]
struct Wire<S> {
    magic: u32,
    format: u16,
    spec: S,
    version: u64,
    obs_mean: Vec<f32>,
    obs_std: Vec<f32>,
    values: WireValues,
}

/// What every format starts with.
#[derive(Decode)]
struct Header {
    magic: u32,
    format: u16,
}

fn check_normalizer(obs_dim: usize, mean: &[f32], std: &[f32]) -> Result<(), SnnError> {
    if mean.len() != obs_dim || std.len() != obs_dim {
        return Err(SnnError::Shape(format!("normaliser has {}/{} entries, obs_dim is {obs_dim}", mean.len(), std.len())));
    }
    if mean.iter().any(|x| !x.is_finite()) || std.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
        return Err(SnnError::Value("normaliser mean must be finite and std positive".into()));
    }
    Ok(())
}

impl ParamSet {
    /// Parameters as PopSAN initialises them: receptive-field means evenly spaced on
    /// `mean_range`, stds `spec.std`, weights and biases `U(±1/√fan_in)` (PyTorch's default),
    /// identity normaliser.
    pub fn init(spec: &(impl Into<ActorSpec> + Clone), seed: u64) -> Result<Self, SnnError> {
        let spec: ActorSpec = spec.clone().into();
        spec.validate()?;
        match &spec {
            ActorSpec::Spiking(s) => Self::init_spiking(s, seed),
            ActorSpec::Dense(d) => Self::init_dense(d, seed),
        }
    }

    /// A dense actor as PyTorch initialises `nn.Linear`: weights and biases `U(±1/√fan_in)`.
    fn init_dense(spec: &DenseSpec, seed: u64) -> Result<Self, SnnError> {
        let mut rng = SplitMix::new(seed);
        let tensors = dense_layout(spec);
        let mut data = vec![0.0; tensors.last().map_or(0, |t| t.offset + t.len())];
        let sizes = spec.layer_sizes();
        for t in &tensors {
            let layer: usize = t.name.split('.').nth(1).and_then(|i| i.parse().ok()).expect("layer index in layout");
            let bound = 1.0 / (sizes[layer] as f32).sqrt();
            for x in &mut data[t.offset..t.offset + t.len()] {
                *x = rng.uniform(bound);
            }
        }
        Ok(Self { spec: spec.clone().into(), version: 0, obs_mean: vec![0.0; spec.obs_dim], obs_std: vec![1.0; spec.obs_dim], data })
    }

    fn init_spiking(spec: &PopSanSpec, seed: u64) -> Result<Self, SnnError> {
        let mut rng = SplitMix::new(seed);
        let tensors = layout(spec);
        let total = tensors.last().map_or(0, |t| t.offset + t.len());
        let mut data = vec![0.0; total];
        for t in &tensors {
            let slice = &mut data[t.offset..t.offset + t.len()];
            match t.name.as_str() {
                "encoder.mean" => {
                    let (lo, hi) = spec.mean_range;
                    let step = if spec.encoder_pop > 1 { (hi - lo) / (spec.encoder_pop - 1) as f32 } else { 0.0 };
                    for (k, x) in slice.iter_mut().enumerate() {
                        *x = lo + step * (k % spec.encoder_pop) as f32;
                    }
                }
                "encoder.std" => slice.fill(spec.std),
                name => {
                    let fan_in = if name.starts_with("decoder") {
                        spec.decoder_pop
                    } else {
                        let layer: usize = name.split('.').nth(1).and_then(|i| i.parse().ok()).expect("layer index in layout");
                        spec.layer_sizes()[layer]
                    };
                    let bound = 1.0 / (fan_in as f32).sqrt();
                    for x in slice.iter_mut() {
                        *x = rng.uniform(bound);
                    }
                }
            }
        }
        Ok(Self { spec: spec.clone().into(), version: 0, obs_mean: vec![0.0; spec.obs_dim], obs_std: vec![1.0; spec.obs_dim], data })
    }

    /// Builds from a flat vector in layout order; checks every size and value.
    pub fn from_flat(spec: impl Into<ActorSpec>, version: u64, obs_mean: Vec<f32>, obs_std: Vec<f32>, data: Vec<f32>) -> Result<Self, SnnError> {
        let spec: ActorSpec = spec.into();
        spec.validate()?;
        let expected = spec.n_params();
        if data.len() != expected {
            return Err(SnnError::Shape(format!("{} parameters, the spec needs {expected}", data.len())));
        }
        check_normalizer(spec.obs_dim(), &obs_mean, &obs_std)?;
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(SnnError::Value(format!("parameter {i} is {}", data[i])));
        }
        Ok(Self { spec, version, obs_mean, obs_std, data })
    }

    pub fn spec(&self) -> &ActorSpec {
        &self.spec
    }

    pub fn layout(&self) -> Vec<TensorInfo> {
        self.spec.layout()
    }

    /// All parameters in layout order.
    pub fn flat(&self) -> &[f32] {
        &self.data
    }

    pub fn tensor(&self, name: &str) -> Option<&[f32]> {
        let t = self.layout().into_iter().find(|t| t.name == name)?;
        Some(&self.data[t.offset..t.offset + t.len()])
    }

    pub fn tensor_mut(&mut self, name: &str) -> Option<&mut [f32]> {
        let t = self.layout().into_iter().find(|t| t.name == name)?;
        Some(&mut self.data[t.offset..t.offset + t.len()])
    }

    pub fn obs_mean(&self) -> &[f32] {
        &self.obs_mean
    }

    pub fn obs_std(&self) -> &[f32] {
        &self.obs_std
    }

    /// Replaces the normaliser (finite means, positive stds, obs_dim entries each).
    pub fn set_normalizer(&mut self, mean: Vec<f32>, std: Vec<f32>) -> Result<(), SnnError> {
        check_normalizer(self.spec.obs_dim(), &mean, &std)?;
        self.obs_mean = mean;
        self.obs_std = std;
        Ok(())
    }

    /// Serialises with bincode 2, values in `precision`.
    pub fn encode(&self, precision: Precision) -> Vec<u8> {
        let values = match precision {
            Precision::F32 => WireValues::F32(self.data.clone()),
            Precision::Bf16 => WireValues::Bf16(self.data.iter().flat_map(|&x| bf16::from_f32(x).to_le_bytes()).collect()),
        };
        let wire = Wire {
            magic: MAGIC,
            format: FORMAT,
            spec: self.spec.clone(),
            version: self.version,
            obs_mean: self.obs_mean.clone(),
            obs_std: self.obs_std.clone(),
            values,
        };
        let mut bytes = bincode::encode_to_vec(wire, bincode::config::standard()).expect("encoding to a Vec cannot fail");
        let crc = crc32fast::hash(&bytes);
        bytes.extend(crc.to_le_bytes());
        bytes
    }

    /// Parses what [`ParamSet::encode`] wrote. Bad bytes, a checksum that does not match, a
    /// wrong format or shapes that do not fit the spec are errors.
    pub fn decode(bytes: &[u8]) -> Result<Self, SnnError> {
        // Lengths may claim about twice the input's size (in buckets up to MAX_BYTES): a damaged
        // length cannot make a small file allocate hundreds of megabytes.
        fn decode<T: bincode::Decode<()>>(body: &[u8]) -> Result<(T, usize), SnnError> {
            macro_rules! within {
                ($limit:expr) => {
                    bincode::decode_from_slice(body, bincode::config::standard().with_limit::<{ $limit }>())
                };
            }
            let decoded = match body.len().saturating_mul(2) {
                n if n <= 1 << 16 => within!(1 << 16),
                n if n <= 1 << 20 => within!(1 << 20),
                n if n <= 1 << 24 => within!(1 << 24),
                _ => within!(MAX_BYTES),
            };
            decoded.map_err(|e| SnnError::Decode(e.to_string()))
        }
        let (body, checked) = match bytes.len().checked_sub(4) {
            Some(n) if crc32fast::hash(&bytes[..n]).to_le_bytes() == bytes[n..] => (&bytes[..n], true),
            _ => (bytes, false),
        };
        let (header, _) = decode::<Header>(body)?;
        if header.magic != MAGIC {
            return Err(SnnError::Decode("not a ParamSet (bad magic)".into()));
        }
        match (header.format, checked) {
            (FORMAT | 2, true) | (1, false) => {}
            (FORMAT | 2, false) => return Err(SnnError::Decode("checksum mismatch: the ParamSet is corrupt".into())),
            (format, _) => return Err(SnnError::Decode(format!("ParamSet format {format} (this build reads 1 to {FORMAT})"))),
        }
        // Formats 1 and 2 hold a PopSAN.
        let (wire, used) = match header.format {
            FORMAT => decode::<Wire<ActorSpec>>(body)?,
            _ => decode::<Wire<PopSanSpec>>(body).map(|(w, used)| (Wire { magic: w.magic, format: w.format, spec: ActorSpec::Spiking(w.spec), version: w.version, obs_mean: w.obs_mean, obs_std: w.obs_std, values: w.values }, used))?,
        };
        if used != body.len() {
            return Err(SnnError::Decode(format!("{} trailing bytes", body.len() - used)));
        }
        let data = match wire.values {
            WireValues::F32(v) => v,
            WireValues::Bf16(v) => {
                if v.len() % 2 != 0 {
                    return Err(SnnError::Decode("odd number of bf16 bytes".into()));
                }
                v.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
            }
        };
        Self::from_flat(wire.spec, wire.version, wire.obs_mean, wire.obs_std, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Policy files and parameters of earlier builds (format 2: a PopSAN, then a checksum)
    /// still load, as spiking actors.
    #[test]
    fn format_2_files_load_as_popsans() {
        let spec = PopSanSpec { hidden: vec![4], ..PopSanSpec::new(2, 1, 1.0) };
        let p = ParamSet::init(&spec, 3).unwrap();
        let old = Wire { magic: MAGIC, format: 2, spec: spec.clone(), version: 9, obs_mean: vec![0.0; 2], obs_std: vec![1.0; 2], values: WireValues::F32(p.flat().to_vec()) };
        let mut bytes = bincode::encode_to_vec(old, bincode::config::standard()).unwrap();
        bytes.extend(crc32fast::hash(&bytes).to_le_bytes());
        let q = ParamSet::decode(&bytes).unwrap();
        assert_eq!((q.spec(), q.version, q.flat()), (&ActorSpec::Spiking(spec), 9, p.flat()));
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        assert!(ParamSet::decode(&bytes).unwrap_err().to_string().contains("checksum"));
        // Format 1: the same, without a checksum.
        let mut v1 = bytes[..n - 4].to_vec();
        assert_eq!(v1[5], 2);
        v1[5] = 1;
        assert_eq!(ParamSet::decode(&v1).unwrap().spec(), q.spec());
    }
}
