//! The learner's own threads: one update's passes split over minibatch shards, each shard on
//! its own core, as one map over persistent threads (a thread per pass would cost a spawn and
//! lose the thread's BLAS settings every update).

use std::sync::mpsc::{Receiver, Sender, channel};

type Job = Box<dyn FnOnce() + Send>;

/// `extra` threads beside the caller's; a map runs its first job on the calling thread.
pub struct LearnerThreads {
    workers: Vec<Sender<Job>>,
}

impl LearnerThreads {
    pub fn new(extra: usize) -> Self {
        let workers = (0..extra)
            .map(|i| {
                let (tx, rx) = channel::<Job>();
                std::thread::Builder::new()
                    .name(format!("learner-{}", i + 1))
                    .spawn(move || {
                        for job in rx {
                            job();
                        }
                    })
                    .expect("spawn a learner thread");
                tx
            })
            .collect();
        Self { workers }
    }

    /// Threads a map can use, the caller's included.
    pub fn count(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs every job (at most [`LearnerThreads::count`]), one per thread, and returns their
    /// results in order. A job's captures are dropped before its result comes back.
    pub fn map<T: Send + 'static>(&self, jobs: Vec<Box<dyn FnOnce() -> T + Send>>) -> Vec<T> {
        assert!(!jobs.is_empty() && jobs.len() <= self.count(), "one job per learner thread");
        let mut jobs = jobs.into_iter();
        let first = jobs.next().expect("a job");
        let replies: Vec<Receiver<T>> = jobs
            .zip(&self.workers)
            .map(|(job, worker)| {
                let (tx, rx) = channel();
                let run: Job = Box::new(move || {
                    let result = job();
                    let _ = tx.send(result);
                });
                worker.send(run).expect("learner thread alive");
                rx
            })
            .collect();
        let mut out = vec![first()];
        out.extend(replies.into_iter().map(|rx| rx.recv().expect("a learner thread panicked")));
        out
    }
}
