//! Reduced-coordinate dynamics of a kinematic tree, in MuJoCo's formulation.
//!
//! The tree is the multibody rapier3d-mjcf builds from an MJCF file (link frames, joint
//! frames, mass properties); the dynamics are computed here in world-frame spatial algebra:
//! forward kinematics, the joint-space inertia by the composite-rigid-body algorithm (plus
//! armature), and the bias forces (Coriolis, centrifugal, gravity) by recursive Newton–Euler.
//! rapier's own multibody step assembles its mass matrix through dense per-link Jacobian
//! products every substep and integrates with symplectic Euler; MuJoCo's tasks need RK4 and
//! MuJoCo's constraint model at MuJoCo's speed, which is what this module serves.
//!
//! Motion vectors are `(ω, v_O)` (angular velocity, velocity of the body point at the world
//! origin), force vectors `(n_O, f)` (moment about the world origin, force).

#![allow(clippy::needless_range_loop)] // index-parallel numeric loops read better with indices

use rapier3d::na::{DMatrix, DVector, Isometry3, Matrix3, Translation3, UnitQuaternion, Vector3, Vector6};

pub type Motion = Vector6<f64>;
pub type Force = Vector6<f64>;

/// How a link moves relative to its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkJoint {
    /// Welded to the parent (or the world, for a fixed root).
    Fixed,
    /// One rotation about the joint frame's x axis.
    Hinge,
    /// One translation along the joint frame's x axis.
    Slide,
    /// The floating root: position and orientation (6 DoF, 7 coordinates).
    Free,
}

/// One body of the tree.
#[derive(Debug, Clone)]
pub struct Link {
    pub parent: Option<usize>,
    pub joint: LinkJoint,
    /// Joint frame in the parent's frame, and the inverse of the joint frame in this link's.
    pub frame1: Isometry3<f64>,
    pub frame2_inv: Isometry3<f64>,
    pub mass: f64,
    /// Centre of mass and rotational inertia about it, in this link's frame.
    pub com: Vector3<f64>,
    pub inertia: Matrix3<f64>,
    /// First velocity index and first coordinate index of this link's joint.
    pub dof: usize,
    pub qadr: usize,
}

impl LinkJoint {
    pub fn nv(self) -> usize {
        match self {
            LinkJoint::Fixed => 0,
            LinkJoint::Hinge | LinkJoint::Slide => 1,
            LinkJoint::Free => 6,
        }
    }

    pub fn nq(self) -> usize {
        match self {
            LinkJoint::Free => 7,
            other => other.nv(),
        }
    }
}

/// A kinematic tree with its per-DoF passive properties. Links are in topological order.
#[derive(Debug, Clone)]
pub struct Tree {
    pub links: Vec<Link>,
    pub nv: usize,
    pub gravity: Vector3<f64>,
    pub armature: Vec<f64>,
    pub damping: Vec<f64>,
    pub stiffness: Vec<f64>,
    /// Spring rest position per DoF (in the joint coordinate).
    pub spring_ref: Vec<f64>,
    /// Link owning each DoF.
    pub dof_link: Vec<usize>,
    /// The DoFs that move each link: its ancestors' and its own, ascending.
    pub link_dofs: Vec<Vec<usize>>,
    /// Coordinate index of each hinge/slide DoF (None for the free root's).
    pub dof_coord: Vec<Option<usize>>,
}

impl Tree {
    pub fn new(links: Vec<Link>, gravity: Vector3<f64>) -> Self {
        let nv = links.iter().map(|l| l.joint.nv()).sum();
        let mut dof_link = vec![0; nv];
        let mut dof_coord = vec![None; nv];
        let mut link_dofs: Vec<Vec<usize>> = Vec::with_capacity(links.len());
        for (i, l) in links.iter().enumerate() {
            let mut dofs = l.parent.map(|p| link_dofs[p].clone()).unwrap_or_default();
            for d in l.dof..l.dof + l.joint.nv() {
                dof_link[d] = i;
                dofs.push(d);
            }
            if matches!(l.joint, LinkJoint::Hinge | LinkJoint::Slide) {
                dof_coord[l.dof] = Some(l.qadr);
            }
            link_dofs.push(dofs);
        }
        Self {
            links,
            nv,
            gravity,
            armature: vec![0.0; nv],
            damping: vec![0.0; nv],
            stiffness: vec![0.0; nv],
            spring_ref: vec![0.0; nv],
            dof_link,
            link_dofs,
            dof_coord,
        }
    }
}

/// Everything computed from the coordinates: poses, motion subspaces, inertia.
#[derive(Debug, Clone)]
pub struct Kinematics {
    /// World pose of each link frame.
    pub pose: Vec<Isometry3<f64>>,
    /// World centre of mass of each link.
    pub com: Vec<Vector3<f64>>,
    /// Motion subspace of each DoF (world frame).
    pub s: Vec<Motion>,
    /// Joint-space inertia with armature.
    pub mass: DMatrix<f64>,
    /// Its factor `M = Lᵀ·D·L` with `L` unit lower triangular and, like `M`, nonzero only
    /// where one DoF is an ancestor of the other (a factorisation from the leaves up makes no
    /// fill-in): `L` row-major below the diagonal, `D⁻¹` and `D^-½` beside it.
    factor: Vec<f64>,
    inv_d: Vec<f64>,
    inv_sqrt_d: Vec<f64>,
    /// The factor's pattern: each DoF's ancestor DoFs, ascending.
    ancestors: Vec<Vec<usize>>,
    /// Bias forces `c(q, q̇)` including gravity.
    pub bias: DVector<f64>,
    spatial_inertia: Vec<SpatialInertia>,
    composite: Vec<SpatialInertia>,
    vel: Vec<Motion>,
    acc: Vec<Motion>,
    force: Vec<Force>,
}

/// A rigid body's inertia about the world origin, as the 6×6 map `(ω, v_O) ↦ (L_O, p)`.
type SpatialInertia = rapier3d::na::Matrix6<f64>;

/// `Σ aᵢ·bᵢ` over four running sums: one sum would be a chain of dependent additions the
/// compiler may not reorder; four fill the vector units.
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut sums = [0.0; 4];
    let (mut ca, mut cb) = (a.chunks_exact(4), b.chunks_exact(4));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..4 {
            sums[k] += x[k] * y[k];
        }
    }
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    (sums[0] + sums[1]) + (sums[2] + sums[3]) + tail
}

fn skew(v: &Vector3<f64>) -> Matrix3<f64> {
    Matrix3::new(0.0, -v.z, v.y, v.z, 0.0, -v.x, -v.y, v.x, 0.0)
}

fn spatial_inertia(mass: f64, com: &Vector3<f64>, inertia_world: &Matrix3<f64>) -> SpatialInertia {
    let c = skew(com);
    let mut m = SpatialInertia::zeros();
    m.fixed_view_mut::<3, 3>(0, 0).copy_from(&(inertia_world - mass * c * c));
    m.fixed_view_mut::<3, 3>(0, 3).copy_from(&(mass * c));
    m.fixed_view_mut::<3, 3>(3, 0).copy_from(&(-mass * c));
    m.fixed_view_mut::<3, 3>(3, 3).copy_from(&(Matrix3::identity() * mass));
    m
}

fn ang(m: &Motion) -> Vector3<f64> {
    Vector3::new(m[0], m[1], m[2])
}

fn lin(m: &Motion) -> Vector3<f64> {
    Vector3::new(m[3], m[4], m[5])
}

fn motion(a: Vector3<f64>, l: Vector3<f64>) -> Motion {
    Motion::new(a.x, a.y, a.z, l.x, l.y, l.z)
}

/// `V ×m W`.
fn cross_motion(v: &Motion, w: &Motion) -> Motion {
    let (vw, vv, ww, wv) = (ang(v), lin(v), ang(w), lin(w));
    motion(vw.cross(&ww), vw.cross(&wv) + vv.cross(&ww))
}

/// `V ×f F`.
fn cross_force(v: &Motion, f: &Force) -> Force {
    let (vw, vv, fn_, ff) = (ang(v), lin(v), ang(f), lin(f));
    motion(vw.cross(&fn_) + vv.cross(&ff), vw.cross(&ff))
}

impl Kinematics {
    pub fn new(tree: &Tree) -> Self {
        let (n, nl) = (tree.nv, tree.links.len());
        Self {
            pose: vec![Isometry3::identity(); nl],
            com: vec![Vector3::zeros(); nl],
            s: vec![Motion::zeros(); n],
            mass: DMatrix::zeros(n, n),
            factor: vec![0.0; n * n],
            inv_d: vec![0.0; n],
            inv_sqrt_d: vec![0.0; n],
            ancestors: (0..n).map(|d| tree.link_dofs[tree.dof_link[d]].iter().copied().filter(|&a| a < d).collect()).collect(),
            bias: DVector::zeros(n),
            spatial_inertia: vec![SpatialInertia::zeros(); nl],
            composite: vec![SpatialInertia::zeros(); nl],
            vel: vec![Motion::zeros(); nl],
            acc: vec![Motion::zeros(); nl],
            force: vec![Force::zeros(); nl],
        }
    }

    /// Poses, motion subspaces, joint-space inertia (factored) and bias forces at `(q, v)`.
    pub fn update(&mut self, tree: &Tree, q: &[f64], v: &[f64]) {
        self.forward_kinematics(tree, q);
        self.composite_inertia(tree);
        self.factor();
        self.bias_forces(tree, v);
    }

    fn forward_kinematics(&mut self, tree: &Tree, q: &[f64]) {
        for (i, l) in tree.links.iter().enumerate() {
            let parent = l.parent.map_or(Isometry3::identity(), |p| self.pose[p]);
            let pose = match l.joint {
                LinkJoint::Free => {
                    let r = Vector3::new(q[l.qadr], q[l.qadr + 1], q[l.qadr + 2]);
                    let quat = UnitQuaternion::from_quaternion(rapier3d::na::Quaternion::new(
                        q[l.qadr + 3],
                        q[l.qadr + 4],
                        q[l.qadr + 5],
                        q[l.qadr + 6],
                    ));
                    for k in 0..3 {
                        let e = Vector3::ith(k, 1.0);
                        self.s[l.dof + k] = motion(Vector3::zeros(), e);
                        self.s[l.dof + 3 + k] = motion(e, r.cross(&e));
                    }
                    Isometry3::from_parts(Translation3::from(r), quat)
                }
                LinkJoint::Fixed => parent * l.frame1 * l.frame2_inv,
                LinkJoint::Hinge | LinkJoint::Slide => {
                    let joint_frame = parent * l.frame1;
                    let axis = joint_frame.rotation * Vector3::x();
                    let anchor = joint_frame.translation.vector;
                    let x = q[l.qadr];
                    if l.joint == LinkJoint::Hinge {
                        self.s[l.dof] = motion(axis, anchor.cross(&axis));
                        let rot = UnitQuaternion::from_axis_angle(&Vector3::x_axis(), x);
                        joint_frame * Isometry3::from_parts(Translation3::identity(), rot) * l.frame2_inv
                    } else {
                        self.s[l.dof] = motion(Vector3::zeros(), axis);
                        joint_frame * Translation3::new(x, 0.0, 0.0) * l.frame2_inv
                    }
                }
            };
            self.pose[i] = pose;
            self.com[i] = pose.transform_point(&rapier3d::na::Point3::from(l.com)).coords;
            let rot = pose.rotation.to_rotation_matrix();
            let inertia_world = rot.matrix() * l.inertia * rot.matrix().transpose();
            self.spatial_inertia[i] = spatial_inertia(l.mass, &self.com[i], &inertia_world);
        }
    }

    /// Composite-rigid-body algorithm: `M[a, b] = S_aᵀ · I^c(link(b)) · S_b` for `a` an
    /// ancestor DoF of `b`.
    fn composite_inertia(&mut self, tree: &Tree) {
        self.composite.copy_from_slice(&self.spatial_inertia);
        for i in (0..tree.links.len()).rev() {
            if let Some(p) = tree.links[i].parent {
                let c = self.composite[i];
                self.composite[p] += c;
            }
        }
        self.mass.fill(0.0);
        for b in 0..tree.nv {
            let link = tree.dof_link[b];
            let f = self.composite[link] * self.s[b];
            for &a in &tree.link_dofs[link] {
                if a > b {
                    break;
                }
                let m = self.s[a].dot(&f);
                self.mass[(a, b)] = m;
                self.mass[(b, a)] = m;
            }
        }
        for d in 0..tree.nv {
            self.mass[(d, d)] += tree.armature[d];
        }
    }

    /// Factors `mass` into `factor`.
    fn factor(&mut self) {
        // `mass` is symmetric: its column-major storage reads as row-major.
        self.factor.copy_from_slice(self.mass.as_slice());
        self.factor_in_place();
    }

    /// Refactors for `M + diag(extra)` (MuJoCo's implicit damping); `mass` is kept.
    pub fn refactor_with_diagonal(&mut self, extra: &[f64]) {
        self.factor.copy_from_slice(self.mass.as_slice());
        let n = extra.len();
        for (d, x) in extra.iter().enumerate() {
            self.factor[d * n + d] += x;
        }
        self.factor_in_place();
    }

    /// `M = Lᵀ·D·L` from the leaves up, as MuJoCo's `mj_factorM`: eliminating DoF `k` only
    /// updates the entries among its ancestors, so the tree's sparsity is kept.
    fn factor_in_place(&mut self) {
        let n = self.inv_d.len();
        let h = &mut self.factor;
        for k in (0..n).rev() {
            let dk = h[k * n + k].max(1e-12);
            let anc = &self.ancestors[k];
            // Nearest ancestor first: row k's entries further up are still unscaled when used.
            for p in (0..anc.len()).rev() {
                let i = anc[p];
                let a = h[k * n + i] / dk;
                for &j in &anc[..=p] {
                    h[i * n + j] -= a * h[k * n + j];
                }
                h[k * n + i] = a;
            }
            self.inv_d[k] = 1.0 / dk;
            self.inv_sqrt_d[k] = dk.sqrt().recip();
        }
    }

    /// `b ← L⁻ᵀ·b`: from the leaves up, each DoF's value is final once its descendants are done.
    fn solve_upper(&self, b: &mut [f64]) {
        let n = b.len();
        for k in (0..n).rev() {
            let bk = b[k];
            if bk != 0.0 {
                for &i in &self.ancestors[k] {
                    b[i] -= self.factor[k * n + i] * bk;
                }
            }
        }
    }

    /// Solves `M x = b` in place with the factor: `x = L⁻¹·D⁻¹·L⁻ᵀ·b`.
    pub fn solve(&self, b: &mut [f64]) {
        self.solve_upper(b);
        let n = b.len();
        for k in 0..n {
            b[k] *= self.inv_d[k];
        }
        for k in 0..n {
            let s: f64 = self.ancestors[k].iter().map(|&i| self.factor[k * n + i] * b[i]).sum();
            b[k] -= s;
        }
    }

    /// `b ← D^-½·L⁻ᵀ·b`, half of `M⁻¹`: for two rows `j`, `k` so transformed, `j·M⁻¹·kᵀ` is
    /// their dot product. A Jacobian row of a point on a link stays on that link's DoFs and
    /// their ancestors.
    pub fn half_solve(&self, b: &mut [f64]) {
        self.solve_upper(b);
        for (x, s) in b.iter_mut().zip(&self.inv_sqrt_d) {
            *x *= s;
        }
    }

    /// Recursive Newton–Euler with `q̈ = 0`: Coriolis, centrifugal and gravity forces.
    fn bias_forces(&mut self, tree: &Tree, v: &[f64]) {
        let base_acc = motion(Vector3::zeros(), -tree.gravity);
        for (i, l) in tree.links.iter().enumerate() {
            let (pv, pa) = l.parent.map_or((Motion::zeros(), base_acc), |p| (self.vel[p], self.acc[p]));
            let mut vel = pv;
            for d in l.dof..l.dof + l.joint.nv() {
                vel += self.s[d] * v[d];
            }
            let mut acc = pa;
            match l.joint {
                LinkJoint::Free => {
                    // S of the angular DoFs moves with the root origin: Ṡ·q̇ = (0, v_root × ω).
                    let v_root = Vector3::new(v[l.dof], v[l.dof + 1], v[l.dof + 2]);
                    let w = Vector3::new(v[l.dof + 3], v[l.dof + 4], v[l.dof + 5]);
                    acc += motion(Vector3::zeros(), v_root.cross(&w));
                }
                LinkJoint::Hinge | LinkJoint::Slide => acc += cross_motion(&vel, &(self.s[l.dof] * v[l.dof])),
                LinkJoint::Fixed => {}
            }
            self.vel[i] = vel;
            self.acc[i] = acc;
            let inertia = &self.spatial_inertia[i];
            self.force[i] = inertia * acc + cross_force(&vel, &(inertia * vel));
        }
        for i in (0..tree.links.len()).rev() {
            if let Some(p) = tree.links[i].parent {
                let f = self.force[i];
                self.force[p] += f;
            }
        }
        for d in 0..tree.nv {
            self.bias[d] = self.s[d].dot(&self.force[tree.dof_link[d]]);
        }
    }

    /// A link's spatial velocity `(ω, v_O)` at the state of the last update.
    pub fn velocity(&self, link: usize) -> &Motion {
        &self.vel[link]
    }

    /// Row of the Jacobian mapping `q̇` to the velocity of world point `x` on `link` along
    /// `dir`, written into `out` (length nv).
    pub fn point_jacobian(&self, tree: &Tree, link: usize, x: &Vector3<f64>, dir: &Vector3<f64>, sign: f64, out: &mut [f64]) {
        let moment = x.cross(dir);
        for &d in &tree.link_dofs[link] {
            let s = &self.s[d];
            out[d] += sign * (lin(s).dot(dir) + ang(s).dot(&moment));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pendulum: one hinge about y at the origin, a point mass 1 kg at distance 1 below.
    fn pendulum() -> Tree {
        let rot_x_to_y = UnitQuaternion::from_axis_angle(&Vector3::z_axis(), std::f64::consts::FRAC_PI_2);
        let frame = Isometry3::from_parts(Translation3::identity(), rot_x_to_y);
        let world = Link {
            parent: None,
            joint: LinkJoint::Fixed,
            frame1: Isometry3::identity(),
            frame2_inv: Isometry3::identity(),
            mass: 0.0,
            com: Vector3::zeros(),
            inertia: Matrix3::zeros(),
            dof: 0,
            qadr: 0,
        };
        let bob = Link {
            parent: Some(0),
            joint: LinkJoint::Hinge,
            frame1: frame,
            frame2_inv: frame.inverse(),
            mass: 1.0,
            com: Vector3::new(0.0, 0.0, -1.0),
            inertia: Matrix3::zeros(),
            dof: 0,
            qadr: 0,
        };
        Tree::new(vec![world, bob], Vector3::new(0.0, 0.0, -9.81))
    }

    #[test]
    fn pendulum_inertia_and_gravity_torque() {
        let tree = pendulum();
        let mut kin = Kinematics::new(&tree);
        let theta = 0.3;
        kin.update(&tree, &[theta], &[0.0]);
        assert!((kin.mass[(0, 0)] - 1.0).abs() < 1e-12, "m·l² = 1");
        // Rotation about +y by θ moves the bob to x = −sin θ; gravity pulls it back.
        assert!((kin.com[1].x + theta.sin()).abs() < 1e-12);
        assert!((kin.bias[0] - 9.81 * theta.sin()).abs() < 1e-9, "bias {}", kin.bias[0]);
        // Centrifugal terms vanish for one DoF.
        kin.update(&tree, &[theta], &[2.0]);
        assert!((kin.bias[0] - 9.81 * theta.sin()).abs() < 1e-9);
    }
}
