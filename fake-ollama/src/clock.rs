//! Timestamps in the formats Ollama writes (RFC 3339 with nanoseconds, Unix seconds).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Now as RFC 3339 UTC with up to nanosecond precision, like Go's `time.RFC3339Nano`
/// (trailing fractional zeros trimmed), e.g. `2026-08-01T10:00:00.1234Z`.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// `at` as RFC 3339 UTC (see [`now_rfc3339`]).
pub(crate) fn rfc3339(at: SystemTime) -> String {
    let d = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    format_rfc3339(d.as_secs(), d.subsec_nanos())
}

fn format_rfc3339(secs: u64, nanos: u32) -> String {
    // Hand-rolled (no `format!`): this runs once per generated answer.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(32);
    push_digits(&mut out, y.clamp(0, 9999) as u64, 4);
    out.push('-');
    push_digits(&mut out, u64::from(m), 2);
    out.push('-');
    push_digits(&mut out, u64::from(d), 2);
    out.push('T');
    push_digits(&mut out, rem / 3600, 2);
    out.push(':');
    push_digits(&mut out, (rem / 60) % 60, 2);
    out.push(':');
    push_digits(&mut out, rem % 60, 2);
    if nanos > 0 {
        // Go's RFC3339Nano: up to 9 digits, trailing zeros trimmed.
        let mut frac = nanos;
        let mut width = 9;
        while frac.rem_euclid(10) == 0 {
            frac /= 10;
            width -= 1;
        }
        out.push('.');
        push_digits(&mut out, u64::from(frac), width);
    }
    out.push('Z');
    out
}

/// Appends `v` zero-padded to exactly `width` decimal digits (higher digits are dropped).
fn push_digits(out: &mut String, v: u64, width: u32) {
    for i in (0..width).rev() {
        let digit = (v / 10u64.pow(i)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known instants format exactly like Go's RFC3339Nano in UTC.
    #[test]
    fn formats_like_go() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_735_689_600, 0), "2025-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(1_785_578_400, 120_000_000),
            "2026-08-01T10:00:00.12Z"
        );
        assert_eq!(
            format_rfc3339(951_782_400, 1),
            "2000-02-29T00:00:00.000000001Z"
        );
    }
}
