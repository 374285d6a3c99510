//! `gym:ID` runs Gymnasium's own task in a Python process (`make test` sets up
//! .venv-mujoco with gymnasium and mujoco for it).

use spikerl_envs::prelude::*;

#[test]
fn gymnasium_hopper_steps_through_the_env_trait() {
    let mut env = make("gym:Hopper-v4").expect("make mujoco-venv installs gymnasium + mujoco");
    assert_eq!((env.spec().obs_dim(), env.spec().act_dim()), (11, 3));
    assert_eq!(env.spec().max_episode_steps, 1000);
    assert!((env.spec().dt - 0.008).abs() < 1e-12);

    let first = env.reset(Some(3));
    assert_eq!(env.reset(Some(3)), first, "same seed, same first observation");
    assert!((first[0] - 1.25).abs() < 0.01, "torso height {}", first[0]);

    // A NaN action is refused before it reaches Python; the env goes on.
    assert!(matches!(env.step(&[f32::NAN, 0.0, 0.0]), Err(EnvError::NonFiniteAction { .. })));
    let mut steps = 0;
    let last = loop {
        let step = env.step(&[0.0, 0.0, 0.0]).unwrap();
        steps += 1;
        if step.terminated || step.truncated {
            break step;
        }
    };
    // With zero actions the hopper falls, as the port's does (140 steps from the exact initial
    // state in the reference rollouts).
    assert!(last.terminated && (100..200).contains(&steps), "ended after {steps} steps: {last:?}");
}

#[test]
fn an_unknown_gymnasium_task_is_a_clear_error() {
    let err = make("gym:NoSuchTask-v0").err().expect("unknown task");
    assert!(err.to_string().contains("NoSuchTask"), "{err}");
}

/// Under uniform random actions every port ends its episodes as Gymnasium's task (on MuJoCo
/// for the locomotion tasks) does: episode lengths and returns pass two-sample
/// Kolmogorov–Smirnov tests at 5 % (200 episodes each, episode k reset with seed k;
/// HalfCheetah and Pendulum never terminate, so only their returns can differ).
#[test]
fn random_episodes_on_the_port_and_on_gymnasium_have_the_same_distributions() {
    use spikerl_envs::distribution::{ks_two_sample, random_episodes};
    for id in ["Hopper-v4", "HalfCheetah-v4", "Ant-v4", "Walker2d-v4", "Humanoid-v4", "Pendulum-v1"] {
        let mut port = make(id).unwrap();
        let mut mujoco = make(&format!("gym:{id}")).unwrap();
        let (port_len, port_ret) = random_episodes(port.as_mut(), 200, 0).unwrap();
        let (mj_len, mj_ret) = random_episodes(mujoco.as_mut(), 200, 0).unwrap();
        for (what, a, b) in [("lengths", &port_len, &mj_len), ("returns", &port_ret, &mj_ret)] {
            let (d, p) = ks_two_sample(a, b);
            assert!(p >= 0.05, "{id}: episode {what} differ (KS D {d:.3}, p {p:.4})");
        }
    }
}
