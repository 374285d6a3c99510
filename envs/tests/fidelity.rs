//! The ports against MuJoCo's reference data in `../shared/reference/mujoco/`
//! (or `$SPIKERL_REFERENCE_DIR`). `spikerl envcheck --env ENV` prints the same table.

use spikerl_envs::reference::{self, Check};

fn reference_dir() -> std::path::PathBuf {
    reference::find_reference_dir()
        .expect("MuJoCo reference data not found: expected ../shared/reference/mujoco or $SPIKERL_REFERENCE_DIR")
}

fn assert_all_pass(env_id: &str, checks: Vec<Check>) {
    let failed: Vec<String> = checks.iter().filter(|c| !c.passed()).map(|c| c.to_string()).collect();
    assert!(failed.is_empty(), "{env_id}: {} of {} checks failed:\n{}", failed.len(), checks.len(), failed.join("\n"));
}

fn dynamics(env_id: &str, which: &str) -> Vec<Check> {
    reference::dynamics_checks(env_id, &reference_dir())
        .unwrap()
        .into_iter()
        .filter(|c| c.what.starts_with(which))
        .collect()
}

#[test]
fn model_facts_equal_mujoco() {
    for env_id in ["Hopper-v4", "HalfCheetah-v4", "Ant-v4", "Walker2d-v4", "Humanoid-v4"] {
        let checks = reference::model_checks(env_id, &reference_dir()).unwrap();
        assert!(checks.len() > 40, "{env_id}: only {} facts compared", checks.len());
        // Self-collisions: the pairs MuJoCo's parent filter lets through (Humanoid: 109).
        let between = checks.iter().find(|c| c.what == "collision pairs between bodies").expect("compared");
        assert!(env_id != "Humanoid-v4" || between.mujoco > 100.0, "{between}");
        assert_all_pass(env_id, checks);
    }
}

#[test]
fn hopper_zero_and_sine_rollouts_follow_mujoco() {
    assert_all_pass("Hopper-v4", dynamics("Hopper-v4", ""));
}

#[test]
fn walker2d_zero_and_sine_rollouts_follow_mujoco() {
    assert_all_pass("Walker2d-v4", dynamics("Walker2d-v4", ""));
}

#[test]
fn halfcheetah_zero_and_sine_rollouts_follow_mujoco() {
    assert_all_pass("HalfCheetah-v4", dynamics("HalfCheetah-v4", ""));
}

#[test]
fn ant_zero_and_sine_rollouts_follow_mujoco() {
    assert_all_pass("Ant-v4", dynamics("Ant-v4", ""));
}

#[test]
fn humanoid_zero_and_sine_rollouts_follow_mujoco() {
    let checks = dynamics("Humanoid-v4", "");
    for part in ["cinert", "cvel", "qfrc_actuator", "cfrc_ext"] {
        assert!(checks.iter().any(|c| c.what.contains(&format!("obs {part} "))), "{part} is compared");
    }
    assert_all_pass("Humanoid-v4", checks);
}
