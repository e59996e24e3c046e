//! Line splitting: chunk boundaries, CR handling, lossy UTF-8, bounded memory.

use crate::output::{LineSplitter, MAX_LINE_BYTES};

/// Feeds `chunks` to a fresh splitter and returns every line, including the one `finish` flushes.
fn split(chunks: &[&[u8]]) -> Vec<String> {
    let mut splitter = LineSplitter::new();
    let mut lines = Vec::new();
    for chunk in chunks {
        splitter.push(chunk, &mut lines);
    }
    lines.extend(splitter.finish());
    lines
}

#[test]
fn splits_lines_across_chunks() {
    let cases: &[(&[&[u8]], &[&str])] = &[
        (&[b"a\nb\n"], &["a", "b"]),
        (&[b"a", b"b\n"], &["ab"]),
        (&[b"a\nb"], &["a", "b"]),
        (&[b"a\r\nb\r\n"], &["a", "b"]),
        (&[b"a\r", b"\nb\n"], &["a", "b"]),
        (&[b"a\r", b"b\n"], &["a", "b"]),
        (&[b"10%\r20%\r100%\n"], &["10%", "20%", "100%"]),
        (&[b"a\n\nb\n"], &["a", "", "b"]),
        (&[b"\r\r"], &["", ""]),
        (&[b"\r\n\r\n"], &["", ""]),
        (&[b"\n", b"\r", b"\n", b"x"], &["", "", "x"]),
        (&[b""], &[]),
        (&[b"\xffa\n"], &["\u{fffd}a"]),
        (&[b"h\xc3", b"\xa9\n"], &["h\u{e9}"]),
    ];
    for (chunks, expected) in cases {
        assert_eq!(split(chunks), *expected, "chunks {chunks:?}");
    }
}

#[test]
fn byte_by_byte_is_the_same_as_one_chunk() {
    let text = b"first\r\nsecond\rthird\n\nfourth";
    let bytes: Vec<&[u8]> = text.chunks(1).collect();
    assert_eq!(split(&bytes), split(&[text]));
}

#[test]
fn long_lines_are_flushed_in_pieces() {
    let long = vec![b'x'; MAX_LINE_BYTES * 2 + 10];
    let lines = split(&[&long, b"\nnext\n"]);
    let lengths: Vec<usize> = lines.iter().map(String::len).collect();
    assert_eq!(lengths, [MAX_LINE_BYTES, MAX_LINE_BYTES, 10, 4]);

    // Fed in small chunks, the splitter never holds more than one piece.
    let chunks: Vec<&[u8]> = long.chunks(1000).collect();
    let lengths: Vec<usize> = split(&chunks).iter().map(String::len).collect();
    assert_eq!(lengths, [MAX_LINE_BYTES, MAX_LINE_BYTES, 10]);
}

#[test]
fn long_line_cut_keeps_characters_whole() {
    let mut long = vec![b'x'; MAX_LINE_BYTES - 1];
    long.extend_from_slice("\u{e9}tail".as_bytes());
    let lines = split(&[&long]);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines.first().map(String::len), Some(MAX_LINE_BYTES - 1));
    assert_eq!(lines.get(1).map(String::as_str), Some("\u{e9}tail"));
}
