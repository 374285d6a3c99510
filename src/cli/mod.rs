//! The `spikerl` command line: one module per job, each with its arguments and its command.

pub mod bench;
pub mod cert;
pub mod compare;
mod mpirun;
pub mod render;
pub mod snn_report;
pub mod tasks;
pub mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "spikerl", version, about = "Deep spiking reinforcement learning for continuous control: PopSAN spiking actors trained with TD3 on MuJoCo-free ports of the locomotion tasks")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a spiking actor with TD3: learner and actor threads in this process.
    Train(Box<train::TrainArgs>),
    /// Train as `train` does, with actors on other machines connecting over QUIC
    /// (`spikerl-actor --connect`).
    Learner(Box<train::LearnerArgs>),
    /// Make a run's certificates for `learner` and `spikerl-actor`: the run CA (once), a node
    /// certificate, and the run token.
    Cert(cert::CertArgs),
    /// Several multi-seed runs' aggregates on one plot and in one table.
    Compare(compare::CompareArgs),
    /// Evaluate a trained policy: mean ± std return over deterministic episodes.
    Eval(train::EvalArgs),
    /// Redraw a run's learning curve from its metrics.jsonl (e.g. after the run was killed).
    Plot(train::PlotArgs),
    /// Run episodes of a task with a fixed policy and print how each went.
    Rollout(tasks::RolloutArgs),
    /// Draw an episode of a task as an animated GIF (or MP4): a trained policy or fixed actions.
    Render(render::RenderArgs),
    /// Compare a port with MuJoCo's reference data, figure by figure.
    Envcheck(tasks::EnvcheckArgs),
    /// Step one task for another program over stdin/stdout (binary protocol; from Python, the
    /// `spikerl` package is the faster way).
    Envserve(tasks::EnvserveArgs),
    /// Firing rates, synaptic operations and energy of the spiking actor on a task.
    SnnReport(snn_report::SnnReportArgs),
    /// Benchmarks: env steps/s against MuJoCo, QUIC transport throughput.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every option of every subcommand says what it does and, unless it is a switch or
    /// required, what it defaults to.
    #[test]
    fn every_option_has_help_and_a_default() {
        fn check(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let name = arg.get_long().map_or_else(|| arg.get_id().to_string(), |l| format!("--{l}"));
                if name == "--help" || name == "--version" {
                    continue;
                }
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                if help.trim().is_empty() {
                    missing.push(format!("{path} {name}: no help"));
                }
                let switch = matches!(arg.get_action(), clap::ArgAction::SetTrue | clap::ArgAction::SetFalse);
                if !switch && !arg.is_required_set() && arg.get_default_values().is_empty() && !help.contains("[default:") {
                    missing.push(format!("{path} {name}: no default"));
                }
            }
            for sub in cmd.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        check(&Cli::command(), "spikerl", &mut missing);
        assert!(missing.is_empty(), "{missing:#?}");
    }
}
