//! The run's files for continuing and for using the policy: `checkpoint.bin` (everything to
//! resume), `policy.paramset` (the actor alone), written atomically.

use anyhow::{Context, Result, bail};
use spikerl_learner::checkpoint::Checkpoint;
use spikerl_snn::{ParamSet, Precision};

use super::output::RunOutput;
use super::energy::RunEnergy;
use super::{Learner, Run, RunSummary, TaskShape};

pub const CHECKPOINT_FILE: &str = "checkpoint.bin";
pub const POLICY_FILE: &str = "policy.paramset";
pub const BEST_POLICY_FILE: &str = "best_policy.paramset";

/// Writes a session's checkpoints.
pub struct Checkpointer<'a> {
    pub energy: &'a RunEnergy,
    /// The learner's env steps and updates when the session began.
    pub session_start: (u64, u64),
}

impl Checkpointer<'_> {
    /// Writes the checkpoint and the current policy (a `ParamSet`, f32), then the session's
    /// energy so far, so that `energy.json` covers what a resumed run continues from.
    pub fn save(&self, run: &Run, learner: &Learner, out: &RunOutput, runtime: Vec<u8>) -> Result<()> {
        learner.checkpoint(run, runtime).save(&out.dir.join(CHECKPOINT_FILE))?;
        write_policy(&out.dir.join(POLICY_FILE), &learner.params())?;
        let progress = RunSummary::new(learner, out, self.session_start);
        if let Err(e) = self.energy.record_at_checkpoint(run, &progress, out.last_eval_counts.as_ref()) {
            out.println(format!("note: the session's energy so far is not recorded: {e:#}"));
        }
        Ok(())
    }
}

/// Writes a `ParamSet` (f32) atomically: a temporary file, synced, renamed over `path`; a
/// failed write leaves no temporary behind.
pub fn write_policy(path: &std::path::Path, params: &ParamSet) -> Result<()> {
    use std::io::Write;
    let name = path.file_name().map_or("policy".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let result = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(&params.encode(Precision::F32)).and_then(|()| f.sync_all())).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Removes what writes interrupted by a crash or a kill left in a run directory (temporaries
/// of checkpoints, policies and the seed manifest; a live run has none of its own yet).
pub fn remove_stale_temporaries(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = [CHECKPOINT_FILE, POLICY_FILE, BEST_POLICY_FILE, crate::sweep::MANIFEST].iter().any(|f| name.starts_with(&format!(".{f}.tmp")));
        if ours {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Loads a checkpoint for `--resume` and checks it fits the run. The run continues with the
/// checkpoint's hyperparameters, actor shape and seed, and its precision unless another was
/// asked for; its schedule and runtime are this command line's.
pub fn load_for_resume(run: &mut Run) -> Result<Option<Checkpoint>> {
    let Some(path) = run.resume.clone() else { return Ok(None) };
    let ck = Checkpoint::load(&path)?;
    adopt(run, ck, &path).map(Some)
}

/// Checks that `ck` (read from `path`) fits the run and takes its settings.
pub fn adopt(run: &mut Run, ck: Checkpoint, path: &std::path::Path) -> Result<Checkpoint> {
    let c = &mut run.config;
    if ck.env_id != c.env {
        bail!("{} is a checkpoint of {}, not {}", path.display(), ck.env_id, c.env);
    }
    if ck.sync != c.runtime.sync {
        bail!("{} was written by a {} run; resume it {}", path.display(), if ck.sync { "--sync" } else { "non---sync" }, if ck.sync { "with --sync" } else { "without --sync" });
    }
    if ck.env_steps >= c.schedule.steps {
        bail!("{} has already taken {} env steps; ask for more with --steps", path.display(), ck.env_steps);
    }
    c.algorithm = ck.algorithm.clone();
    c.actor = ck.actor.clone();
    c.runtime.seed = ck.seed;
    if c.runtime.precision.is_none() {
        run.precision = ck.precision;
    }
    Ok(ck)
}

/// The actor of a training checkpoint, or a `ParamSet` file.
pub fn load_policy(path: &std::path::Path) -> Result<ParamSet> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if Checkpoint::is_checkpoint(&bytes) {
        let ck = Checkpoint::load(path)?;
        let task = TaskShape::of(&ck.env_id)?;
        let spec = ck.actor.spec(task.obs_dim, task.act_dim, task.act_limit)?;
        let normalizer = spikerl_learner::normalizer::Normalizer::from_vec(task.obs_dim, &ck.td3.normalizer).map_err(anyhow::Error::msg)?;
        return Ok(ParamSet::from_flat(spec, ck.param_version, normalizer.mean(), normalizer.std(), ck.td3.actor)?);
    }
    ParamSet::decode(&bytes).with_context(|| format!("{} is neither a checkpoint nor a ParamSet", path.display()))
}
