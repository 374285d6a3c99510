//! Environment throughput: the port on one thread and in a VecEnv, and MuJoCo measured in
//! the same run through Gymnasium when a Python with `gymnasium` and `mujoco` is given.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use spikerl_envs::rng::EnvRng;
use spikerl_envs::{Env, VecEnv};

/// Steps per second of one env with uniform random actions and auto-reset.
pub fn single_env_rate(env_id: &str, steps: usize, seed: u64) -> Result<f64> {
    let mut env = spikerl_envs::make(env_id)?;
    let mut rng = EnvRng::seed_from_u64(seed);
    let space = env.spec().action_space.clone();
    let mut obs = vec![0.0; env.spec().obs_dim()];
    let mut action = vec![0.0; env.spec().act_dim()];
    env.reset_into(Some(seed), &mut obs)?;
    let mut run = |n: usize| -> Result<()> {
        for _ in 0..n {
            space.sample_into(&mut action, || rng.next_f64());
            if env.step_into(&action, &mut obs)?.done() {
                env.reset_into(None, &mut obs)?;
            }
        }
        Ok(())
    };
    run(steps / 10)?; // warm-up
    let start = Instant::now();
    run(steps)?;
    Ok(steps as f64 / start.elapsed().as_secs_f64())
}

/// Env steps per second of a locomotion port's physics under the contact-rich raw `mj_step`
/// protocol of [`mujoco_rates`]: reset with seed 0, then zero controls with no termination and
/// no reset (a Humanoid falls and lies on the floor). None for other tasks.
pub fn physics_zero_ctrl_rate(env_id: &str, steps: usize) -> Result<Option<f64>> {
    let Ok(mut env) = spikerl_envs::make_locomotion(env_id) else { return Ok(None) };
    let mut obs = vec![0.0; env.spec().obs_dim()];
    env.reset_into(Some(0), &mut obs)?;
    let mut sim = env.physics().clone();
    let zeros = vec![0.0; env.spec().act_dim()];
    let start = Instant::now();
    for _ in 0..steps {
        sim.step(&zeros);
    }
    Ok(Some(steps as f64 / start.elapsed().as_secs_f64()))
}

/// Env steps per second of a VecEnv of `n` envs on `threads` threads.
pub fn vec_env_rate(env_id: &str, n: usize, threads: usize, steps_per_env: usize, seed: u64) -> Result<f64> {
    let mut venv = VecEnv::make(env_id, n, threads)?;
    let mut rng = EnvRng::seed_from_u64(seed);
    let act_dim = venv.spec().act_dim();
    let space = venv.spec().action_space.clone();
    let mut actions = vec![0.0; n * act_dim];
    venv.reset(Some(seed))?;
    let mut run = |k: usize| -> Result<()> {
        for _ in 0..k {
            space.sample_into(&mut actions, || rng.next_f64());
            venv.step(&actions)?;
        }
        Ok(())
    };
    run(steps_per_env / 10)?;
    let start = Instant::now();
    run(steps_per_env)?;
    Ok((n * steps_per_env) as f64 / start.elapsed().as_secs_f64())
}

/// Gymnasium + MuJoCo on this machine: `env.step` with random actions and auto-reset, and
/// raw `mj_step` (frame_skip per env step, looped inside MuJoCo) without Python's env in the
/// loop, under two protocols: the port's headline one (the same random actions, the task's own
/// termination, reset and 1000-step limit; no observations or rewards computed) and a
/// contact-rich one (zero controls from one reset, no termination: a Walker2d or Humanoid falls
/// and lies on the floor).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MujocoRates {
    pub env_step_per_s: f64,
    /// Raw `mj_step`, random actions with resets: the protocol of [`single_env_rate`].
    pub raw_mj_step_env_steps_per_s: f64,
    /// Raw `mj_step`, zero controls from one reset: the protocol of [`physics_zero_ctrl_rate`].
    pub raw_mj_step_zero_ctrl_env_steps_per_s: f64,
}

const MUJOCO_SCRIPT: &str = r#"
import json, os, sys, tempfile, time, warnings
warnings.filterwarnings("ignore")
os.chdir(tempfile.mkdtemp(prefix="spikerl-mujoco-"))  # MuJoCo writes MUJOCO_LOG.TXT into the cwd
import gymnasium as gym, mujoco, numpy as np
env_id, steps = sys.argv[1], int(sys.argv[2])
env = gym.make(env_id)
rng = np.random.default_rng(0)
env.reset(seed=0)
low, high = env.action_space.low, env.action_space.high
actions = rng.uniform(low, high, size=(steps + steps // 10, low.shape[0]))
def run(batch):
    for a in batch:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
run(actions[steps:])
t = time.perf_counter(); run(actions[:steps]); env_rate = steps / (time.perf_counter() - t)
u = env.unwrapped
m, d, fs = u.model, u.data, u.frame_skip
limit = env.spec.max_episode_steps
has_termination = hasattr(type(u), "terminated")  # HalfCheetah never terminates
def reset():
    mujoco.mj_resetData(m, d)
    u.reset_model()
def run_raw(batch):
    t = 0
    for a in batch:
        d.ctrl[:] = a
        mujoco.mj_step(m, d, nstep=fs)
        t += 1
        if t == limit or (has_termination and u.terminated):
            reset()
            t = 0
env.reset(seed=0)
run_raw(actions[steps:])
t = time.perf_counter(); run_raw(actions[:steps]); raw = steps / (time.perf_counter() - t)
env.reset(seed=0)
d.ctrl[:] = 0.0
t = time.perf_counter()
mujoco.mj_step(m, d, nstep=steps * fs)
raw_zero = steps / (time.perf_counter() - t)
print(json.dumps({"env_step_per_s": env_rate, "raw_mj_step_env_steps_per_s": raw,
                  "raw_mj_step_zero_ctrl_env_steps_per_s": raw_zero}))
"#;

/// Runs the Gymnasium timing with `python` (a venv's interpreter with gymnasium and mujoco).
pub fn mujoco_rates(python: &Path, env_id: &str, steps: usize) -> Result<MujocoRates> {
    let out = Command::new(python)
        .arg("-c")
        .arg(MUJOCO_SCRIPT)
        .arg(env_id)
        .arg(steps.to_string())
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !out.status.success() {
        bail!("MuJoCo timing failed ({}):\n{}", python.display(), String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("unexpected output: {stdout}"))?;
    let get = |k: &str| v[k].as_f64().with_context(|| format!("missing {k} in {line}"));
    Ok(MujocoRates {
        env_step_per_s: get("env_step_per_s")?,
        raw_mj_step_env_steps_per_s: get("raw_mj_step_env_steps_per_s")?,
        raw_mj_step_zero_ctrl_env_steps_per_s: get("raw_mj_step_zero_ctrl_env_steps_per_s")?,
    })
}

/// One `bench env` result.
#[derive(Debug, Clone, Serialize)]
pub struct EnvBench {
    pub env: String,
    pub single_thread_steps_per_s: f64,
    pub vec_envs: usize,
    pub vec_1_thread_steps_per_s: f64,
    pub vec_2_threads_steps_per_s: f64,
    /// The port's physics under raw `mj_step`'s zero-control protocol ([`physics_zero_ctrl_rate`]).
    pub physics_zero_ctrl_steps_per_s: Option<f64>,
    pub mujoco: Option<MujocoRates>,
}

impl EnvBench {
    pub fn vec_scaling(&self) -> f64 {
        self.vec_2_threads_steps_per_s / self.vec_1_thread_steps_per_s
    }

    /// Port single-thread rate over Gymnasium+MuJoCo's `env.step` rate.
    pub fn ratio_vs_gymnasium(&self) -> Option<f64> {
        self.mujoco.map(|m| self.single_thread_steps_per_s / m.env_step_per_s)
    }

    /// Port single-thread rate over raw `mj_step`'s, both with random actions and resets.
    pub fn ratio_vs_raw_mujoco(&self) -> Option<f64> {
        self.mujoco.map(|m| self.single_thread_steps_per_s / m.raw_mj_step_env_steps_per_s)
    }

    /// The port's physics over raw `mj_step`, both with zero controls from one reset.
    pub fn physics_ratio_vs_raw_mujoco(&self) -> Option<f64> {
        Some(self.physics_zero_ctrl_steps_per_s? / self.mujoco?.raw_mj_step_zero_ctrl_env_steps_per_s)
    }
}

/// The `.venv-mujoco` interpreter the Makefile creates, if present.
pub fn default_mujoco_python() -> Option<std::path::PathBuf> {
    let p = Path::new(".venv-mujoco/bin/python");
    p.is_file().then(|| p.to_path_buf())
}
