//! One run configuration: every setting of `spikerl train` / `spikerl learner`, grouped as the
//! report and `--config` files show them, each with its default.
//!
//! A setting comes from, last one winning: the recipe's preset for the task
//! ([`RunConfig::preset`]), the `--config` TOML file, the command line. The file may name a key inside its section
//! (`[algorithm]` `batch_size = 32`) or on its own (`batch_size = 32`).

use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use clap::Args;
use clap::parser::{ArgMatches, ValueSource};
use serde::{Deserialize, Serialize};
use spikerl_learner::collective::Backend;
use spikerl_learner::{ActorConfig, Encoding, Precision, Surrogate, TargetActor, Td3Config};

/// Everything a training run is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The task: a Gymnasium id (any case: Hopper-v4, HalfCheetah-v4, Ant-v4, Walker2d-v4, Humanoid-v4, Pendulum-v1),
    /// gym:ID for Gymnasium's own task on MuJoCo, or an MJCF file.
    #[arg(long, default_value = "Hopper-v4")]
    pub env: String,
    /// The defaults the other settings start from: spikerl's (stabilised against the
    /// saturated-output stall, docs/results/stall-screen.md), or PopSAN's published recipe
    /// exactly (rectangular surrogate, spiking target actor, Poisson encoding on Hopper and
    /// Walker2d), for faithful comparisons.
    #[arg(long, value_enum, default_value_t = Recipe::Spikerl)]
    #[serde(default)]
    pub recipe: Recipe,
    #[command(flatten)]
    pub algorithm: Td3Config,
    #[command(flatten)]
    pub actor: ActorConfig,
    #[command(flatten)]
    pub schedule: Schedule,
    #[command(flatten)]
    pub runtime: Runtime,
    #[command(flatten)]
    #[serde(default)]
    pub energy: EnergyConfig,
}

/// How the run's energy becomes figures (`energy.json`): what a meter cannot read is
/// estimated, and labelled so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Energy")]
pub struct EnergyConfig {
    /// Carbon intensity of the electricity, g CO2e per kWh [default: 475, the world average
    /// (IEA 2019) CodeCarbon falls back to].
    #[arg(long, allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carbon_intensity: Option<f64>,
    /// Power usage effectiveness of the data centre: facility energy per unit of IT energy.
    #[arg(long, default_value_t = 1.0)]
    pub pue: f64,
    /// Watts per busy core for the CPU estimate, used where RAPL counters are not readable
    /// [default: 85 W ÷ this machine's logical CPUs — CodeCarbon's fallback TDP, drawn when
    /// every core is busy].
    #[arg(long, allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_watts_per_core: Option<f64>,
}

impl Default for EnergyConfig {
    fn default() -> Self {
        Self { carbon_intensity: None, pue: 1.0, cpu_watts_per_core: None }
    }
}

impl EnergyConfig {
    pub fn options(&self) -> spikerl_energy::EnergyOptions {
        spikerl_energy::EnergyOptions::new(self.cpu_watts_per_core, self.carbon_intensity, self.pue)
    }

    fn validate(&self) -> Result<()> {
        let positive = |v: f64| v.is_finite() && v >= 0.0;
        if !(self.pue >= 1.0 && self.pue.is_finite()) {
            bail!("--pue must be at least 1 (facility energy over IT energy; it is {})", self.pue);
        }
        if let Some(c) = self.carbon_intensity.filter(|&c| !positive(c)) {
            bail!("--carbon-intensity must be a finite number of g CO2e per kWh, 0 or more (it is {c})");
        }
        if let Some(w) = self.cpu_watts_per_core.filter(|&w| !positive(w)) {
            bail!("--cpu-watts-per-core must be a finite number of watts, 0 or more (it is {w})");
        }
        Ok(())
    }
}

/// How long a run goes and what it does along the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Schedule")]
pub struct Schedule {
    /// Env steps in all (Pendulum-v1's preset: 20000).
    #[arg(long, default_value_t = 1_000_000)]
    pub steps: u64,
    /// Evaluate every this many env steps (Pendulum-v1's preset: 2000).
    #[arg(long, default_value_t = 5000)]
    pub eval_every: u64,
    /// Episodes per evaluation (deterministic policy, no noise).
    #[arg(long, default_value_t = 10)]
    pub eval_episodes: usize,
    /// Checkpoint every this many env steps (0: only at the end).
    #[arg(long, default_value_t = 50_000)]
    pub checkpoint_every: u64,
    /// Publish the actor's parameters to the actors every this many updates.
    #[arg(long, default_value_t = 50)]
    pub publish_every: u64,
    /// Stop once an evaluation's mean return reaches this [default: none].
    #[arg(long, allow_negative_numbers = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_return: Option<f64>,
}

impl Default for Schedule {
    fn default() -> Self {
        Self { steps: 1_000_000, eval_every: 5000, eval_episodes: 10, checkpoint_every: 50_000, publish_every: 50, target_return: None }
    }
}

/// Where and how the run computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Runtime")]
pub struct Runtime {
    /// Seed of the networks' initialisation, the envs and the learner's draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Local actor threads [default: train: the cores minus one, at least 1; learner: 0].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actors: Option<usize>,
    /// Envs each actor steps.
    #[arg(long, default_value_t = 1)]
    pub envs_per_actor: usize,
    /// Threads that share each minibatch on a CPU learner [default: every core].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learner_threads: Option<usize>,
    /// Matrix products in fp32, or bf16 (fp32 master weights and gradients) [default: fp32;
    /// with --resume, the checkpoint's].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    /// The learner's device: auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// The published algorithm exactly, in one thread: collect update_every steps, run as many
    /// updates; the same seed gives the same run bit for bit.
    #[arg(long)]
    pub sync: bool,
    /// Keep the replay buffer in checkpoints (needed for a bitwise-identical resume).
    #[arg(long)]
    pub save_replay: bool,
    /// A batch with an observation component beyond ± this is refused (with actions outside
    /// the task's action space, or a reward beyond --max-abs-reward).
    #[arg(long, default_value_t = 1e6)]
    pub max_abs_obs: f64,
    /// A batch with a reward beyond ± this is refused.
    #[arg(long, default_value_t = 1e6)]
    pub max_abs_reward: f64,
    /// Learner ranks training one policy together, gradients averaged every update (each
    /// with its own actors and replay shard; an update takes a minibatch on every rank). On
    /// one machine `--learners N` starts them with mpirun; under mpirun, srun or torchrun the
    /// launcher's ranks are the learners.
    #[arg(long, default_value_t = 1, help_heading = "Several learners")]
    pub learners: usize,
    /// How the learners average: auto (NCCL under torchrun, MPI under mpirun/srun), mpi, nccl.
    #[arg(long, default_value = "auto", help_heading = "Several learners")]
    #[serde(with = "backend_name")]
    pub collective: Backend,
    /// Seconds a learner waits in a collective before it concludes another died and stops.
    #[arg(long, default_value_t = 120.0, help_heading = "Several learners")]
    pub rank_timeout: f64,
    /// Updates between comparisons of the learners' state checksums.
    #[arg(long, default_value_t = 1000, help_heading = "Several learners")]
    pub check_every: u64,
}

/// The collective by name in TOML files.
mod backend_name {
    use serde::{Deserialize, Deserializer, Serializer};
    use spikerl_learner::collective::Backend;

    pub fn serialize<S: Serializer>(b: &Backend, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&b.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Backend, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Self {
            seed: 0,
            actors: None,
            envs_per_actor: 1,
            learner_threads: None,
            precision: None,
            device: DeviceChoice::Auto,
            sync: false,
            save_replay: false,
            max_abs_obs: 1e6,
            max_abs_reward: 1e6,
            learners: 1,
            collective: Backend::Auto,
            rank_timeout: 120.0,
            check_every: 1000,
        }
    }
}

/// `--device`: where the learner computes.
/// A named starting point for every setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    /// This project's defaults (the flags' defaults below).
    #[default]
    Spikerl,
    /// PopSAN-TD3 as Tang et al. 2020 published it.
    Popsan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceChoice {
    /// CUDA device 0 when there is one, else the CPU.
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s.strip_prefix("cuda:").and_then(|i| i.parse().ok()).map(Self::Cuda).ok_or_else(|| format!("unknown device '{s}' (auto, cpu, cuda or cuda:N)")),
        }
    }
}

impl TryFrom<String> for DeviceChoice {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<DeviceChoice> for String {
    fn from(d: DeviceChoice) -> String {
        d.to_string()
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl From<tch::Device> for DeviceChoice {
    fn from(d: tch::Device) -> Self {
        match d {
            tch::Device::Cuda(i) => Self::Cuda(i),
            _ => Self::Cpu,
        }
    }
}

impl DeviceChoice {
    /// The device, checked against this machine.
    pub fn resolve(self) -> Result<tch::Device> {
        let cuda = |i: usize| -> Result<tch::Device> {
            if !tch::Cuda::is_available() {
                bail!("--device {self}: CUDA is not available on this machine (use cpu or auto)");
            }
            let n = tch::Cuda::device_count() as usize;
            if i >= n {
                bail!("--device {self}: this machine has {n} CUDA device(s)");
            }
            Ok(tch::Device::Cuda(i))
        };
        match self {
            Self::Auto => Ok(if tch::Cuda::is_available() { tch::Device::Cuda(0) } else { tch::Device::Cpu }),
            Self::Cpu => Ok(tch::Device::Cpu),
            Self::Cuda(i) => cuda(i),
        }
    }
}

impl RunConfig {
    /// The recipe's defaults for a task (a canonical id; `gym:ID` gets the port's): the same
    /// everywhere except where a task needs its own.
    pub fn preset(env: &str, recipe: Recipe) -> Self {
        let task = env.strip_prefix(spikerl_envs::gym::PREFIX).unwrap_or(env);
        let mut c = Self { env: env.to_string(), recipe, algorithm: Td3Config::default(), actor: ActorConfig::default(), schedule: Schedule::default(), runtime: Runtime::default(), energy: EnergyConfig::default() };
        if recipe == Recipe::Spikerl {
            // Against the saturated-output stall (docs/results/stall-screen.md): a surrogate
            // with gradient everywhere, and a penalty that keeps the output membranes near
            // threshold.
            c.actor.surrogate = Surrogate::FastSigmoid;
            c.algorithm.membrane_reg = 10.0;
        }
        if recipe == Recipe::Popsan {
            c.algorithm.target_actor = TargetActor::Spiking;
            c.algorithm.policy_delay = 2;
            c.actor.surrogate = Surrogate::Rectangle;
            // popsan_td3 encodes Hopper's and Walker2d's observations as Poisson spikes.
            c.actor.encoding = if matches!(task, "Hopper-v4" | "Walker2d-v4") { Encoding::Poisson } else { Encoding::Deterministic };
        }
        if task == "Pendulum-v1" {
            // 200-step episodes and a small state: start learning early, stop early.
            c.algorithm.start_steps = 1000;
            c.algorithm.update_after = 500;
            c.algorithm.actor_lr = 1e-3;
            c.schedule.steps = 20_000;
            c.schedule.eval_every = 2000;
        }
        c
    }

    /// `given` (parsed from the command line) over the `--config` file over the task's preset.
    /// `matches` says which flags were given; `env` is the task's canonical id (or the MJCF path).
    pub fn resolve(given: &RunConfig, matches: &ArgMatches, file: Option<&Path>, env: &str) -> Result<Self> {
        let path = file;
        let file: Option<toml::Table> = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                Some(toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?)
            }
            None => None,
        };
        let recipe = match file.as_ref().and_then(|f| f.get("recipe")) {
            _ if given_on_command_line(matches, "recipe") => given.recipe,
            Some(r) => r.clone().try_into().context("recipe must be spikerl or popsan")?,
            None => Recipe::default(),
        };
        let mut merged = table(&Self::preset(env, recipe))?;
        if let Some(overrides) = file {
            overlay(&mut merged, overrides).with_context(|| path.map_or("--config".into(), |p| p.display().to_string()))?;
        }
        let mut flags = toml::Table::new();
        for (key, value) in table(given)? {
            match value {
                toml::Value::Table(section) => {
                    let chosen: toml::Table = section.into_iter().filter(|(k, _)| given_on_command_line(matches, k)).collect();
                    flags.insert(key, toml::Value::Table(chosen));
                }
                value if given_on_command_line(matches, &key) => {
                    flags.insert(key, value);
                }
                _ => {}
            }
        }
        overlay(&mut merged, flags)?;
        merged.insert("env".into(), toml::Value::String(env.to_string()));
        let config: Self = toml::Value::Table(merged).try_into().context("bad hyperparameters")?;
        config.validate()?;
        Ok(config)
    }

    /// A configuration from a `--config` file's text alone (its `env` and `recipe`, else the
    /// defaults): the preset, the file over it, checked. Any text is an error or a valid
    /// configuration, never a panic.
    pub fn from_toml(text: &str) -> Result<Self> {
        let file: toml::Table = toml::from_str(text).context("not valid TOML")?;
        let env = match file.get("env") {
            Some(v) => v.as_str().context("env must be a string")?.to_string(),
            None => "Hopper-v4".to_string(),
        };
        let env = spikerl_envs::canonical_id(&env).map_or(env.clone(), str::to_string);
        let recipe = match file.get("recipe") {
            Some(r) => r.clone().try_into().context("recipe must be spikerl or popsan")?,
            None => Recipe::default(),
        };
        let mut merged = table(&Self::preset(&env, recipe))?;
        overlay(&mut merged, file)?;
        merged.insert("env".into(), toml::Value::String(env));
        let config: Self = toml::Value::Table(merged).try_into().context("bad hyperparameters")?;
        config.validate()?;
        Ok(config)
    }

    /// The task a command line asks for: `--env` when given, else the `--config` file's `env`,
    /// else the default.
    pub fn requested_env(given: &RunConfig, matches: &ArgMatches, file: Option<&Path>) -> Result<String> {
        if given_on_command_line(matches, "env") {
            return Ok(given.env.clone());
        }
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let table: toml::Table = toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
            if let Some(env) = table.get("env") {
                return env.as_str().map(str::to_string).with_context(|| format!("{}: env must be a string", path.display()));
            }
        }
        Ok(given.env.clone())
    }

    pub fn validate(&self) -> Result<()> {
        self.algorithm.validate().map_err(anyhow::Error::msg)?;
        self.energy.validate()?;
        if self.actor.actor == spikerl_learner::ActorKind::Mlp && self.algorithm.target_actor == TargetActor::Proxy {
            bail!("--target-actor proxy stands in for a spiking actor's target; a dense actor (--actor mlp) keeps its own: --target-actor spiking");
        }
        // The actor's shape within its bounds, whatever the task's dimensions.
        self.actor.spec(1, 1, 1.0)?;
        let (s, r) = (&self.schedule, &self.runtime);
        if s.steps == 0 || r.envs_per_actor == 0 || s.publish_every == 0 || s.eval_episodes == 0 {
            bail!("--steps, --envs-per-actor, --publish-every and --eval-episodes must be positive");
        }
        if r.learner_threads == Some(0) {
            bail!("--learner-threads must be positive");
        }
        if r.learners == 0 || r.check_every == 0 {
            bail!("--learners and --check-every must be positive");
        }
        if !(r.rank_timeout >= 1.0 && r.rank_timeout.is_finite()) {
            bail!("--rank-timeout must be at least 1 second (it is {})", r.rank_timeout);
        }
        for (flag, v) in [("--max-abs-obs", r.max_abs_obs), ("--max-abs-reward", r.max_abs_reward)] {
            if !(v > 0.0 && v.is_finite()) {
                bail!("{flag} must be a positive finite number (it is {v})");
            }
        }
        if let Some(t) = s.target_return
            && !t.is_finite()
        {
            bail!("--target-return must be a finite number");
        }
        Ok(())
    }

    /// The file a report shows and `--config` reads back.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

fn table(c: &RunConfig) -> Result<toml::Table> {
    match toml::Value::try_from(c)? {
        toml::Value::Table(t) => Ok(t),
        _ => bail!("a run configuration is a table"),
    }
}

fn given_on_command_line(matches: &ArgMatches, id: &str) -> bool {
    matches.try_get_raw(id).ok().flatten().is_some() && matches.value_source(id) == Some(ValueSource::CommandLine)
}

/// Overlays `top` on `base` key by key; a key outside its section goes to the section that
/// has it. Unknown keys are errors.
fn overlay(base: &mut toml::Table, top: toml::Table) -> Result<()> {
    let sections: Vec<String> = base.iter().filter(|(_, v)| v.is_table()).map(|(k, _)| k.clone()).collect();
    for (key, value) in top {
        match value {
            toml::Value::Table(inner) if sections.contains(&key) => {
                let section = base.get_mut(&key).and_then(toml::Value::as_table_mut).expect("a section");
                for (k, v) in inner {
                    section.insert(k, v);
                }
            }
            value => {
                let home = sections.iter().find(|s| section_has(s, &key));
                match home {
                    Some(s) => {
                        base.get_mut(s).and_then(toml::Value::as_table_mut).expect("a section").insert(key, value);
                    }
                    None if key == "env" || key == "recipe" => {
                        base.insert(key, value);
                    }
                    None => bail!("unknown key '{key}' (the keys are the long flags' names, e.g. batch_size for --batch-size)"),
                }
            }
        }
    }
    Ok(())
}

/// Whether `key` belongs to `section` (whether or not the section's value of it is set).
fn section_has(section: &str, key: &str) -> bool {
    let ids = |cmd: clap::Command| cmd.get_arguments().map(|a| a.get_id().to_string()).collect::<Vec<_>>();
    let keys = match section {
        "algorithm" => ids(Td3Config::augment_args(clap::Command::new("x"))),
        "actor" => ids(ActorConfig::augment_args(clap::Command::new("x"))),
        "schedule" => ids(Schedule::augment_args(clap::Command::new("x"))),
        "runtime" => ids(Runtime::augment_args(clap::Command::new("x"))),
        "energy" => ids(EnergyConfig::augment_args(clap::Command::new("x"))),
        _ => Vec::new(),
    };
    keys.iter().any(|k| k == key)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;
    use crate::cli::Cli;
    use crate::cli::train::TrainArgs;

    /// Resolves `spikerl train ARGS` with `file` as the --config file's text.
    fn resolve(args: &[&str], file: Option<&str>) -> Result<RunConfig> {
        // One file per call: the tests run in parallel.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("spikerl-config-test-{}-{call}.toml", std::process::id()));
        let mut argv = vec!["spikerl", "train"];
        argv.extend(args);
        let p = path.to_string_lossy().into_owned();
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
            argv.extend(["--config", &p]);
        }
        let matches = Cli::command().try_get_matches_from(argv)?;
        let sub = matches.subcommand_matches("train").unwrap();
        let args = TrainArgs::from_arg_matches(sub)?;
        let env = RunConfig::requested_env(&args.run, sub, args.config.as_deref())?;
        let env = spikerl_envs::canonical_id(&env).unwrap_or(&env).to_string();
        let r = RunConfig::resolve(&args.run, sub, args.config.as_deref(), &env);
        let _ = std::fs::remove_file(&path);
        r
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_preset() {
        // Pendulum's preset, untouched.
        let c = resolve(&["--env", "pendulum-v1"], None).unwrap();
        assert_eq!((c.algorithm.start_steps, c.schedule.steps, c.algorithm.gamma), (1000, 20_000, 0.99));
        // A sectioned key and a key on its own, both from the file; a flag over the file.
        let file = "[algorithm]\nbatch_size = 32\nactor_hidden = [64]\ngamma = 0.5\n";
        assert!(resolve(&["--env", "pendulum-v1"], Some(file)).is_err(), "actor_hidden is not an algorithm key");
        let file = "actor_hidden = [64]\n[algorithm]\nbatch_size = 32\ngamma = 0.5\n";
        let c = resolve(&["--env", "pendulum-v1", "--gamma", "0.9"], Some(file)).unwrap();
        assert_eq!((c.algorithm.batch_size, c.actor.actor_hidden.clone(), c.algorithm.gamma), (32, vec![64], 0.9));
        assert_eq!(c.algorithm.start_steps, 1000, "the preset stays where nothing overrides it");
        // The file names the task when --env is not given.
        let c = resolve(&[], Some("env = \"Pendulum-v1\"\n")).unwrap();
        assert_eq!((c.env.as_str(), c.schedule.steps), ("Pendulum-v1", 20_000));
        // What the report prints reads back as the same configuration.
        let again = resolve(&[], Some(&c.to_toml())).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn the_spikerl_recipe_is_stabilised_and_flags_override_it() {
        use spikerl_learner::Surrogate;
        for env in ["hopper-v4", "humanoid-v4", "pendulum-v1"] {
            let c = resolve(&["--env", env], None).unwrap();
            assert_eq!((c.recipe, c.actor.surrogate, c.algorithm.membrane_reg), (Recipe::Spikerl, Surrogate::FastSigmoid, 10.0), "{env}");
        }
        let c = resolve(&["--env", "hopper-v4", "--surrogate", "arctan", "--membrane-reg", "0"], None).unwrap();
        assert_eq!((c.actor.surrogate, c.algorithm.membrane_reg), (Surrogate::Arctan, 0.0));
        let c = resolve(&["--env", "hopper-v4"], Some("membrane_reg = 2.5\n")).unwrap();
        assert_eq!((c.actor.surrogate, c.algorithm.membrane_reg), (Surrogate::FastSigmoid, 2.5));
    }

    #[test]
    fn the_popsan_recipe_is_the_published_one_under_any_flag() {
        use spikerl_learner::{Encoding, Surrogate, TargetActor};
        let c = resolve(&["--env", "hopper-v4", "--recipe", "popsan"], None).unwrap();
        assert_eq!((c.actor.surrogate, c.actor.encoding, c.algorithm.target_actor, c.algorithm.policy_delay), (Surrogate::Rectangle, Encoding::Poisson, TargetActor::Spiking, 2));
        assert_eq!(c.algorithm.membrane_reg, 0.0);
        let c = resolve(&["--env", "halfcheetah-v4", "--recipe", "popsan"], None).unwrap();
        assert_eq!(c.actor.encoding, Encoding::Deterministic, "popsan_td3 encodes HalfCheetah deterministically");
        // The recipe from a file, a flag over it; what the report prints reads back the same.
        let c = resolve(&["--env", "hopper-v4", "--surrogate", "arctan"], Some("recipe = \"popsan\"\n")).unwrap();
        assert_eq!((c.recipe, c.actor.surrogate, c.actor.encoding), (Recipe::Popsan, Surrogate::Arctan, Encoding::Poisson));
        assert_eq!(resolve(&[], Some(&c.to_toml())).unwrap(), c);
        assert!(resolve(&[], Some("recipe = \"poppsan\"\n")).is_err());
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let err = resolve(&["--env", "pendulum-v1"], Some("batch_sise = 32\n")).unwrap_err();
        assert!(format!("{err:#}").contains("batch_sise"), "{err:#}");
        let err = resolve(&["--env", "pendulum-v1"], Some("polyak = 1.5\n")).unwrap_err();
        assert!(format!("{err:#}").contains("polyak"), "{err:#}");
        let err = resolve(&["--env", "pendulum-v1", "--precision", "fp8"], None).unwrap_err();
        assert!(format!("{err:#}").contains("fp8"), "{err:#}");
        assert!(resolve(&["--device", "tpu"], None).is_err());
        // Finite is not sane: learning rates, replay ratio, sizes and bounds in their ranges.
        for (args, needle) in [
            (&["--critic-lr", "1e30"][..], "critic_lr"),
            (&["--actor-lr", "inf"], "actor_lr"),
            (&["--actor-lr", "0"], "actor_lr"),
            (&["--updates-per-step", "1e9"], "updates_per_step"),
            (&["--batch-size", "5000", "--replay-size", "1000"], "replay_size"),
            (&["--act-noise", "nan"], "noise"),
            (&["--max-abs-reward", "0"], "--max-abs-reward"),
            (&["--pue", "0.5"], "--pue"),
            (&["--carbon-intensity", "-1"], "--carbon-intensity"),
            (&["--cpu-watts-per-core", "inf"], "--cpu-watts-per-core"),
            (&["--actor", "mlp", "--target-actor", "proxy"], "--actor mlp"),
        ] {
            let err = resolve(&[&["--env", "pendulum-v1"], args].concat(), None).unwrap_err();
            assert!(format!("{err:#}").contains(needle), "{args:?}: {err:#}");
        }
        assert_eq!("cuda:3".parse::<DeviceChoice>(), Ok(DeviceChoice::Cuda(3)));
        // The energy settings come from files as from flags.
        let c = resolve(&["--env", "pendulum-v1", "--pue", "1.2"], Some("[energy]\ncarbon_intensity = 56.0\n")).unwrap();
        assert_eq!((c.energy.pue, c.energy.carbon_intensity), (1.2, Some(56.0)));
    }

    /// A bounded fuzz run (cargo-fuzz's `config` target runs it unbounded): damaged config
    /// files are errors or configurations that pass every check — never a panic.
    #[test]
    fn damaged_config_files_are_errors_or_valid_configurations() {
        use spikerl_rng::{SplitMix, mutate};
        let good = RunConfig::preset("Hopper-v4", Recipe::Popsan).to_toml();
        assert_eq!(RunConfig::from_toml(&good).unwrap(), RunConfig::preset("Hopper-v4", Recipe::Popsan));
        let words = ["=", "\"", "[", "]", "\n", "0", "-1", "1e400", "nan", "inf", "18446744073709551616", "[algorithm]", "[actor]", "actor_hidden = [", "timesteps = ", "batch_size = ", "env = ", "recipe = ", "{", "}", ",", "true", "'"];
        let mut rng = SplitMix::new(11);
        let mut valid = 0;
        for _ in 0..3000 {
            let text = mutate::text(&mut rng, &good, &words);
            if let Ok(c) = RunConfig::from_toml(&text) {
                c.validate().unwrap();
                valid += 1;
            }
        }
        assert!(valid > 0 && valid < 3000, "{valid}");
    }
}
