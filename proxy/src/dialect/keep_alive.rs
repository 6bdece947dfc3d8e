//! `keep_alive` on the native routes: how long Ollama keeps the model in memory after the
//! request. A key holder must not pin a model in a shared GPU for good, nor evict a model that
//! other keys are using, so the gateway bounds it ([`KeepAlive`]).
//!
//! Ollama reads the field as its `api.Duration` (`api/types.go`, `Duration.UnmarshalJSON`): a
//! number is seconds, a string is Go's `time.ParseDuration`, and a negative value of either
//! means "forever". `0` with an empty prompt (or empty `messages`) unloads the model at once
//! (`server/routes.go`, `done_reason: "unload"`); with a prompt it unloads after the answer.
//! Any value under a nanosecond is 0 to Ollama (`time.Duration(t * 1e9)`), and a few
//! nanoseconds unload the model as soon as it is idle (`server/sched.go`): so the floor is not
//! 0 but `ollama.min_keep_alive`.

/// The operator's bounds on `keep_alive` (`ollama.max_keep_alive`, `ollama.min_keep_alive`,
/// `ollama.allow_unload`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    /// Longer (or negative, i.e. forever) is replaced by this many seconds.
    pub max_seconds: u64,
    /// Shorter (0, an unload, included) is removed so that the host's default applies,
    /// unless `allow_unload`.
    pub min_seconds: u64,
    /// Whether short values and `keep_alive: 0` (unload now) are passed on.
    pub allow_unload: bool,
}

impl Default for KeepAlive {
    /// One hour at most, five minutes (Ollama's own default) at least, no unloading: the
    /// configuration's defaults.
    fn default() -> Self {
        KeepAlive {
            max_seconds: 3600,
            min_seconds: 300,
            allow_unload: false,
        }
    }
}

/// What to do with a request's `keep_alive`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Within bounds: forwarded as sent.
    Keep,
    /// Too long or forever: forwarded as this many seconds.
    Clamp(u64),
    /// An unload, or a residence so short that it amounts to one, that the operator does not
    /// allow: the member is removed (the host's default applies).
    Remove,
}

impl KeepAlive {
    /// The verdict for a `keep_alive` of `seconds` (`f64::INFINITY` for forever).
    pub(crate) fn judge(&self, seconds: f64) -> Verdict {
        if seconds < self.min_seconds as f64 {
            if self.allow_unload {
                Verdict::Keep
            } else {
                Verdict::Remove
            }
        } else if seconds > self.max_seconds as f64 {
            Verdict::Clamp(self.max_seconds)
        } else {
            Verdict::Keep
        }
    }
}

/// A `keep_alive` number as Ollama reads it: seconds; negative = forever.
pub(crate) fn number_seconds(n: f64) -> f64 {
    if n < 0.0 {
        f64::INFINITY
    } else {
        n
    }
}

/// A `keep_alive` string as Ollama reads it (Go's `time.ParseDuration`; negative = forever):
/// seconds, or `None` when Go would refuse it.
pub(crate) fn string_seconds(text: &str) -> Option<f64> {
    let seconds = go_duration_seconds(text)?;
    Some(if seconds < 0.0 {
        f64::INFINITY
    } else {
        seconds
    })
}

/// The longest duration Go can hold (`math.MaxInt64` nanoseconds), in seconds.
const GO_MAX_SECONDS: f64 = 9_223_372_036.854_775;

/// Go's `time.ParseDuration`: an optional sign, then one or more decimal numbers each with a
/// unit (`ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`), e.g. `1h30m`, `1.5h`, `-1s`; or `0`.
/// `None` where Go refuses it, an overflow included.
pub fn go_duration_seconds(text: &str) -> Option<f64> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
        if total > GO_MAX_SECONDS {
            return None;
        }
    }
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `time.ParseDuration`, case by case (its own tests' valid and invalid forms).
    #[test]
    fn go_durations() {
        for (text, seconds) in [
            ("0", 0.0),
            ("5s", 5.0),
            ("1h30m", 5400.0),
            ("1.5h", 5400.0),
            ("-1s", -1.0),
            ("+2m", 120.0),
            ("300ms", 0.3),
            ("1us", 1e-6),
            ("1µs", 1e-6),
            ("10ns", 1e-8),
            (".5s", 0.5),
            ("1.s", 1.0),
        ] {
            let got = go_duration_seconds(text).unwrap_or(f64::NAN);
            assert!((got - seconds).abs() < 1e-12, "{text}: {got}");
        }
        for bad in [
            "", "1", "s", "1x", "1h-2m", "1..5s", ".s", "-", "1 h", "1H", "3000000h",
        ] {
            assert_eq!(go_duration_seconds(bad), None, "{bad:?}");
        }
    }

    /// Negative means forever, as Ollama reads it; forever and too long are clamped; an
    /// unload is removed unless allowed.
    #[test]
    fn verdicts() {
        let rules = KeepAlive::default();
        assert_eq!(rules.judge(number_seconds(-1.0)), Verdict::Clamp(3600));
        assert_eq!(
            rules.judge(string_seconds("-1m").unwrap_or_default()),
            Verdict::Clamp(3600)
        );
        assert_eq!(rules.judge(7200.0), Verdict::Clamp(3600));
        assert_eq!(rules.judge(3600.0), Verdict::Keep);
        assert_eq!(rules.judge(300.0), Verdict::Keep);
        assert_eq!(rules.judge(0.0), Verdict::Remove);
        // Under a nanosecond is 0 to Ollama; a nanosecond unloads as soon as it is idle.
        assert_eq!(rules.judge(number_seconds(1e-10)), Verdict::Remove);
        assert_eq!(
            rules.judge(string_seconds("1ns").unwrap_or_default()),
            Verdict::Remove
        );
        assert_eq!(rules.judge(299.0), Verdict::Remove);
        let unload = KeepAlive {
            allow_unload: true,
            ..rules
        };
        assert_eq!(unload.judge(0.0), Verdict::Keep);
        assert_eq!(unload.judge(1e-9), Verdict::Keep);
    }
}
