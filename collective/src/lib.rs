//! Collectives between the ranks of a multi-learner run: every learner computes gradients on its
//! own minibatch, and [`Collective::all_reduce_mean`] makes them one, the same bits on every rank.
//!
//! A backend is chosen once per process ([`connect`]):
//! - [`Single`]: one learner, every operation a no-op;
//! - `Mpi` (feature `mpi`): ranks started by `mpirun`/`srun`, over the MPI library the build
//!   found;
//! - [`Nccl`]: ranks started torchrun-style (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`,
//!   `MASTER_PORT`), one CUDA device each, NCCL loaded at run time.
//!
//! Neither MPI nor NCCL survives a dead rank: the survivors would wait in their next collective
//! for ever. [`Watched`] bounds that wait — a collective that takes longer than its timeout ends
//! the process with a message saying so.

mod launch;
#[cfg(feature = "mpi")]
mod mpi_backend;
mod nccl;
mod watchdog;

use std::sync::Arc;

pub use launch::{Backend, Launch};
#[cfg(feature = "mpi")]
pub use mpi_backend::Mpi;
pub use nccl::Nccl;
pub use watchdog::Watched;

#[derive(Debug, thiserror::Error)]
pub enum CollectiveError {
    /// The backend cannot start here (library missing, launcher variables absent or wrong).
    #[error("the {backend} backend is not available: {reason}")]
    Unavailable { backend: &'static str, reason: String },
    /// An operation failed.
    #[error("{backend}: {what}")]
    Failed { backend: &'static str, what: String },
}

/// What the ranks of one run do together. Every rank calls the same operations in the same
/// order; each returns once every rank has called it.
pub trait Collective: Send + Sync {
    /// `single`, `mpi` or `nccl`.
    fn backend(&self) -> &'static str;
    fn rank(&self) -> usize;
    fn world_size(&self) -> usize;
    /// Replaces `buf` by the element-wise mean over the ranks — the same bits on every rank
    /// (the mean is formed once and shared, never recomputed rank by rank).
    fn all_reduce_mean(&self, buf: &mut [f32]) -> Result<(), CollectiveError>;
    /// Replaces `buf` by the element-wise sum over the ranks, the same bits on every rank.
    fn all_reduce_sum(&self, buf: &mut [f64]) -> Result<(), CollectiveError>;
    /// Replaces `bytes` on every rank by `root`'s (lengths may differ before).
    fn broadcast(&self, bytes: &mut Vec<u8>, root: usize) -> Result<(), CollectiveError>;
    fn barrier(&self) -> Result<(), CollectiveError>;
    /// [`Collective::all_reduce_mean`] of `len` f32 in CUDA memory on this rank's device, where
    /// the backend works on device memory (`None`: copy through the host instead).
    ///
    /// # Safety
    /// `ptr` must point to `len` f32 of device memory of this rank's CUDA device, valid and not
    /// in use by another stream until the call returns.
    unsafe fn all_reduce_mean_device(&self, _ptr: *mut f32, _len: usize) -> Option<Result<(), CollectiveError>> {
        None
    }
    /// Ends every rank of the run now (after an error on this one that the others cannot see).
    fn abort(&self, code: i32) -> !;
}

/// One learner alone.
#[derive(Debug, Default, Clone, Copy)]
pub struct Single;

impl Collective for Single {
    fn backend(&self) -> &'static str {
        "single"
    }
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn all_reduce_mean(&self, _buf: &mut [f32]) -> Result<(), CollectiveError> {
        Ok(())
    }
    fn all_reduce_sum(&self, _buf: &mut [f64]) -> Result<(), CollectiveError> {
        Ok(())
    }
    fn broadcast(&self, _bytes: &mut Vec<u8>, _root: usize) -> Result<(), CollectiveError> {
        Ok(())
    }
    fn barrier(&self) -> Result<(), CollectiveError> {
        Ok(())
    }
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// The collective `backend` asks for, with the rank and world size its launcher gave this
/// process; ranks other than [`Single`] are [`Watched`] with `timeout`.
pub fn connect(backend: Backend, timeout: std::time::Duration) -> Result<Arc<dyn Collective>, CollectiveError> {
    let launch = Launch::from_env();
    let backend = match backend {
        Backend::Auto => launch.as_ref().map_or(Backend::Single, |l| l.default_backend()),
        b => b,
    };
    let collective: Box<dyn Collective> = match backend {
        Backend::Single | Backend::Auto => return Ok(Arc::new(Single)),
        Backend::Mpi => mpi(launch.as_ref())?,
        Backend::Nccl => {
            let launch = launch.filter(|l| l.master.is_some()).ok_or_else(|| CollectiveError::Unavailable {
                backend: "nccl",
                reason: "no torchrun-style launch: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT must be set".into(),
            })?;
            Box::new(Nccl::connect(&launch, timeout)?)
        }
    };
    Ok(Arc::new(Watched::new(collective, timeout)))
}

#[cfg(feature = "mpi")]
fn mpi(launch: Option<&Launch>) -> Result<Box<dyn Collective>, CollectiveError> {
    let m = Mpi::init()?;
    if let Some(l) = launch.filter(|l| l.world != m.world_size()) {
        return Err(CollectiveError::Unavailable { backend: "mpi", reason: format!("the launcher ({}) says {} ranks, MPI says {}", l.launcher, l.world, m.world_size()) });
    }
    Ok(Box::new(m))
}

#[cfg(not(feature = "mpi"))]
fn mpi(_launch: Option<&Launch>) -> Result<Box<dyn Collective>, CollectiveError> {
    Err(CollectiveError::Unavailable { backend: "mpi", reason: "this build has no MPI (build with the `mpi` feature, the default, against an MPI library)".into() })
}
