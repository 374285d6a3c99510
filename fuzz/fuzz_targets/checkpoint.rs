//! Checkpoint files: a whole, checked checkpoint or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = spikerl_learner::checkpoint::Checkpoint::decode(data, "fuzz");
});
