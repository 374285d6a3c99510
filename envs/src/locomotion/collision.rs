//! Where geoms touch, as MuJoCo's collision functions find it: the contact points of each
//! pair that may collide (MuJoCo's count per pair, its contact positions midway between the
//! surfaces, its normals and first friction directions).
//!
//! - Floor and capsule or sphere: one contact per end inside the margin, the friction pyramid
//!   along the capsule's axis.
//! - Floor and box: the box's corners inside the margin on the floor's side of its centre, at
//!   most four (MuJoCo's `mjc_PlaneBox`).
//! - Floor and cylinder: the lowest rim point, the other disk's lowest point, and two more on
//!   the first disk a third of the way round either side (MuJoCo's `mjc_PlaneCylinder`).
//! - Floor and ellipsoid: its deepest point (MuJoCo's `mjc_PlaneConvex` on a smooth shape).
//! - Capsule and capsule: the closest points of the two segments.
//! - Any other pair: one contact, the deepest, found by GJK/EPA on the shapes' support
//!   functions (parry3d, the collision library rapier is built on). MuJoCo yields up to 8
//!   for box–box and 2 for box–capsule; the port one.

use rapier3d::na::{Isometry3, Vector3};
use rapier3d::parry::math::{Pose, Vector as PVector};
use rapier3d::parry::query::contact::contact_support_map_support_map;
use rapier3d::parry::shape::SupportMap;

use super::articulated::Kinematics;

/// A collision geom of a link, in the link's frame.
#[derive(Debug, Clone)]
pub struct Geom {
    pub link: usize,
    pub shape: Shape,
}

#[derive(Debug, Clone)]
pub enum Shape {
    /// The segment `a`–`b` swept by `radius` (a sphere where they coincide).
    Capsule { a: Vector3<f64>, b: Vector3<f64>, radius: f64 },
    /// Centred on `frame`, `half` its half extents along the frame's axes.
    Box { frame: Isometry3<f64>, half: Vector3<f64> },
    /// Centred on `frame`, its axis the frame's y (rapier's convention; the frame's x is
    /// MuJoCo's local x).
    Cylinder { frame: Isometry3<f64>, radius: f64, half_height: f64 },
    /// Centred on `frame`, `radii` its semi-axes along the frame's axes.
    Ellipsoid { frame: Isometry3<f64>, radii: Vector3<f64> },
}

/// A geom where the link's pose puts it, in world coordinates.
#[derive(Debug, Clone, Copy)]
pub enum Placed {
    Capsule { a: Vector3<f64>, b: Vector3<f64>, radius: f64 },
    Box { pose: Isometry3<f64>, half: Vector3<f64> },
    Cylinder { pose: Isometry3<f64>, radius: f64, half_height: f64 },
    Ellipsoid { pose: Isometry3<f64>, radii: Vector3<f64> },
}

impl Geom {
    pub fn place(&self, link_pose: &Isometry3<f64>) -> Placed {
        match &self.shape {
            Shape::Capsule { a, b, radius } => {
                Placed::Capsule { a: link_pose.transform_point(&(*a).into()).coords, b: link_pose.transform_point(&(*b).into()).coords, radius: *radius }
            }
            Shape::Box { frame, half } => Placed::Box { pose: link_pose * frame, half: *half },
            Shape::Cylinder { frame, radius, half_height } => Placed::Cylinder { pose: link_pose * frame, radius: *radius, half_height: *half_height },
            Shape::Ellipsoid { frame, radii } => Placed::Ellipsoid { pose: link_pose * frame, radii: *radii },
        }
    }
}

/// Two things that may touch, with MuJoCo's mixed contact parameters.
#[derive(Debug, Clone)]
pub struct ContactPair {
    /// Geom index; `other` None means the floor plane `z = floor_z`.
    pub geom: usize,
    pub other: Option<usize>,
    pub friction: f64,
    pub margin: f64,
    pub solref: [f64; 2],
    pub solimp: [f64; 5],
    /// Summed translational `body_invweight0` of the two bodies.
    pub invweight: f64,
}

/// One contact point between two surfaces, MuJoCo-style: `point` midway, `normal` from the
/// first to the second, `dist` the signed surface distance.
#[derive(Debug, Clone, Copy)]
pub struct Contact {
    pub pair: usize,
    pub point: Vector3<f64>,
    pub normal: Vector3<f64>,
    /// First friction direction: a capsule on a plane orients the pyramid along its axis.
    pub tangent: Vector3<f64>,
    pub dist: f64,
}

/// The contacts of every pair at the link poses of `kin`, into `out`; `placed` is scratch
/// space (each geom is placed once).
pub fn find_contacts(geoms: &[Geom], pairs: &[ContactPair], floor_z: f64, kin: &Kinematics, placed: &mut Vec<Placed>, out: &mut Vec<Contact>) {
    out.clear();
    placed.clear();
    placed.extend(geoms.iter().map(|g| g.place(&kin.pose[g.link])));
    for (pi, pair) in pairs.iter().enumerate() {
        match pair.other {
            None => floor_contacts(&placed[pair.geom], floor_z, pair.margin, pi, out),
            Some(other) => out.extend(pair_contact(&placed[pair.geom], &placed[other], pair.margin, pi)),
        }
    }
}

/// A geom against the floor `z = floor_z` (the floor first, its normal +z).
pub fn floor_contacts(placed: &Placed, floor_z: f64, margin: f64, pair: usize, out: &mut Vec<Contact>) {
    let normal = Vector3::z();
    // A contact at `deepest` (the geom's point nearest the floor), `dist` above it.
    let mut push = |deepest: Vector3<f64>, dist: f64, tangent: Vector3<f64>| {
        out.push(Contact { pair, point: deepest - normal * (0.5 * dist), normal, tangent, dist });
    };
    match *placed {
        Placed::Capsule { a, b, radius } => {
            // One contact per end inside the margin (a sphere has one end), the friction
            // pyramid aligned with the capsule's axis on the plane.
            let along = b - a;
            let flat = along - normal * along.dot(&normal);
            let tangent = if flat.norm() > 1e-9 { flat.normalize() } else { tangents(&normal).0 };
            let ends: &[Vector3<f64>] = if a == b { &[a] } else { &[a, b] };
            for e in ends {
                let dist = e.z - radius - floor_z;
                if dist < margin {
                    push(Vector3::new(e.x, e.y, e.z - radius), dist, tangent);
                }
            }
        }
        Placed::Box { pose, half } => {
            let centre = pose.translation.vector;
            let dist0 = centre.z - floor_z;
            let mut count = 0;
            for i in 0..8 {
                let local = Vector3::new(if i & 1 != 0 { half.x } else { -half.x }, if i & 2 != 0 { half.y } else { -half.y }, if i & 4 != 0 { half.z } else { -half.z });
                let corner = pose.rotation * local;
                // Corners above the centre, or beyond the margin, do not count.
                if dist0 + corner.z > margin || corner.z > 0.0 {
                    continue;
                }
                push(centre + corner, dist0 + corner.z, tangents(&normal).0);
                count += 1;
                if count == 4 {
                    break;
                }
            }
        }
        Placed::Ellipsoid { pose, radii } => {
            let deepest = ellipsoid_support(&pose, &radii, &-normal);
            let dist = deepest.z - floor_z;
            if dist < margin {
                push(deepest, dist, tangents(&normal).0);
            }
        }
        Placed::Cylinder { pose, radius, half_height } => {
            let centre = pose.translation.vector;
            let dist0 = centre.z - floor_z;
            // The axis, pointing at the floor.
            let mut axis = pose.rotation * Vector3::y();
            let mut prj_axis = axis.dot(&normal);
            if prj_axis > 0.0 {
                axis = -axis;
                prj_axis = -prj_axis;
            }
            // Towards the floor across the axis: the lowest rim point's direction (the
            // cylinder's own x when it stands upright).
            let across = axis * prj_axis - normal;
            let vec = if across.norm() < 1e-15 { pose.rotation * Vector3::x() } else { across.normalize() } * radius;
            let prj_vec = vec.dot(&normal);
            let (axis, prj_axis) = (axis * half_height, prj_axis * half_height);
            let tangent = tangents(&normal).0;
            let first = dist0 + prj_axis + prj_vec;
            if first > margin {
                return;
            }
            push(centre + vec + axis, first, tangent);
            let second = dist0 - prj_axis + prj_vec;
            if second <= margin {
                push(centre + vec - axis, second, tangent);
            }
            let third = dist0 + prj_axis - 0.5 * prj_vec;
            if third <= margin {
                let side = vec.cross(&axis);
                let side = if side.norm() > 1e-15 { side.normalize() * (radius * 3f64.sqrt() / 2.0) } else { side };
                push(centre + axis - vec * 0.5 + side, third, tangent);
                push(centre + axis - vec * 0.5 - side, third, tangent);
            }
        }
    }
}

/// Two geoms of the robot: at most one contact.
fn pair_contact(g: &Placed, h: &Placed, margin: f64, pair: usize) -> Option<Contact> {
    if let (Placed::Capsule { a, b, radius: r1 }, Placed::Capsule { a: c, b: d, radius: r2 }) = (g, h) {
        let (p1, p2) = closest_points(*a, *b, *c, *d);
        let delta = p2 - p1;
        let len = delta.norm();
        let dist = len - r1 - r2;
        if dist < margin && len > 1e-9 {
            let normal = delta / len;
            let point = p1 + normal * (r1 + 0.5 * dist);
            return Some(Contact { pair, point, normal, tangent: tangents(&normal).0, dist });
        }
        return None;
    }
    // Both shapes in world coordinates: the relative pose is the identity.
    let c = contact_support_map_support_map(&Pose::IDENTITY, &Support(g), &Support(h), margin as f32)?;
    let (p1, p2, n) = (to_na(c.point1), to_na(c.point2), to_na(c.normal1));
    let dist = c.dist as f64;
    (dist < margin).then(|| Contact { pair, point: (p1 + p2) * 0.5, normal: n, tangent: tangents(&n).0, dist })
}

fn to_na(v: PVector) -> Vector3<f64> {
    Vector3::new(v.x as f64, v.y as f64, v.z as f64)
}

/// A placed geom's support function in world coordinates, for parry's GJK/EPA.
struct Support<'a>(&'a Placed);

impl SupportMap for Support<'_> {
    fn local_support_point(&self, dir: PVector) -> PVector {
        let d = to_na(dir);
        let p = match *self.0 {
            Placed::Capsule { a, b, radius } => {
                let end = if d.dot(&(b - a)) > 0.0 { b } else { a };
                end + d.try_normalize(1e-12).unwrap_or_else(Vector3::zeros) * radius
            }
            Placed::Box { pose, half } => {
                let l = pose.rotation.inverse() * d;
                pose.translation.vector + pose.rotation * Vector3::new(half.x.copysign(l.x), half.y.copysign(l.y), half.z.copysign(l.z))
            }
            Placed::Ellipsoid { pose, radii } => ellipsoid_support(&pose, &radii, &d),
            Placed::Cylinder { pose, radius, half_height } => {
                let l = pose.rotation.inverse() * d;
                let radial = Vector3::new(l.x, 0.0, l.z);
                let radial = radial.try_normalize(1e-12).map_or_else(Vector3::zeros, |r| r * radius);
                pose.translation.vector + pose.rotation * (radial + Vector3::new(0.0, half_height.copysign(l.y), 0.0))
            }
        };
        PVector::new(p.x as f32, p.y as f32, p.z as f32)
    }
}

/// The ellipsoid's farthest point in direction `d`: `c + R·D²·Rᵀd / |D·Rᵀd|`.
fn ellipsoid_support(pose: &Isometry3<f64>, radii: &Vector3<f64>, d: &Vector3<f64>) -> Vector3<f64> {
    let local = pose.rotation.inverse() * d;
    let scaled = local.component_mul(radii);
    let n = scaled.norm();
    let offset = if n > 1e-15 { scaled.component_mul(radii) / n } else { Vector3::zeros() };
    pose.translation.vector + pose.rotation * offset
}

/// Closest points of segments `p1–q1` and `p2–q2`.
pub fn closest_points(p1: Vector3<f64>, q1: Vector3<f64>, p2: Vector3<f64>, q2: Vector3<f64>) -> (Vector3<f64>, Vector3<f64>) {
    let (d1, d2, r) = (q1 - p1, q2 - p2, p1 - p2);
    let (a, e, f) = (d1.dot(&d1), d2.dot(&d2), d2.dot(&r));
    let (s, t) = if a <= 1e-12 && e <= 1e-12 {
        (0.0, 0.0)
    } else if a <= 1e-12 {
        (0.0, (f / e).clamp(0.0, 1.0))
    } else {
        let c = d1.dot(&r);
        if e <= 1e-12 {
            ((-c / a).clamp(0.0, 1.0), 0.0)
        } else {
            let b = d1.dot(&d2);
            let denom = a * e - b * b;
            let mut s = if denom > 1e-12 { ((b * f - c * e) / denom).clamp(0.0, 1.0) } else { 0.0 };
            let mut t = (b * s + f) / e;
            if t < 0.0 {
                t = 0.0;
                s = (-c / a).clamp(0.0, 1.0);
            } else if t > 1.0 {
                t = 1.0;
                s = ((b - c) / a).clamp(0.0, 1.0);
            }
            (s, t)
        }
    };
    (p1 + d1 * s, p2 + d2 * t)
}

/// MuJoCo's contact frame tangents: for a vertical normal, world x and y.
pub fn tangents(n: &Vector3<f64>) -> (Vector3<f64>, Vector3<f64>) {
    let t1 = if n.z.abs() > 0.999 { Vector3::x() } else { Vector3::z().cross(n).normalize() };
    let t2 = n.cross(&t1);
    (t1, t2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_points_of_crossing_and_parallel_segments() {
        let (p, q) = closest_points(Vector3::new(-1.0, 0.0, 0.0), Vector3::new(1.0, 0.0, 0.0), Vector3::new(0.0, -1.0, 1.0), Vector3::new(0.0, 1.0, 1.0));
        assert!((p - Vector3::zeros()).norm() < 1e-12 && (q - Vector3::new(0.0, 0.0, 1.0)).norm() < 1e-12);
        let (p, q) = closest_points(Vector3::zeros(), Vector3::x(), Vector3::new(2.0, 0.0, 0.5), Vector3::new(3.0, 0.0, 0.5));
        assert!((p - Vector3::x()).norm() < 1e-12 && (q - Vector3::new(2.0, 0.0, 0.5)).norm() < 1e-12);
    }

    #[test]
    fn a_box_on_a_capsule_touches_once_at_the_right_depth() {
        let cube = Placed::Box { pose: Isometry3::translation(0.0, 0.0, 0.55), half: Vector3::new(0.5, 0.5, 0.5) };
        let bar = Placed::Capsule { a: Vector3::new(-1.0, 0.0, 0.0), b: Vector3::new(1.0, 0.0, 0.0), radius: 0.1 };
        let c = pair_contact(&bar, &cube, 0.0, 0).expect("they overlap by 0.05");
        assert!((c.dist + 0.05).abs() < 1e-4, "{}", c.dist);
        assert!((c.normal - Vector3::z()).norm() < 1e-3, "{}", c.normal);
        assert!(pair_contact(&bar, &Placed::Box { pose: Isometry3::translation(0.0, 0.0, 0.7), half: Vector3::new(0.5, 0.5, 0.5) }, 0.0, 0).is_none());
    }
}
