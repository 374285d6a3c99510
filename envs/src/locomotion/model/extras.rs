//! The MuJoCo attributes rapier3d-mjcf does not carry over: the integrator, the contact
//! parameters of geoms (margin, solref, solimp, condim), the limit parameters of joints
//! (solreflimit, solimplimit). Read from the same XML by [`super::Model::from_xml`].

use std::collections::HashMap;

use crate::locomotion::constraints::{DEFAULT_SOLIMP, DEFAULT_SOLREF};

/// MuJoCo's `<option integrator>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrator {
    /// Semi-implicit Euler with implicit joint damping (MuJoCo's default).
    Euler,
    /// Fourth-order Runge–Kutta.
    Rk4,
}

/// Contact parameters of one geom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeomParams {
    pub margin: f64,
    pub solref: [f64; 2],
    pub solimp: [f64; 5],
    pub condim: u32,
}

impl Default for GeomParams {
    fn default() -> Self {
        Self { margin: 0.0, solref: DEFAULT_SOLREF, solimp: DEFAULT_SOLIMP, condim: 3 }
    }
}

/// Limit parameters of one joint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitParams {
    pub solref: [f64; 2],
    pub solimp: [f64; 5],
}

impl Default for LimitParams {
    fn default() -> Self {
        Self { solref: DEFAULT_SOLREF, solimp: DEFAULT_SOLIMP }
    }
}

#[derive(Debug, Clone)]
pub struct Extras {
    pub integrator: Integrator,
    pub geoms: HashMap<String, GeomParams>,
    pub joints: HashMap<String, LimitParams>,
}

fn numbers<const N: usize>(owner: &str, attr: &str, text: &str, into: &mut [f64; N]) -> Result<(), String> {
    let values: Vec<f64> = text
        .split_whitespace()
        .map(str::parse::<f64>)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{owner} {attr}=\"{text}\": {e}"))?;
    if values.len() > N {
        return Err(format!("{owner} {attr}=\"{text}\": at most {N} numbers"));
    }
    into[..values.len()].copy_from_slice(&values);
    Ok(())
}

impl Extras {
    pub fn parse(xml: &str) -> Result<Self, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
        let integrator = match doc.descendants().find(|n| n.has_tag_name("option")).and_then(|n| n.attribute("integrator")) {
            None | Some("Euler") | Some("implicit") | Some("implicitfast") => Integrator::Euler,
            Some("RK4") => Integrator::Rk4,
            Some(other) => return Err(format!("unknown integrator \"{other}\"")),
        };
        let mut geoms = HashMap::new();
        for node in doc.descendants().filter(|n| n.has_tag_name("geom")) {
            let Some(name) = node.attribute("name") else { continue };
            let owner = format!("geom {name}");
            let mut p = GeomParams::default();
            if let Some(v) = node.attribute("margin") {
                p.margin = v.trim().parse().map_err(|e| format!("{owner} margin: {e}"))?;
            }
            if let Some(v) = node.attribute("solref") {
                numbers(&owner, "solref", v, &mut p.solref)?;
            }
            if let Some(v) = node.attribute("solimp") {
                numbers(&owner, "solimp", v, &mut p.solimp)?;
            }
            if let Some(v) = node.attribute("condim") {
                p.condim = v.trim().parse().map_err(|e| format!("{owner} condim: {e}"))?;
            }
            geoms.insert(name.to_string(), p);
        }
        let mut joints = HashMap::new();
        for node in doc.descendants().filter(|n| n.has_tag_name("joint")) {
            let Some(name) = node.attribute("name") else { continue };
            let owner = format!("joint {name}");
            let mut p = LimitParams::default();
            if let Some(v) = node.attribute("solreflimit") {
                numbers(&owner, "solreflimit", v, &mut p.solref)?;
            }
            if let Some(v) = node.attribute("solimplimit") {
                numbers(&owner, "solimplimit", v, &mut p.solimp)?;
            }
            joints.insert(name.to_string(), p);
        }
        Ok(Self { integrator, geoms, joints })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_loader_drops_and_rejects_garbage() {
        let xml = r#"<mujoco><option integrator="RK4"/><worldbody>
            <geom name="floor" type="plane" margin="0.01" solimp="0.8 0.8 0.01"/>
            <body><joint name="j" solreflimit="0.05 2"/></body></worldbody></mujoco>"#;
        let e = Extras::parse(xml).unwrap();
        assert_eq!(e.integrator, Integrator::Rk4);
        assert_eq!(e.geoms["floor"].margin, 0.01);
        assert_eq!(e.geoms["floor"].solimp, [0.8, 0.8, 0.01, 0.5, 2.0]);
        assert_eq!(e.joints["j"].solref, [0.05, 2.0]);
        assert!(Extras::parse(r#"<mujoco><worldbody><geom name="g" margin="x"/></worldbody></mujoco>"#).is_err());
        assert!(Extras::parse(r#"<mujoco><option integrator="leapfrog"/></mujoco>"#).is_err());
    }
}
