//! Box, cylinder and ellipsoid geoms against MuJoCo 4 (`tests/data/shapes.mujoco.json`, written by
//! `tools/shapes_reference.py`): the contacts a shape on the floor yields at fixed poses (how
//! many, where, how deep), where it comes to rest, and a Walker2d standing on box feet.

use std::path::Path;

use spikerl_envs::locomotion::Simulation;

fn reference() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/shapes.mujoco.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The reference scene: the floor, and one free body holding the geom (and a hinged tag). An
/// ellipsoid's body states MuJoCo's mass and inertia for it (ρ = 1000) in an `<inertial>`.
fn scene(geom: &str) -> Simulation {
    let inertial = match geom.contains("ellipsoid") {
        true => r#"<inertial pos="0 0 0" mass="4.18879" diaginertia="0.0104720 0.0356047 0.0418879"/>"#,
        false => "",
    };
    let xml = format!(
        r#"<mujoco><option timestep="0.002"/><worldbody><geom name="floor" type="plane" size="10 10 0.1"/>
        <body name="thing" pos="0 0 1"><joint type="free"/>{inertial}<geom name="thing" {geom} density="1000"/>
        <body name="tag"><joint name="tag" type="hinge" axis="0 0 1"/><geom name="tag" type="sphere" size="0.005" contype="0" conaffinity="0" mass="0.001"/></body>
        </body></worldbody></mujoco>"#
    );
    Simulation::from_xml(&xml, Path::new("."), "shapes test", 1).unwrap()
}

fn place(sim: &mut Simulation, z: f64, quat: &[serde_json::Value]) {
    let q: Vec<f64> = quat.iter().map(|x| x.as_f64().unwrap()).collect();
    sim.set_state(&[0.0, 0.0, z, q[0], q[1], q[2], q[3], 0.0], &[0.0; 7]);
}

#[test]
fn boxes_cylinders_and_ellipsoids_touch_the_floor_where_mujoco_says() {
    let r = reference();
    for shape in ["box", "cylinder", "ellipsoid"] {
        let s = &r["shapes"][shape];
        let mut sim = scene(s["geom"].as_str().unwrap());
        for pose in s["poses"].as_array().unwrap() {
            place(&mut sim, pose["centre_z"].as_f64().unwrap(), pose["quat"].as_array().unwrap());
            let ours = sim.contacts();
            let theirs = pose["contacts"].as_array().unwrap();
            assert_eq!(ours.len(), theirs.len(), "{shape} at {}: {ours:?}", pose["quat"]);
            // Each of MuJoCo's contacts has one of ours at the same place and depth.
            for t in theirs {
                let pos: Vec<f64> = t["pos"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
                let dist = t["dist"].as_f64().unwrap();
                let near = ours.iter().any(|c| (0..3).all(|i| (c.pos[i] - pos[i]).abs() < 1e-4) && (c.dist - dist).abs() < 1e-5 && c.normal == [0.0, 0.0, 1.0]);
                assert!(near, "{shape} at {}: MuJoCo's contact at {pos:?}, dist {dist} not among {ours:?}", pose["quat"]);
            }
        }
        // Dropped from 1 cm above the floor: at rest after 2 s where MuJoCo's is.
        for rest in s["rest"].as_array().unwrap() {
            let quat = rest["quat"].as_array().unwrap();
            let want = rest["centre_z"].as_f64().unwrap();
            place(&mut sim, want + 0.01, quat);
            for _ in 0..1000 {
                sim.step(&[]);
            }
            let mut qpos = [0.0; 8];
            let mut qvel = [0.0; 7];
            sim.read_state(&mut qpos, &mut qvel);
            assert!((qpos[2] - want).abs() < 1e-3, "{shape} rests at {} (MuJoCo: {want})", qpos[2]);
            assert_eq!(sim.contacts().len() as u64, rest["ncon"].as_u64().unwrap(), "{shape} at rest");
        }
    }
}

#[test]
fn a_lone_free_body_is_a_clear_error() {
    let xml = r#"<mujoco><worldbody><geom name="floor" type="plane" size="10 10 0.1"/>
        <body name="brick" pos="0 0 1"><joint type="free"/><geom type="box" size="0.2 0.1 0.05"/></body></worldbody></mujoco>"#;
    let err = Simulation::from_xml(xml, Path::new("."), "brick.xml", 1).err().expect("not supported").to_string();
    assert!(err.contains("lone free body"), "{err}");
}

#[test]
fn an_ellipsoid_weighing_into_a_body_without_inertial_is_a_clear_error() {
    // The loader would weigh it as a 12-point hull (0.6 of its volume); MuJoCo weighs the ellipsoid.
    let xml = r#"<mujoco><worldbody><geom name="floor" type="plane" size="10 10 0.1"/>
        <body name="egg" pos="0 0 1"><joint type="hinge"/><geom name="egg" type="ellipsoid" size="0.2 0.1 0.05"/></body></worldbody></mujoco>"#;
    let err = Simulation::from_xml(xml, Path::new("."), "egg.xml", 1).err().expect("refused").to_string();
    assert!(err.contains("geom 'egg'") && err.contains("<inertial>"), "{err}");
}

#[test]
fn a_height_field_is_a_clear_error_naming_it() {
    let xml = r#"<mujoco><asset><hfield name="terrain" nrow="2" ncol="2" size="1 1 0.1 0.1"/></asset><worldbody><geom name="floor" type="plane" size="10 10 0.1"/>
        <body name="lump" pos="0 0 1"><joint type="hinge"/><geom name="lump" type="hfield" hfield="terrain"/></body></worldbody></mujoco>"#;
    let err = Simulation::from_xml(xml, Path::new("."), "lump.xml", 1).err().expect("not supported").to_string();
    assert!(err.contains("lump") && err.contains("Hfield") && err.contains("ellipsoids"), "{err}");
}
