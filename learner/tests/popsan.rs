//! The tch PopSAN computes the CPU engine's function and learns through its spikes.

#[path = "support/autograd_popsan.rs"]
mod autograd_popsan;

use autograd_popsan::{PopSanModule, spike};
use spikerl_snn::{Encoding, ParamSet, PopSan, PopSanSpec, Precision};
use tch::{Device, Kind, Tensor, nn, nn::OptimizerConfig};

const N: usize = 1000;

fn observations(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n * dim)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 6.0 - 3.0
        })
        .collect()
}

fn indices(row: &Tensor) -> Vec<u32> {
    let v = Vec::<f32>::try_from(&row.contiguous().view([-1])).unwrap();
    v.iter().enumerate().filter(|(_, x)| **x > 0.5).map(|(i, _)| i as u32).collect()
}

/// Compares module and engine sample by sample; returns (samples compared exactly, ties).
fn compare(spec: &PopSanSpec, params: &ParamSet, uniforms: Option<&Tensor>) -> (usize, usize) {
    let module = PopSanModule::from_param_set(params, Device::Cpu).unwrap();
    let mut engine = PopSan::new(params).unwrap();
    engine.set_recording(true);
    let obs = observations(N, spec.obs_dim, 3);
    let obs_t = Tensor::from_slice(&obs).view([N as i64, spec.obs_dim as i64]);
    let (actions, rec) = tch::no_grad(|| module.forward_recorded(&obs_t, Precision::F32, uniforms));
    let actions = Vec::<f32>::try_from(&actions.contiguous().view([-1])).unwrap();
    let (mut exact, mut ties) = (0, 0);
    let mut out = vec![0.0; spec.act_dim];
    let enc = spec.obs_dim * spec.encoder_pop;
    for i in 0..N {
        let o = &obs[i * spec.obs_dim..(i + 1) * spec.obs_dim];
        match uniforms {
            None => engine.act(o, &mut out).unwrap(),
            Some(u) => {
                let mine: Vec<f32> = (0..spec.timesteps)
                    .flat_map(|t| Vec::<f32>::try_from(&u.get(t as i64).get(i as i64).contiguous()).unwrap())
                    .collect();
                assert_eq!(mine.len(), spec.timesteps * enc);
                engine.act_with_uniforms(o, &mine, &mut out).unwrap();
            }
        }
        let recorded = engine.recorded_spikes().unwrap();
        let mut tie = false;
        'steps: for (t, recorded_t) in recorded.iter().enumerate() {
            for (l, engine_spikes) in recorded_t.iter().enumerate() {
                let module_spikes = indices(&rec.spikes[t][l].get(i as i64));
                if &module_spikes != engine_spikes {
                    // Differ only where a voltage sits on the threshold (float summation order).
                    let near = l > 0 && {
                        let v = Vec::<f32>::try_from(&rec.voltages[t][l - 1].get(i as i64).contiguous()).unwrap();
                        let differing = module_spikes.iter().chain(engine_spikes).filter(|k| module_spikes.contains(k) != engine_spikes.contains(k));
                        differing.into_iter().all(|&k| (v[k as usize] - spec.threshold).abs() < 1e-4)
                    };
                    assert!(near || l == 0, "sample {i}, t {t}, layer {l}: spikes differ away from the threshold");
                    tie = true;
                    break 'steps;
                }
            }
        }
        if tie {
            ties += 1;
            continue;
        }
        for (a, b) in out.iter().zip(&actions[i * spec.act_dim..(i + 1) * spec.act_dim]) {
            assert!((a - b).abs() < 1e-5, "sample {i}: engine {a} vs module {b}");
        }
        exact += 1;
    }
    (exact, ties)
}

#[test]
fn module_and_engine_agree_spike_for_spike_deterministic() {
    let spec = PopSanSpec::new(11, 3, 1.0);
    let params = ParamSet::init(&spec, 11).unwrap();
    let (exact, ties) = compare(&spec, &params, None);
    eprintln!("deterministic: {exact} identical, {ties} threshold ties");
    assert_eq!(exact + ties, N);
    assert!(ties <= N / 100, "{ties} ties");
}

#[test]
fn module_and_engine_agree_with_the_same_poisson_draws() {
    let mut spec = PopSanSpec::new(11, 3, 1.0);
    spec.encoding = Encoding::Poisson;
    let init = ParamSet::init(&spec, 5).unwrap();
    let params = ParamSet::from_flat(spec.clone(), 0, vec![0.0; 11], vec![1.0; 11], init.flat().to_vec()).unwrap();
    let uniforms = Tensor::rand([spec.timesteps as i64, N as i64, 110], (Kind::Float, Device::Cpu));
    let (exact, ties) = compare(&spec, &params, Some(&uniforms));
    eprintln!("poisson: {exact} identical, {ties} threshold ties");
    assert!(ties <= N / 100, "{ties} ties");
}

#[test]
fn paramset_round_trips_through_the_module() {
    let spec = PopSanSpec::new(17, 6, 1.0);
    let mut params = ParamSet::init(&spec, 2).unwrap();
    params.version = 9;
    params.set_normalizer(vec![0.1; 17], vec![2.0; 17]).unwrap();
    let module = PopSanModule::from_param_set(&params, Device::Cpu).unwrap();
    assert_eq!(module.to_param_set().unwrap(), params);
}

#[test]
fn surrogate_gradient_is_the_rectangle_around_threshold() {
    let v = Tensor::from_slice(&[0.2f32, 0.4, 0.6, 1.2, -0.1, 0.999]).set_requires_grad(true);
    let s = spike(&v, 0.5);
    assert_eq!(Vec::<f32>::try_from(&s.detach()).unwrap(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 1.0]);
    (&s * Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])).sum(Kind::Float).backward();
    // d/dv = weight · 1{|v − 0.5| < 0.5}.
    assert_eq!(Vec::<f32>::try_from(&v.grad()).unwrap(), vec![1.0, 2.0, 3.0, 0.0, 0.0, 6.0]);
}

#[test]
fn supervised_fit_reduces_the_loss_tenfold_and_trains_every_parameter_group() {
    tch::manual_seed(0);
    let spec = PopSanSpec::new(4, 2, 1.0);
    let params = ParamSet::init(&spec, 1).unwrap();
    let module = PopSanModule::from_param_set(&params, Device::Cpu).unwrap();
    let mut opt = nn::Adam::default().build(module.var_store(), 3e-3).unwrap();
    let obs = Tensor::from_slice(&observations(512, 4, 9)).view([512, 4]);
    // A fixed smooth target map the actor must learn.
    let target = Tensor::stack(&[(obs.select(1, 0) * 0.5).tanh(), (obs.select(1, 1) - obs.select(1, 2)).tanh() * 0.8], 1);
    let loss = |precision| (module.forward(&obs, precision) - &target).square().mean(Kind::Float);
    let first = f64::try_from(loss(Precision::F32)).unwrap();
    for _ in 0..400 {
        opt.backward_step(&loss(Precision::F32));
    }
    let last = f64::try_from(loss(Precision::F32)).unwrap();
    eprintln!("loss {first:.4} -> {last:.4}");
    assert!(last < first / 10.0, "loss {first} -> {last}");
    let trained = module.to_param_set().unwrap();
    for name in ["encoder.mean", "encoder.std", "layers.0.weight", "layers.1.weight", "layers.2.weight", "decoder.weight", "decoder.bias"] {
        let moved = trained.tensor(name).unwrap().iter().zip(params.tensor(name).unwrap()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(moved > 1e-4, "{name} did not change");
    }
    // bf16 compute gives nearly the same function on the trained weights.
    let diff = f64::try_from((module.forward(&obs, Precision::Bf16) - module.forward(&obs, Precision::F32)).abs().mean(Kind::Float)).unwrap();
    assert!(diff < 0.05, "bf16 vs fp32 mean |Δaction| {diff}");
}

#[test]
fn libtorch_cuda_stays_linked() {
    // On a CPU machine CUDA is unavailable, but the library must be there to be found on a GPU one.
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("ldd").arg(&exe).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("libtorch_cuda.so"), "libtorch_cuda not linked:\n{text}");
    assert!(!text.contains("not found"), "unresolved libraries (rpath?):\n{text}");
}

#[test]
fn one_spiking_layer_has_the_hand_computed_gradient() {
    // v = W·s + b at the first timestep (state zero); loss = Σ g ⊙ spike(v).
    let w = Tensor::from_slice(&[0.3f32, 2.0, 1.2, -1.0]).view([2, 2]).set_requires_grad(true);
    let b = Tensor::from_slice(&[0.1f32, 0.0]).set_requires_grad(true);
    let s = Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
    let v = s.matmul(&w.tr()) + &b; // [0.4, 1.2]
    let out = spike(&v, 0.5);
    assert_eq!(Vec::<f32>::try_from(&out.detach().view([-1])).unwrap(), vec![0.0, 1.0]);
    (out * Tensor::from_slice(&[2.0f32, 3.0])).sum(Kind::Float).backward();
    // dL/dv = g ⊙ 1{|v − 0.5| < 0.5} = [2, 0]; dL/dW = (dL/dv)ᵀ·s; dL/db = dL/dv.
    assert_eq!(Vec::<f32>::try_from(&w.grad().view([-1])).unwrap(), vec![2.0, 0.0, 0.0, 0.0]);
    assert_eq!(Vec::<f32>::try_from(&b.grad()).unwrap(), vec![2.0, 0.0]);
}

#[test]
fn engine_holding_bf16_wire_weights_agrees_with_the_module() {
    // Actors receive bf16 parameters; the engine keeps them as bf16, which must change nothing.
    let spec = PopSanSpec::new(11, 3, 1.0);
    let wire = ParamSet::init(&spec, 17).unwrap().encode(spikerl_snn::Precision::Bf16);
    let params = ParamSet::decode(&wire).unwrap();
    let (exact, ties) = compare(&spec, &params, None);
    assert!(ties <= N / 100 && exact + ties == N, "{exact} identical, {ties} ties");
}
