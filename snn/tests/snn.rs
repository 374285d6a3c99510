//! The spiking actor's engine, parameters and counts.

use spikerl_snn::*;

/// 1 observation → 2 encoder neurons → 3 hidden → 2 output neurons → 1 action, T = 2.
fn tiny() -> ParamSet {
    let mut spec = PopSanSpec::new(1, 1, 2.0);
    spec.encoder_pop = 2;
    spec.decoder_pop = 2;
    spec.hidden = vec![3];
    spec.timesteps = 2;
    let mut p = ParamSet::init(&spec, 1).unwrap();
    // Encoder neuron 0 sits on the observation (A = 1), neuron 1 far away (A ≈ 0).
    p.tensor_mut("encoder.mean").unwrap().copy_from_slice(&[0.0, 100.0]);
    p.tensor_mut("encoder.std").unwrap().copy_from_slice(&[1.0, 1.0]);
    // Hidden: neurons 0 and 1 listen to encoder neuron 0; neuron 2 never fires.
    p.tensor_mut("layers.0.weight").unwrap().copy_from_slice(&[1.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
    p.tensor_mut("layers.0.bias").unwrap().fill(0.0);
    // Output: neuron 0 gets hidden 0 (weight 1), neuron 1 gets nothing.
    p.tensor_mut("layers.1.weight").unwrap().copy_from_slice(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    p.tensor_mut("layers.1.bias").unwrap().fill(0.0);
    p.tensor_mut("decoder.weight").unwrap().copy_from_slice(&[0.5, 0.25]);
    p.tensor_mut("decoder.bias").unwrap().fill(0.1);
    p
}

#[test]
fn operation_counts_equal_the_hand_count() {
    let p = tiny();
    let mut net = PopSan::new(&p).unwrap();
    let mut a = [0.0];
    net.act(&[0.0], &mut a).unwrap();
    let c = net.last_counts();
    // Encoder: v = 1 > 0.999 at t0, v = 0.001 + 1 at t1 → 2 spikes of neuron 0.
    // Hidden: c = [1, 1, 0] at t0 → 2 spikes; c = [1.5, 1.5, 0] at t1 → 2 spikes.
    // Output: c = [1, 0] → 1 spike at t0; c = [1.5, 0], v = 0·… + 1.5 → 1 spike at t1.
    assert_eq!(c.spikes, vec![2, 4, 2]);
    // SOPs: 2 encoder spikes × 3 + 4 hidden spikes × 2.
    assert_eq!(c.sops, 2 * 3 + 4 * 2);
    assert_eq!(c.encoder_macs, 3 * 2);
    assert_eq!(c.decoder_macs, 2);
    assert_eq!(c.neuron_updates, 2 * (2 + 3 + 2));
    // Rates [1, 0] → tanh(0.5·1 + 0.25·0 + 0.1)·2.
    assert!((a[0] - (0.6f32).tanh() * 2.0).abs() < 1e-6, "{a:?}");
    assert_eq!(c.firing_rates(2), vec![0.5, 2.0 / 3.0, 0.5]);
    // Totals accumulate.
    net.act(&[0.0], &mut a).unwrap();
    assert_eq!(net.total_counts().sops, 28);
    assert_eq!(net.total_counts().inferences, 2);
}

#[test]
fn poisson_encoding_follows_the_given_uniforms() {
    let mut p = tiny();
    let mut spec = p.spec().spiking().unwrap().clone();
    spec.encoding = Encoding::Poisson;
    p = ParamSet::from_flat(spec, 0, vec![0.0], vec![1.0], p.flat().to_vec()).unwrap();
    let mut net = PopSan::new(&p).unwrap();
    let mut a = [0.0];
    net.act_with_uniforms(&[0.0], &[0.0; 4], &mut a).unwrap();
    assert_eq!(net.last_counts().spikes[0], 2, "u = 0 < A = 1 fires neuron 0 each step; A ≈ 0 never");
    net.act_with_uniforms(&[0.0], &[1.0; 4], &mut a).unwrap();
    assert_eq!(net.last_counts().spikes[0], 0);
    assert!(net.act_with_uniforms(&[0.0], &[0.0; 3], &mut a).is_err());
}

#[test]
fn hopper_sized_network_acts_within_limits_and_repeatably() {
    let spec = PopSanSpec::new(11, 3, 1.0);
    assert_eq!(spec.layer_sizes(), vec![110, 256, 256, 30]);
    let p = ParamSet::init(&spec, 7).unwrap();
    let mut net = PopSan::new(&p).unwrap();
    let obs: Vec<f32> = (0..11).map(|i| (i as f32 - 5.0) * 0.4).collect();
    let (mut a, mut b) = ([0.0; 3], [0.0; 3]);
    net.act(&obs, &mut a).unwrap();
    net.act(&obs, &mut b).unwrap();
    assert_eq!(a, b);
    assert!(a.iter().all(|x| x.abs() <= 1.0));
    let c = net.last_counts();
    assert!(c.spikes[0] > 0 && c.sops > 0, "{c:?}");
    // Batched = one by one.
    let batch: Vec<f32> = obs.iter().chain(obs.iter().map(|x| -x).collect::<Vec<_>>().iter()).copied().collect();
    let mut out = [0.0; 6];
    net.act_batch(&batch, &mut out).unwrap();
    assert_eq!(&out[..3], &a);
    // Bad input is an error, not a panic.
    assert!(matches!(net.act(&obs[..10], &mut a), Err(SnnError::Shape(_))));
    let mut nan = obs.clone();
    nan[3] = f32::NAN;
    assert!(matches!(net.act(&nan, &mut a), Err(SnnError::Value(_))));
    assert!(net.act_batch(&batch[..20], &mut out).is_err());
}

#[test]
fn paramset_round_trips_in_f32_and_bf16_and_rejects_corrupt_bytes() {
    let spec = PopSanSpec::new(11, 3, 1.0);
    let mut p = ParamSet::init(&spec, 3).unwrap();
    p.version = 42;
    p.set_normalizer(vec![0.5; 11], vec![2.0; 11]).unwrap();
    let bytes = p.encode(Precision::F32);
    assert_eq!(ParamSet::decode(&bytes).unwrap(), p);

    let small = p.encode(Precision::Bf16);
    assert!(small.len() < bytes.len() * 6 / 10, "{} vs {}", small.len(), bytes.len());
    let q = ParamSet::decode(&small).unwrap();
    assert_eq!((q.version, q.spec(), q.obs_mean(), q.obs_std()), (42, p.spec(), p.obs_mean(), p.obs_std()));
    for (x, y) in p.flat().iter().zip(q.flat()) {
        assert!((x - y).abs() <= x.abs() / 128.0, "{x} vs {y}");
    }

    assert!(matches!(ParamSet::decode(&bytes[..bytes.len() / 2]), Err(SnnError::Decode(_))));
    assert!(matches!(ParamSet::decode(&[0xde, 0xad, 0xbe, 0xef]), Err(SnnError::Decode(_))));
    // A few bytes, with a valid checksum, whose first length (the spec's hidden widths, after
    // magic, format, the actor's kind, the dimensions, the action limit and the populations:
    // 15 bytes) says 100 M entries: refused against the input's size, not allocated.
    let mut huge = bytes[..15].to_vec();
    huge.extend([0xfc]);
    huge.extend(100_000_000u32.to_le_bytes());
    huge.extend(crc32fast::hash(&huge).to_le_bytes());
    let err = ParamSet::decode(&huge).unwrap_err().to_string();
    assert!(err.contains("LimitExceeded"), "{err}");
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(ParamSet::decode(&trailing), Err(SnnError::Decode(_))));
    let mut wrong_magic = bytes.clone();
    wrong_magic[0] ^= 0xff;
    assert!(ParamSet::decode(&wrong_magic).is_err());
    // One flipped bit in a weight still decodes as bincode: the checksum catches it.
    let mut flipped = bytes.clone();
    let at = bytes.len() - 100;
    flipped[at] ^= 0x04;
    let err = ParamSet::decode(&flipped).unwrap_err().to_string();
    assert!(err.contains("checksum"), "{err}");
    // bincode's varints: the magic takes a marker byte and 4 bytes, then the format one byte.
    // (Formats 1 and 2 of earlier builds still load: the unit tests of `params`.)
    assert_eq!(bytes[5], 3);
    // Shapes must fit the spec.
    assert!(matches!(ParamSet::from_flat(spec.clone(), 0, vec![0.0; 11], vec![1.0; 11], vec![0.0; 5]), Err(SnnError::Shape(_))));
    assert!(matches!(ParamSet::from_flat(spec.clone(), 0, vec![0.0; 10], vec![1.0; 10], p.flat().to_vec()), Err(SnnError::Shape(_))));
    let mut nan = p.flat().to_vec();
    nan[7] = f32::NAN;
    assert!(matches!(ParamSet::from_flat(spec, 0, vec![0.0; 11], vec![1.0; 11], nan), Err(SnnError::Value(_))));
}

#[test]
fn layout_names_shapes_and_offsets() {
    let spec = PopSanSpec::new(11, 3, 1.0);
    let l = layout(&spec);
    let names: Vec<&str> = l.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["encoder.mean", "encoder.std", "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight", "layers.2.bias", "decoder.weight", "decoder.bias"]
    );
    assert_eq!(l[2].shape, vec![256, 110]);
    assert_eq!(l[6].shape, vec![30, 256]);
    assert!(l.windows(2).all(|w| w[1].offset == w[0].offset + w[0].len()));
    let p = ParamSet::init(&spec, 0).unwrap();
    assert_eq!(p.flat().len(), l.last().map(|t| t.offset + t.len()).unwrap());
    let means = p.tensor("encoder.mean").unwrap();
    for (k, m) in means[..10].iter().enumerate() {
        assert!((m - (-3.0 + 6.0 * k as f32 / 9.0)).abs() < 1e-6, "mean {k} = {m}");
    }
    assert_eq!(&means[10..20], &means[..10], "every observation dimension gets the same fields");
    assert!(p.tensor("encoder.std").unwrap().iter().all(|s| (s - 0.15f32.sqrt()).abs() < 1e-7));
}

#[test]
fn energy_follows_the_papers_conventions() {
    let spec = PopSanSpec::new(11, 3, 1.0);
    assert_eq!(ann_macs(&spec), 11 * 256 + 256 * 256 + 256 * 3);
    let p = tiny();
    let mut net = PopSan::new(&p).unwrap();
    let mut a = [0.0];
    net.act(&[0.0], &mut a).unwrap();
    let e = energy_per_inference(p.spec().spiking().unwrap(), net.last_counts());
    assert_eq!(e.sops, 14.0);
    assert_eq!(e.macs, 8.0);
    assert!((e.snn_pj - (14.0 * 0.9 + 8.0 * 4.6)).abs() < 1e-9);
    assert!((e.loihi_pj - (14.0 * 23.6 + 14.0 * 81.0)).abs() < 1e-9);
    assert_eq!(e.ann_macs, 6.0, "1·3 + 3·1");
    assert_eq!(e.ann_pj, 6.0 * 4.6);
}

/// A bounded fuzz run (cargo-fuzz's `paramset` target runs it unbounded): 3000 damaged
/// encodings, each an error or an actor that builds and acts — never a panic.
#[test]
fn damaged_paramsets_are_errors_or_usable_actors() {
    use spikerl_rng::{SplitMix, mutate};
    let spec = PopSanSpec::new(5, 2, 1.0);
    let p = ParamSet::init(&spec, 1).unwrap();
    let mut rng = SplitMix::new(77);
    let (mut loaded, valid) = (0, [p.encode(Precision::F32), p.encode(Precision::Bf16)]);
    for i in 0..3000 {
        let bytes = mutate::bytes(&mut rng, &valid[i % 2]);
        // Damage behind a recomputed checksum reaches the decoder's deeper checks.
        let bytes = if i % 3 == 0 && bytes.len() > 4 {
            let n = bytes.len() - 4;
            let mut b = bytes[..n].to_vec();
            b.extend(crc32fast::hash(&b).to_le_bytes());
            b
        } else {
            bytes
        };
        if let Ok(q) = ParamSet::decode(&bytes) {
            let mut actor = Policy::new(&q).unwrap();
            let mut action = vec![0.0; q.spec().act_dim()];
            actor.act(&vec![0.0; q.spec().obs_dim()], &mut action).unwrap();
            loaded += 1;
        }
    }
    assert!(loaded < 3000);
}


/// The dense actor: `tanh(W2·relu(W1·x + b1) + b2) × limit` on the normalised observation,
/// its parameters through the wire in both precisions, its operation counts.
#[test]
fn the_dense_actor_computes_its_mlp_and_travels_like_a_popsan() {
    use spikerl_snn::{ActorSpec, DenseSpec, Policy};
    let spec = DenseSpec { hidden: vec![2], ..DenseSpec::new(2, 1, 2.0) };
    // layers.0.weight [2, 2], layers.0.bias [2], layers.1.weight [1, 2], layers.1.bias [1].
    let flat = vec![1.0, -1.0, 0.5, 0.5, 0.0, -0.25, 2.0, -3.0, 0.1];
    let p = ParamSet::from_flat(spec.clone(), 4, vec![1.0, 0.0], vec![2.0, 1.0], flat).unwrap();
    assert_eq!(p.spec(), &ActorSpec::Dense(spec.clone()));
    let mut policy = Policy::new(&p).unwrap();
    let mut a = [0.0f32];
    policy.act(&[5.0, 1.0], &mut a).unwrap();
    // x = ((5 − 1)/2, (1 − 0)/1) = (2, 1); h = relu(2 − 1 + 0, 1 + 0.5 − 0.25) = (1, 1.25);
    // y = 2·1 − 3·1.25 + 0.1 = −1.65; a = 2·tanh(−1.65).
    assert!((a[0] - 2.0 * (-1.65f32).tanh()).abs() < 1e-6, "{}", a[0]);
    assert_eq!(policy.version(), 4);
    assert_eq!(policy.total_counts().dense_macs, 2 * 2 + 2, "multiply–accumulates of one action");
    // Observations past ±3 standard deviations are clipped, as the spiking actor's are.
    policy.act(&[1001.0, 0.0], &mut a).unwrap();
    let clipped = 2.0 * (2.0 * 3.0f32 - 3.0 * (0.5f32 * 3.0 - 0.25).max(0.0) + 0.1).tanh();
    assert!((a[0] - clipped).abs() < 1e-6);
    for precision in [Precision::F32, Precision::Bf16] {
        let q = ParamSet::decode(&p.encode(precision)).unwrap();
        assert_eq!(q.spec(), p.spec());
        assert!(q.flat().iter().zip(p.flat()).all(|(a, b)| (a - b).abs() <= 1e-2 * b.abs().max(1e-3)));
    }
    // A spiking engine refuses dense parameters with a reason; a wrong-sized observation is an error.
    assert!(PopSan::new(&p).is_err());
    assert!(policy.act(&[1.0], &mut a).is_err());
    let init = ParamSet::init(&spec, 7).unwrap();
    assert_eq!(init.flat().len(), 9);
    assert!(init.flat().iter().all(|w| w.abs() <= 1.0 / 2f32.sqrt()), "U(±1/√fan_in)");
}
