//! The model: an MJCF file compiled into plain data (MuJoCo's `mjModel`) — the kinematic
//! tree with its masses, inertias, armature, damping and springs; MuJoCo's joints in `qpos`
//! order; the actuators; the geoms, the floor and the contact pairs; the joint limits; the
//! integrator and timestep. [`super::simulation::Simulation`] steps it.
//!
//! One front end, [`Model::from_xml`], reads the file twice over: rapier3d-mjcf parses it
//! and rapier assembles the multibody — masses, inertias, joint frames, armature, damping,
//! springs and collision shapes come from there, with the loader defaults that are not
//! MuJoCo's overridden (floor planes kept, contact filtering by contype/conaffinity either
//! way, friction combined by maximum) — and [`extras`] reads what that loader drops (the
//! integrator, `solref`/`solimp`, `margin`, `condim`, `solreflimit`/`solimplimit`).

#![allow(clippy::needless_range_loop)] // index-parallel numeric loops read better with indices

mod checks;
mod contacts;
pub mod extras;
mod rapier_tree;

use std::collections::HashMap;
use std::path::Path;

use rapier3d::na::Vector3;
use rapier3d::prelude::*;
use rapier3d_mjcf::mjcf_rs::extras::{Actuator as ActuatorSpec, ActuatorKind};
use rapier3d_mjcf::mjcf_rs::types::Tristate;
use rapier3d_mjcf::{ContactFilterMode, MjcfDofKind, MjcfLoaderOptions, MjcfMultibodyOptions, MjcfRobot};

use super::articulated::{Kinematics, LinkJoint, Tree};
use super::collision::{ContactPair, Geom};
use super::constraints::JointLimit;
use crate::EnvError;
use contacts::{ContactModel, contact_model};
use extras::{Extras, Integrator};
use rapier_tree::{TreeBuild, inverse_weights, tree_from_multibody};

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
pub struct BodyId(pub(crate) usize);

impl BodyId {
    /// The body's index in the tree (0: the first body under the world).
    pub fn index(self) -> usize {
        self.0
    }
}

/// MuJoCo's bodies (`mjModel`'s body list, the world first) over the tree's links: a body
/// with several joints is a chain of links, the last of which carries its mass and geoms.
#[derive(Debug, Clone)]
pub(crate) struct MujocoBodies {
    /// The link carrying each body (None for the world).
    pub link: Vec<Option<usize>>,
    /// Each body's parent body (the world is its own).
    pub parent: Vec<usize>,
    /// MuJoCo's `body_weldid`: the body itself if it has joints, else its parent's weld.
    pub weld: Vec<usize>,
    /// MuJoCo's `body_rootid`: the world's child the body hangs from.
    pub root: Vec<usize>,
    /// The body of each link (0: the world).
    pub of_link: Vec<usize>,
}

impl MujocoBodies {
    fn new(tree: &Tree, of_link: &[usize]) -> Self {
        let n = of_link.iter().copied().max().unwrap_or(0) + 1;
        let mut link = vec![None; n];
        let mut parent = vec![0; n];
        let mut jointed = vec![false; n];
        for (l, &b) in of_link.iter().enumerate() {
            if b == 0 {
                continue;
            }
            // Links are in topological order: the last link of a body's chain comes last.
            link[b] = Some(l);
            jointed[b] |= tree.links[l].joint != LinkJoint::Fixed;
            let mut up = tree.links[l].parent;
            while let Some(p) = up.filter(|&p| of_link[p] == b) {
                up = tree.links[p].parent;
            }
            parent[b] = up.map_or(0, |p| of_link[p]);
        }
        let (mut weld, mut root) = (vec![0; n], vec![0; n]);
        for b in 1..n {
            // MuJoCo numbers a parent before its children.
            weld[b] = if jointed[b] { b } else { weld[parent[b]] };
            root[b] = if parent[b] == 0 { b } else { root[parent[b]] };
        }
        Self { link, parent, weld, root, of_link: of_link.to_vec() }
    }

    /// How many bodies, the world included (`nbody`).
    pub fn len(&self) -> usize {
        self.link.len()
    }

    /// MuJoCo's parent filter: no contacts within a weld, or between a weld and its parent's
    /// (unless one side is welded to the world).
    pub fn filtered(&self, link1: usize, link2: usize) -> bool {
        let (w1, w2) = (self.weld[self.of_link[link1]], self.weld[self.of_link[link2]]);
        let (p1, p2) = (self.weld[self.parent[w1]], self.weld[self.parent[w2]]);
        w1 == w2 || (w1 != 0 && w2 != 0 && (w1 == p2 || w2 == p1))
    }
}

/// A MuJoCo joint: where its `qpos`/`qvel` live in the tree's state.
#[derive(Debug, Clone)]
pub(crate) struct JointDof {
    pub name: String,
    pub kind: JointKind,
    pub qadr: usize,
    pub dof: usize,
    /// MuJoCo `qpos0` (the joint's `ref`): the tree coordinate is zero there.
    pub qpos0: f64,
    pub range: Option<[f64; 2]>,
}

#[derive(Debug, Clone)]
pub(crate) struct Actuator {
    pub dof: usize,
    pub joint: String,
    pub gear: f64,
    pub ctrl_range: Option<[f64; 2]>,
}

/// An MJCF model compiled for [`super::simulation::Simulation`].
#[derive(Debug, Clone)]
pub struct Model {
    pub(crate) tree: Tree,
    /// Height of the floor plane (−∞ without one).
    pub(crate) floor_z: f64,
    pub(crate) geoms: Vec<Geom>,
    pub(crate) pairs: Vec<ContactPair>,
    pub(crate) limits: Vec<JointLimit>,
    pub(crate) integrator: Integrator,
    pub(crate) timestep: f64,
    pub(crate) frame_skip: usize,
    pub(crate) joints: Vec<JointDof>,
    pub(crate) actuators: Vec<Actuator>,
    link_names: Vec<Option<String>>,
    pub(crate) bodies: MujocoBodies,
    geom_frictions: Vec<(String, f64)>,
    /// The tree's coordinates at MuJoCo's `qpos0`.
    pub(crate) q0: Vec<f64>,
    nq: usize,
    nv: usize,
}

impl Model {
    /// Loads an MJCF file. `frame_skip` MuJoCo timesteps make one env step.
    pub fn from_file(path: &Path, frame_skip: usize) -> Result<Self, EnvError> {
        let xml = std::fs::read_to_string(path)
            .map_err(|e| EnvError::Model { path: path.display().to_string(), reason: e.to_string() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_xml(&xml, base, &path.display().to_string(), frame_skip)
    }

    /// Compiles MJCF text; `origin` names it in errors.
    pub fn from_xml(xml: &str, base_dir: &Path, origin: &str, frame_skip: usize) -> Result<Self, EnvError> {
        let model_err = |reason: String| EnvError::Model { path: origin.to_string(), reason };
        if frame_skip == 0 {
            return Err(model_err("frame_skip must be ≥ 1".into()));
        }
        checks::body_nesting(xml).map_err(model_err)?;
        let extras = Extras::parse(xml).map_err(|e| model_err(format!("bad XML: {e}")))?;
        let options = MjcfLoaderOptions {
            skip_plane_geoms: false,
            contact_filter_mode: ContactFilterMode::Asymmetric,
            ..MjcfLoaderOptions::default()
        };
        let (robot, model) = MjcfRobot::from_str(xml, options, base_dir).map_err(|e| model_err(format!("{e:#}")))?;
        checks::geoms(&model, base_dir).map_err(model_err)?;
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
        // MuJoCo's body of each loader body (a joint chain's intermediates share their body's).
        let mujoco_body_of: Vec<usize> = robot.bodies.iter().map(|b| b.mjcf_body_id).collect();

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
        let mb_index = multibodies.rigid_body_link(first_body).map(|l| l.multibody).ok_or_else(|| model_err("no articulation: the moving body needs a jointed child body (a lone free body is not supported)".into()))?;
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
        checks::masses(&tree, &link_names).map_err(model_err)?;
        let mut link_body = vec![0; tree.links.len()];
        for (idx, &b) in mujoco_body_of.iter().enumerate() {
            if let Some(&l) = body_of(idx).and_then(|h| link_of_body.get(&h)) {
                link_body[l] = b;
            }
        }
        let bodies = MujocoBodies::new(&tree, &link_body);

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

        let actuators = actuators_of(&actuator_specs, &joint_names, &joints).map_err(model_err)?;

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
            contact_model(&colliders, &collider_names, &extras, &link_of_body, &bodies, &body_invweight).map_err(model_err)?;
        let nq = joints.iter().map(|j| if j.kind == JointKind::Free { 7 } else { 1 }).sum();
        let nv = joints.iter().map(|j| if j.kind == JointKind::Free { 6 } else { 1 }).sum();
        Ok(Self {
            tree,
            floor_z,
            geoms,
            pairs,
            limits,
            integrator: extras.integrator,
            timestep,
            frame_skip,
            joints,
            actuators,
            link_names,
            bodies,
            geom_frictions,
            q0,
            nq,
            nv,
        })
    }

    pub fn nq(&self) -> usize {
        self.nq
    }

    pub fn nv(&self) -> usize {
        self.nv
    }

    /// MuJoCo's body count, the world included.
    pub fn nbody(&self) -> usize {
        self.bodies.len()
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

    /// Per-body masses, by MJCF body name.
    pub fn body_masses(&self) -> Vec<(String, f64)> {
        self.link_names
            .iter()
            .zip(&self.tree.links)
            .filter_map(|(n, l)| n.as_ref().map(|n| (n.clone(), l.mass)))
            .collect()
    }

    /// The geom pairs collision tests: (with the floor, between the robot's bodies).
    pub fn collision_pair_counts(&self) -> (usize, usize) {
        let floor = self.pairs.iter().filter(|p| p.other.is_none()).count();
        (floor, self.pairs.len() - floor)
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

    /// The index of the body named `name`.
    pub fn body(&self, name: &str) -> Option<BodyId> {
        self.link_names.iter().position(|n| n.as_deref() == Some(name)).map(BodyId)
    }
}

/// The `<motor>` actuators in `ctrl` order, each on its hinge or slide joint.
fn actuators_of(specs: &[(ActuatorSpec, Option<usize>)], joint_names: &[Option<String>], joints: &[JointDof]) -> Result<Vec<Actuator>, String> {
    specs
        .iter()
        .map(|(spec, joint_index)| {
            let ji = joint_index.ok_or_else(|| format!("actuator {:?}: only joint actuators are supported", spec.name))?;
            if !matches!(spec.kind, ActuatorKind::Motor) {
                return Err(format!("actuator {:?}: only <motor> is supported", spec.name));
            }
            let name = joint_names[ji].clone().unwrap_or_default();
            let joint = joints.iter().find(|j| j.name == name && j.kind != JointKind::Free);
            let dof = joint.map(|j| j.dof).ok_or_else(|| format!("actuator on {name}: not a hinge or slide joint"))?;
            let ctrl_range = match spec.ctrl_limited {
                Tristate::False => None,
                _ => spec.ctrl_range,
            };
            Ok(Actuator { dof, joint: name, gear: spec.gear[0], ctrl_range })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::locomotion;

    /// MuJoCo's parent filter on Humanoid-v4: welded bodies (a foot on its shin) count as one,
    /// a body never touches its parent, siblings and more distant relatives may.
    #[test]
    fn humanoid_bodies_follow_mujocos_tree_and_parent_filter() {
        let env = locomotion::humanoid().build().unwrap();
        let model = env.physics().model();
        assert_eq!(model.nbody(), 14, "the world and 13 bodies");
        let link = |name: &str| model.body(name).unwrap().index();
        let filtered = |a: &str, b: &str| model.bodies.filtered(link(a), link(b));
        assert!(filtered("right_foot", "right_shin"), "a foot is welded to its shin");
        assert!(filtered("right_foot", "right_thigh"), "the foot's weld is the shin, whose parent is the thigh");
        assert!(filtered("right_thigh", "pelvis"), "parent and child");
        assert!(filtered("lwaist", "torso"));
        assert!(!filtered("right_thigh", "left_thigh"), "siblings collide");
        assert!(!filtered("right_lower_arm", "right_thigh"));
        assert!(!filtered("right_foot", "pelvis"));
        // A body with several joints is one body: the thigh's parent is the pelvis.
        let thigh = model.bodies.of_link[link("right_thigh")];
        assert_eq!(model.bodies.parent[thigh], model.bodies.of_link[link("pelvis")]);
        assert_eq!(model.bodies.root[thigh], model.bodies.of_link[link("torso")]);
    }
}
