//! The Env contract: spaces, determinism, bad input, time limit, v4 quirks.

use spikerl_envs::locomotion::{self, ModelSource};
use spikerl_envs::prelude::*;
use spikerl_envs::rng::EnvRng;

const LOCOMOTION: [&str; 3] = ["Hopper-v4", "HalfCheetah-v4", "Ant-v4"];

fn random_actions(env: &dyn Env, seed: u64, n: usize) -> Vec<Vec<f32>> {
    let mut rng = EnvRng::seed_from_u64(seed);
    (0..n).map(|_| (0..env.spec().act_dim()).map(|_| rng.uniform(-1.0, 1.0) as f32).collect()).collect()
}

/// Runs `actions` from `reset(seed)`, resetting (without seed) whenever an episode ends.
fn trajectory(env: &mut dyn Env, seed: u64, actions: &[Vec<f32>]) -> Vec<(Vec<f32>, f64, bool, bool)> {
    let mut out = vec![(env.reset(Some(seed)), 0.0, false, false)];
    for a in actions {
        let s = env.step(a).unwrap();
        let done = s.terminated || s.truncated;
        out.push((s.obs, s.reward, s.terminated, s.truncated));
        if done {
            out.push((env.reset(None), 0.0, false, false));
        }
    }
    out
}

#[test]
fn spaces_match_gymnasium() {
    for (id, obs, act) in [("Hopper-v4", 11, 3), ("HalfCheetah-v4", 17, 6), ("Ant-v4", 27, 8), ("Pendulum-v1", 3, 1)] {
        let env = make(id).unwrap();
        let spec = env.spec();
        assert_eq!((spec.id.as_str(), spec.obs_dim(), spec.act_dim()), (id, obs, act));
        let bound = if id == "Pendulum-v1" { 2.0 } else { 1.0 };
        assert!(spec.action_space.low.iter().all(|&l| l == -bound));
        assert!(spec.action_space.high.iter().all(|&h| h == bound));
        let max = if id == "Pendulum-v1" { 200 } else { 1000 };
        assert_eq!(spec.max_episode_steps, max);
    }
    assert!((make("Hopper-v4").unwrap().spec().dt - 0.008).abs() < 1e-12);
    assert!((make("Ant-v4").unwrap().spec().dt - 0.05).abs() < 1e-12);
}

#[test]
fn same_seed_same_actions_same_trajectory_bitwise() {
    for id in LOCOMOTION {
        let mut a = make(id).unwrap();
        let mut b = make(id).unwrap();
        let actions = random_actions(a.as_ref(), 3, 150);
        let ta = trajectory(a.as_mut(), 11, &actions);
        let tb = trajectory(b.as_mut(), 11, &actions);
        assert_eq!(ta.len(), tb.len());
        for (x, y) in ta.iter().zip(&tb) {
            assert_eq!(x.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), y.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "{id}");
            assert_eq!(x.1.to_bits(), y.1.to_bits(), "{id}");
        }
        // Another seed gives another start.
        assert_ne!(a.reset(Some(12)), b.reset(Some(11)), "{id}");
    }
}

#[test]
fn bad_actions_are_errors_that_change_nothing() {
    for id in LOCOMOTION.iter().chain(&["Pendulum-v1"]) {
        let mut env = make(id).unwrap();
        let mut twin = make(id).unwrap();
        let act_dim = env.spec().act_dim();
        assert_eq!(env.step(&vec![0.0; act_dim]).unwrap_err(), EnvError::NeedsReset);
        env.reset(Some(5));
        twin.reset(Some(5));
        assert_eq!(env.step(&vec![0.0; act_dim + 1]).unwrap_err(), EnvError::ActionDim { expected: act_dim, got: act_dim + 1 });
        let mut nan = vec![0.1; act_dim];
        nan[act_dim - 1] = f32::NAN;
        assert!(matches!(env.step(&nan), Err(EnvError::NonFiniteAction { index, .. }) if index == act_dim - 1));
        let mut inf = vec![0.1; act_dim];
        inf[0] = f32::INFINITY;
        assert!(env.step(&inf).is_err());
        let mut obs = vec![0.0; env.spec().obs_dim() + 2];
        assert!(matches!(env.step_into(&vec![0.0; act_dim], &mut obs), Err(EnvError::ObsDim { .. })));
        // The rejected calls left no trace: both envs continue identically.
        for a in random_actions(env.as_ref(), 9, 20) {
            assert_eq!(env.step(&a).unwrap(), twin.step(&a).unwrap(), "{id}");
        }
    }
}

#[test]
fn halfcheetah_truncates_at_the_time_limit_and_never_terminates() {
    let mut env = make("HalfCheetah-v4").unwrap();
    env.reset(Some(0));
    let actions = random_actions(env.as_ref(), 1, 1000);
    for (t, a) in actions.iter().enumerate() {
        let s = env.step(a).unwrap();
        assert!(!s.terminated);
        assert_eq!(s.truncated, t == 999, "step {t}");
        assert_eq!(s.info.end, s.truncated.then_some(EndReason::Truncated));
        assert!(s.obs.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn reward_terms_sum_to_reward_and_control_cost_uses_the_raw_action() {
    // ctrl 2.0 is clamped to 1.0 by the actuator, but the cost sees 2.0 (a v4 quirk).
    let mut big = make("HalfCheetah-v4").unwrap();
    let mut unit = make("HalfCheetah-v4").unwrap();
    big.reset(Some(1));
    unit.reset(Some(1));
    for _ in 0..5 {
        let sb = big.step(&[2.0; 6]).unwrap();
        let su = unit.step(&[1.0; 6]).unwrap();
        assert_eq!(sb.obs, su.obs, "same dynamics: the actuator clamps");
        assert!((sb.info.reward_term(big.spec(), "reward_ctrl").unwrap() + 0.1 * 6.0 * 4.0).abs() < 1e-9);
        assert!((su.info.reward_term(unit.spec(), "reward_ctrl").unwrap() + 0.1 * 6.0).abs() < 1e-9);
        let run = sb.info.reward_term(big.spec(), "reward_run").unwrap();
        assert!((run - sb.info.x_velocity).abs() < 1e-12);
        assert!((sb.reward - (run - 2.4)).abs() < 1e-9);
    }
    for id in ["Hopper-v4", "Ant-v4"] {
        let mut env = make(id).unwrap();
        env.reset(Some(2));
        for a in random_actions(env.as_ref(), 4, 30) {
            let s = env.step(&a).unwrap();
            let sum: f64 = s.info.reward_terms.iter().sum();
            assert!((s.reward - sum).abs() < 1e-9, "{id}");
            let w = if id == "Hopper-v4" { 1e-3 } else { 0.5 };
            let ctrl: f64 = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() * w;
            assert!((s.info.reward_term(env.spec(), "reward_ctrl").unwrap() + ctrl).abs() < 1e-9, "{id}");
        }
    }
}

#[test]
fn hopper_pays_the_healthy_reward_on_its_terminal_step() {
    let mut env = make("Hopper-v4").unwrap();
    env.reset(Some(0));
    for t in 0..1000 {
        // Full extension torque topples the hopper quickly.
        let s = env.step(&[1.0, -1.0, 1.0]).unwrap();
        if s.terminated {
            assert_eq!(s.info.reward_term(env.spec(), "reward_survive"), Some(1.0));
            assert_eq!(s.info.end, Some(EndReason::Terminated));
            assert!(t < 200, "terminated at {t}");
            let z = s.obs[0];
            let angle = s.obs[1];
            assert!(z <= 0.7 || angle.abs() >= 0.2 || s.obs[1..].iter().any(|x| x.abs() >= 100.0), "z {z} angle {angle}");
            return;
        }
    }
    panic!("the hopper never fell");
}

#[test]
fn observations_are_gymnasium_layouts() {
    // Hopper: qpos[1:] then qvel clipped to ±10.
    let mut hopper = locomotion::hopper().build().unwrap();
    let obs = hopper.reset(Some(3));
    let (qpos, qvel) = hopper.state();
    let expect: Vec<f32> = qpos[1..].iter().chain(qvel).map(|&x| x as f32).collect();
    assert_eq!(obs, expect);
    assert!((qpos[1] - 1.25).abs() <= 5e-3 + 1e-6, "rootz starts at its ref ± noise: {}", qpos[1]);

    // Ant: qpos[2:] then qvel; the reset quaternion carries its noise unnormalised, and is
    // normalised once simulated.
    let mut ant = locomotion::ant().build().unwrap();
    let obs = ant.reset(Some(3));
    let (qpos, qvel) = ant.state();
    let expect: Vec<f32> = qpos[2..].iter().chain(qvel).map(|&x| x as f32).collect();
    assert_eq!(obs, expect);
    let norm = |q: &[f32]| q.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm(&obs[1..5]) - 1.0).abs() > 1e-3, "noisy quaternion is unnormalised");
    let s = ant.step(&[0.0; 8]).unwrap();
    assert!((norm(&s.obs[1..5]) - 1.0).abs() < 1e-4);
    // Ant's actuators are not in qpos order: the first drives hip_4.
    let facts = ant.physics().model().actuator_facts();
    assert_eq!(facts.iter().map(|a| a.joint.as_str()).collect::<Vec<_>>()[..3], ["hip_4", "ankle_4", "hip_1"]);
}

/// A one-link pendulum whose actuator has no control range: huge actions blow it up.
const FRAGILE: &str = r#"<mujoco model="fragile">
  <compiler angle="radian" inertiafromgeom="false"/>
  <option timestep="0.01" gravity="0 0 -9.81"/>
  <worldbody>
    <geom name="floor" type="plane" size="10 10 1" contype="1" conaffinity="1"/>
    <body name="torso" pos="0 0 1">
      <inertial pos="0 0 0" mass="1" diaginertia="0.01 0.01 0.01"/>
      <joint name="rootx" type="slide" axis="1 0 0"/>
      <joint name="rooty" type="hinge" axis="0 1 0"/>
      <geom name="torso_geom" type="capsule" size="0.05 0.2" contype="1" conaffinity="0"/>
      <body name="arm" pos="0 0 -0.3">
        <inertial pos="0 0 -0.1" mass="0.1" diaginertia="0.001 0.001 0.001"/>
        <joint name="elbow" type="hinge" axis="0 1 0"/>
        <geom name="arm_geom" type="capsule" size="0.04 0.1" pos="0 0 -0.1" contype="1" conaffinity="0"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="elbow" gear="1" ctrllimited="false"/></actuator>
</mujoco>"#;

#[test]
fn absurd_actions_never_panic_nor_leak_non_finite_observations() {
    let spec = locomotion::custom(ModelSource::Embedded { name: "fragile.xml", xml: FRAGILE });
    let mut env = spec.build().unwrap();
    assert_eq!(env.spec().act_dim(), 1);
    env.reset(Some(0));
    for t in 0..50 {
        let u = if t % 2 == 0 { f32::MAX } else { -f32::MAX };
        let s = env.step(&[u]).unwrap();
        assert!(s.obs.iter().all(|x| x.is_finite()), "step {t}: {:?}", s.obs);
        if s.terminated {
            assert_eq!(s.info.end, Some(EndReason::NonFinite));
            assert!(env.reset(None).iter().all(|x| x.is_finite()));
        }
    }
}

#[test]
fn bad_models_are_clear_errors() {
    let missing = locomotion::custom(ModelSource::File("/nonexistent/robot.xml".into())).build().err().unwrap();
    assert!(missing.to_string().contains("/nonexistent/robot.xml"), "{missing}");
    let garbage = locomotion::custom(ModelSource::Embedded { name: "garbage.xml", xml: "<mujoco><worldbody>" });
    let err = garbage.build().err().unwrap();
    assert!(err.to_string().contains("garbage.xml"), "{err}");

    // What MuJoCo's compiler refuses, named; each edit of a model that loads.
    let build = |xml: String| {
        let xml: &'static str = Box::leak(xml.into_boxed_str());
        locomotion::custom(ModelSource::Embedded { name: "edited.xml", xml }).build().err().map(|e| e.to_string())
    };
    let arm_geom = r#"<geom name="arm_geom" type="capsule" size="0.04 0.1" pos="0 0 -0.1" contype="1" conaffinity="0"/>"#;
    let arm_inertial = r#"<inertial pos="0 0 -0.1" mass="0.1" diaginertia="0.001 0.001 0.001"/>"#;
    assert!(build(FRAGILE.to_string()).is_none());
    let cases = [
        (FRAGILE.replace(arm_geom, r#"<geom name="arm_geom" type="sphere" size="-1"/>"#), "geom 'arm_geom': radius -1"),
        (FRAGILE.replace(arm_geom, r#"<geom name="arm_geom" type="mesh" mesh="hand"/>"#).replace("<worldbody>", r#"<asset><mesh name="hand" file="no/such/hand.stl"/></asset><worldbody>"#), "hand.stl does not exist"),
        (FRAGILE.replace(arm_geom, r#"<geom name="arm_geom" type="ellipsoid" size="0.1 0 0.1"/>"#), "geom 'arm_geom': size [0.1, 0.0, 0.1] must be positive"),
        (FRAGILE.replace(arm_geom, r#"<geom name="arm_geom" type="box" size="0.1 -1 0.1"/>"#), "geom 'arm_geom': size [0.1, -1.0, 0.1] must be positive"),
        (FRAGILE.replace(arm_inertial, r#"<inertial pos="0 0 -0.1" mass="0" diaginertia="0 0 0"/>"#), "body 'arm' moves but has mass 0"),
    ];
    for (xml, needle) in cases {
        let err = build(xml).expect("refused");
        assert!(err.contains(needle), "{err}");
    }
    // 20 000 nested bodies: an error, not a stack overflow; 100 still load, also on a thread
    // with a 2 MB stack (an actor's).
    let nest = |depth: usize| {
        let inner: String = (0..depth).map(|k| format!(r#"<body name="b{k}" pos="0 0 -0.01"><inertial pos="0 0 0" mass="0.01" diaginertia="1e-5 1e-5 1e-5"/><joint name="j{k}" type="hinge" axis="0 1 0"/><geom type="sphere" size="0.01"/>"#)).collect();
        FRAGILE.replace(arm_geom, &format!("{arm_geom}{inner}{}", "</body>".repeat(depth)))
    };
    assert!(build(nest(20_000)).expect("refused").contains("nest more than 100 deep"));
    let deep = nest(98);
    let loaded = std::thread::Builder::new().stack_size(2 << 20).spawn(move || build(deep)).unwrap().join().unwrap();
    assert!(loaded.is_none(), "{loaded:?}");
}

#[test]
fn reset_noise_follows_each_task_rule() {
    // (spec, scale, qvel is normal) — Hopper: U(±5e-3) on both; HalfCheetah/Ant: U(±0.1) on qpos, 0.1·N(0,1) on qvel; Humanoid: U(±1e-2) on both.
    for (spec, scale, normal) in [(locomotion::hopper(), 5e-3, false), (locomotion::half_cheetah(), 0.1, true), (locomotion::ant(), 0.1, true), (locomotion::humanoid(), 1e-2, false)] {
        let mut env = spec.build().unwrap();
        env.reset(Some(0));
        let mut clean = spec.build().unwrap();
        let mut obs = vec![0.0; clean.spec().obs_dim()];
        clean.reset_without_noise(&mut obs).unwrap();
        let qpos0 = clean.state().0.to_vec();
        let (mut dq, mut dv) = (Vec::new(), Vec::new());
        for _ in 0..300 {
            env.reset(None);
            let (qpos, qvel) = env.state();
            dq.extend(qpos.iter().zip(&qpos0).map(|(a, b)| a - b));
            dv.extend_from_slice(qvel);
        }
        assert!(dq.iter().all(|d| d.abs() <= scale + 1e-9), "{}: qpos noise beyond ±{scale}", spec.id);
        let std = |xs: &[f64]| (xs.iter().map(|x| x * x).sum::<f64>() / xs.len() as f64).sqrt();
        let uniform_std = scale / 3f64.sqrt();
        assert!((std(&dq) - uniform_std).abs() < 0.1 * uniform_std, "{}: qpos noise std {}", spec.id, std(&dq));
        if normal {
            assert!((std(&dv) - scale).abs() < 0.1 * scale, "{}: qvel noise std {}", spec.id, std(&dv));
            assert!(dv.iter().any(|v| v.abs() > scale), "{}: a normal has tails", spec.id);
        } else {
            assert!(dv.iter().all(|v| v.abs() <= scale + 1e-12));
            assert!((std(&dv) - uniform_std).abs() < 0.1 * uniform_std, "{}: qvel noise std {}", spec.id, std(&dv));
        }
    }
}

#[test]
fn snapshot_restore_continues_bitwise_and_rejects_foreign_state() {
    for id in ["Pendulum-v1", "Hopper-v4", "Ant-v4", "Humanoid-v4"] {
        let mut env = make(id).unwrap();
        let actions = random_actions(env.as_ref(), 4, 60);
        env.reset(Some(9));
        for a in &actions[..25] {
            env.step(a).unwrap();
        }
        let snap = env.snapshot();
        let rest: Vec<_> = actions[25..].iter().map(|a| env.step(a).unwrap()).collect();

        let mut fresh = make(id).unwrap();
        fresh.reset(Some(12345));
        let mut obs = vec![0.0; fresh.spec().obs_dim()];
        fresh.restore(&snap, &mut obs).unwrap();
        for (a, expected) in actions[25..].iter().zip(&rest) {
            let got = fresh.step(a).unwrap();
            assert_eq!(got.obs, expected.obs, "{id}: observation after restore");
            assert_eq!(got.reward.to_bits(), expected.reward.to_bits(), "{id}: reward after restore");
            assert_eq!((got.terminated, got.truncated), (expected.terminated, expected.truncated));
        }
        // A later reset continues the same random stream.
        assert_eq!(env.reset(None), fresh.reset(None), "{id}: reset noise after restore");
    }
    let pendulum = make("Pendulum-v1").unwrap().snapshot();
    let mut hopper = make("Hopper-v4").unwrap();
    let before = hopper.reset(Some(1));
    let mut obs = vec![0.0; 11];
    assert!(matches!(hopper.restore(&pendulum, &mut obs), Err(EnvError::Snapshot { .. })));
    assert_eq!(hopper.snapshot().floats[..6], hopper.snapshot().floats[..6]);
    let after = hopper.step(&[0.0; 3]).unwrap();
    let mut again = make("Hopper-v4").unwrap();
    assert_eq!(again.reset(Some(1)), before);
    assert_eq!(again.step(&[0.0; 3]).unwrap().obs, after.obs, "a refused snapshot changes nothing");
}

/// A bounded fuzz run (cargo-fuzz's `mjcf` target runs it unbounded): damaged task files
/// are errors, or models that reset and step — never a panic.
#[test]
fn damaged_task_files_are_errors_or_models_that_step() {
    use spikerl_rng::{SplitMix, mutate};
    let words = ["<", ">", "/>", "\"", "0", "-1", "1e30", "nan", "inf", " ", "<body>", "</body>", "<geom/>", "size=\"", "pos=\"", "mass=\"0\"", "type=\"", "fromto=\"0 0 0 0 0 0\"", "<joint type=\"free\"/>", "range=\"1 -1\""];
    let mut rng = SplitMix::new(3);
    let (mut stepped, mut refused) = (0, 0);
    for _ in 0..2000 {
        let xml: &'static str = Box::leak(mutate::text(&mut rng, FRAGILE, &words).into_boxed_str());
        if let Ok(mut env) = locomotion::custom(ModelSource::Embedded { name: "damaged.xml", xml }).build() {
            env.reset(Some(0));
            let action = vec![0.5; env.spec().act_dim()];
            for _ in 0..5 {
                if env.step(&action).is_err() {
                    break;
                }
            }
            stepped += 1;
        } else {
            refused += 1;
        }
    }
    assert!(stepped > 0 && refused > 0, "{stepped} stepped, {refused} refused");
}
