//! A thread that evaluates parameter snapshots in order (no exploration noise, envs of its
//! own), off the learner's path.

use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Result;
use crossbeam_channel::{Receiver, Sender, unbounded};
use spikerl_actors::{EvalResult, evaluate};
use spikerl_snn::ParamSet;

use super::output::RunOutput;
use super::transport::actor_threads::yield_to_learner;

/// Parameters to evaluate, taken at `env_steps` and `updates`.
struct Job {
    env_steps: u64,
    updates: u64,
    params: Arc<ParamSet>,
}

type Reply = (Job, Result<EvalResult>);

pub struct Evaluator {
    jobs: Sender<Job>,
    results: Receiver<Reply>,
    thread: JoinHandle<()>,
}

impl Evaluator {
    pub fn spawn(env_id: &str, episodes: usize, seed: u64) -> Self {
        let (jobs, job_rx) = unbounded::<Job>();
        let (result_tx, results) = unbounded();
        let env_id = env_id.to_string();
        let thread = std::thread::Builder::new()
            .name("evaluator".into())
            .spawn(move || {
                yield_to_learner();
                for job in job_rx {
                    let r = evaluate(&job.params, &env_id, episodes, seed).map_err(anyhow::Error::from);
                    if result_tx.send((job, r)).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn the evaluator thread");
        Self { jobs, results, thread }
    }

    pub fn submit(&self, env_steps: u64, updates: u64, params: ParamSet) {
        let _ = self.jobs.send(Job { env_steps, updates, params: Arc::new(params) });
    }

    /// Logs the next finished evaluation, if there is one; its env steps.
    pub fn collect_one(&self, out: &mut RunOutput) -> Result<Option<u64>> {
        let Ok((job, r)) = self.results.try_recv() else { return Ok(None) };
        let steps = job.env_steps;
        log(out, job, r?)?;
        Ok(Some(steps))
    }

    /// Waits for every evaluation submitted and logs them.
    pub fn finish(self, out: &mut RunOutput) -> Result<()> {
        drop(self.jobs);
        for (job, r) in self.results.iter() {
            log(out, job, r?)?;
        }
        let _ = self.thread.join();
        Ok(())
    }
}

fn log(out: &mut RunOutput, job: Job, r: EvalResult) -> Result<()> {
    out.last_eval_counts = Some(r.counts.clone());
    out.eval(job.env_steps, job.updates, r.mean(), r.std(), r.mean_len(), Some(&job.params))
}
