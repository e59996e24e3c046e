//! `GITHUB_ENV`/`GITHUB_OUTPUT`/`GITHUB_STATE` and `GITHUB_PATH` formats, every error included.

use crate::output::{EnvFileError, EnvFileKind, parse_env_file, parse_path_file};

fn pairs(entries: &[(&str, &str)]) -> Result<Vec<(String, String)>, EnvFileError> {
    Ok(entries
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect())
}

#[test]
fn parses_entries() {
    let cases = [
        ("", pairs(&[])),
        ("\n\n", pairs(&[])),
        ("A=1\nB=2\n", pairs(&[("A", "1"), ("B", "2")])),
        ("A=1", pairs(&[("A", "1")])),
        ("A=\n", pairs(&[("A", "")])),
        // The first `=` splits; the value is verbatim.
        ("A=x=y<<z  \n", pairs(&[("A", "x=y<<z  ")])),
        (" A = 1\n", pairs(&[(" A ", " 1")])),
        // `\r` is not a line break on Linux.
        ("A=1\r\n", pairs(&[("A", "1\r")])),
        // ... so a CRLF heredoc works, its delimiter and value lines keeping their `\r`.
        ("A<<EOF\r\nv\r\nEOF\r\n", pairs(&[("A", "v\r")])),
        // Later entries are kept in order; the caller lets the last win.
        ("A=1\nA=2\n", pairs(&[("A", "1"), ("A", "2")])),
        ("A=1\n\n\nB=2\n", pairs(&[("A", "1"), ("B", "2")])),
        // Heredocs.
        ("A<<EOF\nl1\nl2\nEOF\n", pairs(&[("A", "l1\nl2")])),
        ("A<<EOF\nl1\nEOF", pairs(&[("A", "l1")])),
        ("A<<EOF\nEOF\n", pairs(&[("A", "")])),
        ("A<<EOF\n\nEOF\n", pairs(&[("A", "")])),
        ("A<<EOF\n\n\nEOF\n", pairs(&[("A", "\n")])),
        (
            "A<<EOF\nx\n\ny\nEOF\nB=2\n",
            pairs(&[("A", "x\n\ny"), ("B", "2")]),
        ),
        // Only a line exactly equal to the delimiter ends the value.
        ("A<<EOF\n EOF\nEOF \nEOF\n", pairs(&[("A", " EOF\nEOF ")])),
        // `<<` before `=`: a heredoc whose delimiter contains `=`.
        ("A<<B=C\nv\nB=C\n", pairs(&[("A", "v")])),
        // `=` before `<<`: a plain value.
        ("A=B<<C\n", pairs(&[("A", "B<<C")])),
        // Any non-empty delimiter is valid (act once restricted the charset).
        (
            "A<<ghadelimiter_3f1c-ä\nv\nghadelimiter_3f1c-ä\n",
            pairs(&[("A", "v")]),
        ),
        (
            "A<<EOF\nvalue with = and << inside\nEOF\n",
            pairs(&[("A", "value with = and << inside")]),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            parse_env_file(EnvFileKind::Env, text.as_bytes()),
            expected,
            "text {text:?}"
        );
    }
}

#[test]
fn reports_every_error_with_file_and_line() {
    use EnvFileError::*;
    let output = EnvFileKind::Output;
    let cases = [
        (
            "junk\n",
            InvalidFormat {
                file: output,
                line: 1,
            },
        ),
        (
            "A=1\n\njunk",
            InvalidFormat {
                file: output,
                line: 3,
            },
        ),
        (
            "=value\n",
            InvalidFormat {
                file: output,
                line: 1,
            },
        ),
        (
            "<<EOF\nv\nEOF\n",
            InvalidFormat {
                file: output,
                line: 1,
            },
        ),
        (
            "A<<\nv\n\n",
            InvalidFormat {
                file: output,
                line: 1,
            },
        ),
        (
            "A<<EOF\n",
            DelimiterNotFound {
                file: output,
                line: 1,
                delimiter: "EOF".to_owned(),
            },
        ),
        (
            "A=1\nB<<END\nv\nEND \n",
            DelimiterNotFound {
                file: output,
                line: 2,
                delimiter: "END".to_owned(),
            },
        ),
        // A CRLF header whose delimiter line has no `\r` never ends.
        (
            "A<<EOF\r\nv\nEOF\n",
            DelimiterNotFound {
                file: output,
                line: 1,
                delimiter: "EOF\r".to_owned(),
            },
        ),
        (
            "A<<EOF\nv",
            EofMarkerMissingNewLine {
                file: output,
                line: 2,
            },
        ),
        (
            "A<<EOF\nv\nw",
            EofMarkerMissingNewLine {
                file: output,
                line: 3,
            },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            parse_env_file(output, text.as_bytes()),
            Err(expected),
            "text {text:?}"
        );
    }
}

#[test]
fn error_messages_name_the_file_and_line() {
    let cases = [
        (EnvFileKind::Env, "x\n", "GITHUB_ENV line 1: Invalid format"),
        (
            EnvFileKind::State,
            "A<<DELIM\n",
            "GITHUB_STATE line 1: Matching delimiter not found 'DELIM'",
        ),
        (
            EnvFileKind::Output,
            "A<<E\nv",
            "GITHUB_OUTPUT line 2: EOF marker missing new line",
        ),
    ];
    for (file, text, expected) in cases {
        let error = parse_env_file(file, text.as_bytes())
            .err()
            .map(|error| error.to_string());
        assert_eq!(error.as_deref(), Some(expected));
    }
}

#[test]
fn invalid_utf8_is_decoded_lossily() {
    assert_eq!(
        parse_env_file(EnvFileKind::Env, b"A=\xff\n"),
        pairs(&[("A", "\u{fffd}")])
    );
}

#[test]
fn path_file_lists_non_empty_lines() {
    let cases: &[(&str, &[&str])] = &[
        ("", &[]),
        ("/opt/bin\n", &["/opt/bin"]),
        ("/a\n\n/b with space\n/c", &["/a", "/b with space", "/c"]),
        (" \n", &[" "]),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_path_file(text.as_bytes()), *expected, "text {text:?}");
    }
}
