//! Unit tests of the YAML reader: positions, core-schema resolution, YAML-level errors.

use super::{Node, NodeKind, ScalarValue, Style, parse, resolve_plain};

fn root(text: &str) -> Node {
    let parsed = parse(text);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    parsed
        .root
        .unwrap_or_else(|| panic!("no root for {text:?}"))
}

fn entry<'n>(node: &'n Node, key: &str) -> &'n Node {
    let NodeKind::Mapping(entries) = &node.kind else {
        panic!("not a mapping");
    };
    entries
        .iter()
        .find(|(k, _)| k.scalar_text() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no key {key}"))
}

fn pos(node: &Node) -> (usize, usize) {
    (node.span.line, node.span.col)
}

#[test]
fn positions_are_one_based_for_every_style() {
    let text = "a: plain\nb: 'single'\nc: \"double\"\nd: |\n  literal\ne: >\n  folded\nf:\n  - x\n";
    let node = root(text);
    assert_eq!(pos(entry(&node, "a")), (1, 4));
    assert_eq!(pos(entry(&node, "b")), (2, 4));
    assert_eq!(pos(entry(&node, "c")), (3, 4));
    // Block scalars are placed at their first content character, not at the `|`/`>` header.
    assert_eq!(pos(entry(&node, "d")), (5, 3));
    assert_eq!(pos(entry(&node, "e")), (7, 3));
    let NodeKind::Sequence(items) = &entry(&node, "f").kind else {
        panic!("not a sequence");
    };
    assert_eq!(items.first().map(pos), Some((9, 5)));
    let styles: Vec<Style> = ["a", "b", "c", "d", "e"]
        .iter()
        .filter_map(|k| entry(&node, k).as_scalar().map(|s| s.style))
        .collect();
    assert_eq!(
        styles,
        [
            Style::Plain,
            Style::SingleQuoted,
            Style::DoubleQuoted,
            Style::Literal,
            Style::Folded
        ]
    );
}

#[test]
fn core_schema_resolution() {
    let cases: &[(&str, ScalarValue)] = &[
        ("on", ScalarValue::String),
        ("yes", ScalarValue::String),
        ("true", ScalarValue::Bool(true)),
        ("FALSE", ScalarValue::Bool(false)),
        ("~", ScalarValue::Null),
        ("", ScalarValue::Null),
        ("Null", ScalarValue::Null),
        ("0755", ScalarValue::Number(755.0)),
        ("0x1F", ScalarValue::Number(31.0)),
        ("0o17", ScalarValue::Number(15.0)),
        ("-1.5e2", ScalarValue::Number(-150.0)),
        (".5", ScalarValue::Number(0.5)),
        ("1.", ScalarValue::Number(1.0)),
        ("12_345", ScalarValue::String),
        ("1e", ScalarValue::String),
        ("-.inf", ScalarValue::Number(f64::NEG_INFINITY)),
        ("3.8", ScalarValue::Number(3.8)),
        ("ubuntu-latest", ScalarValue::String),
    ];
    for (text, expected) in cases {
        assert_eq!(resolve_plain(text), *expected, "{text}");
    }
    assert!(matches!(resolve_plain(".nan"), ScalarValue::Number(n) if n.is_nan()));
}

#[test]
fn quoted_scalars_are_strings() {
    let node = root("a: 'true'\nb: \"1\"\nc: !!str 3\n");
    for key in ["a", "b", "c"] {
        assert_eq!(
            entry(&node, key).as_scalar().map(|s| s.value),
            Some(ScalarValue::String)
        );
    }
}

#[test]
fn duplicate_keys_report_both_positions() {
    let parsed = parse("a: 1\nb: 2\na: 3\n");
    let [error] = parsed.errors.as_slice() else {
        panic!("{:?}", parsed.errors);
    };
    assert_eq!((error.span.line, error.span.col), (3, 1));
    assert_eq!(
        error.hint.as_deref(),
        Some("`a` is first defined at line 1, column 1")
    );
}

#[test]
fn aliases_expand_and_are_bounded() {
    let node = root("x: &a [1, 2]\ny: *a\n");
    assert!(matches!(&entry(&node, "y").kind, NodeKind::Sequence(items) if items.len() == 2));

    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let parsed = parse(&bomb);
    assert!(
        parsed.errors.iter().any(|e| e.message.contains("too many")),
        "{:?}",
        parsed.errors
    );
}

#[test]
fn yaml_level_errors() {
    let cases: &[(&str, &str)] = &[
        ("a: [1, 2\n", "invalid YAML"),
        ("a: 1\n---\nb: 2\n", "exactly one YAML document"),
        ("a: !!timestamp 2001-12-14\n", "unsupported YAML tag"),
        ("a: !!bool test\n", "is not a valid value"),
        ("a: !!int \"1\"\n", "quoted or block scalar"),
        ("a: *nope\n", "invalid YAML"),
    ];
    for (text, expected) in cases {
        let parsed = parse(text);
        assert!(
            parsed.errors.iter().any(|e| e.message.contains(expected)),
            "{text:?}: {:?}",
            parsed.errors
        );
    }
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    let text = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let parsed = parse(&text);
    assert!(
        parsed.errors.iter().any(|e| e.message.contains("nesting")),
        "{:?}",
        parsed.errors
    );
}

#[test]
fn unterminated_quote_is_an_error() {
    let parsed = parse("a:\n  - run: \"echo unterminated\n");
    assert!(!parsed.errors.is_empty(), "{:?}", parsed.root);
}

#[test]
fn an_extra_document_is_marked_and_the_first_is_kept() {
    let parsed = parse("a: 1\n---\nb: 2\n");
    let extra: Vec<_> = parsed
        .errors
        .iter()
        .map(|e| (e.is_extra_document(), e.span.line))
        .collect();
    assert_eq!(extra, [(true, 2)]);
    let root = parsed.root.unwrap_or_else(|| panic!("no root"));
    assert_eq!(pos(entry(&root, "a")), (1, 4));
    // Other errors are not marked.
    assert!(
        parse("a: [1\n")
            .errors
            .iter()
            .all(|e| !e.is_extra_document())
    );
}
