//! Prints the fidelity table of every port against MuJoCo's reference data.
use spikerl_envs::reference::{self, CHECK_HEADER};

fn main() {
    let dir = reference::find_reference_dir().expect("reference dir");
    let ids: Vec<String> = std::env::args().skip(1).collect();
    let ids = if ids.is_empty() { vec!["Hopper-v4".into(), "HalfCheetah-v4".into(), "Ant-v4".into()] } else { ids };
    for id in ids {
        println!("== {id}\n{CHECK_HEADER}");
        let model = reference::model_checks(&id, &dir).unwrap();
        for c in model.iter().filter(|c| !c.passed() || std::env::var("ALL").is_ok()) {
            println!("{c}");
        }
        println!("({} model checks, {} failed)", model.len(), model.iter().filter(|c| !c.passed()).count());
        for c in reference::dynamics_checks(&id, &dir).unwrap() {
            println!("{c}");
        }
    }
}
