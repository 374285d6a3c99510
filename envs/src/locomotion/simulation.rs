//! The simulation: a [`Model`]'s state and MuJoCo's stepping of it — the integrator (Euler
//! with implicit damping, or RK4), actuators as generalized forces `gear · clip(ctrl)`, and
//! MuJoCo's soft limits and contacts ([`super::constraints`]) on the tree's dynamics
//! ([`super::articulated`]).

#![allow(clippy::needless_range_loop)] // index-parallel numeric loops read better with indices

use rapier3d::na::{Quaternion, UnitQuaternion, Vector3};

use super::articulated::{Kinematics, LinkJoint, Tree};
use super::collision::{Placed, find_contacts};
use super::com_frame::ComFrame;
use super::constraints::SoftConstraints;
use super::model::extras::Integrator;
use super::model::{BodyId, JointKind, Model};

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

/// A [`Model`] and its state (MuJoCo's `mjData`), read and written in MuJoCo's terms: `qpos`,
/// `qvel`, `ctrl`.
#[derive(Clone)]
pub struct Simulation {
    model: Model,
    kin: Kinematics,
    constraints: SoftConstraints,
    q: Vec<f64>,
    v: Vec<f64>,
    /// Generalized actuator force held for the current env step.
    actuator_tau: Vec<f64>,
    /// Link positions as MuJoCo's `xpos` holds them after `mj_step`: the kinematics of the
    /// last state it evaluated (Euler: the start of the last timestep; RK4: its fourth
    /// stage), or of the reset state.
    xpos: Vec<[f64; 3]>,
    /// MuJoCo's com-based quantities of the same state as `xpos`, kept only when a task reads
    /// them ([`Simulation::track_com_frame`]): the other tasks' steps skip the work.
    com: Option<ComFrame>,
    scratch: Scratch,
    stages: Stages,
    /// `h·D`, MuJoCo's implicit damping in the Euler integrator.
    implicit_damping: Vec<f64>,
}

/// A contact as MuJoCo reports one: its position midway between the surfaces, the normal from
/// the first geom to the second, and the signed distance (negative: penetrating).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContactPoint {
    pub pos: [f64; 3],
    pub normal: [f64; 3],
    pub dist: f64,
}

/// A geom as drawn, in world coordinates, and the body it belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeomPose {
    pub body: BodyId,
    pub shape: GeomShape,
}

/// A geom's shape and place; `axes` are the shape frame's x, y and z in the world.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GeomShape {
    /// A capsule between `a` and `b` (a sphere where they coincide).
    Capsule { a: [f64; 3], b: [f64; 3], radius: f64 },
    /// A box with half extents `half` along `axes`.
    Box { centre: [f64; 3], axes: [[f64; 3]; 3], half: [f64; 3] },
    /// A cylinder along `axes[1]`.
    Cylinder { centre: [f64; 3], axes: [[f64; 3]; 3], radius: f64, half_height: f64 },
    /// An ellipsoid with semi-axes `radii` along `axes`.
    Ellipsoid { centre: [f64; 3], axes: [[f64; 3]; 3], radii: [f64; 3] },
}

impl GeomShape {
    /// The middle of the shape.
    pub fn centre(&self) -> [f64; 3] {
        match *self {
            Self::Capsule { a, b, .. } => std::array::from_fn(|i| 0.5 * (a[i] + b[i])),
            Self::Box { centre, .. } | Self::Cylinder { centre, .. } | Self::Ellipsoid { centre, .. } => centre,
        }
    }
}

impl Simulation {
    /// The model at its initial state (MuJoCo's `qpos0`, zero velocity).
    pub fn new(model: Model) -> Self {
        let tree = &model.tree;
        let constraints = SoftConstraints::new(model.floor_z, model.geoms.clone(), model.pairs.clone(), model.limits.clone(), model.timestep);
        let mut sim = Self {
            kin: Kinematics::new(tree),
            scratch: Scratch::new(tree.nv),
            stages: Stages::new(model.q0.len(), tree.nv),
            implicit_damping: tree.damping.iter().map(|d| d * model.timestep).collect(),
            constraints,
            q: model.q0.clone(),
            v: vec![0.0; tree.nv],
            actuator_tau: vec![0.0; tree.nv],
            xpos: Vec::new(),
            com: None,
            model,
        };
        sim.reset_to_initial();
        sim
    }

    /// Compiles an MJCF file ([`Model::from_file`]) and starts it at its initial state.
    pub fn from_file(path: &std::path::Path, frame_skip: usize) -> Result<Self, crate::EnvError> {
        Ok(Self::new(Model::from_file(path, frame_skip)?))
    }

    /// Compiles MJCF text ([`Model::from_xml`]) and starts it at its initial state.
    pub fn from_xml(xml: &str, base_dir: &std::path::Path, origin: &str, frame_skip: usize) -> Result<Self, crate::EnvError> {
        Ok(Self::new(Model::from_xml(xml, base_dir, origin, frame_skip)?))
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// A body's frame origin as MuJoCo's `xpos` holds it after `mj_step` (see the field).
    pub fn xpos(&self, body: BodyId) -> [f64; 3] {
        self.xpos[body.0]
    }

    /// Keeps [`Simulation::com_frame`] up to date from now on (from the current state).
    pub fn track_com_frame(&mut self) {
        if self.com.is_none() {
            self.com = Some(ComFrame::default());
            self.refresh_xpos();
        }
    }

    /// `cinert`, `cvel`, `cfrc_ext` and the centre of mass, of the same state as
    /// [`Simulation::xpos`]; None unless [`Simulation::track_com_frame`] was called.
    pub fn com_frame(&self) -> Option<&ComFrame> {
        self.com.as_ref()
    }

    /// MuJoCo's `qfrc_actuator` (length nv): the actuators' generalized forces held for the
    /// current env step, in `qvel`'s order and frames.
    pub fn read_actuator_force(&self, out: &mut [f64]) {
        let mut vi = 0;
        for j in &self.model.joints {
            if j.kind == JointKind::Free {
                let rot = orientation(&self.q, j.qadr);
                let t = &self.actuator_tau;
                // The root's torque is about world axes here, about the body's axes in MuJoCo.
                let local = rot.inverse() * Vector3::new(t[j.dof + 3], t[j.dof + 4], t[j.dof + 5]);
                out[vi..vi + 3].copy_from_slice(&t[j.dof..j.dof + 3]);
                out[vi + 3..vi + 6].copy_from_slice(local.as_slice());
                vi += 6;
            } else {
                out[vi] = self.actuator_tau[j.dof];
                vi += 1;
            }
        }
    }

    /// Every collision geom where the current state puts it, for drawing.
    pub fn geom_poses(&self) -> Vec<GeomPose> {
        let tree = &self.model.tree;
        let mut kin = Kinematics::new(tree);
        kin.update(tree, &self.q, &self.v);
        let arr = |v: Vector3<f64>| [v.x, v.y, v.z];
        let frame = |pose: &rapier3d::na::Isometry3<f64>| {
            let m = pose.rotation.to_rotation_matrix();
            (arr(pose.translation.vector), [arr(m.matrix().column(0).into()), arr(m.matrix().column(1).into()), arr(m.matrix().column(2).into())])
        };
        self.model
            .geoms
            .iter()
            .map(|g| {
                let shape = match g.place(&kin.pose[g.link]) {
                    Placed::Capsule { a, b, radius } => GeomShape::Capsule { a: arr(a), b: arr(b), radius },
                    Placed::Box { pose, half } => {
                        let (centre, axes) = frame(&pose);
                        GeomShape::Box { centre, axes, half: arr(half) }
                    }
                    Placed::Cylinder { pose, radius, half_height } => {
                        let (centre, axes) = frame(&pose);
                        GeomShape::Cylinder { centre, axes, radius, half_height }
                    }
                    Placed::Ellipsoid { pose, radii } => {
                        let (centre, axes) = frame(&pose);
                        GeomShape::Ellipsoid { centre, axes, radii: arr(radii) }
                    }
                };
                GeomPose { body: BodyId(g.link), shape }
            })
            .collect()
    }

    /// The contacts MuJoCo's collision rules give at the current state.
    pub fn contacts(&self) -> Vec<ContactPoint> {
        let tree = &self.model.tree;
        let mut kin = Kinematics::new(tree);
        kin.update(tree, &self.q, &self.v);
        let mut found = Vec::new();
        find_contacts(&self.model.geoms, &self.model.pairs, self.model.floor_z, &kin, &mut Vec::new(), &mut found);
        found.iter().map(|c| ContactPoint { pos: [c.point.x, c.point.y, c.point.z], normal: [c.normal.x, c.normal.y, c.normal.z], dist: c.dist }).collect()
    }

    /// The height of the floor plane (−∞ without one).
    pub fn floor_z(&self) -> f64 {
        self.model.floor_z
    }

    /// Restores the initial state (MuJoCo's `qpos0`, zero velocity).
    pub fn reset_to_initial(&mut self) {
        self.q.copy_from_slice(&self.model.q0);
        self.v.fill(0.0);
        self.refresh_xpos();
    }

    fn refresh_xpos(&mut self) {
        self.kin.update(&self.model.tree, &self.q, &self.v);
        self.xpos = self.kin.pose.iter().map(|p| [p.translation.x, p.translation.y, p.translation.z]).collect();
        if let Some(com) = &mut self.com {
            com.record(&self.model.tree, &self.model.bodies, &self.kin, std::iter::empty());
        }
    }

    /// Writes MuJoCo's `qpos` (length nq) and `qvel` (length nv).
    pub fn read_state(&self, qpos: &mut [f64], qvel: &mut [f64]) {
        let (mut qi, mut vi) = (0, 0);
        for j in &self.model.joints {
            if j.kind == JointKind::Free {
                qpos[qi..qi + 7].copy_from_slice(&self.q[j.qadr..j.qadr + 7]);
                let rot = orientation(&self.q, j.qadr);
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
        for j in &self.model.joints {
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

    /// Restores [`Simulation::internal_state`]; false (and nothing changed) if the lengths
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

    /// Makes the state non-finite, as a diverged simulation would.
    #[cfg(test)]
    pub(crate) fn poison(&mut self) {
        self.v.fill(f64::NAN);
    }

    /// Holds `ctrl` (clamped to each actuator's range, as MuJoCo does) for `frame_skip`
    /// timesteps.
    pub fn step(&mut self, ctrl: &[f32]) {
        self.actuator_tau.fill(0.0);
        for (a, &u) in self.model.actuators.iter().zip(ctrl) {
            let u = match a.ctrl_range {
                Some([lo, hi]) => (u as f64).clamp(lo, hi),
                None => u as f64,
            };
            self.actuator_tau[a.dof] += a.gear * u;
        }
        for _ in 0..self.model.frame_skip {
            match self.model.integrator {
                Integrator::Euler => self.euler(),
                Integrator::Rk4 => self.rk4(),
            }
        }
    }

    /// `q̈` at `(q, v)` into `scratch.qacc`, constraints included; `implicit_damping` makes
    /// the final solve use `M + h·D` (MuJoCo's Euler).
    fn acceleration(&mut self, q: &[f64], v: &[f64], record_state: bool, implicit_damping: bool) {
        let (tree, kin, s) = (&self.model.tree, &mut self.kin, &mut self.scratch);
        kin.update(tree, q, v);
        if record_state {
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
        if let (true, Some(com)) = (record_state, &mut self.com) {
            com.record(tree, &self.model.bodies, kin, self.constraints.contact_forces());
        }
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
        let h = self.model.timestep;
        let mut st = std::mem::take(&mut self.stages);
        st.q0.clone_from(&self.q);
        st.v0.clone_from(&self.v);
        self.acceleration(&st.q0, &st.v0, true, true);
        for (v, a) in self.v.iter_mut().zip(&self.scratch.qacc) {
            *v += h * a;
        }
        integrate_positions(&self.model.tree, &mut self.q, &self.v, h);
        self.stages = st;
    }

    /// MuJoCo's `mj_RungeKutta(m, d, 4)`.
    fn rk4(&mut self) {
        const C: [f64; 4] = [0.0, 0.5, 0.5, 1.0];
        const W: [f64; 4] = [1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0];
        let h = self.model.timestep;
        let mut st = std::mem::take(&mut self.stages);
        st.q0.clone_from(&self.q);
        st.v0.clone_from(&self.v);
        for stage in 0..4 {
            st.q.clone_from(&st.q0);
            if stage == 0 {
                st.v[0].clone_from(&st.v0);
            } else {
                // Stage i: X₀ + c_i·h·F(stage i−1), F = (q̇, q̈).
                integrate_positions(&self.model.tree, &mut st.q, &st.v[stage - 1], C[stage] * h);
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
        integrate_positions(&self.model.tree, &mut self.q, &st.vmean, h);
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

/// The free root's orientation from its coordinates at `qadr` (position, then w, x, y, z).
fn orientation(q: &[f64], qadr: usize) -> UnitQuaternion<f64> {
    UnitQuaternion::from_quaternion(Quaternion::new(q[qadr + 3], q[qadr + 4], q[qadr + 5], q[qadr + 6]))
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
                let rot = orientation(q, l.qadr);
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
    use crate::locomotion::articulated::dot;
    use crate::rng::EnvRng;

    fn kinetic_energy(p: &Simulation, q: &[f64], v: &[f64]) -> (f64, f64) {
        let mut kin = Kinematics::new(&p.model.tree);
        kin.update(&p.model.tree, q, v);
        let mv = &kin.mass * rapier3d::na::DVector::from_column_slice(v);
        let from_matrix = 0.5 * v.iter().zip(mv.iter()).map(|(a, b)| a * b).sum::<f64>()
            - 0.5 * v.iter().zip(&p.model.tree.armature).map(|(a, arm)| arm * a * a).sum::<f64>();
        // Directly: ½ m |v_com|² + ½ ωᵀ I ω per link.
        let mut direct = 0.0;
        for (i, l) in p.model.tree.links.iter().enumerate() {
            let mut twist = rapier3d::na::Vector6::zeros();
            for &d in &p.model.tree.link_dofs[i] {
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

    /// The tree-sparse factor against the dense mass matrix: `M·solve(b) = b`, and the
    /// half solves' dot product is `bᵀ·M⁻¹·c`, including after an added diagonal.
    #[test]
    fn the_sparse_factor_solves_the_mass_matrix_for_every_task() {
        for spec in [crate::locomotion::hopper(), crate::locomotion::half_cheetah(), crate::locomotion::ant(), crate::locomotion::walker2d(), crate::locomotion::humanoid()] {
            let p = spec.build().unwrap().physics().clone();
            let tree = &p.model.tree;
            let mut rng = EnvRng::seed_from_u64(5);
            let q: Vec<f64> = p.model.q0.iter().map(|x| x + rng.uniform(-0.05, 0.05)).collect();
            let v = vec![0.0; tree.nv];
            let mut kin = Kinematics::new(tree);
            kin.update(tree, &q, &v);
            let random = |rng: &mut EnvRng| -> Vec<f64> { (0..tree.nv).map(|_| rng.uniform(-1.0, 1.0)).collect() };
            for extra in [vec![0.0; tree.nv], random(&mut rng).iter().map(|x| x.abs()).collect()] {
                kin.refactor_with_diagonal(&extra);
                let mut m = kin.mass.clone();
                for (d, x) in extra.iter().enumerate() {
                    m[(d, d)] += x;
                }
                let (b, c) = (random(&mut rng), random(&mut rng));
                let mut x = b.clone();
                kin.solve(&mut x);
                let mx = &m * rapier3d::na::DVector::from_column_slice(&x);
                for (got, want) in mx.iter().zip(&b) {
                    assert!((got - want).abs() < 1e-9, "{}: (M·M⁻¹b) {got} vs b {want}", spec.id);
                }
                let (mut yb, mut yc) = (b.clone(), c.clone());
                kin.half_solve(&mut yb);
                kin.half_solve(&mut yc);
                let mut m_inv_c = c.clone();
                kin.solve(&mut m_inv_c);
                let (half, full) = (dot(&yb, &yc), dot(&b, &m_inv_c));
                assert!((half - full).abs() < 1e-9 * full.abs().max(1.0), "{}: {half} vs bᵀM⁻¹c {full}", spec.id);
            }
        }
    }

    #[test]
    fn mass_matrix_and_bias_forces_are_consistent_for_every_task() {
        for spec in [crate::locomotion::hopper(), crate::locomotion::half_cheetah(), crate::locomotion::ant(), crate::locomotion::walker2d(), crate::locomotion::humanoid()] {
            let mut p = spec.build().unwrap().physics().clone();
            let mut rng = EnvRng::seed_from_u64(3);
            let mut q = p.model.q0.clone();
            for (k, x) in q.iter_mut().enumerate() {
                if p.model.tree.links.iter().any(|l| l.joint == LinkJoint::Free && (l.qadr + 3..l.qadr + 7).contains(&k)) {
                    continue;
                }
                *x += rng.uniform(-0.5, 0.5);
            }
            let v: Vec<f64> = (0..p.model.tree.nv).map(|_| rng.uniform(-2.0, 2.0)).collect();
            let (m, d) = kinetic_energy(&p, &q, &v);
            assert!((m - d).abs() < 1e-9 * d.max(1.0), "{}: ½vᵀMv {m} vs Σ body energies {d}", spec.id);

            // With no gravity, no damping and no constraints, energy is conserved: the bias
            // forces are the mass matrix's Coriolis terms.
            p.model.tree.gravity = Vector3::zeros();
            p.model.tree.damping.fill(0.0);
            p.model.tree.stiffness.fill(0.0);
            p.constraints.limits.clear();
            p.constraints.pairs.clear();
            p.q.copy_from_slice(&q);
            p.v.copy_from_slice(&v);
            p.model.integrator = Integrator::Rk4;
            p.model.timestep = 1e-4;
            let energy = |p: &Simulation| {
                let (m, _) = kinetic_energy(p, &p.q, &p.v);
                m + 0.5 * p.v.iter().zip(&p.model.tree.armature).map(|(a, arm)| arm * a * a).sum::<f64>()
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

