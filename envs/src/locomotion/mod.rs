//! rapier3d ports of Gymnasium's MuJoCo locomotion tasks (v4 semantics).

mod articulated;
mod collision;
mod com_frame;
mod constraints;
mod model;
mod simulation;
mod task;

pub use com_frame::ComFrame;
pub use model::extras::Integrator;
pub use model::{ActuatorFacts, BodyId, JointFacts, JointKind, Model};
pub use simulation::{ContactPoint, GeomPose, GeomShape, Simulation};
pub use task::{ForwardX, Health, LocomotionEnv, LocomotionSpec, ModelSource, ObsLayout, VelocityNoise};


/// Hopper-v4.
pub fn hopper() -> LocomotionSpec {
    LocomotionSpec {
        id: "Hopper-v4",
        model: ModelSource::Embedded { name: "hopper.xml", xml: include_str!("../../assets/hopper.xml") },
        frame_skip: 4,
        obs: ObsLayout { skip_qpos: 1, clip_qvel: Some(10.0), com_based: false },
        forward_x: ForwardX::Qpos0,
        forward_reward_weight: 1.0,
        ctrl_cost_weight: 1e-3,
        healthy_reward: Some(1.0),
        health: Health::Planar {
            z_range: (0.7, f64::INFINITY),
            angle_range: (-0.2, 0.2),
            state_range: Some((-100.0, 100.0)),
        },
        reset_noise_scale: 5e-3,
        velocity_noise: VelocityNoise::Uniform,
        max_episode_steps: 1000,
    }
}

/// Walker2d-v4 (the v4 model: the left foot's friction is 1.9, the right's 0.9).
pub fn walker2d() -> LocomotionSpec {
    LocomotionSpec {
        id: "Walker2d-v4",
        model: ModelSource::Embedded { name: "walker2d.xml", xml: include_str!("../../assets/walker2d.xml") },
        health: Health::Planar { z_range: (0.8, 2.0), angle_range: (-1.0, 1.0), state_range: None },
        ..hopper()
    }
}

/// HalfCheetah-v4.
pub fn half_cheetah() -> LocomotionSpec {
    LocomotionSpec {
        id: "HalfCheetah-v4",
        model: ModelSource::Embedded { name: "half_cheetah.xml", xml: include_str!("../../assets/half_cheetah.xml") },
        frame_skip: 5,
        obs: ObsLayout { skip_qpos: 1, clip_qvel: None, com_based: false },
        forward_x: ForwardX::Qpos0,
        forward_reward_weight: 1.0,
        ctrl_cost_weight: 0.1,
        healthy_reward: None,
        health: Health::Always,
        reset_noise_scale: 0.1,
        velocity_noise: VelocityNoise::Normal,
        max_episode_steps: 1000,
    }
}

/// Ant-v4 (contact forces excluded from the observation, as by default).
pub fn ant() -> LocomotionSpec {
    LocomotionSpec {
        id: "Ant-v4",
        model: ModelSource::Embedded { name: "ant.xml", xml: include_str!("../../assets/ant.xml") },
        frame_skip: 5,
        obs: ObsLayout { skip_qpos: 2, clip_qvel: None, com_based: false },
        forward_x: ForwardX::LaggedBody("torso"),
        forward_reward_weight: 1.0,
        ctrl_cost_weight: 0.5,
        healthy_reward: Some(1.0),
        health: Health::Floating { z_range: (0.2, 1.0) },
        reset_noise_scale: 0.1,
        velocity_noise: VelocityNoise::Normal,
        max_episode_steps: 1000,
    }
}

/// Humanoid-v4: the observation ends with MuJoCo's com-based `cinert`, `cvel`,
/// `qfrc_actuator` and `cfrc_ext`; the forward reward follows the whole body's centre of mass.
pub fn humanoid() -> LocomotionSpec {
    LocomotionSpec {
        id: "Humanoid-v4",
        model: ModelSource::Embedded { name: "humanoid.xml", xml: include_str!("../../assets/humanoid.xml") },
        frame_skip: 5,
        obs: ObsLayout { skip_qpos: 2, clip_qvel: None, com_based: true },
        forward_x: ForwardX::LaggedMassCentre,
        forward_reward_weight: 1.25,
        ctrl_cost_weight: 0.1,
        healthy_reward: Some(5.0),
        health: Health::Standing { z_range: (1.0, 2.0) },
        reset_noise_scale: 1e-2,
        velocity_noise: VelocityNoise::Uniform,
        max_episode_steps: 1000,
    }
}

/// A generic task on any MJCF model with hinge/slide joints and `<motor>` actuators:
/// HalfCheetah's rules (reward `Δqpos[0]/dt − 0.1·Σa²`, never terminates, observation
/// `qpos[1:] ++ qvel`, frame_skip 5, reset noise U(±0.1)). Change fields for other rules.
pub fn custom(model: ModelSource) -> LocomotionSpec {
    LocomotionSpec {
        id: "Custom-MJCF",
        model,
        velocity_noise: VelocityNoise::Uniform,
        ..half_cheetah()
    }
}
