//! The asynchronous runtime: the learner on this thread, its actors behind transports (local
//! threads, remote machines, or both), evaluation on a thread of its own.
//!
//! Replay ratio: the learner owes `updates_per_step` updates per env step after
//! `update_after` and takes data only while it owes updates for it; actors may run a bounded
//! distance ahead ([`Budget`]), which grows only as the learner updates — local ones wait on
//! a throttle, remote ones on credit the learner grants back as it consumes their batches.
//! Learning therefore does not depend on which side is faster.
//!
//! With several learner ranks ([`super::ranks`]) each runs this loop with its own actors, and
//! every pass begins with a round that tells each rank the run's totals: the decisions below
//! (updates owed, evaluations, checkpoints, the end) are taken on them, alike on every rank.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use crossbeam_channel::{Select, TryRecvError};
use spikerl_learner::checkpoint::Checkpoint;
use spikerl_learner::collective::Collective;
use spikerl_net::quic::{LearnerAddress, Spread};

use super::checkpoints;
use super::energy::RunEnergy;
use super::evaluator::Evaluator;
use super::output::RunOutput;
use super::ranks::{RankStates, Ranks, Report};
use super::stop::stop_requested;
use super::sync::next_mark;
use super::transport::actor_threads::{ActorThreads, ActorThreadsOptions};
use super::transport::{LearnerTransport, RemoteActors};
use super::{Learner, Run, RunSummary, eval_seed, target_reached};

/// Transitions per batch a local actor sends (about: whole steps of all its envs).
const BATCH_TRANSITIONS: usize = 64;

/// How far the actors may have collected, given the learner's progress.
struct Budget {
    updates_per_step: f64,
    update_after: u64,
    /// Steps the actors may run ahead of what the learner owes updates for.
    slack: u64,
    /// A run resumed without its replay buffer collects this far before it owes updates.
    refill_until: u64,
    /// `--steps`, rounded up to whole steps of every env.
    end: u64,
}

impl Budget {
    fn allowed(&self, learner: &Learner) -> u64 {
        if self.updates_per_step <= 0.0 {
            return self.end;
        }
        let owed = (learner.updates() as f64 / self.updates_per_step) as u64;
        ((self.update_after + owed).max(self.refill_until) + self.slack).min(self.end)
    }
}

pub fn run(run: &Run, out: &mut RunOutput, resume: Option<Checkpoint>, collective: Option<Arc<dyn Collective>>, energy: &RunEnergy) -> Result<RunSummary> {
    let c = &run.config;
    let mut learner = Learner::new(run)?;
    if let Some(ck) = &resume {
        learner.restore(ck)?;
        if ck.replay.is_none() {
            out.println("note: the checkpoint holds no replay buffer (--save-replay); updates wait for new data");
        }
    }
    let mut ranks = match collective {
        Some(collective) => {
            let saved = resume.as_ref().map(|ck| RankStates::decode(&ck.runtime)).transpose()?.flatten();
            let mine = saved.filter(|s| s.ranks.len() == collective.world_size()).map(|s| s.ranks[collective.rank()]);
            learner.join(collective.clone(), c.runtime.seed, mine)?;
            Some(Ranks::new(collective, run.task.obs_dim, c.runtime.check_every, learner.updates()))
        }
        None => None,
    };
    let (rank, world) = ranks.as_ref().map_or((0, 1), |r| (r.rank(), r.world()));
    let session_start = (learner.run_env_steps, learner.updates());
    let checkpointer = checkpoints::Checkpointer { energy, session_start };
    let envs = c.runtime.envs_per_actor;
    let steps_per_env = (BATCH_TRANSITIONS / envs).max(1);
    // Each rank collects its share of the run's steps.
    let share = |steps: u64| steps.div_ceil(world as u64);
    let budget = Budget {
        updates_per_step: c.algorithm.updates_per_step,
        update_after: share(c.algorithm.updates_start()),
        slack: (2 * run.actors as u64 * (steps_per_env * envs) as u64).max(c.algorithm.update_every),
        refill_until: if learner.replay.is_empty() { learner.env_steps + share(c.algorithm.updates_start()) } else { 0 },
        end: share(c.schedule.steps).div_ceil(envs as u64) * envs as u64,
    };

    let mut transports: Vec<Box<dyn LearnerTransport>> = Vec::new();
    if run.actors > 0 {
        let options = ActorThreadsOptions {
            env_id: c.env.clone(),
            actors: run.actors,
            envs_per_actor: envs,
            batch_steps: steps_per_env * envs,
            // Every rank's actors step envs of their own.
            seed: c.runtime.seed.wrapping_add((rank as u64).wrapping_mul(0x9E37_79B9)),
            random_steps: share(c.algorithm.start_steps).saturating_sub(learner.env_steps),
            act_noise: c.algorithm.act_noise,
            base: learner.env_steps,
            initial_allowance: budget.allowed(&learner).saturating_sub(learner.env_steps),
        };
        transports.push(Box::new(ActorThreads::spawn(options, (learner.version > 0).then(|| learner.params()))));
    }
    if let Some(remote) = &run.remote {
        let run_id = run.out.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned());
        let spread = match &ranks {
            Some(r) => spread_actors(r, &remote.advertise)?,
            None => None,
        };
        let actors = RemoteActors::listen(remote, &run_id, &c.env, c.algorithm.act_noise, &learner.params(), spread)?;
        out.println(format!("listening for actors on {} (QUIC)", actors.local_addr()));
        transports.push(Box::new(actors));
    }
    // Rank 0 evaluates, checkpoints and reports for the run.
    let evaluator = (rank == 0).then(|| Evaluator::spawn(&c.env, c.schedule.eval_episodes, eval_seed(run)));

    let result = learn(run, out, &mut learner, &mut ranks, &mut transports, &budget, evaluator.as_ref(), &checkpointer);
    let actor_energy: Vec<_> = transports.iter_mut().flat_map(|t| t.energy()).collect();
    let failures: Vec<String> = transports.into_iter().flat_map(|t| t.close()).collect();
    result?;
    if let Some(evaluator) = evaluator {
        // Last evaluation, then the final checkpoint.
        if !target_reached(run, out) && out.evals.last().is_none_or(|e| e.env_steps != learner.run_env_steps) {
            evaluator.submit(learner.run_env_steps, learner.updates(), learner.params());
        }
        evaluator.finish(out)?;
        checkpointer.save(run, &learner, out, rank_states(&ranks))?;
    }
    for f in &failures {
        tracing::warn!("{f}");
    }
    Ok(RunSummary { actor_energy, ..RunSummary::new(&learner, out, session_start) })
}

/// With several learners taking remote actors: every learner's address, from each to all;
/// rank 0, the one actors dial, spreads them.
fn spread_actors(ranks: &Ranks, mine: &LearnerAddress) -> Result<Option<Arc<Spread>>> {
    let c = ranks.collective();
    let mut learners = Vec::new();
    for r in 0..c.world_size() {
        let mut bytes = if r == c.rank() { format!("{} {}", mine.addr, mine.server_name).into_bytes() } else { Vec::new() };
        c.broadcast(&mut bytes, r)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let (addr, name) = text.split_once(' ').with_context(|| format!("learner rank {r} sent no address"))?;
        learners.push(LearnerAddress { addr: addr.parse().with_context(|| format!("learner rank {r}'s address {addr}"))?, server_name: name.to_string() });
    }
    Ok((c.rank() == 0).then(|| Arc::new(Spread::new(0, learners))))
}

/// What a checkpoint keeps of every rank (nothing with one learner).
fn rank_states(ranks: &Option<Ranks>) -> Vec<u8> {
    ranks.as_ref().map_or_else(Vec::new, |r| RankStates { ranks: r.last().to_vec() }.encode())
}

/// The learner's loop: take batches while updates are owed for them, update, publish, and
/// evaluate, checkpoint and report on schedule, until `--steps`, Ctrl-C or the target return.
#[allow(clippy::too_many_arguments)]
fn learn(run: &Run, out: &mut RunOutput, learner: &mut Learner, ranks: &mut Option<Ranks>, transports: &mut [Box<dyn LearnerTransport>], budget: &Budget, evaluator: Option<&Evaluator>, checkpointer: &checkpoints::Checkpointer) -> Result<()> {
    let (c, s) = (&run.config.algorithm, &run.config.schedule);
    let mut next_eval = next_mark(learner.run_env_steps, s.eval_every);
    let mut next_checkpoint = next_mark(learner.run_env_steps, s.checkpoint_every);
    let mut last_publish = learner.updates();
    let mut target_hit = false;
    loop {
        for t in transports.iter_mut() {
            for line in t.poll(c.start_steps.saturating_sub(learner.run_env_steps)) {
                out.println(line);
            }
        }
        // Take data only while the learner owes updates for it; one batch per transport in
        // turn, so that no transport starves another.
        let mut got = false;
        let mut stopped = 0;
        while learner.env_steps < budget.allowed(learner) {
            let mut any = false;
            stopped = 0;
            for t in transports.iter_mut() {
                match t.batches().try_recv() {
                    Ok(batch) => {
                        let accepted = match learner.ingest(&batch) {
                            Ok(()) => true,
                            Err(e) => {
                                tracing::warn!("dropped a batch from actor {}: {e}", batch.actor_id);
                                false
                            }
                        };
                        t.taken(&batch, accepted, learner.version);
                        any = true;
                    }
                    Err(TryRecvError::Disconnected) => stopped += 1,
                    Err(TryRecvError::Empty) => {}
                }
            }
            if !any {
                break;
            }
            got = true;
        }
        // The run's totals and stop requests, from every rank.
        let stop = match ranks {
            Some(r) => {
                let round = r.round(learner, Report { stop: stop_requested(), target_reached: target_hit, actors: transports.iter().map(|t| t.actors()).sum() })?;
                target_hit = round.target_reached;
                let loads: Vec<u64> = r.last().iter().map(|f| f.actors).collect();
                for t in transports.iter() {
                    t.learner_loads(&loads);
                }
                round.stop
            }
            None => stop_requested(),
        };
        if target_hit {
            return Ok(());
        }
        let done = learner.run_env_steps >= s.steps || stop;
        if learner.updates() < learner.updates_due() && !stop {
            learner.update()?;
            if learner.updates() - last_publish >= s.publish_every {
                let params = learner.publish();
                for t in transports.iter_mut() {
                    t.publish(&params);
                }
                last_publish = learner.updates();
            }
        } else if done {
            break;
        } else if !got {
            if stopped == transports.len() {
                bail!("every actor stopped before the run ended (see the log above)");
            }
            // Nothing to do until data arrives.
            let mut select = Select::new();
            for t in transports.iter() {
                select.recv(t.batches());
            }
            let _ = select.ready_timeout(Duration::from_millis(20));
        }
        let allowed = budget.allowed(learner);
        for t in transports.iter() {
            t.allow(allowed);
        }
        if learner.run_env_steps >= next_eval && !done {
            if let Some(e) = evaluator {
                e.submit(learner.run_env_steps, learner.updates(), learner.params());
            }
            next_eval = next_mark(learner.run_env_steps, s.eval_every);
        }
        if let Some(e) = evaluator {
            while let Some(steps) = e.collect_one(out)? {
                if target_reached(run, out) {
                    out.println(format!("target return reached at {steps} env steps"));
                    // Alone, stop now; with other ranks, at the next round, together.
                    target_hit = true;
                    if ranks.is_none() {
                        return Ok(());
                    }
                }
            }
        }
        if learner.run_env_steps >= next_checkpoint && !done {
            if evaluator.is_some() {
                checkpointer.save(run, learner, out, rank_states(ranks))?;
            }
            next_checkpoint = next_mark(learner.run_env_steps, s.checkpoint_every);
        }
        out.tick(learner.run_env_steps, learner.updates(), Duration::from_secs(2), |r| {
            learner.fill_progress(r);
            for t in transports.iter_mut() {
                t.report(r);
            }
            if let Some(ranks) = ranks.as_ref().filter(|r| r.world() > 1) {
                r.learner_ranks = Some(ranks.last().to_vec());
            }
        })?;
    }
    Ok(())
}
