//! What actors and learners say to each other, and how it is framed on a stream.

mod message;
pub mod wire;

pub use message::{EpisodeSummary, TransitionBatch};
pub use wire::{ActorMessage, FrameDecoder, LearnerMessage, PROTOCOL_VERSION, WireError};
