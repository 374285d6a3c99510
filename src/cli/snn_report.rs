//! `spikerl snn-report`: what the spiking actor does on a task — firing rates, synaptic
//! operations, energy estimates.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use crate::train::checkpoints::load_policy;

#[derive(Args)]
pub struct SnnReportArgs {
    /// The task (as for `train --env`).
    #[arg(long)]
    pub env: String,
    /// A run's checkpoint.bin or a ParamSet file (policy.paramset) [default: PopSAN's
    /// initialisation].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Env steps to measure over.
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    /// Seed of the first reset (and of the initialisation, without --checkpoint).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn snn_report(args: SnnReportArgs) -> Result<()> {
    use spikerl_snn::{ParamSet, PopSan, PopSanSpec, energy_per_inference};
    let mut env = spikerl_envs::make(&args.env)?;
    let spec_env = env.spec().clone();
    let params = match &args.checkpoint {
        Some(path) => {
            let p = load_policy(path)?;
            if p.spec().obs_dim() != spec_env.obs_dim() || p.spec().act_dim() != spec_env.act_dim() {
                bail!(
                    "{} is a {}→{} actor; {} needs {}→{}",
                    path.display(),
                    p.spec().obs_dim(),
                    p.spec().act_dim(),
                    spec_env.id,
                    spec_env.obs_dim(),
                    spec_env.act_dim()
                );
            }
            if let Some(d) = p.spec().dense() {
                bail!(
                    "{} is a dense actor ({}, {} multiply–accumulates per action, {:.1} nJ at 45 nm): snn-report describes a spiking one; a dense run's report.md and energy.json give its inference energy",
                    path.display(),
                    d.layer_sizes().iter().map(usize::to_string).collect::<Vec<_>>().join("→"),
                    d.macs(),
                    d.macs() as f64 * spikerl_snn::E_MAC_PJ / 1000.0
                );
            }
            p
        }
        None => {
            ParamSet::init(&PopSanSpec::new(spec_env.obs_dim(), spec_env.act_dim(), spec_env.action_space.max_abs()), args.seed)?
        }
    };
    let mut net = PopSan::new(&params)?;
    let mut obs = vec![0.0; spec_env.obs_dim()];
    let mut action = vec![0.0; spec_env.act_dim()];
    env.reset_into(Some(args.seed), &mut obs)?;
    for _ in 0..args.steps {
        net.act(&obs, &mut action)?;
        if env.step_into(&action, &mut obs)?.done() {
            env.reset_into(None, &mut obs)?;
        }
    }
    let spec = net.spec().clone();
    let counts = net.total_counts().clone();
    let e = energy_per_inference(&spec, &counts);
    let source = args.checkpoint.as_ref().map_or("PopSAN initialisation".to_string(), |p| p.display().to_string());
    println!("{}: PopSAN {:?}, T = {}, parameters: {source} (version {})", spec_env.id, spec.layer_sizes(), spec.timesteps, params.version);
    println!("over {} actions taken in the task:\n", counts.inferences);
    println!("{:<18} {:>8} {:>14}", "layer", "neurons", "firing rate");
    for l in crate::train::energy::LayerActivity::of(&spec, &counts) {
        println!("{:<18} {:>8} {:>14.4}", l.layer, l.neurons, l.firing_rate);
    }
    println!("\nper action: {:.0} synaptic ops, {:.0} float MACs (encoder + decoder), {:.0} neuron updates", e.sops, e.macs, e.neuron_updates);
    println!("energy per action (45 nm: E_AC 0.9 pJ, E_MAC 4.6 pJ; Loihi: 23.6 pJ/SOP, 81 pJ/update):");
    println!("  spiking actor     {:>10.1} nJ", e.snn_pj / 1000.0);
    println!("  on Loihi          {:>10.1} nJ", e.loihi_pj / 1000.0);
    println!("  dense ANN actor   {:>10.1} nJ  ({:.0} MACs)", e.ann_pj / 1000.0, e.ann_macs);
    println!("  ratio ANN / SNN   {:>10.2}×", e.ann_pj / e.snn_pj);
    Ok(())
}
