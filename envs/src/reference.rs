//! Comparison of the ports with MuJoCo's reference data (`shared/reference/mujoco/`): the
//! figures `spikerl envcheck` prints and the fidelity tests assert.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::locomotion::{LocomotionEnv, LocomotionSpec};
use crate::Env;

/// The reference folder: `$SPIKERL_REFERENCE_DIR`, else the first `shared/reference/mujoco`
/// found walking up from the current directory or from this crate.
pub fn find_reference_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("SPIKERL_REFERENCE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let starts = [std::env::current_dir().ok(), Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")))];
    for start in starts.into_iter().flatten() {
        for dir in start.ancestors() {
            for candidate in [dir.join("shared/reference/mujoco"), dir.join("../shared/reference/mujoco")] {
                if candidate.join("Hopper-v4.model.json").is_file() {
                    return Some(candidate);
                }
            }
        }
    }
    None
}

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("cannot read {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("cannot parse {0}: {1}")]
    Parse(PathBuf, serde_json::Error),
    #[error("no reference data for {0} (the ports are Hopper-v4, HalfCheetah-v4, Ant-v4, Walker2d-v4, Humanoid-v4)")]
    UnknownEnv(String),
    #[error(transparent)]
    Env(#[from] crate::EnvError),
}

/// A number that may be written as the string "inf"/"-inf".
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
enum Num {
    F(f64),
    S(NumStr),
}

#[derive(Debug, Clone, Copy, Deserialize)]
enum NumStr {
    #[serde(rename = "inf")]
    Inf,
    #[serde(rename = "-inf")]
    NegInf,
    #[serde(rename = "nan")]
    Nan,
}

impl Num {
    fn get(self) -> f64 {
        match self {
            Num::F(x) => x,
            Num::S(NumStr::Inf) => f64::INFINITY,
            Num::S(NumStr::NegInf) => f64::NEG_INFINITY,
            Num::S(NumStr::Nan) => f64::NAN,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RefBody {
    pub name: Option<String>,
    pub parent: Option<String>,
    pub mass: f64,
}

#[derive(Debug, Deserialize)]
pub struct RefJoint {
    pub name: String,
    pub body: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub range: Option<[f64; 2]>,
    pub armature: f64,
    pub damping: f64,
    pub stiffness: f64,
}

#[derive(Debug, Deserialize)]
pub struct RefActuator {
    pub joint: String,
    pub gear0: f64,
    pub ctrlrange: [f64; 2],
}

#[derive(Debug, Deserialize)]
pub struct RefGeom {
    pub name: Option<String>,
    pub body: Option<String>,
    pub friction: [f64; 3],
    pub contype: u32,
    pub conaffinity: u32,
}

impl RefModel {
    /// The geom pairs MuJoCo's collision may test — contype/conaffinity meet, and its parent
    /// filter on welded bodies passes them — as (with the world's geoms, between bodies).
    /// Anonymous bodies own the anonymous joints and geoms in order, one each (Ant's feet).
    pub fn collision_pairs(&self) -> (usize, usize) {
        let n = self.bodies.len();
        let index = |name: &Option<String>, anonymous: &mut std::vec::IntoIter<usize>| match name {
            Some(name) => self.bodies.iter().position(|b| b.name.as_ref() == Some(name)).unwrap_or(0),
            None => anonymous.next().unwrap_or(0),
        };
        let anonymous: Vec<usize> = (1..n).filter(|&b| self.bodies[b].name.is_none()).collect();
        let parent: Vec<usize> = self.bodies.iter().map(|b| b.parent.as_ref().and_then(|p| self.bodies.iter().position(|x| x.name.as_ref() == Some(p))).unwrap_or(0)).collect();
        let mut jointed = vec![false; n];
        let mut anon = anonymous.clone().into_iter();
        for j in &self.joints {
            jointed[index(&j.body, &mut anon)] = true;
        }
        let mut weld = vec![0; n];
        for b in 1..n {
            weld[b] = if jointed[b] { b } else { weld[parent[b]] };
        }
        let mut anon = anonymous.into_iter();
        let geom_body: Vec<usize> = self.geoms.iter().map(|g| if g.body.as_deref() == Some("world") { 0 } else { index(&g.body, &mut anon) }).collect();
        let (mut with_world, mut between) = (0, 0);
        for i in 0..self.geoms.len() {
            for j in i + 1..self.geoms.len() {
                let (gi, gj) = (&self.geoms[i], &self.geoms[j]);
                if gi.contype & gj.conaffinity == 0 && gj.contype & gi.conaffinity == 0 {
                    continue;
                }
                let (w1, w2) = (weld[geom_body[i]], weld[geom_body[j]]);
                let (p1, p2) = (weld[parent[w1]], weld[parent[w2]]);
                if w1 == w2 || (w1 != 0 && w2 != 0 && (w1 == p2 || w2 == p1)) {
                    continue;
                }
                if geom_body[i] == 0 || geom_body[j] == 0 {
                    with_world += 1;
                } else {
                    between += 1;
                }
            }
        }
        (with_world, between)
    }
}

/// `<Env>.model.json`, the parts the port is checked against.
#[derive(Debug, Deserialize)]
pub struct RefModel {
    pub timestep: f64,
    pub frame_skip: usize,
    pub total_mass: f64,
    pub obs_dim: usize,
    pub act_dim: usize,
    pub bodies: Vec<RefBody>,
    pub joints: Vec<RefJoint>,
    pub actuators: Vec<RefActuator>,
    pub geoms: Vec<RefGeom>,
    pub obs_layout: Vec<ObsBlock>,
}

/// A slice of the observation and what it holds (`qpos[2:]`, `data.cinert.flat …`).
#[derive(Debug, Clone, Deserialize)]
pub struct ObsBlock {
    pub what: String,
    pub start: usize,
    pub len: usize,
}

impl ObsBlock {
    /// The block's short name: `qpos[2:]`, `qvel`, `cinert`, `cfrc_ext` ….
    pub fn name(&self) -> &str {
        let first = self.what.split_whitespace().next().unwrap_or(&self.what);
        first.trim_start_matches("data.").trim_end_matches(".flat")
    }
}

#[derive(Debug, Deserialize)]
struct RawRollout {
    first_terminated_step: Option<usize>,
    torso_xpos: Vec<[Num; 3]>,
    qpos: Vec<Vec<Num>>,
    qvel: Vec<Vec<Num>>,
    reward: Vec<Num>,
    obs: Vec<Vec<Num>>,
    initial: RawInitial,
}

#[derive(Debug, Deserialize)]
struct RawInitial {
    obs: Vec<Num>,
}

/// A 300-step rollout from the exact initial state.
#[derive(Debug, Clone)]
pub struct Rollout {
    pub first_terminated_step: Option<usize>,
    pub torso_xpos: Vec<[f64; 3]>,
    pub qpos: Vec<Vec<f64>>,
    pub qvel: Vec<Vec<f64>>,
    pub reward: Vec<f64>,
    /// The observation before the first step, then after each.
    pub obs: Vec<Vec<f64>>,
}

/// The two reference action sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Zero,
    Sine,
}

impl ActionKind {
    fn file_part(self) -> &'static str {
        match self {
            ActionKind::Zero => "zero_action",
            ActionKind::Sine => "sine_action",
        }
    }

    /// `a_t[j] = 0.5·sin(2π·t·dt·1.5 + j)` for the sine rollout.
    pub fn action(self, t: usize, dt: f64, out: &mut [f32]) {
        for (j, a) in out.iter_mut().enumerate() {
            *a = match self {
                ActionKind::Zero => 0.0,
                ActionKind::Sine => (0.5 * (std::f64::consts::TAU * t as f64 * dt * 1.5 + j as f64).sin()) as f32,
            };
        }
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ReferenceError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReferenceError::Io(path.to_path_buf(), e))?;
    serde_json::from_str(&text).map_err(|e| ReferenceError::Parse(path.to_path_buf(), e))
}

pub fn load_model(dir: &Path, env_id: &str) -> Result<RefModel, ReferenceError> {
    read_json(&dir.join(format!("{env_id}.model.json")))
}

pub fn load_rollout(dir: &Path, env_id: &str, kind: ActionKind) -> Result<Rollout, ReferenceError> {
    let raw: RawRollout = read_json(&dir.join(format!("{env_id}.{}.json", kind.file_part())))?;
    Ok(Rollout {
        first_terminated_step: raw.first_terminated_step,
        torso_xpos: raw.torso_xpos.iter().map(|p| p.map(Num::get)).collect(),
        qpos: raw.qpos.iter().map(|q| q.iter().map(|x| x.get()).collect()).collect(),
        qvel: raw.qvel.iter().map(|q| q.iter().map(|x| x.get()).collect()).collect(),
        reward: raw.reward.iter().map(|x| x.get()).collect(),
        obs: std::iter::once(&raw.initial.obs).chain(&raw.obs).map(|o| o.iter().map(|x| x.get()).collect()).collect(),
    })
}

/// The port's spec for a reference env id.
pub fn port_spec(env_id: &str) -> Result<LocomotionSpec, ReferenceError> {
    crate::registry::locomotion_spec(env_id).ok_or_else(|| ReferenceError::UnknownEnv(env_id.to_string()))
}

/// Runs the port through the same protocol as the reference: exact initial state, `steps`
/// steps, termination ignored.
pub fn port_rollout(spec: &LocomotionSpec, kind: ActionKind, steps: usize) -> Result<Rollout, ReferenceError> {
    let mut env = LocomotionEnv::new(spec.clone())?;
    let torso = env.physics().model().body("torso").ok_or_else(|| crate::EnvError::Model {
        path: spec.id.into(),
        reason: "no body named torso".into(),
    })?;
    let mut obs = vec![0.0; env.spec().obs_dim()];
    let mut action = vec![0.0; env.spec().act_dim()];
    env.reset_without_noise(&mut obs)?;
    let dt = env.spec().dt;
    let mut out = Rollout { first_terminated_step: None, torso_xpos: Vec::new(), qpos: Vec::new(), qvel: Vec::new(), reward: Vec::new(), obs: vec![obs.iter().map(|&x| f64::from(x)).collect()] };
    for t in 0..steps {
        kind.action(t, dt, &mut action);
        let s = env.step_into(&action, &mut obs)?;
        if s.terminated && out.first_terminated_step.is_none() {
            out.first_terminated_step = Some(t);
        }
        out.torso_xpos.push(env.physics().xpos(torso));
        out.qpos.push(env.state().0.to_vec());
        out.qvel.push(env.state().1.to_vec());
        out.reward.push(s.reward);
        out.obs.push(obs.iter().map(|&x| f64::from(x)).collect());
    }
    Ok(out)
}

/// How close a figure must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    /// |port − mujoco| ≤ value.
    Abs(f64),
    /// |port − mujoco| ≤ value·|mujoco|.
    Rel(f64),
}

/// One line of the fidelity table.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub what: String,
    pub port: f64,
    pub mujoco: f64,
    pub tolerance: Tolerance,
}

impl Check {
    fn new(what: impl Into<String>, port: f64, mujoco: f64, tolerance: Tolerance) -> Self {
        Self { what: what.into(), port, mujoco, tolerance }
    }

    pub fn passed(&self) -> bool {
        let err = (self.port - self.mujoco).abs();
        match self.tolerance {
            Tolerance::Abs(t) => err <= t,
            Tolerance::Rel(t) => err <= t * self.mujoco.abs(),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tol = match self.tolerance {
            Tolerance::Abs(t) => format!("±{t}"),
            Tolerance::Rel(t) => format!("±{}%", t * 100.0),
        };
        write!(
            f,
            "{:<44} {:>11.4} {:>11.4} {:>9} {}",
            self.what,
            self.port,
            self.mujoco,
            tol,
            if self.passed() { "ok" } else { "FAIL" }
        )
    }
}

/// Header matching [`Check`]'s `Display`.
pub const CHECK_HEADER: &str = "check                                               port      mujoco       tol";

fn first_term(r: &Rollout) -> f64 {
    r.first_terminated_step.map_or(f64::INFINITY, |t| t as f64)
}

/// The model facts: masses, joints, actuators, timing.
pub fn model_checks(env_id: &str, dir: &Path) -> Result<Vec<Check>, ReferenceError> {
    let spec = port_spec(env_id)?;
    let model = load_model(dir, env_id)?;
    let env = LocomotionEnv::new(spec.clone())?;
    let physics = env.physics().model();
    let mut checks = vec![
        Check::new("timestep", physics.timestep(), model.timestep, Tolerance::Abs(1e-12)),
        Check::new("frame_skip", spec.frame_skip as f64, model.frame_skip as f64, Tolerance::Abs(0.0)),
        Check::new("timestep × frame_skip (env dt)", env.spec().dt, model.timestep * model.frame_skip as f64, Tolerance::Abs(1e-9)),
        Check::new("obs dim", env.spec().obs_dim() as f64, model.obs_dim as f64, Tolerance::Abs(0.0)),
        Check::new("act dim", env.spec().act_dim() as f64, model.act_dim as f64, Tolerance::Abs(0.0)),
    ];
    let masses = physics.body_masses();
    let total: f64 = masses.iter().map(|(_, m)| m).sum();
    checks.push(Check::new("total mass", total, model.total_mass, Tolerance::Rel(1e-3)));
    let anonymous = |i: usize| format!("{}_foot", model.bodies[i - 1].name.as_deref().unwrap_or("body"));
    for (i, b) in model.bodies.iter().enumerate().skip(1) {
        let name = b.name.clone().unwrap_or_else(|| anonymous(i));
        let port = masses.iter().find(|(n, _)| *n == name).map_or(f64::NAN, |(_, m)| *m);
        checks.push(Check::new(format!("mass {name}"), port, b.mass, Tolerance::Rel(1e-3)));
    }
    let joints = physics.joint_facts();
    for rj in model.joints.iter().filter(|j| j.kind != "free") {
        let Some(pj) = joints.iter().find(|j| j.name == rj.name) else {
            checks.push(Check::new(format!("joint {} present", rj.name), 0.0, 1.0, Tolerance::Abs(0.0)));
            continue;
        };
        if let Some([lo, hi]) = rj.range {
            let [plo, phi] = pj.range.unwrap_or([f64::NAN; 2]);
            checks.push(Check::new(format!("joint {} range low", rj.name), plo, lo, Tolerance::Abs(1e-5)));
            checks.push(Check::new(format!("joint {} range high", rj.name), phi, hi, Tolerance::Abs(1e-5)));
        }
        checks.push(Check::new(format!("joint {} armature", rj.name), pj.armature, rj.armature, Tolerance::Abs(1e-6)));
        checks.push(Check::new(format!("joint {} damping", rj.name), pj.damping, rj.damping, Tolerance::Abs(1e-6)));
        checks.push(Check::new(format!("joint {} stiffness", rj.name), pj.stiffness, rj.stiffness, Tolerance::Abs(1e-6)));
    }
    let actuators = physics.actuator_facts();
    for (i, ra) in model.actuators.iter().enumerate() {
        let pa = actuators.get(i);
        let same_joint = pa.is_some_and(|a| a.joint == ra.joint);
        checks.push(Check::new(format!("actuator {i} drives {}", ra.joint), f64::from(u8::from(same_joint)), 1.0, Tolerance::Abs(0.0)));
        checks.push(Check::new(format!("actuator {i} gear"), pa.map_or(f64::NAN, |a| a.gear), ra.gear0, Tolerance::Abs(1e-9)));
        let [lo, hi] = pa.and_then(|a| a.ctrl_range).unwrap_or([f64::NAN; 2]);
        checks.push(Check::new(format!("actuator {i} ctrlrange low"), lo, ra.ctrlrange[0], Tolerance::Abs(1e-9)));
        checks.push(Check::new(format!("actuator {i} ctrlrange high"), hi, ra.ctrlrange[1], Tolerance::Abs(1e-9)));
    }
    let (floor, between) = model.collision_pairs();
    let (port_floor, port_between) = physics.collision_pair_counts();
    checks.push(Check::new("collision pairs with the floor", port_floor as f64, floor as f64, Tolerance::Abs(0.0)));
    checks.push(Check::new("collision pairs between bodies", port_between as f64, between as f64, Tolerance::Abs(0.0)));
    let frictions = physics.geom_frictions();
    for g in &model.geoms {
        let Some(name) = &g.name else { continue };
        let port = frictions.iter().find(|(n, _)| n == name).map_or(f64::NAN, |(_, f)| *f);
        checks.push(Check::new(format!("friction {name}"), port, g.friction[0], Tolerance::Abs(1e-5)));
    }
    Ok(checks)
}

/// The behaviour checks: zero- and sine-action rollouts against MuJoCo's.
pub fn dynamics_checks(env_id: &str, dir: &Path) -> Result<Vec<Check>, ReferenceError> {
    let spec = port_spec(env_id)?;
    let env_id = spec.id;
    let layout = load_model(dir, env_id)?.obs_layout;
    let mj_zero = load_rollout(dir, env_id, ActionKind::Zero)?;
    let mj_sine = load_rollout(dir, env_id, ActionKind::Sine)?;
    let steps = mj_zero.torso_xpos.len();
    let zero = port_rollout(&spec, ActionKind::Zero, steps)?;
    let sine = port_rollout(&spec, ActionKind::Sine, steps)?;
    let z = |r: &Rollout, n: usize| r.torso_xpos[n - 1][2];
    let mut checks = Vec::new();
    match env_id {
        "Hopper-v4" | "Walker2d-v4" => {
            checks.push(Check::new("zero: first terminated step", first_term(&zero), first_term(&mj_zero), Tolerance::Rel(0.25)));
        }
        "HalfCheetah-v4" => {
            for n in [100, 300] {
                checks.push(Check::new(format!("zero: torso z after {n} steps"), z(&zero, n), z(&mj_zero, n), Tolerance::Abs(0.03)));
            }
        }
        _ => {
            for n in [10, 50, 100] {
                checks.push(Check::new(format!("zero: torso z after {n} steps"), z(&zero, n), z(&mj_zero, n), Tolerance::Abs(0.05)));
            }
        }
    }
    let worst = (0..30)
        .map(|t| (sine.torso_xpos[t][2] - mj_sine.torso_xpos[t][2]).abs())
        .fold(0.0, f64::max);
    checks.push(Check::new("sine: max |Δ torso z|, steps 1-30", worst, 0.0, Tolerance::Abs(0.1)));
    // Rewards step for step while the trajectories still coincide: the reward formulas,
    // the v4 quirks (lagging xpos, raw-action control cost, terminal healthy reward) included.
    for (kind, port, mj) in [("zero", &zero, &mj_zero), ("sine", &sine, &mj_sine)] {
        let worst = (0..10).map(|t| (port.reward[t] - mj.reward[t]).abs()).fold(0.0, f64::max);
        checks.push(Check::new(format!("{kind}: max |Δ reward|, steps 1-10"), worst, 0.0, Tolerance::Abs(0.01)));
    }
    // Every part of the observation, from the reset through step 10, relative to the largest
    // magnitude MuJoCo's part reaches there (Humanoid's com-based parts included).
    for (kind, port, mj) in [("zero", &zero, &mj_zero), ("sine", &sine, &mj_sine)] {
        for block in &layout {
            let part = |o: &Vec<f64>| o[block.start..block.start + block.len].to_vec();
            let (mut worst, mut scale) = (0.0f64, 0.0f64);
            for t in 0..=10 {
                for (a, b) in part(&port.obs[t]).iter().zip(part(&mj.obs[t])) {
                    worst = worst.max((a - b).abs());
                    scale = scale.max(b.abs());
                }
            }
            let what = format!("{kind}: obs {} rel. max |Δ|, steps 0-10", block.name());
            checks.push(Check::new(what, worst / scale.max(1e-9), 0.0, Tolerance::Abs(0.01)));
        }
    }
    match env_id {
        "Hopper-v4" | "Walker2d-v4" => {
            checks.push(Check::new("sine: first terminated step", first_term(&sine), first_term(&mj_sine), Tolerance::Rel(0.25)));
        }
        "HalfCheetah-v4" => {
            for n in [100, 300] {
                let dx = |r: &Rollout| r.qpos[n - 1][0] - 0.0;
                checks.push(Check::new(format!("sine: forward displacement after {n}"), dx(&sine), dx(&mj_sine), Tolerance::Rel(0.35)));
            }
        }
        _ => {
            checks.push(Check::new("sine: first terminated step", first_term(&sine), first_term(&mj_sine), Tolerance::Rel(0.35)));
        }
    }
    Ok(checks)
}
