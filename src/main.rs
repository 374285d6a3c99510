//! `spikerl`: parses the command line and hands it to the job's module in [`spikerl::cli`].

use clap::{CommandFactory, FromArgMatches};
use spikerl::cli::{Cli, Command, bench, cert, compare, render, snn_report, tasks, train};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Training settings are layered (task preset, --config file, flags): which flags were given
    // is in the subcommand's matches.
    let sub = matches.subcommand().map(|(_, m)| m).expect("a subcommand is required");
    let result = match cli.command {
        Command::Train(args) => train::train(*args, sub),
        Command::Learner(args) => train::learner(*args, sub),
        Command::Cert(args) => cert::cert(args),
        Command::Compare(args) => compare::compare(args),
        Command::Eval(args) => train::eval(args),
        Command::Plot(args) => train::plot(args),
        Command::Rollout(args) => tasks::rollout(args),
        Command::Render(args) => render::run(args),
        Command::Envcheck(args) => tasks::envcheck(args),
        Command::Envserve(args) => tasks::envserve(args),
        Command::SnnReport(args) => snn_report::snn_report(args),
        Command::Bench(command) => bench::run(command),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
