//! The spiking actor's speed on this machine's CPU: the event-driven engine against PopSAN as
//! plain tch modules with autograd (same network, same run; the reference module of the
//! learner's tests), and that module's forward+backward in fp32 and bf16 at the learner's
//! batch size.
//!
//!     cargo run --release -p spikerl-learner --example popsan_bench

use std::time::Instant;

#[path = "../tests/support/autograd_popsan.rs"]
mod autograd_popsan;

use autograd_popsan::PopSanModule;
use spikerl_snn::{ParamSet, PopSan, PopSanSpec, Precision};
use tch::{Device, Kind, Tensor};

fn per_call(rounds: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..rounds / 10 + 1 {
        f();
    }
    let start = Instant::now();
    for _ in 0..rounds {
        f();
    }
    start.elapsed().as_secs_f64() / rounds as f64
}

fn main() {
    tch::set_num_threads(1);
    let spec = PopSanSpec::new(11, 3, 1.0);
    let params = ParamSet::init(&spec, 0).unwrap();
    let mut engine = PopSan::new(&params).unwrap();
    let module = PopSanModule::from_param_set(&params, Device::Cpu).unwrap();
    let obs1 = Tensor::rand([1, 11], (Kind::Float, Device::Cpu)) * 4.0 - 2.0;
    let obs64 = Tensor::rand([64, 11], (Kind::Float, Device::Cpu)) * 4.0 - 2.0;
    let obs100 = Tensor::rand([100, 11], (Kind::Float, Device::Cpu)) * 4.0 - 2.0;
    let o1 = Vec::<f32>::try_from(&obs1.view([-1])).unwrap();
    let o64 = Vec::<f32>::try_from(&obs64.view([-1])).unwrap();
    let (mut a1, mut a64) = (vec![0.0f32; 3], vec![0.0f32; 64 * 3]);

    let engine1 = per_call(20_000, || engine.act(&o1, &mut a1).unwrap());
    // As actors hold parameters received over the wire in bf16 (the default).
    let wire = ParamSet::decode(&params.encode(Precision::Bf16)).unwrap();
    let mut engine_bf16 = PopSan::new(&wire).unwrap();
    let engine1_bf16 = per_call(20_000, || engine_bf16.act(&o1, &mut a1).unwrap());
    let engine64 = per_call(300, || engine.act_batch(&o64, &mut a64).unwrap());
    let tch1 = tch::no_grad(|| per_call(300, || drop(module.forward(&obs1, Precision::F32))));
    let tch64 = tch::no_grad(|| per_call(100, || drop(module.forward(&obs64, Precision::F32))));
    let fb = |p| {
        per_call(20, || {
            let loss = module.forward(&obs100, p).square().mean(Kind::Float);
            loss.backward();
        })
    };
    let (fb32, fb16) = (fb(Precision::F32), fb(Precision::Bf16));

    println!("PopSAN 11→110→256→256→30→3, T=5, one thread (tch::set_num_threads(1))");
    println!("| | event-driven engine | tch module forward (fp32) | engine speed-up |");
    println!("|---|---:|---:|---:|");
    println!("| batch 1 | {:.2} µs | {:.1} µs | **{:.0}×** |", engine1 * 1e6, tch1 * 1e6, tch1 / engine1);
    println!("| batch 1, bf16-wire params | {:.2} µs | | {:.0}× |", engine1_bf16 * 1e6, tch1 / engine1_bf16);
    println!("| batch 64 | {:.1} µs ({:.2} µs/action) | {:.1} µs | {:.1}× |", engine64 * 1e6, engine64 * 1e6 / 64.0, tch64 * 1e6, tch64 / engine64);
    println!("tch forward+backward, batch 100: fp32 {:.2} ms, bf16 {:.2} ms (bf16 = {:.2}× fp32 speed)", fb32 * 1e3, fb16 * 1e3, fb32 / fb16);
}
