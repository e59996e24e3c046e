//! `runnel register`: asks for what the flags leave out when a terminal is attached (never
//! with `--no-interactive`), then registers through `runnel_daemon::register`.
//!
//! Terminal IO only; the sequence and the `.runner` file live in the daemon crate.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use runnel_config::{Config, DEFAULT_LABELS};
use runnel_daemon::RegisterOptions;

use crate::Outcome;
use crate::args::RegisterArgs;
use crate::common::{init_logging, load_config, version};

pub(crate) fn run(args: &RegisterArgs) -> Result<Outcome> {
    let config = match &args.config {
        Some(path) => load_config(path)?,
        None => Config::default(),
    };
    init_logging(&config.log.level);
    let interactive = !args.no_interactive && std::io::stdin().is_terminal();
    let mut prompt = Prompt {
        interactive,
        input: std::io::stdin().lock(),
    };
    let instance = match &args.instance {
        Some(instance) => instance.clone(),
        None => prompt.ask(
            "Gitea instance URL (for example https://gitea.example.com/)",
            None,
        )?,
    };
    let token = match given_token(args)? {
        Some(token) => token,
        None => prompt.ask("Runner registration token", None)?,
    };
    if instance.trim().is_empty() || token.trim().is_empty() {
        bail!(
            "--instance and a token (--token, --token-file or GITEA_RUNNER_REGISTRATION_TOKEN) \
             are needed (or run in a terminal without --no-interactive)"
        );
    }
    let hostname = host_name();
    let name = match &args.name {
        Some(name) => name.clone(),
        None if interactive => prompt.ask("Runner name", Some(&hostname))?,
        None => hostname,
    };
    // The config's labels win over the flag's, as in the Gitea runner (v3.3), which says so.
    let labels = if !config.runner.labels.is_empty() {
        if !args.labels.is_empty() {
            eprintln!(
                "runnel: warning: --labels is ignored: the config's runner.labels are registered"
            );
        }
        config.runner.labels.clone()
    } else if !args.labels.is_empty() {
        args.labels.clone()
    } else {
        let default = DEFAULT_LABELS.join(",");
        let answer = if interactive {
            prompt.ask(
                "Labels, comma separated (NAME, NAME:host, NAME:docker://IMAGE)",
                Some(&default),
            )?
        } else {
            default
        };
        answer
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let options = RegisterOptions {
        instance: instance.trim().to_owned(),
        token,
        name,
        labels,
        ephemeral: args.ephemeral,
        runner_file: config.runner.file.clone(),
        insecure: config.runner.insecure,
        transport: config.runner.transport,
        version: version(),
        ping_timeout: Duration::from_secs(30),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let file = runtime.block_on(runnel_daemon::register(&options))?;
    println!(
        "registered runner `{}` (id {}) with {}; labels: {}; saved to {}",
        file.name,
        file.id,
        file.address,
        file.labels.join(", "),
        display(&options.runner_file)
    );
    Ok(Outcome::Success)
}

/// The registration token from `--token`, `--token-file`, or the Gitea runner's container
/// variables (`GITEA_RUNNER_REGISTRATION_TOKEN`, `…_TOKEN_FILE`), in that order.
fn given_token(args: &RegisterArgs) -> Result<Option<String>> {
    if let Some(token) = &args.token {
        return Ok(Some(token.clone()));
    }
    let from_file = |path: &Path| -> Result<String> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read the registration token from {}", path.display()))?;
        Ok(text.lines().next().unwrap_or_default().trim().to_owned())
    };
    if let Some(path) = &args.token_file {
        return from_file(path).map(Some);
    }
    if let Some(token) = std::env::var("GITEA_RUNNER_REGISTRATION_TOKEN")
        .ok()
        .filter(|token| !token.trim().is_empty())
    {
        return Ok(Some(token.trim().to_owned()));
    }
    match std::env::var_os("GITEA_RUNNER_REGISTRATION_TOKEN_FILE") {
        Some(path) if !path.is_empty() => from_file(Path::new(&path)).map(Some),
        _ => Ok(None),
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

struct Prompt<R> {
    interactive: bool,
    input: R,
}

impl<R: BufRead> Prompt<R> {
    /// Asks `question`; an empty answer takes `default`. Without a terminal nothing is asked
    /// and the answer is empty.
    fn ask(&mut self, question: &str, default: Option<&str>) -> Result<String> {
        if !self.interactive {
            return Ok(String::new());
        }
        let mut stderr = std::io::stderr();
        match default {
            Some(default) => write!(stderr, "{question} [{default}]: ")?,
            None => write!(stderr, "{question}: ")?,
        }
        stderr.flush()?;
        let mut line = String::new();
        self.input.read_line(&mut line).context("read the answer")?;
        let answer = line.trim();
        Ok(match (answer.is_empty(), default) {
            (true, Some(default)) => default.to_owned(),
            _ => answer.to_owned(),
        })
    }
}

/// This machine's host name, for the default runner name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "runnel".to_owned())
}
