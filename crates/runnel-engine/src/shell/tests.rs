use super::*;

#[test]
fn shell_templates() {
    let cases: &[(Option<&str>, bool, &[&str], &str)] = &[
        (None, true, &["bash", "-e", "/t/s.sh"], ".sh"),
        (None, false, &["sh", "-e", "/t/s.sh"], ".sh"),
        (
            Some("bash"),
            true,
            &[
                "bash",
                "--noprofile",
                "--norc",
                "-eo",
                "pipefail",
                "/t/s.sh",
            ],
            ".sh",
        ),
        (Some("sh"), true, &["sh", "-e", "/t/s.sh"], ".sh"),
        (Some("python"), true, &["python", "/t/s.sh"], ".py"),
        (Some("bash -x {0}"), true, &["bash", "-x", "/t/s.sh"], ".sh"),
        (Some("perl {0}"), true, &["perl", "/t/s.sh"], ".pl"),
        (
            Some("bash -c \"echo custom {0}\""),
            true,
            &["bash", "-c", "echo custom /t/s.sh"],
            ".sh",
        ),
    ];
    for (shell, has_bash, argv, extension) in cases {
        let command = ShellCommand::resolve(*shell, *has_bash).expect("valid shell");
        assert_eq!(
            command.argv(&command.program, "/t/s.sh"),
            *argv,
            "{shell:?}"
        );
        assert_eq!(command.extension, *extension, "{shell:?}");
    }
}

#[test]
fn custom_shell_needs_placeholder() {
    assert_eq!(
        ShellCommand::resolve(Some("bash -x"), true),
        Err(ShellError::MissingPlaceholder("bash -x".to_owned()))
    );
}

#[test]
fn powershell_script_is_wrapped() {
    let command = ShellCommand::resolve(Some("pwsh"), true).expect("valid shell");
    let script = command.script("Write-Host hi");
    assert!(script.starts_with("$ErrorActionPreference = 'stop'\n"));
    assert!(script.contains("exit $LASTEXITCODE"));
}
