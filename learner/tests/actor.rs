//! The fused actor (hand-written backward) computes the autograd module's function and
//! gradients.

use spikerl_learner::actor::SpikingActor;
use spikerl_learner::popsan::{PopSanModule, Precision};
use spikerl_snn::{Encoding, ParamSet, PopSanSpec};
use tch::{Device, Kind, Tensor};

const B: i64 = 64;

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.detach().contiguous().view([-1]).to_kind(Kind::Float)).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    let scale = a.iter().map(|x| x.abs()).fold(0.0, f32::max);
    (diff, scale)
}

/// Same actions and the same gradient of `Σ actions·R` for every parameter tensor.
fn agree(spec: PopSanSpec, uniforms: Option<&Tensor>) {
    agree_with(spec, uniforms, B, |_| {});
}

/// `shape` edits the initial parameters (e.g. to drive the layers into the dense regime).
fn agree_with(spec: PopSanSpec, uniforms: Option<&Tensor>, batch: i64, shape: impl Fn(&mut ParamSet)) {
    tch::manual_seed(7);
    let mut params = ParamSet::init(&spec, 11).unwrap();
    shape(&mut params);
    let module = PopSanModule::from_param_set(&params, Device::Cpu).unwrap();
    let obs = Tensor::rand([batch, spec.obs_dim as i64], (Kind::Float, Device::Cpu)) * 7.0 - 3.5;
    let weights = Tensor::randn([batch, spec.act_dim as i64], (Kind::Float, Device::Cpu));

    let (actions, _) = module.forward_recorded(&obs, Precision::F32, uniforms);
    (&actions * &weights).sum(Kind::Float).backward();

    let actor = SpikingActor::new(spec.clone());
    let flat = SpikingActor::params_tensor(&params, Device::Cpu);
    let x = obs.clamp(-3.0, 3.0); // identity normaliser
    let (fused_actions, tape) = actor.forward_tape(&flat, &x, Precision::F32, uniforms);
    let (d, s) = max_abs_diff(&values(&actions), &values(&fused_actions));
    assert!(d <= 1e-5 * s.max(1.0), "actions differ by {d}");
    let grad = values(&actor.backward(&flat, &tape, &weights, Precision::F32));

    let vars = module.var_store().variables();
    let mut changed_groups = 0;
    for info in params.layout() {
        let var = &vars[&info.name.replace('.', "_")];
        let expected = values(&var.grad());
        let got = &grad[info.offset..info.offset + info.len()];
        let (d, s) = max_abs_diff(&expected, got);
        assert!(d <= 1e-4 * s.max(1e-3), "{}: gradient differs by {d} (scale {s})", info.name);
        changed_groups += usize::from(s > 0.0);
    }
    assert_eq!(changed_groups, params.layout().len(), "every tensor gets a gradient");
}

#[test]
fn fused_actor_matches_autograd_deterministic() {
    agree(PopSanSpec::new(11, 3, 1.0), None);
}

#[test]
fn fused_actor_matches_autograd_poisson() {
    let mut spec = PopSanSpec::new(5, 2, 2.0);
    spec.encoding = Encoding::Poisson;
    let u = Tensor::rand([spec.timesteps as i64, B, (spec.obs_dim * spec.encoder_pop) as i64], (Kind::Float, Device::Cpu));
    agree(spec, Some(&u));
}

/// Trained Hopper actors fire 35–75 % of the time, where the kernels switch to dense BLAS
/// products; initial parameters (3–12 %) never get there. Odd batches exercise the row tails.
#[test]
fn fused_actor_matches_autograd_when_most_neurons_fire() {
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
    let actor = SpikingActor::new(spec.clone());
    let flat = SpikingActor::params_tensor(&params, Device::Cpu);
    let x = (Tensor::rand([B, 11], (Kind::Float, Device::Cpu)) * 6.0 - 3.0).clamp(-3.0, 3.0);
    let a32 = values(&actor.forward(&flat, &x, Precision::F32));
    let a16 = values(&actor.forward(&flat, &x, Precision::Bf16));
    let (d, _) = max_abs_diff(&a32, &a16);
    // Spikes are exact in bf16; weights round to 8 bits of mantissa, which flips a few spikes.
    assert!(d < 0.2, "bf16 actions differ by {d}");
}
