//! An MJCF model simulated with MuJoCo's formulation, read and written in MuJoCo's terms:
//! `qpos`, `qvel`, `ctrl`.
//!
//! rapier3d-mjcf parses the file and rapier builds the multibody: masses, inertias, joint
//! frames, armature, damping, springs and collision shapes come from there, with the
//! loader defaults that are not MuJoCo's overridden (floor planes kept, contact filtering by
//! contype/conaffinity either way, friction combined by maximum). The dynamics then run on
//! that tree in [`super::articulated`]: MuJoCo's integrator (Euler with implicit damping, or
//! RK4), actuators as generalized forces `gear · clip(ctrl)`, and MuJoCo's soft limits and
//! contacts ([`super::constraints`]).

#![allow(clippy::needless_range_loop)] // index-parallel numeric loops read better with indices

use std::collections::HashMap;
use std::path::Path;

use rapier3d::na::{Isometry3, Matrix3, Quaternion, Translation3, UnitQuaternion, Vector3};
use rapier3d::prelude::*;
use rapier3d_mjcf::{ContactFilterMode, MjcfDofKind, MjcfLoaderOptions, MjcfMultibodyOptions, MjcfRobot};

use super::articulated::{Kinematics, Link, LinkJoint, Tree};
use super::constraints::{ContactPair, Geom, JointLimit, SoftConstraints};
use super::mjcf_extras::{GeomParams, Integrator, MjcfExtras};
use crate::EnvError;

/// Solver settings of the port.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhysicsTuning {
    /// Projected Gauss–Seidel sweeps for the soft constraints.
    pub constraint_iterations: usize,
}

impl Default for PhysicsTuning {
    fn default() -> Self {
        Self { constraint_iterations: 50 }
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

/// A body of the model (its index in the tree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyId(usize);

/// A MuJoCo joint: where its `qpos`/`qvel` live in the tree's state.
#[derive(Debug, Clone)]
struct JointDof {
    name: String,
    kind: JointKind,
    qadr: usize,
    dof: usize,
    /// MuJoCo `qpos0` (the joint's `ref`): the tree coordinate is zero there.
    qpos0: f64,
    range: Option<[f64; 2]>,
}

#[derive(Debug, Clone)]
struct Actuator {
    dof: usize,
    joint: String,
    gear: f64,
    ctrl_range: Option<[f64; 2]>,
}

/// Scratch vectors of one derivative evaluation.
#[derive(Debug, Clone)]
struct Scratch {
    tau: Vec<f64>,
    a0: Vec<f64>,
    tau_c: Vec<f64>,
    acc_c: Vec<f64>,
    qacc: Vec<f64>,
}

impl Scratch {
    fn new(nv: usize) -> Self {
        Self { tau: vec![0.0; nv], a0: vec![0.0; nv], tau_c: vec![0.0; nv], acc_c: vec![0.0; nv], qacc: vec![0.0; nv] }
    }
}

/// An MJCF model, addressed like MuJoCo's `mjData`.
#[derive(Clone)]
pub struct MjcfPhysics {
    tree: Tree,
    kin: Kinematics,
    constraints: SoftConstraints,
    integrator: Integrator,
    timestep: f64,
    frame_skip: usize,
    joints: Vec<JointDof>,
    actuators: Vec<Actuator>,
    link_names: Vec<Option<String>>,
    geom_frictions: Vec<(String, f64)>,
    q0: Vec<f64>,
    q: Vec<f64>,
    v: Vec<f64>,
    /// Generalized actuator force held for the current env step.
    actuator_tau: Vec<f64>,
    /// Link positions as MuJoCo's `xpos` holds them after `mj_step`: the kinematics of the
    /// last state it evaluated (Euler: the start of the last timestep; RK4: its fourth
    /// stage), or of the reset state.
    xpos: Vec<[f64; 3]>,
    scratch: Scratch,
    stages: Stages,
    /// `h·D`, MuJoCo's implicit damping in the Euler integrator.
    implicit_damping: Vec<f64>,
    nq: usize,
    nv: usize,
}

fn iso(p: &Pose) -> Isometry3<f64> {
    let t = p.translation;
    let r = p.rotation;
    Isometry3::from_parts(
        Translation3::new(t.x as f64, t.y as f64, t.z as f64),
        UnitQuaternion::from_quaternion(Quaternion::new(r.w as f64, r.x as f64, r.y as f64, r.z as f64)),
    )
}

fn vec3(v: Vector) -> Vector3<f64> {
    Vector3::new(v.x as f64, v.y as f64, v.z as f64)
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
    pub fn from_xml(xml: &str, base_dir: &Path, origin: &str, frame_skip: usize, tuning: PhysicsTuning) -> Result<Self, EnvError> {
        let model_err = |reason: String| EnvError::Model { path: origin.to_string(), reason };
        if frame_skip == 0 || tuning.constraint_iterations == 0 {
            return Err(model_err("frame_skip and constraint_iterations must be ≥ 1".into()));
        }
        let extras = MjcfExtras::parse(xml).map_err(|e| model_err(format!("bad XML: {e}")))?;
        let options = MjcfLoaderOptions {
            skip_plane_geoms: false,
            contact_filter_mode: ContactFilterMode::Asymmetric,
            ..MjcfLoaderOptions::default()
        };
        let (robot, model) = MjcfRobot::from_str(xml, options, base_dir).map_err(|e| model_err(format!("{e:#}")))?;
        let timestep = model.option.timestep;
        if !(timestep > 0.0 && timestep.is_finite()) {
            return Err(model_err(format!("timestep {timestep} must be positive")));
        }
        let gravity = Vector3::from(model.option.gravity);
        let body_name_to_idx = robot.body_name_to_idx.clone();
        let geom_names = robot.geom_name_to_collider.clone();
        let joint_names: Vec<Option<String>> = robot.joints.iter().map(|j| j.name.clone()).collect();
        let joint_damping: Vec<f64> = robot.joints.iter().map(|j| j.damping_per_dof as f64).collect();
        let joint_limits: Vec<Option<[f64; 2]>> = robot
            .joints
            .iter()
            .map(|j| {
                let axis = if j.joint.locked_axes.contains(JointAxesMask::LIN_X) { JointAxis::AngX } else { JointAxis::LinX };
                j.joint.limit_axes.contains(axis.into()).then(|| j.joint.limits(axis)).flatten().map(|l| [l.min as f64, l.max as f64])
            })
            .collect();
        let actuator_specs: Vec<_> = robot.actuators.iter().map(|a| (a.actuator.clone(), a.joint_index)).collect();
        let qpos_dofs = robot.qpos_dofs.clone();

        let mut bodies = RigidBodySet::new();
        let mut colliders = ColliderSet::new();
        let mut multibodies = MultibodyJointSet::new();
        let mut impulse_joints = ImpulseJointSet::new();
        let handles = robot.insert_using_multibody_joints(
            &mut bodies,
            &mut colliders,
            &mut multibodies,
            &mut impulse_joints,
            MjcfMultibodyOptions::SKIP_JOINT_MOTORS | MjcfMultibodyOptions::SKIP_JOINT_LIMITS,
        );
        if !impulse_joints.is_empty() {
            return Err(model_err("loop closures (equality constraints) are not supported".into()));
        }
        let body_of = |idx: usize| handles.bodies.get(idx).and_then(|b| b.as_ref()).map(|b| b.body);
        // rapier folds the loader's inertials into the bodies lazily; do it now.
        for (_, rb) in bodies.iter_mut() {
            rb.recompute_mass_properties_from_colliders(&colliders);
        }

        // The articulation: the multibody that carries the first joint.
        let first = qpos_dofs.first().ok_or_else(|| model_err("the model has no joints".into()))?;
        let first_body = match first.joint {
            Some(ji) => handles.joints[ji].link2,
            None => body_of(first.body).ok_or_else(|| model_err("free joint on a missing body".into()))?,
        };
        let mb_index = multibodies.rigid_body_link(first_body).map(|l| l.multibody).ok_or_else(|| model_err("no articulation".into()))?;
        let mb = multibodies.get_multibody_mut(mb_index).expect("live multibody");
        // rapier settles the root (fixed or free) lazily; settle it so the layout is final.
        mb.forward_kinematics(&bodies, true);
        let mb = multibodies.get_multibody(mb_index).expect("live multibody");

        let TreeBuild { mut tree, q0, link_of_body } = tree_from_multibody(mb, &bodies, gravity).map_err(model_err)?;
        let mut link_names = vec![None; tree.links.len()];
        for (name, &idx) in &body_name_to_idx {
            if let Some(&l) = body_of(idx).and_then(|h| link_of_body.get(&h)) {
                link_names[l] = Some(name.clone());
            }
        }

        // MuJoCo's joints in qpos order.
        let mut joints = Vec::new();
        let mut limits = Vec::new();
        for dof in &qpos_dofs {
            let body = match (dof.kind, dof.joint) {
                (MjcfDofKind::Free, _) => body_of(dof.body),
                (MjcfDofKind::Hinge | MjcfDofKind::Slide, Some(ji)) => Some(handles.joints[ji].link2),
                (kind, _) => return Err(model_err(format!("{kind:?} joints are not supported"))),
            };
            let link = body
                .and_then(|b| link_of_body.get(&b).copied())
                .ok_or_else(|| model_err("a joint is not part of the articulation".into()))?;
            let l = &tree.links[link];
            let kind = match l.joint {
                LinkJoint::Free => JointKind::Free,
                LinkJoint::Hinge => JointKind::Hinge,
                LinkJoint::Slide => JointKind::Slide,
                LinkJoint::Fixed => return Err(model_err("a joint became rigid in the articulation".into())),
            };
            let name = dof.joint.and_then(|ji| joint_names[ji].clone()).unwrap_or_else(|| "root".into());
            let qpos0 = dof.reference as f64;
            let mut range = None;
            if let Some(ji) = dof.joint {
                tree.damping[l.dof] = joint_damping[ji];
                let link_ref = mb.link(link).expect("live link");
                let (stiffness, rest) = link_ref.joint().spring(if kind == JointKind::Hinge { 3 } else { 0 });
                tree.stiffness[l.dof] = stiffness as f64;
                tree.spring_ref[l.dof] = rest as f64;
                if let Some([lo, hi]) = joint_limits[ji] {
                    let p = extras.joints.get(&name).copied().unwrap_or_default();
                    limits.push(JointLimit { dof: l.dof, qadr: l.qadr, lo, hi, solref: p.solref, solimp: p.solimp, invweight: 0.0 });
                    range = Some([qpos0 + lo, qpos0 + hi]);
                }
            }
            joints.push(JointDof { name, kind, qadr: l.qadr, dof: l.dof, qpos0, range });
        }

        let mut actuators = Vec::new();
        for (spec, joint_index) in actuator_specs {
            let ji = joint_index.ok_or_else(|| model_err(format!("actuator {:?}: only joint actuators are supported", spec.name)))?;
            if !matches!(spec.kind, rapier3d_mjcf::mjcf_rs::extras::ActuatorKind::Motor) {
                return Err(model_err(format!("actuator {:?}: only <motor> is supported", spec.name)));
            }
            let name = joint_names[ji].clone().unwrap_or_default();
            let joint = joints.iter().find(|j| j.name == name && j.kind != JointKind::Free);
            let dof = joint.map(|j| j.dof).ok_or_else(|| model_err(format!("actuator on {name}: not a hinge or slide joint")))?;
            let ctrl_range = match spec.ctrl_limited {
                rapier3d_mjcf::mjcf_rs::types::Tristate::False => None,
                _ => spec.ctrl_range,
            };
            actuators.push(Actuator { dof, joint: name, gear: spec.gear[0], ctrl_range });
        }

        // Inverse inertias at the initial pose size MuJoCo's regularisers.
        let mut kin = Kinematics::new(&tree);
        let v0 = vec![0.0; tree.nv];
        kin.update(&tree, &q0, &v0);
        let (dof_invweight, body_invweight) = inverse_weights(&tree, &kin);
        for l in &mut limits {
            l.invweight = dof_invweight[l.dof];
        }

        // Geoms, the floor, and the pairs MuJoCo would collide.
        let collider_names: HashMap<ColliderHandle, String> = geom_names
            .iter()
            .filter_map(|(name, &(b, c))| {
                let h = handles.bodies.get(b)?.as_ref()?.colliders.get(c)?.handle;
                Some((h, name.clone()))
            })
            .collect();
        let ContactModel { floor_z, geoms, pairs, geom_frictions } =
            contact_model(&colliders, &collider_names, &extras, &link_of_body, &tree, &body_invweight).map_err(model_err)?;
        let constraints = SoftConstraints::new(floor_z, geoms, pairs, limits, tuning.constraint_iterations, timestep);

        let nq = joints.iter().map(|j| if j.kind == JointKind::Free { 7 } else { 1 }).sum();
        let nv = joints.iter().map(|j| if j.kind == JointKind::Free { 6 } else { 1 }).sum();
        let nv_tree = tree.nv;
        let implicit_damping = tree.damping.iter().map(|d| d * timestep).collect();
        let mut physics = Self {
            scratch: Scratch::new(nv_tree),
            stages: Stages::new(q0.len(), nv_tree),
            implicit_damping,
            kin,
            constraints,
            integrator: extras.integrator,
            timestep,
            frame_skip,
            joints,
            actuators,
            link_names,
            geom_frictions,
            q: q0.clone(),
            v: v0,
            q0,
            actuator_tau: vec![0.0; nv_tree],
            xpos: Vec::new(),
            tree,
            nq,
            nv,
        };
        physics.reset_to_initial();
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

    /// MuJoCo's timestep.
    pub fn timestep(&self) -> f64 {
        self.timestep
    }

    /// Actuator control ranges (None: unlimited).
    pub fn ctrl_ranges(&self) -> Vec<Option<[f64; 2]>> {
        self.actuators.iter().map(|a| a.ctrl_range).collect()
    }

    pub fn body(&self, name: &str) -> Option<BodyId> {
        self.link_names.iter().position(|n| n.as_deref() == Some(name)).map(BodyId)
    }

    /// Per-body masses, by MJCF body name.
    pub fn body_masses(&self) -> Vec<(String, f64)> {
        self.link_names
            .iter()
            .zip(&self.tree.links)
            .filter_map(|(n, l)| n.as_ref().map(|n| (n.clone(), l.mass)))
            .collect()
    }

    /// Sliding friction per named geom.
    pub fn geom_frictions(&self) -> &[(String, f64)] {
        &self.geom_frictions
    }

    /// The joints as built: range in MuJoCo's coordinates, armature, damping, stiffness.
    pub fn joint_facts(&self) -> Vec<JointFacts> {
        self.joints
            .iter()
            .filter(|j| j.kind != JointKind::Free)
            .map(|j| JointFacts {
                name: j.name.clone(),
                kind: j.kind,
                range: j.range,
                armature: self.tree.armature[j.dof],
                damping: self.tree.damping[j.dof],
                stiffness: self.tree.stiffness[j.dof],
            })
            .collect()
    }

    /// The actuators as built, in `ctrl` order.
    pub fn actuator_facts(&self) -> Vec<ActuatorFacts> {
        self.actuators
            .iter()
            .map(|a| ActuatorFacts { joint: a.joint.clone(), gear: a.gear, ctrl_range: a.ctrl_range })
            .collect()
    }

    /// A body's frame origin as MuJoCo's `xpos` holds it after `mj_step` (see the field).
    pub fn xpos(&self, body: BodyId) -> [f64; 3] {
        self.xpos[body.0]
    }

    /// Where the free joint's 7 entries start in `qpos`, if the model floats.
    pub fn free_joint_qpos_adr(&self) -> Option<usize> {
        // Every joint before the free one is a hinge or slide (one qpos each).
        self.joints.iter().position(|j| j.kind == JointKind::Free)
    }

    /// Restores the initial state (MuJoCo's `qpos0`, zero velocity).
    pub fn reset_to_initial(&mut self) {
        self.q.copy_from_slice(&self.q0);
        self.v.fill(0.0);
        self.refresh_xpos();
    }

    fn refresh_xpos(&mut self) {
        self.kin.update(&self.tree, &self.q, &self.v);
        self.xpos = self.kin.pose.iter().map(|p| [p.translation.x, p.translation.y, p.translation.z]).collect();
    }

    /// Writes MuJoCo's `qpos` (length nq) and `qvel` (length nv).
    pub fn read_state(&self, qpos: &mut [f64], qvel: &mut [f64]) {
        let (mut qi, mut vi) = (0, 0);
        for j in &self.joints {
            if j.kind == JointKind::Free {
                qpos[qi..qi + 7].copy_from_slice(&self.q[j.qadr..j.qadr + 7]);
                let rot = UnitQuaternion::from_quaternion(Quaternion::new(self.q[j.qadr + 3], self.q[j.qadr + 4], self.q[j.qadr + 5], self.q[j.qadr + 6]));
                // MuJoCo: linear velocity of the body origin in the world frame, angular in the body frame.
                let w = Vector3::new(self.v[j.dof + 3], self.v[j.dof + 4], self.v[j.dof + 5]);
                let w_local = rot.inverse() * w;
                qvel[vi..vi + 3].copy_from_slice(&self.v[j.dof..j.dof + 3]);
                qvel[vi + 3..vi + 6].copy_from_slice(w_local.as_slice());
                qi += 7;
                vi += 6;
            } else {
                qpos[qi] = j.qpos0 + self.q[j.qadr];
                qvel[vi] = self.v[j.dof];
                qi += 1;
                vi += 1;
            }
        }
    }

    /// Sets MuJoCo's `qpos` and `qvel` (a free joint's quaternion is normalised, as MuJoCo's
    /// kinematics normalise it).
    pub fn set_state(&mut self, qpos: &[f64], qvel: &[f64]) {
        let (mut qi, mut vi) = (0, 0);
        for j in &self.joints {
            if j.kind == JointKind::Free {
                let raw = Quaternion::new(qpos[qi + 3], qpos[qi + 4], qpos[qi + 5], qpos[qi + 6]);
                let rot = UnitQuaternion::from_quaternion(raw);
                let r = rot.quaternion();
                self.q[j.qadr..j.qadr + 3].copy_from_slice(&qpos[qi..qi + 3]);
                self.q[j.qadr + 3..j.qadr + 7].copy_from_slice(&[r.w, r.i, r.j, r.k]);
                let w = rot * Vector3::new(qvel[vi + 3], qvel[vi + 4], qvel[vi + 5]);
                self.v[j.dof..j.dof + 3].copy_from_slice(&qvel[vi..vi + 3]);
                self.v[j.dof + 3..j.dof + 6].copy_from_slice(w.as_slice());
                qi += 7;
                vi += 6;
            } else {
                self.q[j.qadr] = qpos[qi] - j.qpos0;
                self.v[j.dof] = qvel[vi];
                qi += 1;
                vi += 1;
            }
        }
        self.refresh_xpos();
    }

    /// The simulator's own coordinates (exact, unlike a round trip through `qpos`).
    pub fn internal_state(&self) -> (&[f64], &[f64]) {
        (&self.q, &self.v)
    }

    /// Restores [`MjcfPhysics::internal_state`]; false (and nothing changed) if the lengths
    /// do not fit.
    pub fn set_internal_state(&mut self, q: &[f64], v: &[f64]) -> bool {
        if q.len() != self.q.len() || v.len() != self.v.len() {
            return false;
        }
        self.q.copy_from_slice(q);
        self.v.copy_from_slice(v);
        self.refresh_xpos();
        true
    }

    #[cfg(test)]
    fn clone_for_test(&self) -> Self {
        self.clone()
    }

    /// Makes the state non-finite, as a diverged simulation would.
    #[cfg(test)]
    pub(crate) fn poison(&mut self) {
        self.v.fill(f64::NAN);
    }

    /// Holds `ctrl` (clamped to each actuator's range, as MuJoCo does) for `frame_skip`
    /// timesteps.
    pub fn step(&mut self, ctrl: &[f32]) {
        self.actuator_tau.fill(0.0);
        for (a, &u) in self.actuators.iter().zip(ctrl) {
            let u = match a.ctrl_range {
                Some([lo, hi]) => (u as f64).clamp(lo, hi),
                None => u as f64,
            };
            self.actuator_tau[a.dof] += a.gear * u;
        }
        for _ in 0..self.frame_skip {
            match self.integrator {
                Integrator::Euler => self.euler(),
                Integrator::Rk4 => self.rk4(),
            }
        }
    }

    /// `q̈` at `(q, v)` into `scratch.qacc`, constraints included; `implicit_damping` makes
    /// the final solve use `M + h·D` (MuJoCo's Euler).
    fn acceleration(&mut self, q: &[f64], v: &[f64], record_xpos: bool, implicit_damping: bool) {
        let (tree, kin, s) = (&self.tree, &mut self.kin, &mut self.scratch);
        kin.update(tree, q, v);
        if record_xpos {
            for (x, p) in self.xpos.iter_mut().zip(&kin.pose) {
                *x = [p.translation.x, p.translation.y, p.translation.z];
            }
        }
        for d in 0..tree.nv {
            let spring = tree.dof_coord[d].map_or(0.0, |c| tree.stiffness[d] * (q[c] - tree.spring_ref[d]));
            s.tau[d] = self.actuator_tau[d] - tree.damping[d] * v[d] - spring - kin.bias[d];
        }
        s.a0.copy_from_slice(&s.tau);
        kin.solve(&mut s.a0);
        self.constraints.solve(tree, kin, q, v, &s.a0, &mut s.tau_c, &mut s.acc_c);
        match implicit_damping {
            true if self.implicit_damping.iter().any(|&d| d != 0.0) => {
                kin.refactor_with_diagonal(&self.implicit_damping);
                for d in 0..tree.nv {
                    s.qacc[d] = s.tau[d] + s.tau_c[d];
                }
                kin.solve(&mut s.qacc);
            }
            _ => {
                for d in 0..tree.nv {
                    s.qacc[d] = s.a0[d] + s.acc_c[d];
                }
            }
        }
    }

    fn euler(&mut self) {
        let h = self.timestep;
        let mut st = std::mem::take(&mut self.stages);
        st.q0.clone_from(&self.q);
        st.v0.clone_from(&self.v);
        self.acceleration(&st.q0, &st.v0, true, true);
        for (v, a) in self.v.iter_mut().zip(&self.scratch.qacc) {
            *v += h * a;
        }
        integrate_positions(&self.tree, &mut self.q, &self.v, h);
        self.stages = st;
    }

    /// MuJoCo's `mj_RungeKutta(m, d, 4)`.
    fn rk4(&mut self) {
        const C: [f64; 4] = [0.0, 0.5, 0.5, 1.0];
        const W: [f64; 4] = [1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0];
        let h = self.timestep;
        let mut st = std::mem::take(&mut self.stages);
        st.q0.clone_from(&self.q);
        st.v0.clone_from(&self.v);
        for stage in 0..4 {
            st.q.clone_from(&st.q0);
            if stage == 0 {
                st.v[0].clone_from(&st.v0);
            } else {
                // Stage i: X₀ + c_i·h·F(stage i−1), F = (q̇, q̈).
                integrate_positions(&self.tree, &mut st.q, &st.v[stage - 1], C[stage] * h);
                let (v0, acc) = (&st.v0, &st.acc[stage - 1]);
                for ((v, v0), a) in st.v[stage].iter_mut().zip(v0).zip(acc) {
                    *v = v0 + C[stage] * h * a;
                }
            }
            // MuJoCo leaves `xpos` at the kinematics of the last stage it evaluated.
            self.acceleration(&st.q, &st.v[stage], stage == 3, false);
            st.acc[stage].copy_from_slice(&self.scratch.qacc);
        }
        for d in 0..st.v0.len() {
            st.vmean[d] = (0..4).map(|k| W[k] * st.v[k][d]).sum();
            self.v[d] = st.v0[d] + h * (0..4).map(|k| W[k] * st.acc[k][d]).sum::<f64>();
        }
        self.q.clone_from(&st.q0);
        integrate_positions(&self.tree, &mut self.q, &st.vmean, h);
        self.stages = st;
    }
}

/// The integrators' working state, kept between steps so stepping does not allocate.
#[derive(Debug, Clone, Default)]
struct Stages {
    q0: Vec<f64>,
    v0: Vec<f64>,
    q: Vec<f64>,
    v: [Vec<f64>; 4],
    acc: [Vec<f64>; 4],
    vmean: Vec<f64>,
}

impl Stages {
    fn new(nq: usize, nv: usize) -> Self {
        let z = || vec![0.0; nv];
        Self { q0: vec![0.0; nq], v0: z(), q: vec![0.0; nq], v: [z(), z(), z(), z()], acc: [z(), z(), z(), z()], vmean: z() }
    }
}

/// The tree as rapier built it, with its initial coordinates.
struct TreeBuild {
    tree: Tree,
    q0: Vec<f64>,
    link_of_body: HashMap<RigidBodyHandle, usize>,
}

/// Links of rapier's multibody, in its topological order, with mass properties and armature.
fn tree_from_multibody(mb: &Multibody, bodies: &RigidBodySet, gravity: Vector3<f64>) -> Result<TreeBuild, String> {
    let mut links = Vec::new();
    let mut link_of_body: HashMap<RigidBodyHandle, usize> = HashMap::new();
    let mut rapier_dof = Vec::new(); // (our first dof, rapier's first dof, count)
    let (mut nq_tree, mut nv_tree) = (0, 0);
    let mut q0 = Vec::new();
    for (i, link) in mb.links().enumerate() {
        let rb = &bodies[link.rigid_body_handle()];
        let data = &link.joint().data;
        let joint = if i == 0 {
            if rb.is_dynamic() { LinkJoint::Free } else { LinkJoint::Fixed }
        } else {
            match link.joint().ndofs() {
                0 => LinkJoint::Fixed,
                1 if !data.locked_axes.contains(JointAxesMask::LIN_X) => LinkJoint::Slide,
                1 if !data.locked_axes.contains(JointAxesMask::ANG_X) => LinkJoint::Hinge,
                n => return Err(format!("joints with {n} degrees of freedom are not supported (hinge, slide, free only)")),
            }
        };
        let mprops = &rb.mass_properties().local_mprops;
        let principal = vec3(mprops.principal_inertia());
        let frame = iso(&Pose::from_parts(Vector::ZERO, mprops.principal_inertia_local_frame)).rotation.to_rotation_matrix();
        let inertia = frame.matrix() * Matrix3::from_diagonal(&principal) * frame.matrix().transpose();
        match joint {
            LinkJoint::Free => {
                let p = iso(rb.position());
                let r = p.rotation.quaternion();
                q0.extend([p.translation.x, p.translation.y, p.translation.z, r.w, r.i, r.j, r.k]);
            }
            LinkJoint::Hinge => q0.push(link.joint().coords()[3] as f64),
            LinkJoint::Slide => q0.push(link.joint().coords()[0] as f64),
            LinkJoint::Fixed => {}
        }
        if joint.nv() > 0 {
            rapier_dof.push((nv_tree, link.assembly_id(), joint.nv()));
        }
        links.push(Link {
            parent: link.parent_id(),
            joint,
            frame1: iso(&data.local_frame1),
            frame2_inv: iso(&data.local_frame2).inverse(),
            mass: rb.mass() as f64,
            com: vec3(mprops.local_com),
            inertia,
            dof: nv_tree,
            qadr: nq_tree,
        });
        link_of_body.insert(link.rigid_body_handle(), i);
        nq_tree += joint.nq();
        nv_tree += joint.nv();
    }
    let mut tree = Tree::new(links, gravity);
    for &(ours, theirs, n) in &rapier_dof {
        for k in 0..n {
            tree.armature[ours + k] = mb.armature()[theirs + k] as f64;
        }
    }
    Ok(TreeBuild { tree, q0, link_of_body })
}

/// MuJoCo's `dof_invweight0` (diagonal of `M⁻¹`) and translational `body_invweight0` (mean
/// of `J·M⁻¹·Jᵀ` over the three directions of each body's centre of mass) at `kin`'s pose.
fn inverse_weights(tree: &Tree, kin: &Kinematics) -> (Vec<f64>, Vec<f64>) {
    let dof = (0..tree.nv)
        .map(|d| {
            let mut e = vec![0.0; tree.nv];
            e[d] = 1.0;
            kin.solve(&mut e);
            e[d]
        })
        .collect();
    let body = (0..tree.links.len())
        .map(|link| {
            let com = kin.com[link];
            (0..3)
                .map(|axis| {
                    let mut j = vec![0.0; tree.nv];
                    kin.point_jacobian(tree, link, &com, &Vector3::ith(axis, 1.0), 1.0, &mut j);
                    let mut x = j.clone();
                    kin.solve(&mut x);
                    j.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>()
                })
                .sum::<f64>()
                / 3.0
        })
        .collect();
    (dof, body)
}

/// What collides: the floor plane, the geoms, and the pairs MuJoCo would test.
struct ContactModel {
    floor_z: f64,
    geoms: Vec<Geom>,
    pairs: Vec<ContactPair>,
    geom_frictions: Vec<(String, f64)>,
}

/// A geom's collision bits (contype, conaffinity), sliding friction and contact parameters.
type GeomMeta = (u32, u32, f64, GeomParams);

fn contact_model(
    colliders: &ColliderSet,
    collider_names: &HashMap<ColliderHandle, String>,
    extras: &MjcfExtras,
    link_of_body: &HashMap<RigidBodyHandle, usize>,
    tree: &Tree,
    body_invweight: &[f64],
) -> Result<ContactModel, String> {
    let mut geoms = Vec::new();
    let mut geom_meta: Vec<GeomMeta> = Vec::new();
    let mut floor: Option<(f64, GeomMeta)> = None;
    let mut geom_frictions = Vec::new();
    for (h, c) in colliders.iter() {
        let name = collider_names.get(&h).cloned();
        let params = name.as_ref().and_then(|n| extras.geoms.get(n)).copied().unwrap_or_default();
        let groups = c.collision_groups();
        let meta = (groups.memberships.bits(), groups.filter.bits(), c.friction() as f64, params);
        if let Some(n) = &name {
            geom_frictions.push((n.clone(), c.friction() as f64));
        }
        let parent = c.parent().ok_or("a geom without a body")?;
        let link = link_of_body.get(&parent).copied();
        let world_pose = iso(c.position());
        if let Some(plane) = c.shape().as_halfspace() {
            let normal = world_pose.rotation * vec3(plane.normal);
            let fixed = link.is_none_or(|l| tree.link_dofs[l].is_empty());
            if !fixed || normal.z < 0.999 || floor.is_some() {
                return Err("only one horizontal floor plane fixed to the world is supported".into());
            }
            floor = Some((world_pose.translation.z, meta));
            continue;
        }
        let Some(link) = link else {
            return Err(format!("geom {name:?} is fixed to the world; only the floor may be"));
        };
        let local = iso(c.position_wrt_parent().ok_or("a geom without a body")?);
        let (a, b, radius) = if let Some(ball) = c.shape().as_ball() {
            let p = local.translation.vector;
            (p, p, ball.radius as f64)
        } else if let Some(cap) = c.shape().as_capsule() {
            let a = local.transform_point(&vec3(cap.segment.a).into()).coords;
            let b = local.transform_point(&vec3(cap.segment.b).into()).coords;
            (a, b, cap.radius as f64)
        } else {
            return Err(format!("geom {name:?}: only spheres, capsules and a floor plane are supported"));
        };
        geoms.push(Geom { link, a, b, radius });
        geom_meta.push(meta);
    }
    geom_frictions.sort_by(|a, b| a.0.cmp(&b.0));
    // MuJoCo's rules: collide when either contype meets the other's conaffinity; friction by
    // maximum; solref/solimp averaged (equal solmix); margins added (MuJoCo 4).
    let collides = |m1: &GeomMeta, m2: &GeomMeta| (m1.0 & m2.1) != 0 || (m2.0 & m1.1) != 0;
    let mix = |m1: &GeomMeta, m2: &GeomMeta, invweight: f64, geom: usize, other: Option<usize>| {
        let (p1, p2) = (m1.3, m2.3);
        ContactPair {
            geom,
            other,
            friction: if p1.condim.max(p2.condim) > 1 { m1.2.max(m2.2) } else { 0.0 },
            margin: p1.margin + p2.margin,
            solref: std::array::from_fn(|i| 0.5 * (p1.solref[i] + p2.solref[i])),
            solimp: std::array::from_fn(|i| 0.5 * (p1.solimp[i] + p2.solimp[i])),
            invweight,
        }
    };
    let mut pairs = Vec::new();
    let floor_z = floor.as_ref().map_or(f64::NEG_INFINITY, |f| f.0);
    if let Some((_, fm)) = &floor {
        for (gi, (g, gm)) in geoms.iter().zip(&geom_meta).enumerate() {
            if collides(gm, fm) {
                pairs.push(mix(fm, gm, body_invweight[g.link], gi, None));
            }
        }
    }
    // Body–body pairs, except a body with itself or its parent (MuJoCo's filterparent).
    for i in 0..geoms.len() {
        for j in i + 1..geoms.len() {
            let (li, lj) = (geoms[i].link, geoms[j].link);
            let related = li == lj || tree.links[li].parent == Some(lj) || tree.links[lj].parent == Some(li);
            if !related && collides(&geom_meta[i], &geom_meta[j]) {
                pairs.push(mix(&geom_meta[i], &geom_meta[j], body_invweight[li] + body_invweight[lj], i, Some(j)));
            }
        }
    }
    Ok(ContactModel { floor_z, geoms, pairs, geom_frictions })
}

/// `q ← q ⊕ h·v`: joint coordinates add; the free root's orientation turns by `h·ω` (world).
fn integrate_positions(tree: &Tree, q: &mut [f64], v: &[f64], h: f64) {
    for l in &tree.links {
        match l.joint {
            LinkJoint::Fixed => {}
            LinkJoint::Hinge | LinkJoint::Slide => q[l.qadr] += h * v[l.dof],
            LinkJoint::Free => {
                for k in 0..3 {
                    q[l.qadr + k] += h * v[l.dof + k];
                }
                let w = Vector3::new(v[l.dof + 3], v[l.dof + 4], v[l.dof + 5]);
                let rot = UnitQuaternion::from_quaternion(Quaternion::new(q[l.qadr + 3], q[l.qadr + 4], q[l.qadr + 5], q[l.qadr + 6]));
                let turned = UnitQuaternion::from_scaled_axis(w * h) * rot;
                let r = turned.quaternion();
                q[l.qadr + 3..l.qadr + 7].copy_from_slice(&[r.w, r.i, r.j, r.k]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::EnvRng;

    fn kinetic_energy(p: &MjcfPhysics, q: &[f64], v: &[f64]) -> (f64, f64) {
        let mut kin = Kinematics::new(&p.tree);
        kin.update(&p.tree, q, v);
        let mv = &kin.mass * rapier3d::na::DVector::from_column_slice(v);
        let from_matrix = 0.5 * v.iter().zip(mv.iter()).map(|(a, b)| a * b).sum::<f64>()
            - 0.5 * v.iter().zip(&p.tree.armature).map(|(a, arm)| arm * a * a).sum::<f64>();
        // Directly: ½ m |v_com|² + ½ ωᵀ I ω per link.
        let mut direct = 0.0;
        for (i, l) in p.tree.links.iter().enumerate() {
            let mut twist = rapier3d::na::Vector6::zeros();
            for &d in &p.tree.link_dofs[i] {
                twist += kin.s[d] * v[d];
            }
            let w = Vector3::new(twist[0], twist[1], twist[2]);
            let vo = Vector3::new(twist[3], twist[4], twist[5]);
            let vc = vo + w.cross(&kin.com[i]);
            let r = kin.pose[i].rotation.to_rotation_matrix();
            let iw = r.matrix() * l.inertia * r.matrix().transpose();
            direct += 0.5 * l.mass * vc.norm_squared() + 0.5 * w.dot(&(iw * w));
        }
        (from_matrix, direct)
    }

    #[test]
    fn mass_matrix_and_bias_forces_are_consistent_for_every_task() {
        for spec in [crate::locomotion::hopper(), crate::locomotion::half_cheetah(), crate::locomotion::ant()] {
            let mut p = spec.build().unwrap().physics().clone_for_test();
            let mut rng = EnvRng::seed_from_u64(3);
            let mut q = p.q0.clone();
            for (k, x) in q.iter_mut().enumerate() {
                if p.tree.links.iter().any(|l| l.joint == LinkJoint::Free && (l.qadr + 3..l.qadr + 7).contains(&k)) {
                    continue;
                }
                *x += rng.uniform(-0.5, 0.5);
            }
            let v: Vec<f64> = (0..p.tree.nv).map(|_| rng.uniform(-2.0, 2.0)).collect();
            let (m, d) = kinetic_energy(&p, &q, &v);
            assert!((m - d).abs() < 1e-9 * d.max(1.0), "{}: ½vᵀMv {m} vs Σ body energies {d}", spec.id);

            // With no gravity, no damping and no constraints, energy is conserved: the bias
            // forces are the mass matrix's Coriolis terms.
            p.tree.gravity = Vector3::zeros();
            p.tree.damping.fill(0.0);
            p.tree.stiffness.fill(0.0);
            p.constraints.limits.clear();
            p.constraints.pairs.clear();
            p.q.copy_from_slice(&q);
            p.v.copy_from_slice(&v);
            p.integrator = Integrator::Rk4;
            p.timestep = 1e-4;
            let energy = |p: &MjcfPhysics| {
                let (m, _) = kinetic_energy(p, &p.q, &p.v);
                m + 0.5 * p.v.iter().zip(&p.tree.armature).map(|(a, arm)| arm * a * a).sum::<f64>()
            };
            let e0 = energy(&p);
            for _ in 0..200 {
                p.rk4();
            }
            let e1 = energy(&p);
            assert!((e1 - e0).abs() < 1e-6 * e0, "{}: energy {e0} -> {e1}", spec.id);
        }
    }
}

