//! Gymnasium's `Pendulum-v1`, formula for formula (no physics engine).

use crate::env::{EndReason, EpisodeClock, StepInfo, StepOutcome, check_obs_len, validate};
use crate::rng::EnvRng;
use crate::{BoxSpace, Env, EnvError, EnvSnapshot, EnvSpec};

const MAX_SPEED: f64 = 8.0;
const MAX_TORQUE: f64 = 2.0;
const DT: f64 = 0.05;
const G: f64 = 10.0;
const M: f64 = 1.0;
const L: f64 = 1.0;

/// Swing-up of a frictionless pendulum: reward `−(θ² + 0.1·θ̇² + 0.001·u²)`, 200 steps.
pub struct Pendulum {
    spec: EnvSpec,
    rng: EnvRng,
    clock: EpisodeClock,
    th: f64,
    thdot: f64,
}

impl Default for Pendulum {
    fn default() -> Self {
        Self::new()
    }
}

impl Pendulum {
    pub fn new() -> Self {
        Self {
            spec: EnvSpec {
                id: "Pendulum-v1".into(),
                observation_space: BoxSpace {
                    low: vec![-1.0, -1.0, -MAX_SPEED as f32],
                    high: vec![1.0, 1.0, MAX_SPEED as f32],
                },
                action_space: BoxSpace::uniform(1, -MAX_TORQUE as f32, MAX_TORQUE as f32),
                max_episode_steps: 200,
                dt: DT,
                reward_terms: &["cost_angle", "cost_velocity", "cost_torque"],
            },
            rng: EnvRng::seed_from_u64(0),
            clock: EpisodeClock::default(),
            th: 0.0,
            thdot: 0.0,
        }
    }

    /// The state (θ, θ̇).
    pub fn state(&self) -> (f64, f64) {
        (self.th, self.thdot)
    }

    /// Sets the state directly (for tests and demonstrations).
    pub fn set_state(&mut self, th: f64, thdot: f64) {
        self.th = th;
        self.thdot = thdot;
        self.clock.start();
    }

    fn write_obs(&self, obs: &mut [f32]) {
        obs[0] = self.th.cos() as f32;
        obs[1] = self.th.sin() as f32;
        obs[2] = self.thdot as f32;
    }
}

fn angle_normalize(x: f64) -> f64 {
    (x + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI
}

impl Env for Pendulum {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn snapshot(&self) -> EnvSnapshot {
        let mut words = self.rng.state().to_vec();
        words.push(self.clock.to_word());
        EnvSnapshot { floats: vec![self.th, self.thdot], words }
    }

    fn restore(&mut self, s: &EnvSnapshot, obs: &mut [f32]) -> Result<(), EnvError> {
        check_obs_len(&self.spec, obs)?;
        let bad = |reason: &str| EnvError::Snapshot { task: self.spec.id.clone(), reason: reason.into() };
        let (&[th, thdot], &[a, b, c, d, clock]) = (s.floats.as_slice(), s.words.as_slice()) else {
            return Err(bad("expected 2 floats and 5 words"));
        };
        let rng = EnvRng::from_state([a, b, c, d]).ok_or_else(|| bad("zero generator state"))?;
        let clock = EpisodeClock::from_word(clock).ok_or_else(|| bad("step counter out of range"))?;
        (self.th, self.thdot, self.rng, self.clock) = (th, thdot, rng, clock);
        self.write_obs(obs);
        Ok(())
    }

    fn reset_into(&mut self, seed: Option<u64>, obs: &mut [f32]) -> Result<(), EnvError> {
        check_obs_len(&self.spec, obs)?;
        if let Some(seed) = seed {
            self.rng = EnvRng::seed_from_u64(seed);
        }
        self.th = self.rng.uniform(-std::f64::consts::PI, std::f64::consts::PI);
        self.thdot = self.rng.uniform(-1.0, 1.0);
        self.clock.start();
        self.write_obs(obs);
        Ok(())
    }

    fn step_into(&mut self, action: &[f32], obs: &mut [f32]) -> Result<StepOutcome, EnvError> {
        validate(&self.spec, action, obs)?;
        self.clock.ensure_started()?;
        let u = (action[0] as f64).clamp(-MAX_TORQUE, MAX_TORQUE);
        let (th, thdot) = (self.th, self.thdot);
        let cost_angle = angle_normalize(th).powi(2);
        let cost_velocity = 0.1 * thdot * thdot;
        let cost_torque = 0.001 * u * u;

        let new_thdot = (thdot + (3.0 * G / (2.0 * L) * th.sin() + 3.0 / (M * L * L) * u) * DT).clamp(-MAX_SPEED, MAX_SPEED);
        self.th = th + new_thdot * DT;
        self.thdot = new_thdot;

        let truncated = self.clock.tick(self.spec.max_episode_steps);
        let mut info = StepInfo::new(0.0, 0.0);
        info.reward_terms[..3].copy_from_slice(&[-cost_angle, -cost_velocity, -cost_torque]);
        info.end = truncated.then_some(EndReason::Truncated);
        self.write_obs(obs);
        Ok(StepOutcome { reward: -(cost_angle + cost_velocity + cost_torque), terminated: false, truncated, info })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_gymnasium_formulas() {
        let mut env = Pendulum::new();
        env.set_state(0.5, -1.0);
        let s = env.step(&[3.0]).unwrap(); // clipped to 2
        let u = 2.0;
        let expect_thdot = -1.0 + (15.0 * 0.5f64.sin() + 3.0 * u) * 0.05;
        let expect_th = 0.5 + expect_thdot * 0.05;
        let (th, thdot) = env.state();
        assert!((thdot - expect_thdot).abs() < 1e-12 && (th - expect_th).abs() < 1e-12);
        assert!((s.reward + (0.25 + 0.1 + 0.001 * 4.0)).abs() < 1e-12);
        assert_eq!(s.obs, vec![expect_th.cos() as f32, expect_th.sin() as f32, expect_thdot as f32]);

        // Angle normalisation in the cost, speed clipping in the dynamics.
        env.set_state(2.0 * std::f64::consts::PI + 0.1, 7.9);
        let s = env.step(&[2.0]).unwrap();
        assert!((s.reward + (0.01 + 0.1 * 7.9 * 7.9 + 0.004)).abs() < 1e-9);
        assert_eq!(env.state().1, 8.0);
    }

    #[test]
    fn truncates_at_200_and_resets_in_range() {
        let mut env = Pendulum::new();
        let obs = env.reset(Some(3));
        assert!((obs[0].powi(2) + obs[1].powi(2) - 1.0).abs() < 1e-6 && obs[2].abs() <= 1.0);
        for t in 1..=200 {
            let s = env.step(&[0.0]).unwrap();
            assert_eq!(s.truncated, t == 200);
            assert!(!s.terminated);
        }
    }
}
