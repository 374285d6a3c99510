//! Many environments stepped together, with auto-reset, observations in one contiguous buffer,
//! optionally spread over worker threads.

use crossbeam_channel as mpsc;
use std::thread::JoinHandle;

use crate::{Env, EnvError, EnvSpec, StepInfo};

/// When an env whose episode ended starts the next one: Gymnasium 1.x's autoreset modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Autoreset {
    /// In the step that ended the episode: [`VecEnv::obs`] holds the new episode's first
    /// observation and [`VecEnv::final_obs`] the old one's last (Gymnasium's `SAME_STEP`; what
    /// rollout actors want: no step is spent on resets).
    #[default]
    SameStep,
    /// In the env's next step, which only resets it: its action is ignored and it reports
    /// reward 0, neither terminated nor truncated, and [`VecStep::reset`]; until then
    /// [`VecEnv::obs`] holds the last observation (Gymnasium's `NEXT_STEP`, its default).
    NextStep,
}

/// One environment's result of a [`VecEnv::step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VecStep {
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
    pub info: StepInfo,
    /// This step reset the env instead of stepping it ([`Autoreset::NextStep`]); `info` is blank.
    pub reset: bool,
}

impl VecStep {
    const BLANK: Self = Self { reward: 0.0, terminated: false, truncated: false, info: StepInfo::new(0.0, 0.0), reset: false };

    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// A slice of the environments with its own buffers. It moves to a worker thread for a job
/// and back, so stepping allocates nothing.
struct Chunk {
    envs: Vec<Box<dyn Env>>,
    actions: Vec<f32>,
    obs: Vec<f32>,
    final_obs: Vec<f32>,
    steps: Vec<VecStep>,
    autoreset: Autoreset,
    /// Envs whose episode ended in the last step, to reset in this one ([`Autoreset::NextStep`]).
    pending_reset: Vec<bool>,
    error: Option<EnvError>,
}

enum Job {
    Step(Box<Chunk>),
    Reset(Box<Chunk>, Option<u64>, usize),
}

impl Chunk {
    fn new(envs: Vec<Box<dyn Env>>, obs_dim: usize, act_dim: usize) -> Self {
        let n = envs.len();
        Self {
            envs,
            actions: vec![0.0; n * act_dim],
            obs: vec![0.0; n * obs_dim],
            final_obs: vec![0.0; n * obs_dim],
            steps: vec![VecStep::BLANK; n],
            autoreset: Autoreset::SameStep,
            pending_reset: vec![false; n],
            error: None,
        }
    }

    /// Env `i` gets seed `seed + first + i`.
    fn reset(&mut self, seed: Option<u64>, first: usize) {
        let obs_dim = self.obs.len() / self.envs.len().max(1);
        for (i, (env, obs)) in self.envs.iter_mut().zip(self.obs.chunks_mut(obs_dim.max(1))).enumerate() {
            if let Err(e) = env.reset_into(seed.map(|s| s.wrapping_add((first + i) as u64)), obs) {
                self.error = Some(e);
            }
        }
        self.pending_reset.fill(false);
    }

    fn step(&mut self) {
        let n = self.envs.len();
        if n == 0 {
            return;
        }
        let obs_dim = self.obs.len() / n;
        let act_dim = self.actions.len() / n;
        for (i, env) in self.envs.iter_mut().enumerate() {
            let obs = &mut self.obs[i * obs_dim..(i + 1) * obs_dim];
            if std::mem::take(&mut self.pending_reset[i]) {
                self.steps[i] = VecStep { reset: true, ..VecStep::BLANK };
                if let Err(e) = env.reset_into(None, obs) {
                    self.error = Some(e);
                }
                continue;
            }
            let action = &self.actions[i * act_dim..(i + 1) * act_dim];
            match env.step_into(action, obs) {
                Ok(out) => {
                    self.steps[i] = VecStep { reward: out.reward, terminated: out.terminated, truncated: out.truncated, info: out.info, reset: false };
                    if out.done() {
                        self.final_obs[i * obs_dim..(i + 1) * obs_dim].copy_from_slice(obs);
                        match self.autoreset {
                            Autoreset::SameStep => {
                                if let Err(e) = env.reset_into(None, obs) {
                                    self.error = Some(e);
                                }
                            }
                            Autoreset::NextStep => self.pending_reset[i] = true,
                        }
                    }
                }
                Err(e) => self.error = Some(e),
            }
        }
    }
}

struct Worker {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<Box<Chunk>>,
    thread: Option<JoinHandle<()>>,
}

/// N environments of one task.
///
/// `step` takes all actions (`n × act_dim`, row-major), writes all next observations into
/// [`VecEnv::obs`] (`n × obs_dim`) and resets finished episodes at once: then `obs` holds the
/// new episode's first observation and [`VecEnv::final_obs`] the last one of the old episode.
pub struct VecEnv {
    spec: EnvSpec,
    n: usize,
    obs: Vec<f32>,
    final_obs: Vec<f32>,
    steps: Vec<VecStep>,
    /// Chunks at home (none are in flight between calls).
    chunks: Vec<Option<Box<Chunk>>>,
    /// First env index of each chunk.
    offsets: Vec<usize>,
    workers: Vec<Worker>,
}

impl VecEnv {
    /// `make(i)` builds env `i`; with `threads > 1` the envs are split into that many
    /// contiguous groups, each stepped by its own thread.
    pub fn new<F>(n: usize, threads: usize, mut make: F) -> Result<Self, EnvError>
    where
        F: FnMut(usize) -> Result<Box<dyn Env>, EnvError>,
    {
        assert!(n > 0, "a VecEnv needs at least one environment");
        let envs: Vec<Box<dyn Env>> = (0..n).map(&mut make).collect::<Result<_, _>>()?;
        let spec = envs[0].spec().clone();
        if let Some(other) = envs.iter().find(|e| e.spec().id != spec.id) {
            return Err(EnvError::Model { path: other.spec().id.clone(), reason: format!("VecEnv mixes tasks with {}", spec.id) });
        }
        let threads = threads.clamp(1, n);
        let (obs_dim, act_dim) = (spec.obs_dim(), spec.act_dim());
        let mut chunks = Vec::new();
        let mut offsets = Vec::new();
        let mut rest = envs.into_iter();
        let mut first = 0;
        for t in 0..threads {
            let size = n / threads + usize::from(t < n % threads);
            offsets.push(first);
            first += size;
            chunks.push(Some(Box::new(Chunk::new(rest.by_ref().take(size).collect(), obs_dim, act_dim))));
        }
        // The calling thread steps chunk 0 itself; workers take the others.
        let workers = (1..threads).map(spawn_worker).collect::<Vec<_>>();
        Ok(Self {
            spec,
            n,
            obs: vec![0.0; n * obs_dim],
            final_obs: vec![0.0; n * obs_dim],
            steps: vec![VecStep::BLANK; n],
            chunks,
            offsets,
            workers,
        })
    }

    /// `n` copies of the task `id` (see [`crate::make`]).
    pub fn make(id: &str, n: usize, threads: usize) -> Result<Self, EnvError> {
        Self::new(n, threads, |_| crate::make(id))
    }

    /// Chooses when finished episodes restart (by default [`Autoreset::SameStep`]).
    pub fn with_autoreset(mut self, mode: Autoreset) -> Self {
        for chunk in self.chunks.iter_mut().flatten() {
            chunk.autoreset = mode;
        }
        self
    }

    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn threads(&self) -> usize {
        self.chunks.len()
    }

    /// Current observations, `n × obs_dim`.
    pub fn obs(&self) -> &[f32] {
        &self.obs
    }

    /// Last observation of the episode env `i` just finished (valid when its step was done).
    pub fn final_obs(&self, i: usize) -> &[f32] {
        let d = self.spec.obs_dim();
        &self.final_obs[i * d..(i + 1) * d]
    }

    /// Resets every env; env `i` gets `seed + i`.
    pub fn reset(&mut self, seed: Option<u64>) -> Result<&[f32], EnvError> {
        let offsets = self.offsets.clone();
        self.run(|chunk, t| Job::Reset(chunk, seed, offsets[t]))?;
        Ok(&self.obs)
    }

    /// Steps every env with its row of `actions`. Invalid actions are rejected before any env
    /// moves.
    pub fn step(&mut self, actions: &[f32]) -> Result<&[VecStep], EnvError> {
        let act_dim = self.spec.act_dim();
        if actions.len() != self.n * act_dim {
            return Err(EnvError::ActionDim { expected: self.n * act_dim, got: actions.len() });
        }
        if let Some((index, &value)) = actions.iter().enumerate().find(|(_, a)| !a.is_finite()) {
            return Err(EnvError::NonFiniteAction { index, value });
        }
        for (chunk, &first) in self.chunks.iter_mut().zip(&self.offsets) {
            let chunk = chunk.as_mut().expect("chunks are home between calls");
            let len = chunk.actions.len();
            chunk.actions.copy_from_slice(&actions[first * act_dim..first * act_dim + len]);
        }
        self.run(|chunk, _| Job::Step(chunk))?;
        Ok(&self.steps)
    }

    /// Every env's state, in order (see [`crate::EnvSnapshot`]).
    pub fn snapshot(&self) -> Vec<crate::EnvSnapshot> {
        self.chunks.iter().flat_map(|c| c.as_ref().expect("chunks are home between calls").envs.iter().map(|e| e.snapshot())).collect()
    }

    /// Restores [`VecEnv::snapshot`]; [`VecEnv::obs`] then holds each env's current
    /// observation. Wrong counts or shapes are an error (envs before the bad one are restored).
    pub fn restore(&mut self, snapshots: &[crate::EnvSnapshot]) -> Result<(), EnvError> {
        if snapshots.len() != self.n {
            return Err(EnvError::Snapshot { task: self.spec.id.clone(), reason: format!("{} env states for {} envs", snapshots.len(), self.n) });
        }
        let obs_dim = self.spec.obs_dim();
        let mut i = 0;
        for chunk in &mut self.chunks {
            for env in &mut chunk.as_mut().expect("chunks are home between calls").envs {
                env.restore(&snapshots[i], &mut self.obs[i * obs_dim..(i + 1) * obs_dim])?;
                i += 1;
            }
        }
        Ok(())
    }

    /// Runs one job per chunk (on the workers if any), then gathers the chunks' buffers.
    fn run(&mut self, mut job: impl FnMut(Box<Chunk>, usize) -> Job) -> Result<(), EnvError> {
        for (t, w) in self.workers.iter().enumerate() {
            let chunk = self.chunks[t + 1].take().expect("chunk at home");
            w.jobs.send(job(chunk, t + 1)).expect("VecEnv worker alive");
        }
        let chunk = self.chunks[0].take().expect("chunk at home");
        self.chunks[0] = Some(execute(job(chunk, 0)));
        for (t, w) in self.workers.iter().enumerate() {
            self.chunks[t + 1] = Some(recv_spinning(&w.done).expect("VecEnv worker alive"));
        }
        let (obs_dim, mut error) = (self.spec.obs_dim(), None);
        for (chunk, &first) in self.chunks.iter_mut().zip(&self.offsets) {
            let chunk = chunk.as_mut().expect("chunk at home");
            let k = chunk.envs.len();
            self.obs[first * obs_dim..(first + k) * obs_dim].copy_from_slice(&chunk.obs);
            self.final_obs[first * obs_dim..(first + k) * obs_dim].copy_from_slice(&chunk.final_obs);
            self.steps[first..first + k].copy_from_slice(&chunk.steps);
            error = error.or(chunk.error.take());
        }
        error.map_or(Ok(()), Err)
    }
}

fn execute(job: Job) -> Box<Chunk> {
    match job {
        Job::Step(mut c) => {
            c.step();
            c
        }
        Job::Reset(mut c, seed, first) => {
            c.reset(seed, first);
            c
        }
    }
}

/// Receives, spinning briefly before blocking: the next job of a stepping loop usually comes
/// within microseconds, and waking a parked thread costs tens of them. None when the sender
/// is gone.
fn recv_spinning<T>(rx: &mpsc::Receiver<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_micros(200);
    loop {
        match rx.try_recv() {
            Ok(x) => return Some(x),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if std::time::Instant::now() < deadline => std::hint::spin_loop(),
            Err(mpsc::TryRecvError::Empty) => return rx.recv().ok(),
        }
    }
}

fn spawn_worker(index: usize) -> Worker {
    let (jobs, job_rx) = mpsc::bounded::<Job>(1);
    let (done_tx, done) = mpsc::bounded(1);
    let thread = std::thread::Builder::new()
        .name(format!("vecenv-{index}"))
        .spawn(move || {
            while let Some(job) = recv_spinning(&job_rx) {
                if done_tx.send(execute(job)).is_err() {
                    break;
                }
            }
        })
        .expect("spawn VecEnv worker");
    Worker { jobs, done, thread: Some(thread) }
}

impl Drop for VecEnv {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let (tx, _) = mpsc::bounded(1);
            drop(std::mem::replace(&mut w.jobs, tx));
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}
