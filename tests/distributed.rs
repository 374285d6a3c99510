//! `spikerl learner` with `spikerl-actor` processes on loopback: learning with actors in other
//! processes, an actor killed mid-stream, and a learner killed and restarted from its
//! checkpoint while its actors wait to reconnect.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use spikerl_net::quic::{ActorOptions, TlsFiles, send_raw};
use common::{Proc, actor_binary, free_port, metrics, scratch};

/// A run's certificates, made with the CLI.
fn certs(dir: &Path) {
    for (name, hosts) in [("learner", vec!["--host", "127.0.0.1", "--host", "localhost"]), ("actor", vec![])] {
        let out = Command::new(env!("CARGO_BIN_EXE_spikerl")).args(["cert", "--dir", dir.to_str().unwrap(), "--name", name]).args(hosts).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

fn learner(certs: &Path, port: u16, out: &Path, extra: &[&str]) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    Proc::spawn(Command::new(env!("CARGO_BIN_EXE_spikerl")).args(["learner", "--listen", &listen, "--certs", certs.to_str().unwrap(), "--env", "pendulum-v1", "--quiet", "--out", out.to_str().unwrap()]).args(extra))
}

fn actor(certs: &Path, port: u16, id: u32) -> Proc {
    let connect = format!("localhost:{port}");
    Proc::spawn(Command::new(actor_binary()).args(["--connect", &connect, "--certs", certs.to_str().unwrap(), "--id", &id.to_string()]))
}

/// What an in-process actor (a test's own client) connects to a learner on `port` with.
fn actor_options(certs: &Path, port: u16, id: u32) -> ActorOptions {
    let token = spikerl_net::quic::run_token(None, certs).unwrap_or_default();
    ActorOptions { connect: format!("127.0.0.1:{port}").parse().unwrap(), server_name: "localhost".into(), tls: TlsFiles::in_dir(certs, "actor"), token, actor_id: id, envs: 1 }
}

#[test]
fn three_actor_processes_train_pendulum_and_the_run_survives_a_killed_actor() {
    let dir = scratch("three");
    let (certs_dir, run) = (dir.join("certs"), dir.join("run"));
    certs(&certs_dir);
    let port = free_port();
    // No early stop: the run must outlive the dead actor's idle timeout (10 s).
    let mut l = learner(&certs_dir, port, &run, &["--steps", "12000"]);
    l.expect("listening for actors", Duration::from_secs(60));
    // Three actor processes that call themselves by one id (containers with equal process
    // ids): the learner tells their connections apart.
    let mut actors: Vec<Proc> = (1..=3).map(|_| actor(&certs_dir, port, 5)).collect();
    for id in 1..=3 {
        l.expect(&format!("actor {id} (says 5) connected"), Duration::from_secs(30));
    }
    // Mid-stream, one actor dies without a word.
    let deadline = Instant::now() + Duration::from_secs(120);
    while metrics(&run).iter().rev().find(|r| r["kind"] == "progress").is_none_or(|r| r["env_steps"].as_u64().unwrap() < 2000) {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(200));
    }
    actors[0].child.kill().unwrap();
    l.expect(" disconnected: ", Duration::from_secs(30));

    // Strangers and broken peers while it trains: each refused with a reason, training goes on.
    let connect = format!("localhost:{port}");
    let mut wrong_token = Proc::spawn(Command::new(actor_binary()).args(["--connect", &connect, "--certs", certs_dir.to_str().unwrap(), "--token", "guess", "--id", "50"]));
    assert!(!wrong_token.wait(Duration::from_secs(30)), "an actor with a wrong token must fail");
    wrong_token.expect("wrong run token", Duration::from_secs(1));
    let foreign = dir.join("foreign");
    certs(&foreign);
    let mut stranger = Proc::spawn(Command::new(actor_binary()).args(["--connect", &connect, "--certs", foreign.to_str().unwrap(), "--id", "60"]));
    l.expect("TLS handshake failed", Duration::from_secs(30));
    let _ = stranger.child.kill();
    let garbage = ActorOptions { token: String::new(), ..actor_options(&certs_dir, port, 70) };
    let mut oversized = spikerl_net::wire::preamble().to_vec();
    oversized.extend_from_slice(&(spikerl_net::wire::MAX_FRAME_BYTES as u32 + 1).to_le_bytes());
    let mut future = spikerl_net::wire::preamble().to_vec();
    future[4..8].copy_from_slice(&(spikerl_net::PROTOCOL_VERSION + 1).to_le_bytes());
    for (bytes, expect) in [(b"\x00\x01 not a spikerl stream at all".to_vec(), "bad magic"), (oversized, "over the"), (future, "protocol version")] {
        let reason = send_raw(&garbage, &bytes).unwrap();
        assert!(reason.contains(expect), "{reason}");
        l.expect(expect, Duration::from_secs(10));
    }
    assert!(l.wait(Duration::from_secs(400)), "learner failed:\n{}", l.seen.join("\n"));

    let records = metrics(&run);
    let best = records.iter().filter(|r| r["kind"] == "eval").map(|r| r["eval_return_mean"].as_f64().unwrap()).fold(f64::NEG_INFINITY, f64::max);
    assert!(best >= -300.0, "best evaluation {best}\n{}", l.seen.join("\n"));
    let last = records.iter().rev().find(|r| r["remote_actors"].is_array()).expect("per-actor reports");
    let reports = last["remote_actors"].as_array().unwrap();
    assert_eq!(reports.len(), 2, "the connected actors; the departed one is in the totals");
    assert!(reports.iter().all(|a| a["connected"] == true && a["claimed_id"] == 5 && a["transitions"].as_u64().unwrap() > 0 && a["dropped_batches"].as_u64() == Some(0)));
    let departed = &last["departed_actors"];
    assert!(departed["connections"].as_u64() == Some(1) && departed["transitions"].as_u64().unwrap() > 0, "{departed}");
    assert!(reports.iter().any(|a| a["reported_steps_per_s"].as_f64().is_some_and(|r| r > 0.0)), "actors' own Stats reach the report");
    // The actor processes' own energy is part of the run's.
    let energy: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("energy.json")).unwrap()).unwrap();
    let actors_cpu = energy["components"].as_array().unwrap().iter().find(|c| c["component"] == "actors/cpu").unwrap_or_else(|| panic!("{energy}"));
    assert!(actors_cpu["joules"].as_f64().unwrap() > 0.0 && actors_cpu["method"].as_str().unwrap().contains("remote actor process"), "{energy}");
    // The survivors stop cleanly when the learner ends the run.
    for a in &mut actors[1..] {
        assert!(a.wait(Duration::from_secs(30)), "actor did not stop cleanly:\n{}", a.seen.join("\n"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn actors_reconnect_to_a_learner_restarted_from_its_checkpoint() {
    let dir = scratch("restart");
    let (certs_dir, run) = (dir.join("certs"), dir.join("run"));
    certs(&certs_dir);
    let port = free_port();
    let mut first = learner(&certs_dir, port, &run, &["--steps", "100000", "--checkpoint-every", "1000"]);
    first.expect("listening for actors", Duration::from_secs(60));
    let mut actors: Vec<Proc> = (1..=2).map(|id| actor(&certs_dir, port, id)).collect();
    let checkpoint = run.join("checkpoint.bin");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !checkpoint.is_file() {
        assert!(Instant::now() < deadline, "no checkpoint");
        std::thread::sleep(Duration::from_millis(200));
    }
    first.child.kill().unwrap();
    first.wait(Duration::from_secs(10));

    let mut second = learner(&certs_dir, port, &run, &["--resume", checkpoint.to_str().unwrap(), "--steps", "3000"]);
    for id in 1..=2 {
        second.expect(&format!("actor {id} (says"), Duration::from_secs(60));
    }
    assert!(second.wait(Duration::from_secs(120)), "resumed learner failed:\n{}", second.seen.join("\n"));
    let steps = metrics(&run).iter().rev().find(|r| r["kind"] == "eval").map(|r| r["env_steps"].as_u64().unwrap());
    assert!(steps >= Some(3000), "the resumed run reached its end: {steps:?}");
    for a in &mut actors {
        a.expect("reconnecting", Duration::from_secs(1));
        assert!(a.wait(Duration::from_secs(30)), "actor did not stop cleanly:\n{}", a.seen.join("\n"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

/// An actor far faster than its learner (8 envs against a learner doing 8 updates per step)
/// waits for credit: neither process grows, and the actor is never far ahead.
#[test]
fn a_fast_actor_against_a_slow_learner_stays_bounded() {
    let dir = scratch("backpressure");
    let (certs_dir, run) = (dir.join("certs"), dir.join("run"));
    certs(&certs_dir);
    let port = free_port();
    let mut l = learner(&certs_dir, port, &run, &["--steps", "1000000", "--updates-per-step", "8", "--eval-every", "1000000"]);
    l.expect("listening for actors", Duration::from_secs(60));
    let connect = format!("localhost:{port}");
    let mut a = Proc::spawn(Command::new(actor_binary()).args(["--connect", &connect, "--certs", certs_dir.to_str().unwrap(), "--envs", "8", "--id", "1"]));
    l.expect("actor 1 (says 1) connected", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(6));
    let (learner_before, actor_before) = (rss_kb(l.child.id()), rss_kb(a.child.id()));
    std::thread::sleep(Duration::from_secs(12));
    let (learner_after, actor_after) = (rss_kb(l.child.id()), rss_kb(a.child.id()));
    assert!(actor_before > 0 && learner_before > 0);
    assert!(actor_after < actor_before + 10_000, "actor RSS {actor_before} → {actor_after} kB");
    assert!(learner_after < learner_before + 30_000, "learner RSS {learner_before} → {learner_after} kB");
    // The learner took every step the actor made, give or take the credit window.
    let last = metrics(&run).into_iter().rev().find(|r| r["remote_actors"].is_array()).expect("a progress record");
    let (taken, sent) = (last["env_steps"].as_u64().unwrap(), last["remote_actors"][0]["transitions"].as_u64().unwrap());
    assert_eq!(taken, sent, "every batch the actor sent reached the replay buffer");
    let _ = l.child.kill();
    let _ = a.child.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

/// 200 actors that say Hello and fall silent hold the learner's memory only while they are
/// connected: once they have left, the learner hands it back.
#[test]
fn memory_of_departed_connections_is_handed_back() {
    let dir = scratch("silent");
    let (certs_dir, run) = (dir.join("certs"), dir.join("run"));
    certs(&certs_dir);
    let port = free_port();
    let mut l = learner(&certs_dir, port, &run, &["--steps", "100000"]);
    l.expect("listening for actors", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    let before = rss_kb(l.child.id());
    let options = actor_options(&certs_dir, port, 9);
    let links: Vec<_> = (0..200).map(|_| spikerl_net::quic::ActorLink::connect(&options).unwrap()).collect();
    l.expect("actor 200 (says 9) connected", Duration::from_secs(60));
    let during = rss_kb(l.child.id());
    drop(links);
    std::thread::sleep(Duration::from_secs(15));
    let after = rss_kb(l.child.id());
    eprintln!("learner RSS: {before} kB idle, {during} kB with 200 silent actors, {after} kB after they left");
    assert!(after < before + 20_000, "learner RSS {before} → {during} → {after} kB");
    let _ = l.child.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

/// An authenticated actor that sends finite but impossible values (actions of 3e38, rewards
/// beyond the bound) has those batches refused with the reason; the learner keeps running and
/// takes the same actor's sane batches.
#[test]
fn finite_but_impossible_batches_are_refused_and_the_learner_goes_on() {
    let dir = scratch("impossible");
    let (certs_dir, run) = (dir.join("certs"), dir.join("run"));
    certs(&certs_dir);
    let port = free_port();
    let mut l = learner(&certs_dir, port, &run, &["--steps", "100000"]);
    l.expect("listening for actors", Duration::from_secs(60));
    let options = actor_options(&certs_dir, port, 66);
    let link = spikerl_net::quic::ActorLink::connect(&options).unwrap();
    let batch = |action: f32, reward: f32| {
        let mut b = spikerl_net::TransitionBatch::new(66, 3, 1);
        for _ in 0..8 {
            b.push(&[1.0, 0.0, 0.0], &[action], reward, &[1.0, 0.0, 0.0], false);
        }
        b
    };
    assert_eq!(link.reserve(24, 1).unwrap(), 24);
    link.send(batch(3e38, -1.0)).unwrap();
    l.expect("action component 0 = 300000000000000000000000000000000000000", Duration::from_secs(30));
    link.send(batch(0.5, -3e38)).unwrap();
    l.expect("--max-abs-reward", Duration::from_secs(30));
    link.send(batch(0.5, -1.0)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while metrics(&run).iter().rev().find(|r| r["kind"] == "progress").is_none_or(|r| r["env_steps"].as_u64() != Some(8)) {
        assert!(Instant::now() < deadline, "the sane batch never arrived:\n{}", l.seen.join("\n"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let last = metrics(&run).into_iter().rev().find(|r| r["kind"] == "progress").unwrap();
    assert_eq!(last["refused_batches"], 2, "{last}");
    assert!(l.child.try_wait().unwrap().is_none(), "the learner is still running");
    let _ = l.child.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two learner ranks (`spikerl learner --learners 2`, MPI) and three actor processes that all
/// dial rank 0: rank 0 sends actors on to the least-loaded rank, both ranks get actors, and
/// Pendulum learns as with one learner.
#[test]
fn two_learners_spread_three_actor_processes_and_learn_pendulum() {
    let dir = scratch("two-learners");
    let (certs_dir, run) = (dir.join("certs"), dir.join("run"));
    certs(&certs_dir);
    // Rank r on this machine listens on port + r.
    let port = loop {
        let p = free_port();
        if p < u16::MAX && std::net::UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            break p;
        }
    };
    let mut l = learner(&certs_dir, port, &run, &["--learners", "2", "--steps", "20000", "--target-return", "-300"]);
    l.expect("listening for actors", Duration::from_secs(60));
    let _actors: Vec<Proc> = (1..=3).map(|id| actor(&certs_dir, port, id)).collect();
    l.expect(&format!("sent to the learner at 127.0.0.1:{}", port + 1), Duration::from_secs(60));
    assert!(l.wait(Duration::from_secs(400)), "the run failed:\n{}", l.seen.join("\n"));
    let records = metrics(&run);
    let best = records.iter().filter(|r| r["kind"] == "eval").map(|r| r["eval_return_mean"].as_f64().unwrap()).fold(f64::NEG_INFINITY, f64::max);
    assert!(best >= -300.0, "best evaluation {best}");
    // Both ranks had actors, three in all.
    let spread = records.iter().filter_map(|r| r["learner_ranks"].as_array()).map(|ranks| ranks.iter().map(|r| r["actors"].as_u64().unwrap()).collect::<Vec<u64>>()).find(|a| a.iter().sum::<u64>() == 3);
    let spread = spread.expect("a record with all three actors connected");
    assert!(spread.iter().all(|&n| n >= 1), "{spread:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
