//! Rollout actors: step envs with the spiking policy (the `spikerl-snn` CPU engine), explore,
//! and batch transitions for a learner. No libtorch here.

mod energy;
mod eval;
mod mailbox;
mod transport;
mod worker;

pub use energy::{process_energy, start_metering};
pub use eval::{EvalResult, evaluate};
pub use mailbox::{ParamMailbox, Throttle};
pub use transport::{ActorTransport, LocalTransport, QuicTransport, run_actor};
pub use worker::{RolloutWorker, WorkerSnapshot};

pub mod prelude {
    pub use crate::{EvalResult, ParamMailbox, RolloutWorker, Throttle, evaluate};
    pub use spikerl_net::{EpisodeSummary, TransitionBatch};
}
