//! Gymnasium's own tasks behind the [`Env`] trait: `make("gym:Hopper-v4")` runs
//! `gymnasium.make("Hopper-v4")` (MuJoCo) in a Python process and steps it over pipes, with
//! `spikerl envserve`'s protocol from the other side. It lets the same learner train on the
//! rapier port and on the original, for comparisons.
//!
//! The interpreter is `$SPIKERL_GYM_PYTHON`, else `.venv-mujoco/bin/python` in this directory
//! or one above it (`make mujoco-venv`), else `python3`. Snapshots are not supported.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::env::{check_obs_len, validate};
use crate::{BoxSpace, Env, EnvError, EnvSnapshot, EnvSpec, StepInfo, StepOutcome};

/// The prefix that selects a Gymnasium task in [`crate::make`].
pub const PREFIX: &str = "gym:";

const SERVER: &str = include_str!("server.py");
const NO_SEED: u64 = u64::MAX;

#[derive(serde::Deserialize)]
struct Header {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    obs_dim: usize,
    #[serde(default)]
    act_dim: usize,
    #[serde(default)]
    low: Vec<f32>,
    #[serde(default)]
    high: Vec<f32>,
    #[serde(default)]
    max_episode_steps: u32,
    #[serde(default)]
    dt: f64,
}

/// A Gymnasium task in a child Python process.
pub struct GymEnv {
    spec: EnvSpec,
    child: Child,
    to_child: BufWriter<ChildStdin>,
    from_child: BufReader<ChildStdout>,
    reply: Vec<u8>,
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SPIKERL_GYM_PYTHON") {
        return p.into();
    }
    let mut dir = std::env::current_dir().ok();
    while let Some(d) = dir {
        let candidate = d.join(".venv-mujoco/bin/python");
        if candidate.exists() {
            return candidate;
        }
        dir = d.parent().map(PathBuf::from);
    }
    "python3".into()
}

impl GymEnv {
    /// Starts `gymnasium.make(task)` (the id after `gym:`).
    pub fn new(id: &str) -> Result<Self, EnvError> {
        let task = id.strip_prefix(PREFIX).unwrap_or(id);
        let err = |reason: String| EnvError::Gym { id: id.to_string(), reason };
        let python = python();
        let mut child = Command::new(&python)
            .args(["-c", SERVER, task])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| err(format!("cannot run {} ({e}); set SPIKERL_GYM_PYTHON to a Python with gymnasium and mujoco", python.display())))?;
        let mut from_child = BufReader::new(child.stdout.take().expect("piped stdout"));
        let to_child = BufWriter::new(child.stdin.take().expect("piped stdin"));
        let mut line = String::new();
        let header: Result<Header, String> = match from_child.read_line(&mut line) {
            Ok(0) | Err(_) => Err(format!("{} ended before it said what the task is (gymnasium installed?)", python.display())),
            Ok(_) => serde_json::from_str(&line).map_err(|e| format!("bad header from the Python side: {e}")),
        };
        let header = match header {
            Ok(Header { error: Some(e), .. }) | Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(e));
            }
            Ok(h) => h,
        };
        if header.obs_dim == 0 || header.act_dim == 0 || header.low.len() != header.act_dim || header.high.len() != header.act_dim {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err("not a continuous-control task with flat Box spaces".into()));
        }
        let spec = EnvSpec {
            id: id.to_string(),
            observation_space: BoxSpace::uniform(header.obs_dim, f32::NEG_INFINITY, f32::INFINITY),
            action_space: BoxSpace { low: header.low, high: header.high },
            max_episode_steps: header.max_episode_steps,
            dt: header.dt,
            reward_terms: &[],
        };
        Ok(Self { spec, child, to_child, from_child, reply: Vec::new() })
    }

    fn request(&mut self, bytes: &[u8], reply_len: usize) -> Result<(), EnvError> {
        let lost = |e: std::io::Error| EnvError::Gym { id: self.spec.id.clone(), reason: format!("the Python process is gone ({e})") };
        self.to_child.write_all(bytes).and_then(|_| self.to_child.flush()).map_err(lost)?;
        let mut status = [0u8; 1];
        self.from_child.read_exact(&mut status).map_err(lost)?;
        if status[0] != 0 {
            let mut len = [0u8; 4];
            self.from_child.read_exact(&mut len).map_err(lost)?;
            let mut message = vec![0u8; u32::from_le_bytes(len) as usize];
            self.from_child.read_exact(&mut message).map_err(lost)?;
            return Err(EnvError::Gym { id: self.spec.id.clone(), reason: String::from_utf8_lossy(&message).into_owned() });
        }
        self.reply.resize(reply_len, 0);
        self.from_child.read_exact(&mut self.reply).map_err(lost)
    }

    fn read_obs(&self, obs: &mut [f32]) {
        for (o, b) in obs.iter_mut().zip(self.reply.chunks_exact(4)) {
            *o = f32::from_le_bytes(b.try_into().expect("4 bytes"));
        }
    }
}

impl Env for GymEnv {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<(), EnvError> {
        check_obs_len(&self.spec, obs)?;
        let mut request = [0u8; 9];
        request[0] = b'R';
        request[1..].copy_from_slice(&seed.unwrap_or(NO_SEED).to_le_bytes());
        self.request(&request, 4 * obs.len())?;
        self.read_obs(obs);
        Ok(())
    }

    fn step_into(&mut self, action: &[f32], obs: &mut [f32]) -> Result<StepOutcome, EnvError> {
        validate(&self.spec, action, obs)?;
        let mut request = Vec::with_capacity(1 + 4 * action.len());
        request.push(b'S');
        request.extend(action.iter().flat_map(|a| a.to_le_bytes()));
        let n = 4 * obs.len();
        self.request(&request, n + 10)?;
        self.read_obs(obs);
        let reward = f64::from_le_bytes(self.reply[n..n + 8].try_into().expect("8 bytes"));
        let (terminated, truncated) = (self.reply[n + 8] != 0, self.reply[n + 9] != 0);
        let mut info = StepInfo::new(f64::NAN, f64::NAN);
        info.end = if terminated {
            Some(crate::EndReason::Terminated)
        } else if truncated {
            Some(crate::EndReason::Truncated)
        } else {
            None
        };
        Ok(StepOutcome { reward, terminated, truncated, info })
    }

    fn snapshot(&self) -> EnvSnapshot {
        EnvSnapshot::default()
    }

    fn restore(&mut self, _: &EnvSnapshot, _: &mut [f32]) -> Result<(), EnvError> {
        Err(EnvError::Snapshot { task: self.spec.id.clone(), reason: "a Gymnasium process env cannot be restored".into() })
    }
}

impl Drop for GymEnv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_interpreter_is_a_clear_error() {
        // SAFETY: this test is the only one in the crate that touches this variable.
        unsafe { std::env::set_var("SPIKERL_GYM_PYTHON", "/nonexistent/python") };
        let err = GymEnv::new("gym:Hopper-v4").err().expect("no such interpreter");
        unsafe { std::env::remove_var("SPIKERL_GYM_PYTHON") };
        assert!(err.to_string().contains("SPIKERL_GYM_PYTHON"), "{err}");
    }
}
