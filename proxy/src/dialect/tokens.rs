//! `cl100k_base` token counting, one-shot and incremental.
//!
//! BPE counts are not additive across arbitrary splits, so text is only ever split at *safe
//! cuts*: byte positions that are a pre-tokenizer piece boundary whatever comes before or
//! after them, so that encoding the two sides separately gives exactly the one-shot count.
//! For the `cl100k_base` pattern
//! `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
//! (no look-behind; the only look-ahead is `(?!\S)` after whitespace) these are, for a cut
//! before byte `i`:
//! - `text[i] == ' '` and the character before it is not whitespace (no piece ends in a space
//!   that follows a non-space; a piece may only *start* with one);
//! - `text[i-1] == '\n'` and the character at `i` is not whitespace (a newline never joins a
//!   following non-space);
//! - `text[i-1]` is an ASCII letter and `text[i]` an ASCII non-letter (a letter run ends there
//!   and no piece continues a letter with anything else).
//!
//! The quadratic BPE merge of tiktoken-rs 0.7 makes one long piece (a run of letters, digits,
//! punctuation or spaces with no safe cut) cost O(n²). Any stretch longer than [`MAX_RUN`]
//! bytes without a safe cut is therefore cut by force, at a character boundary, which costs at
//! most about one token per forced cut and keeps the work linear in the input length.
//!
//! Both [`count_tokens`] and [`TokenCounter`] look at cut candidates position by position with
//! the same rules, so a text counted in one piece and the same text pushed in any split give
//! the same total.

use tiktoken_rs::CoreBPE;

/// Longest stretch of text without a safe cut that is encoded as is.
pub(crate) const MAX_RUN: usize = 512;

/// Pending text is encoded once this many bytes precede a safe cut (bounds the memory held per
/// stream and the size of one `encode_ordinary` call).
const BATCH: usize = 4096;

fn bpe() -> &'static CoreBPE {
    tiktoken_rs::cl100k_base_singleton()
}

/// Builds the `cl100k_base` tables (tens of milliseconds, tens of MB); call once at startup so
/// the first request does not pay for it.
pub fn warm_tokenizer() {
    let _ = bpe().encode_ordinary("warm up");
}

/// Number of `cl100k_base` tokens in `text` (special tokens are counted as ordinary text).
///
/// Linear in the length of `text`, also for adversarial input (see the module docs); a very
/// long run without any safe cut may be counted a token or so high per [`MAX_RUN`] bytes.
pub fn count_tokens(text: &str) -> u64 {
    if text.len() <= MAX_RUN {
        // No forced cut and no batch can occur below MAX_RUN: same result, no scan.
        return encode_len(text);
    }
    let mut scan = Scan::default();
    let mut total = 0;
    scan.advance(text, 1, &mut total);
    total + encode_len(&text[scan.region_start..])
}

fn encode_len(text: &str) -> u64 {
    if text.is_empty() {
        0
    } else {
        bpe().encode_ordinary(text).len() as u64
    }
}

/// Cut-point state over a text (positions are byte offsets into it).
#[derive(Debug, Default)]
struct Scan {
    /// Start of the text not yet encoded (always a cut).
    region_start: usize,
    /// The latest cut seen, safe or forced.
    last_cut: usize,
}

impl Scan {
    /// Examines cut candidates before the bytes `from..text.len()`, encoding whole regions
    /// (up to a forced cut, or up to a safe cut once [`BATCH`] bytes are pending) into `total`.
    fn advance(&mut self, text: &str, from: usize, total: &mut u64) {
        let bytes = text.as_bytes();
        for i in from.max(1)..bytes.len() {
            if is_safe_cut(text, i) {
                self.last_cut = i;
                if i - self.region_start >= BATCH {
                    *total += encode_len(&text[self.region_start..i]);
                    self.region_start = i;
                }
            } else if i - self.last_cut >= MAX_RUN && text.is_char_boundary(i) {
                *total += encode_len(&text[self.region_start..i]);
                self.region_start = i;
                self.last_cut = i;
            }
        }
    }
}

/// ASCII bytes matched by `\s` (Unicode `White_Space`): `\t \n \v \f \r` and space.
fn is_ascii_ws(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | b' ')
}

/// Whether a cut before byte `i` (0 < i < len) is safe; see the module docs.
fn is_safe_cut(text: &str, i: usize) -> bool {
    let bytes = text.as_bytes();
    let cur = bytes[i];
    let prev = bytes[i - 1];
    if cur == b' ' {
        return if prev < 0x80 {
            !is_ascii_ws(prev)
        } else {
            // `i` follows a whole multi-byte character: decode it.
            text[..i]
                .chars()
                .next_back()
                .is_some_and(|c| !c.is_whitespace())
        };
    }
    if prev == b'\n' {
        return if cur < 0x80 {
            !is_ascii_ws(cur)
        } else {
            text[i..].chars().next().is_some_and(|c| !c.is_whitespace())
        };
    }
    prev.is_ascii_alphabetic() && cur < 0x80 && !cur.is_ascii_alphabetic()
}

/// Incremental token count of a text that arrives in pieces (e.g. streamed deltas): encodes
/// only up to a safe cut and keeps the rest for the next piece.
#[derive(Debug, Default)]
pub(crate) struct TokenCounter {
    /// Text not yet encoded (starts at a cut).
    pending: String,
    scan: Scan,
    total: u64,
    /// Non-empty pieces pushed so far.
    pieces: u64,
}

impl TokenCounter {
    /// Appends a piece of the text.
    pub(crate) fn push(&mut self, piece: &str) {
        if piece.is_empty() {
            return;
        }
        self.pieces += 1;
        let from = self.pending.len();
        self.pending.push_str(piece);
        self.scan.advance(&self.pending, from, &mut self.total);
        let done = self.scan.region_start;
        if done > 0 {
            self.pending.drain(..done);
            self.scan.region_start = 0;
            self.scan.last_cut -= done;
        }
    }

    /// Tokens of the text encoded so far (excludes the pending tail).
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Non-empty pieces pushed so far.
    pub(crate) fn pieces(&self) -> u64 {
        self.pieces
    }

    /// Encodes the pending tail and returns the total; the counter can go on afterwards as if
    /// the text had ended here.
    pub(crate) fn finish(&mut self) -> u64 {
        self.total += encode_len(&self.pending);
        self.pending.clear();
        self.scan = Scan::default();
        self.total
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const SAMPLES: &[&str] = &[
        "The quick brown fox jumps over the lazy dog. It's 12:45pm, isn't it? I'll say we've won.",
        "Hello!  How   are you?\n\nI'm fine, thanks.\r\n\r\n  Indented line\n\tTabbed\n",
        "fn main() {\n    let x = vec![1, 2, 3];\n    println!(\"{:?}\", x.iter().map(|v| v * 2).collect::<Vec<_>>());\n}\n",
        "{\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\",\"content\":\"Why is the sky blue?\"}],\"n\":12345678}",
        "Numbers 1234567890 and 3.14159, dates 2026-08-21, ids abc123def456, hex 0xDEADbeef.",
        "Ünïcödé text: café, naïve, jalapeño; Привет, как дела? Γειά σου κόσμε! 你好，世界。こんにちは 세계",
        "Emoji 👍🏽 and symbols ™ © ≥ ≤ → ← «quotes» — dashes – and ellipsis…  NBSP:\u{a0}here \u{3000}wide",
        "Markdown:\n# Title\n\n- item one\n- item two\n\n```python\ndef f(x):\n    return x ** 2\n```\n> quote\n",
        "URL https://example.com/path?query=1&b=two#frag and email someone@example.org!!!",
        "MiXeD CaSe DON'T WON'T She'S THEY'RE we'Ve I'M you'LL he'D   trailing spaces   ",
        "    leading spaces\n\n\n\nmany newlines\r\r\nodd\u{85}nel\u{2028}sep ",
        "a\n b\n  c\n\td\n\n e",
    ];

    fn oneshot(text: &str) -> u64 {
        bpe().encode_ordinary(text).len() as u64
    }

    /// Splitting at every safe cut at once and summing gives exactly the one-shot count:
    /// the cut rules are sound for a varied corpus (prose, code, JSON, numbers, Unicode,
    /// unusual whitespace).
    #[test]
    fn safe_cuts_are_additive() {
        for text in SAMPLES {
            let mut sum = 0;
            let mut start = 0;
            for i in 1..text.len() {
                if text.is_char_boundary(i) && is_safe_cut(text, i) {
                    sum += encode_len(&text[start..i]);
                    start = i;
                }
            }
            sum += encode_len(&text[start..]);
            assert_eq!(sum, oneshot(text), "{text:?}");
        }
    }

    /// Deterministic pseudo-random generator for the property tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            usize::try_from(self.0 % n as u64).unwrap()
        }
    }

    /// Pieces chosen to hit every branch of the pre-tokenizer pattern: letters (ASCII and
    /// not), digits, contractions, punctuation, combining marks, every kind of whitespace.
    const ATOMS: &[&str] = &[
        "a", "b", "Z", "é", "ж", "中", "😀", "1", "9", " ", "  ", "\n", "\r\n", "\r", "\t", "'s",
        "'LL", "'", "!", ".", "-", "_", "{", "\"", "\u{a0}", "\u{301}", "\u{3000}", "\u{b}",
        "\u{85}", "ſ", "ab", "the", " the", "\n\n", " \n",
    ];

    fn random_text(rng: &mut Rng, atoms: usize) -> String {
        (0..atoms).map(|_| ATOMS[rng.next(ATOMS.len())]).collect()
    }

    /// On thousands of random strings over tricky pieces, splitting at every safe cut gives
    /// exactly the one-shot count: the cut rules hold beyond the sample corpus.
    #[test]
    fn safe_cuts_are_additive_on_random_text() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..3000 {
            let len = 1 + rng.next(40);
            let text = random_text(&mut rng, len);
            let mut sum = 0;
            let mut start = 0;
            for i in 1..text.len() {
                if text.is_char_boundary(i) && is_safe_cut(&text, i) {
                    sum += encode_len(&text[start..i]);
                    start = i;
                }
            }
            sum += encode_len(&text[start..]);
            assert_eq!(sum, oneshot(&text), "{text:?}");
        }
    }

    /// With long runs that force cuts, count_tokens and the incremental counter fed in
    /// random pieces still agree exactly (forced cuts depend only on positions).
    #[test]
    fn forced_cuts_are_split_independent() {
        let mut rng = Rng(12345);
        for _ in 0..40 {
            let mut text = String::new();
            for _ in 0..1 + rng.next(6) {
                let len = 1 + rng.next(30);
                text.push_str(&random_text(&mut rng, len));
                let len = 1 + rng.next(2);
                let atom = random_text(&mut rng, len);
                text.push_str(&atom.repeat(100 + rng.next(1500)));
            }
            let expected = count_tokens(&text);
            let mut c = TokenCounter::default();
            let mut rest = text.as_str();
            while !rest.is_empty() {
                let mut n = (1 + rng.next(300)).min(rest.len());
                while !rest.is_char_boundary(n) {
                    n += 1;
                }
                c.push(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(c.finish(), expected);
        }
    }

    /// count_tokens equals tiktoken's one-shot count for ordinary text, also when the text
    /// is longer than a batch (several encode calls).
    #[test]
    fn count_tokens_matches_oneshot_for_ordinary_text() {
        for text in SAMPLES {
            assert_eq!(count_tokens(text), oneshot(text), "{text:?}");
        }
        let long = SAMPLES.concat().repeat(20);
        assert!(long.len() > 4 * BATCH);
        assert_eq!(count_tokens(&long), oneshot(&long));
        assert_eq!(count_tokens(""), 0);
    }

    /// The incremental counter fed in pieces of every size (also splitting UTF-8 characters'
    /// neighbourhoods and words) equals a one-shot count of the joined text.
    #[test]
    fn incremental_equals_oneshot() {
        let text = SAMPLES.concat().repeat(3);
        let expected = oneshot(&text);
        for step in [1usize, 2, 3, 5, 7, 16, 100, 1000, 5000] {
            let mut c = TokenCounter::default();
            let mut rest = text.as_str();
            while !rest.is_empty() {
                let mut n = step.min(rest.len());
                while !rest.is_char_boundary(n) {
                    n += 1;
                }
                c.push(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(c.finish(), expected, "step {step}");
        }
    }

    /// Typical streamed deltas (one model token each) add up to the one-shot count.
    #[test]
    fn streamed_deltas_equal_oneshot() {
        let deltas = [
            "Hello",
            "!",
            " I",
            "'m",
            " an",
            " AI",
            " assistant",
            ".",
            " The",
            " sky",
            " is",
            " blue",
            " because",
            " of",
            " Ray",
            "leigh",
            " scattering",
            ".\n\n",
            "1",
            ".",
            " Sun",
            "light",
            "…",
            "\n",
            "```",
            "rust",
            "\n",
            "let",
            " x",
            " =",
            " 42",
            ";",
        ];
        let mut c = TokenCounter::default();
        for d in deltas {
            c.push(d);
        }
        assert_eq!(c.finish(), oneshot(&deltas.concat()));
    }

    /// A 100 KB run of letters without spaces (quadratic for plain BPE) is counted quickly,
    /// one-shot and streamed, with the same result both ways and close to the true count.
    #[test]
    fn long_run_without_spaces_does_not_hang() {
        let run: String = (0..100_000)
            .map(|i| (b'a' + (i * 7 % 26) as u8) as char)
            .collect();
        let started = std::time::Instant::now();
        let one = count_tokens(&run);
        let mut c = TokenCounter::default();
        for piece in run.as_bytes().chunks(333) {
            c.push(std::str::from_utf8(piece).unwrap());
        }
        let streamed = c.finish();
        assert_eq!(one, streamed);
        assert!(one > 10_000, "{one}");
        let spaces = " ".repeat(100_000);
        assert!(count_tokens(&spaces) > 0);
        let digits = "7".repeat(100_000);
        assert!(count_tokens(&digits) >= 33_333);
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    }
}
