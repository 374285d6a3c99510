//! MPI between CPU learners (rsmpi), over whichever MPI the build found (`mpicc`).

use std::sync::Mutex;

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use crate::{Collective, CollectiveError};

pub struct Mpi {
    /// Calls go one at a time (MPI initialised for `MPI_THREAD_SERIALIZED`).
    world: Mutex<SimpleCommunicator>,
    rank: usize,
    size: usize,
    /// Finalises MPI when dropped, after `world`.
    _universe: Universe,
}

// SAFETY: MPI handles are process-wide values, usable from any thread once MPI runs with
// `MPI_THREAD_SERIALIZED` or more; the mutex serialises every call.
unsafe impl Send for Mpi {}
unsafe impl Sync for Mpi {}

impl Mpi {
    /// Initialises MPI (once per process).
    pub fn init() -> Result<Self, CollectiveError> {
        let unavailable = |reason: String| CollectiveError::Unavailable { backend: "mpi", reason };
        let (universe, threading) = mpi::initialize_with_threading(mpi::Threading::Serialized).ok_or_else(|| unavailable("MPI was initialised already".into()))?;
        if threading < mpi::Threading::Serialized {
            return Err(unavailable(format!("the MPI library offers {threading:?} threading, and the learner needs Serialized")));
        }
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        Ok(Self { world: Mutex::new(world), rank, size, _universe: universe })
    }

    fn world(&self) -> std::sync::MutexGuard<'_, SimpleCommunicator> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Collective for Mpi {
    fn backend(&self) -> &'static str {
        "mpi"
    }

    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.size
    }

    // Reduce at rank 0, then broadcast: every rank gets the bits rank 0 computed (an
    // all-reduce may associate the sum differently on different ranks). MPI's default error
    // handler aborts the job on a failed call, so these return no error.
    fn all_reduce_mean(&self, buf: &mut [f32]) -> Result<(), CollectiveError> {
        let world = self.world();
        let root = world.process_at_rank(0);
        if self.rank == 0 {
            let mut sum = vec![0f32; buf.len()];
            root.reduce_into_root(&*buf, &mut sum[..], SystemOperation::sum());
            let n = self.size as f32;
            for (b, s) in buf.iter_mut().zip(&sum) {
                *b = s / n;
            }
        } else {
            root.reduce_into(&*buf, SystemOperation::sum());
        }
        root.broadcast_into(buf);
        Ok(())
    }

    fn all_reduce_sum(&self, buf: &mut [f64]) -> Result<(), CollectiveError> {
        let world = self.world();
        let root = world.process_at_rank(0);
        if self.rank == 0 {
            let mut sum = vec![0f64; buf.len()];
            root.reduce_into_root(&*buf, &mut sum[..], SystemOperation::sum());
            buf.copy_from_slice(&sum);
        } else {
            root.reduce_into(&*buf, SystemOperation::sum());
        }
        root.broadcast_into(buf);
        Ok(())
    }

    fn broadcast(&self, bytes: &mut Vec<u8>, root: usize) -> Result<(), CollectiveError> {
        if root >= self.size {
            return Err(CollectiveError::Failed { backend: "mpi", what: format!("broadcast from rank {root} in a world of {}", self.size) });
        }
        let world = self.world();
        let root = world.process_at_rank(root as i32);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        root.broadcast_into(&mut bytes[..]);
        Ok(())
    }

    fn barrier(&self) -> Result<(), CollectiveError> {
        self.world().barrier();
        Ok(())
    }

    fn abort(&self, code: i32) -> ! {
        // No lock: another thread may hold it inside a collective that will never finish.
        mpi::topology::SimpleCommunicator::world().abort(code)
    }
}
