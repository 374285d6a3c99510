//! Local actors: A threads in this process, each a `RolloutWorker` stepping its envs with the
//! newest parameters (from a [`ParamMailbox`]) and sending batches over a crossbeam channel.
//! They reserve env steps against a [`Throttle`] the learner raises as it updates, so they
//! wait when they are ahead.

use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Result;
use crossbeam_channel::{Receiver, bounded};
use spikerl_actors::{LocalTransport, ParamMailbox, RolloutWorker, Throttle, run_actor};
use spikerl_net::TransitionBatch;
use spikerl_snn::ParamSet;

use super::LearnerTransport;

/// What every local actor is told.
pub struct ActorThreadsOptions {
    pub env_id: String,
    pub actors: usize,
    pub envs_per_actor: usize,
    /// Transitions per batch (about: whole steps of every env).
    pub batch_steps: usize,
    pub seed: u64,
    /// Uniform-random env steps still to take, shared by the actors.
    pub random_steps: u64,
    pub act_noise: f32,
    /// The run's env steps when this session started: the throttle counts from there.
    pub base: u64,
    /// Env steps the actors may take before the learner first raises the budget.
    pub initial_allowance: u64,
}

pub struct ActorThreads {
    batches: Receiver<TransitionBatch>,
    mailbox: Arc<ParamMailbox>,
    throttle: Arc<Throttle>,
    base: u64,
    threads: Vec<JoinHandle<Result<(), String>>>,
}

impl ActorThreads {
    /// Starts the actors, acting with `params` when given (a resumed run's actor), else with
    /// uniform-random actions until the first publication.
    pub fn spawn(o: ActorThreadsOptions, params: Option<ParamSet>) -> Self {
        let mailbox = Arc::new(ParamMailbox::default());
        if let Some(p) = params {
            mailbox.publish(p);
        }
        let throttle = Arc::new(Throttle::new(o.initial_allowance));
        let (tx, batches) = bounded::<TransitionBatch>(4 * o.actors);
        let threads = (0..o.actors)
            .map(|id| {
                let transport = LocalTransport { batches: tx.clone(), mailbox: mailbox.clone(), throttle: throttle.clone() };
                let env_id = o.env_id.clone();
                let seed = o.seed.wrapping_add(1 + 1000 * id as u64).wrapping_add(o.base);
                let random = o.random_steps.div_ceil(o.actors as u64);
                let (envs, noise, batch_steps) = (o.envs_per_actor, o.act_noise, o.batch_steps);
                std::thread::Builder::new()
                    .name(format!("actor-{id}"))
                    .spawn(move || actor(id as u32, &env_id, envs, seed, random, noise, batch_steps, transport))
                    .expect("spawn an actor thread")
            })
            .collect();
        Self { batches, mailbox, throttle, base: o.base, threads }
    }
}

#[allow(clippy::too_many_arguments)]
fn actor(id: u32, env_id: &str, envs: usize, seed: u64, random_steps: u64, noise: f32, batch_steps: usize, mut transport: LocalTransport) -> Result<(), String> {
    yield_to_learner();
    let mut worker = RolloutWorker::new(id, env_id, envs, seed, random_steps, noise).map_err(|e| e.to_string())?;
    run_actor(&mut worker, &mut transport, batch_steps)
}

impl LearnerTransport for ActorThreads {
    fn batches(&self) -> &Receiver<TransitionBatch> {
        &self.batches
    }

    fn actors(&self) -> u64 {
        self.threads.iter().filter(|t| !t.is_finished()).count() as u64
    }

    fn allow(&self, env_steps: u64) {
        self.throttle.set_allowed(env_steps.saturating_sub(self.base));
    }

    fn publish(&mut self, params: &ParamSet) {
        self.mailbox.publish(params.clone());
    }

    fn close(self: Box<Self>) -> Vec<String> {
        self.throttle.stop();
        let Self { batches, threads, .. } = *self;
        drop(batches);
        let mut failures = Vec::new();
        for (id, t) in threads.into_iter().enumerate() {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("actor {id}: {e}")),
                Err(_) => failures.push(format!("actor {id} panicked")),
            }
        }
        failures
    }
}

/// Lowers this thread's scheduling priority (nice 19) below the learner's. Where the cores
/// are oversubscribed — the learner's threads fill them — an actor that preempts one learner
/// thread stalls the other at the end of the pass, so its CPU time costs the update twice;
/// at low priority it runs in the gaps the learner leaves (its serial optimiser step, waits
/// for data). The replay-ratio throttle keeps collection in step either way.
pub fn yield_to_learner() {
    #[cfg(target_os = "linux")]
    {
        unsafe extern "C" {
            fn setpriority(which: i32, who: u32, prio: i32) -> i32;
        }
        const PRIO_PROCESS: i32 = 0;
        // SAFETY: setpriority(PRIO_PROCESS, 0, n) only changes the calling thread's nice value
        // (Linux keeps it per thread); failure leaves the priority as it was.
        unsafe {
            setpriority(PRIO_PROCESS, 0, 19);
        }
    }
}
