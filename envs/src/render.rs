//! A frame of a locomotion task, ray-traced on the CPU: the capsule and sphere geoms shaded by
//! one light with shadows, a checkered floor that fades into the sky, from a camera that
//! follows the robot — from the side for planar tasks, from behind and above for the others.
//! `spikerl render` writes these frames into pictures; the Python package returns them.

use rapier3d::na::Vector3;

use crate::locomotion::{GeomPose, GeomShape, LocomotionEnv};

type V = Vector3<f64>;

/// Where the camera looks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// From the side (−y), level: the planar tasks (Hopper, Walker2d, HalfCheetah).
    Side,
    /// From behind-left and above: Ant and other three-dimensional robots.
    Chase,
}

pub struct Camera {
    eye: V,
    forward: V,
    right: V,
    up: V,
    /// tan(vertical field of view / 2).
    tan_half: f64,
}

impl Camera {
    /// A camera of `view` kind looking at `target`.
    pub fn looking_at(view: View, target: V) -> Self {
        let (eye, target) = match view {
            View::Side => (target + V::new(0.0, -3.3, 0.2), target),
            View::Chase => (target + V::new(-3.2, -3.2, 2.6), target),
        };
        let forward = (target - eye).normalize();
        let right = forward.cross(&V::z()).normalize();
        let up = right.cross(&forward);
        Self { eye, forward, right, up, tan_half: (22.5f64).to_radians().tan() }
    }
}

/// A camera that follows a robot from frame to frame, easing after it rather than jumping
/// with every bounce.
pub struct Follower {
    view: View,
    target: Option<V>,
}

impl Follower {
    /// From the side for a planar task (its x is not observed), else from behind and above.
    pub fn for_task(env: &LocomotionEnv) -> Self {
        Self { view: if env.locomotion_spec().obs.skip_qpos == 1 { View::Side } else { View::Chase }, target: None }
    }

    /// Draws `env`'s current state into `rgb` (`width × height`, 3 bytes a pixel).
    pub fn draw(&mut self, env: &LocomotionEnv, width: usize, height: usize, rgb: &mut [u8]) {
        let geoms = env.physics().geom_poses();
        let centre = geoms.iter().map(|g| v(g.shape.centre())).sum::<V>() / geoms.len().max(1) as f64;
        let mut look = V::new(centre.x, if self.view == View::Side { 0.0 } else { centre.y }, centre.z.max(0.4));
        if let Some(t) = self.target {
            look = t + (look - t) * 0.35;
        }
        self.target = Some(look);
        Scene { geoms: &geoms, floor_z: env.physics().floor_z() }.draw(&Camera::looking_at(self.view, look), width, height, rgb);
    }

    /// Starts following afresh (a new episode): the next frame looks straight at the robot.
    pub fn restart(&mut self) {
        self.target = None;
    }
}

/// What one frame shows.
pub struct Scene<'a> {
    pub geoms: &'a [GeomPose],
    pub floor_z: f64,
}

const LIGHT: V = V::new(0.35, -0.55, 0.76);
const SKY_TOP: V = V::new(0.42, 0.56, 0.75);
const SKY_LOW: V = V::new(0.80, 0.86, 0.92);
/// Body colours, by body index: MuJoCo's tan, then accents for the limbs.
const PALETTE: [V; 4] = [V::new(0.80, 0.60, 0.40), V::new(0.70, 0.32, 0.58), V::new(0.36, 0.52, 0.78), V::new(0.45, 0.68, 0.42)];

fn v(p: [f64; 3]) -> V {
    V::new(p[0], p[1], p[2])
}

/// Where the ray `o + t·d` (|d| = 1) first meets `shape`: `t > 0` and the outward normal.
fn hit_shape(shape: &GeomShape, o: &V, d: &V) -> Option<(f64, V)> {
    match *shape {
        GeomShape::Capsule { a, b, radius } => {
            let (a, b) = (v(a), v(b));
            let t = hit_capsule(o, d, &a, &b, radius)?;
            let p = o + d * t;
            let ba = b - a;
            let h = if ba.norm_squared() > 1e-12 { ((p - a).dot(&ba) / ba.norm_squared()).clamp(0.0, 1.0) } else { 0.0 };
            Some((t, (p - (a + ba * h)).normalize()))
        }
        GeomShape::Box { centre, axes, half } => {
            let (lo, ld) = local_ray(o, d, centre, axes);
            // Slabs: the entry is the latest of the three near planes.
            let (mut near, mut far, mut axis) = (f64::NEG_INFINITY, f64::INFINITY, 0);
            for k in 0..3 {
                if ld[k].abs() < 1e-12 {
                    if lo[k].abs() > half[k] {
                        return None;
                    }
                    continue;
                }
                let (t1, t2) = ((-half[k] - lo[k]) / ld[k], (half[k] - lo[k]) / ld[k]);
                let (t1, t2) = (t1.min(t2), t1.max(t2));
                if t1 > near {
                    (near, axis) = (t1, k);
                }
                far = far.min(t2);
            }
            if near > far || near <= 1e-6 {
                return None;
            }
            let n = v(axes[axis]) * -ld[axis].signum();
            Some((near, n))
        }
        GeomShape::Ellipsoid { centre, axes, radii } => {
            // In coordinates scaled by the radii the ellipsoid is the unit sphere.
            let (lo, ld) = local_ray(o, d, centre, axes);
            let (so, sd) = (lo.component_div(&v(radii)), ld.component_div(&v(radii)));
            let (a, b, c) = (sd.dot(&sd), so.dot(&sd), so.dot(&so) - 1.0);
            let disc = b * b - a * c;
            if disc < 0.0 {
                return None;
            }
            let t = (-b - disc.sqrt()) / a;
            if t <= 1e-6 {
                return None;
            }
            let g = (lo + ld * t).component_div(&v(radii)).component_div(&v(radii));
            let n = v(axes[0]) * g.x + v(axes[1]) * g.y + v(axes[2]) * g.z;
            Some((t, n.normalize()))
        }
        GeomShape::Cylinder { centre, axes, radius, half_height } => {
            let (lo, ld) = local_ray(o, d, centre, axes);
            let mut best: Option<(f64, V)> = None;
            let mut keep = |t: f64, n: V| {
                if t > 1e-6 && best.is_none_or(|(bt, _)| t < bt) {
                    best = Some((t, n));
                }
            };
            // The side (axis: local y).
            let (a, b, c) = (ld.x * ld.x + ld.z * ld.z, lo.x * ld.x + lo.z * ld.z, lo.x * lo.x + lo.z * lo.z - radius * radius);
            if a > 1e-12 && b * b - a * c >= 0.0 {
                let t = (-b - (b * b - a * c).sqrt()) / a;
                let p = lo + ld * t;
                if p.y.abs() <= half_height {
                    keep(t, v(axes[0]) * (p.x / radius) + v(axes[2]) * (p.z / radius));
                }
            }
            // The two disks.
            if ld.y.abs() > 1e-12 {
                for side in [-1.0, 1.0] {
                    let t = (side * half_height - lo.y) / ld.y;
                    let p = lo + ld * t;
                    if p.x * p.x + p.z * p.z <= radius * radius {
                        keep(t, v(axes[1]) * side);
                    }
                }
            }
            best
        }
    }
}

/// The ray in a shape's frame (centre `centre`, axes `axes`).
fn local_ray(o: &V, d: &V, centre: [f64; 3], axes: [[f64; 3]; 3]) -> (V, V) {
    let rel = o - v(centre);
    let to_local = |w: &V| V::new(w.dot(&v(axes[0])), w.dot(&v(axes[1])), w.dot(&v(axes[2])));
    (to_local(&rel), to_local(d))
}

/// The nearest `t > 0` where the ray `o + t·d` (|d| = 1) meets the capsule `a–b` of radius `r`.
fn hit_capsule(o: &V, d: &V, a: &V, b: &V, r: f64) -> Option<f64> {
    let ba = b - a;
    let baba = ba.dot(&ba);
    if baba < 1e-12 {
        return hit_sphere(o, d, a, r);
    }
    let oa = o - a;
    let (bard, baoa, rdoa, oaoa) = (ba.dot(d), ba.dot(&oa), d.dot(&oa), oa.dot(&oa));
    let k2 = baba - bard * bard;
    let k1 = baba * rdoa - baoa * bard;
    let k0 = baba * oaoa - baoa * baoa - r * r * baba;
    let h = k1 * k1 - k2 * k0;
    if h < 0.0 {
        return None;
    }
    if k2.abs() > 1e-12 {
        let t = (-k1 - h.sqrt()) / k2;
        let y = baoa + t * bard;
        if y > 0.0 && y < baba && t > 1e-6 {
            return Some(t);
        }
    }
    // The end caps.
    let (s1, s2) = (hit_sphere(o, d, a, r), hit_sphere(o, d, b, r));
    match (s1, s2) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn hit_sphere(o: &V, d: &V, c: &V, r: f64) -> Option<f64> {
    let oc = o - c;
    let b = oc.dot(d);
    let h = b * b - (oc.dot(&oc) - r * r);
    if h < 0.0 {
        return None;
    }
    let t = -b - h.sqrt();
    (t > 1e-6).then_some(t)
}

impl Scene<'_> {
    /// The nearest geom the ray meets: its index, distance and outward normal there.
    fn nearest_geom(&self, o: &V, d: &V) -> Option<(usize, f64, V)> {
        let mut best: Option<(usize, f64, V)> = None;
        for (i, g) in self.geoms.iter().enumerate() {
            if let Some((t, n)) = hit_shape(&g.shape, o, d)
                && best.is_none_or(|(_, bt, _)| t < bt)
            {
                best = Some((i, t, n));
            }
        }
        best
    }

    fn in_shadow(&self, p: &V) -> bool {
        let l = LIGHT.normalize();
        self.nearest_geom(p, &l).is_some()
    }

    fn sky(d: &V) -> V {
        let t = d.z.clamp(0.0, 1.0).sqrt();
        SKY_LOW * (1.0 - t) + SKY_TOP * t
    }

    /// The colour seen along the ray `o + t·d`.
    fn trace(&self, o: &V, d: &V) -> V {
        let l = LIGHT.normalize();
        let floor_t = (d.z < -1e-9 && o.z > self.floor_z).then(|| (self.floor_z - o.z) / d.z);
        match (self.nearest_geom(o, d), floor_t) {
            (Some((i, t, n)), f) if f.is_none_or(|ft| t < ft) => {
                let g = &self.geoms[i];
                let p = o + d * t;
                let lit = if self.in_shadow(&(p + n * 1e-4)) { 0.0 } else { n.dot(&l).max(0.0) };
                // Lambert plus a little specular, so that round shapes read as round.
                let spec = (n.dot(&(l - d).normalize())).max(0.0).powi(24) * if lit > 0.0 { 0.35 } else { 0.0 };
                let base = PALETTE[g.body.index() % PALETTE.len()];
                base * (0.28 + 0.72 * lit) + V::repeat(spec)
            }
            (_, Some(t)) => {
                let p = o + d * t;
                let checker = ((p.x.floor() + p.y.floor()) as i64).rem_euclid(2) == 0;
                let line = (p.x - p.x.round()).abs() < 0.012 || (p.y - p.y.round()).abs() < 0.012;
                let base = if line { V::repeat(0.55) } else if checker { V::new(0.86, 0.86, 0.83) } else { V::new(0.74, 0.76, 0.74) };
                let shade = if self.in_shadow(&(p + V::z() * 1e-4)) { 0.6 } else { 1.0 };
                let fog = 1.0 - (-t / 30.0).exp();
                base * shade * (1.0 - fog) + Self::sky(&V::z()) * fog
            }
            _ => Self::sky(d),
        }
    }

    /// Draws the scene from `camera` into `rgb` (`width × height`, 3 bytes a pixel).
    pub fn draw(&self, camera: &Camera, width: usize, height: usize, rgb: &mut [u8]) {
        let aspect = width as f64 / height as f64;
        for y in 0..height {
            let sy = (1.0 - 2.0 * (y as f64 + 0.5) / height as f64) * camera.tan_half;
            for x in 0..width {
                let sx = (2.0 * (x as f64 + 0.5) / width as f64 - 1.0) * camera.tan_half * aspect;
                let d = (camera.forward + camera.right * sx + camera.up * sy).normalize();
                let c = self.trace(&camera.eye, &d);
                let px = &mut rgb[3 * (y * width + x)..3 * (y * width + x) + 3];
                for (byte, channel) in px.iter_mut().zip(c.iter()) {
                    *byte = (channel.clamp(0.0, 1.0).powf(1.0 / 1.1) * 255.0).round() as u8;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rays_meet_boxes_and_cylinders_with_outward_normals() {
        let axes = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let (o, d) = (V::new(0.0, -5.0, 0.0), V::new(0.0, 1.0, 0.0));
        let (t, n) = hit_shape(&GeomShape::Box { centre: [0.0; 3], axes, half: [1.0, 0.5, 0.25] }, &o, &d).unwrap();
        assert!((t - 4.5).abs() < 1e-9 && (n - V::new(0.0, -1.0, 0.0)).norm() < 1e-12, "{t} {n}");
        assert!(hit_shape(&GeomShape::Box { centre: [0.0; 3], axes, half: [1.0, 0.5, 0.25] }, &V::new(0.0, -5.0, 0.3), &d).is_none());
        // A cylinder along y is met on its disk; along z (axes rotated), on its side.
        let (t, n) = hit_shape(&GeomShape::Cylinder { centre: [0.0; 3], axes, radius: 0.5, half_height: 2.0 }, &o, &d).unwrap();
        assert!((t - 3.0).abs() < 1e-9 && (n - V::new(0.0, -1.0, 0.0)).norm() < 1e-12, "{t} {n}");
        let standing = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]];
        let (t, n) = hit_shape(&GeomShape::Cylinder { centre: [0.0; 3], axes: standing, radius: 0.5, half_height: 2.0 }, &o, &d).unwrap();
        assert!((t - 4.5).abs() < 1e-9 && (n - V::new(0.0, -1.0, 0.0)).norm() < 1e-12, "{t} {n}");
        // An ellipsoid with semi-axes (1, 0.5, 0.25): met at y = −0.5 head on; off-centre at
        // x = 0.6 the surface is at y = −0.5·√(1 − 0.36) = −0.4, its normal ∝ (x/a², y/b², 0).
        let egg = GeomShape::Ellipsoid { centre: [0.0; 3], axes, radii: [1.0, 0.5, 0.25] };
        let (t, n) = hit_shape(&egg, &o, &d).unwrap();
        assert!((t - 4.5).abs() < 1e-9 && (n - V::new(0.0, -1.0, 0.0)).norm() < 1e-12, "{t} {n}");
        let (t, n) = hit_shape(&egg, &V::new(0.6, -5.0, 0.0), &d).unwrap();
        let want = V::new(0.6, -0.4 / 0.25, 0.0).normalize();
        assert!((t - 4.6).abs() < 1e-9 && (n - want).norm() < 1e-9, "{t} {n}");
        assert!(hit_shape(&egg, &V::new(0.0, -5.0, 0.3), &d).is_none());
    }

    #[test]
    fn rays_meet_capsules_spheres_and_their_caps() {
        let (o, d) = (V::new(0.0, -5.0, 0.0), V::new(0.0, 1.0, 0.0));
        // A horizontal capsule along x through the origin, radius 0.5: the side is hit at y = −0.5.
        let t = hit_capsule(&o, &d, &V::new(-1.0, 0.0, 0.0), &V::new(1.0, 0.0, 0.0), 0.5).unwrap();
        assert!((t - 4.5).abs() < 1e-9, "{t}");
        // Beyond its end, the round cap: at x = 1.3 the cap's surface is at y = −0.4.
        let o2 = V::new(1.3, -5.0, 0.0);
        let t = hit_capsule(&o2, &d, &V::new(-1.0, 0.0, 0.0), &V::new(1.0, 0.0, 0.0), 0.5).unwrap();
        assert!((t - 4.6).abs() < 1e-9, "{t}");
        // A sphere (a = b), and a miss.
        let t = hit_capsule(&o, &d, &V::zeros(), &V::zeros(), 1.0).unwrap();
        assert!((t - 4.0).abs() < 1e-9, "{t}");
        assert!(hit_capsule(&V::new(3.0, -5.0, 0.0), &d, &V::new(-1.0, 0.0, 0.0), &V::new(1.0, 0.0, 0.0), 0.5).is_none());
    }
}
