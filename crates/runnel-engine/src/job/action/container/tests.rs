//! `with.args` of `docker://` steps split into argv.

use super::split_args;

#[test]
fn args_split_at_unquoted_whitespace_and_quotes_group() {
    let cases: [(&str, &[&str]); 7] = [
        ("", &[]),
        ("   ", &[]),
        ("sleep 600", &["sleep", "600"]),
        ("  a   b  ", &["a", "b"]),
        (r#"-c "echo hi; exit 3""#, &["-c", "echo hi; exit 3"]),
        (r#"-c 'say "x"'"#, &["-c", r#"say "x""#]),
        (r#"a"b c"d '' """#, &["ab cd", "", ""]),
    ];
    for (text, expected) in cases {
        assert_eq!(split_args(text), expected, "{text:?}");
    }
}
