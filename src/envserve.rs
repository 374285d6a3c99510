//! `spikerl envserve`: one task stepped over stdin/stdout, so that other programs (Python RL
//! code without the `spikerl` Python package, programs in other languages) can use the rapier
//! ports without MuJoCo. The Python package's tests check their trajectories against it.
//!
//! Protocol, little-endian binary after one JSON header line:
//! - server → client, once: `{"id", "obs_dim", "act_dim", "low", "high", "max_episode_steps", "dt"}\n`
//! - `b'R'`, u64 seed (`u64::MAX`: no seed) → status, f32 × obs_dim
//! - `b'S'`, f32 × act_dim → status, f32 × obs_dim, f64 reward, u8 terminated, u8 truncated
//! - status is 0 for success, or 1 followed by u32 length and a UTF-8 error message (the env
//!   is unchanged, as `Env` guarantees for rejected calls); end of input ends the server.

use std::io::{self, BufWriter, ErrorKind, Read, Write};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use spikerl_envs::Env;

#[derive(Serialize)]
struct Header<'a> {
    id: &'a str,
    obs_dim: usize,
    act_dim: usize,
    low: &'a [f32],
    high: &'a [f32],
    max_episode_steps: u32,
    dt: f64,
}

pub const NO_SEED: u64 = u64::MAX;

/// Serves `env` until `input` ends.
pub fn serve(mut env: Box<dyn Env>, input: impl Read, output: impl Write) -> Result<()> {
    let spec = env.spec().clone();
    let mut input = io::BufReader::new(input);
    let mut out = BufWriter::new(output);
    let header = Header {
        id: &spec.id,
        obs_dim: spec.obs_dim(),
        act_dim: spec.act_dim(),
        low: &spec.action_space.low,
        high: &spec.action_space.high,
        max_episode_steps: spec.max_episode_steps,
        dt: spec.dt,
    };
    serde_json::to_writer(&mut out, &header)?;
    out.write_all(b"\n")?;
    out.flush()?;

    let mut obs = vec![0.0f32; spec.obs_dim()];
    let mut action = vec![0.0f32; spec.act_dim()];
    let mut action_bytes = vec![0u8; 4 * spec.act_dim()];
    loop {
        let mut op = [0u8; 1];
        match input.read_exact(&mut op) {
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(()),
            other => other.context("reading a request")?,
        }
        match op[0] {
            b'R' => {
                let mut seed = [0u8; 8];
                input.read_exact(&mut seed).context("reading reset's seed")?;
                let seed = u64::from_le_bytes(seed);
                match env.reset_into((seed != NO_SEED).then_some(seed), &mut obs) {
                    Ok(()) => {
                        out.write_all(&[0])?;
                        write_f32s(&mut out, &obs)?;
                    }
                    Err(e) => write_error(&mut out, &e.to_string())?,
                }
            }
            b'S' => {
                input.read_exact(&mut action_bytes).context("reading step's action")?;
                for (a, b) in action.iter_mut().zip(action_bytes.chunks_exact(4)) {
                    *a = f32::from_le_bytes(b.try_into().expect("4 bytes"));
                }
                match env.step_into(&action, &mut obs) {
                    Ok(step) => {
                        out.write_all(&[0])?;
                        write_f32s(&mut out, &obs)?;
                        out.write_all(&step.reward.to_le_bytes())?;
                        out.write_all(&[u8::from(step.terminated), u8::from(step.truncated)])?;
                    }
                    Err(e) => write_error(&mut out, &e.to_string())?,
                }
            }
            other => bail!("unknown request byte {other:#04x} (expected 'R' or 'S')"),
        }
        out.flush()?;
    }
}

fn write_f32s(out: &mut impl Write, values: &[f32]) -> io::Result<()> {
    values.iter().try_for_each(|v| out.write_all(&v.to_le_bytes()))
}

fn write_error(out: &mut impl Write, message: &str) -> io::Result<()> {
    out.write_all(&[1])?;
    out.write_all(&(message.len() as u32).to_le_bytes())?;
    out.write_all(message.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_obs(bytes: &[u8], at: usize, n: usize) -> Vec<f32> {
        bytes[at..at + 4 * n].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
    }

    #[test]
    fn serves_the_same_episode_as_the_env_itself() {
        let mut request = vec![b'R'];
        request.extend(7u64.to_le_bytes());
        for _ in 0..3 {
            request.push(b'S');
            request.extend([0.5f32, -0.25, 0.0].iter().flat_map(|a| a.to_le_bytes()));
        }
        request.push(b'S');
        request.extend([f32::NAN, 0.0, 0.0].iter().flat_map(|a| a.to_le_bytes()));
        let mut reply = Vec::new();
        serve(spikerl_envs::make("Hopper-v4").unwrap(), &request[..], &mut reply).unwrap();

        let newline = reply.iter().position(|&b| b == b'\n').unwrap();
        let header: serde_json::Value = serde_json::from_slice(&reply[..newline]).unwrap();
        assert_eq!(header["obs_dim"], 11);
        assert_eq!(header["act_dim"], 3);

        let mut env = spikerl_envs::make("Hopper-v4").unwrap();
        let mut obs = vec![0.0; 11];
        env.reset_into(Some(7), &mut obs).unwrap();
        let mut at = newline + 1;
        assert_eq!(reply[at], 0);
        assert_eq!(reply_obs(&reply, at + 1, 11), obs);
        at += 1 + 44;
        for _ in 0..3 {
            let step = env.step_into(&[0.5, -0.25, 0.0], &mut obs).unwrap();
            assert_eq!(reply[at], 0);
            assert_eq!(reply_obs(&reply, at + 1, 11), obs);
            let reward = f64::from_le_bytes(reply[at + 45..at + 53].try_into().unwrap());
            assert_eq!(reward, step.reward);
            assert_eq!(reply[at + 53..at + 55], [0, 0]);
            at += 55;
        }
        assert_eq!(reply[at], 1, "a NaN action is an error reply");
        let len = u32::from_le_bytes(reply[at + 1..at + 5].try_into().unwrap()) as usize;
        let message = std::str::from_utf8(&reply[at + 5..at + 5 + len]).unwrap();
        assert!(message.contains("finite"), "{message}");
        assert_eq!(at + 5 + len, reply.len());
    }

    #[test]
    fn a_bad_request_is_an_error_not_a_panic() {
        let err = serve(spikerl_envs::make("Hopper-v4").unwrap(), &b"X"[..], Vec::new()).unwrap_err();
        assert!(err.to_string().contains("unknown request"), "{err}");
        let err = serve(spikerl_envs::make("Hopper-v4").unwrap(), &b"S\x00\x00"[..], Vec::new()).unwrap_err();
        assert!(format!("{err:#}").contains("reading step's action"), "{err:#}");
    }
}
