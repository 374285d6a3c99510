//! Development aid for the ports: a rollout of the port beside MuJoCo's reference, step by step.
//!
//!     cargo run --release -p spikerl-envs --example trajectory -- Ant-v4 zero 0,1,2,5,10 [qvel]
//!
//! prints qpos (and qvel) of the port and of MuJoCo after each listed step.
use spikerl_envs::reference::{self, ActionKind};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let id = args.first().map_or("Hopper-v4", String::as_str);
    let kind = match args.get(1).map(String::as_str) {
        Some("sine") => ActionKind::Sine,
        _ => ActionKind::Zero,
    };
    let steps: Vec<usize> = args.get(2).map_or(vec![0, 1, 2, 5, 10, 50, 100], |s| s.split(',').map(|x| x.parse().expect("step list")).collect());
    let with_qvel = args.get(3).is_some_and(|s| s == "qvel");
    let dir = reference::find_reference_dir().expect("reference data");
    let spec = reference::port_spec(id).expect("a ported task");
    let mj = reference::load_rollout(&dir, id, kind).expect("reference rollout");
    let port = reference::port_rollout(&spec, kind, mj.qpos.len()).expect("port rollout");
    let f = |q: &[f64]| q.iter().map(|x| format!("{x:8.4}")).collect::<Vec<_>>().join(" ");
    for &t in &steps {
        println!("t={t:3} reward port {:9.4} mujoco {:9.4}", port.reward[t], mj.reward[t]);
        println!("      qpos port   {}\n      qpos mujoco {}", f(&port.qpos[t]), f(&mj.qpos[t]));
        if with_qvel {
            println!("      qvel port   {}\n      qvel mujoco {}", f(&port.qvel[t]), f(&mj.qvel[t]));
        }
    }
}
