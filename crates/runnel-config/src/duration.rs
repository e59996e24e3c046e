//! Durations in one grammar, Go's `time.ParseDuration` (as the peer's config writes them):
//! `3h`, `5s`, `1h30m`, `1.5s`, `500ms`, `0s`, `0`; with named extensions where a reader needs
//! more ([`DurationGrammar`]): config.yaml reads a bare integer as nanoseconds, as Go's YAML
//! decoding of a `time.Duration` does; command-line ages (`--older-than 7d`) add days and
//! weeks.
//!
//! Owns: parsing and printing them. Must not: know config keys or flags.

use std::time::Duration;

/// Which extensions of Go's grammar a reader accepts. Go's own units are always read: `ns`,
/// `us` (`µs`), `ms`, `s`, `m`, `h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationGrammar {
    /// A number without a unit counts as nanoseconds (Go's YAML decoding); otherwise only `0`
    /// may go without one.
    pub bare_nanoseconds: bool,
    /// `d` (24 h) and `w` (7 d) units.
    pub days_and_weeks: bool,
}

impl DurationGrammar {
    /// `config.yaml` (and the peer's): Go's grammar, a bare integer as nanoseconds.
    pub const CONFIG: DurationGrammar = DurationGrammar {
        bare_nanoseconds: true,
        days_and_weeks: false,
    };
    /// How old something is, on the command line (`runnel cache prune --older-than 7d`): Go's
    /// grammar with days and weeks; a number needs its unit.
    pub const AGE: DurationGrammar = DurationGrammar {
        bare_nanoseconds: false,
        days_and_weeks: true,
    };
}

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("negative duration `{text}`")]
    Negative { text: String },
    #[error("invalid duration `{text}`: expected a number")]
    NotANumber { text: String },
    #[error("invalid duration `{text}`: missing unit")]
    MissingUnit { text: String },
    #[error("invalid duration `{text}`: unknown unit `{unit}` (use {known})")]
    UnknownUnit {
        text: String,
        unit: String,
        /// The units the grammar knows, as a phrase (`ns, us, ms, s, m or h`).
        known: &'static str,
    },
    #[error("duration `{text}` is out of range")]
    OutOfRange { text: String },
}

/// Parses `text` as `config.yaml` reads durations ([`DurationGrammar::CONFIG`]).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    parse_duration_with(text, DurationGrammar::CONFIG)
}

/// Parses `text` in Go's grammar with `grammar`'s extensions.
pub fn parse_duration_with(
    text: &str,
    grammar: DurationGrammar,
) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.starts_with('-') {
        return Err(DurationError::Negative {
            text: text.to_owned(),
        });
    }
    let body = text.strip_prefix('+').unwrap_or(text);
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if grammar.bare_nanoseconds
        && let Ok(nanos) = body.parse::<u64>()
    {
        return Ok(Duration::from_nanos(nanos));
    }
    let mut total = 0f64;
    let mut rest = body;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let value: f64 = number.parse().map_err(|_| DurationError::NotANumber {
            text: text.to_owned(),
        })?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let seconds = match (unit, grammar.days_and_weeks) {
            ("ns", _) => 1e-9,
            ("us" | "µs" | "μs", _) => 1e-6,
            ("ms", _) => 1e-3,
            ("s", _) => 1.0,
            ("m", _) => 60.0,
            ("h", _) => 3600.0,
            ("d", true) => 86_400.0,
            ("w", true) => 7.0 * 86_400.0,
            ("", _) => {
                return Err(DurationError::MissingUnit {
                    text: text.to_owned(),
                });
            }
            (other, days_and_weeks) => {
                return Err(DurationError::UnknownUnit {
                    text: text.to_owned(),
                    unit: other.to_owned(),
                    known: if days_and_weeks {
                        "ns, us, ms, s, m, h, d or w"
                    } else {
                        "ns, us, ms, s, m or h"
                    },
                });
            }
        };
        total += value * seconds;
        rest = next;
    }
    Duration::try_from_secs_f64(total).map_err(|_| DurationError::OutOfRange {
        text: text.to_owned(),
    })
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
