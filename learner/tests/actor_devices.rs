//! The fused actor's tensor-op path (what CUDA runs) computes what its CPU kernels compute.
//! Its own test binary: it flips a process-wide switch.

use std::sync::atomic::Ordering;

use spikerl_learner::Precision;
use spikerl_learner::actor::{FORCE_TENSOR_OPS, SpikingActor};
use spikerl_snn::{ParamSet, PopSanSpec};
use tch::{Device, Kind, Tensor};

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.to_device(Device::Cpu).contiguous().view([-1])).unwrap()
}

fn run(device: Device, precision: Precision) -> (Vec<f32>, Vec<f32>) {
    let spec = PopSanSpec::new(11, 3, 1.0);
    let params = ParamSet::init(&spec, 4).unwrap();
    let actor = SpikingActor::new(spec);
    let flat = SpikingActor::params_tensor(&params, device);
    tch::manual_seed(3);
    let x = (Tensor::rand([100, 11], (Kind::Float, Device::Cpu)) * 6.0 - 3.0).to_device(device);
    let g = Tensor::randn([100, 3], (Kind::Float, Device::Cpu)).to_device(device);
    let (a, tape) = actor.forward_tape(&flat, &x, precision, None);
    (values(&a), values(&actor.backward(&flat, &tape, &g, precision)))
}

fn close(what: &str, a: &[f32], b: &[f32], tol: f32) {
    let scale = a.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-3);
    let diff = a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(diff <= tol * scale, "{what}: differ by {diff} (scale {scale})");
}

#[test]
fn tensor_op_path_matches_cpu_kernels_and_cuda_when_present() {
    let (a_fast, g_fast) = run(Device::Cpu, Precision::F32);
    FORCE_TENSOR_OPS.store(true, Ordering::Relaxed);
    let (a_ops, g_ops) = run(Device::Cpu, Precision::F32);
    FORCE_TENSOR_OPS.store(false, Ordering::Relaxed);
    close("actions, CPU kernels vs tensor ops", &a_fast, &a_ops, 1e-5);
    close("gradient, CPU kernels vs tensor ops", &g_fast, &g_ops, 1e-4);
    if tch::Cuda::is_available() {
        let (a_gpu, g_gpu) = run(Device::Cuda(0), Precision::F32);
        close("actions, CUDA vs CPU", &a_fast, &a_gpu, 1e-4);
        close("gradient, CUDA vs CPU", &g_fast, &g_gpu, 1e-3);
        let (a16, _) = run(Device::Cuda(0), Precision::Bf16);
        close("actions, CUDA bf16 vs CPU fp32", &a_fast, &a16, 0.3);
        println!("CUDA checked");
    }
}
