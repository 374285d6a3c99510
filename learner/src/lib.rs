//! Learners: the trainable PopSAN in tch (libtorch), TD3, replay, checkpoints.

pub mod actor;
pub mod checkpoint;
mod actor_cpu;
mod blas;
mod cpu;
mod events;
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

/// Keeps freed large blocks in the heap instead of returning them to the OS. Every update
/// allocates and frees tensors of hundreds of kilobytes; with glibc's defaults each one is a
/// fresh `mmap` whose pages fault in again (a fifth of the CPU time of an update, measured).
pub fn keep_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: mallopt only changes glibc's allocation thresholds.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 256 << 20);
            mallopt(M_TRIM_THRESHOLD, 512 << 20);
        }
    }
}
