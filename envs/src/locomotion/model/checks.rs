//! What MuJoCo's compiler refuses and the loader would otherwise take silently or crash on:
//! bodies nested deeper than a recursive loader survives, geoms of a kind or size the
//! simulation cannot collide, mesh assets that are not there, and moving bodies without
//! mass or inertia. Each error names the element.

use std::path::Path;

use rapier3d_mjcf::mjcf_rs::body::GeomType;
use rapier3d_mjcf::mjcf_rs::compiler::InertiaFromGeom;
use rapier3d_mjcf::mjcf_rs::model::Model as Mjcf;

use crate::locomotion::articulated::{LinkJoint, Tree};

/// Deepest body nesting accepted: far beyond real robots (MuJoCo's humanoid nests 6 deep), and
/// well inside what the recursive loader survives on a 2 MB thread stack.
pub const MAX_BODY_DEPTH: usize = 100;

/// MuJoCo's `mjMINVAL`: moving bodies need mass and inertia above it.
const MIN_VALUE: f64 = 1e-15;

/// Fails if bodies nest deeper than [`MAX_BODY_DEPTH`]. Runs on the text before any XML
/// parser (all of which recurse somewhere) sees it, in one pass without recursion.
pub fn body_nesting(xml: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut rest = xml;
    while let Some(at) = rest.find('<') {
        rest = &rest[at..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let is_tag = |name: &str| rest.strip_prefix(name).and_then(|r| r.chars().next()).is_some_and(|c| c == '>' || c == '/' || c.is_whitespace());
        let tag_end = tag_end(rest);
        if is_tag("</body") {
            depth = depth.saturating_sub(1);
        } else if is_tag("<body") && !rest[..tag_end].ends_with("/>") {
            depth += 1;
            if depth > MAX_BODY_DEPTH {
                return Err(format!("bodies nest more than {MAX_BODY_DEPTH} deep"));
            }
        }
        rest = &rest[tag_end..];
    }
    Ok(())
}

/// The length of the tag at the start of `s` up to and including its `>` (quoted values may
/// hold one), or all of `s`.
fn tag_end(s: &str) -> usize {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return i + 1,
            _ => {}
        }
    }
    s.len()
}

/// Fails on a geom the simulation cannot collide as written: a type other than plane, sphere,
/// capsule, box, cylinder or ellipsoid, a non-positive size, or a mesh whose asset or file is
/// missing; and on an ellipsoid that would give its body mass (the loader weighs it as a
/// 12-point hull holding 0.6 of its volume, where MuJoCo takes ρ·4/3·π·abc).
pub fn geoms(model: &Mjcf, base_dir: &Path) -> Result<(), String> {
    let from_geoms = |inertial: bool| match model.compiler.inertia_from_geom {
        InertiaFromGeom::True => true,
        InertiaFromGeom::Auto => !inertial,
        InertiaFromGeom::False => false,
    };
    for entry in &model.bodies {
        let body = entry.body.name.as_deref().unwrap_or("world");
        for g in &entry.body.geoms {
            let name = g.name.as_deref().map_or_else(|| format!("an unnamed geom of body '{body}'"), |n| format!("geom '{n}'"));
            if g.type_ == GeomType::Mesh {
                let asset = g.mesh.as_deref().ok_or_else(|| format!("{name} is a mesh without a mesh= asset"))?;
                let mesh = model.assets.mesh(asset).ok_or_else(|| format!("{name} uses mesh '{asset}', which no <mesh> asset defines"))?;
                if let Some(file) = &mesh.file {
                    let path = base_dir.join(model.compiler.mesh_dir.as_deref().unwrap_or("")).join(file);
                    if !path.is_file() {
                        return Err(format!("{name} uses mesh '{asset}', whose file {} does not exist", path.display()));
                    }
                }
            }
            match g.type_ {
                GeomType::Plane => {}
                GeomType::Sphere | GeomType::Capsule => {
                    let [radius, half_length, _] = g.size;
                    if !(radius > 0.0 && radius.is_finite()) {
                        return Err(format!("{name}: radius {radius} must be positive"));
                    }
                    if g.type_ == GeomType::Capsule && g.fromto.is_none() && !(half_length > 0.0 && half_length.is_finite()) {
                        return Err(format!("{name}: capsule half-length {half_length} must be positive"));
                    }
                }
                GeomType::Ellipsoid if from_geoms(entry.body.inertial.is_some()) && g.mass.is_none_or(|m| m > 0.0) && g.density.is_none_or(|d| d > 0.0) => {
                    return Err(format!(
                        "{name} is an ellipsoid weighing into body '{body}', whose inertia comes from its geoms; \
                         give the body an <inertial> (MuJoCo's: mass ρ·4/3·π·abc) or the geom mass=\"0\""
                    ));
                }
                GeomType::Box | GeomType::Cylinder | GeomType::Ellipsoid => {
                    // Sizes a fromto= sets are checked by the loader; the others must be positive.
                    let n = if g.type_ == GeomType::Cylinder { 2 } else { 3 };
                    if g.fromto.is_none() && !g.size[..n].iter().all(|x| *x > 0.0 && x.is_finite()) {
                        return Err(format!("{name}: size {:?} must be positive", &g.size[..n]));
                    }
                }
                other => return Err(format!("{name} is a {other:?}; spikerl collides planes, spheres, capsules, boxes, cylinders and ellipsoids")),
            }
        }
    }
    Ok(())
}

/// Fails if a body that moves (a link with a joint, together with the bodies welded to it)
/// has mass or rotational inertia at or below MuJoCo's minimum.
/// Only the file's bodies count: the unnamed links between a body's joints are the port's.
pub fn masses(tree: &Tree, names: &[Option<String>]) -> Result<(), String> {
    let n = tree.links.len();
    // Each link's mass and inertia with its welded descendants (children come after parents).
    let mut mass: Vec<f64> = tree.links.iter().map(|l| l.mass).collect();
    let mut inertia: Vec<f64> = tree.links.iter().map(|l| l.inertia.trace()).collect();
    for i in (0..n).rev() {
        if let (LinkJoint::Fixed, Some(p)) = (tree.links[i].joint, tree.links[i].parent) {
            mass[p] += mass[i];
            inertia[p] += inertia[i];
        }
    }
    for (i, l) in tree.links.iter().enumerate() {
        let Some(name) = names.get(i).cloned().flatten() else { continue };
        if l.joint == LinkJoint::Fixed {
            continue;
        }
        if !(mass[i] > MIN_VALUE && inertia[i] > MIN_VALUE) {
            return Err(format!("body '{name}' moves but has mass {} and inertia {} (with the bodies welded to it): MuJoCo requires both above {MIN_VALUE}", mass[i], inertia[i]));
        }
    }
    Ok(())
}
