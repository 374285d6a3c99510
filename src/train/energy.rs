//! The run's energy: this process's share while it trains, the other processes' parts
//! (learner ranks), the spiking actor's energy per action on neuromorphic hardware, and
//! `energy.json`, which a resumed run adds its session to.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use spikerl_energy::{Account, ComponentEnergy, EnergyOptions, EnergyReport, Sampler, Session, Source};
use spikerl_learner::collective::Collective;
use spikerl_snn::{ActorSpec, E_MAC_PJ, OpCounts, energy_per_inference};

use super::{Run, RunSummary};

pub const ENERGY_FILE: &str = "energy.json";

/// `energy.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnergyFile {
    #[serde(flatten)]
    pub training: EnergyReport,
    /// The actor at inference, over the final evaluation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference: Option<InferenceEnergy>,
}

/// The actor's operations and energy per action over the final evaluation's episodes, beside
/// the dense actor of the same shape: operation counts × published energies per operation
/// (45 nm: 0.9 pJ per accumulate, 4.6 pJ per multiply–accumulate; Loihi: 23.6 pJ per synaptic
/// operation, 81 pJ per neuron update), not measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceEnergy {
    /// `spiking (PopSAN)` or `dense (MLP)`.
    pub actor: String,
    pub actions: u64,
    /// A spiking actor's layers (none for a dense one).
    pub layers: Vec<LayerActivity>,
    pub sops_per_action: f64,
    /// Float multiply–accumulates: a spiking actor's encoder and decoder, a dense actor's all.
    pub macs_per_action: f64,
    pub neuron_updates_per_action: f64,
    /// This actor on 45 nm.
    pub nj_45nm: f64,
    /// This actor on Loihi (a spiking actor only).
    pub nj_loihi: Option<f64>,
    /// The dense actor of the same shape on 45 nm.
    pub dense_nj_45nm: f64,
    /// The dense actor's 45 nm energy over this actor's.
    pub dense_over_this: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerActivity {
    pub layer: String,
    pub neurons: usize,
    /// Spikes per neuron per timestep.
    pub firing_rate: f64,
}

impl LayerActivity {
    /// Each spiking layer of `spec` (encoder, hidden…, output population) with its firing
    /// rate over what `counts` covers.
    pub fn of(spec: &spikerl_snn::PopSanSpec, counts: &OpCounts) -> Vec<Self> {
        let names = std::iter::once("encoder".to_string()).chain((0..spec.hidden.len()).map(|i| format!("hidden {}", i + 1))).chain(std::iter::once("output population".to_string()));
        names.zip(&counts.layer_neurons).zip(counts.firing_rates(spec.timesteps)).map(|((layer, &neurons), firing_rate)| Self { layer, neurons, firing_rate }).collect()
    }
}

impl InferenceEnergy {
    pub fn of(spec: &ActorSpec, counts: &OpCounts) -> Option<Self> {
        if counts.inferences == 0 {
            return None;
        }
        Some(match spec {
            ActorSpec::Spiking(spec) => {
                let e = energy_per_inference(spec, counts);
                let layers = LayerActivity::of(spec, counts);
                Self {
                    actor: "spiking (PopSAN)".into(),
                    actions: counts.inferences,
                    layers,
                    sops_per_action: e.sops,
                    macs_per_action: e.macs,
                    neuron_updates_per_action: e.neuron_updates,
                    nj_45nm: e.snn_pj / 1000.0,
                    nj_loihi: Some(e.loihi_pj / 1000.0),
                    dense_nj_45nm: e.ann_pj / 1000.0,
                    dense_over_this: e.ann_pj / e.snn_pj.max(f64::MIN_POSITIVE),
                }
            }
            ActorSpec::Dense(_) => {
                let macs = counts.dense_macs as f64 / counts.inferences as f64;
                let nj = macs * E_MAC_PJ / 1000.0;
                Self { actor: "dense (MLP)".into(), actions: counts.inferences, layers: Vec::new(), sops_per_action: 0.0, macs_per_action: macs, neuron_updates_per_action: 0.0, nj_45nm: nj, nj_loihi: None, dense_nj_45nm: nj, dense_over_this: 1.0 }
            }
        })
    }
}

/// The run's account with this process's meters, open while it trains.
pub struct RunEnergy {
    account: Account,
    options: EnergyOptions,
    /// `energy.json` as this session found it: the run's earlier sessions.
    previous: Result<Option<EnergyFile>>,
    /// Whether each checkpoint records the session so far. Several learner ranks sum their
    /// parts in a collective call at the end, which a checkpoint (rank 0's alone) cannot make.
    at_checkpoints: bool,
}

impl RunEnergy {
    pub fn start(run: &Run, learner_ranks: usize) -> Self {
        let gpus = match run.device {
            tch::Device::Cuda(i) => vec![i as u32],
            _ => Vec::new(),
        };
        let path = run.out.join(ENERGY_FILE);
        let previous = path.is_file().then(|| read(&path)).transpose();
        Self { account: Sampler::global().open(gpus), options: run.config.energy.options(), previous, at_checkpoints: learner_ranks <= 1 }
    }

    /// Records the session so far in `energy.json`, beside the checkpoint just written: a
    /// session that never reaches [`finish`](Self::finish) (killed, its machine gone) still
    /// counts up to its last checkpoint, the point its run resumes from. A session that
    /// finishes replaces this record with its whole.
    pub fn record_at_checkpoint(&self, run: &Run, progress: &RunSummary, counts: Option<&OpCounts>) -> Result<()> {
        let Ok(previous) = &self.previous else { return Ok(()) };
        if !self.at_checkpoints {
            return Ok(());
        }
        let usage = self.account.usage();
        let mut notes = self.account_notes(run, usage.max_sharing);
        notes.push(format!("a session counted up to its checkpoint at {} env steps, written while it ran: if it was killed there, what it used after that is missing", progress.env_steps));
        if run.remote.is_some() {
            notes.push("that session's remote actors are not included (they report when a session ends)".into());
        }
        let session = Session { components: ComponentEnergy::from_usage(&usage, &self.options), seconds: progress.session_s, env_steps: progress.session_steps, updates: progress.session_updates, notes };
        self.write(run, previous.as_ref(), session, counts).map(drop)
    }

    /// Closes the account; with learner ranks, sums every rank's parts (a collective call
    /// every rank makes); on rank 0, adds the session to `energy.json`.
    pub fn finish(self, run: &Run, summary: &RunSummary, collective: Option<&dyn Collective>, counts: Option<&OpCounts>) -> Result<Option<EnergyFile>> {
        let usage = self.account.usage();
        let mut notes: Vec<String> = self.account_notes(run, usage.max_sharing);
        let mut components = ComponentEnergy::from_usage(&usage, &self.options);
        components.extend(summary.actor_energy.iter().cloned());
        if let Some(c) = collective.filter(|c| c.world_size() > 1) {
            components = sum_over_ranks(c, components)?;
            notes.push(format!("summed over {} learner ranks (each process's own meters)", c.world_size()));
            if c.rank() > 0 {
                return Ok(None);
            }
        }
        if run.remote.is_some() {
            notes.push("remote actors' machines: as each actor process reports its own meters (actors/…)".into());
        }
        let session = Session { components, seconds: summary.session_s, env_steps: summary.session_steps, updates: summary.session_updates, notes };
        let previous = self.previous.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        self.write(run, previous.as_ref(), session, counts).map(Some)
    }

    /// `energy.json`: the earlier sessions and this one.
    fn write(&self, run: &Run, previous: Option<&EnergyFile>, session: Session, counts: Option<&OpCounts>) -> Result<EnergyFile> {
        let training = EnergyReport::new(previous.map(|p| &p.training), session, &self.options);
        let spec = run.config.actor.spec(run.task.obs_dim, run.task.act_dim, run.task.act_limit)?;
        let inference = counts.and_then(|c| InferenceEnergy::of(&spec, c)).or_else(|| previous.and_then(|p| p.inference.clone()));
        let file = EnergyFile { training, inference };
        write_atomically(&run.out.join(ENERGY_FILE), &file)?;
        Ok(file)
    }

    fn account_notes(&self, run: &Run, sharing: usize) -> Vec<String> {
        let mut notes: Vec<String> = self.account.sampler().unavailable().to_vec();
        if sharing > 1 {
            notes.push(format!("this process ran up to {sharing} runs side by side: each increment of its meters is split equally among the runs open at the time"));
        }
        if matches!(run.device, tch::Device::Cuda(_)) && !self.account.sampler().channels().iter().any(|c| matches!(c, spikerl_energy::Channel::Gpu(_))) {
            notes.push("the learner's GPU is not metered (no NVML counter): its energy is not included".into());
        }
        notes
    }
}

/// The components every rank measured, summed component by component (rank 0's methods).
fn sum_over_ranks(c: &dyn Collective, mine: Vec<ComponentEnergy>) -> Result<Vec<ComponentEnergy>> {
    // Slots every rank agrees on: the learner's CPU, RAM and (up to 16) GPUs, its remote
    // actors' CPU, RAM and GPU, each measured or estimated.
    let names: Vec<String> = ["cpu", "ram"].into_iter().map(String::from).chain((0..16).map(|i| format!("gpu:{i}"))).chain(["actors/cpu", "actors/ram", "actors/gpu"].into_iter().map(String::from)).collect();
    let slot = |part: &ComponentEnergy| names.iter().position(|n| *n == part.component).map(|k| k * 2 + usize::from(part.source == Source::Estimated));
    let mut sums = vec![0.0f64; names.len() * 2];
    for part in &mine {
        if let Some(i) = slot(part) {
            sums[i] += part.joules;
        }
    }
    c.all_reduce_sum(&mut sums).context("summing the learner ranks' energy")?;
    let mut parts = Vec::new();
    for (i, &joules) in sums.iter().enumerate().filter(|(_, j)| **j > 0.0) {
        let (component, estimated) = (names[i / 2].clone(), i % 2 == 1);
        let source = if estimated { Source::Estimated } else { Source::Measured };
        let method = mine.iter().find(|p| p.component == component && p.source == source).map_or("as rank 0's, on another rank".to_string(), |p| p.method.clone());
        parts.push(ComponentEnergy { component, source, method, joules });
    }
    Ok(parts)
}

pub fn read(path: &Path) -> Result<EnergyFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not an energy report (move it away to start the run's energy afresh)", path.display()))
}

fn write_atomically(path: &Path, file: &EnergyFile) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(file)? + "\n").and_then(|_| std::fs::rename(&tmp, path)).with_context(|| format!("cannot write {}", path.display()))
}

/// The report's section.
pub fn markdown(file: &EnergyFile) -> String {
    use std::fmt::Write as _;
    let t = &file.training;
    let mut r = String::new();
    let _ = writeln!(r, "## Energy\n");
    let _ = writeln!(r, "Training, over {} metered session(s) ({:.0} s, {} env steps, {} updates): **{:.5} kWh**, {} — {:.1} g CO2e at {} g/kWh ({}), PUE {}.\n", t.sessions, t.duration_s, t.env_steps, t.updates, t.total_kwh, t.provenance(), t.kg_co2e * 1000.0, t.carbon_intensity_g_per_kwh, t.carbon_intensity_source, t.pue);
    let _ = writeln!(r, "| component | source | kWh | how |\n|---|---|---:|---|");
    for c in &t.components {
        let source = match c.source {
            Source::Measured => "measured",
            Source::Estimated => "estimated",
        };
        let _ = writeln!(r, "| {} | {source} | {:.5} | {} |", c.component, c.kwh(), c.method);
    }
    if let Some(e) = t.kwh_per_million_env_steps {
        let _ = writeln!(r, "\nPer million env steps: {e:.4} kWh; per thousand updates: {:.0} J.", t.joules_per_thousand_updates.unwrap_or(0.0));
    }
    if !t.notes.is_empty() {
        let _ = writeln!(r);
    }
    for n in &t.notes {
        let _ = writeln!(r, "- {n}");
    }
    if let Some(n) = &file.inference {
        let _ = writeln!(r, "\n### The {} actor at inference (final evaluation, {} actions)\n", n.actor, n.actions);
        if !n.layers.is_empty() {
            let _ = writeln!(r, "| layer | neurons | firing rate |\n|---|---:|---:|");
            for l in &n.layers {
                let _ = writeln!(r, "| {} | {} | {:.4} |", l.layer, l.neurons, l.firing_rate);
            }
            let _ = writeln!(r, "\nPer action: {:.0} synaptic operations, {:.0} float MACs (encoder, decoder), {:.0} neuron updates.\n", n.sops_per_action, n.macs_per_action, n.neuron_updates_per_action);
        } else {
            let _ = writeln!(r, "Per action: {:.0} multiply–accumulates.\n", n.macs_per_action);
        }
        let _ = writeln!(r, "| energy per action (estimate) | nJ |\n|---|---:|");
        let _ = writeln!(r, "| this actor, 45 nm (0.9 pJ/AC, 4.6 pJ/MAC) | {:.1} |", n.nj_45nm);
        if let Some(loihi) = n.nj_loihi {
            let _ = writeln!(r, "| this actor on Loihi (23.6 pJ/SOP, 81 pJ/neuron update) | {loihi:.1} |");
            let _ = writeln!(r, "| the dense actor of the same shape, 45 nm | {:.1} |", n.dense_nj_45nm);
            let _ = writeln!(r, "\nDense over spiking (45 nm): {:.2}×.", n.dense_over_this);
        }
        let _ = writeln!(r, "\nThese are operation counts × published energies per operation, not measurements.");
    }
    r
}
