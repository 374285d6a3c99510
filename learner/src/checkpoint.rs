//! Checkpoints: everything a run needs to continue, written atomically.
//!
//! File: the magic `SPIKERL-CKPT`, a format version (u32 LE), the [`Checkpoint`] in bincode 2
//! (its hyperparameters as JSON text inside it, so that a setting added later reads as its
//! default from an older checkpoint), then a CRC-32 of that body (u32 LE), checked on load. A
//! write goes to a temporary file in the same directory, is synced, and renamed over the
//! target, so a crash leaves the previous checkpoint intact.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::replay::ReplayBuffer;
use crate::Precision;
use crate::config::{ActorConfig, Td3Config};
use crate::td3::Td3State;

const MAGIC: &[u8; 12] = b"SPIKERL-CKPT";
/// 2: the actor's shape apart from TD3's hyperparameters, the precision as an enum.
/// 3: the hyperparameters as JSON. 4: a checksum after the body (2 and 3 are still read).
const FORMAT: u32 = 4;
/// Largest checkpoint decoded (a full 1e6 replay of Humanoid fits).
const LIMIT: usize = 8 << 30;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The cause is the error's source (shown once by `{:#}`).
    #[error("cannot read or write checkpoint {path}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is not a spikerl checkpoint")]
    NotACheckpoint { path: String },
    #[error("{path} is checkpoint format {found}; this build reads formats 2 to {FORMAT}")]
    Format { path: String, found: u32 },
    #[error("checkpoint {path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("checkpoint {path} does not fit this run: {reason}")]
    Mismatch { path: String, reason: String },
}

/// The replay buffer's contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayState {
    pub obs_dim: usize,
    pub act_dim: usize,
    pub capacity: usize,
    pub len: usize,
    pub next: usize,
    pub parts: [Vec<f32>; 5],
}

impl ReplayState {
    pub fn of(rb: &ReplayBuffer) -> Self {
        let (len, next, parts) = rb.to_parts();
        let (obs_dim, act_dim) = rb.dims();
        Self { obs_dim, act_dim, capacity: rb.capacity(), len, next, parts: parts.map(|p| p.to_vec()) }
    }

    pub fn into_buffer(self) -> Result<ReplayBuffer, String> {
        ReplayBuffer::from_parts(self.obs_dim, self.act_dim, self.capacity, self.len, self.next, self.parts)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub env_id: String,
    #[serde(with = "as_json")]
    pub algorithm: Td3Config,
    #[serde(with = "as_json")]
    pub actor: ActorConfig,
    pub precision: Precision,
    pub seed: u64,
    /// Synchronous (reproducible) mode.
    pub sync: bool,
    pub env_steps: u64,
    pub episodes: u64,
    pub param_version: u64,
    pub td3: Td3State,
    /// The runtime's own state (the synchronous mode's envs and exploration generator),
    /// encoded by the runtime.
    pub runtime: Vec<u8>,
    pub replay: Option<ReplayState>,
}

impl Checkpoint {
    /// The file's bytes: magic, format, body, checksum.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(FORMAT.to_le_bytes());
        let body = bincode::serde::encode_to_vec(self, bincode::config::standard()).expect("checkpoint values encode");
        bytes.extend(&body);
        bytes.extend(crc32fast::hash(&body).to_le_bytes());
        bytes
    }

    /// Writes atomically: temporary file, fsync, rename.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io { path: path.display().to_string(), source };
        let bytes = self.encode();
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "checkpoint".into());
        let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }

    /// Whether `bytes` start like a checkpoint file.
    pub fn is_checkpoint(bytes: &[u8]) -> bool {
        bytes.starts_with(MAGIC)
    }

    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io { path: p.clone(), source })?;
        Self::decode(&bytes, &p)
    }

    /// Parses a checkpoint file's bytes; `origin` names it in errors. Anything but a whole,
    /// intact checkpoint is an error, never a panic.
    pub fn decode(bytes: &[u8], origin: &str) -> Result<Self, CheckpointError> {
        let p = origin.to_string();
        if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(CheckpointError::NotACheckpoint { path: p });
        }
        let found = u32::from_le_bytes(bytes[MAGIC.len()..MAGIC.len() + 4].try_into().expect("4 bytes"));
        let body = &bytes[MAGIC.len() + 4..];
        let corrupt = |e: bincode::error::DecodeError| CheckpointError::Corrupt { path: p.clone(), reason: e.to_string() };
        let body = match found {
            FORMAT => {
                let n = body.len().checked_sub(4).ok_or_else(|| CheckpointError::Corrupt { path: p.clone(), reason: "truncated".into() })?;
                if crc32fast::hash(&body[..n]).to_le_bytes() != body[n..] {
                    return Err(CheckpointError::Corrupt { path: p, reason: "checksum mismatch (a damaged or truncated file)".into() });
                }
                &body[..n]
            }
            _ => body,
        };
        let (ck, used): (Checkpoint, usize) = match found {
            FORMAT | 3 => decode_bounded(body).map_err(corrupt)?,
            2 => decode_bounded::<format2::Checkpoint>(body).map(|(c, n)| (c.into(), n)).map_err(corrupt)?,
            _ => return Err(CheckpointError::Format { path: p, found }),
        };
        if used != body.len() {
            return Err(CheckpointError::Corrupt { path: p, reason: format!("{} trailing bytes", body.len() - used) });
        }
        ck.algorithm.validate().map_err(|reason| CheckpointError::Corrupt { path: p.clone(), reason })?;
        Ok(ck)
    }
}

/// Decodes `body` allowing its lengths to claim at most about twice its size (in buckets up to
/// [`LIMIT`]): a damaged length cannot make a small file allocate gigabytes.
fn decode_bounded<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<(T, usize), bincode::error::DecodeError> {
    macro_rules! within {
        ($limit:expr) => {
            bincode::serde::decode_from_slice(body, bincode::config::standard().with_limit::<{ $limit }>())
        };
    }
    match body.len().saturating_mul(2) {
        n if n <= 1 << 20 => within!(1 << 20),
        n if n <= 1 << 24 => within!(1 << 24),
        n if n <= 1 << 28 => within!(1 << 28),
        n if n <= 1 << 32 => within!(1 << 32),
        _ => within!(LIMIT),
    }
}

/// A value as JSON text (serde's self-describing side inside bincode's positional one).
mod as_json {
    use serde::de::{DeserializeOwned, Error as _};
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&serde_json::to_string(value).map_err(S::Error::custom)?)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        serde_json::from_str(&String::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// Format 2: the hyperparameters in bincode's positional encoding, as they were then.
mod format2 {
    use serde::Deserialize;

    use super::ReplayState;
    use crate::config::{ActorConfig, TargetActor, Td3Config};
    use crate::td3::Td3State;
    use crate::Precision;

    #[derive(Deserialize)]
    #[cfg_attr(test, derive(serde::Serialize))]
    pub(super) struct Td3Config2 {
        pub(super) gamma: f64,
        pub(super) polyak: f64,
        pub(super) actor_lr: f64,
        pub(super) critic_lr: f64,
        pub(super) batch_size: usize,
        pub(super) replay_size: usize,
        pub(super) start_steps: u64,
        pub(super) update_after: u64,
        pub(super) update_every: u64,
        pub(super) updates_per_step: f64,
        pub(super) act_noise: f32,
        pub(super) target_noise: f32,
        pub(super) noise_clip: f32,
        pub(super) policy_delay: u64,
        pub(super) critic_hidden: Vec<usize>,
        pub(super) target_actor: TargetActor,
        pub(super) proxy_steps: u64,
        pub(super) proxy_lr: f64,
        pub(super) proxy_hidden: Vec<usize>,
    }

    #[derive(Deserialize)]
    #[cfg_attr(test, derive(serde::Serialize))]
    pub struct Checkpoint {
        pub(super) env_id: String,
        pub(super) algorithm: Td3Config2,
        pub(super) actor: ActorConfig,
        pub(super) precision: Precision,
        pub(super) seed: u64,
        pub(super) sync: bool,
        pub(super) env_steps: u64,
        pub(super) episodes: u64,
        pub(super) param_version: u64,
        pub(super) td3: Td3State,
        pub(super) runtime: Vec<u8>,
        pub(super) replay: Option<ReplayState>,
    }

    impl From<Checkpoint> for super::Checkpoint {
        fn from(c: Checkpoint) -> Self {
            let a = c.algorithm;
            let algorithm = Td3Config {
                gamma: a.gamma,
                polyak: a.polyak,
                actor_lr: a.actor_lr,
                critic_lr: a.critic_lr,
                batch_size: a.batch_size,
                replay_size: a.replay_size,
                start_steps: a.start_steps,
                update_after: a.update_after,
                update_every: a.update_every,
                updates_per_step: a.updates_per_step,
                act_noise: a.act_noise,
                target_noise: a.target_noise,
                noise_clip: a.noise_clip,
                policy_delay: a.policy_delay,
                critic_hidden: a.critic_hidden,
                target_actor: a.target_actor,
                proxy_steps: a.proxy_steps,
                proxy_lr: a.proxy_lr,
                proxy_hidden: a.proxy_hidden,
                membrane_reg: 0.0,
            };
            Self {
                env_id: c.env_id,
                algorithm,
                actor: c.actor,
                precision: c.precision,
                seed: c.seed,
                sync: c.sync,
                env_steps: c.env_steps,
                episodes: c.episodes,
                param_version: c.param_version,
                td3: c.td3,
                runtime: c.runtime,
                replay: c.replay,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let adam = (vec![0.1, 0.2], vec![0.3, 0.4], 7);
        let td3 = Td3State {
            actor: vec![1.0, 2.0],
            actor_target: vec![3.0],
            critic: vec![4.0],
            critic_target: vec![5.0],
            actor_adam: adam.clone(),
            critic_adam: adam,
            normalizer: vec![0.5; 3],
            rng: 99,
            updates: 12,
            proxy: None,
        };
        let algorithm = Td3Config { policy_delay: 4, ..Td3Config::default() };
        Checkpoint { env_id: "Hopper-v4".into(), algorithm, actor: ActorConfig::default(), precision: Precision::F32, seed: 3, sync: false, env_steps: 5000, episodes: 9, param_version: 4, td3, runtime: vec![1, 2, 3], replay: None }
    }

    fn write(path: &Path, format: u32, body: &[u8]) {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(format.to_le_bytes());
        bytes.extend(body);
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn checkpoints_round_trip_and_older_formats_still_load() {
        let dir = std::env::temp_dir().join(format!("spikerl-ckpt-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("checkpoint.bin");
        let mut ck = sample();
        ck.algorithm.membrane_reg = 2.5;
        ck.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), ck);

        // Format 2 (positional hyperparameters, before membrane_reg): read with its default.
        let ck = sample();
        // Format 2's hyperparameters are today's without the settings added since.
        let mut fields = serde_json::to_value(&ck.algorithm).unwrap();
        fields.as_object_mut().unwrap().remove("membrane_reg");
        let old = format2::Checkpoint {
            env_id: ck.env_id.clone(),
            algorithm: serde_json::from_value(fields).unwrap(),
            actor: ck.actor.clone(),
            precision: ck.precision,
            seed: ck.seed,
            sync: ck.sync,
            env_steps: ck.env_steps,
            episodes: ck.episodes,
            param_version: ck.param_version,
            td3: ck.td3.clone(),
            runtime: ck.runtime.clone(),
            replay: None,
        };
        write(&path, 2, &bincode::serde::encode_to_vec(&old, bincode::config::standard()).unwrap());
        assert_eq!(Checkpoint::load(&path).unwrap(), ck);

        // Format 3: the body without its checksum.
        let body = bincode::serde::encode_to_vec(&ck, bincode::config::standard()).unwrap();
        write(&path, 3, &body);
        assert_eq!(Checkpoint::load(&path).unwrap(), ck);

        // An unknown format, a truncated body and one flipped bit in a weight are clear errors.
        write(&path, 9, &[]);
        assert!(matches!(Checkpoint::load(&path), Err(CheckpointError::Format { found: 9, .. })));
        ck.save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        assert!(matches!(Checkpoint::load(&path), Err(CheckpointError::Corrupt { .. })));
        let mut flipped = good.clone();
        flipped[MAGIC.len() + 4 + body.len() / 2] ^= 0x10;
        std::fs::write(&path, &flipped).unwrap();
        assert!(matches!(Checkpoint::load(&path), Err(CheckpointError::Corrupt { reason, .. }) if reason.contains("checksum")));

        // A full disk: the cause is the error's source, said once along the chain.
        let full = CheckpointError::Io { path: "ck".into(), source: std::io::Error::from_raw_os_error(28) };
        let cause = std::error::Error::source(&full).unwrap().to_string();
        assert!(!full.to_string().contains(&cause), "{full}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Found by the `checkpoint` fuzz target: a 61-byte format-3 file whose string length says
    /// 8 GB made the decoder allocate it; now the claim is refused against the file's size.
    #[test]
    fn a_huge_length_in_a_small_file_is_refused_before_allocating() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(3u32.to_le_bytes());
        bytes.extend([11]);
        bytes.extend(b"SPIKEulum-2");
        // bincode's varint for a u64 length: 0xfd then 8 bytes (8 589 934 393).
        bytes.extend([0xfd]);
        bytes.extend(8_589_934_393u64.to_le_bytes());
        bytes.extend(b"\"n^^^^^\"");
        let err = Checkpoint::decode(&bytes, "tiny").unwrap_err().to_string();
        assert!(err.contains("LimitExceeded"), "{err}");
    }

    /// A bounded fuzz run (cargo-fuzz's `checkpoint` target runs it unbounded): damaged files,
    /// some behind a recomputed checksum so the decoder's deeper checks see them, are errors
    /// or checkpoints that pass validation — never a panic.
    #[test]
    fn damaged_checkpoints_are_errors() {
        use spikerl_rng::{SplitMix, mutate};
        let dir = std::env::temp_dir().join(format!("spikerl-ckpt-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("checkpoint.bin");
        sample().save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        let mut rng = SplitMix::new(5);
        for i in 0..2000 {
            let mut bytes = mutate::bytes(&mut rng, &good);
            let header = MAGIC.len() + 4;
            if i % 2 == 0 && bytes.len() > header + 4 {
                let n = bytes.len() - 4;
                let crc = crc32fast::hash(&bytes[header..n]);
                bytes[n..].copy_from_slice(&crc.to_le_bytes());
            }
            if let Ok(ck) = Checkpoint::decode(&bytes, "damaged") {
                assert!(ck.algorithm.validate().is_ok());
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
