//! Whether a `schedule` entry's `cron` is one GitHub accepts: five fields separated by
//! spaces (minute 0–59, hour 0–23, day of month 1–31, month 1–12 or `jan`–`dec`, day of
//! week 0–6 or `sun`–`sat`, names in any case), each `*`, a number, a name, a range `a-b`
//! with `a <= b`, a step `x/n` (`x` any of these, `n` a number inside the field's range and
//! above 0), or a list of them. No `?`, `L`, `#`, seconds or `@daily`; as
//! `@actions/workflow-parser`, a leading or trailing space makes the line invalid, and runs
//! of spaces between fields are one separator.
//!
//! Numbers are decimal digits (leading zeros allowed); GitHub's parser, in JavaScript, would
//! also take `5.0` or `0x5`, which no scheduler means: refused here.

/// The message `@actions/workflow-parser` gives for every invalid cron line.
pub(crate) const INVALID_CRON: &str =
    "Invalid cron expression. Expected format: '* * * * *' (minute hour day month weekday)";

/// The values one field may take.
struct Field {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const FIELDS: [Field; 5] = [
    Field {
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        min: 1,
        max: 12,
        names: &MONTHS,
    },
    Field {
        min: 0,
        max: 6,
        names: &DAYS,
    },
];

/// Whether `cron` is a valid GitHub cron line.
pub(crate) fn is_valid(cron: &str) -> bool {
    if cron.starts_with(' ') || cron.ends_with(' ') {
        return false;
    }
    let parts: Vec<&str> = cron.split(' ').filter(|part| !part.is_empty()).collect();
    parts.len() == FIELDS.len()
        && parts
            .iter()
            .zip(&FIELDS)
            .all(|(part, field)| valid_part(part, field))
}

/// A list, step, range or single value of `field`.
fn valid_part(part: &str, field: &Field) -> bool {
    if part.contains(',') {
        return part
            .split(',')
            .all(|item| !item.is_empty() && valid_part(item, field));
    }
    if let Some((start, step)) = part.split_once('/') {
        return !start.is_empty()
            && valid_part(start, field)
            && number(step).is_some_and(|n| n > 0 && n >= field.min && n <= field.max);
    }
    if part == "*" {
        return true;
    }
    if let Some((start, end)) = part.split_once('-') {
        return match (value(start, field), value(end, field)) {
            (Some(start), Some(end)) => start <= end,
            _ => false,
        };
    }
    value(part, field).is_some()
}

/// A single value: a number inside the field's range, or one of its names.
fn value(text: &str, field: &Field) -> Option<u32> {
    if let Some(index) = field
        .names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
    {
        // Months count from 1, days from 0.
        return u32::try_from(index).ok().map(|index| index + field.min);
    }
    number(text).filter(|n| (field.min..=field.max).contains(n))
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each verdict checked against `@actions/workflow-parser` 0.3 by hand.
    #[test]
    fn cron_lines_as_github_reads_them() {
        let cases = [
            ("0 0 * * MON-FRI", true),
            ("0 0 * JAN-MAR *", true),
            ("*/15 * * * *", true),
            ("0 0 1,15 * *", true),
            ("0 0 * * SUN", true),
            ("0-59/5 * * * *", true),
            ("1-5/2 * * * *", true),
            ("*/5,10 * * * *", true),
            ("0 0 * * 0-6", true),
            ("0 0 * * mon", true),
            ("0 0 * jan *", true),
            ("5/15 * * * *", true),
            ("05 * * * *", true),
            ("0 0 * * MON-6", true),
            ("*/59 * * * *", true),
            ("0  0 1 * *", true),
            ("* */23 * * *", true),
            ("* * */31 * *", true),
            ("* * * */12 *", true),
            ("* * * * */6", true),
            ("0 0 1-31 * *", true),
            ("0 0 * JAN,FEB *", true),
            ("0 0 * * Mon", true),
            ("0 0 5-5 * *", true),
            ("0 0 1/1 * *", true),
            ("61 * * * *", false),
            ("* 25 * * *", false),
            ("0 0 32 * *", false),
            ("0 0 * 13 *", false),
            ("0 0 * * 8", false),
            ("0 0 * * 7", false),
            ("*/0 * * * *", false),
            ("5-1 * * * *", false),
            ("0 0 * JANX *", false),
            ("@daily", false),
            ("a b c d e", false),
            ("0 0 ? * *", false),
            ("0 0 L * *", false),
            ("0 0 0 * *", false),
            ("0 0 * 0 *", false),
            ("0 0 * * 6-0", false),
            ("* * * * * *", false),
            ("*/60 * * * *", false),
            ("0 0 1 * * ", false),
            ("  0 0 1 * *", false),
            ("1-60 * * * *", false),
            (",5 * * * *", false),
            ("5, * * * *", false),
            ("0 0 * * 1#2", false),
            ("-5 * * * *", false),
            ("* */24 * * *", false),
            ("* * */32 * *", false),
            ("* * * */13 *", false),
            ("* * * * */7", false),
            ("10-20/100 * * * *", false),
            ("0 0 * * 0-7", false),
            ("0 0 * * MONDAY", false),
            ("0 0 * DEC-JAN *", false),
            ("0 0 * * SAT-SUN", false),
            ("0 0 * * 7/1", false),
        ];
        for (cron, expected) in cases {
            assert_eq!(is_valid(cron), expected, "{cron:?}");
        }
    }
}
