//! The learner: TD3 with the PopSAN spiking actor, its replay buffer, observation normaliser
//! and checkpoints. The update's arithmetic runs on a [`kernels::Kernels`] backend chosen once
//! per run: plain slices on the CPU, libtorch tensors on CUDA.
//!
//! - [`config`]: every hyperparameter with its default;
//! - [`td3`]: the update, top to bottom, and [`td3::build`], which picks the backend;
//! - [`kernels`]: the backends; [`networks`]: the flat parameter layouts they share;
//! - [`replay`], [`normalizer`], [`optim`] (Adam's state), [`checkpoint`].

pub mod checkpoint;
pub mod config;
pub mod kernels;
pub mod networks;
pub mod normalizer;
pub mod optim;
pub mod replay;
pub mod td3;
mod threads;

pub use config::{ActorConfig, ActorKind, Surrogate, TargetActor, Td3Config};
pub use spikerl_snn::Encoding;
pub use spikerl_snn::Precision;
pub use spikerl_collective as collective;
pub use td3::{ActorActivity, Agent, Diverged, Td3, Td3State, UpdateError, UpdateOutcome, UpdateStats};

pub mod prelude {
    pub use crate::checkpoint::{Checkpoint, CheckpointError, ReplayState};
    pub use crate::normalizer::Normalizer;
    pub use crate::replay::{Minibatch, ReplayBuffer};
    pub use crate::td3::{Agent, Td3State, build};
    pub use crate::{ActorConfig, ActorKind, Precision, Surrogate, Td3Config};
}

/// Keeps freed large blocks in the heap instead of returning them to the OS. Every update
/// allocates and frees buffers of hundreds of kilobytes; with glibc's defaults each one is a
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

/// Hands free heap memory back to the system (glibc's `malloc_trim`; elsewhere nothing).
/// [`keep_large_allocations`] keeps it by default; a learner calls this when connections end,
/// so that memory their buffers took returns.
pub fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only releases free pages of glibc's arenas.
        unsafe {
            malloc_trim(0);
        }
    }
}
