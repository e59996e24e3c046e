//! `runnel exec`: the Gitea runner's `exec` command line (`gitea-runner exec -W … -j … -i …`),
//! mapped onto `runnel run`, so both run the same engine through the same job assembly.
//!
//! Every job runs in `--image` whatever its `runs-on` (the Gitea runner's `exec` does the same),
//! or on this machine with `-i -self-hosted`. Flags with the same meaning as `run`'s keep its
//! behaviour; the container flags become `config.yaml`'s `container:` keys. Left out on
//! purpose, with an error saying so: `--json` (runnel's output is line-oriented text) and
//! `--tool-cache-mode` (no shared tool cache yet).
//!
//! Wiring only: the mapping, then `run::execute`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use runnel_config::LabelKind;

use crate::Outcome;
use crate::args::{EventArgs, RunArgs};

/// The Gitea runner's default `exec` image.
pub(crate) const DEFAULT_IMAGE: &str = "docker.gitea.com/runner-images:ubuntu-latest";

#[derive(Args)]
pub(crate) struct ExecArgs {
    /// Event name [default: push; see --detect-event].
    #[arg(value_name = "EVENT")]
    pub(crate) event_name: Option<String>,
    /// Event name (the Gitea runner's flag; the positional EVENT does the same).
    #[arg(
        short = 'E',
        long = "event",
        value_name = "EVENT",
        conflicts_with = "event_name"
    )]
    pub(crate) event: Option<String>,
    /// Take the event from the workflow's first trigger when none is given.
    #[arg(long)]
    pub(crate) detect_event: bool,
    /// Workflow file or directory [default: .gitea/workflows, else .github/workflows].
    #[arg(short = 'W', long = "workflows", value_name = "PATH")]
    pub(crate) workflows: Option<PathBuf>,
    /// Work in this directory (the repository) instead of the current one.
    #[arg(short = 'C', long = "directory", value_name = "DIR")]
    pub(crate) directory: Option<PathBuf>,
    /// Run only this job.
    #[arg(short = 'j', long = "job", value_name = "JOB")]
    pub(crate) job: Option<String>,
    #[command(flatten)]
    pub(crate) event_args: EventArgs,
    /// A secret (repeatable); `-s NAME` alone reads it from the environment.
    #[arg(short = 's', long = "secret", value_name = "K=V")]
    pub(crate) secrets: Vec<String>,
    /// A variable every step's process starts with (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    pub(crate) env: Vec<String>,
    /// A file of such variables [default: .env, when it exists].
    #[arg(long = "env-file", value_name = "FILE")]
    pub(crate) env_file: Option<PathBuf>,
    /// The image every job runs in; `-self-hosted` runs them on this machine.
    #[arg(short = 'i', long = "image", value_name = "IMAGE", default_value = DEFAULT_IMAGE, allow_hyphen_values = true)]
    pub(crate) image: String,
    /// Print the plan and run nothing.
    #[arg(short = 'n', long = "dryrun")]
    pub(crate) dryrun: bool,
    /// List the jobs and run nothing.
    #[arg(short = 'l', long = "list")]
    pub(crate) list: bool,
    /// Run `actions/checkout` of this repository for real instead of using the working tree.
    #[arg(long)]
    pub(crate) no_skip_checkout: bool,
    /// The Docker network job containers join [default: Docker's default bridge].
    #[arg(long, value_name = "NAME")]
    pub(crate) network: Option<String>,
    /// Run job, service and step containers privileged.
    #[arg(long)]
    pub(crate) privileged: bool,
    /// More `docker run` options for every job container.
    #[arg(long = "container-opts", value_name = "OPTIONS")]
    pub(crate) container_opts: Option<String>,
    /// A capability added to job containers (repeatable).
    #[arg(long = "container-cap-add", value_name = "CAP")]
    pub(crate) cap_add: Vec<String>,
    /// A capability dropped from job containers (repeatable).
    #[arg(long = "container-cap-drop", value_name = "CAP")]
    pub(crate) cap_drop: Vec<String>,
    /// The Docker engine (`unix:///path`, `tcp://host:port`); a unix socket is then mounted
    /// into job containers, as the Gitea runner does. `-`: the engine found, not mounted
    /// [default: the engine found, not mounted].
    #[arg(
        long = "container-daemon-socket",
        value_name = "URL",
        allow_hyphen_values = true
    )]
    pub(crate) daemon_socket: Option<String>,
    /// Where the artifact (and cache) server keeps its files.
    #[arg(long = "artifact-server-path", value_name = "DIR")]
    pub(crate) artifact_server_path: Option<PathBuf>,
    /// The address jobs reach the artifact server at.
    #[arg(long = "artifact-server-addr", value_name = "ADDR")]
    pub(crate) artifact_server_addr: Option<String>,
    /// The artifact server's port [default: a free one].
    #[arg(
        long = "artifact-server-port",
        value_name = "PORT",
        default_value_t = 0
    )]
    pub(crate) artifact_server_port: u16,
    /// Where `owner/repo@ref` actions come from [default: https://github.com].
    #[arg(long = "default-actions-url", value_name = "URL")]
    pub(crate) default_actions_url: Option<String>,
    /// The Gitea instance the run pretends to belong to (`github.server_url`).
    #[arg(long = "gitea-instance", value_name = "URL")]
    pub(crate) gitea_instance: Option<String>,
    /// Not supported (runnel has no shared tool cache yet).
    #[arg(long = "tool-cache-mode", value_name = "MODE", hide = true)]
    pub(crate) tool_cache_mode: Option<String>,
    /// Not supported (runnel prints text).
    #[arg(long, hide = true)]
    pub(crate) json: bool,
}

/// What `exec` decides that `run`'s flags cannot say.
#[derive(Debug, Clone)]
pub(crate) struct ExecSettings {
    /// Where every job runs.
    pub(crate) unmatched: LabelKind,
    /// `--network`, `--privileged`, `--container-opts`, `--container-cap-*` and
    /// `--container-daemon-socket` as `container:` keys.
    pub(crate) network: Option<String>,
    pub(crate) privileged: bool,
    pub(crate) options: String,
    pub(crate) docker_host: Option<String>,
    /// `github.server_url` and friends.
    pub(crate) gitea_instance: Option<String>,
}

pub(crate) fn run(args: ExecArgs) -> Result<Outcome> {
    if args.json {
        bail!("--json is not supported: runnel prints line-oriented text (run without --json)");
    }
    if let Some(mode) = &args.tool_cache_mode {
        bail!(
            "--tool-cache-mode {mode} is not supported yet: each job has its own tool cache \
             (run without the flag)"
        );
    }
    if let Some(dir) = &args.directory {
        std::env::set_current_dir(dir).with_context(|| format!("-C {}", dir.display()))?;
    }
    let event = match (
        args.event.clone().or(args.event_name.clone()),
        args.detect_event,
    ) {
        (Some(event), _) => event,
        (None, true) => detect_event(args.workflows.as_deref())?,
        (None, false) => "push".to_owned(),
    };
    let (run_args, settings) = into_run(args, event);
    crate::run::execute(&run_args, Some(&settings))
}

/// `exec`'s flags as `run`'s, plus what only `exec` says.
fn into_run(args: ExecArgs, event: String) -> (RunArgs, ExecSettings) {
    let unmatched = match args.image.trim() {
        "-self-hosted" | "" => LabelKind::Host,
        image => LabelKind::Docker {
            image: image.strip_prefix("docker://").unwrap_or(image).to_owned(),
        },
    };
    let mut options: Vec<String> = args.container_opts.iter().cloned().collect();
    options.extend(args.cap_add.iter().map(|cap| format!("--cap-add {cap}")));
    options.extend(args.cap_drop.iter().map(|cap| format!("--cap-drop {cap}")));
    let settings = ExecSettings {
        unmatched,
        network: args.network,
        privileged: args.privileged,
        options: options.join(" "),
        docker_host: args.daemon_socket,
        gitea_instance: args.gitea_instance,
    };
    let run = RunArgs {
        event,
        workflows: args.workflows,
        job: args.job,
        matrix: Vec::new(),
        event_args: args.event_args,
        secrets: args.secrets,
        secret_file: None,
        var_file: None,
        env: args.env,
        env_file: args.env_file,
        platforms: Vec::new(),
        actions_url: args.default_actions_url,
        ca_bundle: None,
        pull: false,
        rebuild: false,
        summary_dir: None,
        bind: false,
        no_skip_checkout: args.no_skip_checkout,
        plan: args.dryrun,
        list: args.list,
        no_cache_server: false,
        cache_server_path: args.artifact_server_path,
        cache_server_addr: args.artifact_server_addr,
        cache_server_port: args.artifact_server_port,
        cache_size_limit: None,
        cache_s3: None,
        cache_external_server: None,
        cache_secret_file: None,
    };
    (run, settings)
}

/// `--detect-event`: the first trigger of the first workflow file found.
fn detect_event(workflows: Option<&std::path::Path>) -> Result<String> {
    let paths = match workflows {
        Some(path) => vec![path.to_path_buf()],
        None => crate::discover::default_paths()?,
    };
    for path in crate::discover::expand(&paths)? {
        let file = crate::discover::read(&path)?;
        let loaded = runnel_workflow::load_workflow(&file.display, &file.text);
        if let Some((event, _)) = loaded
            .workflow
            .as_ref()
            .and_then(|workflow| workflow.on.events.first())
        {
            return Ok(event.clone());
        }
    }
    bail!("--detect-event: no workflow with a trigger was found")
}
