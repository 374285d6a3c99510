//! An MJCF model simulated by rapier3d with reduced-coordinate (multibody) joints, read and
//! written in MuJoCo's terms: `qpos`, `qvel`, `ctrl`.
//!
//! rapier3d-mjcf parses the file and builds the multibody; this module overrides the loader
//! defaults that are not MuJoCo's (floor planes, contact filtering, friction combination,
//! velocity-motor actuators, contact and limit stiffness) and keeps a snapshot of the initial
//! world so that a reset is a cheap clone rather than a rebuild.

use std::path::Path;

use rapier3d::na::DVector;
use rapier3d::prelude::*;
use rapier3d_mjcf::{ContactFilterMode, MjcfDofKind, MjcfLoaderOptions, MjcfMultibodyOptions, MjcfRobot};

use super::floor_contact::{FloorContacts, FloorGeom, translational_invweight};
use super::soft_limit::{DEFAULT_SOLIMP, DEFAULT_SOLREF, SoftLimit};
use crate::EnvError;

/// The knobs of rapier that decide how closely the port follows MuJoCo, and how fast it runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhysicsTuning {
    /// rapier steps per MuJoCo timestep (1 = same timestep as MuJoCo).
    pub steps_per_timestep: usize,
    /// rapier solver iterations (TGS substeps) per rapier step.
    pub solver_iterations: usize,
    /// Softness of rapier's own contacts (body–body; the floor's are MuJoCo's): natural
    /// frequency (Hz) and damping ratio.
    pub contact_hz: f32,
    pub contact_damping: f32,
    /// Floor contacts as MuJoCo's soft constraints (else rapier's contacts).
    pub mujoco_floor: bool,
    /// Projected Gauss–Seidel sweeps for the floor contacts.
    pub contact_iterations: usize,
    /// Take the contacts' unconstrained acceleration from rapier's last step (with Coriolis
    /// terms) instead of gravity and joint forces alone.
    pub coriolis_a0: bool,
    /// Integrate the soft limits' spring and damper implicitly (stable at larger steps).
    pub implicit_limits: bool,
}

impl Default for PhysicsTuning {
    fn default() -> Self {
        Self {
            steps_per_timestep: 1,
            solver_iterations: 1,
            contact_hz: 16.0,
            contact_damping: 1.0,
            mujoco_floor: true,
            contact_iterations: 30,
            coriolis_a0: false,
            implicit_limits: false,
        }
    }
}

/// A joint as the port built it, for comparison with MuJoCo's model.
#[derive(Debug, Clone, PartialEq)]
pub struct JointFacts {
    pub name: String,
    pub kind: JointKind,
    pub range: Option<[f64; 2]>,
    pub armature: f64,
    pub damping: f64,
    pub stiffness: f64,
}

/// An actuator as the port built it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActuatorFacts {
    pub joint: String,
    pub gear: f64,
    pub ctrl_range: Option<[f64; 2]>,
}

/// What kind of MuJoCo joint a `qpos` block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JointKind {
    Free,
    Hinge,
    Slide,
}

/// Where a hinge's generalized force goes: an equal and opposite torque pair about its axis.
#[derive(Debug, Clone, Copy)]
struct HingeFrame {
    child: RigidBodyHandle,
    parent: RigidBodyHandle,
    /// Joint axis in the child's frame.
    local_axis: Vector,
}

#[derive(Debug, Clone)]
struct JointDof {
    name: String,
    kind: JointKind,
    hinge: Option<HingeFrame>,
    /// MuJoCo's range, in MuJoCo's coordinate.
    range: Option<[f64; 2]>,
    limit: Option<SoftLimit>,
    /// The joint's own spring (stiffness, rest) and damping, as the model sets them.
    passive_spring: (f32, f32),
    passive_damping: f32,
    /// Multibody link carrying this joint.
    link: usize,
    /// The rigid body moved by this joint.
    body: RigidBodyHandle,
    /// Index of this joint's first velocity in the multibody's generalized velocity.
    dof: usize,
    /// MuJoCo `qpos0` (the joint's `ref`): rapier's coordinate is zero there.
    qpos0: f64,
}

#[derive(Debug, Clone)]
struct Actuator {
    /// Index into `MjcfPhysics::joints`.
    joint: usize,
    gear: f64,
    ctrl_range: Option<[f64; 2]>,
}

/// What the floor contacts carry from one step to the next.
#[derive(Debug, Clone, Default)]
struct ContactState {
    /// A step has run since the last reset, so rapier's accelerations are current.
    warm: bool,
    joint_tau: DVector<f32>,
    contact_accel: DVector<f32>,
    a0: DVector<f32>,
}

/// Everything rapier mutates during a step: cloning it is a full snapshot.
#[derive(Clone)]
struct World {
    islands: IslandManager,
    broad_phase: DefaultBroadPhase,
    narrow_phase: NarrowPhase,
    bodies: RigidBodySet,
    colliders: ColliderSet,
    impulse_joints: ImpulseJointSet,
    multibody_joints: MultibodyJointSet,
    soft_bodies: SoftBodySet,
    ccd_solver: CCDSolver,
}

/// An MJCF model in rapier, addressed like MuJoCo's `mjData`.
pub struct MjcfPhysics {
    world: World,
    initial: World,
    pipeline: PhysicsPipeline,
    params: IntegrationParameters,
    gravity: Vector,
    multibody: MultibodyIndex,
    joints: Vec<JointDof>,
    actuators: Vec<Actuator>,
    /// Generalized force per joint for the current rapier step (scratch).
    joint_force: Vec<f64>,
    /// MuJoCo-style floor contacts (None: rapier handles the floor).
    floor: Option<FloorContacts>,
    /// (link, mass) for the gravity term of the contacts' unconstrained acceleration.
    link_masses: Vec<(usize, f32)>,
    contact_state: ContactState,
    coriolis_a0: bool,
    implicit_limits: bool,
    body_names: Vec<(String, RigidBodyHandle)>,
    geom_frictions: Vec<(String, f64)>,
    /// rapier steps per env step (frame_skip × steps_per_timestep).
    frame_steps: usize,
    steps_per_timestep: usize,
    timestep: f64,
    nq: usize,
    nv: usize,
}

impl MjcfPhysics {
    /// Loads an MJCF file. `frame_skip` MuJoCo timesteps make one env step.
    pub fn from_file(path: &Path, frame_skip: usize, tuning: PhysicsTuning) -> Result<Self, EnvError> {
        let xml = std::fs::read_to_string(path)
            .map_err(|e| EnvError::Model { path: path.display().to_string(), reason: e.to_string() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_xml(&xml, base, &path.display().to_string(), frame_skip, tuning)
    }

    /// Builds from MJCF text; `origin` names it in errors.
    pub fn from_xml(
        xml: &str,
        base_dir: &Path,
        origin: &str,
        frame_skip: usize,
        tuning: PhysicsTuning,
    ) -> Result<Self, EnvError> {
        let model_err = |reason: String| EnvError::Model { path: origin.to_string(), reason };
        if frame_skip == 0 || tuning.steps_per_timestep == 0 || tuning.solver_iterations == 0 {
            return Err(model_err("frame_skip, steps_per_timestep and solver_iterations must be ≥ 1".into()));
        }
        let options = MjcfLoaderOptions {
            skip_plane_geoms: false,
            contact_filter_mode: ContactFilterMode::Asymmetric,
            // Actuators are applied as torques below, not as the loader's velocity motors.
            disable_joint_motors: false,
            ..MjcfLoaderOptions::default()
        };
        let (robot, model) = MjcfRobot::from_str(xml, options, base_dir).map_err(|e| model_err(format!("{e:#}")))?;
        let timestep = model.option.timestep;
        let gravity = model.option.gravity;
        let body_name_to_idx = robot.body_name_to_idx.clone();
        let robot_geoms = robot.geom_name_to_collider.clone();
        let joint_names: Vec<Option<String>> = robot.joints.iter().map(|j| j.name.clone()).collect();
        let joint_damping: Vec<f32> = robot.joints.iter().map(|j| j.damping_per_dof).collect();
        let actuator_specs: Vec<_> = robot.actuators.iter().map(|a| (a.actuator.clone(), a.joint_index)).collect();
        let qpos_dofs = robot.qpos_dofs.clone();
        let joint_limits: Vec<Option<[f32; 2]>> = robot
            .joints
            .iter()
            .map(|j| {
                let axis = if j.joint.locked_axes.contains(JointAxesMask::LIN_X) { JointAxis::AngX } else { JointAxis::LinX };
                j.joint.limit_axes.contains(axis.into()).then(|| j.joint.limits(axis)).flatten().map(|l| [l.min, l.max])
            })
            .collect();
        let solver_params = limit_solver_params(xml).map_err(|e| model_err(format!("bad XML: {e}")))?;

        let mut w = World {
            islands: IslandManager::new(),
            broad_phase: DefaultBroadPhase::default(),
            narrow_phase: NarrowPhase::new(),
            bodies: RigidBodySet::new(),
            colliders: ColliderSet::new(),
            impulse_joints: ImpulseJointSet::new(),
            multibody_joints: MultibodyJointSet::new(),
            soft_bodies: SoftBodySet::new(),
            ccd_solver: CCDSolver::new(),
        };
        let handles = robot.insert_using_multibody_joints(
            &mut w.bodies,
            &mut w.colliders,
            &mut w.multibody_joints,
            &mut w.impulse_joints,
            // Actuators and limits are MuJoCo's, applied as generalized forces below.
            MjcfMultibodyOptions::SKIP_JOINT_MOTORS | MjcfMultibodyOptions::SKIP_JOINT_LIMITS,
        );

        // rapier settles a multibody's root (fixed or free) lazily; do it now, so that the
        // generalized-coordinate layout read below is final.
        let mut indices: Vec<MultibodyIndex> =
            w.bodies.iter().filter_map(|(h, _)| w.multibody_joints.rigid_body_link(h).map(|l| l.multibody)).collect();
        indices.dedup();
        for i in indices {
            let mb = w.multibody_joints.get_multibody_mut(i).expect("listed multibody");
            mb.forward_kinematics(&w.bodies, true);
            mb.update_rigid_bodies(&mut w.bodies, true);
        }

        // MuJoCo combines friction by maximum; only its sliding coefficient matters here.
        for (_, c) in w.colliders.iter_mut() {
            c.set_friction_combine_rule(CoefficientCombineRule::Max);
            // MuJoCo collides two geoms when either one's contype meets the other's conaffinity.
            let mut groups = c.collision_groups();
            groups.test_mode = InteractionTestMode::Or;
            c.set_collision_groups(groups);
            c.set_active_hooks(ActiveHooks::empty());
        }
        for (_, b) in w.bodies.iter_mut() {
            b.activation_mut().normalized_linear_threshold = -1.0;
            b.activation_mut().angular_threshold = -1.0;
        }

        let geom_frictions = {
            let mut v: Vec<(String, f64)> = robot_geoms
                .iter()
                .filter_map(|(name, &(b, c))| {
                    let h = handles.bodies.get(b)?.as_ref()?.colliders.get(c)?.handle;
                    Some((name.clone(), w.colliders.get(h)?.friction() as f64))
                })
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let body_of = |idx: usize| -> Option<RigidBodyHandle> { handles.bodies.get(idx)?.as_ref().map(|b| b.body) };
        let mut body_names = Vec::new();
        for (name, &idx) in &body_name_to_idx {
            if let Some(h) = body_of(idx) {
                body_names.push((name.clone(), h));
            }
        }
        body_names.sort_by(|a, b| a.0.cmp(&b.0));

        // MuJoCo joints in qpos order, each tied to its multibody link.
        let mut multibody = None;
        let mut joints = Vec::new();
        for dof in &qpos_dofs {
            let (body, kind) = match (dof.kind, dof.joint) {
                (MjcfDofKind::Free, _) => {
                    (body_of(dof.body).ok_or_else(|| model_err("free joint on a missing body".into()))?, JointKind::Free)
                }
                (MjcfDofKind::Hinge, Some(ji)) => (handles.joints[ji].link2, JointKind::Hinge),
                (MjcfDofKind::Slide, Some(ji)) => (handles.joints[ji].link2, JointKind::Slide),
                (kind, _) => return Err(model_err(format!("{kind:?} joints are not supported"))),
            };
            if let Some(ji) = dof.joint
                && handles.joints[ji].joint.is_none()
            {
                return Err(model_err(format!("joint {:?} closes a loop, which is not supported", joint_names[ji])));
            }
            let link_id = w
                .multibody_joints
                .rigid_body_link(body)
                .copied()
                .ok_or_else(|| model_err("a jointed body is not part of the articulation".into()))?;
            if multibody.is_some_and(|m| m != link_id.multibody) {
                return Err(model_err("the model must be a single articulated tree".into()));
            }
            multibody = Some(link_id.multibody);
            let mb = w.multibody_joints.get_multibody(link_id.multibody).expect("live multibody");
            let mlink = mb.link(link_id.id).expect("live link");
            let name = dof.joint.and_then(|ji| joint_names[ji].clone()).unwrap_or_else(|| "root".into());
            let hinge = match kind {
                JointKind::Hinge => Some(HingeFrame {
                    child: body,
                    parent: mlink
                        .parent_id()
                        .and_then(|p| mb.link(p))
                        .map(|p| p.rigid_body_handle())
                        .ok_or_else(|| model_err(format!("hinge {name} has no parent link")))?,
                    local_axis: mlink.joint().data.local_frame2.rotation * Vector::X,
                }),
                _ => None,
            };
            let qpos0 = dof.reference as f64;
            let rapier_range = dof.joint.and_then(|ji| joint_limits[ji]);
            if kind == JointKind::Slide && rapier_range.is_some() {
                return Err(model_err(format!("slide joint {name}: limits on slide joints are not supported")));
            }
            let (solref, solimp) = solver_params.get(&name).copied().unwrap_or((DEFAULT_SOLREF, DEFAULT_SOLIMP));
            let limit = rapier_range
                .map(|[lo, hi]| SoftLimit { lo: lo as f64, hi: hi as f64, solref, solimp, inertia: 0.0 });
            let range = rapier_range.map(|[lo, hi]| [qpos0 + lo as f64, qpos0 + hi as f64]);
            let passive_spring = if kind == JointKind::Hinge { mlink.joint().spring(3) } else { mlink.joint().spring(0) };
            let passive_damping = dof.joint.map_or(0.0, |ji| joint_damping[ji]);
            joints.push(JointDof { name, kind, hinge, range, limit, passive_spring, passive_damping, link: link_id.id, body, dof: mlink.assembly_id(), qpos0 });
        }
        let multibody = multibody.ok_or_else(|| model_err("the model has no joints".into()))?;

        let mb = w.multibody_joints.get_multibody_mut(multibody).expect("live multibody");
        // MuJoCo sizes constraint forces by each DoF's inverse inertia at the initial pose.
        let inv_inertia = mb.dof_inverse_inertia(&w.bodies);
        for j in &mut joints {
            if let Some(l) = &mut j.limit {
                l.inertia = 1.0 / (inv_inertia[j.dof] as f64).max(1e-12);
            }
        }
        // rapier damps every angular DoF by 0.1 for stability; MuJoCo damps only what the
        // model says.
        mb.damping_mut().fill(0.0);
        for (j, dof) in joints.iter().zip(&qpos_dofs) {
            if let Some(ji) = dof.joint {
                mb.damping_mut()[j.dof] = joint_damping[ji];
            }
        }

        let mut actuators = Vec::new();
        for (spec, joint_index) in actuator_specs {
            let ji = joint_index.ok_or_else(|| model_err("only joint actuators are supported".into()))?;
            if !matches!(spec.kind, rapier3d_mjcf::mjcf_rs::extras::ActuatorKind::Motor) {
                return Err(model_err(format!("actuator {:?}: only <motor> is supported", spec.name)));
            }
            let name = joint_names[ji].clone().unwrap_or_default();
            let joint = joints
                .iter()
                .position(|j| j.name == name && j.hinge.is_some())
                .ok_or_else(|| model_err(format!("actuator on {name}: only hinge joints can be actuated")))?;
            let ctrl_range = match spec.ctrl_limited {
                rapier3d_mjcf::mjcf_rs::types::Tristate::False => None,
                _ => spec.ctrl_range,
            };
            actuators.push(Actuator { joint, gear: spec.gear[0], ctrl_range });
        }
        let joint_force = vec![0.0; joints.len()];
        let floor = if tuning.mujoco_floor {
            let mut collider_names = std::collections::HashMap::new();
            for (name, &(b, c)) in &robot_geoms {
                if let Some(h) = handles.bodies.get(b).and_then(|b| b.as_ref()).and_then(|b| b.colliders.get(c)) {
                    collider_names.insert(h.handle, name.clone());
                }
            }
            let params = geom_params(xml).map_err(|e| model_err(format!("bad XML: {e}")))?;
            take_floor(&mut w, &collider_names, &params).map(|mut f| {
                f.pgs_iterations = tuning.contact_iterations;
                let mb = w.multibody_joints.get_multibody(multibody).expect("live multibody");
                for g in &mut f.geoms {
                    let mu = g.friction as f64;
                    // MuJoCo's pyramid edges: (1 + μ²)·t·2μ² (a frictionless contact: t).
                    let t = translational_invweight(mb, g.link);
                    g.diag_approx = if mu > 0.0 { (1.0 + mu * mu) * t * 2.0 * mu * mu } else { t };
                }
                f
            })
        } else {
            None
        };
        let mut link_masses = Vec::new();
        {
            let mb = w.multibody_joints.get_multibody(multibody).expect("live multibody");
            for (i, link) in mb.links().enumerate() {
                link_masses.push((i, w.bodies[link.rigid_body_handle()].mass()));
            }
        }

        let mut params = IntegrationParameters::default();
        params.dt = (timestep / tuning.steps_per_timestep as f64) as f32;
        params.num_solver_iterations = tuning.solver_iterations;
        params.contact_softness = SpringCoefficients::new(tuning.contact_hz, tuning.contact_damping);
        params.static_contact_softness = params.contact_softness;

        let nq = joints.iter().map(|j| if j.kind == JointKind::Free { 7 } else { 1 }).sum();
        let nv = joints.iter().map(|j| if j.kind == JointKind::Free { 6 } else { 1 }).sum();
        let mut physics = Self {
            initial: w.clone(),
            world: w,
            pipeline: PhysicsPipeline::new(),
            params,
            gravity: Vector::new(gravity[0] as f32, gravity[1] as f32, gravity[2] as f32),
            multibody,
            joints,
            actuators,
            joint_force,
            floor,
            link_masses,
            contact_state: ContactState::default(),
            coriolis_a0: tuning.coriolis_a0,
            implicit_limits: tuning.implicit_limits,
            body_names,
            geom_frictions,
            frame_steps: frame_skip * tuning.steps_per_timestep,
            steps_per_timestep: tuning.steps_per_timestep,
            timestep,
            nq,
            nv,
        };
        // Settle the broad phase once so the snapshot starts with contacts known.
        physics.refresh_collisions();
        physics.initial = physics.world.clone();
        Ok(physics)
    }

    pub fn nq(&self) -> usize {
        self.nq
    }

    pub fn nv(&self) -> usize {
        self.nv
    }

    pub fn nu(&self) -> usize {
        self.actuators.len()
    }

    /// Actuator control ranges (None: unlimited).
    pub fn ctrl_ranges(&self) -> Vec<Option<[f64; 2]>> {
        self.actuators.iter().map(|a| a.ctrl_range).collect()
    }

    pub fn body(&self, name: &str) -> Option<RigidBodyHandle> {
        self.body_names.iter().find(|(n, _)| n == name).map(|(_, h)| *h)
    }

    /// Total mass and per-body masses, by MJCF body name.
    pub fn body_masses(&self) -> Vec<(String, f64)> {
        self.body_names
            .iter()
            .map(|(n, h)| (n.clone(), self.world.bodies[*h].mass() as f64))
            .collect()
    }

    /// Sliding friction per named geom, as the colliders hold it.
    pub fn geom_frictions(&self) -> &[(String, f64)] {
        &self.geom_frictions
    }

    /// The joints as built: range in MuJoCo's coordinates, armature, damping, stiffness.
    pub fn joint_facts(&self) -> Vec<JointFacts> {
        let mb = self.mb();
        self.joints
            .iter()
            .filter(|j| j.kind != JointKind::Free)
            .map(|j| {
                let joint = mb.link(j.link).expect("live link").joint();
                let spatial = if j.kind == JointKind::Hinge { 3 } else { 0 };
                JointFacts {
                    name: j.name.clone(),
                    kind: j.kind,
                    range: j.range,
                    armature: mb.armature()[j.dof] as f64,
                    damping: mb.damping()[j.dof] as f64,
                    stiffness: joint.spring(spatial).0 as f64,
                }
            })
            .collect()
    }

    /// The actuators as built, in `ctrl` order.
    pub fn actuator_facts(&self) -> Vec<ActuatorFacts> {
        self.actuators
            .iter()
            .map(|a| ActuatorFacts { joint: self.joints[a.joint].name.clone(), gear: a.gear, ctrl_range: a.ctrl_range })
            .collect()
    }

    /// World position of a body's frame origin (MuJoCo's `xpos`).
    pub fn xpos(&self, body: RigidBodyHandle) -> [f64; 3] {
        let t = self.world.bodies[body].position().translation;
        [t.x as f64, t.y as f64, t.z as f64]
    }

    /// Restores the initial state (MuJoCo's `qpos0`, zero velocity).
    pub fn reset_to_initial(&mut self) {
        self.world.clone_from(&self.initial);
        self.contact_state.warm = false;
    }

    fn mb(&self) -> &Multibody {
        self.world.multibody_joints.get_multibody(self.multibody).expect("multibody lives as long as the world")
    }

    /// Writes MuJoCo's `qpos` (length nq) and `qvel` (length nv).
    pub fn read_state(&self, qpos: &mut [f64], qvel: &mut [f64]) {
        let mb = self.mb();
        let gv = mb.generalized_velocity();
        let (mut qi, mut vi) = (0, 0);
        for j in &self.joints {
            let link = mb.link(j.link).expect("link index from construction");
            match j.kind {
                JointKind::Free => {
                    let rb = &self.world.bodies[j.body];
                    let p = rb.position();
                    let q = p.rotation;
                    qpos[qi..qi + 7].copy_from_slice(&[
                        p.translation.x as f64,
                        p.translation.y as f64,
                        p.translation.z as f64,
                        q.w as f64,
                        q.x as f64,
                        q.y as f64,
                        q.z as f64,
                    ]);
                    // MuJoCo: linear velocity of the body origin in world frame, angular in body frame.
                    let lin = Vector::new(gv[j.dof], gv[j.dof + 1], gv[j.dof + 2]);
                    let ang = q.inverse() * Vector::new(gv[j.dof + 3], gv[j.dof + 4], gv[j.dof + 5]);
                    qvel[vi..vi + 6].copy_from_slice(&[
                        lin.x as f64,
                        lin.y as f64,
                        lin.z as f64,
                        ang.x as f64,
                        ang.y as f64,
                        ang.z as f64,
                    ]);
                    qi += 7;
                    vi += 6;
                }
                JointKind::Hinge | JointKind::Slide => {
                    let c = link.joint().coords();
                    let coord = if j.kind == JointKind::Hinge { c[3] } else { c[0] };
                    qpos[qi] = j.qpos0 + coord as f64;
                    qvel[vi] = gv[j.dof] as f64;
                    qi += 1;
                    vi += 1;
                }
            }
        }
    }

    /// Moves the state from the initial one by `dqpos` (hinge/slide: added to qpos; free: the
    /// position offset and a new orientation quaternion (w, x, y, z), normalised here) and sets
    /// `qvel`. Call right after [`Self::reset_to_initial`].
    pub fn set_state_from_initial(&mut self, dqpos: &[f64], free_quat: Option<[f64; 4]>, qvel: &[f64]) {
        let multibody = self.multibody;
        let mb = self.world.multibody_joints.get_multibody_mut(multibody).expect("live multibody");
        let ndofs = mb.ndofs();
        let mut disp = vec![0.0 as Real; ndofs];
        let (mut qi, mut vi) = (0, 0);
        let mut root_pose = None;
        for j in &self.joints {
            match j.kind {
                JointKind::Free => {
                    let rb = &self.world.bodies[j.body];
                    let mut pose = *rb.position();
                    pose.translation += Vector::new(dqpos[qi] as f32, dqpos[qi + 1] as f32, dqpos[qi + 2] as f32);
                    if let Some([w, x, y, z]) = free_quat {
                        pose.rotation = Rotation::from_xyzw(x as f32, y as f32, z as f32, w as f32).normalize();
                    }
                    root_pose = Some((j.body, pose));
                    qi += 7;
                    vi += 6;
                }
                JointKind::Hinge | JointKind::Slide => {
                    disp[j.dof] = dqpos[qi] as Real;
                    qi += 1;
                    vi += 1;
                }
            }
        }
        let _ = vi;
        mb.apply_displacements(&disp);
        if let Some((body, pose)) = root_pose {
            self.world.bodies[body].set_position(pose, false);
        }
        let mb = self.world.multibody_joints.get_multibody_mut(multibody).expect("live multibody");
        mb.forward_kinematics(&self.world.bodies, root_pose.is_some());
        mb.update_rigid_bodies(&mut self.world.bodies, true);

        let mut gv = vec![0.0 as Real; ndofs];
        let mut vi = 0;
        for j in &self.joints {
            match j.kind {
                JointKind::Free => {
                    let rot = self.world.bodies[j.body].position().rotation;
                    let ang = rot * Vector::new(qvel[vi + 3] as f32, qvel[vi + 4] as f32, qvel[vi + 5] as f32);
                    gv[j.dof..j.dof + 6].copy_from_slice(&[
                        qvel[vi] as f32,
                        qvel[vi + 1] as f32,
                        qvel[vi + 2] as f32,
                        ang.x,
                        ang.y,
                        ang.z,
                    ]);
                    vi += 6;
                }
                _ => {
                    gv[j.dof] = qvel[vi] as Real;
                    vi += 1;
                }
            }
        }
        let mb = self.world.multibody_joints.get_multibody_mut(multibody).expect("live multibody");
        mb.generalized_velocity_mut().copy_from_slice(&gv);
        self.contact_state.warm = false;
        self.refresh_collisions();
    }

    /// Re-runs collision detection without advancing time, after a state was written.
    fn refresh_collisions(&mut self) {
        let mut params = self.params;
        params.dt = 0.0;
        self.pipeline_step(&params);
    }

    fn pipeline_step(&mut self, params: &IntegrationParameters) {
        let w = &mut self.world;
        self.pipeline.step(
            self.gravity,
            params,
            &mut w.islands,
            &mut w.broad_phase,
            &mut w.narrow_phase,
            &mut w.bodies,
            &mut w.colliders,
            &mut w.impulse_joints,
            &mut w.multibody_joints,
            &mut w.soft_bodies,
            &mut w.ccd_solver,
            &(),
            &(),
        );
    }

    /// Holds `ctrl` (clamped to each actuator's range, as MuJoCo does) for one env step.
    ///
    /// Returns the `track`ed body's position as MuJoCo's `xpos` holds it after `mj_step`:
    /// computed before the last timestep's integration.
    pub fn step(&mut self, ctrl: &[f32], track: Option<RigidBodyHandle>) -> Option<[f64; 3]> {
        let lag_from = self.frame_steps - self.steps_per_timestep;
        let mut tracked = None;
        for i in 0..self.frame_steps {
            if i == lag_from {
                tracked = track.map(|b| self.xpos(b));
            }
            self.apply_joint_forces(ctrl);
            let params = self.params;
            let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.pipeline_step(&params)));
            if stepped.is_err() {
                // rapier can assert on non-finite geometry; report it as a non-finite state.
                return Some([f64::NAN; 3]);
            }
        }
        tracked
    }

    /// Makes the state non-finite, as a diverged simulation would.
    #[cfg(test)]
    pub(crate) fn poison(&mut self) {
        let mb = self.world.multibody_joints.get_multibody_mut(self.multibody).expect("live multibody");
        mb.generalized_velocity_mut().fill(f32::NAN);
    }

    /// MuJoCo's timestep.
    pub fn timestep(&self) -> f64 {
        self.timestep
    }

    /// Where the free joint's 7 entries start in `qpos`, if the model floats.
    pub fn free_joint_qpos_adr(&self) -> Option<usize> {
        let mut adr = 0;
        for j in &self.joints {
            if j.kind == JointKind::Free {
                return Some(adr);
            }
            adr += 1;
        }
        None
    }

    /// Generalized forces of the actuators (`gear · clip(ctrl)`) and of MuJoCo's soft joint
    /// limits, each applied as an equal and opposite torque pair on the joint's two bodies
    /// about its current axis: exactly a generalized force on that joint alone.
    fn apply_joint_forces(&mut self, ctrl: &[f32]) {
        self.joint_force.fill(0.0);
        for (a, &u) in self.actuators.iter().zip(ctrl) {
            let u = match a.ctrl_range {
                Some([lo, hi]) => (u as f64).clamp(lo, hi),
                None => u as f64,
            };
            self.joint_force[a.joint] += a.gear * u;
        }
        let implicit = self.implicit_limits;
        let mb = self.world.multibody_joints.get_multibody_mut(self.multibody).expect("live multibody");
        for (j, force) in self.joints.iter().zip(self.joint_force.iter_mut()) {
            let Some(limit) = &j.limit else { continue };
            let q = mb.link(j.link).expect("live link").joint().coords()[3] as f64;
            let v = mb.generalized_velocity()[j.dof] as f64;
            if !implicit {
                *force += limit.force(q, v, *force);
                continue;
            }
            // The limit's spring and damper join the joint's own, which rapier integrates
            // implicitly; only the part resisting the actuator stays explicit.
            let (k0, rest0) = j.passive_spring;
            let (mut k, mut rest, mut d) = (k0, rest0, j.passive_damping);
            if let Some(l) = limit.implicit(q, v, *force) {
                let ks = l.stiffness as f32;
                rest = (k0 * rest0 + ks * l.rest as f32) / (k0 + ks);
                k += ks;
                d += l.damping as f32;
                *force += l.explicit;
            }
            mb.damping_mut()[j.dof] = d;
            mb.link_mut(j.link).expect("live link").joint.set_spring(3, k, rest);
        }
        for (_, body) in self.world.bodies.iter_mut() {
            body.reset_forces(false);
            body.reset_torques(false);
        }
        for (j, &force) in self.joints.iter().zip(&self.joint_force) {
            let Some(h) = &j.hinge else { continue };
            if force == 0.0 {
                continue;
            }
            let axis = self.world.bodies[h.child].position().rotation * h.local_axis;
            let torque = axis * force as f32;
            self.world.bodies[h.child].add_torque(torque, false);
            self.world.bodies[h.parent].add_torque(-torque, false);
        }
        if let Some(floor) = &mut self.floor {
            let mb = self.world.multibody_joints.get_multibody(self.multibody).expect("live multibody");
            let ndofs = mb.ndofs();
            let joint_tau = &mut self.contact_state.joint_tau;
            if joint_tau.len() != ndofs {
                *joint_tau = DVector::zeros(ndofs);
                self.contact_state.contact_accel = DVector::zeros(ndofs);
                self.contact_state.a0 = DVector::zeros(ndofs);
            }
            let previous_joint_tau = joint_tau.clone();
            joint_tau.fill(0.0);
            for (j, &force) in self.joints.iter().zip(&self.joint_force) {
                if j.kind != JointKind::Free {
                    joint_tau[j.dof] = force as f32;
                }
            }
            let a0 = &mut self.contact_state.a0;
            if self.contact_state.warm && self.coriolis_a0 {
                // rapier's last free acceleration (gravity, Coriolis, springs, all applied
                // forces) without last step's contacts, updated for the joint forces' change.
                let mut delta = &*joint_tau - &previous_joint_tau;
                mb.inv_augmented_mass().solve_mut(&mut delta);
                a0.copy_from(&mb.generalized_acceleration());
                *a0 -= &self.contact_state.contact_accel;
                *a0 += delta;
            } else {
                // First step of an episode: gravity, passive and joint forces only.
                a0.copy_from(joint_tau);
                let g = self.gravity;
                for &(link, mass) in &self.link_masses {
                    let bj = mb.body_jacobian(link);
                    for d in 0..ndofs {
                        let col = bj.column(d);
                        a0[d] += mass * (col[0] * g.x + col[1] * g.y + col[2] * g.z);
                    }
                }
                let velocities = mb.generalized_velocity();
                for (d, damping) in mb.damping().iter().enumerate() {
                    a0[d] -= damping * velocities[d];
                }
                for j in self.joints.iter().filter(|j| j.kind != JointKind::Free) {
                    let joint = mb.link(j.link).expect("live link").joint();
                    let axis = if j.kind == JointKind::Hinge { 3 } else { 0 };
                    let (stiffness, rest) = joint.spring(axis);
                    a0[j.dof] -= stiffness * (joint.coords()[axis] - rest);
                }
                mb.inv_augmented_mass().solve_mut(a0);
            }
            floor.apply(mb, &mut self.world.bodies, a0, &mut self.contact_state.contact_accel);
            self.contact_state.warm = true;
        }
    }
}

/// MuJoCo contact parameters of one geom.
#[derive(Debug, Clone, Copy)]
struct GeomParams {
    margin: f64,
    solref: [f64; 2],
    solimp: [f64; 5],
    condim: u32,
}

/// Contact parameters of every named geom in the MJCF text (MuJoCo's defaults where unset).
fn geom_params(xml: &str) -> Result<std::collections::HashMap<String, GeomParams>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let numbers = |s: &str| s.split_whitespace().map(str::parse::<f64>).collect::<Result<Vec<_>, _>>();
    let mut out = std::collections::HashMap::new();
    for node in doc.descendants().filter(|n| n.has_tag_name("geom")) {
        let Some(name) = node.attribute("name") else { continue };
        let mut p = GeomParams { margin: 0.0, solref: DEFAULT_SOLREF, solimp: DEFAULT_SOLIMP, condim: 3 };
        let bad = |what: &str, e: std::num::ParseFloatError| format!("geom {name} {what}: {e}");
        if let Some(v) = node.attribute("margin") {
            p.margin = v.trim().parse().map_err(|e| bad("margin", e))?;
        }
        if let Some(v) = node.attribute("solref") {
            let v = numbers(v).map_err(|e| bad("solref", e))?;
            p.solref[..v.len().min(2)].copy_from_slice(&v[..v.len().min(2)]);
        }
        if let Some(v) = node.attribute("solimp") {
            let v = numbers(v).map_err(|e| bad("solimp", e))?;
            p.solimp[..v.len().min(5)].copy_from_slice(&v[..v.len().min(5)]);
        }
        if let Some(v) = node.attribute("condim") {
            p.condim = v.trim().parse().map_err(|e: std::num::ParseIntError| format!("geom {name} condim: {e}"))?;
        }
        out.insert(name.to_string(), p);
    }
    Ok(out)
}

/// Replaces rapier's contacts with a floor plane by MuJoCo's soft contacts, when every geom
/// that can touch the floor is a sphere or capsule. Returns None (rapier keeps the floor)
/// otherwise.
fn take_floor(
    w: &mut World,
    collider_names: &std::collections::HashMap<ColliderHandle, String>,
    params: &std::collections::HashMap<String, GeomParams>,
) -> Option<FloorContacts> {
    let default = GeomParams { margin: 0.0, solref: DEFAULT_SOLREF, solimp: DEFAULT_SOLIMP, condim: 3 };
    let param = |h: ColliderHandle| collider_names.get(&h).and_then(|n| params.get(n)).copied().unwrap_or(default);
    let floors: Vec<ColliderHandle> =
        w.colliders.iter().filter(|(_, c)| c.shape().as_halfspace().is_some()).map(|(h, _)| h).collect();
    let [floor_handle] = floors[..] else { return None }; // one floor only
    let floor = &w.colliders[floor_handle];
    if floor.shape().as_halfspace()?.normal.z < 0.999 || floor.position().rotation.w.abs() < 0.9999 {
        return None; // a horizontal one
    }
    let floor_groups = floor.collision_groups();
    let floor_z = floor.position().translation.z;
    let floor_friction = floor.friction();
    let fp = param(floor_handle);
    let mut geoms = Vec::new();
    for (h, c) in w.colliders.iter() {
        if h == floor_handle {
            continue;
        }
        let g = c.collision_groups();
        let touches = (g.memberships & floor_groups.filter).bits() != 0 || (floor_groups.memberships & g.filter).bits() != 0;
        if !touches {
            continue;
        }
        let body = c.parent()?;
        let link = w.multibody_joints.rigid_body_link(body)?.id;
        let local = *c.position_wrt_parent()?;
        let (a, b, radius) = if let Some(ball) = c.shape().as_ball() {
            (local.translation, local.translation, ball.radius)
        } else if let Some(cap) = c.shape().as_capsule() {
            (local * cap.segment.a, local * cap.segment.b, cap.radius)
        } else {
            return None;
        };
        let gp = param(h);
        let avg = |x: f64, y: f64| 0.5 * (x + y);
        geoms.push(FloorGeom {
            body,
            link,
            a,
            b,
            radius,
            friction: if gp.condim.max(fp.condim) > 1 { c.friction().max(floor_friction) } else { 0.0 },
            margin: gp.margin.max(fp.margin) as f32,
            solref: [avg(gp.solref[0], fp.solref[0]), avg(gp.solref[1], fp.solref[1])],
            solimp: std::array::from_fn(|i| avg(gp.solimp[i], fp.solimp[i])),
            diag_approx: 0.0,
        });
    }
    w.colliders.remove(floor_handle, &mut w.islands, &mut w.bodies, &mut w.soft_bodies, false);
    Some(FloorContacts::new(floor_z, geoms))
}

/// `solreflimit`/`solimplimit` of every named joint that sets them in the MJCF text.
fn limit_solver_params(xml: &str) -> Result<std::collections::HashMap<String, ([f64; 2], [f64; 5])>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let numbers = |s: &str| s.split_whitespace().map(str::parse::<f64>).collect::<Result<Vec<_>, _>>();
    let mut out = std::collections::HashMap::new();
    for node in doc.descendants().filter(|n| n.has_tag_name("joint")) {
        let Some(name) = node.attribute("name") else { continue };
        let mut solref = DEFAULT_SOLREF;
        let mut solimp = DEFAULT_SOLIMP;
        if let Some(v) = node.attribute("solreflimit") {
            let v = numbers(v).map_err(|e| format!("joint {name} solreflimit: {e}"))?;
            solref[..v.len().min(2)].copy_from_slice(&v[..v.len().min(2)]);
        }
        if let Some(v) = node.attribute("solimplimit") {
            let v = numbers(v).map_err(|e| format!("joint {name} solimplimit: {e}"))?;
            solimp[..v.len().min(5)].copy_from_slice(&v[..v.len().min(5)]);
        }
        out.insert(name.to_string(), (solref, solimp));
    }
    Ok(out)
}
