//! The learner's side of its links to actors, whatever carries them: local actor threads over
//! crossbeam channels ([`actor_threads`]) and actors on other machines over QUIC ([`remote`]).
//! The runtime ([`super::runtime`]) drains every transport's batches into one learner and
//! publishes parameters to all of them; the actors' side is `spikerl_actors::ActorTransport`.

pub mod actor_threads;
pub mod remote;

use crossbeam_channel::Receiver;
use spikerl_net::TransitionBatch;
use spikerl_snn::ParamSet;

use super::output::MetricsRecord;

pub use actor_threads::ActorThreads;
pub use remote::RemoteActors;

pub trait LearnerTransport {
    /// Where the actors' batches arrive. Disconnected once every actor of this transport has
    /// stopped for good.
    fn batches(&self) -> &Receiver<TransitionBatch>;
    /// News of the actors since the last call (lines for the screen). `random_left`: env
    /// steps of the run's uniform-random start not yet taken.
    fn poll(&mut self, _random_left: u64) -> Vec<String> {
        Vec::new()
    }
    /// The learner took `batch` (into replay when `accepted`; the learner's parameters are at
    /// `version`): its actor may collect as many env steps more.
    fn taken(&mut self, _batch: &TransitionBatch, _accepted: bool, _version: u64) {}
    /// The actors may have collected `env_steps` in all (the run's count, the replay-ratio
    /// budget).
    fn allow(&self, _env_steps: u64) {}
    /// The learner's newest parameters for every actor; a slow actor skips versions.
    fn publish(&mut self, params: &ParamSet);
    /// Actors feeding this transport now.
    fn actors(&self) -> u64;
    /// With several learners: how many actors each has now (what new remote actors are spread
    /// by).
    fn learner_loads(&self, _actors_per_learner: &[u64]) {}
    /// This transport's figures in a `progress` record.
    fn report(&mut self, _record: &mut MetricsRecord) {}
    /// The energy its actors' own processes reported (remote actors; local ones share the
    /// learner's process and meters).
    fn energy(&mut self) -> Vec<spikerl_energy::ComponentEnergy> {
        Vec::new()
    }
    /// Ends the run for this transport's actors; what went wrong with any of them.
    fn close(self: Box<Self>) -> Vec<String>;
}
