//! `spikerl bench transport`: how many transitions per second the QUIC transport carries from
//! N actors on loopback into a learner that only ingests them into its replay buffer.
//!
//! The actors are synthetic (in this process, each its own QUIC connection, sending a replayed
//! batch of the task's shape as fast as their credit allows); the learner decodes, validates
//! and pushes every transition into a `ReplayBuffer`, and grants credit back. Latency is from
//! an actor's `send` to the learner's ingest of that batch.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use spikerl_learner::prelude::ReplayBuffer;
use spikerl_net::TransitionBatch;
use spikerl_net::quic::{ActorLink, ActorOptions, LearnerLink, LearnerOptions, TlsFiles, ensure_ca, ensure_token, make_node};
use spikerl_snn::rng::SplitMix;

/// Send times of the last `RING` batches of each actor (µs since the bench's start).
const RING: usize = 1024;
const BATCH: usize = 64;

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct TransportPoint {
    pub actors: usize,
    pub transitions_per_s: f64,
    pub mb_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn certs(dir: &Path) -> Result<(TlsFiles, TlsFiles, String)> {
    ensure_ca(dir)?;
    let token = ensure_token(dir)?;
    let learner = make_node(dir, "learner", &["localhost".into()])?;
    let actor = make_node(dir, "actor", &[])?;
    Ok((learner, actor, token))
}

fn replayed_batch(obs_dim: usize, act_dim: usize) -> TransitionBatch {
    let mut rng = SplitMix::new(7);
    let mut b = TransitionBatch::new(0, obs_dim, act_dim);
    for _ in 0..BATCH {
        let o: Vec<f32> = (0..obs_dim).map(|_| rng.normal()).collect();
        let a: Vec<f32> = (0..act_dim).map(|_| rng.uniform(1.0)).collect();
        let o2: Vec<f32> = (0..obs_dim).map(|_| rng.normal()).collect();
        b.push(&o, &a, rng.normal(), &o2, rng.below(50) == 0);
    }
    b
}

/// One measurement: `actors` connections for `duration`.
pub fn measure(env_id: &str, actors: usize, duration: Duration, dir: &Path) -> Result<TransportPoint> {
    let env = spikerl_envs::make(env_id)?;
    let (obs_dim, act_dim) = (env.spec().obs_dim(), env.spec().act_dim());
    let (learner_tls, actor_tls, token) = certs(dir)?;
    let options = LearnerOptions { listen: "127.0.0.1:0".parse()?, tls: learner_tls, token: token.clone(), run_id: "bench".into(), env_id: env_id.into(), act_noise: 0.1, random_steps: 0, spread: None };
    let link = LearnerLink::listen(options, Vec::new(), 4 * actors)?;
    let addr = link.local_addr();
    let epoch = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..actors * RING).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let template = replayed_batch(obs_dim, act_dim);
    let frame_bytes = {
        let mut v = Vec::new();
        spikerl_net::wire::encode_frame(&spikerl_net::ActorMessage::Batch(template.clone()), &mut v)?;
        v.len()
    };

    let senders: Vec<_> = (0..actors)
        .map(|i| {
            let opts = ActorOptions { connect: addr, server_name: "localhost".into(), tls: actor_tls.clone(), token: token.clone(), actor_id: i as u32, envs: 1 };
            let (sent_at, stop, template) = (sent_at.clone(), stop.clone(), template.clone());
            std::thread::spawn(move || -> Result<()> {
                let link = ActorLink::connect(&opts)?;
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if link.reserve(BATCH as u64, BATCH as u64).is_err() {
                        break;
                    }
                    let mut batch = template.clone();
                    // The sender's index rides in the high half: the learner names
                    // connections itself.
                    batch.seq = (i as u64) << 32 | seq;
                    sent_at[i * RING + seq as usize % RING].store(epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
                    if link.send(batch).is_err() {
                        break;
                    }
                    seq += 1;
                }
                Ok(())
            })
        })
        .collect();

    // The learner: ingest into replay, grant credit, time each batch.
    let mut replay = ReplayBuffer::new(obs_dim, act_dim, 1 << 20);
    let mut latencies_us = Vec::new();
    let (mut transitions, mut start) = (0u64, None);
    let warmup = Duration::from_millis(500);
    let end_at = Instant::now() + warmup + duration;
    while Instant::now() < end_at {
        let Ok(batch) = link.batches.recv_timeout(Duration::from_millis(100)) else { continue };
        batch.validate(obs_dim, act_dim).map_err(anyhow::Error::msg)?;
        for r in 0..batch.len() {
            replay.push(&batch.obs[r * obs_dim..(r + 1) * obs_dim], &batch.act[r * act_dim..(r + 1) * act_dim], batch.rew[r], &batch.next_obs[r * obs_dim..(r + 1) * obs_dim], batch.done[r]);
        }
        link.consumed(batch.actor_id, batch.len() as u64);
        let now = epoch.elapsed().as_micros() as u64;
        if epoch.elapsed() >= warmup {
            let t0 = *start.get_or_insert_with(Instant::now);
            let _ = t0;
            transitions += batch.len() as u64;
            let (sender, seq) = ((batch.seq >> 32) as usize, batch.seq & 0xffff_ffff);
            if let Some(sent) = sent_at.get(sender * RING + seq as usize % RING) {
                latencies_us.push(now.saturating_sub(sent.load(Ordering::Relaxed)));
            }
        }
    }
    let elapsed = start.map_or(1e-9, |s| s.elapsed().as_secs_f64());
    stop.store(true, Ordering::Relaxed);
    link.close("bench over");
    for s in senders {
        let _ = s.join();
    }
    latencies_us.sort_unstable();
    let pct = |p: f64| latencies_us.get(((latencies_us.len() as f64 * p) as usize).min(latencies_us.len().saturating_sub(1))).map_or(f64::NAN, |&us| us as f64 / 1000.0);
    let batches = transitions as f64 / BATCH as f64;
    Ok(TransportPoint { actors, transitions_per_s: transitions as f64 / elapsed, mb_per_s: batches * frame_bytes as f64 / elapsed / 1e6, p50_ms: pct(0.5), p99_ms: pct(0.99) })
}

/// Transitions/s against actor count (log-2 axis).
pub fn plot(path: &Path, env_id: &str, points: &[TransportPoint]) -> Result<()> {
    use plotters::prelude::*;
    crate::train::plot::register_font();
    let root = BitMapBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = points.iter().map(|p| (p.actors as f64).log2()).fold(0.0, f64::max).max(1.0);
    let y_max = points.iter().map(|p| p.transitions_per_s).fold(0.0, f64::max).max(1.0) * 1.1 / 1e6;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("QUIC loopback ingest · {env_id} transitions"), ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.2..x_max + 0.2, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("actors (log2)")
        .y_desc("million transitions / s")
        .x_label_formatter(&|x| format!("{}", 2f64.powf(x.round()) as u64))
        .label_style(("sans-serif", 14))
        .draw()?;
    let series: Vec<(f64, f64)> = points.iter().map(|p| ((p.actors as f64).log2(), p.transitions_per_s / 1e6)).collect();
    chart.draw_series(LineSeries::new(series.clone(), BLUE.stroke_width(2)))?;
    chart.draw_series(series.into_iter().map(|p| Circle::new(p, 4, BLUE.filled())))?;
    root.present().context("write the plot")?;
    Ok(())
}
