//! Number to string as .NET `ToString("G15")` (semantics.md 1.5), through the public API:
//! `Value::to_display_string`, `toJSON` and `format`.

use runnel_expr::{Object, Value};

use crate::support::eval;

/// (number, GitHub's text). Some literals carry more digits than a double holds, as users
/// write them.
#[allow(clippy::excessive_precision)]
const TABLE: &[(f64, &str)] = &[
    (0.0, "0"),
    (-0.0, "0"),
    (1.0, "1"),
    (-1.0, "-1"),
    (1.5, "1.5"),
    (-1.5, "-1.5"),
    (0.1, "0.1"),
    (0.5, "0.5"),
    (100000.0, "100000"),
    (123.456, "123.456"),
    (1234567.891, "1234567.891"),
    (2147483647.0, "2147483647"),
    (4294967295.0, "4294967295"),
    (12345678901234.5, "12345678901234.5"),
    (123456789012345.0, "123456789012345"),
    (999999999999999.0, "999999999999999"),
    // 15 significant digits, rounded; the exponent after rounding decides the notation.
    (99999999999999.99, "100000000000000"),
    (999999999999999.9, "1E+15"),
    (1e15, "1E+15"),
    (1e16, "1E+16"),
    (1e20, "1E+20"),
    (1e21, "1E+21"),
    (1e100, "1E+100"),
    (1e300, "1E+300"),
    (9007199254740993.0, "9.00719925474099E+15"),
    (123456789012345678.0, "1.23456789012346E+17"),
    (1.7976931348623157e308, "1.79769313486232E+308"),
    (0.0001, "0.0001"),
    (0.00012345, "0.00012345"),
    (0.000099999999999999999, "0.0001"),
    (1e-5, "1E-05"),
    (1.5e-5, "1.5E-05"),
    (0.000012345, "1.2345E-05"),
    (-1e-7, "-1E-07"),
    (5e-324, "4.94065645841247E-324"),
    (0.84551240822557006, "0.84551240822557"),
    (0.1234567890123456, "0.123456789012346"),
    (1.0 / 3.0, "0.333333333333333"),
    (2.0 / 3.0, "0.666666666666667"),
    (0.1 + 0.2, "0.3"),
    (f64::NAN, "NaN"),
    (f64::INFINITY, "Infinity"),
    (f64::NEG_INFINITY, "-Infinity"),
];

#[test]
fn display_string_is_g15() {
    let failures: Vec<String> = TABLE
        .iter()
        .filter_map(|(n, want)| {
            let got = Value::Number(*n).to_display_string();
            (got != *want).then(|| format!("{n:e}: got {got}, want {want}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn to_json_uses_g15() {
    for (n, want) in TABLE.iter().filter(|(n, _)| n.is_finite()) {
        assert_eq!(Value::Number(*n).to_pretty_json(), *want, "{n:e}");
    }
}

/// Literals written in an expression print the same way (semantics.md section 6, row 1).
#[test]
fn literals_through_format() {
    let cases = [
        ("1.0", "1"),
        ("0.1", "0.1"),
        ("1e20", "1E+20"),
        ("1e-5", "1E-05"),
        ("-0", "0"),
        ("9007199254740993", "9.00719925474099E+15"),
        ("0.0001", "0.0001"),
        ("0xffffffff", "-1"),
    ];
    for (literal, want) in cases {
        let got = eval(&format!("format('{{0}}', {literal})"), &Object::new());
        assert_eq!(
            got.map(|v| v.to_display_string()),
            Ok(want.to_owned()),
            "{literal}"
        );
    }
}
