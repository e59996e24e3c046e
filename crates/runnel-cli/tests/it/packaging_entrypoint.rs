//! The container image's entrypoint (`packaging/container/entrypoint.sh`) reads the Gitea
//! runner v3.3 image's variables with the same accepted values: each row runs the script with
//! a stand-in `runnel` on `PATH` that records its arguments and the variables it got, and
//! compares the `register` and `daemon` calls. Needs only `sh`, so it always runs; the image
//! itself against Gitea is `packaging_deb`'s test.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::repo_root;

/// The stand-in: one line per call, `ARGS | token=… labels=…`; `register` writes the state
/// file (`RUNNER_STATE_FILE`, else `.runner`), or fails when `FAKE_REGISTER_FAILS` is set.
const FAKE_RUNNEL: &str = r#"#!/bin/sh
echo "$* | token=${GITEA_RUNNER_REGISTRATION_TOKEN-unset} labels=${GITEA_RUNNER_LABELS-unset}" >> "$FAKE_LOG"
if [ "$1" = register ]; then
    [ -z "${FAKE_REGISTER_FAILS:-}" ] || exit 1
    echo '{"id":1}' > "${RUNNER_STATE_FILE:-.runner}"
fi
exit 0
"#;

struct Row {
    what: &'static str,
    env: &'static [(&'static str, &'static str)],
    /// A registration already in the state file.
    registered: bool,
    exit: i32,
    calls: &'static [&'static str],
}

const INSTANCE: (&str, &str) = ("GITEA_INSTANCE_URL", "http://gitea:3000");
const TOKEN: (&str, &str) = ("GITEA_RUNNER_REGISTRATION_TOKEN", "tok");

const ROWS: &[Row] = &[
    Row {
        what: "registers, then runs the daemon without the token",
        env: &[INSTANCE, TOKEN, ("GITEA_RUNNER_NAME", "r1")],
        registered: false,
        exit: 0,
        calls: &[
            "register --no-interactive --instance http://gitea:3000 --token tok --name r1 | token=tok labels=unset",
            "daemon | token=unset labels=unset",
        ],
    },
    Row {
        what: "labels go to register, and to the daemon through its environment",
        env: &[INSTANCE, TOKEN, ("GITEA_RUNNER_LABELS", "a:host,b:docker")],
        registered: false,
        exit: 0,
        calls: &[
            "register --no-interactive --instance http://gitea:3000 --token tok --labels a:host,b:docker | token=tok labels=a:host,b:docker",
            "daemon | token=unset labels=a:host,b:docker",
        ],
    },
    Row {
        what: "any non-empty GITEA_RUNNER_EPHEMERAL registers ephemeral (v3: even `false`)",
        env: &[INSTANCE, TOKEN, ("GITEA_RUNNER_EPHEMERAL", "false")],
        registered: false,
        exit: 0,
        calls: &[
            "register --no-interactive --instance http://gitea:3000 --token tok --ephemeral | token=tok labels=unset",
            "daemon | token=unset labels=unset",
        ],
    },
    Row {
        what: "any non-empty GITEA_RUNNER_ONCE runs one job (v3: even `0`)",
        env: &[("GITEA_RUNNER_ONCE", "0")],
        registered: true,
        exit: 0,
        calls: &["daemon --once | token=unset labels=unset"],
    },
    Row {
        what: "an empty GITEA_RUNNER_ONCE is unset",
        env: &[("GITEA_RUNNER_ONCE", "")],
        registered: true,
        exit: 0,
        calls: &["daemon | token=unset labels=unset"],
    },
    Row {
        what: "CONFIG_FILE is passed to both commands",
        env: &[
            INSTANCE,
            TOKEN,
            ("CONFIG_FILE", "/etc/r/config.yaml"),
            ("GITEA_RUNNER_ONCE", "true"),
        ],
        registered: false,
        exit: 0,
        calls: &[
            "register --no-interactive --instance http://gitea:3000 --token tok -c /etc/r/config.yaml | token=tok labels=unset",
            "daemon -c /etc/r/config.yaml --once | token=unset labels=unset",
        ],
    },
    Row {
        what: "the token from GITEA_RUNNER_REGISTRATION_TOKEN_FILE",
        env: &[
            INSTANCE,
            ("GITEA_RUNNER_REGISTRATION_TOKEN_FILE", "token.txt"),
        ],
        registered: false,
        exit: 0,
        calls: &[
            "register --no-interactive --instance http://gitea:3000 --token from-file | token=unset labels=unset",
            "daemon | token=unset labels=unset",
        ],
    },
    Row {
        what: "RUNNER_STATE_FILE names the registration",
        env: &[INSTANCE, TOKEN, ("RUNNER_STATE_FILE", "state.json")],
        registered: false,
        exit: 0,
        calls: &[
            "register --no-interactive --instance http://gitea:3000 --token tok | token=tok labels=unset",
            "daemon | token=unset labels=unset",
        ],
    },
    Row {
        what: "GITEA_MAX_REG_ATTEMPTS bounds the retries",
        env: &[
            INSTANCE,
            TOKEN,
            ("GITEA_MAX_REG_ATTEMPTS", "1"),
            ("FAKE_REGISTER_FAILS", "1"),
        ],
        registered: false,
        exit: 1,
        calls: &[
            "register --no-interactive --instance http://gitea:3000 --token tok | token=tok labels=unset",
        ],
    },
    Row {
        what: "nothing to register with",
        env: &[],
        registered: false,
        exit: 2,
        calls: &[],
    },
];

fn run_row(row: &Row, script: &Path) -> (i32, Vec<String>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap_or_else(|e| panic!("{e}"));
    let fake = bin.join("runnel");
    std::fs::write(&fake, FAKE_RUNNEL).unwrap_or_else(|e| panic!("{e}"));
    let chmod = Command::new("chmod").arg("+x").arg(&fake).status();
    assert!(chmod.is_ok_and(|s| s.success()));
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(data.join("token.txt"), "from-file").unwrap_or_else(|e| panic!("{e}"));
    if row.registered {
        std::fs::write(data.join(".runner"), "{\"id\":1}").unwrap_or_else(|e| panic!("{e}"));
    }
    let log = dir.path().join("calls");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("sh");
    command
        .arg(script)
        .current_dir(&data)
        .env_clear()
        .env("PATH", path)
        .env("FAKE_LOG", &log)
        .envs(row.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("sh entrypoint: {e}"));
    let calls = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    if let Some(("RUNNER_STATE_FILE", name)) = row
        .env
        .iter()
        .find(|(k, _)| *k == "RUNNER_STATE_FILE")
        .copied()
    {
        assert!(data.join(name).exists(), "{}: {name} not written", row.what);
    }
    (status.code().unwrap_or(-1), calls)
}

#[test]
fn the_entrypoint_reads_the_gitea_runner_images_variables_as_v3_does() {
    let script = repo_root().join("packaging/container/entrypoint.sh");
    for row in ROWS {
        let (code, calls) = run_row(row, &script);
        assert_eq!(code, row.exit, "{}: {calls:#?}", row.what);
        assert_eq!(calls, row.calls, "{}", row.what);
    }
}
