//! A small cluster on one machine: learners and actors on separate hosts (network namespaces
//! on one bridge, as root), so that addresses, ports and certificates are exercised as on real
//! machines, and a relay host whose link drops and delays datagrams.
//!
//! The figures of the link (`--ignored`): throughput and policy lag of one actor behind the
//! relay at 0, 1 and 5 % loss, with and without 50 ms added delay:
//!
//!     cargo test --release --test cluster -- --ignored --nocapture

#[path = "../common/mod.rs"]
mod common;
mod netns;
mod relay;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Proc, actor_binary, metrics, scratch};
use netns::{Cluster, Host};
use relay::{Link, Relay};

const PORT: u16 = 7000;
const LEARNERS: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 10);
const RELAY: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 20);

/// The run's certificates: the learners' for their host's address.
fn certs(dir: &Path) {
    for (name, hosts) in [("learner", vec!["--host", "10.99.0.10"]), ("actor", vec![])] {
        let out = Command::new(env!("CARGO_BIN_EXE_spikerl")).args(["cert", "--dir", dir.to_str().unwrap(), "--name", name]).args(hosts).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// A relay on `host`, port [`PORT`], to the learners' host.
fn relay(host: &Host, link: Link) -> Relay {
    let (front, upstream) = (SocketAddr::from((host.addr, PORT)), SocketAddr::from((LEARNERS, PORT)));
    host.inside(move || Relay::start(front, upstream, link)).expect("the relay listens")
}

/// `spikerl-actor` on `host`, dialling `to` (a learner, or a relay to one).
fn actor(host: &Host, certs: &Path, to: Ipv4Addr, extra: &[&str]) -> Proc {
    let connect = format!("{to}:{PORT}");
    Proc::spawn(host.command(actor_binary()).args(["--connect", &connect, "--server-name", "10.99.0.10", "--certs", certs.to_str().unwrap()]).args(extra))
}

fn learner(host: &Host, certs: &Path, run: &Path, extra: &[&str]) -> Proc {
    let listen = format!("{LEARNERS}:{PORT}");
    Proc::spawn(host.command(env!("CARGO_BIN_EXE_spikerl")).args(["learner", "--listen", &listen, "--certs", certs.to_str().unwrap(), "--env", "pendulum-v1", "--quiet", "--out", run.to_str().unwrap()]).args(extra))
}

/// The per-actor reports of every progress record of `run` and of its other ranks.
fn actor_reports(run: &Path) -> Vec<serde_json::Value> {
    let mut dirs = vec![run.to_path_buf()];
    dirs.extend(std::fs::read_dir(run).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("rank-"))));
    dirs.iter().flat_map(|d| metrics(d)).filter_map(|r| r["remote_actors"].as_array().cloned()).flatten().collect()
}

/// Two learner ranks on one host, two actors on a second host dialling rank 0 directly, and
/// one on a third reaching it through a relay host whose link loses 5 % of the datagrams and
/// delays each by 50 ms: rank 0 sends an actor on to rank 1 by its address on the learners'
/// host, every actor's transitions arrive (the relayed one's too, from the relay's address),
/// and the run ends with its evaluation.
#[test]
fn learners_and_actors_on_separate_hosts_train_through_a_lossy_delayed_link() {
    let mut cluster = match Cluster::new("t") {
        Ok(c) => c,
        Err(why) => return eprintln!("skipped: the cluster of network namespaces cannot be made here: {why}"),
    };
    let learners = cluster.host("learners", LEARNERS).unwrap();
    let relay_host = cluster.host("relay", RELAY).unwrap();
    let near = cluster.host("actors-a", Ipv4Addr::new(10, 99, 0, 31)).unwrap();
    let far = cluster.host("actors-b", Ipv4Addr::new(10, 99, 0, 32)).unwrap();
    let dir = scratch("cluster");
    let (certs_dir, run) = (dir.join("certs"), dir.join("run"));
    certs(&certs_dir);

    let mut l = learner(&learners, &certs_dir, &run, &["--learners", "2", "--steps", "8000", "--eval-every", "4000"]);
    l.expect("listening for actors", Duration::from_secs(60));
    let link = relay(&relay_host, Link { loss: 0.05, delay: Duration::from_millis(50) });
    // The far actor first: rank 0 keeps it (the learners' loads tie), so that its whole
    // stream crosses the lossy link; of the two near ones, one goes on to rank 1.
    let _far = actor(&far, &certs_dir, RELAY, &["--id", "3"]);
    l.expect("actor 1 (says 3) connected", Duration::from_secs(30));
    let _near = actor(&near, &certs_dir, LEARNERS, &["--id", "1", "--threads", "2"]);
    l.expect(&format!("sent to the learner at {LEARNERS}:{}", PORT + 1), Duration::from_secs(30));
    assert!(l.wait(Duration::from_secs(300)), "the run failed:\n{}", l.seen.join("\n"));

    let records = metrics(&run);
    assert!(records.iter().any(|r| r["kind"] == "eval"), "no evaluation:\n{}", l.seen.join("\n"));
    let spread = records.iter().filter_map(|r| r["learner_ranks"].as_array()).map(|ranks| ranks.iter().map(|r| r["actors"].as_u64().unwrap()).collect::<Vec<u64>>()).find(|a| a.iter().sum::<u64>() == 3);
    assert!(spread.as_ref().is_some_and(|a| a.iter().all(|&n| n >= 1)), "actors per rank: {spread:?}");
    let reports = actor_reports(&run);
    let sent_from = |host: Ipv4Addr| reports.iter().filter(|a| a["addr"].as_str().unwrap().starts_with(&format!("{host}:"))).map(|a| a["transitions"].as_u64().unwrap()).max().unwrap_or(0);
    let (relayed, near_sent) = (sent_from(RELAY), sent_from(near.addr));
    assert!(relayed >= 500, "transitions through the lossy link: {relayed}");
    assert!(near_sent >= 500, "transitions from the near host: {near_sent}");
    // New parameters crossed the lossy link too: the far actor acted with a published version.
    let far_version = reports.iter().filter(|a| a["addr"].as_str().unwrap().starts_with(&format!("{RELAY}:"))).filter_map(|a| a["reported_policy_version"].as_u64()).max().unwrap_or(0);
    assert!(far_version > 1, "the far actor's newest policy version: {far_version}");
    let (forwarded, dropped) = (link.counts.forwarded.load(std::sync::atomic::Ordering::Relaxed), link.counts.dropped.load(std::sync::atomic::Ordering::Relaxed));
    assert!(dropped > 0 && forwarded > 20 * dropped / 2, "relay: {forwarded} forwarded, {dropped} dropped");
    eprintln!("cluster: {relayed} transitions through the relay ({forwarded} datagrams forwarded, {dropped} dropped; policy version {far_version} reached the far actor), {near_sent} from the near host; actors per rank {spread:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One actor behind the relay, one learner: what loss and delay cost. Each link runs a fresh
/// learner for `WINDOW` after a warm-up; the figures are its progress records' means.
#[test]
#[ignore = "figures for docs/results/learners.md (≈ 5 min)"]
fn link_figures_under_loss_and_delay() {
    const WARM_UP: Duration = Duration::from_secs(15);
    const WINDOW: Duration = Duration::from_secs(30);
    let mut cluster = Cluster::new("f").expect("network namespaces (run as root)");
    let learners = cluster.host("learners", LEARNERS).unwrap();
    let relay_host = cluster.host("relay", RELAY).unwrap();
    let far = cluster.host("actors", Ipv4Addr::new(10, 99, 0, 32)).unwrap();
    let dir = scratch("figures");
    let certs_dir = dir.join("certs");
    certs(&certs_dir);
    let ms = Duration::from_millis;
    let links = [(None, "direct"), (Some(Link { loss: 0.0, delay: ms(0) }), "relay"), (Some(Link { loss: 0.01, delay: ms(0) }), "relay"), (Some(Link { loss: 0.05, delay: ms(0) }), "relay"), (Some(Link { loss: 0.0, delay: ms(50) }), "relay"), (Some(Link { loss: 0.01, delay: ms(50) }), "relay"), (Some(Link { loss: 0.05, delay: ms(50) }), "relay")];
    println!("| link | loss | added delay (each way) | learner env steps/s | actor transitions/s | policy lag of its batches (versions) | its policy behind the learner's (versions) | datagrams dropped |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (i, (link, name)) in links.into_iter().enumerate() {
        let run = dir.join(format!("run-{i}"));
        let mut l = learner(&learners, &certs_dir, &run, &["--steps", "10000000", "--eval-every", "10000000", "--checkpoint-every", "10000000"]);
        l.expect("listening for actors", Duration::from_secs(60));
        let relay = link.map(|link| relay(&relay_host, link));
        let _a = actor(&far, &certs_dir, if relay.is_some() { RELAY } else { LEARNERS }, &["--id", "1", "--envs", "4"]);
        std::thread::sleep(WARM_UP + WINDOW);
        let _ = l.child.kill();
        let progress: Vec<serde_json::Value> = metrics(&run).into_iter().filter(|r| r["kind"] == "progress").collect();
        let end = progress.last().map_or(0.0, |r| r["wall_s"].as_f64().unwrap());
        let in_window: Vec<&serde_json::Value> = progress.iter().filter(|r| r["wall_s"].as_f64().unwrap() > end - WINDOW.as_secs_f64()).collect();
        let mean = |f: &dyn Fn(&serde_json::Value) -> Option<f64>| {
            let v: Vec<f64> = in_window.iter().filter_map(|r| f(r)).collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let steps = mean(&|r| r["env_steps_per_s"].as_f64());
        let transitions = mean(&|r| r["remote_actors"][0]["transitions_per_s"].as_f64());
        let lag = mean(&|r| r["remote_actors"][0]["policy_lag"].as_f64());
        let behind = mean(&|r| Some(r["param_version"].as_f64()? - r["remote_actors"][0]["reported_policy_version"].as_f64()?));
        let (loss, delay) = link.map_or((0.0, 0), |l| (l.loss * 100.0, l.delay.as_millis()));
        let dropped = relay.as_ref().map_or(0, |r| r.counts.dropped.load(std::sync::atomic::Ordering::Relaxed));
        println!("| {name} | {loss:.0} % | {delay} ms | {steps:.0} | {transitions:.0} | {lag:.1} | {behind:.1} | {dropped} |");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
