//! The wire protocol between actors and learners: a stream preamble (magic + protocol
//! version), then length-prefixed frames, each one bincode-2 message.
//!
//! Decoding is defensive: the length prefix is checked against a cap before anything is
//! allocated, a frame must decode to exactly one message with no bytes left over, and every
//! error names what was wrong, so a transport can close that one connection with a reason and
//! carry on with the others.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::message::TransitionBatch;

/// Bumped whenever a message changes shape.
pub const PROTOCOL_VERSION: u32 = 4;

/// Frames larger than this close the connection (a Hopper batch of 64 transitions is ≈ 7 kB,
/// a bf16 ParamSet ≈ 200 kB).
pub const MAX_FRAME_BYTES: usize = 16 << 20;

const MAGIC: [u8; 4] = *b"SPKR";
const PREAMBLE_BYTES: usize = 8;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    #[error("not a spikerl stream (bad magic {0:02x?})")]
    BadMagic([u8; 4]),
    #[error("protocol version {theirs}, this build speaks {ours}")]
    Version { theirs: u32, ours: u32 },
    #[error("frame of {len} bytes is over the {max}-byte cap")]
    FrameTooLarge { len: usize, max: usize },
    #[error("undecodable frame: {0}")]
    Undecodable(String),
    #[error("frame holds {0} bytes after its message")]
    TrailingBytes(usize),
}

/// An actor's first message on its stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub actor_id: u32,
    pub protocol_version: u32,
    /// The run's shared token.
    pub auth: String,
    /// Envs this actor steps (for the learner's report).
    pub envs: u32,
}

/// The learner's answer to [`Hello`]: what to run and the current actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub run_id: String,
    /// Gymnasium id of the task.
    pub env_id: String,
    /// Exploration noise std and uniform-random steps left, as the learner's config says.
    pub act_noise: f32,
    pub random_steps: u64,
    /// An encoded `spikerl_snn::ParamSet` (it carries its `PopSanSpec`).
    pub params: Vec<u8>,
}

/// What an actor reports about itself now and then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorStats {
    pub env_steps: u64,
    pub steps_per_s: f64,
    pub policy_version: u64,
    /// The actor process's energy since it started, by its own meters.
    pub energy: Option<ProcessEnergy>,
}

/// An actor process's energy: every connection of one process reports the same figures,
/// under the same `process` number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessEnergy {
    /// Drawn at random when the process starts.
    pub process: u64,
    pub parts: Vec<EnergyPart>,
}

/// One component's energy (`cpu`, `ram`, `gpu`), cumulative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyPart {
    pub component: String,
    /// Read from a counter (RAPL, NVML), or else estimated.
    pub measured: bool,
    pub joules: f64,
}

/// Actor → learner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ActorMessage {
    Hello(Hello),
    Batch(TransitionBatch),
    Stats(ActorStats),
    Goodbye { reason: String },
}

/// Learner → actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LearnerMessage {
    Welcome(Welcome),
    /// The actor may step its envs this many more times in all (granted as the learner
    /// consumes the actor's batches: replay-ratio control across machines, and a bound on how
    /// far an actor runs ahead).
    Credit { steps: u64 },
    /// An encoded `ParamSet`, the newest version.
    Params(Vec<u8>),
    Goodbye { reason: String },
    /// Instead of `Welcome`: connect to this learner of the run instead (the one with the
    /// fewest actors), whose certificate names `server_name`.
    Redirect { to: std::net::SocketAddr, server_name: String },
}

/// The bytes a stream starts with.
pub fn preamble() -> [u8; PREAMBLE_BYTES] {
    let mut p = [0; PREAMBLE_BYTES];
    p[..4].copy_from_slice(&MAGIC);
    p[4..].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    p
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME_BYTES>()
}

/// Appends `msg` as one frame (little-endian u32 length, then the message) to `out`.
pub fn encode_frame<M: Serialize>(msg: &M, out: &mut Vec<u8>) -> Result<(), WireError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    bincode::serde::encode_into_std_write(msg, out, bincode::config::standard()).map_err(|e| WireError::Undecodable(e.to_string()))?;
    let len = out.len() - start - 4;
    if len > MAX_FRAME_BYTES {
        out.truncate(start);
        return Err(WireError::FrameTooLarge { len, max: MAX_FRAME_BYTES });
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// Decodes one stream's bytes as they arrive, in any split: the preamble first, then whole
/// frames. After an error the stream is unusable (the connection should close).
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    read: usize,
    preamble_seen: bool,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.read > 0 && self.read == self.buf.len() {
            self.buf.clear();
            self.read = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet decoded.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.read
    }

    /// The next whole message, `None` until its last byte has arrived.
    pub fn next_message<M: DeserializeOwned>(&mut self) -> Result<Option<M>, WireError> {
        if !self.preamble_seen {
            if self.pending() < PREAMBLE_BYTES {
                return Ok(None);
            }
            let p = &self.buf[self.read..self.read + PREAMBLE_BYTES];
            let magic: [u8; 4] = p[..4].try_into().expect("4 bytes");
            if magic != MAGIC {
                return Err(WireError::BadMagic(magic));
            }
            let theirs = u32::from_le_bytes(p[4..].try_into().expect("4 bytes"));
            if theirs != PROTOCOL_VERSION {
                return Err(WireError::Version { theirs, ours: PROTOCOL_VERSION });
            }
            self.read += PREAMBLE_BYTES;
            self.preamble_seen = true;
        }
        if self.pending() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(self.buf[self.read..self.read + 4].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(WireError::FrameTooLarge { len, max: MAX_FRAME_BYTES });
        }
        if self.pending() < 4 + len {
            return Ok(None);
        }
        let frame = &self.buf[self.read + 4..self.read + 4 + len];
        let (msg, used): (M, usize) = bincode::serde::decode_from_slice(frame, config()).map_err(|e| WireError::Undecodable(e.to_string()))?;
        if used != len {
            return Err(WireError::TrailingBytes(len - used));
        }
        self.read += 4 + len;
        Ok(Some(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> TransitionBatch {
        let mut b = TransitionBatch::new(3, 2, 1);
        b.policy_version = 7;
        b.seq = 11;
        b.push(&[0.5, -1.0], &[0.25], 1.5, &[0.75, -0.5], false);
        b.push(&[0.75, -0.5], &[-0.25], -2.0, &[1.0, 0.0], true);
        b
    }

    fn stream(messages: &[ActorMessage]) -> Vec<u8> {
        let mut bytes = preamble().to_vec();
        for m in messages {
            encode_frame(m, &mut bytes).unwrap();
        }
        bytes
    }

    fn all_messages() -> Vec<ActorMessage> {
        vec![
            ActorMessage::Hello(Hello { actor_id: 3, protocol_version: PROTOCOL_VERSION, auth: "token".into(), envs: 4 }),
            ActorMessage::Batch(batch()),
            ActorMessage::Stats(ActorStats {
                env_steps: 100,
                steps_per_s: 12.5,
                policy_version: 7,
                energy: Some(ProcessEnergy { process: 9, parts: vec![EnergyPart { component: "cpu".into(), measured: false, joules: 12.5 }] }),
            }),
            ActorMessage::Goodbye { reason: "done".into() },
        ]
    }

    #[test]
    fn messages_survive_any_split_of_the_stream() {
        let sent = all_messages();
        let bytes = stream(&sent);
        for split in 0..bytes.len() {
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for part in [&bytes[..split], &bytes[split..]] {
                d.push(part);
                while let Some(m) = d.next_message::<ActorMessage>().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(got, sent, "split at {split}");
            assert_eq!(d.pending(), 0);
        }
        // Learner → actor too.
        let mut bytes = preamble().to_vec();
        let welcome = LearnerMessage::Welcome(Welcome { run_id: "r".into(), env_id: "Hopper-v4".into(), act_noise: 0.1, random_steps: 5, params: vec![1, 2, 3] });
        encode_frame(&welcome, &mut bytes).unwrap();
        let mut d = FrameDecoder::new();
        d.push(&bytes);
        assert_eq!(d.next_message::<LearnerMessage>().unwrap(), Some(welcome));
    }

    #[test]
    fn foreign_streams_are_refused() {
        let mut d = FrameDecoder::new();
        d.push(b"GET / HTTP/1.1\r\n");
        assert!(matches!(d.next_message::<ActorMessage>(), Err(WireError::BadMagic(_))));

        let mut old = preamble();
        old[4..].copy_from_slice(&(PROTOCOL_VERSION + 1).to_le_bytes());
        let mut d = FrameDecoder::new();
        d.push(&old);
        assert_eq!(d.next_message::<ActorMessage>(), Err(WireError::Version { theirs: PROTOCOL_VERSION + 1, ours: PROTOCOL_VERSION }));
    }

    #[test]
    fn oversized_frames_are_refused_before_they_arrive() {
        let mut bytes = preamble().to_vec();
        bytes.extend_from_slice(&(MAX_FRAME_BYTES as u32 + 1).to_le_bytes());
        let mut d = FrameDecoder::new();
        d.push(&bytes);
        assert_eq!(d.next_message::<ActorMessage>(), Err(WireError::FrameTooLarge { len: MAX_FRAME_BYTES + 1, max: MAX_FRAME_BYTES }));

        let huge = ActorMessage::Goodbye { reason: "x".repeat(MAX_FRAME_BYTES) };
        let mut out = vec![9];
        assert!(matches!(encode_frame(&huge, &mut out), Err(WireError::FrameTooLarge { .. })));
        assert_eq!(out, vec![9], "a refused frame leaves the buffer as it was");
    }

    #[test]
    fn random_and_corrupted_frames_are_errors_not_panics() {
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let good = stream(&all_messages());
        let (mut errors, mut decoded) = (0, 0);
        for _ in 0..2000 {
            let mut bytes = good.clone();
            // Flip a few bytes after the preamble, or replace every frame with noise.
            if next() % 4 == 0 {
                bytes.truncate(PREAMBLE_BYTES);
                let len = (next() % 64) as u32;
                bytes.extend_from_slice(&len.to_le_bytes());
                bytes.extend((0..len).map(|_| next() as u8));
            } else {
                for _ in 0..3 {
                    let i = PREAMBLE_BYTES + (next() as usize) % (bytes.len() - PREAMBLE_BYTES);
                    bytes[i] = next() as u8;
                }
            }
            let mut d = FrameDecoder::new();
            d.push(&bytes);
            loop {
                match d.next_message::<ActorMessage>() {
                    Ok(Some(_)) => decoded += 1,
                    Ok(None) => break,
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
        }
        assert!(errors > 500, "corruption is mostly detected ({errors} errors, {decoded} messages decoded)");
    }

    #[test]
    fn a_frame_with_bytes_after_its_message_is_refused() {
        let mut frame = Vec::new();
        encode_frame(&ActorMessage::Goodbye { reason: "bye".into() }, &mut frame).unwrap();
        let len = u32::from_le_bytes(frame[..4].try_into().unwrap()) + 2;
        frame[..4].copy_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&[0, 0]);
        let mut d = FrameDecoder::new();
        d.push(&preamble());
        d.push(&frame);
        assert_eq!(d.next_message::<ActorMessage>(), Err(WireError::TrailingBytes(2)));
    }
}
