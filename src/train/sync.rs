//! `--sync`: the published TD3 loop in one thread — collect `update_every` env steps, then
//! run as many updates, act with the newest actor — reproducible bitwise from its seed, and
//! across a checkpoint and `--resume` when the replay buffer is saved.

use anyhow::{Context, Result};
use spikerl_actors::{RolloutWorker, WorkerSnapshot};
use spikerl_learner::checkpoint::Checkpoint;
use spikerl_net::TransitionBatch;

use super::output::RunOutput;
use super::{Learner, RunSummary, TrainOptions, evaluate_into, save_checkpoint, target_reached};

pub fn run(opts: &TrainOptions, out: &mut RunOutput, resume: Option<Checkpoint>) -> Result<RunSummary> {
    let c = &opts.config;
    let envs = opts.envs_per_actor;
    let mut worker = RolloutWorker::new(0, &opts.env_id, envs, opts.seed, c.start_steps, c.act_noise)?;
    let space = worker.spec().action_space.clone();
    let act_limit = space.high.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let mut learner = Learner::new(opts, act_limit, worker.spec().obs_dim(), worker.spec().act_dim())?;
    if let Some(ck) = &resume {
        learner.restore(ck)?;
        let (state, _): (WorkerSnapshot, usize) =
            bincode::serde::decode_from_slice(&ck.runtime, bincode::config::standard()).context("checkpoint's env state is corrupt")?;
        worker.restore(&state)?;
        if learner.version > 0 {
            worker.set_policy(&learner.td3.param_set(learner.version))?;
        }
        if ck.replay.is_none() {
            out.println("note: the checkpoint holds no replay buffer (--save-replay); updates wait for new data");
        }
    }
    let per_env = (c.update_every as usize / envs).max(1);
    let mut batch = TransitionBatch::default();
    let mut next_eval = next_mark(learner.env_steps, opts.eval_every);
    let mut next_checkpoint = next_mark(learner.env_steps, opts.checkpoint_every);
    let session_start = (learner.env_steps, learner.td3.updates());

    while learner.env_steps < opts.steps && !super::stop_requested() {
        let per_env = per_env.min(((opts.steps - learner.env_steps) as usize).div_ceil(envs));
        worker.collect(per_env, &mut batch)?;
        learner.ingest(&batch).map_err(anyhow::Error::msg)?;
        let before = learner.td3.updates();
        while learner.td3.updates() < learner.updates_due() {
            learner.update();
        }
        if learner.td3.updates() > before {
            worker.set_policy(&learner.publish())?;
        }
        if learner.env_steps >= next_eval {
            evaluate_into(opts, &learner, out)?;
            next_eval = next_mark(learner.env_steps, opts.eval_every);
            if target_reached(opts, out) {
                out.println(format!("target return reached at {} env steps", learner.env_steps));
                break;
            }
        }
        if learner.env_steps >= next_checkpoint {
            save_checkpoint(opts, &learner, out, runtime_state(&worker))?;
            next_checkpoint = next_mark(learner.env_steps, opts.checkpoint_every);
        }
        out.tick(learner.env_steps, learner.td3.updates(), std::time::Duration::from_secs(2), |r| fill_progress(&mut learner, r))?;
    }
    if out.evals.last().is_none_or(|e| e.env_steps != learner.env_steps) {
        evaluate_into(opts, &learner, out)?;
    }
    save_checkpoint(opts, &learner, out, runtime_state(&worker))?;
    Ok(RunSummary::new(&learner, out, session_start))
}

pub fn runtime_state(worker: &RolloutWorker) -> Vec<u8> {
    bincode::serde::encode_to_vec(worker.snapshot(), bincode::config::standard()).expect("worker state encodes")
}

/// The first multiple of `every` above `now` (never, for 0).
pub fn next_mark(now: u64, every: u64) -> u64 {
    now.checked_div(every).map_or(u64::MAX, |k| (k + 1) * every)
}

pub fn fill_progress(learner: &mut Learner, r: &mut super::output::MetricsRecord) {
    if let Some((ret, len)) = learner.recent_return() {
        r.train_return = Some(ret);
        r.train_length = Some(len);
    }
    if let Some(s) = learner.td3.stats() {
        r.critic_loss = Some(s.critic_loss);
        r.actor_loss = s.actor_loss;
        r.q_mean = Some(s.q_mean);
    }
    r.policy_lag = learner.take_policy_lag();
    r.param_version = Some(learner.version);
}
