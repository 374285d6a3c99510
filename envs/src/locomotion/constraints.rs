//! MuJoCo's soft constraints: joint limits and contacts.
//!
//! Every active constraint row `i` has MuJoCo's reference acceleration
//! `a_ref = −B·(J_i·q̇) − K·imp·pos` and regulariser `R = (1 − imp)/imp · invweight`; the
//! forces minimise `½fᵀ(A + R)f + fᵀ(J·a₀ − a_ref)` over `f ≥ 0` with `A = J·M⁻¹·Jᵀ` and `a₀`
//! the acceleration without constraints. The problem is strictly convex (`R > 0`); it is
//! solved exactly as a small complementarity problem by block principal pivoting ([`Lcp`]),
//! with projected Gauss–Seidel sweeps only where pivoting cycles.
//!
//! - A joint past its range gives one row `J = ±e_dof` with `invweight = dof_invweight0`.
//! - A contact gives the pyramid edges `J_n ± μ·J_t` with `invweight = (1 + μ²)·t·2μ²`, `t`
//!   the summed translational `body_invweight0` of the two bodies (one normal row with
//!   `invweight = t` when frictionless).

#![allow(clippy::needless_range_loop)] // index-parallel numeric loops read better with indices

use rapier3d::na::{DMatrix, Vector3};

use super::articulated::{Kinematics, Tree, dot};
use super::collision::{Contact, ContactPair, Geom, Placed, find_contacts};

/// Projected Gauss–Seidel sweeps where block pivoting cycles (rare: the problems are small
/// and strictly convex).
const FALLBACK_SWEEPS: usize = 50;

/// MuJoCo's defaults for `solref` / `solimp`.
pub const DEFAULT_SOLREF: [f64; 2] = [0.02, 1.0];
pub const DEFAULT_SOLIMP: [f64; 5] = [0.9, 0.95, 0.001, 0.5, 2.0];

/// MuJoCo's impedance `imp(x)` for a violation `x ≥ 0` (metres or radians).
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

/// MuJoCo's `K` and `B` of `a_ref = −B·v − K·imp·r` for a positive `solref`, with the time
/// constant kept above two timesteps as MuJoCo keeps it.
pub fn stiffness_damping(solref: &[f64; 2], solimp: &[f64; 5], timestep: f64) -> (f64, f64) {
    let [timeconst, dampratio] = *solref;
    let timeconst = timeconst.max(2.0 * timestep);
    let dmax = solimp[1].clamp(1e-4, 0.9999);
    (1.0 / (dmax * dmax * timeconst * timeconst * dampratio * dampratio), 2.0 / (dmax * timeconst))
}

/// A hinge's range as a soft constraint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JointLimit {
    pub dof: usize,
    /// Coordinate index of the joint.
    pub qadr: usize,
    /// Range in the joint coordinate.
    pub lo: f64,
    pub hi: f64,
    pub solref: [f64; 2],
    pub solimp: [f64; 5],
    /// MuJoCo's `dof_invweight0`.
    pub invweight: f64,
}

#[derive(Debug, Clone, Copy)]
struct Row {
    /// `J·a₀ − a_ref` and the regulariser `R`.
    rhs: f64,
    reg: f64,
}

/// The model's soft constraints; buffers are reused between evaluations.
#[derive(Debug, Clone)]
pub struct SoftConstraints {
    pub floor_z: f64,
    pub geoms: Vec<Geom>,
    pub pairs: Vec<ContactPair>,
    pub limits: Vec<JointLimit>,
    pub timestep: f64,
    rows: Vec<Row>,
    /// The rows' Jacobians `J` and their halves of `M⁻¹` ([`Kinematics::half_solve`]),
    /// row-major `n × nv`.
    jac: Vec<f64>,
    half_jt: Vec<f64>,
    a: DMatrix<f64>,
    force: Vec<f64>,
    scratch: Vec<f64>,
    rhs: Vec<f64>,
    contacts: Vec<Contact>,
    placed: Vec<Placed>,
    active_limits: Vec<(usize, f64, f64)>,
    lcp: Lcp,
}

impl SoftConstraints {
    pub fn new(floor_z: f64, geoms: Vec<Geom>, pairs: Vec<ContactPair>, limits: Vec<JointLimit>, timestep: f64) -> Self {
        Self {
            floor_z,
            geoms,
            pairs,
            limits,
            timestep,
            rows: Vec::new(),
            jac: Vec::new(),
            half_jt: Vec::new(),
            a: DMatrix::zeros(0, 0),
            force: Vec::new(),
            scratch: Vec::new(),
            rhs: Vec::new(),
            contacts: Vec::new(),
            placed: Vec::new(),
            active_limits: Vec::new(),
            lcp: Lcp::default(),
        }
    }

    /// Solves the active constraints at the state `kin` was updated to (velocities `v`,
    /// unconstrained acceleration `a0`). Writes the constraint's generalized force into
    /// `tau` and the acceleration it causes, `M⁻¹·τ`, into `accel`.
    #[allow(clippy::too_many_arguments)]
    pub fn solve(&mut self, tree: &Tree, kin: &Kinematics, q: &[f64], v: &[f64], a0: &[f64], tau: &mut [f64], accel: &mut [f64]) {
        let nv = tree.nv;
        tau.fill(0.0);
        accel.fill(0.0);
        let mut contacts = std::mem::take(&mut self.contacts);
        find_contacts(&self.geoms, &self.pairs, self.floor_z, kin, &mut self.placed, &mut contacts);
        let mut active_limits = std::mem::take(&mut self.active_limits);
        active_limits.clear();
        active_limits.extend(self.limits.iter().enumerate().filter_map(|(i, l)| {
            let x = q[l.qadr];
            let (lo, hi) = (x - l.lo, l.hi - x);
            (lo.min(hi) < 0.0).then_some((i, lo.min(hi), if lo < hi { 1.0 } else { -1.0 }))
        }));
        let edges = |c: &Contact| if self.pairs[c.pair].friction > 0.0 { 4 } else { 1 };
        let n = active_limits.len() + contacts.iter().map(edges).sum::<usize>();
        self.force.clear();
        if n == 0 {
            self.contacts = contacts;
            self.active_limits = active_limits;
            return;
        }
        if self.a.nrows() != n {
            self.a = DMatrix::zeros(n, n);
        }
        self.jac.clear();
        self.jac.resize(n * nv, 0.0);
        self.rows.clear();
        self.scratch.resize(nv, 0.0);

        let mut row = 0;
        let push_row = |this: &mut Self, row: usize, pos: f64, solref: &[f64; 2], solimp: &[f64; 5], invweight: f64| {
            let j = &this.jac[row * nv..(row + 1) * nv];
            let (vel, acc0) = (dot(j, v), dot(j, a0));
            let imp = impedance(solimp, pos.abs());
            let (k, b) = stiffness_damping(solref, solimp, this.timestep);
            let a_ref = -b * vel - k * imp * pos;
            this.rows.push(Row { rhs: acc0 - a_ref, reg: ((1.0 - imp) / imp * invweight).max(1e-15) });
        };
        for &(i, pos, sign) in &active_limits {
            let l = self.limits[i];
            self.jac[row * nv + l.dof] = sign;
            push_row(self, row, pos, &l.solref, &l.solimp, l.invweight);
            row += 1;
        }
        for c in &contacts {
            let pair = &self.pairs[c.pair];
            let (solref, solimp, margin, pair_invweight, mu, other, geom) =
                (pair.solref, pair.solimp, pair.margin, pair.invweight, pair.friction, pair.other, pair.geom);
            let g_link = self.geoms[geom].link;
            let (link1, link2) = match other {
                None => (None, g_link),
                Some(o) => (Some(g_link), self.geoms[o].link),
            };
            let (dirs, edges) = pyramid(c, mu);
            let invweight = if mu > 0.0 { (1.0 + mu * mu) * pair_invweight * 2.0 * mu * mu } else { pair_invweight };
            for dir in &dirs[..edges] {
                // Relative velocity of the second body with respect to the first.
                self.scratch.fill(0.0);
                kin.point_jacobian(tree, link2, &c.point, dir, 1.0, &mut self.scratch);
                if let Some(l1) = link1 {
                    kin.point_jacobian(tree, l1, &c.point, dir, -1.0, &mut self.scratch);
                }
                self.jac[row * nv..(row + 1) * nv].copy_from_slice(&self.scratch);
                push_row(self, row, c.dist - margin, &solref, &solimp, invweight);
                row += 1;
            }
        }

        // A = J·M⁻¹·Jᵀ = YᵀY with Y = D^-½·L⁻ᵀ·Jᵀ: one sparse solve per row, then dot products.
        self.half_jt.clone_from(&self.jac);
        for row in self.half_jt.chunks_exact_mut(nv) {
            kin.half_solve(row);
        }
        let y = &self.half_jt;
        for i in 0..n {
            let yi = &y[i * nv..(i + 1) * nv];
            for j in 0..=i {
                let aij = dot(yi, &y[j * nv..(j + 1) * nv]);
                self.a[(i, j)] = aij;
                self.a[(j, i)] = aij;
            }
            self.a[(i, i)] += self.rows[i].reg;
        }
        self.rhs.clear();
        self.rhs.extend(self.rows.iter().map(|r| r.rhs));
        self.force.clear();
        self.force.resize(n, 0.0);
        if !self.lcp.solve(&self.a, &self.rhs, &mut self.force) {
            projected_gauss_seidel(&self.a, &self.rhs, &mut self.force, FALLBACK_SWEEPS);
        }
        self.contacts = contacts;
        self.active_limits = active_limits;
        for (i, &f) in self.force.iter().enumerate() {
            if f > 0.0 {
                for (t, j) in tau.iter_mut().zip(&self.jac[i * nv..(i + 1) * nv]) {
                    *t += j * f;
                }
            }
        }
        accel.copy_from_slice(tau);
        kin.solve(accel);
    }
}

/// A contact's friction pyramid: the directions of its rows (`n ± μ·t₁`, `n ± μ·t₂`; the
/// normal alone when frictionless) and how many there are.
fn pyramid(c: &Contact, mu: f64) -> ([Vector3<f64>; 4], usize) {
    let (t1, t2) = (c.tangent, c.normal.cross(&c.tangent));
    let dirs = [c.normal + t1 * mu, c.normal - t1 * mu, c.normal + t2 * mu, c.normal - t2 * mu];
    (dirs, if mu > 0.0 { 4 } else { 1 })
}

/// The force one contact of the last solve applies: `force` (world frame) acts on the second
/// link at `point`, its opposite on the first (None: the floor).
#[derive(Debug, Clone, Copy)]
pub struct ContactForce {
    pub link1: Option<usize>,
    pub link2: usize,
    pub point: Vector3<f64>,
    pub force: Vector3<f64>,
}

impl SoftConstraints {
    /// The contact forces of the last [`SoftConstraints::solve`].
    pub fn contact_forces(&self) -> impl Iterator<Item = ContactForce> + '_ {
        let mut row = self.active_limits.len();
        self.contacts.iter().map(move |c| {
            let pair = &self.pairs[c.pair];
            let (dirs, edges) = pyramid(c, pair.friction);
            let force = (0..edges).fold(Vector3::zeros(), |sum, k| sum + dirs[k] * self.force.get(row + k).copied().unwrap_or(0.0));
            row += edges;
            let g_link = self.geoms[pair.geom].link;
            let (link1, link2) = match pair.other {
                None => (None, g_link),
                Some(o) => (Some(g_link), self.geoms[o].link),
            };
            ContactForce { link1, link2, point: c.point, force }
        })
    }
}

/// Minimises `½fᵀHf + fᵀb` over `f ≥ 0` for symmetric positive definite `H` by block
/// principal pivoting: guess which forces are positive, solve that block exactly, move the
/// rows that violate the optimality conditions, repeat. Small problems settle in a few
/// pivots; the buffers are reused between calls.
#[derive(Debug, Clone, Default)]
struct Lcp {
    free: Vec<bool>,
    idx: Vec<usize>,
    block: Vec<f64>,
    x: Vec<f64>,
    inv_diag: Vec<f64>,
    infeasible: Vec<usize>,
}

impl Lcp {
    /// True when `f` is the exact solution.
    fn solve(&mut self, h: &DMatrix<f64>, b: &[f64], f: &mut [f64]) -> bool {
        let n = b.len();
        // The first guess: the last solution's positive forces when the rows are the same
        // kind (the contact set rarely changes between evaluations), else the rows pushed into.
        if self.free.len() != n {
            self.free.clear();
            self.free.extend(b.iter().map(|&bi| bi < 0.0));
        }
        let mut best_infeasible = usize::MAX;
        let mut stalls = 0;
        for _ in 0..4 * n + 10 {
            self.idx.clear();
            self.idx.extend((0..n).filter(|&i| self.free[i]));
            f.fill(0.0);
            let m = self.idx.len();
            if m > 0 {
                self.block.clear();
                self.block.resize(m * m, 0.0);
                for (r, &i) in self.idx.iter().enumerate() {
                    for (c, &j) in self.idx.iter().enumerate() {
                        self.block[r * m + c] = h[(i, j)];
                    }
                }
                self.x.clear();
                self.x.extend(self.idx.iter().map(|&i| -b[i]));
                if !cholesky_solve(&mut self.block, m, &mut self.x, &mut self.inv_diag) {
                    return false;
                }
                for (r, &i) in self.idx.iter().enumerate() {
                    f[i] = self.x[r];
                }
            }
            self.infeasible.clear();
            for i in 0..n {
                let violated = if self.free[i] {
                    f[i] < 0.0
                } else {
                    let w: f64 = b[i] + self.idx.iter().map(|&j| h[(i, j)] * f[j]).sum::<f64>();
                    w < -1e-12 * (1.0 + b[i].abs())
                };
                if violated {
                    self.infeasible.push(i);
                }
            }
            if self.infeasible.is_empty() {
                return true;
            }
            // Pivot the whole block while that makes progress, else one row at a time (Murty).
            if self.infeasible.len() < best_infeasible {
                best_infeasible = self.infeasible.len();
                stalls = 0;
            } else {
                stalls += 1;
            }
            if stalls < 3 {
                for &i in &self.infeasible {
                    self.free[i] = !self.free[i];
                }
            } else if let Some(&i) = self.infeasible.last() {
                self.free[i] = !self.free[i];
            }
        }
        false
    }
}

/// Solves `A x = b` for SPD `A` (row-major `m × m`, overwritten by its factor; `inv_diag`
/// scratch for the factor's inverted diagonal) in place.
fn cholesky_solve(a: &mut [f64], m: usize, x: &mut [f64], inv_diag: &mut Vec<f64>) -> bool {
    inv_diag.resize(m, 0.0);
    for i in 0..m {
        let (above, rest) = a.split_at_mut(i * m);
        let row = &mut rest[..m];
        for j in 0..i {
            let row_j = &above[j * m..j * m + m];
            row[j] = (row[j] - dot(&row[..j], &row_j[..j])) * inv_diag[j];
        }
        let d = row[i] - dot(&row[..i], &row[..i]);
        if d <= 0.0 {
            return false;
        }
        row[i] = d.sqrt();
        inv_diag[i] = 1.0 / row[i];
    }
    for i in 0..m {
        let row = &a[i * m..i * m + m];
        x[i] = (x[i] - dot(&row[..i], &x[..i])) * inv_diag[i];
    }
    for i in (0..m).rev() {
        let row = &a[i * m..i * m + m];
        x[i] *= inv_diag[i];
        let xi = x[i];
        for (xk, l) in x[..i].iter_mut().zip(&row[..i]) {
            *xk -= l * xi;
        }
    }
    true
}

/// Projected Gauss–Seidel for the same problem (the fallback).
fn projected_gauss_seidel(h: &DMatrix<f64>, b: &[f64], f: &mut [f64], iterations: usize) {
    let n = b.len();
    f.fill(0.0);
    for _ in 0..iterations {
        let mut change = 0.0f64;
        for i in 0..n {
            let residual = b[i] + (0..n).map(|j| h[(i, j)] * f[j]).sum::<f64>();
            let new = (f[i] - residual / h[(i, i)]).max(0.0);
            change = change.max((new - f[i]).abs());
            f[i] = new;
        }
        if change < 1e-12 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_set_solves_the_complementarity_problem() {
        // H = [[2, 1, 0], [1, 2, 1], [0, 1, 2]], b = [-1, 2, -3]: optimum has f1 = 0.
        let h = DMatrix::from_row_slice(3, 3, &[2.0, 1.0, 0.0, 1.0, 2.0, 1.0, 0.0, 1.0, 2.0]);
        let b = [-1.0, 2.0, -3.0];
        let mut f = [0.0; 3];
        assert!(Lcp::default().solve(&h, &b, &mut f));
        assert!((f[0] - 0.5).abs() < 1e-12 && f[1] == 0.0 && (f[2] - 1.5).abs() < 1e-12, "{f:?}");
        // Complementarity: w = Hf + b ≥ 0, f ≥ 0, f·w = 0; PGS agrees.
        let mut g = [0.0; 3];
        projected_gauss_seidel(&h, &b, &mut g, 500);
        assert!(f.iter().zip(&g).all(|(a, b)| (a - b).abs() < 1e-9), "{g:?}");
    }

    #[test]
    fn impedance_ramps_from_d0_to_dmax_over_width() {
        let solimp = [0.0, 0.8, 0.03, 0.5, 2.0];
        assert_eq!(impedance(&solimp, 0.0), 1e-4, "d0 is clamped to MuJoCo's mjMINIMP");
        assert!((impedance(&solimp, 0.015) - (1e-4 + 0.5 * (0.8 - 1e-4))).abs() < 1e-12);
        assert_eq!(impedance(&solimp, 0.5), 0.8);
        assert_eq!(impedance(&DEFAULT_SOLIMP, 1.0), 0.95);
    }

    #[test]
    fn stiffness_and_damping_follow_solref() {
        let (k, b) = stiffness_damping(&[0.02, 1.0], &DEFAULT_SOLIMP, 0.002);
        assert!((k - 1.0 / (0.95f64.powi(2) * 0.02f64.powi(2))).abs() < 1e-9);
        assert!((b - 2.0 / (0.95 * 0.02)).abs() < 1e-12);
        // A time constant below two timesteps is raised to it.
        assert_eq!(stiffness_damping(&[0.001, 1.0], &DEFAULT_SOLIMP, 0.01), stiffness_damping(&[0.02, 1.0], &DEFAULT_SOLIMP, 0.01));
    }
}

