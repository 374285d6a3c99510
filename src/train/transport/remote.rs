//! Actors on other machines: the learner's QUIC endpoint (`spikerl_net::quic`), the credit it
//! grants back as batches are accepted, and what it reports per connected actor (connected
//! since, transitions/s, policy lag, refused batches), the departed folded into totals.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use crossbeam_channel::Receiver;
use serde::{Deserialize, Serialize};
use spikerl_net::TransitionBatch;
use spikerl_net::quic::{LearnerAddress, LearnerLink, LearnerOptions, LinkEvent, RUN_OVER, Spread, TlsFiles};
use spikerl_net::wire::{EnergyPart, ProcessEnergy};
use spikerl_energy::{ComponentEnergy, Source};
use spikerl_snn::{ParamSet, Precision};

use super::LearnerTransport;
use crate::train::output::MetricsRecord;

/// `spikerl learner`'s network settings.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    pub listen: SocketAddr,
    pub tls: TlsFiles,
    pub token: String,
    /// Parameters on the wire: bf16 (default) or f32 (exact).
    pub param_precision: Precision,
    /// Where actors reach this learner, and the name in its certificate (for the other
    /// learners of the run to send actors here).
    pub advertise: LearnerAddress,
}

/// One remote actor's connection, as `metrics.jsonl` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActorReport {
    /// The learner's id for the connection.
    pub id: u32,
    /// The id the actor gave itself (`spikerl-actor --id`).
    pub claimed_id: u32,
    pub addr: String,
    pub connected: bool,
    /// Seconds since the run started at which this actor (last) connected.
    pub connected_at_s: f64,
    pub transitions: u64,
    pub transitions_per_s: f64,
    pub policy_lag: f64,
    /// Batches the learner refused (beyond credit, wrong shape, out of bounds); they earn no
    /// credit.
    pub dropped_batches: u64,
    /// What the actor last reported (`Stats`): its env steps/s and the policy version it acts with.
    pub reported_steps_per_s: Option<f64>,
    pub reported_policy_version: Option<u64>,
}

/// An actor's report and the counters behind its rates.
struct ActorRecord {
    report: ActorReport,
    /// When the current rate window started, and the transitions counted by then.
    window_start: Instant,
    transitions_at_window_start: u64,
    /// Policy lag summed over this window's batches.
    lag_sum: u64,
    lag_batches: u64,
}

/// The actors that have left, in sum (a long run with churn would otherwise list thousands).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DepartedActors {
    pub connections: u64,
    pub transitions: u64,
    pub dropped_batches: u64,
}

pub struct RemoteActors {
    link: LearnerLink,
    spread: Option<Arc<Spread>>,
    precision: Precision,
    start: Instant,
    actors: BTreeMap<u32, ActorRecord>,
    departed: DepartedActors,
    /// Connection news not yet shown.
    lines: Vec<String>,
    /// A connection ended since memory was last handed back (see [`RemoteActors::poll`]).
    trim_due: bool,
    last_trim: Instant,
    /// Each actor process's energy: its first and its latest report of this session.
    energy: ActorEnergy,
}

/// The remote actors' processes' energy, as they report it (cumulative since each started).
#[derive(Default)]
pub struct ActorEnergy {
    processes: BTreeMap<u64, (Vec<EnergyPart>, Vec<EnergyPart>)>,
}

/// Actor processes remembered (a run with endless churn forgets the oldest beyond this).
const MAX_ENERGY_PROCESSES: usize = 100_000;

impl ActorEnergy {
    /// Takes a report; one that is not a sane energy report is refused with the reason.
    pub fn record(&mut self, report: ProcessEnergy) -> Result<(), String> {
        if report.parts.len() > 8 {
            return Err(format!("{} energy parts (at most 8)", report.parts.len()));
        }
        if let Some(p) = report.parts.iter().find(|p| !(matches!(p.component.as_str(), "cpu" | "ram" | "gpu") && p.joules.is_finite() && p.joules >= 0.0)) {
            return Err(format!("energy part {:?} ({} J) is not cpu, ram or gpu with a finite, non-negative energy", p.component, p.joules));
        }
        if self.processes.len() >= MAX_ENERGY_PROCESSES && !self.processes.contains_key(&report.process) {
            self.processes.pop_first();
        }
        self.processes.entry(report.process).and_modify(|(_, latest)| *latest = report.parts.clone()).or_insert_with(|| (report.parts.clone(), report.parts));
        Ok(())
    }

    /// What the actor processes used between their first and latest reports, per component.
    pub fn components(&self) -> Vec<ComponentEnergy> {
        let mut sums: BTreeMap<(String, bool), f64> = BTreeMap::new();
        for (first, latest) in self.processes.values() {
            for p in latest {
                let before: f64 = first.iter().filter(|f| f.component == p.component && f.measured == p.measured).map(|f| f.joules).sum();
                *sums.entry((p.component.clone(), p.measured)).or_insert(0.0) += (p.joules - before).max(0.0);
            }
        }
        let n = self.processes.len();
        sums.into_iter()
            .map(|((component, measured), joules)| ComponentEnergy {
                component: format!("actors/{component}"),
                source: if measured { Source::Measured } else { Source::Estimated },
                method: format!("reported by {n} remote actor process(es), each by its own meters, from its first report of the session to its last (every 5 s)"),
                joules,
            })
            .collect()
    }
}

impl RemoteActors {
    /// Listens for actors; with `spread`, this learner sends new actors on to the least-loaded
    /// learner of the run.
    pub fn listen(opts: &RemoteOptions, run_id: &str, env_id: &str, act_noise: f32, params: &ParamSet, spread: Option<Arc<Spread>>) -> Result<Self> {
        let options = LearnerOptions {
            listen: opts.listen,
            tls: opts.tls.clone(),
            token: opts.token.clone(),
            run_id: run_id.into(),
            env_id: env_id.into(),
            act_noise,
            random_steps: 0,
            spread: spread.clone(),
        };
        let link = LearnerLink::listen(options, params.encode(opts.param_precision), 64)?;
        Ok(Self { link, spread, precision: opts.param_precision, start: Instant::now(), actors: BTreeMap::new(), departed: DepartedActors::default(), lines: Vec::new(), trim_due: false, last_trim: Instant::now(), energy: ActorEnergy::default() })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.link.local_addr()
    }

    fn connected(&self) -> u64 {
        self.actors.values().filter(|a| a.report.connected).count() as u64
    }

    fn take_events(&mut self) {
        while let Ok(event) = self.link.events.try_recv() {
            match event {
                LinkEvent::Connected { actor_id, claimed_id, addr, envs } => {
                    let line = format!("actor {actor_id} (says {claimed_id}) connected from {addr} ({envs} envs)");
                    tracing::info!("{line}");
                    self.lines.push(line);
                    let report = ActorReport {
                        id: actor_id,
                        claimed_id,
                        addr: addr.to_string(),
                        connected: true,
                        connected_at_s: self.start.elapsed().as_secs_f64(),
                        transitions: 0,
                        transitions_per_s: 0.0,
                        policy_lag: 0.0,
                        dropped_batches: 0,
                        reported_steps_per_s: None,
                        reported_policy_version: None,
                    };
                    self.actors.insert(actor_id, ActorRecord { report, window_start: Instant::now(), transitions_at_window_start: 0, lag_sum: 0, lag_batches: 0 });
                }
                LinkEvent::Redirected { addr, to } => {
                    let line = format!("actor at {addr} sent to the learner at {to}");
                    tracing::info!("{line}");
                    self.lines.push(line);
                }
                LinkEvent::Disconnected { actor_id, reason } => {
                    self.trim_due = true;
                    tracing::warn!("actor {actor_id} disconnected: {reason}");
                    self.lines.push(format!("actor {actor_id} disconnected: {reason}"));
                    if let Some(a) = self.actors.get_mut(&actor_id) {
                        a.report.connected = false;
                    }
                }
                LinkEvent::Refused { addr, reason } => {
                    self.trim_due = true;
                    tracing::warn!("refused a connection from {addr}: {reason}");
                    self.lines.push(format!("refused a connection from {addr}: {reason}"));
                }
                LinkEvent::Stats { actor_id, stats } => {
                    if let Some(Err(why)) = stats.energy.map(|e| self.energy.record(e)) {
                        tracing::warn!("actor {actor_id}'s energy report ignored: {why}");
                    }
                    if let Some(a) = self.actors.get_mut(&actor_id) {
                        a.report.reported_steps_per_s = Some(stats.steps_per_s);
                        a.report.reported_policy_version = Some(stats.policy_version);
                    }
                }
                LinkEvent::BatchRefused { actor_id, reason } => {
                    tracing::warn!("dropped a batch from actor {actor_id}: {reason}");
                    if let Some(a) = self.actors.get_mut(&actor_id) {
                        a.report.dropped_batches += 1;
                    }
                }
            }
        }
    }

    /// Every actor's figures since the last call; an actor that has left is reported once
    /// more (disconnected), then folded into the departed totals.
    fn reports(&mut self) -> Vec<ActorReport> {
        let now = Instant::now();
        let reports: Vec<ActorReport> = self
            .actors
            .values_mut()
            .map(|a| {
                let dt = now.duration_since(a.window_start).as_secs_f64().max(1e-9);
                a.report.transitions_per_s = (a.report.transitions - a.transitions_at_window_start) as f64 / dt;
                a.report.policy_lag = if a.lag_batches > 0 { a.lag_sum as f64 / a.lag_batches as f64 } else { 0.0 };
                (a.window_start, a.transitions_at_window_start, a.lag_sum, a.lag_batches) = (now, a.report.transitions, 0, 0);
                a.report.clone()
            })
            .collect();
        for r in reports.iter().filter(|r| !r.connected) {
            self.actors.remove(&r.id);
            self.departed.connections += 1;
            self.departed.transitions += r.transitions;
            self.departed.dropped_batches += r.dropped_batches;
        }
        reports
    }
}

impl LearnerTransport for RemoteActors {
    fn batches(&self) -> &Receiver<TransitionBatch> {
        &self.link.batches
    }

    fn actors(&self) -> u64 {
        self.connected()
    }

    fn learner_loads(&self, actors_per_learner: &[u64]) {
        if let Some(s) = &self.spread {
            s.set_loads(actors_per_learner);
        }
    }

    /// Connection events first, so that an actor's batches count from its first one; a newly
    /// connecting actor takes its share of the uniform-random start that is left.
    fn poll(&mut self, random_left: u64) -> Vec<String> {
        self.take_events();
        // What ended connections' buffers took goes back to the system, at most every 2 s.
        if self.trim_due && self.last_trim.elapsed() > std::time::Duration::from_secs(2) {
            spikerl_learner::return_free_memory();
            (self.trim_due, self.last_trim) = (false, Instant::now());
        }
        self.link.set_random_steps(random_left / (self.connected() + 1));
        std::mem::take(&mut self.lines)
    }

    fn taken(&mut self, batch: &TransitionBatch, accepted: bool, version: u64) {
        if !self.actors.contains_key(&batch.actor_id) {
            // Its Connected event is queued behind this batch's arrival.
            self.take_events();
        }
        if let Some(a) = self.actors.get_mut(&batch.actor_id) {
            if accepted {
                a.report.transitions += batch.len() as u64;
                if batch.policy_version > 0 {
                    a.lag_sum += version.saturating_sub(batch.policy_version);
                    a.lag_batches += 1;
                }
            } else {
                a.report.dropped_batches += 1;
            }
        }
        // A refused batch earns no credit.
        if accepted {
            self.link.consumed(batch.actor_id, batch.len() as u64);
        }
    }

    fn publish(&mut self, params: &ParamSet) {
        self.link.publish(params.encode(self.precision));
    }

    fn report(&mut self, record: &mut MetricsRecord) {
        record.remote_actors = Some(self.reports());
        record.departed_actors = Some(self.departed.clone()).filter(|d| d.connections > 0);
    }

    fn energy(&mut self) -> Vec<ComponentEnergy> {
        self.take_events();
        self.energy.components()
    }

    fn close(self: Box<Self>) -> Vec<String> {
        self.link.close(RUN_OVER);
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(process: u64, cpu: f64, gpu: Option<f64>) -> ProcessEnergy {
        let mut parts = vec![EnergyPart { component: "cpu".into(), measured: false, joules: cpu }];
        parts.extend(gpu.map(|j| EnergyPart { component: "gpu".into(), measured: true, joules: j }));
        ProcessEnergy { process, parts }
    }

    #[test]
    fn actor_processes_count_once_from_their_first_report_of_the_session() {
        let mut e = ActorEnergy::default();
        // Process 1 with two connections reporting the same cumulative figures.
        e.record(report(1, 100.0, None)).unwrap();
        e.record(report(1, 100.0, None)).unwrap();
        e.record(report(1, 160.0, None)).unwrap();
        e.record(report(2, 50.0, Some(1000.0))).unwrap();
        e.record(report(2, 80.0, Some(1500.0))).unwrap();
        let parts = e.components();
        let joules = |name: &str| parts.iter().find(|p| p.component == name).map(|p| p.joules);
        assert_eq!(joules("actors/cpu"), Some(60.0 + 30.0));
        assert_eq!(joules("actors/gpu"), Some(500.0));
        assert!(parts.iter().find(|p| p.component == "actors/gpu").is_some_and(|p| p.source == Source::Measured));
        for bad in [
            ProcessEnergy { process: 3, parts: vec![EnergyPart { component: "cpu".into(), measured: false, joules: f64::NAN }] },
            ProcessEnergy { process: 3, parts: vec![EnergyPart { component: "toaster".into(), measured: true, joules: 1.0 }] },
            ProcessEnergy { process: 3, parts: vec![EnergyPart { component: "cpu".into(), measured: false, joules: 1.0 }; 9] },
        ] {
            assert!(e.record(bad).is_err());
        }
        assert_eq!(e.components(), parts, "refused reports change nothing");
    }
}
