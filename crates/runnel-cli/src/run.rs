//! `runnel run`: runs the workflows an event triggers on this machine, like `act`, with live
//! output per job and step, a summary table, and exit code 1 when a job failed.
//!
//! Wiring only: events come from `plan::event_from_args`; the flags become a `Config` (the `-P`
//! mappings its labels, the cache and container flags its sections) that `runnel_assembly`
//! turns into the backends and the cache service, as for the daemon (unmapped labels run on
//! this machine); jobs run in `runnel_engine`, output through `terminal::TerminalSink` (which
//! also prints each job's step summaries after it; `--summary-dir` writes them to files at the
//! end). Warnings of the assembly and the engine (`tracing`, at warn level unless `RUST_LOG`
//! says otherwise) go to stderr.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use runnel_assembly::{Assembly, LocalRun, Purpose};
use runnel_config::LabelKind;
use runnel_engine::{JobResult, WorkflowResult};
use tokio_util::sync::CancellationToken;

use crate::Outcome;
use crate::args::RunArgs;
use crate::common::{default_file, key_values_with_file, read_key_values};
use crate::discover;
use crate::local_config::{ExecSettings, config_from_args};
use crate::plan;
use crate::terminal::{Colour, JobSummary, TerminalSink, result_style, seconds};

pub(crate) fn run(args: &RunArgs) -> Result<Outcome> {
    execute(args, None)
}

/// `run`, or `exec` with what only its flags say.
pub(crate) fn execute(args: &RunArgs, exec: Option<&ExecSettings>) -> Result<Outcome> {
    let mut event = plan::event_from_args(&args.event, &args.event_args)?;
    if let Some(path) = default_file(args.var_file.as_deref(), ".vars") {
        // `--var` wins over the file.
        let mut vars = read_key_values(&path)?;
        vars.retain(|(name, _)| !event.vars.iter().any(|(given, _)| given == name));
        vars.append(&mut event.vars);
        event.vars = vars;
    }
    let secrets = secrets_from_args(args)?;
    let config = config_from_args(args, exec)?;

    let paths = match &args.workflows {
        Some(path) => vec![path.clone()],
        None => discover::default_paths()?,
    };
    let mut workflows = Vec::new();
    let mut invalid = false;
    for path in discover::expand(&paths)? {
        let file = discover::read(&path)?;
        let loaded = runnel_workflow::load_workflow(&file.display, &file.text);
        if loaded.has_errors() {
            invalid = true;
            for diagnostic in &loaded.diagnostics {
                eprintln!("{}", runnel_workflow::render(diagnostic, &file.text));
            }
            continue;
        }
        if let Some(workflow) = loaded.workflow {
            let workflow_plan = runnel_plan::plan_workflow(&file.display, &workflow, &event);
            workflows.push((workflow, workflow_plan));
        }
    }
    if invalid {
        return Ok(Outcome::Failed);
    }
    if args.plan || args.list {
        let plans: Vec<_> = workflows.into_iter().map(|(_, p)| p).collect();
        plan::print_text(&plans, &event);
        return Ok(Outcome::Success);
    }

    let workspace = std::env::current_dir().context("current directory")?;
    let purpose = Purpose::Local(LocalRun {
        workspace,
        bind_workspace: args.bind,
        real_checkout: args.no_skip_checkout,
        unmatched: exec.map_or(LabelKind::Host, |exec| exec.unmatched.clone()),
        container_platform: args.container.architecture.clone(),
    });
    // The assembly's warnings (a leftover it could not remove, a job without a cache) go to
    // stderr as whole lines; the job output goes to stdout through the sink.
    crate::common::init_logging("warn");
    let sink = Arc::new(TerminalSink::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let assembly = runtime.block_on(Assembly::start(&config, purpose))?;
    let mut options = assembly.options().clone();
    options.secrets = secrets;
    options.job_filter = args.job.clone();
    options.matrix_filter = args.matrix.clone();
    options.local_checkout = !args.no_skip_checkout;
    if options.local_checkout {
        // act and the Gitea runner's `exec` tell jobs that their checkout of this tree is
        // skipped; like `ACT`, a variable of the steps' processes, and `--env` wins.
        options
            .env
            .entry("ACT_SKIP_CHECKOUT".to_owned())
            .or_insert_with(|| "true".to_owned());
    }
    if let Some(remote) = discover::origin_remote()
        && !remote.server_url.eq_ignore_ascii_case("https://github.com")
    {
        // A Gitea (or other forge) remote: `github.server_url` and friends name it.
        options.server = runnel_engine::ServerUrls::gitea(&remote.server_url);
    }
    if let Some(url) = &args.actions_url {
        options.actions_url = url.clone();
    }
    if let Some(instance) = exec.and_then(|exec| exec.gitea_instance.as_deref()) {
        options.server = runnel_engine::ServerUrls::gitea(instance);
    }
    let backend = assembly.router();
    let cancel = CancellationToken::new();
    runtime.spawn(cancel_on_ctrl_c(cancel.clone(), sink.clone()));
    runtime.block_on(async { runnel_backends::host::restore_default_signals_for_steps() });

    let mut failed = false;
    let mut ran = 0;
    for (workflow, workflow_plan) in &workflows {
        if let Some(reason) = &workflow_plan.not_triggered {
            sink.println(&sink.paint(
                Colour::Dim,
                &format!(
                    "{}: not triggered by `{}`: {reason}",
                    workflow_plan.file, event.name
                ),
            ));
            continue;
        }
        ran += 1;
        sink.println(&sink.paint(
            Colour::Bold,
            &format!("== {} ({})", workflow_plan.name, workflow_plan.file),
        ));
        let result = runtime.block_on(runnel_engine::run_workflow(
            workflow,
            &event,
            &options,
            backend,
            sink.clone(),
            cancel.clone(),
        ));
        let result = match result {
            Ok(result) => result,
            Err(error) => {
                finish_teardowns(&runtime, &assembly, &sink);
                bail!("{}: {error}", workflow_plan.file)
            }
        };
        print_summary(&sink, &result);
        failed |= result.result != JobResult::Success;
    }
    finish_teardowns(&runtime, &assembly, &sink);
    if let Some(dir) = &args.summary_dir {
        write_summaries(dir, &sink.job_summaries())?;
    }
    if ran == 0 {
        eprintln!(
            "runnel: no workflow is triggered by `{}` on {}",
            event.name, event.git_ref
        );
    }
    Ok(if failed {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

/// The first Ctrl-C cancels the run (steps are killed, `always()` steps still run, everything
/// is cleaned up); a second one exits at once.
async fn cancel_on_ctrl_c(cancel: CancellationToken, sink: Arc<TerminalSink>) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    sink.println("runnel: cancelling (Ctrl-C again to exit now)");
    cancel.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(130);
    }
}

fn print_summary(sink: &TerminalSink, result: &WorkflowResult) {
    sink.println("");
    let width = result
        .jobs
        .iter()
        .map(|j| j.name.chars().count())
        .max()
        .unwrap_or(3)
        .max(3);
    sink.println(&sink.paint(Colour::Bold, &format!("{:<width$}  RESULT     TIME", "JOB")));
    for job in &result.jobs {
        let (colour, mark) = result_style(job.result);
        let status = format!("{mark} {:<9}", job.result.as_str());
        let note = if job.continue_on_error && job.result == JobResult::Failure {
            " (continue-on-error)"
        } else {
            ""
        };
        sink.println(&format!(
            "{:<width$}  {}  {}{note}",
            job.name,
            sink.paint(colour, &status),
            seconds(job.duration)
        ));
    }
    let (colour, mark) = result_style(result.result);
    sink.println(&sink.paint(
        colour,
        &format!(
            "{mark} workflow {} in {}",
            result.result.as_str(),
            seconds(result.duration)
        ),
    ));
}

/// `--summary-dir`: one `<job key>.md` per job that wrote a summary (characters other than
/// letters, digits, `-`, `_` and `.` in the key become `_`; a called job `call/inner` is
/// `call_inner.md`). Jobs of several workflows with one key share a file.
fn write_summaries(dir: &Path, summaries: &[JobSummary]) -> Result<()> {
    if summaries.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for summary in summaries {
        let name: String = summary
            .key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        files
            .entry(format!("{name}.md"))
            .or_default()
            .push_str(&summary.markdown());
    }
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// `-s NAME=VALUE`, `-s NAME` (value from the environment, as act does) and `--secret-file`.
fn secrets_from_args(args: &RunArgs) -> Result<BTreeMap<String, String>> {
    key_values_with_file(&args.secrets, args.secret_file.as_deref(), ".secrets", "-s")
}

/// Waits until the containers of finished jobs are removed (they go in the background).
fn finish_teardowns(runtime: &tokio::runtime::Runtime, assembly: &Assembly, sink: &TerminalSink) {
    if let Err(error) = runtime.block_on(assembly.finish()) {
        sink.println(&format!(
            "runnel: warning: cleaning up after the jobs: {error}"
        ));
    }
}
