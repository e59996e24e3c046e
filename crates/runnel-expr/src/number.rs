//! Number text: GitHub's string-to-number rule (`ExpressionUtility.ParseNumber`, shared by
//! number literals and comparisons) and number-to-string as .NET `ToString("G15")`.
//!
//! Must not: allocate more than the output needs or panic on any input.

/// Converts text to a number like the runner: trimmed; empty is 0; decimal with optional sign,
/// point and exponent; `0x` hex and `0o` octal as signed 32-bit; `Infinity`; anything else NaN.
pub(crate) fn parse_number(text: &str) -> f64 {
    let s = text.trim();
    if s.is_empty() {
        return 0.0;
    }
    if let Some(value) = parse_decimal(s) {
        return value;
    }
    // Lowercase `x`/`o` only, and no sign: `0X1F` and `-0xFF` are NaN on GitHub.
    if let Some(hex) = s.strip_prefix("0x") {
        if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return parse_int32(hex, 16).map_or(f64::NAN, f64::from);
        }
        return f64::NAN;
    }
    if let Some(octal) = s.strip_prefix("0o") {
        if !octal.is_empty() && octal.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return parse_int32(octal, 8).map_or(f64::NAN, f64::from);
        }
        return f64::NAN;
    }
    f64::NAN
}

/// Digits of `radix` as a 32-bit two's-complement integer (`0xffffffff` is -1), or `None` when
/// the value needs more than 32 bits. Leading zeros are fine.
fn parse_int32(digits: &str, radix: u32) -> Option<i32> {
    let mut value: u64 = 0;
    for c in digits.chars() {
        value = value * u64::from(radix) + u64::from(c.to_digit(radix)?);
        if value > u64::from(u32::MAX) {
            return None;
        }
    }
    let unsigned = u32::try_from(value).ok()?;
    Some(i32::from_ne_bytes(unsigned.to_ne_bytes()))
}

/// .NET `Double.TryParse` with `AllowLeadingSign | AllowDecimalPoint | AllowExponent` in the
/// invariant culture: `[+-] digits [. digits] [e [+-] digits]` with at least one mantissa
/// digit, plus the symbols `Infinity` and `NaN` (case-insensitive, as .NET Core reads them).
/// Overflow to infinity is rejected: GitHub refuses `1e309` as a literal.
fn parse_decimal(s: &str) -> Option<f64> {
    let (negative, unsigned) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if unsigned.eq_ignore_ascii_case("infinity") {
        return Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if unsigned.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    let bytes = unsigned.as_bytes();
    let mut i = 0;
    let digits_at = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let int_end = digits_at(i);
    let mut mantissa_digits = int_end - i;
    i = int_end;
    if bytes.get(i) == Some(&b'.') {
        let frac_end = digits_at(i + 1);
        mantissa_digits += frac_end - (i + 1);
        i = frac_end;
    }
    if mantissa_digits == 0 {
        return None;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_end = digits_at(i);
        if exp_end == i {
            return None;
        }
        i = exp_end;
    }
    if i != bytes.len() {
        return None;
    }
    // The grammar above is a subset of what Rust's parser accepts, and Rust rounds correctly.
    let value: f64 = s.parse().ok()?;
    value.is_finite().then_some(value)
}

/// .NET `ToString("G15", InvariantCulture)`, except that -0 prints as `0` (the runner
/// special-cases it): 15 significant digits, trailing zeros dropped, scientific notation
/// (`1E+15`, `1E-05`) when the decimal exponent is below -4 or above 14.
pub(crate) fn format_g15(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    // Rust rounds exactly with ties to even, as .NET Core's Dragon4 does for a digit cutoff.
    let scientific = format!("{:.14e}", x.abs());
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return scientific;
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let mut out = String::with_capacity(24);
    if x < 0.0 {
        out.push('-');
    }
    if exponent > -5 && exponent < 15 {
        if exponent >= 0 {
            let int_len = usize::try_from(exponent).unwrap_or(0) + 1;
            if digits.len() <= int_len {
                out.push_str(digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
            } else {
                let (int_part, frac_part) = digits.split_at(int_len);
                out.push_str(int_part);
                out.push('.');
                out.push_str(frac_part);
            }
        } else {
            out.push_str("0.");
            let zeros = usize::try_from(-exponent - 1).unwrap_or(0);
            out.extend(std::iter::repeat_n('0', zeros));
            out.push_str(digits);
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('E');
        out.push(if exponent < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exponent.unsigned_abs()));
    }
    out
}
