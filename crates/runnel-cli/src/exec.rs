//! `runnel exec`: the Gitea runner's `exec` command line (`gitea-runner exec -W … -j … -i …`),
//! mapped onto `runnel run`, so both run the same engine through the same job assembly.
//!
//! Every job runs in `--image` whatever its `runs-on` (the Gitea runner's `exec` does the same),
//! or on this machine with `-i -self-hosted`. Flags with the same meaning as `run`'s keep its
//! behaviour; the container flags are `run`'s (act's names, `--container-opts` kept as the
//! Gitea runner spells it) and become `config.yaml`'s `container:` keys. Left out on
//! purpose, with an error saying so: `--json` (runnel's output is line-oriented text),
//! `--insecure-secrets`, `-d/--debug` and `--use-gitignore=false`. `--tool-cache-mode` is
//! `runner.tool_cache_mode`.
//!
//! Wiring only: the mapping, then `run::execute`.

use anyhow::{Context, Result, bail};
use runnel_config::{LabelKind, ToolCacheMode};

use crate::Outcome;
use crate::args::{ExecArgs, RunArgs};
use crate::local_config::ExecSettings;

pub(crate) fn run(args: ExecArgs) -> Result<Outcome> {
    if args.json {
        bail!("--json is not supported: runnel prints line-oriented text (run without --json)");
    }
    if args.insecure_secrets {
        bail!("--insecure-secrets is not supported: runnel always masks secrets");
    }
    if args.debug {
        bail!("-d/--debug is not supported: set RUST_LOG=debug for runnel's own log");
    }
    if args.use_gitignore == Some(false) {
        bail!(
            "--use-gitignore=false is not supported: a job's copy of the tree leaves out what \
             .gitignore names (use --bind with `runnel run` to give jobs the tree itself)"
        );
    }
    let tool_cache_mode = match args.tool_cache_mode.as_deref().map(str::trim) {
        None | Some("" | "none") => ToolCacheMode::None,
        Some("shared") => ToolCacheMode::Shared,
        Some(other) => bail!("--tool-cache-mode {other}: expected `none` or `shared`"),
    };
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
    let (run_args, settings) = into_run(args, event, tool_cache_mode);
    crate::run::execute(&run_args, Some(&settings))
}

/// `exec`'s flags as `run`'s, plus what only `exec` says.
fn into_run(
    args: ExecArgs,
    event: String,
    tool_cache_mode: ToolCacheMode,
) -> (RunArgs, ExecSettings) {
    let unmatched = match args.image.trim() {
        "-self-hosted" | "" => LabelKind::Host,
        image => LabelKind::Docker {
            image: image.strip_prefix("docker://").unwrap_or(image).to_owned(),
        },
    };
    let settings = ExecSettings {
        unmatched,
        docker_host: args.daemon_socket,
        gitea_instance: args.gitea_instance,
        tool_cache_mode,
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
        pull: args.pull,
        rebuild: args.rebuild,
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
        container: args.container,
        config: None,
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
