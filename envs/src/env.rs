//! The Gymnasium-style environment API every task implements.

use std::fmt;

/// Errors a caller can cause. A rejected call leaves the environment exactly as it was.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum EnvError {
    #[error("action has {got} values, the task expects {expected}")]
    ActionDim { expected: usize, got: usize },
    #[error("action[{index}] is {value}: actions must be finite")]
    NonFiniteAction { index: usize, value: f32 },
    #[error("observation buffer has {got} values, the task produces {expected}")]
    ObsDim { expected: usize, got: usize },
    #[error("step() called before reset()")]
    NeedsReset,
    #[error("unknown environment '{0}' (known: {1})")]
    UnknownEnv(String, String),
    #[error("cannot load model '{path}': {reason}")]
    Model { path: String, reason: String },
    #[error("{id}: {reason}")]
    Gym { id: String, reason: String },
    #[error("saved env state does not fit {task}: {reason}")]
    Snapshot { task: String, reason: String },
}

/// An env's whole dynamic state (simulation, episode clock, random generator), for
/// checkpoints: restoring it continues the run bitwise.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct EnvSnapshot {
    pub floats: Vec<f64>,
    pub words: Vec<u64>,
}

/// A closed box `[low, high]` per dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxSpace {
    pub low: Vec<f32>,
    pub high: Vec<f32>,
}

impl BoxSpace {
    pub fn uniform(dim: usize, low: f32, high: f32) -> Self {
        Self { low: vec![low; dim], high: vec![high; dim] }
    }

    pub fn dim(&self) -> usize {
        self.low.len()
    }

    /// The largest |bound| over every dimension (a symmetric policy's output scale).
    pub fn max_abs(&self) -> f32 {
        self.low.iter().chain(&self.high).fold(0.0f32, |m, x| m.max(x.abs()))
    }

    /// A uniform sample into `out` (one value per dimension, repeated over `out`'s rows), each
    /// from a unit draw `unit()` on [0, 1).
    pub fn sample_into(&self, out: &mut [f32], mut unit: impl FnMut() -> f64) {
        for (i, a) in out.iter_mut().enumerate() {
            let (lo, hi) = (self.low[i % self.dim()] as f64, self.high[i % self.dim()] as f64);
            *a = (lo + (hi - lo) * unit()) as f32;
        }
    }
}

/// Static facts about a task: what `gym.make(id).spec` and its spaces say.
#[derive(Debug, Clone)]
pub struct EnvSpec {
    /// Gymnasium id, e.g. `Hopper-v4`.
    pub id: String,
    pub observation_space: BoxSpace,
    pub action_space: BoxSpace,
    /// Episodes are truncated after this many steps (Gymnasium's `TimeLimit`).
    pub max_episode_steps: u32,
    /// Simulated seconds per `step` (timestep × frame_skip).
    pub dt: f64,
    /// Names of the reward terms reported in [`StepInfo::reward_terms`], in order.
    pub reward_terms: &'static [&'static str],
}

impl EnvSpec {
    pub fn obs_dim(&self) -> usize {
        self.observation_space.dim()
    }

    pub fn act_dim(&self) -> usize {
        self.action_space.dim()
    }
}

/// Why an episode stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The task's own termination rule (e.g. the hopper fell).
    Terminated,
    /// The time limit.
    Truncated,
    /// The simulation produced a non-finite state; the episode is over.
    NonFinite,
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndReason::Terminated => "terminated",
            EndReason::Truncated => "truncated",
            EndReason::NonFinite => "non-finite",
        })
    }
}

/// Most reward terms any task reports.
pub const MAX_REWARD_TERMS: usize = 4;

/// Diagnostics of one step, like Gymnasium's `info` dict but allocation-free.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    pub x_position: f64,
    pub x_velocity: f64,
    /// The sideways position and velocity of the same point (0 for planar tasks).
    pub y_position: f64,
    pub y_velocity: f64,
    /// Reward terms in the order of [`EnvSpec::reward_terms`]; they sum to the reward.
    pub reward_terms: [f64; MAX_REWARD_TERMS],
    /// Set when this step ended the episode.
    pub end: Option<EndReason>,
}

impl StepInfo {
    pub const fn new(x_position: f64, x_velocity: f64) -> Self {
        Self { x_position, x_velocity, y_position: 0.0, y_velocity: 0.0, reward_terms: [0.0; MAX_REWARD_TERMS], end: None }
    }

    /// The value of the named reward term, if the task has it.
    pub fn reward_term(&self, spec: &EnvSpec, name: &str) -> Option<f64> {
        spec.reward_terms.iter().position(|n| *n == name).map(|i| self.reward_terms[i])
    }
}

/// What `step_into` returns besides the observation it wrote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
    pub info: StepInfo,
}

impl StepOutcome {
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// One step, owning its observation: the convenient (allocating) form.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub obs: Vec<f32>,
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
    pub info: StepInfo,
}

/// A continuous-control task with Gymnasium semantics.
///
/// Same seed and same actions give bitwise the same trajectory. Stepping after the episode
/// ended is allowed (the simulation goes on, as in Gymnasium); the time limit keeps reporting
/// `truncated`.
pub trait Env: Send {
    fn spec(&self) -> &EnvSpec;

    /// Starts an episode. `Some(seed)` reseeds the task's random generator; `None` continues
    /// its stream. Writes the first observation into `obs`.
    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<(), EnvError>;

    /// Applies `action` for one env step and writes the next observation into `obs`.
    /// A wrong-length or non-finite action is an error that changes nothing.
    fn step_into(&mut self, action: &[f32], obs: &mut [f32]) -> Result<StepOutcome, EnvError>;

    /// The whole state, see [`EnvSnapshot`].
    fn snapshot(&self) -> EnvSnapshot;

    /// Restores [`Env::snapshot`] of the same task and writes the current observation; a
    /// snapshot that does not fit is an error that changes nothing.
    fn restore(&mut self, snapshot: &EnvSnapshot, obs: &mut [f32]) -> Result<(), EnvError>;

    fn reset(&mut self, seed: Option<u64>) -> Vec<f32> {
        let mut obs = vec![0.0; self.spec().obs_dim()];
        self.reset_into(seed, &mut obs).expect("buffer sized from the spec");
        obs
    }

    fn step(&mut self, action: &[f32]) -> Result<Step, EnvError> {
        let mut obs = vec![0.0; self.spec().obs_dim()];
        let out = self.step_into(action, &mut obs)?;
        Ok(Step { obs, reward: out.reward, terminated: out.terminated, truncated: out.truncated, info: out.info })
    }
}

/// Checks an action and an observation buffer against a spec before anything is touched.
pub(crate) fn validate(spec: &EnvSpec, action: &[f32], obs: &[f32]) -> Result<(), EnvError> {
    if action.len() != spec.act_dim() {
        return Err(EnvError::ActionDim { expected: spec.act_dim(), got: action.len() });
    }
    if let Some((index, &value)) = action.iter().enumerate().find(|(_, a)| !a.is_finite()) {
        return Err(EnvError::NonFiniteAction { index, value });
    }
    check_obs_len(spec, obs)
}

pub(crate) fn check_obs_len(spec: &EnvSpec, obs: &[f32]) -> Result<(), EnvError> {
    if obs.len() != spec.obs_dim() {
        return Err(EnvError::ObsDim { expected: spec.obs_dim(), got: obs.len() });
    }
    Ok(())
}

/// Counts steps and applies Gymnasium's `TimeLimit`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EpisodeClock {
    elapsed: Option<u32>,
}

impl EpisodeClock {
    pub fn start(&mut self) {
        self.elapsed = Some(0);
    }

    /// As one word: `u64::MAX` before the first reset.
    pub fn to_word(self) -> u64 {
        self.elapsed.map_or(u64::MAX, u64::from)
    }

    pub fn from_word(w: u64) -> Option<Self> {
        match w {
            u64::MAX => Some(Self { elapsed: None }),
            w => u32::try_from(w).ok().map(|n| Self { elapsed: Some(n) }),
        }
    }

    pub fn ensure_started(&self) -> Result<(), EnvError> {
        self.elapsed.map(|_| ()).ok_or(EnvError::NeedsReset)
    }

    /// Advances one step; true when the time limit is reached.
    pub fn tick(&mut self, max_steps: u32) -> bool {
        let n = self.elapsed.get_or_insert(0);
        *n = n.saturating_add(1);
        *n >= max_steps
    }
}
