use super::*;

fn body(frame: &[u8]) -> &[u8] {
    let mut prefix = [0; 4];
    prefix.copy_from_slice(&frame[..4]);
    assert_eq!(
        frame_len(prefix),
        frame.len() - 4,
        "the prefix is the body's length"
    );
    &frame[4..]
}

fn requests() -> Vec<Request> {
    vec![
        Request::Exec {
            id: 7,
            argv: vec![
                "bash".to_owned(),
                "-e".to_owned(),
                "/runnel/temp/a b.sh".to_owned(),
            ],
            env: vec![
                ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
                ("EMPTY".to_owned(), String::new()),
                ("UNICODE".to_owned(), "é ✓".to_owned()),
            ],
            workdir: "/runnel/workspace".to_owned(),
        },
        Request::Exec {
            id: 0,
            argv: Vec::new(),
            env: Vec::new(),
            workdir: String::new(),
        },
        Request::Kill { id: u32::MAX },
        Request::WriteFile {
            id: 3,
            path: "/runnel/temp/x".to_owned(),
            contents: vec![0, 255, 10, 13],
            mode: 0o755,
        },
        Request::ReadFile {
            id: 4,
            path: "/etc/os-release".to_owned(),
        },
        Request::FindProgram {
            id: 5,
            program: "bash".to_owned(),
            path: "/usr/bin:/bin".to_owned(),
        },
    ]
}

fn replies() -> Vec<Reply> {
    vec![
        Reply::Ready {
            version: "0.0.0".to_owned(),
        },
        Reply::Stdout {
            id: 1,
            data: b"hello\n".to_vec(),
        },
        Reply::Stderr {
            id: 1,
            data: Vec::new(),
        },
        Reply::Exited { id: 1, code: -1 },
        Reply::Exited { id: 2, code: 137 },
        Reply::Done { id: 9 },
        Reply::File {
            id: 2,
            contents: None,
        },
        Reply::File {
            id: 2,
            contents: Some(Vec::new()),
        },
        Reply::File {
            id: 2,
            contents: Some(vec![1, 2, 3]),
        },
        Reply::Found { id: 3, path: None },
        Reply::Found {
            id: 3,
            path: Some("/usr/bin/bash".to_owned()),
        },
        Reply::Failed {
            id: 4,
            message: "No such file or directory".to_owned(),
        },
    ]
}

#[test]
fn every_request_and_reply_round_trips() {
    for request in requests() {
        let frame = encode_request(&request);
        assert_eq!(decode_request(body(&frame)), Ok(request));
    }
    for reply in replies() {
        let frame = encode_reply(&reply);
        assert_eq!(decode_reply(body(&frame)), Ok(reply));
    }
}

#[test]
fn the_wire_format_is_pinned() {
    let frame = encode_reply(&Reply::Exited { id: 2, code: 1 });
    assert_eq!(frame, [9, 0, 0, 0, 104, 2, 0, 0, 0, 1, 0, 0, 0]);
    let frame = encode_request(&Request::ReadFile {
        id: 1,
        path: "/a".to_owned(),
    });
    assert_eq!(frame, [11, 0, 0, 0, 4, 1, 0, 0, 0, 2, 0, 0, 0, b'/', b'a']);
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    for request in requests() {
        let frame = encode_request(&request);
        let body = body(&frame);
        for cut in 0..body.len() {
            assert!(
                decode_request(&body[..cut]).is_err(),
                "{request:?} cut at {cut}"
            );
        }
    }
    for reply in replies() {
        let frame = encode_reply(&reply);
        let body = body(&frame);
        for cut in 0..body.len() {
            assert!(
                decode_reply(&body[..cut]).is_err(),
                "{reply:?} cut at {cut}"
            );
        }
    }
}

#[test]
fn bad_frames_say_what_is_wrong() {
    assert_eq!(decode_request(&[99]), Err(DecodeError::UnknownKind(99)));
    assert_eq!(decode_reply(&[1]), Err(DecodeError::UnknownKind(1)));
    assert_eq!(
        decode_reply(&[105, 1, 0, 0, 0, 0]),
        Err(DecodeError::TrailingBytes(1))
    );
    assert_eq!(
        decode_reply(&[108, 1, 0, 0, 0, 1, 0, 0, 0, 0xff]),
        Err(DecodeError::NotUtf8)
    );
    // A length that no frame can hold, and a list count larger than the bytes left.
    assert_eq!(
        decode_reply(&[102, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]),
        Err(DecodeError::TooLong(0x7fff_ffff))
    );
    assert_eq!(
        decode_request(&[1, 0, 0, 0, 0, 0xff, 0xff, 0, 0]),
        Err(DecodeError::Truncated)
    );
}
