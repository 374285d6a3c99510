//! MuJoCo's soft contacts between the model and its floor plane.
//!
//! rapier's contacts are near-rigid and anchor friction to the contact point, so bodies never
//! creep; MuJoCo's are soft constraints. The floor carries almost all the contact of a
//! locomotion task, so its contacts are computed here the way MuJoCo computes them and applied
//! as forces, while rapier keeps the articulated dynamics (and any body–body contacts).
//!
//! Per contact MuJoCo builds a pyramidal friction cone of `2·(condim − 1)` edges,
//! `J_e = J_n ± μ·J_t`, each a unilateral soft constraint with reference acceleration
//! `a_ref = −B·(J_e·q̇) − K·imp·(dist − margin)` and regulariser `R = (1 − imp)/imp · A_ee`;
//! the forces minimise `½fᵀ(A + R)f + fᵀ(J·a₀ − a_ref)` over `f ≥ 0`, with `A = J·M⁻¹·Jᵀ`.
//! That small problem is solved here by projected Gauss–Seidel, with `M⁻¹` from rapier's
//! multibody and `a₀` the acceleration without contacts (gravity, actuators, limits).

use rapier3d::na::{DMatrix, DVector};
use rapier3d::prelude::*;

/// A geom that can touch the floor, in its body's frame.
#[derive(Debug, Clone, Copy)]
pub struct FloorGeom {
    pub body: RigidBodyHandle,
    /// Multibody link of `body`.
    pub link: usize,
    /// Segment end points (equal for a sphere) and radius, in the body frame.
    pub a: Vector,
    pub b: Vector,
    pub radius: f32,
    /// Pair parameters, already mixed with the floor's as MuJoCo mixes them.
    pub friction: f32,
    pub margin: f32,
    pub solref: [f64; 2],
    pub solimp: [f64; 5],
    /// MuJoCo's `diagApprox` of a pyramid edge, `(1 + μ²)·body_invweight0[translation]`: sets
    /// the regulariser, so the body's contacts share one compliance.
    pub diag_approx: f64,
}

/// MuJoCo's translational `body_invweight0` of a link: the mean of `J·M⁻¹·Jᵀ` over the
/// three directions of its centre of mass, at the current pose.
pub fn translational_invweight(mb: &Multibody, link: usize) -> f64 {
    let bj = mb.body_jacobian(link);
    let mut total = 0.0;
    for axis in 0..3 {
        let row = bj.row(axis).transpose();
        let mut x = row.clone();
        mb.inv_augmented_mass().solve_mut(&mut x);
        total += row.dot(&x) as f64;
    }
    total / 3.0
}

/// MuJoCo's impedance `imp(x)` for a violation `x` (metres or radians, ≥ 0).
pub fn impedance(solimp: &[f64; 5], x: f64) -> f64 {
    let [d0, dmax, width, mid, power] = *solimp;
    // MuJoCo's clamps (mjMINIMP, mjMAXIMP, mjMINVAL).
    let (d0, dmax) = (d0.clamp(1e-4, 0.9999), dmax.clamp(1e-4, 0.9999));
    let (mid, power) = (mid.clamp(1e-4, 0.9999), power.max(1.0));
    let x = x / width.max(1e-15);
    if x >= 1.0 {
        return dmax;
    }
    let y = if x <= mid {
        x.powf(power) / mid.powf(power - 1.0)
    } else {
        1.0 - (1.0 - x).powf(power) / (1.0 - mid).powf(power - 1.0)
    };
    (d0 + y * (dmax - d0)).clamp(d0.min(dmax), d0.max(dmax))
}

/// MuJoCo's `K` and `B` of `a_ref = −B·v − K·imp·r` for a positive `solref`.
pub fn stiffness_damping(solref: &[f64; 2], solimp: &[f64; 5]) -> (f64, f64) {
    let [timeconst, dampratio] = *solref;
    let dmax = solimp[1].clamp(1e-4, 0.9999);
    (1.0 / (dmax * dmax * timeconst * timeconst * dampratio * dampratio), 2.0 / (dmax * timeconst))
}

#[derive(Debug, Clone, Copy)]
struct Row {
    body: RigidBodyHandle,
    point: Vector,
    dir: Vector,
    /// Right-hand side `J·a₀ − a_ref` and regulariser `R`.
    rhs: f64,
    reg: f64,
}

/// The floor and everything that touches it; buffers are reused between steps.
#[derive(Debug, Clone)]
pub struct FloorContacts {
    pub floor_z: f32,
    pub geoms: Vec<FloorGeom>,
    pub pgs_iterations: usize,
    rows: Vec<Row>,
    jac: DMatrix<f32>,
    minv_jt: DMatrix<f32>,
    force: Vec<f64>,
}

impl FloorContacts {
    pub fn new(floor_z: f32, geoms: Vec<FloorGeom>) -> Self {
        Self {
            floor_z,
            geoms,
            pgs_iterations: 30,
            rows: Vec::new(),
            jac: DMatrix::zeros(0, 0),
            minv_jt: DMatrix::zeros(0, 0),
            force: Vec::new(),
        }
    }

    /// Computes the contact forces for the current state and adds them to the bodies.
    /// `a0` is the generalized acceleration without contacts. Writes into `contact_accel`
    /// the generalized acceleration the contact forces cause, `M⁻¹·Jᵀ·f`.
    pub fn apply(&mut self, mb: &Multibody, bodies: &mut RigidBodySet, a0: &DVector<f32>, contact_accel: &mut DVector<f32>) {
        self.rows.clear();
        contact_accel.fill(0.0);
        let ndofs = mb.ndofs();
        let qdot = mb.generalized_velocity();
        let up = Vector::Z;
        let (tx, ty) = (Vector::X, Vector::Y);

        // Contact points and pyramid rows.
        let mut contacts: Vec<(usize, Vector, f64)> = Vec::new();
        for (gi, g) in self.geoms.iter().enumerate() {
            let pose = bodies[g.body].position();
            let (wa, wb) = (pose * g.a, pose * g.b);
            let ends: &[Vector] = if g.a == g.b { &[wa] } else { &[wa, wb] };
            for &e in ends {
                let dist = (e.z - g.radius - self.floor_z) as f64;
                if dist < g.margin as f64 {
                    contacts.push((gi, Vector::new(e.x, e.y, e.z - g.radius - dist as f32 * 0.5), dist));
                }
            }
        }
        if contacts.is_empty() {
            return;
        }
        let edges = |gi: usize| if self.geoms[gi].friction > 0.0 { 4 } else { 1 };
        let n_rows: usize = contacts.iter().map(|&(gi, _, _)| edges(gi)).sum();
        if self.jac.nrows() != n_rows || self.jac.ncols() != ndofs {
            self.jac = DMatrix::zeros(n_rows, ndofs);
            self.minv_jt = DMatrix::zeros(ndofs, n_rows);
        }
        let mut row = 0;
        for &(gi, point, dist) in &contacts {
            let g = self.geoms[gi];
            let body = &bodies[g.body];
            let r = point - body.center_of_mass();
            let bj = mb.body_jacobian(g.link);
            let mu = g.friction;
            let imp = impedance(&g.solimp, (dist - g.margin as f64).abs());
            let (k, b) = stiffness_damping(&g.solref, &g.solimp);
            // MuJoCo's pyramid: edges J_n ± μ·J_t; a frictionless contact is its normal alone.
            let pyramid = [up + tx * mu, up - tx * mu, up + ty * mu, up - ty * mu];
            for &dir in &pyramid[..edges(gi)] {
                let torque = r.cross(dir);
                let wrench = [dir.x, dir.y, dir.z, torque.x, torque.y, torque.z];
                for d in 0..ndofs {
                    let col = bj.column(d);
                    self.jac[(row, d)] = (0..6).map(|i| col[i] * wrench[i]).sum();
                }
                let mut col = self.jac.row(row).transpose();
                mb.inv_augmented_mass().solve_mut(&mut col);
                self.minv_jt.set_column(row, &col);
                let vel = self.jac.row(row).dot(&qdot.transpose()) as f64;
                let acc0 = self.jac.row(row).dot(&a0.transpose()) as f64;
                let a_ref = -b * vel - k * imp * (dist - g.margin as f64);
                self.rows.push(Row {
                    body: g.body,
                    point,
                    dir,
                    rhs: acc0 - a_ref,
                    reg: ((1.0 - imp) / imp * g.diag_approx).max(1e-15),
                });
                row += 1;
            }
        }

        // Projected Gauss–Seidel on the soft pyramid rows.
        let a = &self.jac * &self.minv_jt;
        self.force.clear();
        self.force.resize(n_rows, 0.0);
        for _ in 0..self.pgs_iterations {
            let mut change = 0.0f64;
            for i in 0..n_rows {
                let row = &self.rows[i];
                let diag = a[(i, i)] as f64 + row.reg;
                if diag <= 0.0 {
                    continue;
                }
                let mut residual = row.rhs + row.reg * self.force[i];
                for j in 0..n_rows {
                    residual += a[(i, j)] as f64 * self.force[j];
                }
                let new = (self.force[i] - residual / diag).max(0.0);
                change = change.max((new - self.force[i]).abs());
                self.force[i] = new;
            }
            if change < 1e-9 {
                break;
            }
        }
        for (i, (row, &f)) in self.rows.iter().zip(&self.force).enumerate() {
            if f > 0.0 {
                contact_accel.axpy(f as f32, &self.minv_jt.column(i), 1.0);
                bodies[row.body].add_force_at_point(row.dir * f as f32, row.point, false);
            }
        }
    }
}
