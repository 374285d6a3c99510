//! A locomotion task: an MJCF model plus Gymnasium v4's observation, reward, termination and
//! reset rules. The three built-in tasks are presets of [`LocomotionSpec`]; a new task is an
//! MJCF file and a spec.

use std::path::PathBuf;

use super::model::BodyId;
use super::simulation::Simulation;
use crate::env::{EndReason, EpisodeClock, StepInfo, StepOutcome, check_obs_len, validate};
use crate::rng::EnvRng;
use crate::{BoxSpace, Env, EnvError, EnvSnapshot, EnvSpec};

/// Where the model comes from.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// MJCF text compiled into the binary (the built-in tasks).
    Embedded { name: &'static str, xml: &'static str },
    /// An MJCF file on disk.
    File(PathBuf),
}

/// How the observation is assembled from `qpos` and `qvel`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObsLayout {
    /// Leading `qpos` entries left out (1: x; 2: x and y).
    pub skip_qpos: usize,
    /// Symmetric clip applied to `qvel` (Hopper/Walker2d: 10).
    pub clip_qvel: Option<f64>,
    /// Humanoid's tail: `cinert`, `cvel`, `qfrc_actuator` and `cfrc_ext` ([`super::ComFrame`]).
    pub com_based: bool,
}

/// Gymnasium's `is_healthy` variants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Health {
    /// Never terminates (HalfCheetah).
    Always,
    /// Hopper/Walker2d: z = qpos[1] and angle = qpos[2] inside open ranges, and every entry of
    /// `concat(qpos, qvel)[2..]` inside `state_range` (open).
    Planar { z_range: (f64, f64), angle_range: (f64, f64), state_range: Option<(f64, f64)> },
    /// Ant: all of qpos/qvel finite and z = qpos[2] inside the closed `z_range`.
    Floating { z_range: (f64, f64) },
    /// Humanoid: z = qpos[2] inside the open `z_range`.
    Standing { z_range: (f64, f64) },
}

/// Distribution of the reset noise on `qvel`; `qpos` always gets U(±scale).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VelocityNoise {
    /// U(±scale): Hopper, Walker2d, Humanoid.
    Uniform,
    /// scale·N(0, 1): HalfCheetah, Ant.
    Normal,
}

/// Which x the forward reward differentiates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ForwardX {
    /// `qpos[0]`, read after the step.
    Qpos0,
    /// A body's `xpos`, as MuJoCo leaves it after `mj_step`: computed before the last
    /// timestep's integration, so it lags one timestep (Ant-v4's torso).
    LaggedBody(&'static str),
    /// The whole model's centre of mass, lagging like `LaggedBody` (Humanoid-v4).
    LaggedMassCentre,
}

/// Everything that defines a locomotion task.
#[derive(Debug, Clone)]
pub struct LocomotionSpec {
    pub id: &'static str,
    pub model: ModelSource,
    pub frame_skip: usize,
    pub obs: ObsLayout,
    pub forward_x: ForwardX,
    pub forward_reward_weight: f64,
    pub ctrl_cost_weight: f64,
    /// Paid on every step, the terminal one included (v4 with terminate_when_unhealthy).
    pub healthy_reward: Option<f64>,
    pub health: Health,
    pub reset_noise_scale: f64,
    pub velocity_noise: VelocityNoise,
    pub max_episode_steps: u32,
}

impl LocomotionSpec {
    /// Reward terms reported in `info`, in order.
    fn reward_terms(&self) -> &'static [&'static str] {
        if self.healthy_reward.is_some() {
            &["reward_forward", "reward_ctrl", "reward_survive"]
        } else {
            &["reward_run", "reward_ctrl"]
        }
    }

    /// Builds the environment.
    pub fn build(&self) -> Result<LocomotionEnv, EnvError> {
        LocomotionEnv::new(self.clone())
    }
}

/// A running locomotion task.
pub struct LocomotionEnv {
    spec: LocomotionSpec,
    env_spec: EnvSpec,
    physics: Simulation,
    forward_body: Option<BodyId>,
    rng: EnvRng,
    clock: EpisodeClock,
    qpos: Vec<f64>,
    qvel: Vec<f64>,
    /// x of the forward reward at the end of the previous step.
    x_before: f64,
    /// y of the same point (for `info`'s sideways velocity; not part of any reward).
    y_before: f64,
    /// The observation's com-based tail ([`ObsLayout::com_based`]) after the last reset or
    /// step; kept because it belongs to the state MuJoCo last evaluated, not the final one.
    com_obs: Vec<f64>,
    /// The state went non-finite: nothing more happens until reset.
    broken: bool,
}

impl LocomotionEnv {
    pub fn new(spec: LocomotionSpec) -> Result<Self, EnvError> {
        let mut physics = match &spec.model {
            ModelSource::Embedded { name, xml } => {
                Simulation::from_xml(xml, std::path::Path::new("."), name, spec.frame_skip)?
            }
            ModelSource::File(path) => Simulation::from_file(path, spec.frame_skip)?,
        };
        let model_err = |reason: String| EnvError::Model { path: spec.id.to_string(), reason };
        let forward_body = match spec.forward_x {
            ForwardX::Qpos0 | ForwardX::LaggedMassCentre => None,
            ForwardX::LaggedBody(name) => {
                Some(physics.model().body(name).ok_or_else(|| model_err(format!("no body named '{name}'")))?)
            }
        };
        let (nq, nv) = (physics.model().nq(), physics.model().nv());
        if spec.obs.skip_qpos > nq {
            return Err(model_err(format!("cannot skip {} of {nq} qpos entries", spec.obs.skip_qpos)));
        }
        if spec.obs.com_based || spec.forward_x == ForwardX::LaggedMassCentre {
            physics.track_com_frame();
        }
        let nbody = physics.model().nbody();
        let com_len = if spec.obs.com_based { nbody * 22 + nv } else { 0 };
        let obs_dim = nq - spec.obs.skip_qpos + nv + com_len;
        let (low, high): (Vec<f32>, Vec<f32>) = physics
            .model()
            .ctrl_ranges()
            .iter()
            .map(|r| r.map_or((f32::NEG_INFINITY, f32::INFINITY), |[lo, hi]| (lo as f32, hi as f32)))
            .unzip();
        let env_spec = EnvSpec {
            id: spec.id.to_string(),
            observation_space: BoxSpace::uniform(obs_dim, f32::NEG_INFINITY, f32::INFINITY),
            action_space: BoxSpace { low, high },
            max_episode_steps: spec.max_episode_steps,
            dt: physics.model().timestep() * spec.frame_skip as f64,
            reward_terms: spec.reward_terms(),
        };
        Ok(Self {
            env_spec,
            physics,
            forward_body,
            rng: EnvRng::seed_from_u64(0),
            clock: EpisodeClock::default(),
            qpos: vec![0.0; nq],
            qvel: vec![0.0; nv],
            x_before: 0.0,
            y_before: 0.0,
            com_obs: vec![0.0; com_len],
            broken: false,
            spec,
        })
    }

    pub fn physics(&self) -> &Simulation {
        &self.physics
    }

    pub fn locomotion_spec(&self) -> &LocomotionSpec {
        &self.spec
    }

    /// MuJoCo's `qpos` and `qvel` after the last reset or step.
    pub fn state(&self) -> (&[f64], &[f64]) {
        (&self.qpos, &self.qvel)
    }

    /// Starts an episode from the exact initial state, with no reset noise (the reference
    /// rollouts' `set_state(init_qpos, init_qvel)`).
    pub fn reset_without_noise(&mut self, obs: &mut [f32]) -> Result<(), EnvError> {
        check_obs_len(&self.env_spec, obs)?;
        self.start_episode(None);
        self.write_obs(obs);
        Ok(())
    }

    /// Restores the initial state, then applies `noise` = (qpos offsets, qvel) if given.
    fn start_episode(&mut self, noise: Option<(Vec<f64>, Vec<f64>)>) {
        self.physics.reset_to_initial();
        self.physics.read_state(&mut self.qpos, &mut self.qvel);
        if let Some((dqpos, qvel)) = noise {
            // Like MuJoCo, a free joint's noisy quaternion stays unnormalised in qpos (and so in
            // the first observation) while the simulated pose is the normalised one.
            for (q, d) in self.qpos.iter_mut().zip(&dqpos) {
                *q += d;
            }
            self.qvel.copy_from_slice(&qvel);
            self.physics.set_state(&self.qpos, &self.qvel);
        }
        [self.x_before, self.y_before] = self.forward_xy();
        self.read_com_obs();
        self.broken = false;
        self.clock.start();
    }

    /// The (x, y) whose x the forward reward differentiates, at the current state (y is 0 for a
    /// task whose forward point is a slide joint).
    fn forward_xy(&self) -> [f64; 2] {
        match (self.spec.forward_x, self.forward_body) {
            (ForwardX::LaggedMassCentre, _) => {
                let c = self.physics.com_frame().expect("tracked since new").mass_centre;
                [c[0], c[1]]
            }
            (_, Some(b)) => {
                let p = self.physics.xpos(b);
                [p[0], p[1]]
            }
            (_, None) => [self.qpos[0], 0.0],
        }
    }

    fn read_com_obs(&mut self) {
        if self.com_obs.is_empty() {
            return;
        }
        let com = self.physics.com_frame().expect("tracked since new");
        let nv = self.qvel.len();
        let mut at = 0;
        for block in [com.cinert.as_flattened(), com.cvel.as_flattened()] {
            self.com_obs[at..at + block.len()].copy_from_slice(block);
            at += block.len();
        }
        self.physics.read_actuator_force(&mut self.com_obs[at..at + nv]);
        at += nv;
        self.com_obs[at..].copy_from_slice(com.cfrc_ext.as_flattened());
    }

    fn write_obs(&self, obs: &mut [f32]) {
        let skip = self.spec.obs.skip_qpos;
        let nq = self.qpos.len() - skip;
        for (o, q) in obs[..nq].iter_mut().zip(&self.qpos[skip..]) {
            *o = *q as f32;
        }
        let clip = self.spec.obs.clip_qvel.unwrap_or(f64::INFINITY);
        for (o, v) in obs[nq..].iter_mut().zip(&self.qvel) {
            *o = v.clamp(-clip, clip) as f32;
        }
        for (o, x) in obs[nq + self.qvel.len()..].iter_mut().zip(&self.com_obs) {
            *o = *x as f32;
        }
    }

    fn is_healthy(&self) -> bool {
        let (qpos, qvel) = (&self.qpos, &self.qvel);
        match self.spec.health {
            Health::Always => true,
            Health::Planar { z_range, angle_range, state_range } => {
                let open = |x: f64, (lo, hi): (f64, f64)| lo < x && x < hi;
                let state_ok = state_range
                    .is_none_or(|r| qpos[2..].iter().chain(qvel.iter()).all(|&x| open(x, r)));
                state_ok && open(qpos[1], z_range) && open(qpos[2], angle_range)
            }
            Health::Floating { z_range: (lo, hi) } => {
                qpos.iter().chain(qvel.iter()).all(|x| x.is_finite()) && lo <= qpos[2] && qpos[2] <= hi
            }
            Health::Standing { z_range: (lo, hi) } => lo < qpos[2] && qpos[2] < hi,
        }
    }
}

impl Env for LocomotionEnv {
    fn spec(&self) -> &EnvSpec {
        &self.env_spec
    }

    fn snapshot(&self) -> EnvSnapshot {
        let mut floats = self.qpos.clone();
        floats.extend(&self.qvel);
        floats.push(self.x_before);
        let (q, v) = self.physics.internal_state();
        floats.extend(q);
        floats.extend(v);
        floats.extend(&self.com_obs);
        floats.push(self.y_before);
        let mut words = self.rng.state().to_vec();
        words.extend([self.clock.to_word(), u64::from(self.broken)]);
        EnvSnapshot { floats, words }
    }

    fn restore(&mut self, s: &EnvSnapshot, obs: &mut [f32]) -> Result<(), EnvError> {
        check_obs_len(&self.env_spec, obs)?;
        let (nq, nv) = (self.qpos.len(), self.qvel.len());
        let (iq, iv) = (self.physics.internal_state().0.len(), self.physics.internal_state().1.len());
        let n = nq + nv + 1 + iq + iv + self.com_obs.len();
        let bad = |reason: String| EnvError::Snapshot { task: self.env_spec.id.clone(), reason };
        // Snapshots from before y was tracked lack the last float: y then restarts from here.
        if !(s.floats.len() == n || s.floats.len() == n + 1) || s.words.len() != 6 {
            return Err(bad(format!("expected {} floats and 6 words, got {} and {}", n + 1, s.floats.len(), s.words.len())));
        }
        let rng = EnvRng::from_state([s.words[0], s.words[1], s.words[2], s.words[3]]).ok_or_else(|| bad("zero generator state".into()))?;
        let clock = EpisodeClock::from_word(s.words[4]).ok_or_else(|| bad("step counter out of range".into()))?;
        self.qpos.copy_from_slice(&s.floats[..nq]);
        self.qvel.copy_from_slice(&s.floats[nq..nq + nv]);
        self.x_before = s.floats[nq + nv];
        self.broken = s.words[5] != 0;
        (self.rng, self.clock) = (rng, clock);
        let internal = &s.floats[nq + nv + 1..];
        self.physics.set_internal_state(&internal[..iq], &internal[iq..iq + iv]);
        let com_len = self.com_obs.len();
        self.com_obs.copy_from_slice(&internal[iq + iv..iq + iv + com_len]);
        self.y_before = s.floats.get(n).copied().unwrap_or_else(|| self.forward_xy()[1]);
        self.write_obs(obs);
        Ok(())
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<(), EnvError> {
        check_obs_len(&self.env_spec, obs)?;
        if let Some(seed) = seed {
            self.rng = EnvRng::seed_from_u64(seed);
        }
        let s = self.spec.reset_noise_scale;
        let dqpos: Vec<f64> = (0..self.qpos.len()).map(|_| self.rng.uniform(-s, s)).collect();
        let qvel: Vec<f64> = (0..self.qvel.len())
            .map(|_| match self.spec.velocity_noise {
                VelocityNoise::Uniform => self.rng.uniform(-s, s),
                VelocityNoise::Normal => s * self.rng.normal(),
            })
            .collect();
        self.start_episode(Some((dqpos, qvel)));
        self.write_obs(obs);
        Ok(())
    }

    fn step_into(&mut self, action: &[f32], obs: &mut [f32]) -> Result<StepOutcome, EnvError> {
        validate(&self.env_spec, action, obs)?;
        self.clock.ensure_started()?;
        let dt = self.env_spec.dt;

        let (mut x_after, mut y_after) = (f64::NAN, f64::NAN);
        if !self.broken {
            self.physics.step(action);
            self.physics.read_state(&mut self.qpos, &mut self.qvel);
            self.read_com_obs();
            [x_after, y_after] = self.forward_xy();
        }
        let finite = x_after.is_finite() && self.qpos.iter().chain(self.qvel.iter()).all(|x| x.is_finite());
        let truncated = self.clock.tick(self.env_spec.max_episode_steps);

        if !finite {
            self.broken = true;
            obs.fill(0.0);
            let mut info = StepInfo::new(self.x_before, 0.0);
            info.end = Some(EndReason::NonFinite);
            return Ok(StepOutcome { reward: 0.0, terminated: true, truncated, info });
        }

        let x_velocity = (x_after - self.x_before) / dt;
        let y_velocity = (y_after - self.y_before) / dt;
        (self.x_before, self.y_before) = (x_after, y_after);
        let forward = self.spec.forward_reward_weight * x_velocity;
        let ctrl_cost = self.spec.ctrl_cost_weight * action.iter().map(|&a| (a as f64) * (a as f64)).sum::<f64>();
        let mut info = StepInfo::new(x_after, x_velocity);
        (info.y_position, info.y_velocity) = (y_after, y_velocity);
        info.reward_terms[0] = forward;
        info.reward_terms[1] = -ctrl_cost;
        let mut reward = forward - ctrl_cost;
        if let Some(h) = self.spec.healthy_reward {
            info.reward_terms[2] = h;
            reward += h;
        }
        let terminated = !self.is_healthy();
        info.end = if terminated {
            Some(EndReason::Terminated)
        } else if truncated {
            Some(EndReason::Truncated)
        } else {
            None
        };
        self.write_obs(obs);
        Ok(StepOutcome { reward, terminated, truncated, info })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locomotion;

    #[test]
    fn a_non_finite_state_ends_the_episode_until_reset() {
        let mut env = locomotion::hopper().build().unwrap();
        env.reset(Some(0));
        env.physics.poison();
        let s = env.step(&[0.0; 3]).unwrap();
        assert!(s.terminated);
        assert_eq!(s.info.end, Some(EndReason::NonFinite));
        assert_eq!(s.reward, 0.0);
        assert!(s.obs.iter().all(|x| *x == 0.0), "no NaN leaves the env");
        assert_eq!(env.step(&[0.0; 3]).unwrap().info.end, Some(EndReason::NonFinite));
        let obs = env.reset(None);
        assert!(obs.iter().all(|x| x.is_finite()));
        let s = env.step(&[0.0; 3]).unwrap();
        assert!(!s.terminated && s.obs.iter().all(|x| x.is_finite()));
    }
}
