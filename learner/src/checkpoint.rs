//! Checkpoints: everything a run needs to continue, written atomically.
//!
//! File: the magic `SPIKERL-CKPT`, a format version (u32 LE), then the [`Checkpoint`] in
//! bincode 2. A write goes to a temporary file in the same directory, is synced, and renamed
//! over the target, so a crash leaves the previous checkpoint intact.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::replay::ReplayBuffer;
use crate::Precision;
use crate::config::{ActorConfig, Td3Config};
use crate::td3::Td3State;

const MAGIC: &[u8; 12] = b"SPIKERL-CKPT";
/// 2: the actor's shape apart from TD3's hyperparameters, the precision as an enum.
const FORMAT: u32 = 2;
/// Largest checkpoint decoded (a full 1e6 replay of Humanoid fits).
const LIMIT: usize = 8 << 30;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read or write checkpoint {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is not a spikerl checkpoint")]
    NotACheckpoint { path: String },
    #[error("{path} is checkpoint format {found}; this build reads format {FORMAT}")]
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
    pub algorithm: Td3Config,
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
    /// Writes atomically: temporary file, fsync, rename.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io { path: path.display().to_string(), source };
        let mut bytes = MAGIC.to_vec();
        bytes.extend(FORMAT.to_le_bytes());
        bytes.extend(bincode::serde::encode_to_vec(self, bincode::config::standard()).expect("checkpoint values encode"));
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
        if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(CheckpointError::NotACheckpoint { path: p });
        }
        let found = u32::from_le_bytes(bytes[MAGIC.len()..MAGIC.len() + 4].try_into().expect("4 bytes"));
        if found != FORMAT {
            return Err(CheckpointError::Format { path: p, found });
        }
        let body = &bytes[MAGIC.len() + 4..];
        let (ck, used): (Checkpoint, usize) = bincode::serde::decode_from_slice(body, bincode::config::standard().with_limit::<LIMIT>())
            .map_err(|e| CheckpointError::Corrupt { path: p.clone(), reason: e.to_string() })?;
        if used != body.len() {
            return Err(CheckpointError::Corrupt { path: p, reason: format!("{} trailing bytes", body.len() - used) });
        }
        ck.algorithm.validate().map_err(|reason| CheckpointError::Corrupt { path: p.clone(), reason })?;
        Ok(ck)
    }
}
