//! End-to-end: the `spikerl` binary as a user runs it.

mod common;

use common::spikerl;

#[test]
fn rollout_json_reports_every_episode() {
    let (ok, out, err) = spikerl(&["rollout", "--env", "hopper-v4", "--policy", "random", "--episodes", "4", "--seed", "3", "--json"]);
    assert!(ok, "{err}");
    let episodes: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(episodes.len(), 4);
    for (i, e) in episodes.iter().enumerate() {
        assert_eq!(e["episode"], i);
        let length = e["length"].as_u64().unwrap();
        assert!((1..=1000).contains(&length));
        assert!(e["return"].as_f64().unwrap().is_finite() && e["final_x"].as_f64().unwrap().is_finite());
        // A random hopper falls long before the time limit.
        assert_eq!(e["end"], "terminated");
    }
    // Same seed, same episodes.
    let (_, again, _) = spikerl(&["rollout", "--env", "Hopper-v4", "--policy", "random", "--episodes", "4", "--seed", "3", "--json"]);
    assert_eq!(out, again);
}

#[test]
fn rollout_of_halfcheetah_runs_to_the_time_limit() {
    let (ok, out, err) = spikerl(&["rollout", "--env", "half_cheetah-v4", "--policy", "zero", "--json"]);
    assert!(ok, "{err}");
    let e: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((e["length"].as_u64(), e["end"].as_str()), (Some(1000), Some("truncated")));
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let (ok, _, err) = spikerl(&["rollout", "--env", "walker-v9"]);
    assert!(!ok);
    let (ok, _, zero) = spikerl(&["rollout", "--env", "hopper-v4", "--episodes", "0"]);
    assert!(!ok && zero.contains("--episodes"), "{zero}");
    assert!(err.contains("unknown environment 'walker-v9'") && err.contains("Hopper-v4"), "{err}");
    assert!(!err.contains("panicked"));
    let (ok, _, err) = spikerl(&["rollout", "--env", "/no/such/model.xml"]);
    assert!(!ok && err.contains("/no/such/model.xml"), "{err}");
    let (ok, _, err) = spikerl(&["envcheck", "--env", "pendulum-v1"]);
    assert!(!ok && err.contains("no MuJoCo reference"), "{err}");
    let (ok, _, err) = spikerl(&["envcheck", "--env", "hopper-v4", "--reference", "/no/such/dir"]);
    assert!(!ok && err.contains("/no/such/dir"), "{err}");
}

#[test]
fn envcheck_prints_the_port_beside_mujoco() {
    let (ok, out, err) = spikerl(&["envcheck", "--env", "hopper-v4"]);
    assert!(ok, "{err}");
    for needle in ["mass torso", "3.6652", "zero: first terminated step", "sine: first terminated step", "checks within tolerance"] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[test]
fn bench_env_reports_rates() {
    let (ok, out, err) = spikerl(&["bench", "env", "--env", "pendulum-v1", "--steps", "2000", "--envs", "4", "--no-mujoco", "--json"]);
    assert!(ok, "{err}");
    let b: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in ["single_thread_steps_per_s", "vec_1_thread_steps_per_s", "vec_2_threads_steps_per_s"] {
        assert!(b[key].as_f64().unwrap() > 1000.0, "{key}: {b}");
    }
    assert!(b["mujoco"].is_null());
    assert!(b["physics_zero_ctrl_steps_per_s"].is_null(), "Pendulum has no MuJoCo physics to time: {b}");
    // A locomotion port is also timed under raw mj_step's protocol (zero ctrl, no resets).
    let (ok, out, err) = spikerl(&["bench", "env", "--env", "hopper-v4", "--steps", "500", "--envs", "2", "--no-mujoco", "--json"]);
    assert!(ok, "{err}");
    let b: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(b["physics_zero_ctrl_steps_per_s"].as_f64().unwrap() > 100.0, "{b}");
}

#[test]
fn rollout_runs_a_task_from_a_users_mjcf_file() {
    let xml = r#"<mujoco model="crawler">
  <compiler angle="radian" inertiafromgeom="false"/>
  <option timestep="0.01"/>
  <worldbody>
    <geom name="floor" type="plane" size="10 10 1"/>
    <body name="torso" pos="0 0 0.2">
      <inertial pos="0 0 0" mass="1" diaginertia="0.01 0.01 0.01"/>
      <joint name="rootx" type="slide" axis="1 0 0"/>
      <joint name="rootz" type="slide" axis="0 0 1"/>
      <joint name="rooty" type="hinge" axis="0 1 0"/>
      <geom name="torso_geom" type="capsule" size="0.05 0.2" quat="0.707107 0 0.707107 0"/>
      <body name="leg" pos="0.2 0 0">
        <inertial pos="0 0 -0.1" mass="0.2" diaginertia="0.001 0.001 0.001"/>
        <joint name="knee" type="hinge" axis="0 1 0" range="-1 1" damping="0.1"/>
        <geom name="leg_geom" type="capsule" size="0.04 0.1" pos="0 0 -0.1"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="knee" gear="5" ctrlrange="-1 1" ctrllimited="true"/></actuator>
</mujoco>"#;
    let path = std::env::temp_dir().join(format!("spikerl-crawler-{}.xml", std::process::id()));
    std::fs::write(&path, xml).unwrap();
    let (ok, out, err) = spikerl(&["rollout", "--env", path.to_str().unwrap(), "--policy", "sine", "--json"]);
    std::fs::remove_file(&path).ok();
    assert!(ok, "{err}");
    let e: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    // HalfCheetah's rules: never terminates, so the time limit ends the episode.
    assert_eq!((e["length"].as_u64(), e["end"].as_str()), (Some(1000), Some("truncated")));
    assert!(e["final_x"].as_f64().unwrap().is_finite());
}

#[test]
fn snn_report_reads_a_paramset_and_rejects_bad_ones() {
    use spikerl_snn::{ParamSet, PopSanSpec, Precision};
    let dir = std::env::temp_dir();
    let good = dir.join(format!("spikerl-params-{}.bin", std::process::id()));
    let mut params = ParamSet::init(&PopSanSpec::new(11, 3, 1.0), 5).unwrap();
    params.version = 7;
    std::fs::write(&good, params.encode(Precision::Bf16)).unwrap();
    let (ok, out, err) = spikerl(&["snn-report", "--env", "hopper-v4", "--checkpoint", good.to_str().unwrap(), "--steps", "200"]);
    assert!(ok, "{err}");
    for needle in ["version 7", "hidden 1", "synaptic ops", "dense ANN actor", "69120 MACs"] {
        assert!(out.contains(needle), "missing {needle:?}:\n{out}");
    }
    // A Hopper actor does not fit HalfCheetah; garbage is not a ParamSet.
    let (ok, _, err) = spikerl(&["snn-report", "--env", "halfcheetah-v4", "--checkpoint", good.to_str().unwrap()]);
    assert!(!ok && err.contains("11→3"), "{err}");
    let bad = dir.join(format!("spikerl-garbage-{}.bin", std::process::id()));
    std::fs::write(&bad, b"not parameters").unwrap();
    let (ok, _, err) = spikerl(&["snn-report", "--env", "hopper-v4", "--checkpoint", bad.to_str().unwrap()]);
    assert!(!ok && err.contains("nor a ParamSet") && !err.contains("panicked"), "{err}");
    std::fs::remove_file(good).ok();
    std::fs::remove_file(bad).ok();
}

/// `spikerl render`: an animated GIF of the asked size, a frame per ~1/30 s of the episode,
/// the robot moving between frames; bad requests are clear errors and leave no file.
#[test]
fn render_draws_an_episode_as_a_gif() {
    let dir = common::scratch("render");
    std::fs::create_dir_all(&dir).unwrap();
    let gif = dir.join("hopper.gif");
    let (ok, out, err) = spikerl(&["render", "--env", "hopper-v4", "--policy", "sine", "--steps", "40", "--size", "64x48", "--out", gif.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("11 frames, 40 env steps"), "{out}");
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(std::fs::File::open(&gif).unwrap()).unwrap();
    assert_eq!((decoder.width(), decoder.height()), (64, 48));
    let mut frames = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        // Hopper's dt is 8 ms: every 4th step, 3 cs a frame.
        assert_eq!(frame.delay, 3);
        frames.push(frame.buffer.to_vec());
    }
    assert_eq!(frames.len(), 11);
    assert_ne!(frames[0], frames[10], "the hopper moved");
    for (args, needle) in [
        (vec!["--env", "pendulum-v1"], "not a locomotion task"),
        (vec!["--env", "hopper-v4", "--size", "5x5"], "from 16 to 4096"),
        (vec!["--env", "hopper-v4", "--checkpoint", "/nonexistent/policy.paramset"], "cannot read"),
    ] {
        let bad = dir.join("bad.gif");
        let mut all = vec!["render", "--out", bad.to_str().unwrap()];
        all.extend(args);
        let (ok, _, err) = spikerl(&all);
        assert!(!ok && err.contains(needle), "{all:?}: {err}");
        assert!(!bad.exists());
    }
    let (ok, _, err) = spikerl(&["render", "--env", "hopper-v4", "--out", dir.join("x.png").to_str().unwrap()]);
    assert!(!ok && err.contains(".gif or .mp4"), "{err}");
    // MP4 goes through ffmpeg: a file where it is on the PATH, a clear error where not.
    let mp4 = dir.join("hopper.mp4");
    let (ok, _, err) = spikerl(&["render", "--env", "hopper-v4", "--steps", "20", "--size", "64x48", "--out", mp4.to_str().unwrap()]);
    let has_ffmpeg = std::process::Command::new("ffmpeg").arg("-version").output().is_ok_and(|o| o.status.success());
    if has_ffmpeg {
        assert!(ok && std::fs::metadata(&mp4).unwrap().len() > 0, "{err}");
    } else {
        assert!(!ok && err.contains("ffmpeg") && !mp4.exists(), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The benchmark suite end to end (quick): every part measured, a peer that cannot run here
/// reported as skipped with its reason (never as zero), the results file, its table and plots,
/// and the README's generated section rewritten from them.
#[test]
fn the_quick_benchmark_suite_measures_every_part_and_names_skipped_peers() {
    let dir = common::scratch("bench-all");
    let out = dir.join("results");
    let readme = dir.join("README.md");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&readme, "# x\n\n<!-- bench:start -->\nold figures\n<!-- bench:end -->\n\nrest\n").unwrap();
    let (ok, stdout, err) = spikerl(&["bench", "all", "--quick", "--out", out.to_str().unwrap(), "--torch-python", "/nonexistent/python", "--update-readme", readme.to_str().unwrap()]);
    assert!(ok, "{err}");
    let json = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "json")).expect("a results file");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(r["env"][0]["port_steps_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(r["inference"].as_array().unwrap().len(), 4);
    assert!(r["inference"].as_array().unwrap().iter().all(|i| i["spikerl_us"].as_f64().unwrap() > 0.0 && i["pytorch_us"].is_null()));
    assert!(r["learner"].as_array().unwrap().iter().all(|l| l["updates_per_s"].as_f64().unwrap() > 0.0 && l["pytorch_updates_per_s"].is_null()));
    assert!(r["training"]["env_steps"].as_u64().unwrap() >= 2500 && r["training"]["kwh_per_million_env_steps"].as_f64().unwrap() > 0.0);
    assert!(r["transport"].as_array().unwrap().iter().all(|p| p["transitions_per_s"].as_f64().unwrap() > 0.0));
    let skipped: Vec<&str> = r["skipped"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(skipped.iter().any(|s| s.contains("PyTorch") && s.contains("/nonexistent/python")), "{skipped:?}");
    assert!(stdout.contains("| skipped |") || stdout.contains("skipped"), "{stdout}");
    let pngs = std::fs::read_dir(&out).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|e| e == "png")).count();
    assert_eq!(pngs, 2);
    let text = std::fs::read_to_string(&readme).unwrap();
    assert!(!text.contains("old figures") && text.contains("| Hopper-v4 |") && text.ends_with("<!-- bench:end -->\n\nrest\n"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
