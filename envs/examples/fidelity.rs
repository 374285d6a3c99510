//! Prints the fidelity table of every port against MuJoCo's reference data.
use spikerl_envs::reference::{self, CHECK_HEADER};

fn main() {
    let dir = reference::find_reference_dir().expect("reference dir");
    let ids: Vec<String> = std::env::args().skip(1).collect();
    let ids = if ids.is_empty() { vec!["Hopper-v4".into(), "HalfCheetah-v4".into(), "Ant-v4".into()] } else { ids };
    for id in ids {
        println!("== {id}\n{CHECK_HEADER}");
        for c in reference::dynamics_checks(&id, &dir).unwrap() {
            println!("{c}");
        }
    }
}
