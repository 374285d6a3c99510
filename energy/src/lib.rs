//! Energy and carbon of a run, honestly labelled.
//!
//! Meters ([`sampler`]) read what this machine lets a process read: RAPL package and DRAM
//! counters through powercap sysfs, NVML's per-GPU total-energy counters (the driver's library
//! loaded at run time). Where a counter is not readable the figure is estimated and says so:
//! the process's CPU time × watts per core (default: CodeCarbon's fallback 85 W TDP spread over
//! the logical CPUs), resident memory × 3 W per 8 GB (CodeCarbon's convention). Runs sharing a
//! process (`--side-by-side`) share each increment equally. [`report`] turns the counts into
//! joules, kWh and CO2e (kWh × PUE × carbon intensity) for `energy.json`.

pub mod counter;
pub mod nvml;
pub mod process;
pub mod rapl;
pub mod report;
pub mod sampler;

pub use report::{ComponentEnergy, EnergyOptions, EnergyReport, FALLBACK_CPU_TDP_W, RAM_WATTS_PER_GB, Session, Source, WORLD_CARBON_INTENSITY};
pub use sampler::{Account, Channel, Meter, Sampler, Usage};
