//! Request inspection on arbitrary bodies for every counted API: it never panics; it either
//! parses (and a rewritten body is still JSON) or explains with a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_quota::dialect::{inspect_request, set_output_limit, Api, KeepAlive, Rules};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let api = Api::ALL[usize::from(selector) % Api::ALL.len()];
    let inject_usage = selector & 0x80 != 0;
    let rules = Rules {
        default_model: "llama3",
        inject_usage,
        image_tokens: 768,
        keep_alive: KeepAlive::default(),
    };
    match inspect_request(api, body, &rules) {
        Ok(info) => {
            if let Some(rewritten) = &info.body {
                assert!(
                    serde_json_valid(rewritten),
                    "a rewritten body is not JSON any more"
                );
            }
            let source = info.body.as_deref().unwrap_or(body);
            if let Some(limited) = set_output_limit(api, source, u64::from(selector) + 1) {
                assert!(
                    serde_json_valid(&limited),
                    "the output limit broke the JSON"
                );
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});

fn serde_json_valid(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
}
