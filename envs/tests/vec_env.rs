//! VecEnv: contiguous observations, auto-reset, threads that change nothing but speed.

use spikerl_envs::prelude::*;
use spikerl_envs::rng::EnvRng;

fn run(threads: usize, steps: usize) -> (Vec<Vec<f32>>, Vec<Vec<VecStepBits>>) {
    let n = 5;
    let mut venv = VecEnv::make("hopper-v4", n, threads).unwrap();
    assert_eq!(venv.threads(), threads);
    let mut rng = EnvRng::seed_from_u64(0);
    let mut obs = vec![venv.reset(Some(42)).unwrap().to_vec()];
    let mut steps_out = Vec::new();
    for _ in 0..steps {
        let actions: Vec<f32> = (0..n * 3).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
        let s = venv.step(&actions).unwrap();
        steps_out.push(s.iter().map(|s| VecStepBits(s.reward.to_bits(), s.terminated, s.truncated)).collect());
        obs.push(venv.obs().to_vec());
    }
    (obs, steps_out)
}

#[derive(Debug, PartialEq)]
struct VecStepBits(u64, bool, bool);

#[test]
fn two_threads_give_bitwise_the_one_thread_result() {
    let (obs1, steps1) = run(1, 120);
    let (obs2, steps2) = run(2, 120);
    assert_eq!(steps1, steps2);
    assert_eq!(obs1, obs2);
    assert!(steps1.iter().flatten().any(|s| s.1), "episodes ended on the way, so auto-reset ran");
}

#[test]
fn env_i_matches_a_single_env_seeded_with_seed_plus_i_and_auto_resets() {
    let n = 3;
    let mut venv = VecEnv::make("Hopper-v4", n, 2).unwrap();
    let mut single = make("Hopper-v4").unwrap();
    let first = venv.reset(Some(7)).unwrap().to_vec();
    let obs_single = single.reset(Some(7 + 2));
    assert_eq!(&first[2 * 11..3 * 11], &obs_single[..]);

    // Drive env 2 to fall; the VecEnv resets it and keeps the terminal observation.
    let push = [1.0f32, -1.0, 1.0];
    let actions: Vec<f32> = push.iter().copied().cycle().take(n * 3).collect();
    for _ in 0..300 {
        let expected = single.step(&push).unwrap();
        let s = venv.step(&actions).unwrap()[2];
        assert_eq!(s.reward.to_bits(), expected.reward.to_bits());
        if expected.terminated || expected.truncated {
            assert!(s.done());
            assert_eq!(venv.final_obs(2), &expected.obs[..]);
            let restart = single.reset(None);
            assert_eq!(&venv.obs()[2 * 11..3 * 11], &restart[..], "auto-reset continues the env's stream");
            return;
        }
        assert_eq!(&venv.obs()[2 * 11..3 * 11], &expected.obs[..]);
    }
    panic!("no episode ended");
}

#[test]
fn bad_action_batches_are_rejected_before_any_env_moves() {
    let mut venv = VecEnv::make("Pendulum-v1", 4, 2).unwrap();
    let before = venv.reset(Some(1)).unwrap().to_vec();
    assert!(matches!(venv.step(&[0.0; 3]), Err(EnvError::ActionDim { expected: 4, got: 3 })));
    assert!(matches!(venv.step(&[0.0, 0.0, f32::NAN, 0.0]), Err(EnvError::NonFiniteAction { index: 2, .. })));
    assert_eq!(venv.obs(), &before[..]);
    assert!(VecEnv::make("no-such-env", 2, 1).is_err());
}

/// Gymnasium's NEXT_STEP autoreset: the step that ends an episode returns its last observation;
/// the env's next step only resets it (action ignored, reward 0, not done) and returns the new
/// episode's first observation, the one a single env's `reset(None)` gives.
#[test]
fn next_step_autoreset_spends_a_step_on_the_reset() {
    let mut venv = VecEnv::make("Hopper-v4", 2, 2).unwrap().with_autoreset(Autoreset::NextStep);
    let mut single = make("Hopper-v4").unwrap();
    venv.reset(Some(3)).unwrap();
    single.reset(Some(4));
    let push = [1.0f32, -1.0, 1.0];
    let actions: Vec<f32> = push.iter().copied().cycle().take(6).collect();
    for _ in 0..300 {
        let expected = single.step(&push).unwrap();
        let s = venv.step(&actions).unwrap()[1];
        assert_eq!((s.reward.to_bits(), s.reset), (expected.reward.to_bits(), false));
        assert_eq!(&venv.obs()[11..], &expected.obs[..], "the ending step returns the last observation");
        if expected.terminated || expected.truncated {
            assert!(s.done());
            let s = venv.step(&actions).unwrap()[1];
            assert!(s.reset && !s.done() && s.reward == 0.0, "{s:?}");
            assert_eq!(&venv.obs()[11..], &single.reset(None)[..]);
            let next = venv.step(&actions).unwrap()[1];
            assert_eq!(next.reward.to_bits(), single.step(&push).unwrap().reward.to_bits(), "then it steps again");
            return;
        }
    }
    panic!("no episode ended");
}
