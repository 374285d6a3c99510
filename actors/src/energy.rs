//! This actor process's energy, measured by its own meters and sent with its stats: a learner
//! sums what its remote actors' machines used.

use std::sync::OnceLock;

use spikerl_energy::{Account, ComponentEnergy, EnergyOptions, Sampler, Source};
use spikerl_net::wire::{EnergyPart, ProcessEnergy};

struct ProcessMeter {
    account: Account,
    options: EnergyOptions,
    process: u64,
}

static METER: OnceLock<ProcessMeter> = OnceLock::new();

/// Starts metering this process (once; later calls change nothing).
pub fn start_metering(cpu_watts_per_core: Option<f64>) {
    METER.get_or_init(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let process = spikerl_snn::rng::SplitMix::new(nanos ^ (u64::from(std::process::id()) << 40)).next_u64();
        ProcessMeter { account: Sampler::global().open(Vec::new()), options: EnergyOptions::new(cpu_watts_per_core, None, 1.0), process }
    });
}

/// The process's energy since metering started (`None` before).
pub fn process_energy() -> Option<ProcessEnergy> {
    let m = METER.get()?;
    let parts = ComponentEnergy::from_usage(&m.account.usage(), &m.options)
        .into_iter()
        .map(|c| EnergyPart { component: if c.component.starts_with("gpu") { "gpu".into() } else { c.component }, measured: c.source == Source::Measured, joules: c.joules })
        .collect();
    Some(ProcessEnergy { process: m.process, parts })
}
