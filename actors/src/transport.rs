//! How an actor talks to its learner, whichever side of a network it is on: the same actor
//! loop runs over crossbeam channels in the local runtime and over QUIC in `spikerl-actor`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use spikerl_net::quic::{ActorLink, RUN_OVER};
use spikerl_net::wire::ActorStats;
use spikerl_net::TransitionBatch;
use spikerl_snn::ParamSet;

use crate::{ParamMailbox, RolloutWorker, Throttle};

/// An actor's side of the link to its learner.
pub trait ActorTransport {
    /// Waits until the learner has room, then grants up to `want` env steps in whole multiples
    /// of `unit` (one step of every env); `Ok(0)` once the run is over.
    fn reserve(&mut self, want: u64, unit: u64) -> Result<u64, String>;
    /// Hands a batch to the learner; `Ok(false)` once the run is over.
    fn send(&mut self, batch: TransitionBatch) -> Result<bool, String>;
    /// The learner's parameters, if newer than `have`.
    fn newer_params(&mut self, have: u64) -> Result<Option<Arc<ParamSet>>, String>;
    /// The actor's own figures, now and then.
    fn stats(&mut self, _stats: ActorStats) {}
}

/// Steps `worker` with the newest parameters and ships its batches until the run is over.
pub fn run_actor(worker: &mut RolloutWorker, transport: &mut impl ActorTransport, batch_steps: usize) -> Result<(), String> {
    let envs = worker.n_envs();
    let steps_per_env = (batch_steps / envs).max(1);
    let (mut last_stats, mut steps_at_stats) = (Instant::now(), worker.steps());
    loop {
        if let Some(p) = transport.newer_params(worker.policy_version())? {
            worker.set_policy(&p).map_err(|e| e.to_string())?;
        }
        let granted = transport.reserve((steps_per_env * envs) as u64, envs as u64)?;
        if granted == 0 {
            return Ok(());
        }
        let mut batch = TransitionBatch::default();
        worker.collect(granted as usize / envs, &mut batch).map_err(|e| e.to_string())?;
        if !transport.send(batch)? {
            return Ok(());
        }
        if last_stats.elapsed() >= Duration::from_secs(5) {
            let steps = worker.steps();
            transport.stats(ActorStats { env_steps: steps, steps_per_s: (steps - steps_at_stats) as f64 / last_stats.elapsed().as_secs_f64(), policy_version: worker.policy_version(), energy: None });
            (last_stats, steps_at_stats) = (Instant::now(), steps);
        }
    }
}

/// The local runtime's transport: a crossbeam channel, a parameter mailbox and a throttle.
pub struct LocalTransport {
    pub batches: Sender<TransitionBatch>,
    pub mailbox: Arc<ParamMailbox>,
    pub throttle: Arc<Throttle>,
}

impl ActorTransport for LocalTransport {
    fn reserve(&mut self, want: u64, unit: u64) -> Result<u64, String> {
        Ok(self.throttle.reserve(want, unit))
    }

    fn send(&mut self, batch: TransitionBatch) -> Result<bool, String> {
        Ok(self.batches.send(batch).is_ok())
    }

    fn newer_params(&mut self, have: u64) -> Result<Option<Arc<ParamSet>>, String> {
        Ok(self.mailbox.newer_than(have))
    }
}

/// QUIC to a `spikerl learner`: credit for steps, batches out, the newest parameters in.
pub struct QuicTransport<'a> {
    pub link: &'a ActorLink,
}

impl QuicTransport<'_> {
    /// A closed link is the end of the run when the learner said so, an error otherwise.
    fn ended(&self, e: impl std::fmt::Display) -> Result<(), String> {
        if self.link.closed().as_deref() == Some(RUN_OVER) { Ok(()) } else { Err(e.to_string()) }
    }
}

impl ActorTransport for QuicTransport<'_> {
    fn reserve(&mut self, want: u64, unit: u64) -> Result<u64, String> {
        match self.link.reserve(want, unit) {
            Ok(granted) => Ok(granted),
            Err(e) => self.ended(e).map(|()| 0),
        }
    }

    fn send(&mut self, batch: TransitionBatch) -> Result<bool, String> {
        match self.link.send(batch) {
            Ok(()) => Ok(true),
            Err(e) => self.ended(e).map(|()| false),
        }
    }

    fn newer_params(&mut self, _have: u64) -> Result<Option<Arc<ParamSet>>, String> {
        match self.link.take_params() {
            Some(bytes) => ParamSet::decode(&bytes).map(|p| Some(Arc::new(p))).map_err(|e| format!("the learner's parameters: {e}")),
            None => Ok(None),
        }
    }

    fn stats(&mut self, stats: ActorStats) {
        // A remote actor's process meters itself; the learner's cannot see this machine.
        let _ = self.link.send_stats(ActorStats { energy: crate::energy::process_energy(), ..stats });
    }
}
