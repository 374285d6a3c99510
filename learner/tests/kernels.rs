//! Both backends compute what autograd computes: the spiking actor's actions and surrogate
//! gradients against the reference module (`support/autograd_popsan.rs`), the critics' against
//! an autograd MLP, Adam against itself across backends; the tensor backend also on CUDA when
//! there is one.

#[path = "support/autograd_popsan.rs"]
mod autograd_popsan;

use autograd_popsan::PopSanModule;
use spikerl_learner::kernels::{CpuKernels, Kernels, TchKernels};
use spikerl_learner::networks::{ActorShape, CriticShape};
use spikerl_learner::optim::Adam;
use spikerl_snn::{Encoding, ParamSet, PopSanSpec, Precision};
use tch::{Device, Kind, Tensor};

const B: i64 = 64;

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.detach().to_device(Device::Cpu).contiguous().view([-1]).to_kind(Kind::Float)).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    let scale = a.iter().map(|x| x.abs()).fold(0.0, f32::max);
    (diff, scale)
}

fn close(what: &str, a: &[f32], b: &[f32], tol: f32) {
    let (d, s) = max_abs_diff(a, b);
    assert!(d <= tol * s.max(1e-3), "{what}: differ by {d} (scale {s})");
}

fn critic_shape() -> CriticShape {
    CriticShape::new(11, 3, &[32, 16])
}

/// Every backend this machine has, for a PopSAN of `spec`: the CPU's slices, the tensor ops on
/// the CPU, and on CUDA when present.
fn backends(spec: &PopSanSpec, precision: Precision) -> (CpuKernels, Vec<TchKernels>) {
    let shape = || ActorShape::new(spec.clone());
    let critic = || CriticShape::new(spec.obs_dim, spec.act_dim, &[32, 16]);
    let mut tensor = vec![TchKernels::new(shape(), critic(), precision, Device::Cpu)];
    if tch::Cuda::is_available() {
        tensor.push(TchKernels::new(shape(), critic(), precision, Device::Cuda(0)));
    }
    (CpuKernels::new(shape(), critic(), precision), tensor)
}

/// Actions and `∂(Σ actions·R)/∂params` of a backend.
fn actor_pass<K: Kernels>(k: &K, params: &[f32], x: &[f32], weights: &[f32], uniforms: Option<&[f32]>) -> (Vec<f32>, Vec<f32>) {
    let p = k.upload(params);
    let u = uniforms.map(|u| k.upload(u));
    let (actions, tape) = k.actor_forward(&p, &k.upload(x), u.as_ref());
    let grad = k.actor_backward(&p, &tape, &k.upload(weights));
    (k.download(&actions), k.download(&grad))
}

/// Same actions and the same gradient of `Σ actions·R` for every parameter tensor as autograd,
/// on every backend. `shape` edits the initial parameters (e.g. to drive the layers into the
/// dense regime).
fn agree_with(spec: PopSanSpec, uniforms: Option<&Tensor>, batch: i64, shape: impl Fn(&mut ParamSet)) {
    tch::manual_seed(7);
    let mut params = ParamSet::init(&spec, 11).unwrap();
    shape(&mut params);
    let module = PopSanModule::from_param_set(&params, Device::Cpu).unwrap();
    let obs = Tensor::rand([batch, spec.obs_dim as i64], (Kind::Float, Device::Cpu)) * 7.0 - 3.5;
    let weights = Tensor::randn([batch, spec.act_dim as i64], (Kind::Float, Device::Cpu));
    let (actions, _) = module.forward_recorded(&obs, Precision::F32, uniforms);
    (&actions * &weights).sum(Kind::Float).backward();
    let vars = module.var_store().variables();

    let x = values(&obs.clamp(-3.0, 3.0)); // the module's normaliser is the identity
    let u = uniforms.map(values);
    let (cpu, tensor) = backends(&spec, Precision::F32);
    let mut results = vec![("CPU kernels", actor_pass(&cpu, params.flat(), &x, &values(&weights), u.as_deref()))];
    for k in &tensor {
        results.push(("tensor kernels", actor_pass(k, params.flat(), &x, &values(&weights), u.as_deref())));
    }
    for (name, (got_actions, grad)) in results {
        let (d, s) = max_abs_diff(&values(&actions), &got_actions);
        assert!(d <= 1e-5 * s.max(1.0), "{name}: actions differ by {d}");
        let mut changed_groups = 0;
        for info in params.layout() {
            let expected = values(&vars[&info.name.replace('.', "_")].grad());
            let got = &grad[info.offset..info.offset + info.len()];
            let (d, s) = max_abs_diff(&expected, got);
            assert!(d <= 1e-4 * s.max(1e-3), "{name}, {}: gradient differs by {d} (scale {s})", info.name);
            changed_groups += usize::from(s > 0.0);
        }
        assert_eq!(changed_groups, params.layout().len(), "{name}: every tensor gets a gradient");
    }
}

#[test]
fn actor_matches_autograd_deterministic() {
    agree_with(PopSanSpec::new(11, 3, 1.0), None, B, |_| {});
}

#[test]
fn actor_matches_autograd_poisson() {
    let mut spec = PopSanSpec::new(5, 2, 2.0);
    spec.encoding = Encoding::Poisson;
    let u = Tensor::rand([spec.timesteps as i64, B, (spec.obs_dim * spec.encoder_pop) as i64], (Kind::Float, Device::Cpu));
    agree_with(spec, Some(&u), B, |_| {});
}

/// Trained Hopper actors fire 35–75 % of the time, where the CPU kernels switch to dense BLAS
/// products; initial parameters (3–12 %) never get there. Odd batches exercise the row tails.
#[test]
fn actor_matches_autograd_when_most_neurons_fire() {
    for batch in [50, 37] {
        agree_with(PopSanSpec::new(11, 3, 1.0), None, batch, |p| {
            for name in ["layers.0.bias", "layers.1.bias", "layers.2.bias"] {
                p.tensor_mut(name).unwrap().iter_mut().for_each(|b| *b += 0.45);
            }
            p.tensor_mut("encoder.std").unwrap().iter_mut().for_each(|s| *s *= 3.0);
        });
    }
}

#[test]
fn bf16_actor_stays_close_to_fp32() {
    let spec = PopSanSpec::new(11, 3, 1.0);
    let params = ParamSet::init(&spec, 3).unwrap();
    let x = values(&(Tensor::rand([B, 11], (Kind::Float, Device::Cpu)) * 6.0 - 3.0));
    let g = vec![1.0f32; (B * 3) as usize];
    let (a32, _) = actor_pass(&backends(&spec, Precision::F32).0, params.flat(), &x, &g, None);
    let (cpu16, tensor16) = backends(&spec, Precision::Bf16);
    let mut runs = vec![actor_pass(&cpu16, params.flat(), &x, &g, None).0];
    runs.extend(tensor16.iter().map(|k| actor_pass(k, params.flat(), &x, &g, None).0));
    for a16 in runs {
        let (d, _) = max_abs_diff(&a32, &a16);
        // Spikes are exact in bf16; weights round to 8 bits of mantissa, which flips a few spikes.
        assert!(d < 0.2, "bf16 actions differ by {d}");
    }
}

/// The same twin MLP recorded by autograd, as the reference.
fn autograd_q(shape: &CriticShape, flat: &Tensor, input: &Tensor, which: usize) -> Tensor {
    let layers = shape.critics()[which];
    let mut h = input.shallow_clone();
    for (i, l) in layers.iter().enumerate() {
        let w = flat.narrow(0, l.offset as i64, (l.out * l.inp) as i64).view([l.out as i64, l.inp as i64]);
        let b = flat.narrow(0, l.bias().start as i64, l.out as i64);
        h = h.linear(&w, Some(&b));
        if i + 1 < layers.len() {
            h = h.relu();
        }
    }
    h.squeeze_dim(-1)
}

/// Q values, `∂L_Q/∂params` for `L_Q = mean((Q1 − y)²) + mean((Q2 − y)²)` and `∂(−mean Q1)/∂a`.
fn critic_pass<K: Kernels>(k: &K, flat: &[f32], x: &[f32], a: &[f32], y: &[f32]) -> [Vec<f32>; 4] {
    let n = y.len() as f32;
    let p = k.upload(flat);
    let (xv, av, yv) = (k.upload(x), k.upload(a), k.upload(y));
    let (q1, q2, tape) = k.critics_forward(&p, &xv, &av);
    let g1 = k.scale(&k.sub(&q1, &yv), 2.0 / n);
    let g2 = k.scale(&k.sub(&q2, &yv), 2.0 / n);
    let grad = k.critics_backward(&p, &tape, &g1, &g2);
    let (q, tape) = k.q1_forward(&p, &xv, &av);
    let g_a = k.q1_action_grad(&p, &tape, &k.filled(y.len(), -1.0 / n));
    assert_eq!(k.download(&q), k.download(&q1), "Q1 alone is Q1 of the pair");
    [k.download(&q1), k.download(&q2), k.download(&grad), k.download(&g_a)]
}

#[test]
fn critics_match_autograd() {
    tch::manual_seed(3);
    let shape = critic_shape();
    let flat = shape.init(Device::Cpu);
    let (x, a, y) = (Tensor::randn([7, 11], (Kind::Float, Device::Cpu)), Tensor::randn([7, 3], (Kind::Float, Device::Cpu)), Tensor::randn([7], (Kind::Float, Device::Cpu)));
    let leaf = flat.detach().set_requires_grad(true);
    let a_leaf = a.detach().set_requires_grad(true);
    let input = Tensor::cat(&[&x, &a_leaf], 1);
    let (r1, r2) = (autograd_q(&shape, &leaf, &input, 0), autograd_q(&shape, &leaf, &input, 1));
    let loss = (&r1 - &y).square().mean(Kind::Float) + (&r2 - &y).square().mean(Kind::Float);
    let reference = values(&Tensor::run_backward(&[&loss], &[&leaf], false, false).remove(0));
    let reference_a = values(&Tensor::run_backward(&[&(-autograd_q(&shape, &leaf, &input, 0).mean(Kind::Float))], &[&a_leaf], false, false).remove(0));

    let spec = PopSanSpec::new(11, 3, 1.0);
    let (cpu, tensor) = backends(&spec, Precision::F32);
    let (fv, xv, av, yv) = (values(&flat), values(&x), values(&a), values(&y));
    let mut results = vec![("CPU kernels", critic_pass(&cpu, &fv, &xv, &av, &yv))];
    results.extend(tensor.iter().map(|k| ("tensor kernels", critic_pass(k, &fv, &xv, &av, &yv))));
    for (name, [q1, q2, grad, g_a]) in results {
        close(&format!("{name}: Q1"), &values(&r1), &q1, 1e-5);
        close(&format!("{name}: Q2"), &values(&r2), &q2, 1e-5);
        close(&format!("{name}: ∂L_Q/∂params"), &reference, &grad, 1e-4);
        close(&format!("{name}: ∂(−Q1)/∂a"), &reference_a, &g_a, 1e-4);
        // Every layer of both critics gets a gradient.
        for l in shape.layers() {
            assert!(grad[l.weight()].iter().any(|&g| g != 0.0), "{name}: layer at {} has no gradient", l.offset);
        }
    }
}

/// At TD3's sizes the 256×256 products run in bf16 (the small ones stay fp32 on the CPU,
/// see `CPU_BF16_MIN_MACS`) and the gradient stays close to fp32's.
#[test]
fn bf16_critic_gradients_stay_close_to_fp32() {
    tch::manual_seed(4);
    let spec = PopSanSpec::new(11, 3, 1.0);
    let shape = CriticShape::new(11, 3, &[256, 256]);
    let flat = values(&shape.init(Device::Cpu));
    let (x, a, y) = (values(&Tensor::randn([64, 11], (Kind::Float, Device::Cpu))), values(&Tensor::randn([64, 3], (Kind::Float, Device::Cpu))), values(&Tensor::randn([64], (Kind::Float, Device::Cpu))));
    let grad = |p| critic_pass(&CpuKernels::new(ActorShape::new(spec.clone()), shape.clone(), p), &flat, &x, &a, &y)[2].clone();
    let (g32, g16) = (grad(Precision::F32), grad(Precision::Bf16));
    let norm = |v: &[f32]| v.iter().map(|x| (x * x) as f64).sum::<f64>().sqrt();
    let diff: Vec<f32> = g16.iter().zip(&g32).map(|(a, b)| a - b).collect();
    let rel = norm(&diff) / norm(&g32);
    assert!(rel > 1e-5, "bf16 products did not run (relative difference {rel})");
    // Below 5 % on a CPU with AVX512-BF16 (the 2026-11-27 CI machine), 5.8 % where oneDNN emulates bf16
    // (AMD EPYC without AVX-512): ReLU masks flip where a pre-activation rounds across zero.
    assert!(rel < 0.08, "bf16 gradient off by {rel}");
}

fn adam_run<K: Kernels>(k: &K, init: &[f32], grads: &[Vec<f32>]) -> Vec<f32> {
    let mut params = k.upload(init);
    let mut adam = Adam::new(k.filled(init.len(), 0.0), k.filled(init.len(), 0.0), 3e-3);
    for g in grads {
        k.adam_step(&mut adam, &mut params, &k.upload(g));
    }
    k.download(&params)
}

#[test]
fn adam_steps_agree_across_backends() {
    tch::manual_seed(5);
    let init = values(&Tensor::randn([1000], (Kind::Float, Device::Cpu)));
    let grads: Vec<Vec<f32>> = (0..20).map(|_| values(&Tensor::randn([1000], (Kind::Float, Device::Cpu)))).collect();
    let spec = PopSanSpec::new(11, 3, 1.0);
    let (cpu, tensor) = backends(&spec, Precision::F32);
    let fused = adam_run(&cpu, &init, &grads);
    for k in &tensor {
        close("Adam, CPU kernels vs tensor ops", &adam_run(k, &init, &grads), &fused, 1e-5);
    }
    assert!(fused.iter().zip(&init).all(|(p, q)| p != q), "every parameter moved");
}

/// The activity the learner reports (firing rates, share of membranes inside the surrogate
/// window) is what the reference module's recorded spikes and voltages say, on every backend.
#[test]
fn actor_activity_is_the_recorded_spikes_and_voltages() {
    tch::manual_seed(8);
    let spec = PopSanSpec::new(11, 3, 1.0);
    let mut params = ParamSet::init(&spec, 5).unwrap();
    // Some neurons near threshold, some far from it: both shares away from 0 and 1.
    params.tensor_mut("layers.1.bias").unwrap().iter_mut().enumerate().for_each(|(i, b)| *b += if i % 3 == 0 { 0.8 } else { 0.1 });
    let module = PopSanModule::from_param_set(&params, Device::Cpu).unwrap();
    let obs = Tensor::rand([B, 11], (Kind::Float, Device::Cpu)) * 6.0 - 3.0;
    let (_, rec) = module.forward_recorded(&obs, Precision::F32, None);
    let t_steps = rec.spikes.len();
    let mean_over_time = |f: &dyn Fn(usize) -> Tensor| (0..t_steps).map(|t| f(t).mean(Kind::Float).double_value(&[])).sum::<f64>() / t_steps as f64;
    let mut expected = vec![mean_over_time(&|t| rec.spikes[t][0].shallow_clone())];
    for l in 0..spec.hidden.len() + 1 {
        expected.push(mean_over_time(&|t| rec.spikes[t][l + 1].shallow_clone()));
        expected.push(mean_over_time(&|t| (&rec.voltages[t][l] - 0.5).abs().lt(0.5).to_kind(Kind::Float)));
    }
    assert!(expected[1..].iter().all(|&x| x > 0.01 && x < 0.99), "a degenerate case: {expected:?}");
    let x = values(&obs.clamp(-3.0, 3.0));
    let (cpu, tensor) = backends(&spec, Precision::F32);
    fn activity<K: Kernels>(k: &K, params: &[f32], x: &[f32]) -> Vec<f32> {
        let (_, tape) = k.actor_forward(&k.upload(params), &k.upload(x), None);
        k.download(&k.actor_activity(&tape).expect("a spiking actor's activity"))
    }
    let mut got = vec![("CPU kernels", activity(&cpu, params.flat(), &x))];
    got.extend(tensor.iter().map(|k| ("tensor kernels", activity(k, params.flat(), &x))));
    for (name, g) in got {
        assert_eq!(g.len(), expected.len(), "{name}");
        for (i, (a, e)) in g.iter().zip(&expected).enumerate() {
            assert!((f64::from(*a) - e).abs() < 1e-5, "{name}: entry {i}: {a} vs {e}");
        }
    }
}

/// The surrogates' values at hand-picked points, and both backends' actor gradients under each.
#[test]
fn every_surrogate_gives_the_same_gradient_on_every_backend() {
    use spikerl_learner::Surrogate;
    assert_eq!((Surrogate::Rectangle.grad(0.49), Surrogate::Rectangle.grad(-0.5), Surrogate::Rectangle.grad(2.0)), (1.0, 0.0, 0.0));
    assert!((Surrogate::Arctan.grad(1.0) - 1.0 / (1.0 + std::f32::consts::PI.powi(2))).abs() < 1e-7 && Surrogate::Arctan.grad(0.0) == 1.0);
    assert!((Surrogate::FastSigmoid.grad(-0.5) - 1.0 / 9.0).abs() < 1e-7 && Surrogate::FastSigmoid.grad(0.0) == 1.0);
    let spec = PopSanSpec::new(11, 3, 1.0);
    let params = ParamSet::init(&spec, 2).unwrap();
    tch::manual_seed(9);
    let x = values(&(Tensor::rand([B, 11], (Kind::Float, Device::Cpu)) * 6.0 - 3.0));
    let g = values(&Tensor::randn([B, 3], (Kind::Float, Device::Cpu)));
    let mut rect = None;
    for s in [Surrogate::Rectangle, Surrogate::Arctan, Surrogate::FastSigmoid] {
        let shape = || ActorShape::new(spec.clone()).with_surrogate(s);
        let critic = || CriticShape::new(11, 3, &[32]);
        let (_, cpu) = actor_pass(&CpuKernels::new(shape(), critic(), Precision::F32), params.flat(), &x, &g, None);
        let (_, ops) = actor_pass(&TchKernels::new(shape(), critic(), Precision::F32, Device::Cpu), params.flat(), &x, &g, None);
        close(&format!("{s:?}: CPU kernels vs tensor ops"), &ops, &cpu, 1e-4);
        match &rect {
            None => rect = Some(cpu),
            Some(r) => assert!(max_abs_diff(r, &cpu).0 > 1e-3, "{s:?} changes the gradient"),
        }
    }
}

/// The membrane penalty: `Σ actions·R + λ·mean(relu(|v − th| − 0.5)²)` over the output
/// population's (timestep, sample, neuron) has autograd's gradient on every backend.
#[test]
fn membrane_penalty_matches_autograd() {
    let spec = PopSanSpec::new(11, 3, 1.0);
    let lambda = 0.7;
    let params = ParamSet::init(&spec, 5).unwrap();
    let module = PopSanModule::from_param_set(&params, Device::Cpu).unwrap();
    tch::manual_seed(12);
    let obs = Tensor::rand([B, 11], (Kind::Float, Device::Cpu)) * 6.0 - 3.0;
    let r = Tensor::randn([B, 3], (Kind::Float, Device::Cpu));
    let (actions, rec) = module.forward_recorded(&obs, Precision::F32, None);
    let outside: Vec<Tensor> = rec.voltages.iter().map(|step| ((step.last().unwrap() - spec.threshold as f64).abs() - 0.5).relu().square()).collect();
    let penalty = Tensor::stack(&outside, 0).mean(Kind::Float) * lambda;
    assert!(f64::try_from(&penalty).unwrap() > 1e-3, "the initial actor has output membranes outside the window");
    ((&actions * &r).sum(Kind::Float) + penalty).backward();
    let vars = module.var_store().variables();
    let x = values(&obs.clamp(-3.0, 3.0));
    let shape = || ActorShape::new(spec.clone()).with_membrane_reg(lambda as f32);
    let critic = || CriticShape::new(11, 3, &[32]);
    let cpu = actor_pass(&CpuKernels::new(shape(), critic(), Precision::F32), params.flat(), &x, &values(&r), None).1;
    let ops = actor_pass(&TchKernels::new(shape(), critic(), Precision::F32, Device::Cpu), params.flat(), &x, &values(&r), None).1;
    let plain = actor_pass(&CpuKernels::new(ActorShape::new(spec.clone()), critic(), Precision::F32), params.flat(), &x, &values(&r), None).1;
    assert!(max_abs_diff(&plain, &cpu).0 > 1e-4, "the penalty changes the gradient");
    for (name, grad) in [("CPU kernels", &cpu), ("tensor kernels", &ops)] {
        for info in params.layout() {
            let expected = values(&vars[&info.name.replace('.', "_")].grad());
            close(&format!("{name}, {}", info.name), &expected, &grad[info.offset..info.offset + info.len()], 1e-4);
        }
    }
}

/// The proxy target actor (`tanh(MLP(x)) × a_max`): actions and `∂(Σ actions·R)/∂params` as
/// autograd has them, on every backend.
#[test]
fn proxy_actor_matches_autograd() {
    use spikerl_learner::networks::{MlpShape, linear_init};
    tch::manual_seed(10);
    let shape = MlpShape::new(11, 3, &[32, 16], 2.0);
    let flat = linear_init(&shape.layers, Device::Cpu);
    let x = Tensor::randn([B, 11], (Kind::Float, Device::Cpu));
    let r = Tensor::randn([B, 3], (Kind::Float, Device::Cpu));
    let leaf = flat.detach().set_requires_grad(true);
    let mut h = x.shallow_clone();
    for (i, l) in shape.layers.iter().enumerate() {
        let w = leaf.narrow(0, l.offset as i64, (l.out * l.inp) as i64).view([l.out as i64, l.inp as i64]);
        h = h.linear(&w, Some(&leaf.narrow(0, l.bias().start as i64, l.out as i64)));
        if i + 1 < shape.layers.len() {
            h = h.relu();
        }
    }
    let actions = h.tanh() * 2.0;
    let reference = values(&Tensor::run_backward(&[&(&actions * &r).sum(Kind::Float)], &[&leaf], false, false).remove(0));
    let spec = PopSanSpec::new(11, 3, 2.0);
    let (cpu, tensor) = backends(&spec, Precision::F32);
    fn pass<K: Kernels>(k: &K, flat: &[f32], x: &[f32], r: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let p = k.upload(flat);
        let (a, tape) = k.proxy_forward(&p, &k.upload(x));
        (k.download(&a), k.download(&k.proxy_backward(&p, &tape, &k.upload(r))))
    }
    let (fv, xv, rv) = (values(&flat), values(&x), values(&r));
    let mut results = vec![("CPU kernels", pass(&cpu.with_proxy(shape.clone()), &fv, &xv, &rv))];
    results.extend(tensor.into_iter().map(|k| ("tensor kernels", pass(&k.with_proxy(shape.clone()), &fv, &xv, &rv))));
    for (name, (a, g)) in results {
        close(&format!("{name}: proxy actions"), &values(&actions), &a, 1e-5);
        close(&format!("{name}: proxy gradient"), &reference, &g, 1e-4);
    }
}

/// On a GPU: TD3 whose every gradient goes through NCCL's all-reduce in device memory (a world
/// of one rank) takes exactly the steps of the learner alone. Elsewhere: says it skipped.
#[test]
fn nccl_all_reduce_in_device_memory_leaves_cuda_updates_unchanged() {
    use spikerl_learner::collective::{CollectiveError, Nccl};
    use spikerl_learner::prelude::*;
    use spikerl_snn::rng::SplitMix;
    if !tch::Cuda::is_available() {
        return eprintln!("skipped: no CUDA device here");
    }
    let nccl = match Nccl::alone(0) {
        Ok(n) => std::sync::Arc::new(n),
        Err(CollectiveError::Unavailable { reason, .. }) => return eprintln!("skipped: NCCL is not available here: {reason}"),
        Err(e) => panic!("NCCL is here but failed: {e}"),
    };
    let config = Td3Config { batch_size: 64, replay_size: 1000, ..Td3Config::default() };
    let spec = ActorConfig::default().spec(11, 3, 1.0).unwrap();
    let agent = || build(config.clone(), spec.clone(), Surrogate::FastSigmoid, Device::Cuda(0), Precision::F32, 3, 1).unwrap();
    let (mut alone, mut through_nccl) = (agent(), agent());
    through_nccl.join(nccl).unwrap();
    let mut rng = SplitMix::new(9);
    let rb = ReplayBuffer::random(11, 3, 1000, &mut rng);
    let mut mb = Minibatch::default();
    for _ in 0..20 {
        rb.sample_into(64, &mut rng, &mut mb);
        alone.update(&mb).unwrap();
        through_nccl.update(&mb).unwrap();
    }
    assert_eq!(alone.checksum(), through_nccl.checksum(), "20 CUDA updates through NCCL differ from the learner alone's");
    eprintln!("NCCL (world of one, device memory): 20 CUDA updates bitwise equal to the learner alone's");
}
