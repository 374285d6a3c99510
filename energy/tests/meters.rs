//! The meters' arithmetic on recorded inputs: RAPL counters (with a wrap-around), shared and
//! per-GPU accounts, joules to kWh and CO2e, labels, a missing NVML.

use std::path::{Path, PathBuf};

use spikerl_energy::rapl::{Domain, discover};
use spikerl_energy::{Channel, EnergyOptions, EnergyReport, Meter, Sampler, Session, Source};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spikerl-energy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn zone(root: &Path, zone: &str, name: &str, energy_uj: u64, range: u64) {
    let z = root.join(zone);
    std::fs::create_dir_all(&z).unwrap();
    std::fs::write(z.join("name"), format!("{name}\n")).unwrap();
    std::fs::write(z.join("energy_uj"), format!("{energy_uj}\n")).unwrap();
    std::fs::write(z.join("max_energy_range_uj"), format!("{range}\n")).unwrap();
}

#[test]
fn rapl_reads_packages_and_dram_across_a_wrap() {
    let root = scratch("rapl");
    zone(&root, "intel-rapl:0", "package-0", 262_000_000_000, 262_143_328_850);
    zone(&root, "intel-rapl:0:0", "core", 5, 262_143_328_850);
    zone(&root, "intel-rapl:0:2", "dram", 1_000_000, 65_712_999_613);
    zone(&root, "intel-rapl-mmio:0", "package-0", 7, 262_143_328_850);
    let mut domains = discover(&root).unwrap();
    let kinds: Vec<Domain> = domains.iter().map(|d| d.domain).collect();
    assert_eq!(kinds, [Domain::Package, Domain::Dram], "core is part of the package; mmio repeats it");
    // The package wraps: 143.32885 J to the end of the range, then 6.67115 J.
    std::fs::write(root.join("intel-rapl:0/energy_uj"), "6671150\n").unwrap();
    std::fs::write(root.join("intel-rapl:0:2/energy_uj"), "3500000\n").unwrap();
    assert!((domains[0].joules().unwrap() - 150.0).abs() < 1e-9);
    assert!((domains[1].joules().unwrap() - 2.5).abs() < 1e-9);
    assert_eq!(domains[0].joules(), Some(0.0));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_machine_without_a_package_domain_says_so() {
    let root = scratch("no-rapl");
    zone(&root, "intel-rapl:1", "psys", 1, 10);
    let err = discover(&root).unwrap_err();
    assert!(err.contains("no package domain"), "{err}");
    let err = discover(&root.join("absent")).unwrap_err();
    assert!(err.contains("not readable"), "{err}");
    let _ = std::fs::remove_dir_all(&root);
}

/// A meter that replays recorded increments.
struct Recorded {
    channel: Channel,
    increments: Vec<f64>,
}

impl Meter for Recorded {
    fn channel(&self) -> Channel {
        self.channel
    }

    fn read(&mut self, _dt_s: f64) -> Option<f64> {
        (!self.increments.is_empty()).then(|| self.increments.remove(0))
    }
}

#[test]
fn accounts_share_the_process_and_only_their_own_gpus() {
    let cpu = Recorded { channel: Channel::CpuSeconds, increments: vec![0.0, 10.0, 6.0, 4.0] };
    let gpu = Recorded { channel: Channel::Gpu(1), increments: vec![0.0, 100.0, 80.0, 60.0] };
    let sampler = Sampler::new(vec![Box::new(cpu), Box::new(gpu)], vec![]);
    let a = sampler.open(vec![1]); // reading 1: increments 0 (before any account)
    sampler.sample(); // reading 2: a alone
    let b = sampler.open(vec![]); // reading 3: a alone still (b opens after it)
    let ua = a.usage(); // reading 4: shared
    let ub = b.close();
    assert_eq!(ua.amounts[&Channel::CpuSeconds], 10.0 + 6.0 + 2.0);
    assert_eq!(ua.amounts[&Channel::Gpu(1)], 100.0 + 80.0 + 60.0, "b computes on no GPU: GPU 1 is a's alone");
    assert_eq!(ub.amounts[&Channel::CpuSeconds], 2.0);
    assert!(!ub.amounts.contains_key(&Channel::Gpu(1)));
    assert_eq!((ua.max_sharing, ub.max_sharing), (2, 2));
}

fn options() -> EnergyOptions {
    let mut o = EnergyOptions::new(Some(10.0), Some(400.0), 1.5);
    o.cpu_watts_source = "test".into();
    o
}

#[test]
fn joules_become_kwh_and_co2e_and_estimates_say_so() {
    let sampler = Sampler::new(
        vec![Box::new(Recorded { channel: Channel::CpuSeconds, increments: vec![0.0, 360.0] }), Box::new(Recorded { channel: Channel::RamGbSeconds, increments: vec![0.0, 2.0 * 100.0] })],
        vec![],
    );
    let account = sampler.open(vec![]);
    let usage = account.close();
    let components = spikerl_energy::ComponentEnergy::from_usage(&usage, &options());
    assert!(components.iter().all(|c| c.source == Source::Estimated));
    let cpu = components.iter().find(|c| c.component == "cpu").unwrap();
    assert_eq!(cpu.joules, 3600.0, "360 CPU seconds × 10 W");
    let ram = components.iter().find(|c| c.component == "ram").unwrap();
    assert_eq!(ram.joules, 75.0, "200 GB·s × 3/8 W per GB");
    assert!(cpu.method.contains("10.00 W per core"), "{}", cpu.method);
    let session = Session { components, seconds: 100.0, env_steps: 2000, updates: 500, notes: vec!["RAPL: none".into()] };
    let r = EnergyReport::new(None, session, &options());
    assert!((r.total_kwh - 3675.0 / 3.6e6).abs() < 1e-15);
    assert!((r.facility_kwh - r.total_kwh * 1.5).abs() < 1e-15);
    assert!((r.kg_co2e - r.total_kwh * 1.5 * 0.4).abs() < 1e-15);
    assert_eq!(r.provenance(), "estimated");
    assert!(r.headline().contains("(estimated)"), "{}", r.headline());
    assert!((r.kwh_per_million_env_steps.unwrap() - r.total_kwh * 500.0).abs() < 1e-12);
    assert!((r.joules_per_thousand_updates.unwrap() - 3675.0 * 2.0).abs() < 1e-9);
}

#[test]
fn a_resumed_run_adds_its_session_to_the_earlier_ones() {
    let part = |component: &str, source, joules| spikerl_energy::ComponentEnergy { component: component.into(), source, method: "m".into(), joules };
    let first = EnergyReport::new(None, Session { components: vec![part("cpu", Source::Estimated, 100.0)], seconds: 10.0, env_steps: 1000, updates: 10, notes: vec!["n".into()] }, &options());
    let path = scratch("report").join("energy.json");
    std::fs::write(&path, serde_json::to_string(&first).unwrap()).unwrap();
    let first = EnergyReport::read(&path).unwrap();
    let second = Session { components: vec![part("cpu", Source::Estimated, 50.0), part("gpu:0", Source::Measured, 150.0)], seconds: 5.0, env_steps: 500, updates: 5, notes: vec!["n".into()] };
    let r = EnergyReport::new(Some(&first), second, &options());
    assert_eq!(r.sessions, 2);
    assert_eq!((r.duration_s, r.env_steps, r.updates), (15.0, 1500, 15));
    assert_eq!(r.total_j, 300.0);
    assert_eq!(r.estimated_share, 0.5);
    assert_eq!(r.provenance(), "50 % estimated");
    assert_eq!(r.notes, ["n"]);
    std::fs::write(&path, "{ not json").unwrap();
    assert!(EnergyReport::read(&path).unwrap_err().contains("not an energy report"));
}

#[test]
fn an_estimate_over_several_sessions_names_the_summed_quantity() {
    let session = |cpu_s: f64, ram_gb: f64, seconds: f64, o: &EnergyOptions| {
        let sampler = Sampler::new(
            vec![Box::new(Recorded { channel: Channel::CpuSeconds, increments: vec![0.0, cpu_s] }), Box::new(Recorded { channel: Channel::RamGbSeconds, increments: vec![0.0, ram_gb * seconds] })],
            vec![],
        );
        let mut usage = sampler.open(vec![]).close();
        usage.seconds = seconds;
        Session { components: spikerl_energy::ComponentEnergy::from_usage(&usage, o), seconds, env_steps: 100, updates: 10, notes: vec![] }
    };
    let method = |r: &EnergyReport, c: &str| r.components.iter().find(|p| p.component == c).unwrap().method.clone();
    let o = options();
    let first = EnergyReport::new(None, session(600.0, 1.0, 1000.0, &o), &o);
    assert!(method(&first, "cpu").starts_with("process CPU time 600 s × 10.00 W per core"), "{}", method(&first, "cpu"));
    let both = EnergyReport::new(Some(&first), session(1400.0, 4.0, 1000.0, &o), &o);
    assert!(method(&both, "cpu").starts_with("process CPU time 2000 s × 10.00 W per core"), "{}", method(&both, "cpu"));
    assert!(method(&both, "ram").starts_with("resident memory, mean 2.50 GB × "), "{}", method(&both, "ram"));
    assert_eq!(both.components.iter().find(|p| p.component == "cpu").unwrap().joules, 20000.0);
    // A session estimated at another rate keeps both descriptions.
    let mut other = options();
    other.cpu_watts_per_core = 20.0;
    let mixed = EnergyReport::new(Some(&both), session(100.0, 1.0, 10.0, &other), &other);
    assert_eq!(
        method(&mixed, "cpu"),
        format!("earlier sessions: {}; the latest session: process CPU time 100 s × 20.00 W per core (test)", method(&both, "cpu"))
    );
}

#[test]
fn a_missing_nvml_is_reported_not_a_panic() {
    let err = spikerl_energy::nvml::Nvml::open_from(&["/nonexistent/libnvidia-ml.so.1"]).err().expect("no NVML there");
    assert!(err.contains("NVML") && err.contains("/nonexistent/libnvidia-ml.so.1"), "{err}");
}

#[test]
fn this_process_is_metered_and_labels_what_it_cannot_read() {
    let sampler = Sampler::global();
    let account = sampler.open(vec![]);
    // Spin until this process has used 0.3 CPU seconds more (a loaded machine gives a spinning
    // thread less than its wall time).
    let (cpu0, t) = (spikerl_energy::process::cpu_seconds().unwrap(), std::time::Instant::now());
    let mut x = 0u64;
    while spikerl_energy::process::cpu_seconds().unwrap() - cpu0 < 0.3 && t.elapsed().as_secs() < 60 {
        for _ in 0..100_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
    }
    std::hint::black_box(x);
    let usage = account.close();
    let channels = sampler.channels();
    let cpu_measured = channels.contains(&Channel::CpuPackage);
    if cpu_measured {
        assert!(usage.amounts.get(&Channel::CpuPackage).copied().unwrap_or(0.0) > 0.0);
    } else {
        assert!(sampler.unavailable().iter().any(|u| u.starts_with("RAPL")), "{:?}", sampler.unavailable());
        let cpu_s = usage.amounts[&Channel::CpuSeconds];
        assert!((0.3..60.0).contains(&cpu_s), "0.3 CPU s of spinning (and the other tests' threads) metered as {cpu_s} CPU s");
    }
}
