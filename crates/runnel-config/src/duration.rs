//! Durations written as the peer's config writes them (Go's `time.ParseDuration`): `3h`, `5s`,
//! `1h30m`, `1.5s`, `500ms`, `0s`, `0`; a bare integer counts as nanoseconds as in Go's YAML
//! decoding of a `time.Duration`.
//!
//! Owns: parsing and printing them. Must not: know config keys.

use std::time::Duration;

/// Parses `text`; `Err` holds why it is not a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    if text.starts_with('-') {
        return Err(format!("negative duration `{text}`"));
    }
    let body = text.strip_prefix('+').unwrap_or(text);
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if let Ok(nanos) = body.parse::<u64>() {
        return Ok(Duration::from_nanos(nanos));
    }
    let mut total = 0f64;
    let mut rest = body;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration `{text}`: expected a number"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("invalid duration `{text}`: missing unit")),
            other => {
                return Err(format!(
                    "invalid duration `{text}`: unknown unit `{other}` (use ns, us, ms, s, m or h)"
                ));
            }
        };
        total += value * seconds;
        rest = next;
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("duration `{text}` is out of range"))
}

/// Prints a duration the way `parse_duration` reads it back (`3h`, `1m30s`, `500ms`, `0s`).
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    if duration.subsec_nanos() != 0 && duration.as_secs() == 0 {
        return if duration.subsec_nanos().is_multiple_of(1_000_000) {
            format!("{}ms", duration.subsec_millis())
        } else {
            format!("{}ns", duration.subsec_nanos())
        };
    }
    let secs = duration.as_secs();
    let mut out = String::new();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || duration.subsec_nanos() != 0 {
        if duration.subsec_nanos() == 0 {
            out.push_str(&format!("{s}s"));
        } else {
            let fraction = format!("{:.9}", f64::from(duration.subsec_nanos()) / 1e9);
            let fraction = fraction.trim_start_matches('0').trim_end_matches('0');
            out.push_str(&format!("{s}{fraction}s"));
        }
    }
    out
}
