//! Command-line arguments: what each subcommand accepts, validated into plain values.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "runnel",
    version,
    about = "A Gitea Actions runner",
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Check workflow files and report every problem with file:line:col.
    Validate(ValidateArgs),
    /// Evaluate an expression (or JSON lines from stdin) and print the value as JSON.
    Eval(EvalArgs),
    /// Show which workflows an event triggers and the job instances each would run.
    Plan(PlanArgs),
    /// Run workflows locally, like `act`: live output per job and step, a summary, exit 1
    /// when a job failed.
    Run(RunArgs),
    /// Register this machine as a runner of a Gitea instance (writes the `.runner` file).
    Register(RegisterArgs),
    /// Run as a Gitea runner: take jobs from Gitea and report them back.
    Daemon(DaemonArgs),
    /// Print the commented example config.yaml.
    GenerateConfig,
    /// Load and plan workflow files repeatedly in-process (for tests/bench).
    #[command(hide = true)]
    BenchParse(BenchArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

#[derive(Args)]
pub(crate) struct ValidateArgs {
    /// Workflow files or directories [default: .gitea/workflows, else .github/workflows].
    pub(crate) paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

#[derive(Args)]
pub(crate) struct EvalArgs {
    /// JSON object whose keys are the contexts the expression may use.
    #[arg(long, value_name = "FILE.json")]
    pub(crate) context: Option<PathBuf>,
    /// The expression (without `${{ }}`). Without it, JSON lines are read from stdin.
    pub(crate) expr: Option<String>,
}

#[derive(Args)]
pub(crate) struct PlanArgs {
    /// Workflow file or directory [default: .gitea/workflows, else .github/workflows].
    #[arg(short = 'W', long = "workflows", value_name = "PATH")]
    pub(crate) workflows: Option<PathBuf>,
    /// Event name.
    #[arg(long, default_value = "push")]
    pub(crate) event: String,
    #[command(flatten)]
    pub(crate) event_args: EventArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

/// What the event carries besides its name; shared by `plan` and `run`.
#[derive(Args)]
pub(crate) struct EventArgs {
    /// Git ref of the event, e.g. refs/heads/main or refs/tags/v1 [default: the working
    /// tree's branch, else refs/heads/main].
    #[arg(long = "ref")]
    pub(crate) git_ref: Option<String>,
    /// Commit SHA of the event [default: the working tree's HEAD].
    #[arg(long)]
    pub(crate) sha: Option<String>,
    /// A workflow_dispatch input (repeatable).
    #[arg(long = "input", value_name = "K=V", value_parser = key_value)]
    pub(crate) inputs: Vec<(String, String)>,
    /// JSON file with the event payload (github.event).
    #[arg(short = 'e', long, value_name = "FILE")]
    pub(crate) eventpath: Option<PathBuf>,
    /// A configuration variable, `vars.K` (repeatable).
    #[arg(long = "var", value_name = "K=V", value_parser = key_value)]
    pub(crate) vars: Vec<(String, String)>,
    /// A changed file, for `paths` filters (repeatable); unknown when absent.
    #[arg(long = "changed-file", value_name = "PATH")]
    pub(crate) changed_files: Vec<String>,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Event name.
    #[arg(default_value = "push")]
    pub(crate) event: String,
    /// Workflow file or directory [default: .gitea/workflows, else .github/workflows].
    #[arg(short = 'W', long = "workflows", value_name = "PATH")]
    pub(crate) workflows: Option<std::path::PathBuf>,
    /// Run only this job (all its matrix legs).
    #[arg(short = 'j', long = "job", value_name = "JOB")]
    pub(crate) job: Option<String>,
    #[command(flatten)]
    pub(crate) event_args: EventArgs,
    /// A secret (repeatable). `-s NAME` alone reads the value from the environment.
    #[arg(short = 's', long = "secret", value_name = "K=V")]
    pub(crate) secrets: Vec<String>,
    /// A file of secrets, one `K=V` per line.
    #[arg(long = "secret-file", value_name = "FILE")]
    pub(crate) secret_file: Option<std::path::PathBuf>,
    /// A file of variables, one `K=V` per line.
    #[arg(long = "var-file", value_name = "FILE")]
    pub(crate) var_file: Option<std::path::PathBuf>,
    /// Label mapping (repeatable): `LABEL=IMAGE` or `LABEL=docker://IMAGE` runs that label's
    /// jobs in a container of IMAGE; `LABEL=-self-hosted` on this machine. Unmapped labels run
    /// on this machine.
    #[arg(short = 'P', long = "platform", value_name = "LABEL=IMAGE")]
    pub(crate) platforms: Vec<String>,
    /// Where `owner/repo@ref` actions are cloned from (a Gitea instance, or `file:///dir` of
    /// git repositories) [default: https://github.com].
    #[arg(long = "actions-url", value_name = "URL")]
    pub(crate) actions_url: Option<String>,
    /// Print the plan and run nothing.
    #[arg(long)]
    pub(crate) plan: bool,
}

#[derive(Args)]
pub(crate) struct RegisterArgs {
    /// Config file (for `runner.file`, `runner.insecure`, `runner.transport`).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The Gitea instance URL, e.g. https://gitea.example.com/.
    #[arg(long)]
    pub(crate) instance: Option<String>,
    /// The runner registration token (from Gitea's runner settings).
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// The runner's name [default: this machine's host name].
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Labels, comma separated: NAME, NAME:host or NAME:docker://IMAGE [default: the Gitea
    /// runner's ubuntu-* docker labels].
    #[arg(long, value_delimiter = ',')]
    pub(crate) labels: Vec<String>,
    /// Never prompt; take everything from the flags.
    #[arg(long)]
    pub(crate) no_interactive: bool,
    /// Register an ephemeral runner: it takes one job, then Gitea removes it (Gitea 1.24+).
    #[arg(long)]
    pub(crate) ephemeral: bool,
}

#[derive(Args)]
pub(crate) struct DaemonArgs {
    /// Config file [default: built-in defaults, as `runnel generate-config` prints them].
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Run one job, then exit.
    #[arg(long)]
    pub(crate) once: bool,
}

#[derive(Args)]
pub(crate) struct BenchArgs {
    #[arg(long, default_value_t = 10)]
    pub(crate) iterations: u32,
    pub(crate) files: Vec<PathBuf>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected K=V, got {s:?}")),
    }
}
