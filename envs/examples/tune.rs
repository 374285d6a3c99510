//! Development aid: compares one port's rollouts with MuJoCo's under a tuning given as
//! `key=value` arguments (contact_hz, contact_damping, limit_hz, limit_damping, iters, steps, margin).
use spikerl_envs::reference::{self, ActionKind, CHECK_HEADER};

fn main() {
    let mut args = std::env::args().skip(1);
    let id = args.next().unwrap_or_else(|| "Hopper-v4".into());
    let mut spec = reference::port_spec(&id).unwrap();
    let mut show = vec![];
    for kv in args {
        let (k, v) = kv.split_once('=').expect("key=value");
        let t = &mut spec.tuning;
        match k {
            "pgs" => t.constraint_iterations = v.parse().unwrap(),
            "show" => show = v.split(',').map(|s| s.parse::<usize>().unwrap()).collect(),
            _ => panic!("unknown key {k}"),
        }
    }
    let dir = reference::find_reference_dir().unwrap();
    println!("{CHECK_HEADER}");
    for c in reference::dynamics_checks_with(&spec, &dir).unwrap() {
        println!("{c}");
    }
    for kind in [ActionKind::Zero, ActionKind::Sine] {
        let mj = reference::load_rollout(&dir, &id, kind).unwrap();
        let port = reference::port_rollout(&spec, kind, 300).unwrap();
        for &t in &show {
            let f = |q: &[f64]| q.iter().map(|x| format!("{x:7.3}")).collect::<Vec<_>>().join(" ");
            println!("{kind:?} t={t:3} port {}\n          mujoco {}", f(&port.qpos[t]), f(&mj.qpos[t]));
            if std::env::var("QVEL").is_ok() {
                println!("     qvel port {}\n          mujoco {}", f(&port.qvel[t]), f(&mj.qvel[t]));
            }
        }
    }
}
