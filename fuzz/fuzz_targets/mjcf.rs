//! MJCF task files: a model that steps, or an error naming what is wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spikerl_envs::Env;
use spikerl_envs::locomotion::{self, ModelSource};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let xml: &'static str = Box::leak(text.to_string().into_boxed_str());
    if let Ok(mut env) = locomotion::custom(ModelSource::Embedded { name: "fuzz.xml", xml }).build() {
        env.reset(Some(0));
        let action = vec![0.5; env.spec().act_dim()];
        for _ in 0..5 {
            if env.step(&action).is_err() {
                break;
            }
        }
    }
});
