//! What actors and learners say to each other, how it is framed on a stream, and the QUIC
//! transport that carries it between machines.

mod message;
pub mod quic;
pub mod wire;

pub use message::{EpisodeSummary, TransitionBatch};
pub use wire::{ActorMessage, FrameDecoder, LearnerMessage, PROTOCOL_VERSION, WireError};
