//! Masking: encodings, multi-line values, overlaps, values split across writes.

use crate::output::{Masker, OutputEvent, StepOutput, StepOutputOptions, Stream};

fn masker(secrets: &[&str]) -> Masker {
    let masker = Masker::new();
    for secret in secrets {
        masker.add(secret);
    }
    masker
}

#[test]
fn masks_values_and_their_encodings() {
    let cases: &[(&[&str], &str, &str)] = &[
        (&[], "nothing to hide", "nothing to hide"),
        (&["hunter2"], "pw=hunter2 again hunter2", "pw=*** again ***"),
        // Empty, whitespace-only and one-character values would mask everything.
        (&["", " ", "\t", "a", "é"], "a b é", "a b é"),
        // JSON string form: quotes and backslashes escaped.
        (
            &[r#"pa"ss\word"#],
            r#"{"token":"pa\"ss\\word"}"#,
            r#"{"token":"***"}"#,
        ),
        // Base64 of the value alone.
        (
            &["secret-value"],
            "Authorization: Basic c2VjcmV0LXZhbHVl",
            "Authorization: Basic ***",
        ),
        // Base64 of a longer text holding the value, at each offset modulo 3 (a Basic
        // `Authorization` header of `user:secret`): only the characters that neighbouring
        // bytes change stay.
        (&["secret-value"], "dTpzZWNyZXQtdmFsdWU=", "dTp***U="),
        (&["secret-value"], "dXM6c2VjcmV0LXZhbHVlISE=", "dXM6***ISE="),
        (
            &["secret-value"],
            "dXNlcjpzZWNyZXQtdmFsdWUhIQ==",
            "dXNlcjp***UhIQ==",
        ),
        (&["secret-value"], "YXNlY3JldC12YWx1ZT8=", "YX***T8="),
        // URL-encoded form.
        (
            &["p@ss word/1"],
            "https://x/?pw=p%40ss%20word%2F1&a=b",
            "https://x/?pw=***&a=b",
        ),
        // A secret containing another is masked whole, whichever was added first.
        (&["abc", "abcdef"], "xabcdefx abc", "x***x ***"),
        (&["abcdef", "abc"], "xabcdefx abc", "x***x ***"),
        // Overlapping secrets leave no fragment of either.
        (&["abcd", "cdef"], "xabcdefx", "x***x"),
        // Adjacent occurrences merge.
        (&["ab12"], "ab12ab12", "***"),
        (&["ünïcødé"], "v=ünïcødé.", "v=***."),
        // Multi-line: each line on its own; CRLF values too.
        (
            &["line-one\nline-two"],
            "line-two then line-one",
            "*** then ***",
        ),
        (&["first\r\nsecond"], "first second", "*** ***"),
    ];
    for (secrets, line, expected) in cases {
        assert_eq!(masker(secrets).mask(line), *expected, "secrets {secrets:?}");
    }
}

#[test]
fn clones_share_values() {
    let job = Masker::new();
    assert!(job.is_empty());
    let step = job.clone();
    step.add("from-a-step");
    assert!(!job.is_empty());
    assert_eq!(job.mask("from-a-step"), "***");
}

#[test]
fn values_added_later_are_masked_in_later_lines() {
    let masker = masker(&["first-secret"]);
    assert_eq!(
        masker.mask("first-secret second-secret"),
        "*** second-secret"
    );
    masker.add("second-secret");
    assert_eq!(masker.mask("first-secret second-secret"), "*** ***");
}

#[test]
fn many_secrets_on_a_long_line() {
    let secrets: Vec<String> = (0..2000)
        .map(|index| format!("secret-{index:05}-x"))
        .collect();
    let masker = Masker::new();
    for secret in &secrets {
        masker.add(secret);
    }
    let line = format!("{} tail", "filler ".repeat(10_000)) + " secret-01999-x secret-00000-x";
    let masked = masker.mask(&line);
    assert!(
        masked.ends_with(" tail *** ***"),
        "{}",
        &masked[masked.len() - 40..]
    );
}

/// A secret written one byte at a time, and across stdout chunk boundaries in general, is still
/// masked: masking sees whole lines.
#[test]
fn secret_written_byte_by_byte_is_masked() {
    let masker = masker(&["s3cr3t-t0ken"]);
    let mut output = StepOutput::new(&masker, StepOutputOptions::default());
    let mut events = Vec::new();
    for byte in b"token: s3cr3t-t0ken\nlast s3cr3t-t0ken" {
        events.extend(output.feed(Stream::Stdout, std::slice::from_ref(byte)));
    }
    events.extend(output.finish());
    assert_eq!(
        events,
        [
            OutputEvent::Line {
                stream: Stream::Stdout,
                text: "token: ***".to_owned()
            },
            OutputEvent::Line {
                stream: Stream::Stdout,
                text: "last ***".to_owned()
            },
        ]
    );
}

#[test]
fn unmasked_text_is_borrowed() {
    let masker = masker(&["needle"]);
    assert!(matches!(
        masker.mask("haystack"),
        std::borrow::Cow::Borrowed(_)
    ));
}
