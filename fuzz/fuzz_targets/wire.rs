//! The wire decoder on arbitrary streams, fed in arbitrary pieces: every input is messages or
//! an error, never a panic or an allocation beyond the frame limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spikerl_net::wire::{ActorMessage, FrameDecoder, LearnerMessage};

fuzz_target!(|data: &[u8]| {
    // The first byte picks where the stream is cut, the rest is the stream.
    let Some((&cut, stream)) = data.split_first() else { return };
    let cut = (cut as usize).min(stream.len());
    for learner_side in [true, false] {
        let mut decoder = FrameDecoder::new();
        for piece in [&stream[..cut], &stream[cut..]] {
            decoder.push(piece);
            loop {
                let next = if learner_side { decoder.next_message::<ActorMessage>().map(|m| m.is_some()) } else { decoder.next_message::<LearnerMessage>().map(|m| m.is_some()) };
                match next {
                    Ok(true) => continue,
                    Ok(false) | Err(_) => break,
                }
            }
        }
    }
});
