//! What one call used, counted as its answer goes out, and charged exactly once however the call
//! ends: a [`Meter`] is a drop guard, so a stream the client drops, the request timeout stops or
//! the provider breaks off is charged for what it used (quota, usage log and metrics) with its
//! [`Outcome`], and a call that completes is charged at its end and not again on drop.
//!
//! What a call used is the provider's token counts when they arrived (they come at the end of a
//! stream), else an estimate: [`estimate_tokens`] of the request's system and user text for the
//! input, and of the text sent so far for the output. A call that produced nothing (no text, no
//! counts) is not charged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use super::Call;
use super::usage::{CacheUse, Outcome};
use crate::llm::Usage;
use crate::server::catalog::ModelDef;
use crate::server::routing::ServedCell;

/// Characters per token of the estimate: the usual rule of thumb for English text and code.
pub const CHARS_PER_TOKEN: u64 = 4;

/// Tokens of `chars` characters of text, estimated ([`CHARS_PER_TOKEN`] a token, rounded up).
pub fn estimate_tokens(chars: u64) -> u64 {
    chars.div_ceil(CHARS_PER_TOKEN)
}

/// How a metered call ends when it is dropped before [`Meter::end`]: set from outside the
/// stream, by whoever stops it (the request timeout), before dropping it.
#[derive(Clone, Default)]
pub struct Ending(Arc<AtomicU8>);

impl Ending {
    const CANCELLED: u8 = 0;
    const TIMEOUT: u8 = 1;

    /// The call is being stopped by the request timeout.
    pub fn timed_out(&self) {
        self.0.store(Self::TIMEOUT, Ordering::SeqCst);
    }

    fn outcome(&self) -> Outcome {
        match self.0.load(Ordering::SeqCst) {
            Self::CANCELLED => Outcome::Cancelled,
            _ => Outcome::Timeout,
        }
    }
}

/// Whether a metered call was answered from the response cache: set by the cache
/// ([`crate::server::cache`]) before it replays the answer. Such a call used no provider tokens,
/// so it is charged 0 of each and its usage record says `cache: hit`.
#[derive(Clone, Default)]
pub struct CacheHit(Arc<AtomicBool>);

impl CacheHit {
    /// The answer of this call comes from the cache.
    pub fn mark(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_hit(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The usage of one call so far; charged once, at [`Meter::end`] or on drop.
pub struct Meter {
    call: Call,
    model: ModelDef,
    input_estimate: u64,
    output_chars: u64,
    usage: Option<Usage>,
    ending: Ending,
    cache_hit: CacheHit,
    charged: bool,
    /// The model and deployment that answered, when the call is routed.
    served: Option<ServedCell>,
}

impl Meter {
    /// Meter `call` to `model` whose request has `input_chars` characters of system and user
    /// text.
    pub fn new(call: Call, model: ModelDef, input_chars: u64) -> Meter {
        Meter {
            call,
            model,
            input_estimate: estimate_tokens(input_chars),
            output_chars: 0,
            usage: None,
            ending: Ending::default(),
            cache_hit: CacheHit::default(),
            charged: false,
            served: None,
        }
    }

    /// Charge the model and deployment `served` holds when the call ends (a fallback's price,
    /// and the deployment in the usage record), not the model asked for.
    pub fn following(mut self, served: ServedCell) -> Meter {
        self.served = Some(served);
        self
    }

    /// The model charged, and the deployment that served it.
    fn charged_model(&self) -> (ModelDef, Option<String>) {
        if self.cache_hit.is_hit() {
            // No deployment was called.
            return (self.model.clone(), None);
        }
        match &self.served {
            Some(cell) => {
                let s = crate::server::routing::served(cell);
                (s.model, Some(s.deployment))
            }
            None => (self.model.clone(), None),
        }
    }

    /// The handle that marks how this call ends if it is dropped.
    pub fn ending(&self) -> Ending {
        self.ending.clone()
    }

    /// The handle that marks this call as answered from the cache.
    pub fn cache_hit(&self) -> CacheHit {
        self.cache_hit.clone()
    }

    /// Text of the answer went out (the first piece from the provider is timed).
    pub fn text(&mut self, text: &str) {
        if !self.cache_hit.is_hit() {
            self.call.chunk(&self.model);
        }
        self.output_chars += text.chars().count() as u64;
    }

    /// The provider's token counts arrived.
    pub fn usage(&mut self, usage: Usage) {
        self.usage = Some(usage);
    }

    /// The provider failed (its error kind, for the metrics).
    pub fn failed(&self, kind: &str) {
        self.call.failed(&self.charged_model().0, kind);
    }

    /// Counts a provider failure (or the timeout) of this call from outside the stream.
    pub fn failure(&self) -> impl Fn(&str) + Send + 'static {
        let (call, model) = (self.call.clone(), self.model.clone());
        move |kind| call.failed(&model, kind)
    }

    /// Input and output tokens used so far; `None` when nothing was produced, and none of
    /// either for an answer from the cache.
    pub fn used(&self) -> Option<(u64, u64)> {
        if self.cache_hit.is_hit() {
            return Some((0, 0));
        }
        if self.output_chars == 0 && self.usage.is_none() {
            return None;
        }
        let counted = self.usage.unwrap_or_default();
        let input = counted.input_tokens.map_or(self.input_estimate, u64::from);
        let output = counted
            .output_tokens
            .map_or_else(|| estimate_tokens(self.output_chars), u64::from);
        Some((input, output))
    }

    /// Charge what the call used, ended with `outcome`; later calls and the drop do nothing.
    pub fn end(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.charged, true) {
            return;
        }
        if let Some((input, output)) = self.used() {
            let cache = self.cache_hit.is_hit().then_some(CacheUse::Hit);
            let (model, deployment) = self.charged_model();
            self.call
                .charge(&model, deployment, input, output, outcome, cache);
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        let outcome = self.ending.outcome();
        self.end(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_rounds_up() {
        assert_eq!(estimate_tokens(0), 0);
        assert_eq!(estimate_tokens(1), 1);
        assert_eq!(estimate_tokens(8), 2);
        assert_eq!(estimate_tokens(9), 3);
    }
}
