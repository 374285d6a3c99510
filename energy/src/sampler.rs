//! The process's energy meters, read every [`PERIOD`] by one thread, and the accounts of the
//! runs that share the process (`--side-by-side` seeds): each reading's increment is split
//! equally among the accounts open at the time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::counter::WrappingCounter;
use crate::nvml::Nvml;
use crate::rapl::{self, Domain, RaplDomain};
use crate::process;

/// How often the global sampler reads the meters: well inside a RAPL counter's wrap time.
pub const PERIOD: Duration = Duration::from_secs(2);

/// What a meter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// Joules of the CPU packages (RAPL, measured, whole machine).
    CpuPackage,
    /// Joules of the DRAM (RAPL, measured, whole machine).
    Dram,
    /// Joules of GPU `n` (NVML, measured, whole device).
    Gpu(u32),
    /// CPU seconds of this process (for the estimate where RAPL is not readable).
    CpuSeconds,
    /// GB × seconds of this process's resident memory (for CodeCarbon's RAM estimate).
    RamGbSeconds,
}

/// One counter, read as increments.
pub trait Meter: Send {
    fn channel(&self) -> Channel;
    /// The amount since the previous reading, `dt_s` seconds ago (`None`: unreadable now).
    fn read(&mut self, dt_s: f64) -> Option<f64>;
}

/// What an account has been credited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub amounts: BTreeMap<Channel, f64>,
    /// Seconds the account was open.
    pub seconds: f64,
    /// The most accounts open at once while this one was (1: it had the process alone).
    pub max_sharing: usize,
}

struct Open {
    usage: Mutex<Usage>,
    /// GPUs this account's run computes on: only their counters are credited to it.
    gpus: Vec<u32>,
}

struct State {
    meters: Vec<Box<dyn Meter>>,
    accounts: Vec<Weak<Open>>,
    last: Instant,
}

/// Meters and the accounts they credit.
pub struct Sampler {
    state: Mutex<State>,
    /// Meters that could not be opened, and why.
    unavailable: Vec<String>,
}

impl Sampler {
    pub fn new(meters: Vec<Box<dyn Meter>>, unavailable: Vec<String>) -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(State { meters, accounts: Vec::new(), last: Instant::now() }), unavailable })
    }

    /// This process's sampler: RAPL where readable (else the CPU-time estimate), RAPL DRAM
    /// (else the resident-memory estimate), every GPU NVML sees; read by a thread of its own.
    pub fn global() -> Arc<Sampler> {
        static GLOBAL: OnceLock<Arc<Sampler>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let (meters, unavailable) = discover();
                let sampler = Sampler::new(meters, unavailable);
                let weak = Arc::downgrade(&sampler);
                let _ = std::thread::Builder::new().name("energy-meter".into()).spawn(move || {
                    while let Some(s) = weak.upgrade() {
                        s.sample();
                        drop(s);
                        std::thread::sleep(PERIOD);
                    }
                });
                sampler
            })
            .clone()
    }

    pub fn unavailable(&self) -> &[String] {
        &self.unavailable
    }

    pub fn channels(&self) -> Vec<Channel> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).meters.iter().map(|m| m.channel()).collect()
    }

    /// Reads every meter and credits the open accounts.
    pub fn sample(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let dt = now.duration_since(state.last).as_secs_f64();
        state.last = now;
        state.accounts.retain(|a| a.strong_count() > 0);
        let open: Vec<Arc<Open>> = state.accounts.iter().filter_map(Weak::upgrade).collect();
        let increments: Vec<(Channel, f64)> = state.meters.iter_mut().filter_map(|m| m.read(dt).map(|v| (m.channel(), v))).collect();
        for account in &open {
            let mut u = account.usage.lock().unwrap_or_else(|e| e.into_inner());
            u.seconds += dt;
            u.max_sharing = u.max_sharing.max(open.len());
        }
        for (channel, amount) in increments {
            let sharers: Vec<&Arc<Open>> = match channel {
                Channel::Gpu(i) => open.iter().filter(|a| a.gpus.contains(&i)).collect(),
                _ => open.iter().collect(),
            };
            for account in &sharers {
                *account.usage.lock().unwrap_or_else(|e| e.into_inner()).amounts.entry(channel).or_insert(0.0) += amount / sharers.len() as f64;
            }
        }
    }

    /// Opens an account for a run computing on `gpus`; it is credited from now on.
    pub fn open(self: &Arc<Self>, gpus: Vec<u32>) -> Account {
        // What was used before belongs to the accounts already open.
        self.sample();
        let open = Arc::new(Open { usage: Mutex::new(Usage { max_sharing: 1, ..Usage::default() }), gpus });
        self.state.lock().unwrap_or_else(|e| e.into_inner()).accounts.push(Arc::downgrade(&open));
        Account { sampler: self.clone(), open }
    }
}

/// A run's share of the process's energy, credited while it lives.
pub struct Account {
    sampler: Arc<Sampler>,
    open: Arc<Open>,
}

impl Account {
    /// What the account has been credited, up to now.
    pub fn usage(&self) -> Usage {
        self.sampler.sample();
        self.open.usage.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn sampler(&self) -> &Sampler {
        &self.sampler
    }

    /// Closes the account: its final usage.
    pub fn close(self) -> Usage {
        self.usage()
    }
}

fn discover() -> (Vec<Box<dyn Meter>>, Vec<String>) {
    let mut meters: Vec<Box<dyn Meter>> = Vec::new();
    let mut unavailable = Vec::new();
    let mut dram = false;
    match rapl::discover(std::path::Path::new(rapl::POWERCAP)) {
        Ok(domains) => {
            dram = domains.iter().any(|d| d.domain == Domain::Dram);
            meters.extend(domains.into_iter().map(|d| Box::new(d) as Box<dyn Meter>));
        }
        Err(why) => {
            unavailable.push(why);
            meters.push(Box::new(ProcessCpu { last: None }));
        }
    }
    if !dram {
        meters.push(Box::new(ProcessRam));
    }
    match Nvml::open().and_then(|n| n.device_count().map(|c| (Arc::new(n), c))) {
        Ok((nvml, count)) => {
            for index in 0..count {
                match nvml.total_energy_mj(index) {
                    Ok(first) => {
                        let mut counter = WrappingCounter::new(0);
                        counter.advance(first);
                        meters.push(Box::new(Gpu { nvml: nvml.clone(), index, counter }));
                    }
                    Err(why) => unavailable.push(format!("GPU {index}: {why}")),
                }
            }
        }
        Err(why) => unavailable.push(why),
    }
    (meters, unavailable)
}

impl Meter for RaplDomain {
    fn channel(&self) -> Channel {
        match self.domain {
            Domain::Package => Channel::CpuPackage,
            Domain::Dram => Channel::Dram,
        }
    }

    fn read(&mut self, _dt_s: f64) -> Option<f64> {
        self.joules()
    }
}

struct Gpu {
    nvml: Arc<Nvml>,
    index: u32,
    counter: WrappingCounter,
}

impl Meter for Gpu {
    fn channel(&self) -> Channel {
        Channel::Gpu(self.index)
    }

    fn read(&mut self, _dt_s: f64) -> Option<f64> {
        let mj = self.nvml.total_energy_mj(self.index).ok()?;
        Some(self.counter.advance(mj) as f64 * 1e-3)
    }
}

struct ProcessCpu {
    last: Option<f64>,
}

impl Meter for ProcessCpu {
    fn channel(&self) -> Channel {
        Channel::CpuSeconds
    }

    fn read(&mut self, _dt_s: f64) -> Option<f64> {
        let now = process::cpu_seconds()?;
        let increment = self.last.map_or(0.0, |last| (now - last).max(0.0));
        self.last = Some(now);
        Some(increment)
    }
}

struct ProcessRam;

impl Meter for ProcessRam {
    fn channel(&self) -> Channel {
        Channel::RamGbSeconds
    }

    fn read(&mut self, dt_s: f64) -> Option<f64> {
        Some(process::resident_gb()? * dt_s)
    }
}
