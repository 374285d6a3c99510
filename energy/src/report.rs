//! From what the meters counted to joules, kWh and CO2e: `energy.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::sampler::{Channel, Usage};

/// CodeCarbon's RAM convention: 3 W per 8 GB.
pub const RAM_WATTS_PER_GB: f64 = 3.0 / 8.0;
/// The CPU TDP CodeCarbon falls back to when it does not know the CPU.
pub const FALLBACK_CPU_TDP_W: f64 = 85.0;
/// The world-average carbon intensity of electricity CodeCarbon falls back to when it does
/// not know the location (IEA, 2019), g CO2e per kWh.
pub const WORLD_CARBON_INTENSITY: f64 = 475.0;

const J_PER_KWH: f64 = 3.6e6;

/// Whether a figure was read from a counter or worked out from a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Measured,
    Estimated,
}

/// How energy becomes figures.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyOptions {
    /// Watts per busy core for the CPU estimate, and where the figure comes from.
    pub cpu_watts_per_core: f64,
    pub cpu_watts_source: String,
    /// g CO2e per kWh, and where the figure comes from.
    pub carbon_intensity: f64,
    pub carbon_intensity_source: String,
    /// Power usage effectiveness of the data centre (facility energy / IT energy).
    pub pue: f64,
}

impl EnergyOptions {
    /// The defaults, each overridable: CodeCarbon's fallback TDP spread over this machine's
    /// logical CPUs (a process using every core draws the TDP), the world-average intensity,
    /// PUE 1.
    pub fn new(cpu_watts_per_core: Option<f64>, carbon_intensity: Option<f64>, pue: f64) -> Self {
        let cpus = crate::process::logical_cpus();
        let (cpu_watts_per_core, cpu_watts_source) = match cpu_watts_per_core {
            Some(w) => (w, "given".to_string()),
            None => (FALLBACK_CPU_TDP_W / cpus as f64, format!("{FALLBACK_CPU_TDP_W} W TDP ÷ {cpus} logical CPUs: CodeCarbon's fallback TDP")),
        };
        let (carbon_intensity, carbon_intensity_source) = match carbon_intensity {
            Some(c) => (c, "given".to_string()),
            None => (WORLD_CARBON_INTENSITY, "world average (IEA 2019), CodeCarbon's fallback for an unknown location".to_string()),
        };
        Self { cpu_watts_per_core, cpu_watts_source, carbon_intensity, carbon_intensity_source, pue }
    }
}

/// One component's energy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentEnergy {
    /// `cpu`, `ram`, `gpu:N`; parts of other processes prefixed (`actors/cpu`, `rank 1/cpu`).
    pub component: String,
    pub source: Source,
    /// How it was measured or estimated.
    pub method: String,
    pub joules: f64,
}

impl ComponentEnergy {
    /// The components a usage amounts to under `options`.
    pub fn from_usage(usage: &Usage, options: &EnergyOptions) -> Vec<ComponentEnergy> {
        usage
            .amounts
            .iter()
            .map(|(&channel, &amount)| match channel {
                Channel::CpuPackage => ComponentEnergy { component: "cpu".into(), source: Source::Measured, method: "RAPL package counters (the whole machine)".into(), joules: amount },
                Channel::Dram => ComponentEnergy { component: "ram".into(), source: Source::Measured, method: "RAPL DRAM counters (the whole machine)".into(), joules: amount },
                Channel::Gpu(i) => ComponentEnergy { component: format!("gpu:{i}"), source: Source::Measured, method: "NVML total-energy counter (the whole device)".into(), joules: amount },
                Channel::CpuSeconds => {
                    let joules = amount * options.cpu_watts_per_core;
                    ComponentEnergy { component: "cpu".into(), source: Source::Estimated, method: Self::estimate_method("cpu", joules, usage.seconds, options).unwrap_or_default(), joules }
                }
                Channel::RamGbSeconds => {
                    let joules = amount * RAM_WATTS_PER_GB;
                    ComponentEnergy { component: "ram".into(), source: Source::Estimated, method: Self::estimate_method("ram", joules, usage.seconds, options).unwrap_or_default(), joules }
                }
            })
            .collect()
    }

    /// How an estimated CPU or RAM figure of `joules` over `seconds` of wall time was worked
    /// out, with the quantity it came from (CPU seconds, mean resident GB).
    fn estimate_method(component: &str, joules: f64, seconds: f64, options: &EnergyOptions) -> Option<String> {
        match component {
            "cpu" => Some(format!("process CPU time {:.0} s × {:.2} W per core ({})", joules / options.cpu_watts_per_core, options.cpu_watts_per_core, options.cpu_watts_source)),
            "ram" => {
                let mean_gb = if seconds > 0.0 { joules / RAM_WATTS_PER_GB / seconds } else { 0.0 };
                Some(format!("resident memory, mean {mean_gb:.2} GB × {RAM_WATTS_PER_GB} W/GB (CodeCarbon's 3 W per 8 GB)"))
            }
            _ => None,
        }
    }

    /// Adds a later session's figure for the same component and source. An estimate's method
    /// names its quantity (CPU seconds, mean GB) before its rate (`… × 42.50 W per core …`), so
    /// when the earlier sessions used the later one's rate (that of `options`, which made it)
    /// it is worked out again for the sum; otherwise both methods are kept.
    fn add_session(&mut self, later: ComponentEnergy, earlier_seconds: f64, later_seconds: f64, options: &EnergyOptions) {
        let rate = |method: &str| method.split_once(" × ").map(|(_, rate)| rate.to_string());
        let same_rate = self.source == Source::Estimated && rate(&self.method).is_some() && rate(&self.method) == rate(&later.method);
        self.joules += later.joules;
        self.method = match Self::estimate_method(&self.component, self.joules, earlier_seconds + later_seconds, options) {
            Some(summed) if same_rate => summed,
            _ if self.method == later.method => later.method,
            _ => format!("earlier sessions: {}; the latest session: {}", self.method, later.method),
        };
    }

    pub fn kwh(&self) -> f64 {
        self.joules / J_PER_KWH
    }
}

/// What one session of a run measured, before it is added to the run's earlier sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub components: Vec<ComponentEnergy>,
    pub seconds: f64,
    pub env_steps: u64,
    pub updates: u64,
    pub notes: Vec<String>,
}

/// `energy.json`: a run's energy over every session metered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyReport {
    pub components: Vec<ComponentEnergy>,
    pub total_j: f64,
    pub total_kwh: f64,
    /// Share of the total that is estimated rather than measured (0 to 1).
    pub estimated_share: f64,
    pub pue: f64,
    /// `total_kwh × pue`: what the data centre drew for it.
    pub facility_kwh: f64,
    pub carbon_intensity_g_per_kwh: f64,
    pub carbon_intensity_source: String,
    /// `facility_kwh × carbon intensity`.
    pub kg_co2e: f64,
    /// Sessions metered, their wall time, env steps and updates.
    pub sessions: u32,
    pub duration_s: f64,
    pub env_steps: u64,
    pub updates: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kwh_per_million_env_steps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joules_per_thousand_updates: Option<f64>,
    /// Meters that were not available, and how parts were attributed.
    pub notes: Vec<String>,
}

impl EnergyReport {
    /// The run's report after `session`, on top of `previous` sessions' (a resumed run).
    pub fn new(previous: Option<&EnergyReport>, session: Session, options: &EnergyOptions) -> Self {
        let mut components: Vec<ComponentEnergy> = previous.map_or_else(Vec::new, |p| p.components.clone());
        let earlier_seconds = previous.map_or(0.0, |p| p.duration_s);
        for c in session.components {
            match components.iter_mut().find(|p| p.component == c.component && p.source == c.source) {
                Some(p) => p.add_session(c, earlier_seconds, session.seconds, options),
                None => components.push(c),
            }
        }
        let mut notes = previous.map_or_else(Vec::new, |p| p.notes.clone());
        for n in session.notes {
            if !notes.contains(&n) {
                notes.push(n);
            }
        }
        let (sessions, seconds, env_steps, updates) = match previous {
            Some(p) => (p.sessions + 1, p.duration_s + session.seconds, p.env_steps + session.env_steps, p.updates + session.updates),
            None => (1, session.seconds, session.env_steps, session.updates),
        };
        let total_j: f64 = components.iter().map(|c| c.joules).sum();
        let estimated: f64 = components.iter().filter(|c| c.source == Source::Estimated).map(|c| c.joules).sum();
        let total_kwh = total_j / J_PER_KWH;
        let facility_kwh = total_kwh * options.pue;
        Self {
            components,
            total_j,
            total_kwh,
            estimated_share: if total_j > 0.0 { estimated / total_j } else { 0.0 },
            pue: options.pue,
            facility_kwh,
            carbon_intensity_g_per_kwh: options.carbon_intensity,
            carbon_intensity_source: options.carbon_intensity_source.clone(),
            kg_co2e: facility_kwh * options.carbon_intensity / 1000.0,
            sessions,
            duration_s: seconds,
            env_steps,
            updates,
            kwh_per_million_env_steps: (env_steps > 0).then(|| total_kwh * 1e6 / env_steps as f64),
            joules_per_thousand_updates: (updates > 0).then(|| total_j * 1e3 / updates as f64),
            notes,
        }
    }

    /// "measured", "estimated" or "partly estimated (N %)".
    pub fn provenance(&self) -> String {
        match self.estimated_share {
            s if s <= 0.0 => "measured".into(),
            s if s >= 1.0 => "estimated".into(),
            s => format!("{:.0} % estimated", s * 100.0),
        }
    }

    /// One line: `energy 12.3 Wh (estimated) · 5.8 g CO2e`.
    pub fn headline(&self) -> String {
        let energy = if self.total_kwh < 1.0 { format!("{:.2} Wh", self.total_kwh * 1000.0) } else { format!("{:.3} kWh", self.total_kwh) };
        format!("energy {energy} ({}) · {:.1} g CO2e", self.provenance(), self.kg_co2e * 1000.0)
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{} is not an energy report: {e}", path.display()))
    }
}
