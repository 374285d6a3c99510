//! Data-parallel TD3 over MPI, two ranks: this test binary runs itself under mpirun, each rank
//! running one of the `#[ignore]`d `rank_*` functions below (which only make sense as ranks),
//! and the outer test checks what the ranks wrote.

#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use spikerl_learner::collective::{self, Backend, Collective};
use spikerl_learner::prelude::*;
use spikerl_learner::td3::{UpdateError, check_ranks_agree};
use spikerl_learner::Encoding;
use tch::Device;
use spikerl_snn::rng::SplitMix;

const OBS: usize = 4;
const ACT: usize = 2;

fn learner(batch: usize, seed: u64) -> Box<dyn Agent> {
    // No target noise: the equivalence below needs the same targets from any split of a batch.
    let config = Td3Config { batch_size: batch, replay_size: 1000, target_noise: 0.0, ..Td3Config::default() };
    let spec = ActorConfig { encoding: Encoding::Deterministic, ..ActorConfig::default() }.spec(OBS, ACT, 1.0).unwrap();
    build(config, spec, Surrogate::FastSigmoid, Device::Cpu, Precision::F32, seed, 1).unwrap()
}

/// A fixed minibatch of `rows` transitions, the same on every rank.
fn minibatch(rows: usize, seed: u64) -> Minibatch {
    let mut rng = SplitMix::new(seed);
    let mut values = |n: usize, f: &mut dyn FnMut(&mut SplitMix) -> f32| (0..n).map(|_| f(&mut rng)).collect::<Vec<f32>>();
    Minibatch {
        obs: values(rows * OBS, &mut |r| r.normal()),
        act: values(rows * ACT, &mut |r| r.uniform(1.0)),
        rew: values(rows, &mut |r| r.normal()),
        next_obs: values(rows * OBS, &mut |r| r.normal()),
        done: values(rows, &mut |r| f32::from(u8::from(r.next_f32() < 0.1))),
    }
}

fn rows(mb: &Minibatch, range: std::ops::Range<usize>) -> Minibatch {
    Minibatch {
        obs: mb.obs[range.start * OBS..range.end * OBS].to_vec(),
        act: mb.act[range.start * ACT..range.end * ACT].to_vec(),
        rew: mb.rew[range.clone()].to_vec(),
        next_obs: mb.next_obs[range.start * OBS..range.end * OBS].to_vec(),
        done: mb.done[range].to_vec(),
    }
}

fn mpi() -> Arc<dyn Collective> {
    collective::connect(Backend::Mpi, Duration::from_secs(60)).unwrap()
}

fn out_dir() -> PathBuf {
    PathBuf::from(std::env::var("SPIKERL_RANK_TEST_OUT").expect("run by the outer test"))
}

fn write_params(path: &Path, agent: &dyn Agent) {
    let s = agent.state();
    let values: Vec<String> = s.actor.iter().chain(&s.critic).map(|x| x.to_string()).collect();
    std::fs::write(path, values.join("\n")).unwrap();
}

/// Rank: a learner initialised from its own seed joins, then takes 50 updates on minibatches
/// sampled from a replay buffer of its own; writes its checksum.
#[test]
#[ignore = "a rank of `two_ranks_train_as_one`, run under mpirun"]
fn rank_fifty_updates() {
    let c = mpi();
    let mut agent = learner(25, 100 + c.rank() as u64);
    agent.join(c.clone()).unwrap();
    let mut rb = ReplayBuffer::new(OBS, ACT, 1000);
    let mut rng = SplitMix::new(7 + c.rank() as u64);
    for _ in 0..500 {
        let o: Vec<f32> = (0..OBS).map(|_| rng.normal()).collect();
        let a: Vec<f32> = (0..ACT).map(|_| rng.uniform(1.0)).collect();
        let o2: Vec<f32> = (0..OBS).map(|_| rng.normal()).collect();
        rb.push(&o, &a, rng.normal(), &o2, false);
    }
    let mut mb = Minibatch::default();
    for _ in 0..50 {
        rb.sample_into(25, agent.rng_mut(), &mut mb);
        agent.update(&mb).unwrap();
    }
    check_ranks_agree(&*agent, &*c).unwrap();
    std::fs::write(out_dir().join(format!("checksum-{}", c.rank())), format!("{:08x} {}", agent.checksum(), agent.updates())).unwrap();
}

/// Rank: rank r updates on rows 50r..50(r+1) of one 100-row minibatch, ten times; rank 0
/// writes its parameters.
#[test]
#[ignore = "a rank of `two_ranks_train_as_one`, run under mpirun"]
fn rank_half_batches() {
    let c = mpi();
    let mut agent = learner(50, 100);
    agent.join(c.clone()).unwrap();
    let mine = rows(&minibatch(100, 3), c.rank() * 50..(c.rank() + 1) * 50);
    for _ in 0..10 {
        agent.update(&mine).unwrap();
    }
    if c.rank() == 0 {
        write_params(&out_dir().join("half-batches"), &*agent);
    }
}

/// Rank: after a few updates rank 1's critic is nudged by one ulp in one weight; the check
/// must name rank 1 on both ranks.
#[test]
#[ignore = "a rank of `two_ranks_train_as_one`, run under mpirun"]
fn rank_perturbed() {
    let c = mpi();
    let mut agent = learner(50, 100);
    agent.join(c.clone()).unwrap();
    let mine = rows(&minibatch(100, 3), c.rank() * 50..(c.rank() + 1) * 50);
    for _ in 0..3 {
        agent.update(&mine).unwrap();
    }
    check_ranks_agree(&*agent, &*c).expect("identical before the fault");
    if c.rank() == 1 {
        let mut s = agent.state();
        s.critic[17] = f32::from_bits(s.critic[17].to_bits() + 1);
        agent.load_state(s).unwrap();
    }
    let verdict = match check_ranks_agree(&*agent, &*c) {
        Err(UpdateError::RanksDiffer { rank, .. }) => format!("differ at rank {rank}"),
        other => format!("{other:?}"),
    };
    std::fs::write(out_dir().join(format!("perturbed-{}", c.rank())), verdict).unwrap();
}

fn mpirun(test: &str, out: &Path) {
    // The launcher beside the MPI the build used, else the PATH's.
    let mpirun = option_env!("MPICC").map_or_else(|| PathBuf::from("mpirun"), |cc| Path::new(cc).with_file_name("mpirun"));
    let mut cmd = Command::new(&mpirun);
    cmd.args(["-n", "2", "--bind-to", "none", "--oversubscribe"]);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.arg("--allow-run-as-root");
    }
    let status = cmd
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--ignored", "--test-threads", "1"])
        .env("SPIKERL_RANK_TEST_OUT", out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", mpirun.display()));
    assert!(status.success(), "{test} under mpirun: {status}");
}

#[test]
fn two_ranks_train_as_one() {
    let out = std::env::temp_dir().join(format!("spikerl-ranks-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();

    // 50 updates from different initialisations and different minibatches: both ranks hold
    // rank 0's start and then the same state, bit for bit.
    mpirun("rank_fifty_updates", &out);
    let sums: Vec<String> = (0..2).map(|r| std::fs::read_to_string(out.join(format!("checksum-{r}"))).unwrap()).collect();
    assert_eq!(sums[0], sums[1], "the ranks' states after 50 updates");
    assert!(sums[0].ends_with(" 50"), "{}", sums[0]);

    // 2 ranks × batch 50 take the steps one learner takes with batch 100 on the same rows.
    mpirun("rank_half_batches", &out);
    let mut one = learner(100, 100);
    let all = minibatch(100, 3);
    for _ in 0..10 {
        one.update(&all).unwrap();
    }
    write_params(&out.join("one-batch"), &*one);
    let read = |f: &str| -> Vec<f32> { std::fs::read_to_string(out.join(f)).unwrap().lines().map(|l| l.parse().unwrap()).collect() };
    let (two, one) = (read("half-batches"), read("one-batch"));
    assert_eq!(two.len(), one.len());
    // Float sums in another order, amplified where Adam divides a tiny gradient by its tiny
    // scale: the whole vectors agree to 1e-6 relative, each element as numpy's allclose with
    // rtol 1e-5, atol 1e-6 (measured 2026-12-01: 3.2e-8 and at most 5.2e-7 absolute).
    let norm = |v: &mut dyn Iterator<Item = f32>| v.map(|x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    let relative = norm(&mut two.iter().zip(&one).map(|(a, b)| a - b)) / norm(&mut one.iter().copied());
    assert!(relative < 1e-6, "relative difference {relative}");
    let far = two.iter().zip(&one).filter(|(a, b)| (*a - *b).abs() > 1e-5 * b.abs() + 1e-6).count();
    assert_eq!(far, 0, "elements beyond rtol 1e-5, atol 1e-6");
    assert!(two != learner(100, 100).state().actor.iter().chain(&learner(100, 100).state().critic).copied().collect::<Vec<f32>>(), "the updates moved the parameters");

    // One ulp of difference on rank 1 is caught, on both ranks.
    mpirun("rank_perturbed", &out);
    for r in 0..2 {
        assert_eq!(std::fs::read_to_string(out.join(format!("perturbed-{r}"))).unwrap(), "differ at rank 1");
    }
    let _ = std::fs::remove_dir_all(&out);
}
