//! `spikerl train` / `spikerl eval` end to end: learning, reproducibility, resume, bad input.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use common::{Proc, scratch, spikerl};

fn evals(run: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "eval")
        .map(|r| (r["env_steps"].as_u64().unwrap(), r["eval_return_mean"].as_f64().unwrap()))
        .collect()
}

/// The bar: Pendulum-v1 with the spiking actor reaches −300 (random ≈ −1200) within
/// 20 000 env steps, with no flag but the env (the run stops once it gets there).
#[test]
fn spiking_td3_learns_pendulum_within_20k_steps() {
    let run = scratch("pendulum");
    let r = run.to_str().unwrap();
    let (ok, out, err) = spikerl(&["train", "--env", "pendulum-v1", "--steps", "20000", "--target-return", "-300", "--quiet", "--out", r]);
    assert!(ok, "{err}");
    let evals = evals(&run);
    let first = evals.first().expect("evaluations logged").1;
    let best = evals.iter().map(|e| e.1).fold(f64::NEG_INFINITY, f64::max);
    assert!(first < -600.0, "the untrained policy should be poor, got {first}");
    assert!(best >= -300.0, "best evaluation {best} within 20k steps: {evals:?}\n{out}");
    for f in ["report.md", "learning_curve.png", "checkpoint.bin", "policy.paramset", "best_policy.paramset"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    assert!(std::fs::read_to_string(run.join("report.md")).unwrap().contains("reached"));
    assert!(out.contains("· energy ") && out.contains("g CO2e"), "the final line gives the run's energy: {out}");
    // The actor's activity on the update batches, per layer, in the progress records and the report.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let activity: Vec<serde_json::Value> = metrics.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).filter_map(|r| r.get("actor_activity").cloned()).collect();
    let last = activity.last().expect("progress records carry the actor's activity");
    assert_eq!((last["firing"].as_array().unwrap().len(), last["in_window"].as_array().unwrap().len()), (3, 3));
    assert!(std::fs::read_to_string(run.join("report.md")).unwrap().contains("| output population |"));
    // The saved best policy is the one that scored the best evaluation: on the run's evaluation
    // seeds (seed + 1_000_000_007) the CLI reproduces that score; the final actor loads from
    // either file.
    let mean_of = |file: &str, seed: &str| -> f64 {
        let (ok, out, err) = spikerl(&["eval", "--checkpoint", run.join(file).to_str().unwrap(), "--env", "Pendulum-v1", "--episodes", "10", "--seed", seed]);
        assert!(ok, "{err}");
        out.split("return ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap()
    };
    let replayed = mean_of("best_policy.paramset", "1000000007");
    assert!((replayed - best).abs() < 0.01, "best policy re-evaluated on the run's seeds: {replayed}, logged {best}");
    assert_eq!(mean_of("checkpoint.bin", "0"), mean_of("policy.paramset", "0"), "checkpoint and policy file hold the same actor");
    let _ = std::fs::remove_dir_all(&run);
}

/// `--actor mlp`: the dense actor trains in the same system (learner, actors, reports) and
/// learns Pendulum-v1 as TD3 does; its report, energy and policy file say what it is.
#[test]
fn a_dense_actor_trains_with_the_same_system() {
    let run = scratch("dense");
    let r = run.to_str().unwrap();
    let (ok, out, err) = spikerl(&["train", "--env", "pendulum-v1", "--actor", "mlp", "--steps", "20000", "--target-return", "-300", "--quiet", "--out", r]);
    assert!(ok, "{err}");
    let best = evals(&run).iter().map(|e| e.1).fold(f64::NEG_INFINITY, f64::max);
    assert!(best >= -300.0, "best evaluation {best}\n{out}");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.starts_with("# Pendulum-v1 · MLP-TD3") && report.contains("dense (MLP) actor at inference"), "{report}");
    assert!(!report.contains("| output population |"), "a dense actor has no spiking layers");
    let energy: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("energy.json")).unwrap()).unwrap();
    assert_eq!(energy["inference"]["actor"], "dense (MLP)");
    assert_eq!(energy["inference"]["macs_per_action"].as_f64(), Some((3 * 256 + 256 * 256 + 256) as f64));
    let policy = run.join("best_policy.paramset");
    let (ok, out, err) = spikerl(&["eval", "--checkpoint", policy.to_str().unwrap(), "--env", "pendulum-v1", "--episodes", "3"]);
    assert!(ok && out.contains("3 episodes"), "{err}");
    let (ok, _, err) = spikerl(&["snn-report", "--env", "pendulum-v1", "--checkpoint", policy.to_str().unwrap()]);
    assert!(!ok && err.contains("dense actor"), "{err}");
    let _ = std::fs::remove_dir_all(&run);
}

/// `--sync` with the replay buffer saved: a run checkpointed at 1000 steps and resumed to
/// 2000 ends in the very same state (every byte of the checkpoint) as an uninterrupted one.
#[test]
fn sync_run_resumed_from_a_checkpoint_is_bitwise_identical() {
    let (a, b) = (scratch("sync-a"), scratch("sync-b"));
    let common = ["train", "--env", "pendulum-v1", "--sync", "--save-replay", "--quiet", "--seed", "5", "--checkpoint-every", "0", "--eval-every", "1000", "--start-steps", "600", "--update-after", "300"];
    let run = |out: &Path, steps: &str, resume: Option<&Path>| {
        let mut args: Vec<&str> = common.to_vec();
        args.extend(["--steps", steps, "--out", out.to_str().unwrap()]);
        let ck;
        if let Some(r) = resume {
            ck = r.join("checkpoint.bin").to_str().unwrap().to_string();
            args.extend(["--resume", ck.as_str()]);
        }
        let (ok, _, err) = spikerl(&args);
        assert!(ok, "{err}");
    };
    run(&a, "2000", None);
    run(&b, "1000", None);
    let halfway = std::fs::read(b.join("checkpoint.bin")).unwrap();
    run(&b, "2000", Some(&b));
    let whole = std::fs::read(a.join("checkpoint.bin")).unwrap();
    let resumed = std::fs::read(b.join("checkpoint.bin")).unwrap();
    assert_ne!(halfway, resumed, "the resumed run went on");
    assert!(whole == resumed, "uninterrupted and resumed runs differ");
    assert_eq!(evals(&a), evals(&b), "same evaluations, in order");
    let report = |dir: &Path| std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report(&b).contains("| precision / device | fp32"), "the checkpoint's precision is kept");
    // energy.json adds the resumed session to the first; each part says how it was had.
    let energy: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(b.join("energy.json")).unwrap()).unwrap();
    assert_eq!((energy["sessions"].as_u64(), energy["env_steps"].as_u64()), (Some(2), Some(2000)), "{energy}");
    let parts = energy["components"].as_array().unwrap();
    let cpu = parts.iter().find(|c| c["component"] == "cpu").expect("the CPU's part");
    let rapl_unreadable = energy["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().starts_with("RAPL"));
    assert_eq!(cpu["source"], if rapl_unreadable { "estimated" } else { "measured" }, "{energy}");
    assert!(cpu["joules"].as_f64().unwrap() > 0.0 && energy["kg_co2e"].as_f64().unwrap() > 0.0);
    assert!(report(&b).contains("## Energy") && report(&b).contains("energy per action"), "{}", report(&b));

    // Asked for, another compute precision takes over from a checkpoint (master weights are fp32).
    let mut args: Vec<&str> = common.to_vec();
    let ck = b.join("checkpoint.bin").to_str().unwrap().to_string();
    args.extend(["--steps", "2300", "--out", a.to_str().unwrap(), "--resume", ck.as_str(), "--precision", "bf16"]);
    let (ok, _, err) = spikerl(&args);
    assert!(ok, "{err}");
    assert!(report(&a).contains("| precision / device | bf16"), "{}", report(&a));

    // A corrupt or foreign checkpoint is a clear error.
    let bad = b.join("bad.bin");
    std::fs::write(&bad, &resumed[..resumed.len() / 2]).unwrap();
    let (ok, _, err) = spikerl(&["train", "--env", "pendulum-v1", "--sync", "--steps", "3000", "--resume", bad.to_str().unwrap()]);
    assert!(!ok && err.contains("corrupt"), "{err}");
    std::fs::write(&bad, b"not a checkpoint").unwrap();
    let (ok, _, err) = spikerl(&["train", "--env", "pendulum-v1", "--sync", "--steps", "3000", "--resume", bad.to_str().unwrap()]);
    assert!(!ok && err.contains("not a spikerl checkpoint"), "{err}");
    let ck = b.join("checkpoint.bin");
    let (ok, _, err) = spikerl(&["train", "--env", "hopper-v4", "--steps", "3000", "--resume", ck.to_str().unwrap()]);
    assert!(!ok && err.contains("checkpoint of Pendulum-v1"), "{err}");
    let (ok, _, err) = spikerl(&["train", "--env", "pendulum-v1", "--steps", "3000", "--resume", ck.to_str().unwrap()]);
    assert!(!ok && err.contains("--sync"), "{err}");
    assert_eq!(std::fs::read(&ck).unwrap(), resumed, "a refused resume leaves the checkpoint alone");
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

/// A session killed before it ends (the machine gone) still counts in `energy.json` up to its
/// last checkpoint, and the resumed run counts every env step once.
#[test]
fn a_killed_session_counts_its_energy_up_to_its_last_checkpoint() {
    let run = scratch("killed");
    let r = run.to_str().unwrap();
    let common = ["--env", "pendulum-v1", "--sync", "--quiet", "--checkpoint-every", "1000", "--eval-every", "1000000"];
    let mut training = Proc::spawn(Command::new(env!("CARGO_BIN_EXE_spikerl")).args(["train", "--steps", "1000000", "--out", r]).args(common));
    let energy_file = run.join("energy.json");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !energy_file.is_file() {
        assert!(Instant::now() < deadline && training.child.try_wait().unwrap().is_none(), "no energy.json at the first checkpoint");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(training); // killed (SIGKILL), as a machine that goes away
    let read = || serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&energy_file).unwrap()).unwrap();
    let killed = read();
    let counted = killed["env_steps"].as_u64().unwrap();
    assert_eq!(killed["sessions"].as_u64(), Some(1), "{killed}");
    assert!(counted >= 1000 && counted % 1000 == 0 && killed["total_j"].as_f64().unwrap() > 0.0, "{killed}");
    assert!(killed["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("counted up to its checkpoint at")), "{killed}");

    let end = (counted + 500).to_string();
    let ck = run.join("checkpoint.bin");
    let (ok, out, err) = spikerl(&[&["train", "--steps", end.as_str(), "--out", r, "--resume", ck.to_str().unwrap()][..], &common[..]].concat());
    assert!(ok, "{err}");
    assert!(out.contains(&format!("continuing from {counted} env steps")), "the checkpoint and energy.json agree: {out}");
    let whole = read();
    assert_eq!((whole["sessions"].as_u64(), whole["env_steps"].as_u64()), (Some(2), Some(counted + 500)), "{whole}");
    assert!(whole["total_j"].as_f64().unwrap() > killed["total_j"].as_f64().unwrap());
    let _ = std::fs::remove_dir_all(&run);
}

#[test]
fn hyperparameters_come_from_toml_and_flags_and_bad_ones_are_refused() {
    let run = scratch("toml");
    std::fs::create_dir_all(&run).unwrap();
    let cfg = run.join("td3.toml");
    std::fs::write(&cfg, "batch_size = 32\ncritic_hidden = [64, 64]\nactor_hidden = [32]\n").unwrap();
    let out = run.join("run");
    let args = ["train", "--env", "Pendulum-v1", "--steps", "400", "--start-steps", "200", "--update-after", "100", "--gamma", "0.9", "--quiet", "--config"];
    let (ok, _, err) = spikerl(&[&args[..], &[cfg.to_str().unwrap(), "--out", out.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for line in ["batch_size = 32", "gamma = 0.9", "actor_hidden = [32]", "start_steps = 200"] {
        assert!(report.contains(line), "report lacks {line}:\n{report}");
    }
    std::fs::write(&cfg, "batch_sise = 32\n").unwrap();
    let (ok, _, err) = spikerl(&[&args[..], &[cfg.to_str().unwrap()]].concat());
    assert!(!ok && err.contains("batch_sise"), "{err}");
    std::fs::write(&cfg, "polyak = 1.5\n").unwrap();
    let (ok, _, err) = spikerl(&[&args[..], &[cfg.to_str().unwrap()]].concat());
    assert!(!ok && err.contains("polyak"), "{err}");
    let (ok, _, err) = spikerl(&["train", "--env", "pendulum-v1", "--device", "cuda:7", "--steps", "10"]);
    assert!(!ok && err.contains("cuda:7"), "{err}");
    let (ok, _, err) = spikerl(&["train", "--env", "pendulum-v1", "--precision", "fp8", "--steps", "10"]);
    assert!(!ok && err.contains("fp8"), "{err}");
    let _ = std::fs::remove_dir_all(&run);
}

/// SIGTERM (what a batch scheduler sends; Ctrl-C is the same path) stops a run cleanly: the
/// checkpoint, report and policy are written and the run can be resumed.
#[test]
fn a_terminated_run_leaves_a_checkpoint_and_a_report() {
    let run = scratch("sigterm");
    let child = Command::new(env!("CARGO_BIN_EXE_spikerl"))
        .args(["train", "--env", "pendulum-v1", "--steps", "20000", "--quiet", "--out", run.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it is training (metrics appear), then terminate it.
    let started = std::time::Instant::now();
    while !run.join("metrics.jsonl").is_file() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["checkpoint.bin", "report.md", "policy.paramset"] {
        assert!(run.join(f).is_file(), "{f} missing after SIGTERM");
    }
    let stopped_at = evals(&run).last().expect("a final evaluation").0;
    assert!(stopped_at < 20_000, "stopped early, at {stopped_at}");
    let ck = run.join("checkpoint.bin");
    let more = (stopped_at + 300).to_string();
    let (ok, _, err) = spikerl(&["train", "--env", "pendulum-v1", "--steps", &more, "--quiet", "--resume", ck.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(evals(&run).last().unwrap().0 >= stopped_at + 300, "the resumed run went on to --steps");
    let _ = std::fs::remove_dir_all(&run);
}

/// `--env` takes an MJCF file as well as a registered id; the run is named after the file, and
/// ends with a picture of its best policy.
#[test]
fn an_mjcf_file_trains_like_a_registered_task() {
    let run = scratch("mjcf");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("envs/assets/hopper.xml");
    let (ok, out, err) = spikerl(&["train", "--env", model.to_str().unwrap(), "--steps", "1200", "--eval-every", "1000", "--quiet", "--out", run.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("1200 env steps"), "{out}");
    assert!(!evals(&run).is_empty());
    // The end of a locomotion run draws its best policy, and the report shows it.
    let picture = std::fs::read(run.join("best_policy.gif")).expect("best_policy.gif");
    assert!(picture.starts_with(b"GIF89a") && picture.len() > 10_000, "{} bytes", picture.len());
    assert!(std::fs::read_to_string(run.join("report.md")).unwrap().contains("![the best policy, one episode](best_policy.gif)"));
    let _ = std::fs::remove_dir_all(&run);
}

/// `--seeds`: three Pendulum seeds into RUN/seed-K, an aggregate whose figures follow from the
/// seeds' own evaluations, `--resume RUN` taking every seed further, and `compare`.
#[test]
fn a_multi_seed_run_aggregates_resumes_as_a_whole_and_compares() {
    let run = scratch("seeds");
    let r = run.to_str().unwrap();
    let fast = ["--eval-every", "500", "--start-steps", "300", "--update-after", "200", "--quiet"];
    let (ok, out, err) = spikerl(&[&["train", "--env", "pendulum-v1", "--seeds", "0-2", "--steps", "1000", "--out", r][..], &fast[..]].concat());
    assert!(ok, "{err}\n{out}");
    let summary = |dir: &Path| serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let s = summary(&run);
    let seeds = s["seeds"].as_array().unwrap();
    assert_eq!(seeds.len(), 3);
    let mut finals = Vec::new();
    for (k, seed) in seeds.iter().enumerate() {
        assert_eq!(seed["seed"], k);
        let own = evals(&run.join(format!("seed-{k}")));
        assert_eq!(seed["final_return"].as_f64().unwrap(), own.last().unwrap().1, "seed {k}'s final evaluation");
        assert_eq!(seed["env_steps"], 1000);
        finals.push(own.last().unwrap().1);
    }
    // Three seeds: the interquartile mean cuts nothing.
    let iqm = s["iqm_final"]["value"].as_f64().unwrap();
    assert!((iqm - finals.iter().sum::<f64>() / 3.0).abs() < 1e-9);
    let (lo, hi) = (s["iqm_final"]["ci_low"].as_f64().unwrap(), s["iqm_final"]["ci_high"].as_f64().unwrap());
    assert!(lo <= iqm && iqm <= hi);
    assert_eq!(s["seeds_reaching_threshold"], finals.iter().filter(|&&f| f >= -300.0).count());
    for f in ["summary.md", "curves.png", "seeds.toml"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }

    // The whole run continues, with the run's own settings: every seed to the new --steps, and
    // a fourth seed, two seeds side by side.
    let (ok, out, err) = spikerl(&["train", "--resume", r, "--steps", "1500", "--seeds", "0-3", "--side-by-side", "2", "--quiet"]);
    assert!(ok, "{err}\n{out}");
    let seeds = summary(&run)["seeds"].as_array().unwrap().clone();
    assert!(seeds.len() == 4 && seeds.iter().all(|s| s["env_steps"] == 1500), "{out}");
    assert!(std::fs::read_to_string(run.join("seed-3/report.md")).unwrap().contains("learner_threads"), "a side-by-side seed's share of the cores is in its report");
    let energy: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("seed-3/energy.json")).unwrap()).unwrap();
    assert_eq!(energy["env_steps"], 1500, "each seed meters its own sessions: {energy}");
    // Finished seeds are skipped, also one kept without its checkpoint (results archived
    // without their replay buffers); a resumed run may not drop seeds; another configuration
    // into the same directory is refused.
    std::fs::remove_file(run.join("seed-0/checkpoint.bin")).unwrap();
    let (ok, out, _) = spikerl(&["train", "--resume", r, "--steps", "1500", "--quiet"]);
    assert!(ok && out.matches("done (1500 env steps)").count() == 3 && out.contains("seed 0 (1 of 4): done (1500 env steps, no checkpoint)"), "{out}");
    let (ok, _, err) = spikerl(&["train", "--resume", r, "--seeds", "0-2", "--quiet"]);
    assert!(!ok && err.contains("leaves out seed 3"), "{err}");
    let (ok, _, err) = spikerl(&["train", "--env", "pendulum-v1", "--seeds", "0-1", "--steps", "500", "--out", r, "--quiet"]);
    assert!(!ok && err.contains("--resume"), "{err}");

    let cmp = run.join("cmp");
    let (ok, out, err) = spikerl(&["compare", r, r, "--out", cmp.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("| Pendulum-v1 | 4 |") && cmp.join("compare.png").is_file() && cmp.join("compare.md").is_file(), "{out}");
    // What each run cost: every session of every seed was metered.
    assert!(out.contains("| PopSAN-TD3 |") && out.contains(" Wh") && out.contains(" nJ |"), "{out}");
    let (ok, _, err) = spikerl(&["compare", r, "/no/such/run"]);
    assert!(!ok && err.contains("/no/such/run"), "{err}");
    let _ = std::fs::remove_dir_all(&run);
}

/// A schedule whose first update lies past --steps (a minibatch larger than the run) ends with
/// no update and says so, instead of waiting forever for data the throttle holds back.
#[test]
fn a_run_that_cannot_update_still_ends() {
    let run = scratch("no-updates");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spikerl"))
        .args(["train", "--env", "pendulum-v1", "--steps", "1500", "--batch-size", "2000", "--start-steps", "100", "--eval-every", "100000", "--eval-episodes", "1", "--quiet", "--out", run.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the run did not end within 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("this run only collects") && stdout.contains("1500 env steps, 0 updates"), "{stdout}");
    let _ = std::fs::remove_dir_all(&run);
}

/// A checkpoint whose stored replay size was altered to 4e9 still evaluates, and resuming it
/// is a clear error naming --replay-size, not an allocator abort.
#[test]
fn resuming_a_checkpoint_too_large_for_the_machine_is_a_clear_error() {
    let run = scratch("huge-replay");
    let r = run.to_str().unwrap();
    let (ok, _, err) = spikerl(&["train", "--env", "pendulum-v1", "--steps", "300", "--start-steps", "100", "--update-after", "100", "--eval-episodes", "1", "--quiet", "--out", r]);
    assert!(ok, "{err}");
    let path = run.join("checkpoint.bin");
    let mut ck = spikerl_learner::checkpoint::Checkpoint::load(&path).unwrap();
    ck.algorithm.replay_size = 4_000_000_000;
    ck.save(&path).unwrap();
    let (ok, out, err) = spikerl(&["eval", "--checkpoint", path.to_str().unwrap(), "--env", "pendulum-v1", "--episodes", "1"]);
    assert!(ok && out.contains("Pendulum-v1: 1 episodes"), "{out}{err}");
    let (ok, _, err) = spikerl(&["train", "--resume", path.to_str().unwrap(), "--steps", "600", "--quiet"]);
    assert!(!ok && err.contains("--replay-size") && !err.contains("memory allocation"), "{err}");
    let _ = std::fs::remove_dir_all(&run);
}

/// What a killed write left behind (checkpoint, policy and manifest temporaries) is gone once
/// a run opens the directory again; the user's own files stay.
#[test]
fn a_run_removes_the_temporaries_of_interrupted_writes() {
    let run = scratch("temporaries");
    std::fs::create_dir_all(&run).unwrap();
    let stale = [".checkpoint.bin.tmp.4242", ".best_policy.paramset.tmp", ".policy.paramset.tmp", ".seeds.toml.tmp"];
    for f in stale.iter().chain(&["notes.txt"]) {
        std::fs::write(run.join(f), b"partial").unwrap();
    }
    let (ok, _, err) = spikerl(&["train", "--env", "pendulum-v1", "--steps", "300", "--eval-episodes", "1", "--quiet", "--out", run.to_str().unwrap()]);
    assert!(ok, "{err}");
    for f in stale {
        assert!(!run.join(f).exists(), "{f} left behind");
    }
    assert!(run.join("notes.txt").exists() && run.join("checkpoint.bin").exists());
    let _ = std::fs::remove_dir_all(&run);
}
