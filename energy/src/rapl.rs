//! CPU package and DRAM energy from RAPL counters, through Linux's powercap sysfs
//! (`/sys/class/powercap/intel-rapl:N[:M]/{name,energy_uj,max_energy_range_uj}`; AMD's
//! packages appear there too). The counters are machine-wide and, on recent kernels,
//! readable by root only.

use std::path::{Path, PathBuf};

use crate::counter::WrappingCounter;

/// The powercap tree of this machine.
pub const POWERCAP: &str = "/sys/class/powercap";

/// What a RAPL domain measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// A CPU package (cores, caches, uncore).
    Package,
    /// The DRAM attached to a package.
    Dram,
}

/// One readable RAPL domain.
#[derive(Debug)]
pub struct RaplDomain {
    pub domain: Domain,
    /// powercap's name (`package-0`, `dram`) and zone (`intel-rapl:0:2`).
    pub name: String,
    energy_uj: PathBuf,
    counter: WrappingCounter,
}

impl RaplDomain {
    /// Joules since the previous reading (0 for the first); `None` once unreadable.
    pub fn joules(&mut self) -> Option<f64> {
        let now = read_u64(&self.energy_uj)?;
        Some(self.counter.advance(now) as f64 * 1e-6)
    }
}

/// The package and DRAM domains under `root` whose counters this process can read, or why
/// there are none.
pub fn discover(root: &Path) -> Result<Vec<RaplDomain>, String> {
    let entries = std::fs::read_dir(root).map_err(|e| format!("RAPL: {} is not readable ({e})", root.display()))?;
    let mut zones: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        // intel-rapl-mmio:N repeats the package that intel-rapl:N already counts.
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("intel-rapl:")))
        .collect();
    zones.sort();
    let mut domains = Vec::new();
    let mut unreadable = 0;
    for zone in zones {
        let Ok(name) = std::fs::read_to_string(zone.join("name")) else { continue };
        let name = name.trim().to_string();
        let domain = if name.starts_with("package") {
            Domain::Package
        } else if name == "dram" {
            Domain::Dram
        } else {
            // core/uncore are parts of the package; psys counts more than the CPU.
            continue;
        };
        let energy_uj = zone.join("energy_uj");
        let Some(first) = read_u64(&energy_uj) else {
            unreadable += 1;
            continue;
        };
        let range = read_u64(&zone.join("max_energy_range_uj")).unwrap_or(0);
        let mut counter = WrappingCounter::new(range);
        counter.advance(first);
        let zone_name = zone.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        domains.push(RaplDomain { domain, name: format!("{name} ({zone_name})"), energy_uj, counter });
    }
    if domains.iter().any(|d| d.domain == Domain::Package) {
        Ok(domains)
    } else if unreadable > 0 {
        Err(format!("RAPL: {unreadable} domain(s) under {} are not readable by this user (root only on recent kernels)", root.display()))
    } else {
        Err(format!("RAPL: no package domain under {}", root.display()))
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
