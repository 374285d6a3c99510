//! `--sync`: the published TD3 loop in one thread — collect `update_every` env steps, then
//! run as many updates, act with the newest actor — reproducible bitwise from its seed, and
//! across a checkpoint and `--resume` when the replay buffer is saved.

use anyhow::{Context, Result};
use spikerl_actors::{RolloutWorker, WorkerSnapshot};
use spikerl_learner::checkpoint::Checkpoint;
use spikerl_net::TransitionBatch;

use super::energy::RunEnergy;
use super::output::RunOutput;
use super::stop::stop_requested;
use super::{Learner, Run, RunSummary, checkpoints, eval_seed, target_reached};

pub fn run(run: &Run, out: &mut RunOutput, resume: Option<Checkpoint>, energy: &RunEnergy) -> Result<RunSummary> {
    let (c, s) = (&run.config.algorithm, &run.config.schedule);
    let envs = run.config.runtime.envs_per_actor;
    let mut worker = RolloutWorker::new(0, &run.config.env, envs, run.config.runtime.seed, c.start_steps, c.act_noise)?;
    let mut learner = Learner::new(run)?;
    if let Some(ck) = &resume {
        learner.restore(ck)?;
        let (state, _): (WorkerSnapshot, usize) =
            bincode::serde::decode_from_slice(&ck.runtime, bincode::config::standard()).context("checkpoint's env state is corrupt")?;
        worker.restore(&state)?;
        if learner.version > 0 {
            worker.set_policy(&learner.params())?;
        }
        if ck.replay.is_none() {
            out.println("note: the checkpoint holds no replay buffer (--save-replay); updates wait for new data");
        }
    }
    let per_env = (c.update_every as usize / envs).max(1);
    let mut batch = TransitionBatch::default();
    let mut next_eval = next_mark(learner.env_steps, s.eval_every);
    let mut next_checkpoint = next_mark(learner.env_steps, s.checkpoint_every);
    let session_start = (learner.env_steps, learner.updates());
    let checkpointer = checkpoints::Checkpointer { energy, session_start };

    while learner.env_steps < s.steps && !stop_requested() {
        let per_env = per_env.min(((s.steps - learner.env_steps) as usize).div_ceil(envs));
        worker.collect(per_env, &mut batch)?;
        learner.ingest(&batch).map_err(anyhow::Error::msg)?;
        let before = learner.updates();
        while learner.updates() < learner.updates_due() {
            learner.update()?;
        }
        if learner.updates() > before {
            worker.set_policy(&learner.publish())?;
        }
        if learner.env_steps >= next_eval {
            evaluate(run, &learner, out)?;
            next_eval = next_mark(learner.env_steps, s.eval_every);
            if target_reached(run, out) {
                out.println(format!("target return reached at {} env steps", learner.env_steps));
                break;
            }
        }
        if learner.env_steps >= next_checkpoint {
            checkpointer.save(run, &learner, out, runtime_state(&worker))?;
            next_checkpoint = next_mark(learner.env_steps, s.checkpoint_every);
        }
        out.tick(learner.env_steps, learner.updates(), std::time::Duration::from_secs(2), |r| learner.fill_progress(r))?;
    }
    if out.evals.last().is_none_or(|e| e.env_steps != learner.env_steps) {
        evaluate(run, &learner, out)?;
    }
    checkpointer.save(run, &learner, out, runtime_state(&worker))?;
    Ok(RunSummary::new(&learner, out, session_start))
}

/// Evaluates the learner's current policy (no noise) in this thread and logs it.
fn evaluate(run: &Run, learner: &Learner, out: &mut RunOutput) -> Result<()> {
    let params = learner.params();
    let r = spikerl_actors::evaluate(&params, &run.config.env, run.config.schedule.eval_episodes, eval_seed(run))?;
    out.last_eval_counts = Some(r.counts.clone());
    out.eval(learner.env_steps, learner.updates(), r.mean(), r.std(), r.mean_len(), Some(&params))
}

fn runtime_state(worker: &RolloutWorker) -> Vec<u8> {
    bincode::serde::encode_to_vec(worker.snapshot(), bincode::config::standard()).expect("worker state encodes")
}

/// The first multiple of `every` above `now` (never, for 0).
pub fn next_mark(now: u64, every: u64) -> u64 {
    now.checked_div(every).map_or(u64::MAX, |k| (k + 1) * every)
}
