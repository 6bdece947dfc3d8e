//! The token meter on arbitrary upstream bytes, split into arbitrary chunks: it never panics,
//! forwards every byte it does not strip, and counts the same whatever the chunking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_quota::dialect::{Api, Framing, Meter};

const FRAMINGS: [Framing; 3] = [Framing::Ndjson, Framing::Sse, Framing::Json];

/// Feeds `chunks` and returns the usage and every byte passed on.
fn meter(api: Api, framing: Framing, strip: bool, chunks: &[&[u8]]) -> (String, Vec<u8>) {
    let mut m = Meter::new(api, framing, strip);
    let mut out = Vec::new();
    for chunk in chunks {
        match m.feed(chunk) {
            Some(rewritten) => out.extend_from_slice(&rewritten),
            None => out.extend_from_slice(chunk),
        }
        let _ = m.running_completion(llm_quota::dialect::TokenCounting::Tiktoken);
        let _ = m.cut_point(out.len());
    }
    let (usage, tail) = m.finish();
    if let Some(tail) = tail {
        out.extend_from_slice(&tail);
    }
    (format!("{usage:?}"), out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some((&split, body)) = rest.split_first() else {
        return;
    };
    let api = Api::ALL[usize::from(selector) % Api::ALL.len()];
    let framing = FRAMINGS[usize::from(selector / 16) % FRAMINGS.len()];
    let strip = selector & 0x80 != 0 && framing == Framing::Sse;
    let whole = meter(api, framing, strip, &[body]);
    // The same bytes in pieces of 1 to 32 bytes.
    let step = usize::from(split % 32) + 1;
    let pieces: Vec<&[u8]> = body.chunks(step).collect();
    let split_run = meter(api, framing, strip, &pieces);
    assert_eq!(whole, split_run, "the chunking changed the meter's result");
    if !strip {
        assert_eq!(
            whole.1, body,
            "the meter changed bytes it must pass through"
        );
    }
});
