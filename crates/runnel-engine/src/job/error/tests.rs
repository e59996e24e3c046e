//! The texts of step errors are log lines people and tests match on: they stay as they were
//! when they were built with `format!` (a missing `node` now also names the PATH searched and
//! the Node.js version the action declares).

use runnel_expr::EvalError;

use super::{ExprError, StepError};
use crate::backend::BackendError;

fn backend(message: &str) -> BackendError {
    BackendError::Failed {
        operation: "exec".to_owned(),
        message: message.to_owned(),
    }
}

#[test]
fn step_errors_read_as_before() {
    let cases: [(StepError, &str); 8] = [
        (
            StepError::ShellNotFound {
                program: "pwsh".to_owned(),
                fallbacks: Vec::new(),
            },
            "shell `pwsh` is not supported here: `pwsh` was not found on PATH",
        ),
        (
            StepError::ShellNotFound {
                program: "python".to_owned(),
                fallbacks: vec!["python3".to_owned(), "py".to_owned()],
            },
            "shell `python` is not supported here: `python` (nor python3, py) was not found on PATH",
        ),
        (
            StepError::MetadataMissing {
                uses: "./x".to_owned(),
                directory: "/w/x".to_owned(),
                local: true,
            },
            "cannot find `action.yml` or `action.yaml` for `uses: ./x` in /w/x (local actions \
             are read from the workspace: does an earlier step check the repository out?)",
        ),
        (
            StepError::MetadataMissing {
                uses: "o/r@v1".to_owned(),
                directory: "/t/o/r".to_owned(),
                local: false,
            },
            "cannot find `action.yml` or `action.yaml` for `uses: o/r@v1` in /t/o/r",
        ),
        (
            StepError::FindProgram {
                program: "node".to_owned(),
                source: backend("gone"),
            },
            "looking for `node` failed: exec: gone",
        ),
        (
            StepError::NodeNotFound {
                uses: "o/r@v1".to_owned(),
                using: "node24".to_owned(),
                path: "/usr/bin:/bin".to_owned(),
            },
            "`uses: o/r@v1` is a JavaScript action (`runs.using: node24`), which runs with the \
             job environment's `node`, but no `node` was found on PATH (/usr/bin:/bin); install \
             Node.js 24 or newer there (Debian: `apt-get install nodejs`) or run the job in an \
             image that has it",
        ),
        (
            StepError::CompositeTooDeep {
                uses: "./a".to_owned(),
                depth: 9,
            },
            "`uses: ./a`: composite actions may nest at most 9 deep",
        ),
        (
            StepError::Write {
                path: "/tmp/run_1.sh".to_owned(),
                source: backend("full"),
            },
            "writing /tmp/run_1.sh failed: exec: full",
        ),
    ];
    for (error, expected) in cases {
        assert_eq!(error.to_string(), expected);
    }
}

#[test]
fn expression_errors_name_the_key_and_its_text() {
    let eval = || EvalError {
        message: "boom".to_owned(),
    };
    let cases: [(ExprError, &str); 4] = [
        (
            ExprError::Evaluate {
                key: "env.A".to_owned(),
                raw: "${{ x }}".to_owned(),
                source: eval(),
            },
            "env.A `${{ x }}`: boom",
        ),
        (
            ExprError::Condition {
                key: "post-if",
                text: "failure()".to_owned(),
                source: eval(),
            },
            "`post-if: failure()`: boom",
        ),
        (
            ExprError::NotANumber {
                key: "timeout-minutes".to_owned(),
                raw: "${{ m }}".to_owned(),
                text: "soon".to_owned(),
            },
            "timeout-minutes `${{ m }}`: `soon` is not a number",
        ),
        (
            ExprError::NotPositiveMinutes {
                key: "timeout-minutes".to_owned(),
                minutes: -1.5,
            },
            "timeout-minutes: -1.5 is not a positive number of minutes",
        ),
    ];
    for (error, expected) in cases {
        assert_eq!(error.to_string(), expected);
    }
}
