//! `spikerl bench all`: the benchmark suite in one run — the tasks against Gymnasium + MuJoCo,
//! the spiking and the dense actor's inference and TD3 updates with each against PyTorch's,
//! training end to end with its energy, and the QUIC transport's scaling. Every peer is
//! measured in the same run, interleaved with what it is compared to, where it can run here;
//! one that cannot is reported as skipped, with the reason, never as zero. Results:
//! `bench/results/<date>-<host>.{json,md}` and plots beside them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::bench;

/// What the suite runs, and where its peers live.
pub struct SuiteOptions {
    pub quick: bool,
    pub out: PathBuf,
    pub mujoco_python: Option<PathBuf>,
    pub torch_python: Option<PathBuf>,
    /// Replace the README's generated performance section with these results.
    pub readme: Option<PathBuf>,
}

/// One results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteResults {
    pub date: String,
    pub host: String,
    pub cpu: String,
    pub logical_cpus: usize,
    pub commit: String,
    pub command: String,
    pub quick: bool,
    pub env: Vec<EnvRow>,
    pub inference: Vec<InferenceRow>,
    pub learner: Vec<LearnerRow>,
    pub training: Option<TrainingRow>,
    pub transport: Vec<crate::transport_bench::TransportPoint>,
    /// Peers that could not run here, and why.
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvRow {
    pub env: String,
    pub port_steps_per_s: f64,
    /// Gymnasium's `env.step` on MuJoCo, same run.
    pub gymnasium_steps_per_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferenceRow {
    /// Observations per forward pass.
    pub batch: usize,
    /// spikerl's spiking actor: the actors' event-driven engine at batch 1, the learner's
    /// batched CPU kernel beyond.
    pub spikerl_us: f64,
    pub pytorch_us: Option<f64>,
    /// The dense actor of the same hidden widths, the same way.
    pub spikerl_dense_us: f64,
    pub pytorch_dense_us: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LearnerRow {
    pub actor: String,
    pub precision: String,
    pub threads: usize,
    pub updates_per_s: f64,
    pub pytorch_updates_per_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingRow {
    pub env: String,
    pub env_steps: u64,
    pub updates: u64,
    pub env_steps_per_s: f64,
    pub updates_per_s: f64,
    pub kwh_per_million_env_steps: Option<f64>,
    /// "measured", "estimated" or "N % estimated".
    pub energy_provenance: String,
}

/// Observation batches of the inference measurement.
const BATCHES: [usize; 4] = [1, 8, 64, 256];

pub fn run(opts: &SuiteOptions, command: String) -> Result<SuiteResults> {
    let cores = crate::train::cores();
    let mut results = SuiteResults {
        date: today(),
        host: host(),
        cpu: cpu_model(),
        logical_cpus: cores,
        commit: commit(),
        command,
        quick: opts.quick,
        env: Vec::new(),
        inference: Vec::new(),
        learner: Vec::new(),
        training: None,
        transport: Vec::new(),
        skipped: Vec::new(),
    };
    let mujoco = opts.mujoco_python.clone().or_else(bench::default_mujoco_python);
    if mujoco.is_none() {
        results.skipped.push("Gymnasium + MuJoCo: no Python with gymnasium and mujoco (`make mujoco-venv`, or --mujoco-python)".into());
    }
    let torch = opts.torch_python.clone().or_else(default_torch_python);
    if torch.is_none() {
        results.skipped.push("PyTorch PopSAN and TD3: no Python with torch (`make setup`, or --torch-python)".into());
    }

    // The tasks, each beside Gymnasium's step.
    let (tasks, steps): (&[&str], usize) = if opts.quick { (&["Hopper-v4"], 3000) } else { (&["Hopper-v4", "HalfCheetah-v4", "Ant-v4", "Walker2d-v4", "Humanoid-v4"], 20_000) };
    for &env in tasks {
        eprintln!("bench all: {env} steps …");
        let port = bench::single_env_rate(env, steps, 0)?;
        let gymnasium = match &mujoco {
            Some(py) => match bench::mujoco_rates(py, env, steps) {
                Ok(m) => Some(m.env_step_per_s),
                Err(e) => {
                    results.skipped.push(format!("Gymnasium {env}: {e:#}"));
                    None
                }
            },
            None => None,
        };
        results.env.push(EnvRow { env: env.into(), port_steps_per_s: port, gymnasium_steps_per_s: gymnasium });
    }

    // The PyTorch peer: PopSAN forward at each batch and TD3 updates, on every core.
    eprintln!("bench all: the spiking actor and the TD3 update …");
    let peer = match &torch {
        Some(py) => match torch_peer(py, cores, opts.quick) {
            Ok(p) => Some(p),
            Err(e) => {
                results.skipped.push(format!("PyTorch peer: {e:#}"));
                None
            }
        },
        None => None,
    };
    let spiking = inference_us(&spiking_spec().into(), opts.quick)?;
    let dense = inference_us(&dense_spec().into(), opts.quick)?;
    for ((batch, us), (_, dense_us)) in spiking.into_iter().zip(dense) {
        let at = |rows: &[TorchForward]| rows.iter().find(|f| f.batch == batch).map(|f| f.us_per_batch);
        results.inference.push(InferenceRow { batch, spikerl_us: us, pytorch_us: peer.as_ref().and_then(|p| at(&p.forward)), spikerl_dense_us: dense_us, pytorch_dense_us: peer.as_ref().and_then(|p| at(&p.forward_dense)) });
    }
    let updates = if opts.quick { 30 } else { 300 };
    let actors: [(spikerl_snn::ActorSpec, &str); 2] = [(spiking_spec().into(), "spiking (PopSAN)"), (dense_spec().into(), "dense (MLP)")];
    for (spec, name) in actors {
        for precision in [spikerl_learner::Precision::F32, spikerl_learner::Precision::Bf16] {
            let rate = update_rate(&spec, precision, cores, updates)?;
            let peer_rate = match (&spec, precision) {
                (spikerl_snn::ActorSpec::Spiking(_), spikerl_learner::Precision::F32) => peer.as_ref().map(|p| p.update.updates_per_s),
                (spikerl_snn::ActorSpec::Dense(_), spikerl_learner::Precision::F32) => peer.as_ref().map(|p| p.update_dense.updates_per_s),
                _ => None,
            };
            results.learner.push(LearnerRow { actor: name.into(), precision: precision.name().into(), threads: cores, updates_per_s: rate, pytorch_updates_per_s: peer_rate });
        }
    }

    // Training end to end, and what it cost.
    eprintln!("bench all: training end to end …");
    results.training = Some(training(opts.quick)?);

    // The transport.
    eprintln!("bench all: QUIC transport …");
    let certs = std::env::temp_dir().join(format!("spikerl-bench-all-certs-{}", std::process::id()));
    let (counts, secs): (&[usize], f64) = if opts.quick { (&[1, 4], 1.0) } else { (&[1, 4, 16, 64], 3.0) };
    for &n in counts {
        results.transport.push(crate::transport_bench::measure("Hopper-v4", n, std::time::Duration::from_secs_f64(secs), &certs)?);
    }
    let _ = std::fs::remove_dir_all(&certs);
    Ok(results)
}

/// Writes the results file, its markdown table and the plots; the paths written.
pub fn write(results: &SuiteResults, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let stem = format!("{}-{}", results.date, results.host);
    let json = out.join(format!("{stem}.json"));
    let md = out.join(format!("{stem}.md"));
    let inference_png = out.join(format!("{stem}-inference.png"));
    let transport_png = out.join(format!("{stem}-transport.png"));
    std::fs::write(&json, serde_json::to_string_pretty(results)? + "\n").with_context(|| format!("cannot write {}", json.display()))?;
    std::fs::write(&md, markdown(results, &inference_png, &transport_png)).with_context(|| format!("cannot write {}", md.display()))?;
    plot_inference(&inference_png, results)?;
    crate::transport_bench::plot(&transport_png, "Hopper-v4", &results.transport)?;
    Ok(vec![json, md, inference_png, transport_png])
}

fn ratio(ours: f64, theirs: Option<f64>) -> String {
    theirs.map_or("skipped".into(), |t| format!("{:.2}×", ours / t))
}

/// The results as markdown: one table per part, each row beside its peer.
pub fn markdown(r: &SuiteResults, inference_png: &Path, transport_png: &Path) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "Measured {} on `{}` ({}, {} logical CPUs), commit `{}`, with `{}`{}.\n", r.date, r.host, r.cpu, r.logical_cpus, r.commit, r.command, if r.quick { " (quick: fewer steps, noisier)" } else { "" });
    let _ = writeln!(s, "| task | spikerl port, env steps/s | Gymnasium + MuJoCo `env.step` | port ÷ Gymnasium |\n|---|---:|---:|---:|");
    for e in &r.env {
        let _ = writeln!(s, "| {} | {:.0} | {} | {} |", e.env, e.port_steps_per_s, e.gymnasium_steps_per_s.map_or("skipped".into(), |g| format!("{g:.0}")), ratio(e.port_steps_per_s, e.gymnasium_steps_per_s));
    }
    let _ = writeln!(s, "\n| actor forward, µs (Hopper dims; spiking: T = 5) | spikerl spiking | PyTorch spiking | PyTorch ÷ spikerl | spikerl dense | PyTorch dense | PyTorch ÷ spikerl |\n|---|---:|---:|---:|---:|---:|---:|");
    let us = |v: Option<f64>| v.map_or("skipped".into(), |p| format!("{p:.1}"));
    let slower = |theirs: Option<f64>, ours: f64| theirs.map_or("skipped".into(), |p| format!("{:.2}×", p / ours));
    for i in &r.inference {
        let what = if i.batch == 1 { "1 observation (the actors' engine)".to_string() } else { format!("batch of {} (the learner's CPU kernel)", i.batch) };
        let _ = writeln!(s, "| {what} | {:.1} | {} | {} | {:.1} | {} | {} |", i.spikerl_us, us(i.pytorch_us), slower(i.pytorch_us, i.spikerl_us), i.spikerl_dense_us, us(i.pytorch_dense_us), slower(i.pytorch_dense_us, i.spikerl_dense_us));
    }
    let _ = writeln!(s, "\n| TD3 update (batch 100, Hopper dims) | threads | spikerl updates/s | PyTorch updates/s | spikerl ÷ PyTorch |\n|---|---:|---:|---:|---:|");
    for l in &r.learner {
        let peer = l.pytorch_updates_per_s.map_or(if l.precision == "fp32" { "skipped" } else { "(not measured: fp32 peer)" }.to_string(), |p| format!("{p:.0}"));
        let _ = writeln!(s, "| {} actor, {} | {} | {:.0} | {peer} | {} |", l.actor, l.precision, l.threads, l.updates_per_s, l.pytorch_updates_per_s.map_or("—".into(), |p| format!("{:.2}×", l.updates_per_s / p)));
    }
    if let Some(t) = &r.training {
        let _ = writeln!(s, "\nTraining end to end ({}, {} env steps, {} updates, default local runtime): {:.0} env steps/s, {:.0} updates/s; energy {} per million env steps ({}).", t.env, t.env_steps, t.updates, t.env_steps_per_s, t.updates_per_s, t.kwh_per_million_env_steps.map_or("—".into(), |k| format!("{k:.3} kWh")), t.energy_provenance);
    }
    if !r.transport.is_empty() {
        let _ = writeln!(s, "\n| QUIC loopback ingest, actors | transitions/s | MB/s | p50 ms | p99 ms |\n|---:|---:|---:|---:|---:|");
        for p in &r.transport {
            let _ = writeln!(s, "| {} | {:.0} | {:.1} | {:.2} | {:.2} |", p.actors, p.transitions_per_s, p.mb_per_s, p.p50_ms, p.p99_ms);
        }
    }
    let name = |p: &Path| p.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let _ = writeln!(s, "\n![inference latency]({}) ![transport scaling]({})", name(inference_png), name(transport_png));
    for k in &r.skipped {
        let _ = writeln!(s, "\n- skipped: {k}");
    }
    s
}

/// Replaces the text between the README's `<!-- bench:start -->` and `<!-- bench:end -->`
/// markers with the results (figures linked from `results_dir`, relative to the README).
pub fn update_readme(readme: &Path, r: &SuiteResults, results_dir: &Path) -> Result<()> {
    let text = std::fs::read_to_string(readme).with_context(|| format!("cannot read {}", readme.display()))?;
    let (start, end) = ("<!-- bench:start -->", "<!-- bench:end -->");
    let (Some(a), Some(b)) = (text.find(start), text.find(end)) else { bail!("{} has no {start} … {end} section to fill", readme.display()) };
    if b < a {
        bail!("{}: {end} comes before {start}", readme.display());
    }
    let stem = format!("{}-{}", r.date, r.host);
    let rel = results_dir.to_string_lossy().trim_end_matches('/').to_string();
    let body = markdown(r, &PathBuf::from(format!("{rel}/{stem}-inference.png")), &PathBuf::from(format!("{rel}/{stem}-transport.png")))
        .replace(&format!("]({stem}-inference.png)"), &format!("]({rel}/{stem}-inference.png)"))
        .replace(&format!("]({stem}-transport.png)"), &format!("]({rel}/{stem}-transport.png)"));
    let new = format!("{}{start}\n{body}{}", &text[..a], &text[b..]);
    let tmp = readme.with_extension("md.tmp");
    std::fs::write(&tmp, new).and_then(|_| std::fs::rename(&tmp, readme)).with_context(|| format!("cannot write {}", readme.display()))
}

/// The bench's actors: Hopper's dimensions, the default hidden widths.
fn spiking_spec() -> spikerl_snn::PopSanSpec {
    spikerl_snn::PopSanSpec::new(11, 3, 1.0)
}

fn dense_spec() -> spikerl_snn::DenseSpec {
    spikerl_snn::DenseSpec::new(11, 3, 1.0)
}

/// An actor's time per forward pass at each batch: the actors' engine at 1, the learner's
/// kernel beyond (fp32, one thread).
fn inference_us(spec: &spikerl_snn::ActorSpec, quick: bool) -> Result<Vec<(usize, f64)>> {
    use spikerl_learner::kernels::{CpuKernels, Kernels};
    use spikerl_learner::networks::{ActorNet, CriticShape};
    use spikerl_snn::{ParamSet, Policy};
    let params = ParamSet::init(spec, 0)?;
    let mut rng = spikerl_snn::rng::SplitMix::new(3);
    let obs: Vec<f32> = (0..256 * 11).map(|_| rng.normal()).collect();
    let reps = if quick { 200 } else { 2000 };
    let mut out = Vec::new();
    let mut engine = Policy::new(&params)?;
    let mut action = [0.0f32; 3];
    for o in obs.chunks_exact(11).take(50) {
        engine.act(o, &mut action)?;
    }
    let start = Instant::now();
    for k in 0..reps {
        engine.act(&obs[(k % 256) * 11..(k % 256 + 1) * 11], &mut action)?;
    }
    out.push((1, start.elapsed().as_secs_f64() * 1e6 / reps as f64));
    let kernels = CpuKernels::new(ActorNet::of(spec), CriticShape::new(11, 3, &[256, 256]), spikerl_learner::Precision::F32);
    let p = kernels.upload(params.flat());
    for &b in &BATCHES[1..] {
        let x = kernels.upload(&obs[..b * 11]);
        let n = (reps / b).max(5);
        let _ = kernels.actor_forward(&p, &x, None);
        let start = Instant::now();
        for _ in 0..n {
            std::hint::black_box(kernels.actor_forward(&p, &x, None));
        }
        out.push((b, start.elapsed().as_secs_f64() * 1e6 / n as f64));
    }
    Ok(out)
}

/// TD3 updates per second with `spec`'s actor, batch 100, Hopper's dimensions, on `threads`.
fn update_rate(spec: &spikerl_snn::ActorSpec, precision: spikerl_learner::Precision, threads: usize, updates: usize) -> Result<f64> {
    use spikerl_learner::prelude::*;
    let config = Td3Config { batch_size: 100, replay_size: 10_000, ..Td3Config::default() };
    let mut td3 = build(config, spec.clone(), Surrogate::Rectangle, tch::Device::Cpu, precision, 0, threads).map_err(anyhow::Error::msg)?;
    let mut rng = spikerl_snn::rng::SplitMix::new(1);
    let rb = ReplayBuffer::random(11, 3, 10_000, &mut rng);
    let mut mb = Minibatch::default();
    let mut go = |n: usize| -> Result<()> {
        for _ in 0..n {
            rb.sample_into(100, &mut rng, &mut mb);
            td3.update(&mb).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(())
    };
    go(updates / 10 + 2)?;
    let start = Instant::now();
    go(updates)?;
    Ok(updates as f64 / start.elapsed().as_secs_f64())
}

/// A short `spikerl train` on Hopper-v4 (this binary, a child process), read back from its
/// `energy.json`.
fn training(quick: bool) -> Result<TrainingRow> {
    let steps = if quick { 2500 } else { 20_000 };
    let dir = std::env::temp_dir().join(format!("spikerl-bench-all-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exe = std::env::current_exe().context("this executable")?;
    let out = Command::new(exe)
        .args(["train", "--env", "Hopper-v4", "--steps", &steps.to_string(), "--start-steps", "1000", "--update-after", "1000", "--eval-every", &steps.to_string(), "--eval-episodes", "1", "--checkpoint-every", "0", "--quiet", "--out"])
        .arg(&dir)
        .output()
        .context("start `spikerl train`")?;
    if !out.status.success() {
        bail!("`spikerl train` for the end-to-end row failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let energy = crate::train::energy::read(&dir.join(crate::train::energy::ENERGY_FILE))?.training;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(TrainingRow {
        env: "Hopper-v4".into(),
        env_steps: energy.env_steps,
        updates: energy.updates,
        env_steps_per_s: energy.env_steps as f64 / energy.duration_s.max(1e-9),
        updates_per_s: energy.updates as f64 / energy.duration_s.max(1e-9),
        kwh_per_million_env_steps: energy.kwh_per_million_env_steps,
        energy_provenance: energy.provenance(),
    })
}

#[derive(Debug, Deserialize)]
struct TorchPeer {
    forward: Vec<TorchForward>,
    forward_dense: Vec<TorchForward>,
    update: TorchUpdate,
    update_dense: TorchUpdate,
}

#[derive(Debug, Deserialize)]
struct TorchForward {
    batch: usize,
    us_per_batch: f64,
}

#[derive(Debug, Deserialize)]
struct TorchUpdate {
    updates_per_s: f64,
}

/// The script beside this project's sources.
const TORCH_PEER: &str = "bench/peers/torch_popsan.py";

fn torch_peer(python: &Path, threads: usize, quick: bool) -> Result<TorchPeer> {
    if !Path::new(TORCH_PEER).is_file() {
        bail!("{TORCH_PEER} not found (run from the repository root)");
    }
    let batches = BATCHES.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let out = Command::new(python)
        .args([TORCH_PEER, "--threads", &threads.to_string(), "--batches", &batches, "--updates", if quick { "30" } else { "300" }, "--reps", if quick { "200" } else { "2000" }])
        .output()
        .with_context(|| format!("start {}", python.display()))?;
    if !out.status.success() {
        bail!("{TORCH_PEER} failed: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("{TORCH_PEER} printed no result"))
}

/// `.venv/bin/python` (what `make setup` installs torch into) when it has torch.
fn default_torch_python() -> Option<PathBuf> {
    let py = PathBuf::from(".venv/bin/python");
    let ok = Command::new(&py).args(["-c", "import torch"]).stderr(std::process::Stdio::null()).status().is_ok_and(|s| s.success());
    ok.then_some(py)
}

fn plot_inference(path: &Path, r: &SuiteResults) -> Result<()> {
    use plotters::prelude::*;
    crate::train::plot::register_font();
    let root = BitMapBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let lx = |b: usize| (b as f64).log2();
    let values: Vec<f64> = r.inference.iter().flat_map(|i| [Some(i.spikerl_us), i.pytorch_us, Some(i.spikerl_dense_us), i.pytorch_dense_us]).flatten().collect();
    let (lo, hi) = (values.iter().copied().fold(f64::INFINITY, f64::min).max(1e-3).log10() - 0.2, values.iter().copied().fold(0.0, f64::max).max(1e-3).log10() + 0.2);
    let x_max = r.inference.iter().map(|i| lx(i.batch)).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption("actor forward · Hopper dims (spiking: T = 5)", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.2..x_max + 0.2, lo..hi)?;
    chart
        .configure_mesh()
        .x_desc("observations per pass (log2)")
        .y_desc("µs per pass (log10)")
        .x_label_formatter(&|x| format!("{}", 2f64.powf(x.round()) as u64))
        .y_label_formatter(&|y| format!("{:.0}", 10f64.powf(*y)))
        .label_style(("sans-serif", 14))
        .draw()?;
    type Series = (&'static str, RGBColor, Vec<(usize, Option<f64>)>);
    let series: [Series; 4] = [
        ("spikerl, spiking", BLUE, r.inference.iter().map(|i| (i.batch, Some(i.spikerl_us))).collect()),
        ("PyTorch, spiking", RED, r.inference.iter().map(|i| (i.batch, i.pytorch_us)).collect()),
        ("spikerl, dense", GREEN, r.inference.iter().map(|i| (i.batch, Some(i.spikerl_dense_us))).collect()),
        ("PyTorch, dense", MAGENTA, r.inference.iter().map(|i| (i.batch, i.pytorch_dense_us)).collect()),
    ];
    for (name, color, points) in series {
        let points: Vec<(f64, f64)> = points.into_iter().filter_map(|(b, us)| us.map(|us| (lx(b), us.log10()))).collect();
        if points.is_empty() {
            continue;
        }
        chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?.label(name).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present().context("write the plot")?;
    Ok(())
}

fn today() -> String {
    Command::new("date").arg("+%Y-%m-%d").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).filter(|s| !s.is_empty()).unwrap_or_else(|| "undated".into())
}

fn host() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok().or_else(|| std::env::var("HOSTNAME").ok()).unwrap_or_default();
    let h: String = h.trim().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    if h.is_empty() { "host".into() } else { h }
}

/// The CPU's model and the vector extensions bf16 depends on.
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| info.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string());
    let model = field("model name").unwrap_or_else(|| "unknown CPU".into());
    let flags = field("flags").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let simd = match (has("avx512f"), has("avx512_bf16"), has("avx2")) {
        (true, true, _) => "AVX-512 with BF16",
        (true, false, _) => "AVX-512, no AVX512-BF16: bf16 is emulated",
        (false, _, true) => "AVX2, no AVX-512: bf16 is emulated",
        _ => "no AVX2",
    };
    format!("{model}; {simd}")
}

/// The commit measured, `-dirty` when the tree has changes.
fn commit() -> String {
    let git = |args: &[&str]| Command::new("git").args(args).output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(c) if git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty()) => format!("{c}-dirty"),
        Some(c) => c,
        None => "unknown".into(),
    }
}
