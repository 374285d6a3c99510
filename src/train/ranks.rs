//! Several learners as one run (`--learners N`, or ranks started by `mpirun`, `srun` or
//! torchrun): each rank has its own actors and replay shard and samples its own minibatch;
//! [`Agent::join`](spikerl_learner::Agent::join) averages every gradient over the ranks, so
//! that all take the same steps from rank 0's start.
//!
//! What else the ranks must agree on travels in one small all-reduce per pass of the learner's
//! loop, a [`Round`]: each rank fills its own slot of a zeroed vector and the sum hands every
//! rank every slot (adding zeros is exact). From it every rank takes the same decisions — how
//! many updates the run owes (from all ranks' env steps), when to evaluate, checkpoint and stop
//! — and merges the same observation statistics in the same order, so the normaliser stays
//! identical too. Every `check_every` updates the ranks compare their states' checksums;
//! ranks that differ stop the run.

use std::sync::Arc;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use spikerl_learner::collective::Collective;
use spikerl_learner::normalizer::Normalizer;
use spikerl_learner::td3::check_ranks_agree;

use spikerl_learner::checkpoint::Checkpoint;
use spikerl_learner::collective::{self, Backend, Launch};

use super::{Learner, Run, checkpoints};
use crate::config::Runtime;

/// This process's learner rank of a launched run; `None` for a learner alone.
pub fn connect(r: &Runtime) -> Result<Option<Arc<dyn Collective>>> {
    let launch = Launch::from_env();
    let Some(launch) = launch else {
        if r.learners > 1 {
            bail!("--learners {} needs its ranks started by a launcher: `spikerl train --learners N` does that with mpirun itself, or start them with mpirun/srun/torchrun", r.learners);
        }
        if r.collective == Backend::Nccl || r.collective == Backend::Mpi {
            tracing::info!("--collective {} without a launcher: a single learner", r.collective);
        }
        return Ok(None);
    };
    if r.learners != 1 && r.learners != launch.world {
        bail!("--learners {} but {} started {} ranks", r.learners, launch.launcher, launch.world);
    }
    if r.collective == Backend::Single {
        bail!("--collective single, but {} started {} ranks of this run", launch.launcher, launch.world);
    }
    if r.sync {
        bail!("--sync trains with one learner; several learners are asynchronous");
    }
    if r.save_replay {
        bail!("--save-replay keeps one learner's replay buffer; with several learners each rank's shard refills after a resume");
    }
    let c = collective::connect(r.collective, std::time::Duration::from_secs_f64(r.rank_timeout))?;
    Ok(Some(c))
}

/// `--resume` for every rank: rank 0 reads the checkpoint and hands it to the others (which
/// may run on machines without the file).
pub fn load_for_resume(run: &mut Run, c: &dyn Collective) -> Result<Option<Checkpoint>> {
    let Some(path) = run.resume.clone() else { return Ok(None) };
    let mut bytes = Vec::new();
    let mut failure = None;
    if c.rank() == 0 {
        match std::fs::read(&path) {
            Ok(b) => bytes = b,
            Err(e) => failure = Some(format!("cannot read {}: {e}", path.display())),
        }
    }
    c.broadcast(&mut bytes, 0)?;
    if bytes.is_empty() {
        bail!("{}", failure.unwrap_or_else(|| format!("rank 0 could not read {}", path.display())));
    }
    let ck = Checkpoint::decode(&bytes, &path.display().to_string())?;
    checkpoints::adopt(run, ck, &path).map(Some)
}

/// One rank's figures, as the others (and rank 0's reports) see them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RankFigures {
    pub rank: usize,
    pub env_steps: u64,
    pub episodes: u64,
    /// Actors feeding this rank (local threads and remote connections).
    pub actors: u64,
    /// Its learner's random generator (for checkpoints).
    pub rng: u64,
}

/// What every rank learned from a round.
pub struct Round {
    /// Some rank asked to stop (Ctrl-C, SIGTERM from the launcher).
    pub stop: bool,
    /// Rank 0's evaluation reached `--target-return`.
    pub target_reached: bool,
}

/// What this rank tells the others in a round.
pub struct Report {
    pub stop: bool,
    pub target_reached: bool,
    pub actors: u64,
}

// A slot: env steps, episodes, replay size, stop, target reached, actors, the generator (two
// 32-bit halves), then the observation statistics since the last round.
const FIXED: usize = 8;

pub struct Ranks {
    collective: Arc<dyn Collective>,
    obs_dim: usize,
    /// Updates between checksum comparisons.
    check_every: u64,
    next_check: u64,
    /// Every rank's figures at the last round.
    last: Vec<RankFigures>,
}

impl Ranks {
    pub fn new(collective: Arc<dyn Collective>, obs_dim: usize, check_every: u64, updates: u64) -> Self {
        Self { collective, obs_dim, check_every, next_check: updates + check_every, last: Vec::new() }
    }

    pub fn rank(&self) -> usize {
        self.collective.rank()
    }

    pub fn world(&self) -> usize {
        self.collective.world_size()
    }

    pub fn collective(&self) -> &Arc<dyn Collective> {
        &self.collective
    }

    /// Every rank's figures at the last round.
    pub fn last(&self) -> &[RankFigures] {
        &self.last
    }

    fn slot_len(&self) -> usize {
        FIXED + 1 + 2 * self.obs_dim
    }

    /// One round: every rank calls it at the same point of its loop. Sets the learner's
    /// run-wide counters and merges every rank's new observations into its normaliser.
    pub fn round(&mut self, learner: &mut Learner, report: Report) -> Result<Round> {
        let (n, world, rank) = (self.slot_len(), self.world(), self.rank());
        let mut all = vec![0f64; n * world];
        let slot = &mut all[rank * n..(rank + 1) * n];
        let rng = learner.td3.rng_mut().state();
        slot[..FIXED].copy_from_slice(&[
            learner.env_steps as f64,
            learner.episodes as f64,
            learner.replay.len() as f64,
            f64::from(u8::from(report.stop)),
            f64::from(u8::from(report.target_reached)),
            report.actors as f64,
            (rng >> 32) as f64,
            (rng & 0xffff_ffff) as f64,
        ]);
        // The observations this rank took in since the last round.
        let seen = learner.unshared_observations.replace(Normalizer::new(self.obs_dim)).unwrap_or_else(|| Normalizer::new(self.obs_dim));
        slot[FIXED..].copy_from_slice(&seen.to_vec());
        self.collective.all_reduce_sum(&mut all)?;

        let slots: Vec<&[f64]> = all.chunks_exact(n).collect();
        for s in &slots {
            let seen = Normalizer::from_vec(self.obs_dim, &s[FIXED..]).map_err(anyhow::Error::msg)?;
            learner.td3.normalizer_mut().merge(&seen);
        }
        if learner.updates() >= self.next_check {
            // Every rank has the same update count here: the same decision everywhere.
            self.next_check = learner.updates() + self.check_every;
            check_ranks_agree(&*learner.td3, &*self.collective)?;
        }
        let ranks: Vec<RankFigures> = slots
            .iter()
            .enumerate()
            .map(|(rank, s)| RankFigures { rank, env_steps: s[0] as u64, episodes: s[1] as u64, actors: s[5] as u64, rng: ((s[6] as u64) << 32) | s[7] as u64 })
            .collect();
        learner.run_env_steps = ranks.iter().map(|r| r.env_steps).sum();
        learner.run_episodes = ranks.iter().map(|r| r.episodes).sum();
        learner.smallest_replay = slots.iter().map(|s| s[2] as usize).min().unwrap_or(0);
        self.last = ranks;
        Ok(Round { stop: slots.iter().any(|s| s[3] > 0.0), target_reached: slots.iter().any(|s| s[4] > 0.0) })
    }
}

/// What a checkpoint of a multi-learner run holds beyond rank 0's learner: every rank's
/// counters and generator (`Checkpoint::runtime`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankStates {
    pub ranks: Vec<RankFigures>,
}

impl RankStates {
    const TAG: &'static [u8; 8] = b"RANKS-v1";

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Self::TAG.to_vec();
        bytes.extend(bincode::serde::encode_to_vec(self, bincode::config::standard()).expect("rank states encode"));
        bytes
    }

    /// `None` for a checkpoint of a single learner.
    pub fn decode(bytes: &[u8]) -> Result<Option<Self>> {
        let Some(body) = bytes.strip_prefix(Self::TAG.as_slice()) else { return Ok(None) };
        let (states, _): (Self, usize) = bincode::serde::decode_from_slice(body, bincode::config::standard().with_limit::<{ 1 << 20 }>()).map_err(|e| anyhow::anyhow!("the checkpoint's rank states are damaged: {e}"))?;
        Ok(Some(states))
    }
}
