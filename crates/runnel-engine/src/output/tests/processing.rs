//! What each workflow command does, through the [`StepOutput`] facade.

use crate::output::{
    Annotation, AnnotationLevel, Masker, OutputEvent, StepOutput, StepOutputOptions, Stream,
};

use OutputEvent::*;

/// Runs `stdout` through a fresh step with the given secrets and options.
fn run_with(secrets: &[&str], options: StepOutputOptions, stdout: &str) -> Vec<OutputEvent> {
    let masker = Masker::new();
    for secret in secrets {
        masker.add(secret);
    }
    let mut output = StepOutput::new(&masker, options);
    let mut events = output.feed(Stream::Stdout, stdout.as_bytes());
    events.extend(output.finish());
    events
}

fn run(stdout: &str) -> Vec<OutputEvent> {
    run_with(&[], StepOutputOptions::default(), stdout)
}

fn line(text: &str) -> OutputEvent {
    Line {
        stream: Stream::Stdout,
        text: text.to_owned(),
    }
}

fn debug(text: &str) -> OutputEvent {
    Debug(text.to_owned())
}

fn annotation(level: AnnotationLevel, message: &str) -> Annotation {
    Annotation {
        level,
        message: message.to_owned(),
        title: None,
        file: None,
        line: None,
        end_line: None,
        col: None,
        end_column: None,
    }
}

fn failed(command: &str, message: &str) -> OutputEvent {
    CommandFailed {
        command: command.to_owned(),
        message: message.to_owned(),
    }
}

const DISABLED_SET_ENV: &str = "The `set-env` command is disabled. Use environment files instead, or set ACTIONS_ALLOW_UNSECURE_COMMANDS=true to allow unsecure commands (https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/)";

#[test]
fn plain_and_unknown_lines_are_output() {
    assert_eq!(
        run("hello\n::unknown::x\n::\n"),
        [line("hello"), line("::unknown::x"), line("::")]
    );
}

#[test]
fn annotations() {
    use AnnotationLevel::*;
    let full = Annotation {
        title: Some("T: 1, 2".to_owned()),
        file: Some("src/app.js".to_owned()),
        line: Some(3),
        end_line: Some(3),
        col: Some(5),
        end_column: Some(7),
        ..annotation(Error, "Missing\nsemicolon")
    };
    let cases = [
        (
            "::warning::careful",
            vec![Annotation(annotation(Warning, "careful"))],
        ),
        (
            "::NOTICE::case does not matter",
            vec![Annotation(annotation(Notice, "case does not matter"))],
        ),
        (
            "::error title=T%3A 1%2C 2,file=src/app.js,line=3,endLine=3,col=5,endColumn=7::Missing%0Asemicolon",
            vec![Annotation(full)],
        ),
        // Malformed numbers are dropped.
        (
            "::warning line=x,col=-1::m",
            vec![Annotation(annotation(Warning, "m"))],
        ),
        // endLine without line becomes the line.
        (
            "::warning endLine=4::m",
            vec![
                debug("warning: 'endLine' without 'line': using it as 'line'"),
                Annotation(crate::output::Annotation {
                    line: Some(4),
                    end_line: Some(4),
                    ..annotation(Warning, "m")
                }),
            ],
        ),
        // Columns need a line.
        (
            "::warning col=2,endColumn=3::m",
            vec![
                debug("warning: columns need a 'line'; dropped"),
                Annotation(annotation(Warning, "m")),
            ],
        ),
        // Columns on a multi-line range are dropped.
        (
            "::warning line=1,endLine=2,col=2::m",
            vec![
                debug("warning: columns need 'line' and 'endLine' to be equal; dropped"),
                Annotation(crate::output::Annotation {
                    line: Some(1),
                    end_line: Some(2),
                    ..annotation(Warning, "m")
                }),
            ],
        ),
        // A range ending before it starts is dropped.
        (
            "::warning line=5,endLine=2::m",
            vec![
                debug("warning: 'endLine' is before 'line'; both dropped"),
                Annotation(annotation(Warning, "m")),
            ],
        ),
        (
            "::warning line=1,col=5,endColumn=2::m",
            vec![
                debug("warning: 'endColumn' is before 'col'; both dropped"),
                Annotation(crate::output::Annotation {
                    line: Some(1),
                    ..annotation(Warning, "m")
                }),
            ],
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(run(input), expected, "input {input:?}");
    }
}

#[test]
fn debug_and_groups() {
    assert_eq!(
        run("::group::Build %25\n::debug::details\ninside\n::endgroup::\n"),
        [
            Group("Build %".to_owned()),
            debug("details"),
            line("inside"),
            EndGroup
        ]
    );
}

#[test]
fn add_mask_masks_later_lines_and_is_never_echoed() {
    assert_eq!(
        run("before hunter22\n::add-mask::hunter22\nafter hunter22\n"),
        [line("before hunter22"), line("after ***")]
    );
    let echo = StepOutputOptions {
        echo_commands: true,
        ..StepOutputOptions::default()
    };
    assert_eq!(
        run_with(&[], echo, "::add-mask::hunter22\n::debug::hunter22\n"),
        [line("::add-mask::***"), debug("***")]
    );
    // Multi-line values register each line.
    assert_eq!(
        run("::add-mask::one-1%0Atwo-2\none-1 two-2\n"),
        [line("*** ***")]
    );
    assert_eq!(
        run("::add-mask::  \n"),
        [Warning(
            "add-mask: an empty value cannot be masked; ignored".to_owned()
        )]
    );
}

#[test]
fn every_log_text_is_masked() {
    let events = run_with(
        &["s3cret"],
        StepOutputOptions::default(),
        "s3cret\n::group::s3cret\n::debug::s3cret\n::warning title=s3cret,file=s3cret::s3cret\n::set-output::s3cret\n",
    );
    assert_eq!(
        events,
        [
            line("***"),
            Group("***".to_owned()),
            debug("***"),
            Annotation(crate::output::Annotation {
                title: Some("***".to_owned()),
                file: Some("***".to_owned()),
                ..annotation(AnnotationLevel::Warning, "***")
            }),
            failed(
                "::set-output::***",
                "set-output: the required property 'name' is missing"
            ),
        ]
    );
}

#[test]
fn outputs_and_state_keep_raw_values_with_a_deprecation_warning() {
    let events = run_with(
        &["s3cret"],
        StepOutputOptions::default(),
        "::set-output name=out::a s3cret%0Ab\n::save-state name=st::v\n",
    );
    let [
        Warning(first),
        SetOutput { name, value },
        Warning(second),
        SaveState {
            name: state,
            value: state_value,
        },
    ] = events.as_slice()
    else {
        panic!("unexpected events {events:?}");
    };
    assert!(
        first.starts_with("The `set-output` command is deprecated"),
        "{first}"
    );
    assert!(
        second.starts_with("The `save-state` command is deprecated"),
        "{second}"
    );
    assert_eq!((name.as_str(), value.as_str()), ("out", "a s3cret\nb"));
    assert_eq!((state.as_str(), state_value.as_str()), ("st", "v"));
}

#[test]
fn set_env_and_add_path_need_unsecure_commands() {
    assert_eq!(
        run("::set-env name=A::1\n"),
        [failed("::set-env name=A::1", DISABLED_SET_ENV)]
    );
    let events = run("::add-path::/opt\n");
    assert!(
        matches!(events.as_slice(), [CommandFailed { command, .. }] if command == "::add-path::/opt")
    );

    let allowed = StepOutputOptions {
        allow_unsecure_commands: true,
        ..StepOutputOptions::default()
    };
    assert_eq!(
        run_with(
            &[],
            allowed.clone(),
            "::set-env name=A::1\n::add-path::/opt\n::set-env name=node_options::x\n::add-path::\n"
        ),
        [
            SetEnv {
                name: "A".to_owned(),
                value: "1".to_owned()
            },
            AddPath("/opt".to_owned()),
            Error(
                "set-env: node_options cannot be set with a workflow command; ignored".to_owned()
            ),
            failed("::add-path::", "add-path: the path is empty"),
        ]
    );
}

#[test]
fn stop_commands_pause_until_the_token() {
    assert_eq!(
        run(
            "::stop-commands::pause1\n::warning::not processed\n::PAUSE1::\n::warning::processed\n"
        ),
        [
            line("::stop-commands::pause1"),
            debug("Workflow commands paused until the stop token is written"),
            line("::warning::not processed"),
            line("::PAUSE1::"),
            debug("Resuming workflow command processing"),
            Annotation(annotation(AnnotationLevel::Warning, "processed")),
        ]
    );
    // Tokens longer than six characters are masked from then on.
    assert_eq!(
        run("::stop-commands::long-token\n::long-token::\nlong-token\n")
            .into_iter()
            .filter(|event| matches!(event, Line { .. }))
            .collect::<Vec<_>>(),
        [line("::stop-commands::***"), line("::***::"), line("***")]
    );
}

#[test]
fn weak_stop_tokens_are_refused_unless_allowed() {
    for token in ["", "pause-logging", "warning", "Set-Output"] {
        let input = format!("::stop-commands::{token}\n::warning::still processed\n");
        let events = run(&input);
        assert!(
            matches!(events.as_slice(), [CommandFailed { .. }, Annotation(_)]),
            "token {token:?}: {events:?}"
        );
    }
    let allowed = StepOutputOptions {
        allow_unsecure_stop_command_tokens: true,
        ..StepOutputOptions::default()
    };
    // Any `::warning...::` line resumes, and the weak token is not masked.
    assert_eq!(
        run_with(
            &[],
            allowed,
            "::stop-commands::warning\n::warning::x\n::warning::y\n"
        ),
        [
            line("::stop-commands::warning"),
            debug("Workflow commands paused until the stop token is written"),
            line("::warning::x"),
            debug("Resuming workflow command processing"),
            Annotation(annotation(AnnotationLevel::Warning, "y")),
        ]
    );
}

#[test]
fn echo_on_and_off() {
    assert_eq!(
        run("::echo::on\n::group::g\n::warning::w\n::echo::OFF\n::group::h\n::echo::maybe\n"),
        [
            debug("Command echo turned on"),
            line("::group::g"),
            Group("g".to_owned()),
            Annotation(annotation(AnnotationLevel::Warning, "w")),
            line("::echo::OFF"),
            debug("Command echo turned off"),
            Group("h".to_owned()),
            failed(
                "::echo::maybe",
                "echo: the value must be 'on' or 'off', not 'maybe'"
            ),
        ]
    );
}

#[test]
fn problem_matchers_are_ignored() {
    assert_eq!(
        run("::add-matcher::.github/m.json\n::remove-matcher owner=x::\n"),
        [
            debug("add-matcher: problem matchers are not supported; ignored"),
            debug("remove-matcher: problem matchers are not supported; ignored"),
        ]
    );
}

#[test]
fn both_streams_are_processed_and_keep_partial_lines_apart() {
    let masker = Masker::new();
    let mut output = StepOutput::new(&masker, StepOutputOptions::default());
    let mut events = output.feed(Stream::Stdout, b"out-");
    events.extend(output.feed(Stream::Stderr, b"::warning::from stderr\nerr-"));
    events.extend(output.feed(Stream::Stdout, b"line\n::add-mask::tail-secret\n"));
    events.extend(output.feed(Stream::Stderr, b"tail-secret"));
    events.extend(output.finish());
    assert_eq!(
        events,
        [
            Annotation(annotation(AnnotationLevel::Warning, "from stderr")),
            line("out-line"),
            Line {
                stream: Stream::Stderr,
                text: "err-***".to_owned()
            },
        ]
    );
}
