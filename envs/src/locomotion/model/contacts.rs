//! What collides, as MuJoCo decides it: the floor plane, the sphere, capsule, box and
//! cylinder geoms, and the pairs whose contype/conaffinity meet (never within a weld or with its parent's), with
//! MuJoCo's mixing of friction, margins, solref and solimp.

use std::collections::HashMap;

use rapier3d::na::Vector3;
use rapier3d::parry::shape::Shape as Shape3;
use rapier3d::prelude::*;

use super::MujocoBodies;
use super::extras::{Extras, GeomParams};
use super::rapier_tree::{iso, vec3};
use crate::locomotion::collision::{ContactPair, Geom, Shape};

/// The loader builds an ellipsoid as the convex hull of an icosahedron's 12 vertices scaled
/// by the radii (the vertices' largest coordinate is `φ/√(1 + φ²)` of the radius). The radii
/// are read back from that hull, and accepted only if every vertex lies on the ellipsoid.
pub(super) fn ellipsoid_radii(shape: &dyn Shape3) -> Option<Vector3<f64>> {
    let hull = shape.as_convex_polyhedron()?;
    let points = hull.points();
    let phi = (1.0 + 5f64.sqrt()) / 2.0;
    let reach = phi / (1.0 + phi * phi).sqrt();
    let radii = Vector3::from_fn(|k, _| points.iter().map(|p| (p[k] as f64).abs()).fold(0.0, f64::max) / reach);
    let on_surface = |p: &&Vector| {
        let r2: f64 = (0..3).map(|k| (p[k] as f64 / radii[k]).powi(2)).sum();
        (r2 - 1.0).abs() < 1e-4
    };
    (points.len() == 12 && radii.iter().all(|r| *r > 0.0) && points.iter().all(|p| on_surface(&p))).then_some(radii)
}

/// What collides: the floor plane, the geoms, and the pairs MuJoCo would test.
pub(super) struct ContactModel {
    pub floor_z: f64,
    pub geoms: Vec<Geom>,
    pub pairs: Vec<ContactPair>,
    pub geom_frictions: Vec<(String, f64)>,
}

/// A geom's collision bits (contype, conaffinity), sliding friction and contact parameters.
type GeomMeta = (u32, u32, f64, GeomParams);

pub(super) fn contact_model(
    colliders: &ColliderSet,
    collider_names: &HashMap<ColliderHandle, String>,
    extras: &Extras,
    link_of_body: &HashMap<RigidBodyHandle, usize>,
    bodies: &MujocoBodies,
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
            let fixed = link.is_none_or(|l| bodies.weld[bodies.of_link[l]] == 0);
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
        let shape = if let Some(ball) = c.shape().as_ball() {
            let p = local.translation.vector;
            Shape::Capsule { a: p, b: p, radius: ball.radius as f64 }
        } else if let Some(cap) = c.shape().as_capsule() {
            let a = local.transform_point(&vec3(cap.segment.a).into()).coords;
            let b = local.transform_point(&vec3(cap.segment.b).into()).coords;
            Shape::Capsule { a, b, radius: cap.radius as f64 }
        } else if let Some(cuboid) = c.shape().as_cuboid() {
            Shape::Box { frame: local, half: vec3(cuboid.half_extents) }
        } else if let Some(cyl) = c.shape().as_cylinder() {
            Shape::Cylinder { frame: local, radius: cyl.radius as f64, half_height: cyl.half_height as f64 }
        } else if let Some(radii) = ellipsoid_radii(c.shape()) {
            Shape::Ellipsoid { frame: local, radii }
        } else {
            return Err(format!("geom {name:?}: only spheres, capsules, boxes, cylinders, ellipsoids and a floor plane are supported"));
        };
        geoms.push(Geom { link, shape });
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
    // Body–body pairs, except within a weld or with its parent's (MuJoCo's filterparent).
    for i in 0..geoms.len() {
        for j in i + 1..geoms.len() {
            let (li, lj) = (geoms[i].link, geoms[j].link);
            if !bodies.filtered(li, lj) && collides(&geom_meta[i], &geom_meta[j]) {
                pairs.push(mix(&geom_meta[i], &geom_meta[j], body_invweight[li] + body_invweight[lj], i, Some(j)));
            }
        }
    }
    Ok(ContactModel { floor_z, geoms, pairs, geom_frictions })
}

