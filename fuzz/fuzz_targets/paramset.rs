//! ParamSet files and frames: a valid actor or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = spikerl_snn::ParamSet::decode(data) {
        // What decodes is usable: the actor (spiking or dense) builds and acts.
        let mut actor = spikerl_snn::Policy::new(&p).expect("a decoded ParamSet builds");
        let obs = vec![0.0; p.spec().obs_dim()];
        let mut action = vec![0.0; p.spec().act_dim()];
        let _ = actor.act(&obs, &mut action);
    }
});
