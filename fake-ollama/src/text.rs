//! Deterministic answer text, prompt token counts and embedding vectors.
//!
//! Everything here is a pure function of the request (and of [`crate::FakeConfig::chunks`]),
//! so tests of the gateway can assert exact token numbers.

use serde_json::Value;

/// The answer vocabulary. The first piece is `"Hello"`; every later piece is a common English
/// word with a leading space. Each piece is exactly one `cl100k_base` token, and so is each piece
/// inside the concatenated answer (the tokenizer's pre-split keeps `" word"` runs apart), so the
/// answer of `n` chunks is exactly `n` tokens (checked by a unit test with `tiktoken-rs`).
const WORDS: &[&str] = &[
    "Hello", " world", " from", " fake", " the", " of", " and", " to", " in", " is", " it",
    " that", " for", " on", " with", " as", " was", " at", " by", " be", " this", " are", " or",
    " not", " but", " have", " all", " can", " one", " more", " time", " new", " like", " just",
    " some", " what", " when", " there", " will", " out", " up", " about", " into", " than",
    " them", " only", " other", " then", " also", " after", " first", " well", " way", " many",
    " over", " even", " most", " where", " much", " good", " very", " make", " know", " back",
];

/// The `i`-th content piece of an answer (0-based). After the vocabulary is used up, the pieces
/// cycle through it again, skipping `"Hello"` (which has no leading space).
pub(crate) fn word(i: usize) -> &'static str {
    if i < WORDS.len() {
        WORDS[i]
    } else {
        WORDS[1 + (i - 1) % (WORDS.len() - 1)]
    }
}

/// The content pieces of a streamed answer of `chunks` chunks: `["Hello", " world", " from",
/// " fake", " the", " of", ...]`. Each piece is one `cl100k_base` token, so the answer is exactly
/// `chunks` tokens, and `eval_count` / `completion_tokens` / `output_tokens` equal `chunks`
/// (or the `num_predict` / `max_tokens` cap when that is smaller).
pub fn answer_words(chunks: usize) -> Vec<String> {
    (0..chunks).map(|i| word(i).to_string()).collect()
}

/// The full answer text of `chunks` chunks (all pieces concatenated).
pub fn answer_text(chunks: usize) -> String {
    (0..chunks).map(word).collect()
}

/// The answer text, kept once per server: the full text for the configured chunk count and the
/// byte offset where each prefix ends, so a capped answer is a slice, not a new string.
pub(crate) struct Answer {
    text: String,
    /// `ends[k]` = byte length of the first `k` pieces.
    ends: Vec<usize>,
    /// Each piece as a JSON string literal (quoted, escaped), for the streaming fast paths.
    json: Vec<String>,
}

impl Answer {
    pub(crate) fn new(chunks: usize) -> Answer {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(chunks + 1);
        let mut json = Vec::with_capacity(chunks);
        ends.push(0);
        for i in 0..chunks {
            text.push_str(word(i));
            ends.push(text.len());
            json.push(serde_json::to_string(word(i)).unwrap_or_else(|_| "\"\"".to_string()));
        }
        Answer { text, ends, json }
    }

    /// Piece `i` as a JSON string literal (`"\" world\""`); `""` past the configured chunks.
    pub(crate) fn word_json(&self, i: usize) -> &str {
        self.json.get(i).map(String::as_str).unwrap_or("\"\"")
    }

    /// The first `n` pieces concatenated (`n` is clamped to the configured chunk count).
    pub(crate) fn prefix(&self, n: usize) -> &str {
        let n = n.min(self.ends.len().saturating_sub(1));
        let end = self.ends.get(n).copied().unwrap_or(0);
        self.text.get(..end).unwrap_or("")
    }
}

/// Deterministic prompt token count of a request body (the fake's `prompt_eval_count`, and so
/// `prompt_tokens` / `input_tokens` on the compatibility routes).
///
/// Rule: the number of whitespace-separated words (`str::split_whitespace`) in the prompt text,
/// where the prompt text is the value of the top-level fields `messages`, `prompt`, `system`,
/// `instructions` and `input`, read recursively as follows:
/// - a string counts its words;
/// - a number counts as one word (so OpenAI token-array inputs count one per token);
/// - an array counts the sum of its elements;
/// - an object counts only its `content` and `text` fields (so a chat message counts its
///   `content`, whether a string or a list of `{"type":"text","text":..}` parts, and `role`,
///   `name`, `tool_calls`, images etc. count nothing);
/// - anything else counts zero.
///
/// Nothing is added for roles or a chat template. Example: `{"messages":[{"role":"user",
/// "content":"why is the sky blue"}]}` → 5; `{"prompt":"hi there","system":"be brief"}` → 4.
pub fn prompt_eval_count(body: &Value) -> u64 {
    const FIELDS: [&str; 5] = ["messages", "prompt", "system", "instructions", "input"];
    FIELDS
        .iter()
        .filter_map(|f| body.get(*f))
        .map(words_in)
        .sum()
}

fn words_in(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.split_whitespace().count() as u64,
        Value::Number(_) => 1,
        Value::Array(items) => items.iter().map(words_in).sum(),
        Value::Object(map) => {
            map.get("content").map(words_in).unwrap_or(0)
                + map.get("text").map(words_in).unwrap_or(0)
        }
        _ => 0,
    }
}

/// Number of floats in every fake embedding vector.
pub const EMBEDDING_DIMS: usize = 8;

/// A deterministic, L2-normalised embedding of `text` (a function of the text only).
pub fn embedding(text: &str) -> [f32; EMBEDDING_DIMS] {
    let mut state = fnv1a(text.as_bytes());
    let mut v = [0f32; EMBEDDING_DIMS];
    let mut norm = 0f32;
    for x in v.iter_mut() {
        state = splitmix64(state);
        // 24 random bits mapped to [-1, 1).
        *x = ((state >> 40) as f32 / (1u64 << 23) as f32) - 1.0;
        norm += *x * *x;
    }
    let norm = norm.sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
    v
}

/// 64-bit FNV-1a hash.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    /// Every answer piece, and every answer as a whole, is exactly one cl100k_base token per chunk.
    #[test]
    fn answer_pieces_are_single_cl100k_tokens() {
        let bpe = tiktoken_rs::cl100k_base().unwrap();
        for w in answer_words(WORDS.len() + 5) {
            assert_eq!(bpe.encode_ordinary(&w).len(), 1, "piece {w:?}");
        }
        for n in [0usize, 1, 2, 10, 63, 64, 65, 200] {
            let text = answer_text(n);
            assert_eq!(bpe.encode_ordinary(&text).len(), n, "answer of {n} chunks");
            assert_eq!(bpe.encode_with_special_tokens(&text).len(), n);
        }
    }

    /// The answer starts with the documented pieces and cycles without reusing "Hello".
    #[test]
    fn answer_words_are_stable() {
        assert_eq!(answer_words(4), ["Hello", " world", " from", " fake"]);
        let long = answer_words(WORDS.len() + 2);
        assert_eq!(long[WORDS.len()], " world");
        assert_eq!(long[WORDS.len() + 1], " from");
        let a = Answer::new(10);
        assert_eq!(a.prefix(3), "Hello world from");
        assert_eq!(a.prefix(99), answer_text(10));
        assert_eq!(a.prefix(0), "");
    }

    /// prompt_eval_count follows the documented word-count rule for every request dialect.
    #[test]
    fn prompt_eval_count_rule() {
        let chat = json!({"model":"m","messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":"why is the sky blue"},
            {"role":"user","content":[{"type":"text","text":"two words"},{"type":"image_url","image_url":{"url":"x y z"}}]}
        ]});
        assert_eq!(prompt_eval_count(&chat), 2 + 5 + 2);
        assert_eq!(
            prompt_eval_count(&json!({"prompt":"hi  there\n you","system":"sys tem"})),
            5
        );
        assert_eq!(prompt_eval_count(&json!({"input":["a b","c"]})), 3);
        assert_eq!(prompt_eval_count(&json!({"input":"a b c d"})), 4);
        assert_eq!(prompt_eval_count(&json!({"input":[[1,2,3]]})), 3);
        assert_eq!(
            prompt_eval_count(
                &json!({"instructions":"x y","input":[{"role":"user","content":[{"type":"input_text","text":"p q r"}]}]})
            ),
            5
        );
        assert_eq!(
            prompt_eval_count(
                &json!({"system":[{"type":"text","text":"a b"}],"messages":[{"role":"user","content":"c"}]})
            ),
            3
        );
        assert_eq!(
            prompt_eval_count(&json!({"model":"m","options":{"x":"a b"}})),
            0
        );
    }

    /// Embeddings are deterministic, normalised and differ between texts.
    #[test]
    fn embeddings_are_deterministic() {
        let a = embedding("hello");
        assert_eq!(a, embedding("hello"));
        assert_ne!(a, embedding("world"));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}
