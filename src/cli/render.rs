//! `spikerl render`: an episode of a task as an animated picture.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use spikerl_envs::rng::EnvRng;

use super::tasks::Policy;
use crate::render::{Driver, RenderOptions, parse_size, render};

#[derive(Args)]
pub struct RenderArgs {
    /// The task: a locomotion port (Hopper-v4, HalfCheetah-v4, Ant-v4, Walker2d-v4, Humanoid-v4; any case)
    /// or an MJCF file.
    #[arg(long)]
    pub env: String,
    /// A trained policy to act with: a run's checkpoint.bin, policy.paramset or
    /// best_policy.paramset [default: none, --policy's actions].
    #[arg(long, conflicts_with = "policy")]
    pub checkpoint: Option<PathBuf>,
    /// Fixed actions instead of a trained policy.
    #[arg(long, value_enum, default_value_t = Policy::Random)]
    pub policy: Policy,
    /// The picture: FILE.gif, or FILE.mp4 (needs ffmpeg on the PATH).
    #[arg(long)]
    pub out: PathBuf,
    /// Env steps at most (the episode's end stops it sooner).
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Width x height in pixels.
    #[arg(long, default_value = "480x320", value_parser = parse_size)]
    pub size: (usize, usize),
    /// Seed of the episode's reset (and of the random actions).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(args: RenderArgs) -> Result<()> {
    let mut driver = match &args.checkpoint {
        Some(path) => Driver::policy(&crate::train::checkpoints::load_policy(path)?).with_context(|| path.display().to_string())?,
        None => match args.policy {
            Policy::Zero => Driver::Zero,
            Policy::Random => Driver::Random(EnvRng::seed_from_u64(args.seed ^ 0x5EED_F00D)),
            Policy::Sine => Driver::Sine,
        },
    };
    let opts = RenderOptions { steps: args.steps, width: args.size.0, height: args.size.1, seed: args.seed };
    let r = render(&args.env, &mut driver, &opts, &args.out)?;
    println!("{}: {} frames, {} env steps, return {:.1}", args.out.display(), r.frames, r.steps, r.ret);
    Ok(())
}
