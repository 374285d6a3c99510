//! MuJoCo's soft joint limits, as generalized forces.
//!
//! rapier's limits are position corrections that never overshoot. MuJoCo's are unilateral
//! soft constraints: while a joint is past its limit the solver pushes it back towards the
//! reference acceleration `a_ref = −B·v − K·imp(r)·r` with impedance `imp` blending it with the
//! unconstrained motion, and the force may only push (never pull). When the joint moves out
//! fast the damping term turns the force off, so a joint that starts far outside its range
//! (Ant's ankles) is thrown well past it, exactly as in MuJoCo.
//!
//! For one constraint with diagonal inverse inertia `A` (MuJoCo's `dof_invweight0`), MuJoCo's
//! force is `f = imp/A · (a_ref − A·τ_ext)`, clamped to push only; `τ_ext` is the generalized
//! force on the joint that the constraint must resist, of which the actuator is the part
//! known here.

use super::floor_contact::{impedance, stiffness_damping};

/// MuJoCo's `solref` (time constant, damping ratio) and `solimp` (d0, dmax, width, midpoint,
/// power) of one limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoftLimit {
    /// Limits in rapier's coordinate (MuJoCo's range minus the joint's `ref`).
    pub lo: f64,
    pub hi: f64,
    pub solref: [f64; 2],
    pub solimp: [f64; 5],
    /// 1 / dof_invweight0 at the initial pose.
    pub inertia: f64,
}

/// MuJoCo's defaults for `solreflimit` / `solimplimit`.
pub const DEFAULT_SOLREF: [f64; 2] = [0.02, 1.0];
pub const DEFAULT_SOLIMP: [f64; 5] = [0.9, 0.95, 0.001, 0.5, 2.0];

impl SoftLimit {
    /// Generalized force of the limit at position `q`, velocity `v`, with `tau_ext` applied
    /// to the joint by the actuator.
    pub fn force(&self, q: f64, v: f64, tau_ext: f64) -> f64 {
        // Work in the frame where the limit pushes in the + direction.
        let (r, v, tau, sign) = if q < self.lo {
            (q - self.lo, v, tau_ext, 1.0)
        } else if q > self.hi {
            (self.hi - q, -v, -tau_ext, -1.0)
        } else {
            return 0.0;
        };
        let imp = impedance(&self.solimp, -r);
        let (k, b) = stiffness_damping(&self.solref, &self.solimp);
        let a_ref = -b * v - k * imp * r;
        sign * (imp * (self.inertia * a_ref - tau)).max(0.0)
    }
}

/// A limit's force split for implicit integration: a spring towards `rest` and a damper,
/// which rapier integrates implicitly, plus an explicit part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImplicitLimit {
    pub stiffness: f64,
    pub damping: f64,
    pub rest: f64,
    pub explicit: f64,
}

impl SoftLimit {
    /// The active limit as spring + damper + explicit force, or None when it does not push.
    pub fn implicit(&self, q: f64, v: f64, tau_ext: f64) -> Option<ImplicitLimit> {
        if self.force(q, v, tau_ext) == 0.0 {
            return None;
        }
        let (r, rest, sign) = if q < self.lo { (q - self.lo, self.lo, 1.0) } else { (self.hi - q, self.hi, -1.0) };
        let imp = impedance(&self.solimp, -r);
        let (k, b) = stiffness_damping(&self.solref, &self.solimp);
        let _ = sign;
        Some(ImplicitLimit {
            stiffness: self.inertia * imp * imp * k,
            damping: self.inertia * imp * b,
            rest,
            explicit: -imp * tau_ext,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit() -> SoftLimit {
        SoftLimit { lo: 0.5, hi: 1.2, solref: DEFAULT_SOLREF, solimp: DEFAULT_SOLIMP, inertia: 1.0 }
    }

    #[test]
    fn pushes_only_when_violated_and_never_pulls() {
        let l = limit();
        assert_eq!(l.force(0.8, 0.0, 0.0), 0.0);
        // Past the lower limit at rest: K·imp²·|r| with K = 1/(0.95²·0.02²).
        let k = 1.0 / (0.95f64.powi(2) * 0.0004);
        assert!((l.force(0.4, 0.0, 0.0) - 0.95 * 0.95 * k * 0.1).abs() < 1e-9);
        assert!(l.force(1.3, 0.0, 0.0) < 0.0);
        // Leaving fast: the damping term would pull; the force is zero instead.
        assert_eq!(l.force(0.4, 100.0, 0.0), 0.0);
        // An actuator pushing into the limit is resisted (imp of it).
        assert!((l.force(0.49, 0.0, -50.0) - l.force(0.49, 0.0, 0.0) - 0.95 * 50.0).abs() < 1e-9);
    }

    #[test]
    fn impedance_ramps_from_d0_to_dmax_over_width() {
        let l = SoftLimit { solimp: [0.0, 0.8, 0.03, 0.5, 2.0], ..limit() };
        assert_eq!(impedance(&l.solimp, 0.0), 0.0);
        assert!((impedance(&l.solimp, 0.015) - 0.4).abs() < 1e-12);
        assert_eq!(impedance(&l.solimp, 0.5), 0.8);
    }
}
