//! Continuous-control tasks with Gymnasium semantics and no MuJoCo: the locomotion tasks
//! ported to Rust (rapier3d builds each model from its MJCF file; MuJoCo's dynamics, integrators
//! and soft constraints run on it here), Pendulum, a threaded `VecEnv`, and `gym:ID` for
//! Gymnasium's own task in a Python process.
//!
//! ```no_run
//! use spikerl_envs::prelude::*;
//!
//! let mut env = spikerl_envs::make("Hopper-v4").unwrap();
//! let obs = env.reset(Some(0));
//! let step = env.step(&vec![0.0; env.spec().act_dim()]).unwrap();
//! println!("{} -> reward {}", obs.len(), step.reward);
//! ```

pub mod distribution;
mod env;
pub mod gym;
pub mod locomotion;
mod pendulum;
pub mod reference;
pub mod render;
mod registry;
pub mod rng;
mod vec_env;

pub use env::{BoxSpace, EndReason, Env, EnvError, EnvSnapshot, EnvSpec, MAX_REWARD_TERMS, Step, StepInfo, StepOutcome};
pub use pendulum::Pendulum;
pub use registry::{ENV_IDS, canonical_id, make, make_locomotion};
pub use vec_env::{Autoreset, VecEnv, VecStep};

pub mod prelude {
    pub use crate::{Autoreset, BoxSpace, EndReason, Env, EnvError, EnvSpec, Step, StepInfo, StepOutcome, VecEnv, make};
}
