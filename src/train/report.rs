//! What a run says about itself: the banner a session starts with, and `report.md` at its end.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use spikerl_learner::checkpoint::Checkpoint;

use super::checkpoints::{BEST_POLICY_FILE, CHECKPOINT_FILE, POLICY_FILE};
use super::output::{EvalPoint, RunOutput};
use super::plot::{CURVE_FILE, steps_label};
use super::{Run, RunSummary, target_reached};

/// The first lines of a session: what runs, where its results go, how to stop and continue.
pub fn banner(run: &Run, resume: Option<&Checkpoint>) -> String {
    let c = &run.config;
    let task = if let Some(id) = c.env.strip_prefix(spikerl_envs::gym::PREFIX) {
        format!("{id} (Gymnasium's own task on MuJoCo, in a Python process)")
    } else if spikerl_envs::canonical_id(&c.env).is_some() {
        format!("{} (spikerl's MuJoCo-free port)", c.env)
    } else {
        format!("{} (an MJCF model, HalfCheetah's rules)", c.env)
    };
    let mode = if c.runtime.sync {
        "synchronous (--sync: reproducible bit for bit)".to_string()
    } else {
        let remote = run.remote.as_ref().map_or(String::new(), |r| format!(" + remote actors on {}", r.listen));
        format!("{} local actor(s) × {} env(s){remote}", run.actors, c.runtime.envs_per_actor)
    };
    let from = resume.map_or(String::new(), |ck| format!(", continuing from {} env steps", ck.env_steps));
    let path = run.out.display();
    // A seed of a multi-seed run continues with the whole run.
    let continue_with = match run.out.parent().filter(|p| crate::sweep::is_multi_seed_run(p)) {
        Some(sweep) => format!("--resume {}", sweep.display()),
        None => format!("--resume {path}/{CHECKPOINT_FILE} --steps N"),
    };
    format!(
        "training: {task}\n\
         recipe: {}, seed {}, {} env steps{from}\n\
         learner: {} on {}, {mode}\n\
         results: {path}/ (report.md, {CURVE_FILE}, metrics.jsonl, {CHECKPOINT_FILE}, {POLICY_FILE})\n\
         Ctrl-C stops cleanly (checkpoint, report, curve); continue with {continue_with}",
        recipe(c),
        c.runtime.seed,
        steps_label(c.schedule.steps as f64),
        run.precision,
        device_name(run.device),
    )
}

/// The algorithm in one line: the recipe's name, the actor and what TD3 does around it.
fn recipe(c: &crate::config::RunConfig) -> String {
    use clap::ValueEnum;
    let name = |v: &dyn Fn() -> Option<clap::builder::PossibleValue>| v().map_or(String::new(), |p| p.get_name().to_string());
    let (a, t) = (&c.actor, &c.algorithm);
    let widths = a.actor_hidden.iter().map(usize::to_string).collect::<Vec<_>>().join("-");
    if a.actor == spikerl_learner::ActorKind::Mlp {
        return format!("{} — dense MLP actor ({widths} ReLU, tanh) + TD3 (target actor, policy delay {})", name(&|| c.recipe.to_possible_value()), t.policy_delay);
    }
    let target = match t.target_actor {
        spikerl_learner::TargetActor::Spiking => "spiking target actor".to_string(),
        spikerl_learner::TargetActor::Proxy => format!("proxy target actor ({} Adam steps, lr {})", t.proxy_steps, t.proxy_lr),
    };
    let penalty = if t.membrane_reg > 0.0 { format!(", output membrane penalty {}", t.membrane_reg) } else { String::new() };
    format!(
        "{} — PopSAN spiking actor ({} LIF, T = {}, {} encoding, {} surrogate) + TD3 ({target}, policy delay {}{penalty})",
        name(&|| c.recipe.to_possible_value()),
        widths,
        a.timesteps,
        name(&|| a.encoding.to_possible_value()),
        name(&|| a.surrogate.to_possible_value()),
        t.policy_delay,
    )
}

/// `cpu` or `cuda:N`, as `--device` takes it.
fn device_name(device: tch::Device) -> String {
    crate::config::DeviceChoice::from(device).to_string()
}

/// An episode of the best policy, drawn at the end of a locomotion run.
pub const BEST_POLICY_PICTURE: &str = "best_policy.gif";

pub fn write(run: &Run, out: &RunOutput, s: &RunSummary) -> Result<()> {
    let c = &run.config;
    let mut r = String::new();
    let _ = writeln!(r, "# {} · {}\n", c.env, algorithm_name(c));
    let _ = writeln!(r, "Command: `{}`\n", run.command);
    let eval = |e: Option<EvalPoint>| e.map_or("—".to_string(), |e| format!("{:.1} ± {:.1} (at {} env steps)", e.mean, e.std, e.env_steps));
    let _ = writeln!(r, "| | |\n|---|---|");
    let _ = writeln!(r, "| final evaluation ({} episodes, no noise) | {} |", c.schedule.eval_episodes, eval(s.final_eval));
    let _ = writeln!(r, "| best evaluation | {} |", eval(s.best_eval));
    let _ = writeln!(r, "| env steps / updates | {} / {} |", s.env_steps, s.updates);
    if let Some(t) = c.schedule.target_return {
        let _ = writeln!(r, "| target return | {t} ({}) |", if target_reached(run, out) { "reached" } else { "not reached" });
    }
    let _ = writeln!(r, "| this session | {} env steps, {} updates in {:.0} s: {:.0} env steps/s, {:.0} updates/s |", s.session_steps, s.session_updates, s.session_s, s.steps_per_s(), s.updates_per_s());
    let mode = if c.runtime.sync { "synchronous (--sync)".to_string() } else { format!("{} local actor(s) × {} env(s), learner threads {}", run.actors, c.runtime.envs_per_actor, c.runtime.learner_threads.unwrap_or_else(super::cores)) };
    let _ = writeln!(r, "| runtime | {mode} |");
    let _ = writeln!(r, "| precision / device | {} / {} |", run.precision, device_name(run.device));
    let _ = writeln!(r, "| seed | {} |\n", c.runtime.seed);
    if !out.evals.is_empty() {
        let _ = writeln!(r, "![learning curve]({CURVE_FILE})\n");
        if out.dir.join(BEST_POLICY_PICTURE).is_file() {
            let _ = writeln!(r, "![the best policy, one episode]({BEST_POLICY_PICTURE})\n");
        }
    }
    if let Some(e) = &s.energy {
        let _ = writeln!(r, "{}", super::energy::markdown(e));
    }
    if let Some(a) = &out.last_activity {
        let _ = writeln!(r, "## The spiking actor at the end (update batches, last progress record)\n");
        let _ = writeln!(r, "| layer | firing rate | membrane inside the surrogate window |\n|---|---:|---:|");
        let _ = writeln!(r, "| encoder | {:.3} | (straight-through) |", a.encoder_firing);
        let n = a.firing.len();
        for (i, (f, w)) in a.firing.iter().zip(&a.in_window).enumerate() {
            let name = if i + 1 == n { "output population".to_string() } else { format!("hidden {}", i + 1) };
            let _ = writeln!(r, "| {name} | {f:.3} | {w:.3} |");
        }
        let _ = writeln!(r, "\nWhere the output population's share inside the window nears 0, no gradient reaches the actor: it has stopped learning. The whole history is in `metrics.jsonl` (`actor_activity` of the `progress` records).\n");
    }
    let _ = writeln!(r, "## Configuration\n\nAs `--config` reads it (the command line's flags have the same names):\n\n```toml\n{}```", c.to_toml());
    let _ = writeln!(r, "\nFiles: `metrics.jsonl` (progress and evaluations), `{CHECKPOINT_FILE}` (resume with `--resume`), `{POLICY_FILE}` (the actor, for `spikerl eval` / `snn-report`), `{BEST_POLICY_FILE}` (the actor of the best evaluation), `energy.json` (the energy section's figures){}.", if out.dir.join(BEST_POLICY_PICTURE).is_file() { format!(", `{BEST_POLICY_PICTURE}` (an episode of it; `spikerl render` draws others)") } else { String::new() });
    std::fs::write(out.dir.join("report.md"), r).context("cannot write report.md")
}

/// `PopSAN-TD3`, or `MLP-TD3` for the dense actor: the name on titles.
pub fn algorithm_name(c: &crate::config::RunConfig) -> &'static str {
    match c.actor.actor {
        spikerl_learner::ActorKind::Spiking => "PopSAN-TD3",
        spikerl_learner::ActorKind::Mlp => "MLP-TD3",
    }
}
