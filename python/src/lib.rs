//! `spikerl._spikerl`: the compiled half of the `spikerl` Python package. It holds the tasks
//! (one env, or many stepped on Rust threads with the GIL released) and the spiking policy;
//! `python/spikerl/` wraps them in Gymnasium's classes. Every error a caller can cause is a
//! `ValueError` and leaves the object as it was.

use std::sync::Mutex;

use numpy::{PyArray1, PyArray2, PyArray3, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use spikerl_envs::locomotion::LocomotionEnv;
use spikerl_envs::render::Follower;
use spikerl_envs::{Autoreset, Env, EnvSpec, StepInfo, VecEnv, make_locomotion};
use spikerl_snn::{ActorSpec, OpCounts, ParamSet, Policy as Engine};

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A lock that a panic elsewhere cannot make unusable for good: the state behind it is only
/// changed by calls that validate first.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A task by id (any of `spikerl.TASKS`, in any spelling) or an MJCF file; Gymnasium's own
/// tasks are Gymnasium's business.
fn make(task: &str) -> PyResult<Box<dyn Env>> {
    refuse_gymnasiums(task)?;
    spikerl_envs::make(task).map_err(value_error)
}

fn refuse_gymnasiums(task: &str) -> PyResult<()> {
    match task.strip_prefix(spikerl_envs::gym::PREFIX) {
        Some(id) => Err(value_error(format!("'{task}': for Gymnasium's own task use gymnasium.make('{id}')"))),
        None => Ok(()),
    }
}

/// The keys of Gymnasium's `info` for a step of task `id`, and how to read each from a step.
#[derive(Clone, Copy)]
enum InfoKey {
    X,
    Y,
    XVelocity,
    YVelocity,
    DistanceFromOrigin,
    /// A reward term, by its index in the port's `reward_terms`.
    Term(usize),
}

impl InfoKey {
    fn read(self, info: &StepInfo) -> f64 {
        match self {
            Self::X => info.x_position,
            Self::Y => info.y_position,
            Self::XVelocity => info.x_velocity,
            Self::YVelocity => info.y_velocity,
            Self::DistanceFromOrigin => info.x_position.hypot(info.y_position),
            Self::Term(i) => info.reward_terms[i],
        }
    }
}

/// Gymnasium's step `info` keys, in its order, for each task (v4: `x_position` and
/// `x_velocity` for the planar walkers, the reward terms besides for the others; Pendulum
/// reports nothing). A task on an MJCF file reports the positions, velocities and its terms.
fn info_keys(spec: &EnvSpec) -> Vec<(&'static str, InfoKey)> {
    use InfoKey::*;
    let xy = [("x_position", X), ("y_position", Y), ("distance_from_origin", DistanceFromOrigin), ("x_velocity", XVelocity), ("y_velocity", YVelocity)];
    match spec.id.as_str() {
        "Hopper-v4" | "Walker2d-v4" => vec![("x_position", X), ("x_velocity", XVelocity)],
        "HalfCheetah-v4" => vec![("x_position", X), ("x_velocity", XVelocity), ("reward_run", Term(0)), ("reward_ctrl", Term(1))],
        "Ant-v4" => [vec![("reward_forward", Term(0)), ("reward_ctrl", Term(1)), ("reward_survive", Term(2))], xy.to_vec(), vec![("forward_reward", Term(0))]].concat(),
        "Humanoid-v4" => [vec![("reward_linvel", Term(0)), ("reward_quadctrl", Term(1)), ("reward_alive", Term(2))], xy.to_vec(), vec![("forward_reward", Term(0))]].concat(),
        "Pendulum-v1" => Vec::new(),
        _ => xy.iter().copied().chain(spec.reward_terms.iter().enumerate().map(|(i, name)| (*name, Term(i)))).collect(),
    }
}

/// What a task is: ids, sizes, bounds, limits.
fn describe<'py>(py: Python<'py>, spec: &EnvSpec) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", &spec.id)?;
    d.set_item("observation_low", PyArray1::from_slice(py, &spec.observation_space.low))?;
    d.set_item("observation_high", PyArray1::from_slice(py, &spec.observation_space.high))?;
    d.set_item("action_low", PyArray1::from_slice(py, &spec.action_space.low))?;
    d.set_item("action_high", PyArray1::from_slice(py, &spec.action_space.high))?;
    d.set_item("max_episode_steps", spec.max_episode_steps)?;
    d.set_item("dt", spec.dt)?;
    d.set_item("info_keys", info_keys(spec).iter().map(|(k, _)| *k).collect::<Vec<_>>())?;
    Ok(d)
}

/// Gymnasium's step: (observation, reward, terminated, truncated, info).
type StepResult<'py> = (Bound<'py, PyArray1<f32>>, f64, bool, bool, Bound<'py, PyDict>);

/// A task, kept as its own type where it can be drawn.
enum TaskEnv {
    Locomotion { env: Box<LocomotionEnv>, camera: Follower },
    Other(Box<dyn Env>),
}

impl TaskEnv {
    fn env(&mut self) -> &mut dyn Env {
        match self {
            Self::Locomotion { env, .. } => env.as_mut(),
            Self::Other(env) => env.as_mut(),
        }
    }
}

/// One task (`spikerl.envs.SpikerlEnv` is the Gymnasium env around it).
#[pyclass(module = "spikerl._spikerl")]
struct Task {
    env: Mutex<TaskEnv>,
    spec: EnvSpec,
    keys: Vec<(&'static str, InfoKey)>,
}

#[pymethods]
impl Task {
    #[new]
    fn new(task: &str) -> PyResult<Self> {
        let mut env = match make_locomotion(task) {
            Ok(env) => TaskEnv::Locomotion { camera: Follower::for_task(&env), env: Box::new(env) },
            // Pendulum, or a name `make` explains the trouble with.
            Err(_) => TaskEnv::Other(make(task)?),
        };
        let spec = env.env().spec().clone();
        Ok(Self { keys: info_keys(&spec), spec, env: Mutex::new(env) })
    }

    /// The current state drawn from a camera that follows the robot: `height × width × 3`
    /// bytes (RGB). Only the locomotion tasks are drawn.
    fn render<'py>(&self, py: Python<'py>, width: usize, height: usize) -> PyResult<Bound<'py, PyArray3<u8>>> {
        if !(16..=4096).contains(&width) || !(16..=4096).contains(&height) {
            return Err(value_error(format!("a frame of {width}×{height}: width and height must be from 16 to 4096")));
        }
        let mut rgb = vec![0u8; width * height * 3];
        {
            let mut task = lock(&self.env);
            let TaskEnv::Locomotion { env, camera } = &mut *task else {
                return Err(value_error(format!("{} is not drawn: only the locomotion tasks render", self.spec.id)));
            };
            py.detach(|| camera.draw(env, width, height, &mut rgb));
        }
        PyArray1::from_vec(py, rgb).reshape([height, width, 3])
    }

    /// id, observation/action bounds (float32 arrays), max_episode_steps, dt, info_keys.
    fn describe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        describe(py, &self.spec)
    }

    /// Starts an episode (`seed` reseeds the task; None continues its random stream); the first
    /// observation.
    #[pyo3(signature = (seed=None))]
    fn reset<'py>(&self, py: Python<'py>, seed: Option<u64>) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let mut obs = vec![0.0; self.spec.obs_dim()];
        let mut task = lock(&self.env);
        task.env().reset_into(seed, &mut obs).map_err(value_error)?;
        if let TaskEnv::Locomotion { camera, .. } = &mut *task {
            camera.restart();
        }
        Ok(PyArray1::from_vec(py, obs))
    }

    /// One step: (observation, reward, terminated, truncated, info).
    fn step<'py>(&self, py: Python<'py>, action: PyReadonlyArray1<'py, f32>) -> PyResult<StepResult<'py>> {
        let mut obs = vec![0.0; self.spec.obs_dim()];
        let out = {
            let action = action.as_slice().map_err(value_error)?;
            lock(&self.env).env().step_into(action, &mut obs).map_err(value_error)?
        };
        let info = PyDict::new(py);
        for &(key, read) in &self.keys {
            info.set_item(key, read.read(&out.info))?;
        }
        Ok((PyArray1::from_vec(py, obs), out.reward, out.terminated, out.truncated, info))
    }
}

/// What a vector step returns to Python: batched arrays, and Gymnasium's `info` values per key.
type VecStepResult<'py> = (
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<bool>>,
    Bound<'py, PyArray1<bool>>,
    Bound<'py, PyArray1<bool>>,
    Bound<'py, PyArray2<f64>>,
    Option<Bound<'py, PyArray2<f32>>>,
);

/// `num_envs` copies of a task stepped on `threads` Rust threads, the GIL released while they
/// step (`spikerl.vector.SpikerlVectorEnv` is the Gymnasium vector env around it).
#[pyclass(module = "spikerl._spikerl")]
struct VecTask {
    envs: Mutex<VecEnv>,
    spec: EnvSpec,
    keys: Vec<(&'static str, InfoKey)>,
    num_envs: usize,
    same_step: bool,
}

#[pymethods]
impl VecTask {
    /// `autoreset`: "next_step" (Gymnasium's default) or "same_step".
    #[new]
    #[pyo3(signature = (task, num_envs, threads=1, autoreset="next_step"))]
    fn new(task: &str, num_envs: usize, threads: usize, autoreset: &str) -> PyResult<Self> {
        if num_envs == 0 {
            return Err(value_error("num_envs must be at least 1"));
        }
        if threads == 0 {
            return Err(value_error("threads must be at least 1"));
        }
        let mode = match autoreset {
            "next_step" => Autoreset::NextStep,
            "same_step" => Autoreset::SameStep,
            other => return Err(value_error(format!("autoreset '{other}': 'next_step' or 'same_step'"))),
        };
        refuse_gymnasiums(task)?;
        let envs = VecEnv::make(task, num_envs, threads).map_err(value_error)?.with_autoreset(mode);
        let spec = envs.spec().clone();
        Ok(Self { keys: info_keys(&spec), spec, envs: Mutex::new(envs), num_envs, same_step: mode == Autoreset::SameStep })
    }

    fn describe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        describe(py, &self.spec)
    }

    #[getter]
    fn num_envs(&self) -> usize {
        self.num_envs
    }

    /// Starts every env's episode (env i gets `seed + i`); observations, `num_envs × obs_dim`.
    #[pyo3(signature = (seed=None))]
    fn reset<'py>(&self, py: Python<'py>, seed: Option<u64>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let obs = py.detach(|| lock(&self.envs).reset(seed).map(<[f32]>::to_vec)).map_err(value_error)?;
        self.batch(py, obs)
    }

    /// Steps every env with its row of `actions` (`num_envs × act_dim`, float32): observations,
    /// rewards, terminated, truncated, reset (this step reset the env instead), the info values
    /// (`num_envs × len(info_keys)`), and with "same_step" the final observations of the
    /// episodes that ended (rows of the others are zero).
    fn step<'py>(&self, py: Python<'py>, actions: PyReadonlyArray2<'py, f32>) -> PyResult<VecStepResult<'py>> {
        let (n, act_dim) = (self.num_envs, self.spec.act_dim());
        if actions.shape() != [n, act_dim] {
            return Err(value_error(format!("actions have shape {:?}, the vector env expects ({n}, {act_dim})", actions.shape())));
        }
        let actions = actions.as_slice().map_err(value_error)?;
        let (obs, rewards, terminated, truncated, reset, info, final_obs) = py
            .detach(|| {
                let mut envs = lock(&self.envs);
                let steps = envs.step(actions)?.to_vec();
                let obs = envs.obs().to_vec();
                let final_obs = self.same_step.then(|| {
                    let d = self.spec.obs_dim();
                    let mut f = vec![0.0; n * d];
                    for i in (0..n).filter(|&i| steps[i].done()) {
                        f[i * d..(i + 1) * d].copy_from_slice(envs.final_obs(i));
                    }
                    f
                });
                let info: Vec<f64> = steps.iter().flat_map(|s| self.keys.iter().map(move |(_, k)| k.read(&s.info))).collect();
                Ok::<_, spikerl_envs::EnvError>((
                    obs,
                    steps.iter().map(|s| s.reward).collect::<Vec<_>>(),
                    steps.iter().map(|s| s.terminated).collect::<Vec<_>>(),
                    steps.iter().map(|s| s.truncated).collect::<Vec<_>>(),
                    steps.iter().map(|s| s.reset).collect::<Vec<_>>(),
                    info,
                    final_obs,
                ))
            })
            .map_err(value_error)?;
        let info = PyArray1::from_vec(py, info).reshape([n, self.keys.len()])?;
        let final_obs = final_obs.map(|f| self.batch(py, f)).transpose()?;
        Ok((self.batch(py, obs)?, PyArray1::from_vec(py, rewards), PyArray1::from_vec(py, terminated), PyArray1::from_vec(py, truncated), PyArray1::from_vec(py, reset), info, final_obs))
    }
}

impl VecTask {
    fn batch<'py>(&self, py: Python<'py>, rows: Vec<f32>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let n = rows.len() / self.spec.obs_dim().max(1);
        PyArray1::from_vec(py, rows).reshape([n, self.spec.obs_dim()])
    }
}

/// A trained actor (a `.paramset` file that `spikerl train` writes, spiking or dense), run by
/// the event-driven engine: no torch.
#[pyclass(module = "spikerl._spikerl")]
struct Policy {
    engine: Mutex<Engine>,
    params: ParamSet,
}

#[pymethods]
impl Policy {
    #[staticmethod]
    fn load(path: std::path::PathBuf) -> PyResult<Self> {
        let bytes = std::fs::read(&path).map_err(|e| value_error(format!("cannot read {}: {e}", path.display())))?;
        let params = ParamSet::decode(&bytes).map_err(|e| value_error(format!("{} is not a policy (.paramset): {e}", path.display())))?;
        let engine = Engine::new(&params).map_err(value_error)?;
        Ok(Self { engine: Mutex::new(engine), params })
    }

    #[getter]
    fn obs_dim(&self) -> usize {
        self.params.spec().obs_dim()
    }

    #[getter]
    fn act_dim(&self) -> usize {
        self.params.spec().act_dim()
    }

    /// "spiking" (PopSAN) or "dense" (MLP).
    #[getter]
    fn kind(&self) -> &'static str {
        match self.params.spec() {
            ActorSpec::Spiking(_) => "spiking",
            ActorSpec::Dense(_) => "dense",
        }
    }

    /// Seeds a stochastic (Poisson) encoder; the default encoding draws nothing.
    fn seed(&self, seed: u64) {
        lock(&self.engine).seed(seed);
    }

    /// The deterministic action for one observation (`obs_dim` floats), or for each row of a
    /// batch (`n × obs_dim`), as float32.
    fn act<'py>(&self, py: Python<'py>, array: PyReadonlyArrayDyn<'py, f32>) -> PyResult<Bound<'py, PyAny>> {
        let (obs_dim, act_dim) = (self.obs_dim(), self.act_dim());
        let shape = array.shape().to_vec();
        let rows = match shape.as_slice() {
            [d] if *d == obs_dim => 1,
            [n, d] if *d == obs_dim => *n,
            _ => return Err(value_error(format!("obs has shape {shape:?}, the policy expects ({obs_dim},) or (n, {obs_dim})"))),
        };
        let obs = array.as_slice().map_err(value_error)?;
        if let Some(i) = obs.iter().position(|x| !x.is_finite()) {
            return Err(value_error(format!("obs[{i}] is {}: observations must be finite", obs[i])));
        }
        let mut actions = vec![0.0f32; rows * act_dim];
        {
            let mut engine = lock(&self.engine);
            for (o, a) in obs.chunks(obs_dim).zip(actions.chunks_mut(act_dim)) {
                engine.act(o, a).map_err(value_error)?;
            }
        }
        let out = PyArray1::from_vec(py, actions);
        Ok(if shape.len() == 1 { out.into_any() } else { out.reshape([rows, act_dim])?.into_any() })
    }

    /// What the actor computed over every action so far: inferences, synaptic operations,
    /// multiply–accumulates, neuron updates, spikes per layer, and the energy per action these
    /// counts imply (pJ; 45 nm figures, see docs/energy.md), beside the dense actor's.
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let engine = lock(&self.engine);
        let c: &OpCounts = engine.total_counts();
        let d = PyDict::new(py);
        d.set_item("inferences", c.inferences)?;
        d.set_item("sops", c.sops)?;
        d.set_item("encoder_macs", c.encoder_macs)?;
        d.set_item("decoder_macs", c.decoder_macs)?;
        d.set_item("dense_macs", c.dense_macs)?;
        d.set_item("neuron_updates", c.neuron_updates)?;
        d.set_item("spikes_per_layer", c.spikes.clone())?;
        let energy = PyDict::new(py);
        match self.params.spec() {
            ActorSpec::Spiking(spec) => {
                let e = spikerl_snn::energy_per_inference(spec, c);
                energy.set_item("snn_pj", e.snn_pj)?;
                energy.set_item("loihi_pj", e.loihi_pj)?;
                energy.set_item("same_shape_ann_pj", e.ann_pj)?;
            }
            ActorSpec::Dense(_) => {
                let per = c.dense_macs as f64 / c.inferences.max(1) as f64;
                energy.set_item("ann_pj", per * spikerl_snn::E_MAC_PJ)?;
            }
        }
        d.set_item("energy_per_action", energy)?;
        Ok(d)
    }
}

#[pymodule]
fn _spikerl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Task>()?;
    m.add_class::<VecTask>()?;
    m.add_class::<Policy>()?;
    m.add("TASKS", spikerl_envs::ENV_IDS.to_vec())?;
    Ok(())
}
