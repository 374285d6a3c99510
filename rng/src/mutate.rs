//! Mutations of valid inputs, for the bounded property runs the test suite makes of every
//! parser that reads a file or the network (cargo-fuzz, in `fuzz/`, runs the same parsers
//! unbounded).

use crate::SplitMix;

/// `input` changed in 1–4 places: a flipped bit, a random byte, bytes inserted (random, or a
/// copy of another part), a range deleted, a truncation.
pub fn bytes(rng: &mut SplitMix, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if at < out.len() => out[at] ^= 1 << rng.below(8),
            1 if at < out.len() => out[at] = rng.next_u64() as u8,
            2 => {
                let extra: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next_u64() as u8).collect();
                out.splice(at..at, extra);
            }
            3 if !out.is_empty() => {
                let from = rng.below(out.len());
                let piece: Vec<u8> = out[from..(from + 1 + rng.below(32)).min(out.len())].to_vec();
                out.splice(at..at, piece);
            }
            4 => {
                let end = (at + 1 + rng.below(32)).min(out.len());
                out.drain(at..end);
            }
            _ => out.truncate(at),
        }
    }
    out
}

/// `text` changed in 1–4 places at character boundaries, with pieces of `vocabulary` (the
/// tokens a parser of that language cares about) inserted, replacing or deleting text.
pub fn text(rng: &mut SplitMix, text: &str, vocabulary: &[&str]) -> String {
    let mut out: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        let word: Vec<char> = vocabulary[rng.below(vocabulary.len())].chars().collect();
        match rng.below(3) {
            0 => {
                out.splice(at..at, word);
            }
            1 => {
                let end = (at + 1 + rng.below(8)).min(out.len());
                out.splice(at..end, word);
            }
            _ => {
                let end = (at + 1 + rng.below(24)).min(out.len());
                out.drain(at..end);
            }
        }
    }
    out.into_iter().collect()
}
