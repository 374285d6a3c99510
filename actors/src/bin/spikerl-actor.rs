//! `spikerl-actor`: rollout actors on any machine, streaming transitions to a `spikerl
//! learner` over QUIC. No libtorch: envs, the event-driven spiking engine and the network.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use spikerl_actors::{QuicTransport, RolloutWorker, run_actor};
use spikerl_net::quic::{ActorLink, ActorOptions, QuicError, TlsFiles, run_token};
use spikerl_snn::ParamSet;

#[derive(Parser, Clone)]
#[command(name = "spikerl-actor", version, about = "Rollout actors for a spikerl learner on another machine")]
struct Args {
    /// The learner's address, HOST:PORT.
    #[arg(long)]
    connect: String,
    /// Envs each thread steps.
    #[arg(long, default_value_t = 1)]
    envs: usize,
    /// Actor threads, each its own connection (actor ids ID, ID+1, …).
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Directory with ca.pem, NAME.pem, NAME.key and token (`spikerl cert`).
    #[arg(long, default_value = "certs")]
    certs: PathBuf,
    /// This node's certificate name in --certs.
    #[arg(long, default_value = "actor")]
    name: String,
    /// The run token [default: $SPIKERL_TOKEN, else CERTS/token].
    #[arg(long)]
    token: Option<String>,
    /// The name the learner's certificate was made for [default: the host of --connect].
    #[arg(long)]
    server_name: Option<String>,
    /// First actor id, the next threads' counting up from it: a label in the learner's report
    /// and part of the envs' seeds (the learner tells connections apart by itself) [default:
    /// drawn from the host name, the process id and the clock, so that containers with equal
    /// process ids differ].
    #[arg(long)]
    id: Option<u32>,
    /// Seed of the envs' resets and the exploration noise (mixed with the actor id and the
    /// connection count).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Transitions per batch (about: whole steps of every env).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Watts per busy core for this machine's CPU estimate, where its RAPL counters are not
    /// readable; the learner adds this process's energy to the run's [default: 85 W ÷ this
    /// machine's logical CPUs, CodeCarbon's fallback TDP].
    #[arg(long)]
    cpu_watts_per_core: Option<f64>,
}

fn main() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())).with_writer(std::io::stderr).init();
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    if args.envs == 0 || args.threads == 0 || args.batch == 0 {
        bail!("--envs, --threads and --batch must be positive");
    }
    if let Some(w) = args.cpu_watts_per_core.filter(|w| !(w.is_finite() && *w >= 0.0)) {
        bail!("--cpu-watts-per-core must be a finite number of watts, 0 or more (it is {w})");
    }
    spikerl_actors::start_metering(args.cpu_watts_per_core);
    let addr: SocketAddr = args.connect.to_socket_addrs().with_context(|| format!("--connect {}", args.connect))?.next().with_context(|| format!("--connect {}: no address", args.connect))?;
    let host = args.connect.rsplit_once(':').map_or(args.connect.as_str(), |(h, _)| h).trim_matches(['[', ']']).to_string();
    let token = run_token(args.token.as_deref(), &args.certs)?;
    let tls = TlsFiles::in_dir(&args.certs, &args.name);
    let first_id = args.id.unwrap_or_else(|| default_first_id(args.threads));
    let threads: Vec<_> = (0..args.threads)
        .map(|t| {
            let options = ActorOptions { connect: addr, server_name: args.server_name.clone().unwrap_or_else(|| host.clone()), tls: tls.clone(), token: token.clone(), actor_id: first_id + t, envs: args.envs as u32 };
            let args = args.clone();
            std::thread::Builder::new().name(format!("actor-{}", first_id + t)).spawn(move || actor(&args, &options)).expect("spawn an actor thread")
        })
        .collect();
    let mut failed = None;
    for t in threads {
        if let Err(e) = t.join().unwrap_or_else(|_| Err(anyhow::anyhow!("an actor thread panicked"))) {
            failed.get_or_insert(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

/// A first id unlikely to be any other actor's: the host name, the process id and the clock,
/// mixed, leaving room for `threads` consecutive ids.
fn default_first_id(threads: u32) -> u32 {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").or_else(|_| std::env::var("HOSTNAME")).unwrap_or_default();
    let host_hash = host.trim().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mixed = spikerl_snn::rng::SplitMix::new(host_hash ^ nanos ^ (u64::from(std::process::id()) << 32)).next_u64();
    (mixed % (u64::from(u32::MAX) - u64::from(threads))) as u32
}

/// One actor: connect, stream until the link drops, reconnect with backoff; a refusal or the
/// end of the run stops it.
fn actor(args: &Args, options: &ActorOptions) -> Result<()> {
    let id = options.actor_id;
    let mut backoff = Duration::from_millis(500);
    let mut sessions = 0u64;
    loop {
        match ActorLink::connect(options) {
            Ok(link) => {
                tracing::info!("actor {id}: connected to {} (run {}, {})", options.connect, link.welcome.run_id, link.welcome.env_id);
                backoff = Duration::from_millis(500);
                sessions += 1;
                match stream(args, id, &link, sessions)? {
                    Ok(()) => {
                        tracing::info!("actor {id}: the learner ended the run");
                        return Ok(());
                    }
                    Err(e) => tracing::warn!("actor {id}: link lost ({e}); reconnecting"),
                }
            }
            Err(QuicError::Refused(reason)) => bail!("actor {id}: refused by the learner: {reason}"),
            Err(e @ (QuicError::Certs(_) | QuicError::Tls(_))) => bail!("actor {id}: {e}"),
            Err(e) => tracing::warn!("actor {id}: cannot reach the learner ({e}); retrying in {backoff:?}"),
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Steps envs with the newest parameters and sends batches: `Ok(Ok(()))` when the learner
/// ends the run, `Ok(Err(..))` when the link drops (worth reconnecting), `Err` when this actor
/// cannot run what the learner asks (an unknown task, parameters it cannot read).
fn stream(args: &Args, id: u32, link: &ActorLink, session: u64) -> Result<Result<(), String>> {
    let w = &link.welcome;
    let seed = args.seed ^ (u64::from(id) << 20) ^ session;
    let mut worker = RolloutWorker::new(id, &w.env_id, args.envs, seed, w.random_steps, w.act_noise).with_context(|| format!("actor {id}: cannot make the learner's task {:?}", w.env_id))?;
    worker.set_policy(&ParamSet::decode(&w.params).context("the learner's parameters")?)?;
    Ok(run_actor(&mut worker, &mut QuicTransport { link }, args.batch))
}

#[cfg(test)]
mod tests {
    /// Actors started on the same host with the same process id (containers) still draw
    /// different ids: the clock is mixed in.
    #[test]
    fn default_ids_differ_between_starts() {
        let ids: std::collections::HashSet<u32> = (0..50).map(|_| super::default_first_id(4)).collect();
        assert_eq!(ids.len(), 50);
        assert!(ids.iter().all(|id| id.checked_add(4).is_some()));
    }
}
