//! The local runtime: one learner (this thread) and A actor threads in one process, with
//! crossbeam channels between them — the same actor and learner code as the distributed mode.
//!
//! Replay ratio: the learner owes `updates_per_step` updates per env step after
//! `update_after` and waits for data when it is ahead; actors reserve env steps against a
//! budget ([`Throttle`]) that grows only as the learner updates, so they wait when they are
//! ahead. Learning therefore does not depend on which side is faster.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Result, bail};
use crossbeam_channel::{Receiver, RecvTimeoutError, Select, Sender, bounded, unbounded};
use spikerl_actors::{EvalResult, LocalTransport, ParamMailbox, RolloutWorker, Throttle, evaluate, run_actor};
use spikerl_learner::checkpoint::Checkpoint;
use spikerl_net::TransitionBatch;
use spikerl_snn::ParamSet;

use super::output::RunOutput;
use super::remote::Remote;
use super::sync::{fill_progress, next_mark};
use super::{Learner, RunSummary, TrainOptions, eval_seed, save_checkpoint, target_reached};

/// Transitions per batch an actor sends (about; whole steps of all its envs).
const BATCH_TRANSITIONS: usize = 64;

struct EvalJob {
    env_steps: u64,
    updates: u64,
    params: Arc<ParamSet>,
}

pub fn run(opts: &TrainOptions, out: &mut RunOutput, resume: Option<Checkpoint>) -> Result<RunSummary> {
    let c = opts.config.clone();
    let probe = spikerl_envs::make(&opts.env_id)?;
    let (obs_dim, act_dim) = (probe.spec().obs_dim(), probe.spec().act_dim());
    let act_limit = probe.spec().action_space.high.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let mut learner = Learner::new(opts, act_limit, obs_dim, act_dim)?;
    if let Some(ck) = &resume {
        learner.restore(ck)?;
        if ck.replay.is_none() {
            out.println("note: the checkpoint holds no replay buffer (--save-replay); updates wait for new data");
        }
    }
    let session_start = (learner.env_steps, learner.td3.updates());

    let mailbox = Arc::new(ParamMailbox::default());
    if learner.version > 0 {
        mailbox.publish(learner.td3.param_set(learner.version));
    }
    let mut remote = match &opts.remote {
        Some(r) => {
            let run_id = opts.out.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned());
            let remote = Remote::listen(r, &run_id, &opts.env_id, c.act_noise, &learner.td3.param_set(learner.version))?;
            out.println(format!("listening for actors on {} (QUIC)", remote.link.local_addr()));
            Some(remote)
        }
        None => None,
    };
    let steps_per_env = (BATCH_TRANSITIONS / opts.envs_per_actor).max(1);
    let per_batch = (steps_per_env * opts.envs_per_actor) as u64;
    let slack = (2 * opts.actors as u64 * per_batch).max(c.update_every);
    let envs = opts.envs_per_actor as u64;
    let refill_until = if learner.replay.is_empty() { learner.env_steps + c.update_after } else { 0 };
    let allowed = |l: &Learner| -> u64 {
        if c.updates_per_step <= 0.0 {
            return opts.steps.div_ceil(envs) * envs;
        }
        let owed = (l.td3.updates() as f64 / c.updates_per_step) as u64;
        // Resumed without its replay buffer: collect update_after fresh steps before the
        // learner can owe anything again.
        let floor = (c.update_after + owed).max(refill_until);
        // Whole steps of every env: the last batch may overshoot --steps by less than that.
        (floor + slack).min(opts.steps.div_ceil(envs) * envs)
    };
    let throttle = Arc::new(Throttle::new(allowed(&learner).saturating_sub(learner.env_steps)));
    let base = learner.env_steps;
    let (tx, rx) = bounded::<TransitionBatch>(4 * opts.actors);
    let random_left = c.start_steps.saturating_sub(learner.env_steps);
    let actors: Vec<JoinHandle<Result<(), String>>> = (0..opts.actors)
        .map(|id| {
            let (tx, mailbox, throttle) = (tx.clone(), mailbox.clone(), throttle.clone());
            let env_id = opts.env_id.clone();
            let seed = opts.seed.wrapping_add(1 + 1000 * id as u64).wrapping_add(base);
            let random = random_left.div_ceil(opts.actors as u64);
            let (envs, noise) = (opts.envs_per_actor, c.act_noise);
            std::thread::Builder::new()
                .name(format!("actor-{id}"))
                .spawn(move || actor_loop(id as u32, &env_id, envs, seed, random, noise, steps_per_env, &tx, &mailbox, &throttle))
                .expect("spawn actor thread")
        })
        .collect();
    drop(tx);
    let (eval_tx, eval_rx, evaluator) = spawn_evaluator(opts);

    let result = learn(opts, out, &mut learner, &rx, &mut remote, &mailbox, &throttle, base, &allowed, &eval_tx, &eval_rx);
    if let Some(remote) = remote {
        remote.link.close(spikerl_net::quic::RUN_OVER);
    }
    throttle.stop();
    drop(rx);
    let mut failures = Vec::new();
    for (id, a) in actors.into_iter().enumerate() {
        match a.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("actor {id}: {e}")),
            Err(_) => failures.push(format!("actor {id} panicked")),
        }
    }
    result?;
    // Last evaluation, then the final checkpoint.
    if !target_reached(opts, out) && out.evals.last().is_none_or(|e| e.env_steps != learner.env_steps) {
        let _ = eval_tx.send(EvalJob { env_steps: learner.env_steps, updates: learner.td3.updates(), params: Arc::new(learner.td3.param_set(learner.version)) });
    }
    drop(eval_tx);
    for ((steps, updates, params), r) in eval_rx.iter() {
        let r = r?;
        out.eval(steps, updates, r.mean(), r.std(), r.mean_len(), Some(&params))?;
    }
    let _ = evaluator.join();
    save_checkpoint(opts, &learner, out, Vec::new())?;
    for f in &failures {
        tracing::warn!("{f}");
    }
    Ok(RunSummary::new(&learner, out, session_start))
}

#[allow(clippy::too_many_arguments)]
fn learn(
    opts: &TrainOptions,
    out: &mut RunOutput,
    learner: &mut Learner,
    rx: &Receiver<TransitionBatch>,
    remote: &mut Option<Remote>,
    mailbox: &ParamMailbox,
    throttle: &Throttle,
    base: u64,
    allowed: &dyn Fn(&Learner) -> u64,
    eval_tx: &Sender<EvalJob>,
    eval_rx: &Receiver<EvalReply>,
) -> Result<()> {
    let c = &opts.config;
    let mut next_eval = next_mark(learner.env_steps, opts.eval_every);
    let mut next_checkpoint = next_mark(learner.env_steps, opts.checkpoint_every);
    let mut last_publish = learner.td3.updates();
    let ingest = |learner: &mut Learner, batch: TransitionBatch| -> bool {
        match learner.ingest(&batch) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("dropped a batch from actor {}: {e}", batch.actor_id);
                false
            }
        }
    };
    let local_actors = opts.actors > 0;
    loop {
        // Connections first, so that an actor's batches count from its first one.
        if let Some(r) = remote.as_mut() {
            for line in r.poll_events() {
                out.println(line);
            }
            r.set_random_steps(c.start_steps.saturating_sub(learner.env_steps));
        }
        // Take data only while the learner owes updates for it: remote actors are paused by
        // their streams' flow control, local ones by the throttle.
        let mut got = false;
        while learner.env_steps < allowed(learner) {
            let mut any = false;
            if let Ok(batch) = rx.try_recv() {
                ingest(learner, batch);
                any = true;
            }
            if let Some(r) = remote.as_mut()
                && let Ok(batch) = r.link.batches.try_recv()
            {
                let ok = ingest(learner, batch.clone());
                r.note_batch(&batch, learner.version, ok);
                r.link.consumed(batch.actor_id, batch.len() as u64);
                any = true;
            }
            if !any {
                break;
            }
            got = true;
        }
        let done = learner.env_steps >= opts.steps || super::stop_requested();
        if learner.td3.updates() < learner.updates_due() && !super::stop_requested() {
            learner.update();
            if learner.td3.updates() - last_publish >= c.publish_every {
                let params = learner.publish();
                if let Some(r) = remote.as_ref() {
                    r.publish(&params);
                }
                mailbox.publish(params);
                last_publish = learner.td3.updates();
            }
        } else if done {
            break;
        } else if !got {
            // Nothing to do until data arrives.
            if remote.is_none() {
                match rx.recv_timeout(Duration::from_millis(20)) {
                    Ok(batch) => {
                        ingest(learner, batch);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => bail!("every actor stopped before the run ended (see the log above)"),
                }
            } else {
                let mut select = Select::new();
                if local_actors {
                    select.recv(rx);
                }
                if let Some(r) = remote.as_ref() {
                    select.recv(&r.link.batches);
                }
                let _ = select.ready_timeout(Duration::from_millis(20));
            }
        }
        throttle.set_allowed(allowed(learner).saturating_sub(base));
        if learner.env_steps >= next_eval && !done {
            let job = EvalJob { env_steps: learner.env_steps, updates: learner.td3.updates(), params: Arc::new(learner.td3.param_set(learner.version)) };
            let _ = eval_tx.send(job);
            next_eval = next_mark(learner.env_steps, opts.eval_every);
        }
        while let Ok(((steps, updates, params), r)) = eval_rx.try_recv() {
            let r = r?;
            out.eval(steps, updates, r.mean(), r.std(), r.mean_len(), Some(&params))?;
            if target_reached(opts, out) {
                out.println(format!("target return reached at {steps} env steps"));
                return Ok(());
            }
        }
        if learner.env_steps >= next_checkpoint && !done {
            save_checkpoint(opts, learner, out, Vec::new())?;
            next_checkpoint = next_mark(learner.env_steps, opts.checkpoint_every);
        }
        out.tick(learner.env_steps, learner.td3.updates(), Duration::from_secs(2), |r| {
            fill_progress(learner, r);
            if let Some(remote) = remote.as_mut() {
                r.remote_actors = Some(remote.reports());
            }
        })?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn actor_loop(
    id: u32,
    env_id: &str,
    envs: usize,
    seed: u64,
    random_steps: u64,
    noise: f32,
    steps_per_env: usize,
    tx: &Sender<TransitionBatch>,
    mailbox: &Arc<ParamMailbox>,
    throttle: &Arc<Throttle>,
) -> Result<(), String> {
    yield_to_learner();
    let mut worker = RolloutWorker::new(id, env_id, envs, seed, random_steps, noise).map_err(|e| e.to_string())?;
    let mut transport = LocalTransport { batches: tx.clone(), mailbox: mailbox.clone(), throttle: throttle.clone() };
    run_actor(&mut worker, &mut transport, steps_per_env * envs)
}

/// Lowers this thread's scheduling priority (nice 19) below the learner's. Where the cores
/// are oversubscribed — the learner's threads fill them — an actor that preempts one learner
/// thread stalls the other at the end of the pass, so its CPU time costs the update twice;
/// at low priority it runs in the gaps the learner leaves (its serial optimiser step, waits
/// for data). The replay-ratio throttle keeps collection in step either way.
fn yield_to_learner() {
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

type EvalReply = ((u64, u64, Arc<ParamSet>), Result<EvalResult, anyhow::Error>);

/// A thread that evaluates parameter snapshots in order, off the learner's path.
fn spawn_evaluator(opts: &TrainOptions) -> (Sender<EvalJob>, Receiver<EvalReply>, JoinHandle<()>) {
    let (job_tx, job_rx) = unbounded::<EvalJob>();
    let (res_tx, res_rx) = unbounded();
    let (env_id, episodes, seed) = (opts.env_id.clone(), opts.config.eval_episodes, eval_seed(opts));
    let handle = std::thread::Builder::new()
        .name("evaluator".into())
        .spawn(move || {
            yield_to_learner();
            for job in job_rx {
                let r = evaluate(&job.params, &env_id, episodes, seed).map_err(anyhow::Error::from);
                if res_tx.send(((job.env_steps, job.updates, job.params), r)).is_err() {
                    return;
                }
            }
        })
        .expect("spawn evaluator thread");
    (job_tx, res_rx, handle)
}
