//! What actors and learners say to each other.

mod message;

pub use message::{EpisodeSummary, TransitionBatch};
