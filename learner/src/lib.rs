//! Learners: the trainable PopSAN in tch (libtorch), TD3, replay, checkpoints.

pub mod actor;
pub mod checkpoint;
pub mod critic;
pub mod normalizer;
pub mod optim;
pub mod popsan;
pub mod replay;
pub mod td3;

pub use popsan::Precision;
pub use td3::{Td3, Td3Config, Td3State};

pub mod prelude {
    pub use crate::checkpoint::{Checkpoint, CheckpointError, ReplayState};
    pub use crate::normalizer::Normalizer;
    pub use crate::replay::{Minibatch, ReplayBuffer};
    pub use crate::td3::{Td3, Td3Config, Td3State};
    pub use crate::Precision;
}
