//! Command syntax: parsing and escaping.

use crate::output::{ParsedCommand, escape_data, escape_property, parse_command};

fn command(name: &str, properties: &[(&str, &str)], data: &str) -> Option<ParsedCommand> {
    Some(ParsedCommand {
        name: name.to_owned(),
        properties: properties
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
        data: data.to_owned(),
    })
}

#[test]
fn parses_command_lines() {
    let cases = [
        ("::warning::hi", command("warning", &[], "hi")),
        ("  \t::debug::x", command("debug", &[], "x")),
        ("::endgroup::", command("endgroup", &[], "")),
        ("::group::My title", command("group", &[], "My title")),
        // GitHub docs example.
        (
            "::error file=app.js,line=1,col=5,endColumn=7::Missing semicolon",
            command(
                "error",
                &[
                    ("file", "app.js"),
                    ("line", "1"),
                    ("col", "5"),
                    ("endColumn", "7"),
                ],
                "Missing semicolon",
            ),
        ),
        // GitHub docs example.
        (
            "::notice file=app.js,line=1,col=5,endColumn=7,title=YOUR-TITLE::Missing semicolon",
            command(
                "notice",
                &[
                    ("file", "app.js"),
                    ("line", "1"),
                    ("col", "5"),
                    ("endColumn", "7"),
                    ("title", "YOUR-TITLE"),
                ],
                "Missing semicolon",
            ),
        ),
        (
            "::set-output name=x::a::b",
            command("set-output", &[("name", "x")], "a::b"),
        ),
        (
            "::warning title=a%3Ab%2Cc%0D%0A%253A::d%0Ae%25f%0D",
            command("warning", &[("title", "a:b,c\r\n%3A")], "d\ne%f\r"),
        ),
        // Data does not unescape `:` and `,`; lower-case escapes are literal.
        ("::debug::%3A%2C%0a", command("debug", &[], "%3A%2C%0a")),
        // Pairs without `=`, with an empty key or value are dropped; `=` in a value stays.
        (
            "::x k=,=v,flag,,k2=v=2::",
            command("x", &[("k2", "v=2")], ""),
        ),
        ("::x  k=v ::d", command("x", &[("k", "v")], "d")),
        ("::stop-commands::tok", command("stop-commands", &[], "tok")),
        ("::tok::", command("tok", &[], "")),
        ("no command", None),
        ("::warning", None),
        ("::warning:", None),
        (":: warning::x", None),
        ("::::x", None),
        ("echo ::warning::x", None),
    ];
    for (line, expected) in cases {
        assert_eq!(parse_command(line), expected, "line {line:?}");
    }
}

#[test]
fn properties_are_case_insensitive_and_the_last_wins() {
    let parsed = parse_command("::x Name=a,NAME=b::").unwrap_or_else(|| panic!("no command"));
    assert_eq!(parsed.property("name"), Some("b"));
    assert_eq!(parsed.property("other"), None);
}

#[test]
fn escaping_round_trips() {
    let samples = [
        "",
        "plain",
        "100%",
        "%25 literally",
        "a:b,c",
        "line 1\nline 2\r\n",
        "::inner::",
        "%0A is not a newline",
        "ünïcødé ✓",
    ];
    for sample in samples {
        let line = format!(
            "::x key={}::{}",
            escape_property(sample),
            escape_data(sample)
        );
        let parsed = parse_command(&line).unwrap_or_else(|| panic!("no command in {line:?}"));
        assert_eq!(parsed.data, sample, "data of {line:?}");
        // An empty property value is dropped, as GitHub does.
        let expected = (!sample.is_empty()).then_some(sample);
        assert_eq!(parsed.property("key"), expected, "property of {line:?}");
    }
}
