//! `shell:` of a `run:` step turned into a command line and a script file, with GitHub's
//! templates for Linux runners (`actions/runner` ScriptHandlerHelpers, semantics.md 3.4).
//!
//! Must not: look for programs or write files; the job runner does that through the
//! environment, with the [`ShellCommand`] decided here.

/// How to run one script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShellCommand {
    /// The program as written (`bash`, `python`); looked up on the step's `PATH`.
    pub(crate) program: String,
    /// Other programs to try, in order, when `program` is missing (`python` → `python3`).
    pub(crate) fallbacks: Vec<String>,
    /// Arguments; `{0}` is replaced by the script path.
    pub(crate) args: Vec<String>,
    /// Script file extension, with the dot (`.sh`), or empty.
    pub(crate) extension: &'static str,
    /// What GitHub's Linux runner cannot run either (`pwsh` and `powershell` run when
    /// installed; `cmd` never does).
    pub(crate) windows_only: bool,
    /// Text put around the script (`$ErrorActionPreference` for PowerShell).
    prefix: &'static str,
    suffix: &'static str,
}

/// Why a `shell:` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ShellError {
    #[error(
        "shell `{0}` must contain the placeholder `{{0}}` for the script path (e.g. `{0} {{0}}`)"
    )]
    MissingPlaceholder(String),
    #[error("`shell:` is empty")]
    Empty,
}

const PWSH_PREFIX: &str = "$ErrorActionPreference = 'stop'\n";
const PWSH_SUFFIX: &str =
    "\nif ((Test-Path -LiteralPath variable:\\LASTEXITCODE)) { exit $LASTEXITCODE }";

impl ShellCommand {
    /// The command for `shell` (`None`: unspecified, so `bash -e {0}` when the environment
    /// has bash, else `sh -e {0}`).
    pub(crate) fn resolve(shell: Option<&str>, has_bash: bool) -> Result<ShellCommand, ShellError> {
        let simple = |program: &str, args: &[&str], extension| ShellCommand {
            program: program.to_owned(),
            fallbacks: Vec::new(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            extension,
            windows_only: false,
            prefix: "",
            suffix: "",
        };
        let shell = match shell.map(str::trim) {
            None => {
                return Ok(if has_bash {
                    simple("bash", &["-e", "{0}"], ".sh")
                } else {
                    simple("sh", &["-e", "{0}"], ".sh")
                });
            }
            Some("") => return Err(ShellError::Empty),
            Some(shell) => shell,
        };
        Ok(match shell {
            "bash" => simple(
                "bash",
                &["--noprofile", "--norc", "-eo", "pipefail", "{0}"],
                ".sh",
            ),
            "sh" => simple("sh", &["-e", "{0}"], ".sh"),
            // GitHub runs `python`; many Linux systems only install `python3`, which is what
            // `python` is on GitHub's Ubuntu images, so fall back to it.
            "python" => ShellCommand {
                fallbacks: vec!["python3".to_owned()],
                ..simple("python", &["{0}"], ".py")
            },
            "pwsh" | "powershell" => ShellCommand {
                prefix: PWSH_PREFIX,
                suffix: PWSH_SUFFIX,
                ..simple(shell, &["-command", ". '{0}'"], ".ps1")
            },
            "cmd" => ShellCommand {
                windows_only: true,
                ..simple(
                    "cmd",
                    &["/D", "/E:ON", "/V:OFF", "/S", "/C", "CALL \"{0}\""],
                    ".cmd",
                )
            },
            custom => {
                if !custom.contains("{0}") {
                    return Err(ShellError::MissingPlaceholder(custom.to_owned()));
                }
                let (program, rest) = custom.split_once(' ').unwrap_or((custom, ""));
                // The runner hands the rest to the program as one argument string, which .NET
                // splits at whitespace outside double quotes.
                let args = split_arguments(rest);
                let extension = match program.rsplit('/').next().unwrap_or(program) {
                    "bash" | "sh" | "zsh" | "dash" | "ksh" => ".sh",
                    "python" | "python3" | "python2" => ".py",
                    "pwsh" | "powershell" => ".ps1",
                    "node" => ".js",
                    "perl" => ".pl",
                    "ruby" => ".rb",
                    _ => "",
                };
                ShellCommand {
                    program: program.to_owned(),
                    fallbacks: Vec::new(),
                    args,
                    extension,
                    windows_only: false,
                    prefix: "",
                    suffix: "",
                }
            }
        })
    }

    /// The script file's contents for the step's `run:` text.
    pub(crate) fn script(&self, run: &str) -> String {
        format!("{}{run}{}", self.prefix, self.suffix)
    }

    /// The command line with `program` (as found) and the script path filled in.
    pub(crate) fn argv(&self, program: &str, script_path: &str) -> Vec<String> {
        std::iter::once(program.to_owned())
            .chain(self.args.iter().map(|a| a.replace("{0}", script_path)))
            .collect()
    }
}

/// Splits an argument string the way .NET does on Unix: whitespace separates arguments
/// outside double quotes, `\"` is a literal quote, quotes themselves are removed.
fn split_arguments(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_argument = false;
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
                in_argument = true;
            }
            '"' => {
                in_quotes = !in_quotes;
                in_argument = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if in_argument {
                    args.push(std::mem::take(&mut current));
                    in_argument = false;
                }
            }
            c => {
                current.push(c);
                in_argument = true;
            }
        }
    }
    if in_argument {
        args.push(current);
    }
    args
}

#[cfg(test)]
mod tests;
