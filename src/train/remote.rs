//! Actors on other machines: the learner's QUIC endpoint, and what it reports per actor
//! (connected since, transitions/s, policy lag, refused batches).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use spikerl_net::TransitionBatch;
use spikerl_net::quic::{LearnerLink, LearnerOptions, LinkEvent, TlsFiles};
use spikerl_snn::{ParamSet, Precision as WirePrecision};

/// `spikerl learner`'s network settings.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    pub listen: SocketAddr,
    pub tls: TlsFiles,
    pub token: String,
    /// Parameters on the wire: bf16 (default) or f32 (exact).
    pub param_precision: WirePrecision,
}

/// One remote actor, as `metrics.jsonl` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActorReport {
    pub id: u32,
    pub addr: String,
    pub connected: bool,
    /// Seconds since the run started at which this actor (last) connected.
    pub connected_at_s: f64,
    pub transitions: u64,
    pub transitions_per_s: f64,
    pub policy_lag: f64,
    /// Batches the learner refused (wrong shape, non-finite values).
    pub dropped_batches: u64,
    /// What the actor last reported (`Stats`): its env steps/s and the policy version it acts with.
    pub reported_steps_per_s: Option<f64>,
    pub reported_policy_version: Option<u64>,
}

pub struct Remote {
    pub link: LearnerLink,
    precision: WirePrecision,
    start: Instant,
    actors: BTreeMap<u32, (ActorReport, Instant, u64, u64, u64)>,
    /// Connection news not yet shown.
    lines: Vec<String>,
}

impl Remote {
    pub fn listen(opts: &RemoteOptions, run_id: &str, env_id: &str, act_noise: f32, params: &ParamSet) -> Result<Self> {
        let options = LearnerOptions {
            listen: opts.listen,
            tls: opts.tls.clone(),
            token: opts.token.clone(),
            run_id: run_id.into(),
            env_id: env_id.into(),
            act_noise,
            random_steps: 0,
        };
        let link = LearnerLink::listen(options, params.encode(opts.param_precision), 64)?;
        Ok(Self { link, precision: opts.param_precision, start: Instant::now(), actors: BTreeMap::new(), lines: Vec::new() })
    }

    pub fn publish(&self, params: &ParamSet) {
        self.link.publish(params.encode(self.precision));
    }

    /// Uniform-random steps a newly connecting actor should take (the rest of start_steps,
    /// shared with the actors already connected).
    pub fn set_random_steps(&self, left: u64) {
        let connected = self.actors.values().filter(|a| a.0.connected).count() as u64;
        self.link.set_random_steps(left / (connected + 1));
    }

    /// Logs connection events; returns the lines for the screen since the last call.
    pub fn poll_events(&mut self) -> Vec<String> {
        self.take_events();
        std::mem::take(&mut self.lines)
    }

    fn take_events(&mut self) {
        let lines = &mut self.lines;
        while let Ok(event) = self.link.events.try_recv() {
            match event {
                LinkEvent::Connected { actor_id, addr, envs } => {
                    tracing::info!("actor {actor_id} connected from {addr} ({envs} envs)");
                    lines.push(format!("actor {actor_id} connected from {addr} ({envs} envs)"));
                    let now = Instant::now();
                    let report = ActorReport {
                        id: actor_id,
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
                    let entry = self.actors.entry(actor_id).or_insert((report.clone(), now, 0, 0, 0));
                    entry.0 = ActorReport { transitions: entry.0.transitions, dropped_batches: entry.0.dropped_batches, ..report };
                    entry.1 = now;
                    entry.2 = entry.0.transitions;
                }
                LinkEvent::Disconnected { actor_id, reason } => {
                    tracing::warn!("actor {actor_id} disconnected: {reason}");
                    lines.push(format!("actor {actor_id} disconnected: {reason}"));
                    if let Some(a) = self.actors.get_mut(&actor_id) {
                        a.0.connected = false;
                    }
                }
                LinkEvent::Refused { addr, reason } => {
                    tracing::warn!("refused a connection from {addr}: {reason}");
                    lines.push(format!("refused a connection from {addr}: {reason}"));
                }
                LinkEvent::Stats { actor_id, stats } => {
                    if let Some(a) = self.actors.get_mut(&actor_id) {
                        a.0.reported_steps_per_s = Some(stats.steps_per_s);
                        a.0.reported_policy_version = Some(stats.policy_version);
                    }
                }
            }
        }
    }

    /// Counts a batch from a remote actor; `accepted` is whether it reached the replay buffer.
    pub fn note_batch(&mut self, batch: &TransitionBatch, version: u64, accepted: bool) {
        if !self.actors.contains_key(&batch.actor_id) {
            // Its Connected event is queued behind this batch's arrival.
            self.take_events();
        }
        if let Some((report, _, _, lag_sum, batches)) = self.actors.get_mut(&batch.actor_id) {
            if accepted {
                report.transitions += batch.len() as u64;
                if batch.policy_version > 0 {
                    *lag_sum += version.saturating_sub(batch.policy_version);
                    *batches += 1;
                }
            } else {
                report.dropped_batches += 1;
            }
        }
    }

    /// Every actor's figures since the last call.
    pub fn reports(&mut self) -> Vec<ActorReport> {
        let now = Instant::now();
        self.actors
            .values_mut()
            .map(|(report, since, seen, lag_sum, batches)| {
                let dt = now.duration_since(*since).as_secs_f64().max(1e-9);
                report.transitions_per_s = (report.transitions - *seen) as f64 / dt;
                report.policy_lag = if *batches > 0 { *lag_sum as f64 / *batches as f64 } else { 0.0 };
                (*since, *seen, *lag_sum, *batches) = (now, report.transitions, 0, 0);
                report.clone()
            })
            .collect()
    }

    pub fn connected(&self) -> usize {
        self.actors.values().filter(|a| a.0.connected).count()
    }
}
