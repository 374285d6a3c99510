//! The kinematic tree as rapier assembled it: links in its topological order with their
//! joints, frames, mass properties and armature, and MuJoCo's inverse weights at `qpos0`.

use std::collections::HashMap;

use rapier3d::na::{Isometry3, Matrix3, Quaternion, Translation3, UnitQuaternion, Vector3};
use rapier3d::prelude::*;

use crate::locomotion::articulated::{Kinematics, Link, LinkJoint, Tree};

/// The tree as rapier built it, with its initial coordinates.
pub(super) struct TreeBuild {
    pub tree: Tree,
    pub q0: Vec<f64>,
    pub link_of_body: HashMap<RigidBodyHandle, usize>,
}

/// Links of rapier's multibody, in its topological order, with mass properties and armature.
pub(super) fn tree_from_multibody(mb: &Multibody, bodies: &RigidBodySet, gravity: Vector3<f64>) -> Result<TreeBuild, String> {
    let mut links = Vec::new();
    let mut link_of_body: HashMap<RigidBodyHandle, usize> = HashMap::new();
    let mut rapier_dof = Vec::new(); // (our first dof, rapier's first dof, count)
    let (mut nq_tree, mut nv_tree) = (0, 0);
    let mut q0 = Vec::new();
    for (i, link) in mb.links().enumerate() {
        let rb = &bodies[link.rigid_body_handle()];
        let data = &link.joint().data;
        let joint = if i == 0 {
            if rb.is_dynamic() { LinkJoint::Free } else { LinkJoint::Fixed }
        } else {
            match link.joint().ndofs() {
                0 => LinkJoint::Fixed,
                1 if !data.locked_axes.contains(JointAxesMask::LIN_X) => LinkJoint::Slide,
                1 if !data.locked_axes.contains(JointAxesMask::ANG_X) => LinkJoint::Hinge,
                n => return Err(format!("joints with {n} degrees of freedom are not supported (hinge, slide, free only)")),
            }
        };
        let mprops = &rb.mass_properties().local_mprops;
        let principal = vec3(mprops.principal_inertia());
        let frame = iso(&Pose::from_parts(Vector::ZERO, mprops.principal_inertia_local_frame)).rotation.to_rotation_matrix();
        let inertia = frame.matrix() * Matrix3::from_diagonal(&principal) * frame.matrix().transpose();
        match joint {
            LinkJoint::Free => {
                let p = iso(rb.position());
                let r = p.rotation.quaternion();
                q0.extend([p.translation.x, p.translation.y, p.translation.z, r.w, r.i, r.j, r.k]);
            }
            LinkJoint::Hinge => q0.push(link.joint().coords()[3] as f64),
            LinkJoint::Slide => q0.push(link.joint().coords()[0] as f64),
            LinkJoint::Fixed => {}
        }
        if joint.nv() > 0 {
            rapier_dof.push((nv_tree, link.assembly_id(), joint.nv()));
        }
        links.push(Link {
            parent: link.parent_id(),
            joint,
            frame1: iso(&data.local_frame1),
            frame2_inv: iso(&data.local_frame2).inverse(),
            mass: rb.mass() as f64,
            com: vec3(mprops.local_com),
            inertia,
            dof: nv_tree,
            qadr: nq_tree,
        });
        link_of_body.insert(link.rigid_body_handle(), i);
        nq_tree += joint.nq();
        nv_tree += joint.nv();
    }
    let mut tree = Tree::new(links, gravity);
    for &(ours, theirs, n) in &rapier_dof {
        for k in 0..n {
            tree.armature[ours + k] = mb.armature()[theirs + k] as f64;
        }
    }
    Ok(TreeBuild { tree, q0, link_of_body })
}

/// MuJoCo's `dof_invweight0` (diagonal of `M⁻¹`) and translational `body_invweight0` (mean
/// of `J·M⁻¹·Jᵀ` over the three directions of each body's centre of mass) at `kin`'s pose.
pub(super) fn inverse_weights(tree: &Tree, kin: &Kinematics) -> (Vec<f64>, Vec<f64>) {
    let dof = (0..tree.nv)
        .map(|d| {
            let mut e = vec![0.0; tree.nv];
            e[d] = 1.0;
            kin.solve(&mut e);
            e[d]
        })
        .collect();
    let body = (0..tree.links.len())
        .map(|link| {
            let com = kin.com[link];
            (0..3)
                .map(|axis| {
                    let mut j = vec![0.0; tree.nv];
                    kin.point_jacobian(tree, link, &com, &Vector3::ith(axis, 1.0), 1.0, &mut j);
                    let mut x = j.clone();
                    kin.solve(&mut x);
                    j.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>()
                })
                .sum::<f64>()
                / 3.0
        })
        .collect();
    (dof, body)
}

pub(super) fn iso(p: &Pose) -> Isometry3<f64> {
    let t = p.translation;
    let r = p.rotation;
    Isometry3::from_parts(
        Translation3::new(t.x as f64, t.y as f64, t.z as f64),
        UnitQuaternion::from_quaternion(Quaternion::new(r.w as f64, r.x as f64, r.y as f64, r.z as f64)),
    )
}

pub(super) fn vec3(v: Vector) -> Vector3<f64> {
    Vector3::new(v.x as f64, v.y as f64, v.z as f64)
}

