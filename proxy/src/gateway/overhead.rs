//! What Ollama counts in a prompt beyond the gateway's estimate, learned per model, for
//! `upstream` counting.
//!
//! In `upstream` mode a request is charged Ollama's `prompt_eval_count`, which counts the
//! prompt as the model's chat template renders it (role markers, a system prompt of the
//! Modelfile: 24 more tokens for one word with a small template), in the model's own
//! tokenizer. Admission only has the gateway's tiktoken count of the request. Were the room for
//! the answer computed from that alone, the last answer before a limit could be generated past
//! it, and the commit (which never passes a limit) would leave those tokens uncharged. So the
//! gateway adds, to each request's prompt estimate, the least that Ollama's count has exceeded
//! the estimate for that model on this instance: the template's share, which every request
//! pays, and not the tokenizers' differences on one odd prompt (taking the least keeps one key's
//! gibberish from shrinking everyone's room). Before the first answer of a model it adds
//! nothing.
//!
//! Only the chat routes learn and use it: they always go through the model's template, where
//! `/api/generate` and `/v1/completions` may not (`raw`, a request's own `template`), and an
//! embedding has none.

use std::collections::HashMap;

use parking_lot::RwLock;

use crate::dialect::Api;

/// Whether `api` always renders its prompt through the model's chat template.
pub fn applies(api: Api) -> bool {
    matches!(
        api,
        Api::Chat | Api::OpenAiChat | Api::Responses | Api::Messages
    )
}

/// Models remembered at most (the configured hosts' models are far fewer).
const MAX_MODELS: usize = 4096;

#[derive(Default)]
pub struct PromptOverhead {
    by_model: RwLock<HashMap<String, u64>>,
}

impl PromptOverhead {
    /// Tokens to add to a request's prompt estimate for `model`.
    pub fn of(&self, model: &str) -> u64 {
        self.by_model.read().get(model).copied().unwrap_or(0)
    }

    /// An answer of `model` whose prompt the gateway estimated at `estimate` tokens and Ollama
    /// counted as `reported`.
    pub fn learn(&self, model: &str, estimate: u64, reported: u64) {
        let excess = reported.saturating_sub(estimate);
        if self
            .by_model
            .read()
            .get(model)
            .is_some_and(|known| *known <= excess)
        {
            return;
        }
        let mut by_model = self.by_model.write();
        let full = by_model.len() >= MAX_MODELS;
        match by_model.get_mut(model) {
            Some(known) => *known = (*known).min(excess),
            None if !full => {
                by_model.insert(model.to_owned(), excess);
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The least excess seen, never below zero; nothing before the first answer.
    #[test]
    fn keeps_the_least_excess() {
        let o = PromptOverhead::default();
        assert_eq!(o.of("m"), 0);
        o.learn("m", 1, 25);
        assert_eq!(o.of("m"), 24);
        o.learn("m", 10, 80);
        assert_eq!(o.of("m"), 24, "one odd prompt does not raise it");
        o.learn("m", 30, 20);
        assert_eq!(o.of("m"), 0, "nor can it go below zero");
        assert_eq!(o.of("other"), 0);
    }
}
