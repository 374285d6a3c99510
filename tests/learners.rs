//! `spikerl train --learners 2`: two MPI learner ranks on this machine train one policy; a
//! killed rank stops the other within the bound, the run resumes from its checkpoint, and a
//! killed launcher takes the ranks with it.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use common::{scratch, spikerl};

fn records(run: &Path, kind: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl")).unwrap_or_default().lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).filter(|r| r["kind"] == kind).collect()
}

/// Processes whose environment says they are learner rank `rank` of a run writing to `run`.
fn rank_pids(run: &Path, rank: usize) -> Vec<i32> {
    let needle = run.to_str().unwrap();
    let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(needle) && environ.split(|&b| b == 0).any(|v| v == wanted.as_bytes())
        })
        .collect()
}

#[test]
fn two_learners_train_pendulum_survive_a_killed_rank_and_resume() {
    // Learning: Pendulum-v1 to −300 within 20 k env steps, as one learner does.
    let run = scratch("pendulum");
    let r = run.to_str().unwrap();
    let (ok, out, err) = spikerl(&["train", "--env", "pendulum-v1", "--learners", "2", "--steps", "20000", "--target-return", "-300", "--quiet", "--out", r]);
    assert!(ok, "{out}\n{err}");
    let best = records(&run, "eval").iter().map(|e| e["eval_return_mean"].as_f64().unwrap()).fold(f64::NEG_INFINITY, f64::max);
    assert!(best >= -300.0, "best evaluation {best}\n{out}");
    assert!(out.contains("learners: 2 ranks (mpi)"), "{out}");
    assert_eq!(out.matches(" env steps, ").count(), 1, "one summary line, rank 0's: {out}");
    // Rank 0's records list both ranks, each with its own actor and its share of the steps.
    let last = records(&run, "progress").last().cloned().expect("progress records");
    let ranks = last["learner_ranks"].as_array().expect("every rank in rank 0's records");
    assert_eq!(ranks.len(), 2);
    let steps: Vec<u64> = ranks.iter().map(|r| r["env_steps"].as_u64().unwrap()).collect();
    assert!(steps.iter().all(|&s| s > 1000) && steps.iter().sum::<u64>() <= last["env_steps"].as_u64().unwrap() + 200, "{last}");
    assert!(run.join("rank-1/metrics.jsonl").is_file() && run.join("checkpoint.bin").is_file());
    // One energy.json, rank 0's, with both ranks' parts.
    let energy: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("energy.json")).unwrap()).unwrap();
    assert!(energy["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("summed over 2 learner ranks")), "{energy}");
    assert!(energy["total_j"].as_f64().unwrap() > 0.0 && !run.join("rank-1/energy.json").exists());
    let _ = std::fs::remove_dir_all(&run);

    // A rank killed mid-run: the other stops within the bound, with a message.
    let run = scratch("killed");
    let r = run.to_str().unwrap();
    let mut job = Command::new(env!("CARGO_BIN_EXE_spikerl"))
        .args(["train", "--env", "pendulum-v1", "--learners", "2", "--steps", "200000", "--checkpoint-every", "2000", "--rank-timeout", "20", "--quiet", "--out", r])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !run.join("checkpoint.bin").is_file() {
        assert!(Instant::now() < deadline && job.try_wait().unwrap().is_none(), "no checkpoint within 300 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let victims = rank_pids(&run, 1);
    assert_eq!(victims.len(), 1, "one rank-1 process: {victims:?}");
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(victims[0], libc::SIGKILL) }, 0);
    let killed = Instant::now();
    let status = loop {
        if let Some(s) = job.try_wait().unwrap() {
            break s;
        }
        assert!(killed.elapsed() < Duration::from_secs(40), "the run still runs {:?} after its rank 1 died", killed.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    };
    let stopped_after = killed.elapsed();
    let output = job.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!status.success(), "{said}");
    assert!(rank_pids(&run, 0).is_empty(), "rank 0 is gone too");
    eprintln!("the run stopped {stopped_after:?} after rank 1 was killed:\n{said}");

    // Resumed from rank 0's last checkpoint, with both ranks.
    let ck = run.join("checkpoint.bin");
    let at = spikerl_learner::checkpoint::Checkpoint::load(&ck).unwrap().env_steps;
    let target = (at + 2000).to_string();
    let (ok, out, err) = spikerl(&["train", "--resume", ck.to_str().unwrap(), "--learners", "2", "--steps", &target, "--quiet"]);
    assert!(ok, "{out}\n{err}");
    let resumed = spikerl_learner::checkpoint::Checkpoint::load(&ck).unwrap();
    assert!(resumed.env_steps >= at + 2000, "{} → {}", at, resumed.env_steps);
    assert!(resumed.td3.updates > 0);
    let _ = std::fs::remove_dir_all(&run);

    // The launching process killed: mpirun and the ranks go with it.
    let run = scratch("launcher-killed");
    let mut job = Command::new(env!("CARGO_BIN_EXE_spikerl")).args(["train", "--env", "pendulum-v1", "--learners", "2", "--steps", "200000", "--quiet", "--out", run.to_str().unwrap()]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while rank_pids(&run, 0).is_empty() || rank_pids(&run, 1).is_empty() {
        assert!(Instant::now() < deadline, "the ranks did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    job.kill().unwrap();
    let _ = job.wait();
    let killed = Instant::now();
    while !(rank_pids(&run, 0).is_empty() && rank_pids(&run, 1).is_empty()) {
        assert!(killed.elapsed() < Duration::from_secs(20), "ranks outlived their launcher");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(&run);
}
