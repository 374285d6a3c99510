//! MuJoCo's com-based body quantities — `cinert`, `cvel` and `cfrc_ext` — which Humanoid-v4
//! observes. Each is expressed in the frame with the world's orientation and its origin at
//! the centre of mass of the body's kinematic tree (`subtree_com[body_rootid]`):
//!
//! - `cinert` (10 per body): the rotational inertia about that origin, `(xx, yy, zz, xy, xz,
//!   yz)`, then `mass · (com − origin)` and the mass (MuJoCo's `mju_inertCom`);
//! - `cvel` (6): the angular velocity, then the velocity of the body point at the origin;
//! - `cfrc_ext` (6): the external wrench — here the contact forces — as the moment about the
//!   origin, then the force (MuJoCo's `mj_rnePostConstraint`).
//!
//! The world body comes first and is all zeros.

use rapier3d::na::Vector3;

use super::articulated::{Kinematics, Tree};
use super::constraints::ContactForce;
use super::model::MujocoBodies;

/// The com-based quantities of every body at one state.
#[derive(Debug, Clone, Default)]
pub struct ComFrame {
    pub cinert: Vec<[f64; 10]>,
    pub cvel: Vec<[f64; 6]>,
    pub cfrc_ext: Vec<[f64; 6]>,
    /// The whole model's centre of mass (`Σ m·xipos / Σ m`).
    pub mass_centre: [f64; 3],
    /// Scratch: first moment and mass of each tree, by root body.
    trees: Vec<(Vector3<f64>, f64)>,
}

impl ComFrame {
    /// Fills the quantities at the state `kin` was updated to, with `contacts` the contact
    /// forces found there (none after a reset, as MuJoCo leaves `cfrc_ext` zero until a step).
    pub(crate) fn record(&mut self, tree: &Tree, bodies: &MujocoBodies, kin: &Kinematics, contacts: impl Iterator<Item = ContactForce>) {
        let n = bodies.len();
        self.cinert.resize(n, [0.0; 10]);
        self.cvel.resize(n, [0.0; 6]);
        self.cfrc_ext.resize(n, [0.0; 6]);
        self.cfrc_ext.fill([0.0; 6]);

        // Centres of mass of each tree (indexed by its root body) and of the whole model.
        let trees = &mut self.trees;
        trees.clear();
        trees.resize(n, (Vector3::zeros(), 0.0));
        let (mut total_moment, mut total_mass) = (Vector3::zeros(), 0.0);
        for b in 1..n {
            let Some(l) = bodies.link[b] else { continue };
            let m = tree.links[l].mass;
            let t = &mut trees[bodies.root[b]];
            t.0 += kin.com[l] * m;
            t.1 += m;
            total_moment += kin.com[l] * m;
            total_mass += m;
        }
        let trees = &self.trees;
        let origin = |b: usize| {
            let (moment, mass) = trees[bodies.root[b]];
            if mass > 0.0 { moment / mass } else { Vector3::zeros() }
        };
        let centre = if total_mass > 0.0 { total_moment / total_mass } else { Vector3::zeros() };
        self.mass_centre = [centre.x, centre.y, centre.z];

        self.cinert[0] = [0.0; 10];
        self.cvel[0] = [0.0; 6];
        for b in 1..n {
            let Some(l) = bodies.link[b] else {
                self.cinert[b] = [0.0; 10];
                self.cvel[b] = [0.0; 6];
                continue;
            };
            let link = &tree.links[l];
            let c = origin(b);
            let rot = kin.pose[l].rotation.to_rotation_matrix();
            let i = rot.matrix() * link.inertia * rot.matrix().transpose();
            let (m, d) = (link.mass, kin.com[l] - c);
            self.cinert[b] = [
                i[(0, 0)] + m * (d.y * d.y + d.z * d.z),
                i[(1, 1)] + m * (d.x * d.x + d.z * d.z),
                i[(2, 2)] + m * (d.x * d.x + d.y * d.y),
                i[(0, 1)] - m * d.x * d.y,
                i[(0, 2)] - m * d.x * d.z,
                i[(1, 2)] - m * d.y * d.z,
                m * d.x,
                m * d.y,
                m * d.z,
                m,
            ];
            let v = kin.velocity(l);
            let w = Vector3::new(v[0], v[1], v[2]);
            let at_c = Vector3::new(v[3], v[4], v[5]) + w.cross(&c);
            self.cvel[b] = [w.x, w.y, w.z, at_c.x, at_c.y, at_c.z];
        }

        for f in contacts {
            for (link, sign) in [(f.link1, -1.0), (Some(f.link2), 1.0)] {
                let b = link.map_or(0, |l| bodies.of_link[l]);
                if b == 0 {
                    continue;
                }
                let torque = (f.point - origin(b)).cross(&f.force) * sign;
                let force = f.force * sign;
                for (k, x) in [torque.x, torque.y, torque.z, force.x, force.y, force.z].into_iter().enumerate() {
                    self.cfrc_ext[b][k] += x;
                }
            }
        }
    }
}
