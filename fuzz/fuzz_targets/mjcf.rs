//! MJCF task files: a model that steps, or an error naming what is wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spikerl_envs::Env;
use spikerl_envs::locomotion::{self, ModelSource};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let owned: Box<str> = text.into();
    // SAFETY: `Embedded` wants a `&'static str`; the text outlives everything built from it
    // here (the spec and the env are dropped at the end of this block, `owned` after them).
    let xml: &'static str = unsafe { &*(owned.as_ref() as *const str) };
    {
        if let Ok(mut env) = locomotion::custom(ModelSource::Embedded { name: "fuzz.xml", xml }).build() {
            env.reset(Some(0));
            let action = vec![0.5; env.spec().act_dim()];
            for _ in 0..5 {
                if env.step(&action).is_err() {
                    break;
                }
            }
        }
    }
    drop(owned);
});
