//! The contexts a job's steps see (`github`, `runner`, `job`, `strategy`, `matrix`, `needs`,
//! `secrets`, `vars`, `inputs`, `env`, `steps`) and the default environment variables of
//! semantics.md 4.3 that mirror them.
//!
//! Owns: turning the plan's contexts plus the environment's paths into those objects.
//! Must not: evaluate workflow keys or run anything.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use runnel_expr::{Object, Value};
use runnel_plan::{Event, JobInstance, NeedOutcome};
use runnel_workflow::Workflow;

use crate::backend::{EnvironmentInfo, EnvironmentPaths, JobEnvironment};
use crate::call_frame::CallFrame;
use crate::options::RunOptions;

/// `strategy.fail-fast` and `strategy.max-parallel` as evaluated for a job (the `strategy`
/// context adds `job-index` and `job-total` from the instance).
#[derive(Debug, Clone, Copy)]
pub struct StrategyInfo {
    pub fail_fast: bool,
    pub max_parallel: f64,
}

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn object(o: Object) -> Value {
    Value::Object(o.into())
}

/// Contexts known before the environment exists: for `env`, `timeout-minutes`,
/// `continue-on-error` and the container keys of the job. Inside a called reusable workflow
/// (`frame`), `github` is the caller's and `inputs` the call's, as on GitHub.
pub(crate) fn job_contexts(
    workflow: &Workflow,
    event: &Event,
    instance: &JobInstance,
    needs: &[NeedOutcome],
    strategy: StrategyInfo,
    options: &RunOptions,
    frame: Option<&CallFrame>,
) -> Object {
    let mut github = match frame {
        Some(frame) => frame.github.clone(),
        None => caller_github(workflow, event),
    };
    github.insert("job", text(&instance.id));
    github.insert("server_url", text(&options.server.server_url));
    github.insert("api_url", text(&options.server.api_url));
    github.insert("graphql_url", text(&options.server.graphql_url));
    let token = options
        .secrets
        .get("GITHUB_TOKEN")
        .map_or("", String::as_str);
    github.insert("token", text(token));
    github.insert("retention_days", text("90"));
    github.insert("secret_source", text("Actions"));
    let host = options
        .server
        .server_url
        .split("://")
        .nth(1)
        .unwrap_or(&options.server.server_url)
        .to_owned();
    github.insert(
        "repositoryUrl",
        text(&format!("git://{host}/{}.git", event.repository)),
    );
    for name in ["actor_id", "repository_id", "repository_owner_id"] {
        github.insert(name, text(""));
    }
    for (name, value) in &options.github_overrides {
        github.insert(name.as_str(), value.clone());
    }

    let mut secrets = Object::new();
    for (name, value) in &options.secrets {
        secrets.insert(name.as_str(), text(value));
    }
    if secrets.get("GITHUB_TOKEN").is_none() {
        secrets.insert("GITHUB_TOKEN", text(token));
    }

    let mut strategy_object = Object::new();
    strategy_object.insert("fail-fast", Value::Bool(strategy.fail_fast));
    strategy_object.insert("job-index", Value::Number(instance.job_index as f64));
    strategy_object.insert("job-total", Value::Number(instance.job_total as f64));
    strategy_object.insert("max-parallel", Value::Number(strategy.max_parallel));

    let mut contexts = Object::new();
    contexts.insert("github", object(github));
    contexts.insert("vars", object(runnel_plan::vars_context(event)));
    let inputs = match frame {
        Some(frame) => frame.inputs.clone(),
        None => runnel_plan::inputs_context(workflow, event),
    };
    contexts.insert("inputs", object(inputs));
    contexts.insert("secrets", object(secrets));
    contexts.insert("needs", object(runnel_plan::needs_context(needs)));
    contexts.insert(
        "matrix",
        object(instance.matrix.clone().unwrap_or_default()),
    );
    contexts.insert("strategy", object(strategy_object));
    contexts.insert("env", object(Object::new_case_sensitive()));
    contexts
}

/// `github` of a top-level workflow's jobs before the job-specific fields: what the event
/// tells, plus `workflow_ref` and `workflow_sha`. Called workflows keep their caller's.
pub(crate) fn caller_github(workflow: &Workflow, event: &Event) -> Object {
    let mut github = runnel_plan::github_context(workflow, event);
    github.insert("workflow_ref", text(&workflow_ref(workflow, event)));
    github.insert("workflow_sha", text(&event.sha));
    github
}

/// `owner/repo/.github/workflows/f.yml@refs/heads/main`.
fn workflow_ref(workflow: &Workflow, event: &Event) -> String {
    let file = workflow.file.trim_start_matches("./");
    let at = file
        .find(".github/workflows/")
        .or_else(|| file.find(".gitea/workflows/"));
    let path = match at {
        Some(at) => file.get(at..).unwrap_or(file),
        None => file,
    };
    format!("{}/{path}@{}", event.repository, event.git_ref)
}

/// Adds what the prepared environment tells: `github.workspace`, the server's URLs as the job
/// reaches them, `runner`, `job`.
pub(crate) fn add_environment(
    contexts: &mut Object,
    environment: &dyn JobEnvironment,
    options: &RunOptions,
) {
    let (paths, info) = (environment.paths(), environment.info());
    let mut github = match contexts.get("github") {
        Some(Value::Object(github)) => (**github).clone(),
        _ => Object::new(),
    };
    github.insert("workspace", text(&paths.workspace));
    github.insert("event_path", text(&event_path(paths)));
    // The server as the job reaches it (a restricted VM's forward); `GITHUB_SERVER_URL` and
    // the other variables follow these fields.
    if let Some(origin) = environment.server_origin() {
        let server = options.server.at_origin(&origin);
        github.insert("server_url", text(&server.server_url));
        github.insert("api_url", text(&server.api_url));
        github.insert("graphql_url", text(&server.graphql_url));
    }
    contexts.insert("github", object(github));

    let mut runner = Object::new();
    runner.insert("name", text(&options.runner.name));
    runner.insert("os", text(&options.runner.os));
    runner.insert("arch", text(&options.runner.arch));
    runner.insert("temp", text(&paths.temp));
    runner.insert("tool_cache", text(&paths.tool_cache));
    runner.insert("debug", text(if options.debug { "1" } else { "" }));
    runner.insert("environment", text(&options.runner.environment));
    contexts.insert("runner", object(runner));

    contexts.insert("job", object(job_context(info, "success")));
}

/// Where `GITHUB_EVENT_PATH` points (as on GitHub: `RUNNER_TEMP/_github_workflow`).
pub(crate) fn event_path(paths: &EnvironmentPaths) -> String {
    format!("{}/_github_workflow/event.json", paths.temp)
}

/// `job`: `status`, and `container`/`services` when the environment has containers.
pub(crate) fn job_context(info: &EnvironmentInfo, status: &str) -> Object {
    let mut job = Object::new();
    job.insert("status", text(status));
    if info.container_id.is_some() || info.network.is_some() {
        let mut container = Object::new();
        container.insert("id", text(info.container_id.as_deref().unwrap_or_default()));
        container.insert("network", text(info.network.as_deref().unwrap_or_default()));
        job.insert("container", object(container));
    }
    if !info.service_ports.is_empty() {
        let mut services = Object::new();
        for (id, ports) in &info.service_ports {
            let mut port_object = Object::new();
            for (container_port, host_port) in ports {
                port_object.insert(container_port.as_str(), text(host_port));
            }
            let mut service = Object::new();
            service.insert("network", text(info.network.as_deref().unwrap_or_default()));
            service.insert("ports", object(port_object));
            services.insert(id.as_str(), object(service));
        }
        job.insert("services", object(services));
    }
    job
}

/// Per-step paths of the file commands.
#[derive(Debug, Clone)]
pub(crate) struct FileCommandPaths {
    pub(crate) env: String,
    pub(crate) output: String,
    pub(crate) path: String,
    pub(crate) state: String,
    pub(crate) step_summary: String,
}

/// `github.*` for one step: its action name and file command paths.
pub(crate) fn add_step(contexts: &mut Object, action: &str, files: &FileCommandPaths) {
    let mut github = match contexts.get("github") {
        Some(Value::Object(github)) => (**github).clone(),
        _ => Object::new(),
    };
    github.insert("action", text(action));
    for name in ["action_path", "action_ref", "action_repository"] {
        github.insert(name, text(""));
    }
    github.insert("env", text(&files.env));
    github.insert("output", text(&files.output));
    github.insert("path", text(&files.path));
    github.insert("state", text(&files.state));
    github.insert("step_summary", text(&files.step_summary));
    contexts.insert("github", object(github));
}

/// Sets `env` to `env`. Names are case-sensitive, as in GitHub's runner on Linux and macOS:
/// `env.Foo` and `env.FOO` are two variables, and `env.foo` finds neither.
pub(crate) fn set_env(contexts: &mut Object, env: &IndexMap<String, String>) {
    let mut env_object = Object::new_case_sensitive();
    for (name, value) in env {
        env_object.insert(name.as_str(), text(value));
    }
    contexts.insert("env", object(env_object));
}

/// A step's file-command variables, `GITHUB_ENV` … `GITHUB_STEP_SUMMARY`, and the `GITEA_*`
/// names the Gitea runner sets for the same files; `at` maps each path to where the step sees
/// it. Set last, so no `env:` can redirect them.
pub(crate) fn file_command_env(
    files: &FileCommandPaths,
    at: impl Fn(&str) -> String,
) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (suffix, path) in [
        ("ENV", &files.env),
        ("OUTPUT", &files.output),
        ("PATH", &files.path),
        ("STATE", &files.state),
        ("STEP_SUMMARY", &files.step_summary),
    ] {
        let value = at(path);
        env.push((format!("GITEA_{suffix}"), value.clone()));
        env.push((format!("GITHUB_{suffix}"), value));
    }
    env
}

/// The default variables of semantics.md 4.3, read back from the contexts so both agree.
pub(crate) fn default_env(contexts: &Object, options: &RunOptions) -> BTreeMap<String, String> {
    let field = |context: &str, name: &str| -> String {
        match contexts.get(context) {
            Some(Value::Object(o)) => o
                .get(name)
                .map(Value::to_display_string)
                .unwrap_or_default(),
            _ => String::new(),
        }
    };
    let mut env = BTreeMap::new();
    let mut set = |name: &str, value: String| {
        env.insert(name.to_owned(), value);
    };
    set("CI", "true".to_owned());
    set("GITHUB_ACTIONS", "true".to_owned());
    set("GITEA_ACTIONS", "true".to_owned());
    set(
        "GITEA_ACTIONS_RUNNER_VERSION",
        format!("runnel-{}", env!("CARGO_PKG_VERSION")),
    );
    for (variable, name) in [
        ("GITHUB_ACTION", "action"),
        ("GITHUB_ACTION_PATH", "action_path"),
        ("GITHUB_ACTION_REF", "action_ref"),
        ("GITHUB_ACTION_REPOSITORY", "action_repository"),
        ("GITHUB_ACTOR", "actor"),
        ("GITHUB_ACTOR_ID", "actor_id"),
        ("GITHUB_API_URL", "api_url"),
        ("GITHUB_BASE_REF", "base_ref"),
        ("GITHUB_HEAD_REF", "head_ref"),
        ("GITHUB_ENV", "env"),
        ("GITHUB_OUTPUT", "output"),
        ("GITHUB_PATH", "path"),
        ("GITHUB_STATE", "state"),
        ("GITHUB_STEP_SUMMARY", "step_summary"),
        ("GITHUB_EVENT_NAME", "event_name"),
        ("GITHUB_EVENT_PATH", "event_path"),
        ("GITHUB_GRAPHQL_URL", "graphql_url"),
        ("GITHUB_JOB", "job"),
        ("GITHUB_REF", "ref"),
        ("GITHUB_REF_NAME", "ref_name"),
        ("GITHUB_REF_PROTECTED", "ref_protected"),
        ("GITHUB_REF_TYPE", "ref_type"),
        ("GITHUB_REPOSITORY", "repository"),
        ("GITHUB_REPOSITORY_ID", "repository_id"),
        ("GITHUB_REPOSITORY_OWNER", "repository_owner"),
        ("GITHUB_REPOSITORY_OWNER_ID", "repository_owner_id"),
        ("GITHUB_RETENTION_DAYS", "retention_days"),
        ("GITHUB_RUN_ATTEMPT", "run_attempt"),
        ("GITHUB_RUN_ID", "run_id"),
        ("GITHUB_RUN_NUMBER", "run_number"),
        ("GITHUB_SERVER_URL", "server_url"),
        ("GITHUB_SHA", "sha"),
        ("GITHUB_TRIGGERING_ACTOR", "triggering_actor"),
        ("GITHUB_WORKFLOW", "workflow"),
        ("GITHUB_WORKFLOW_REF", "workflow_ref"),
        ("GITHUB_WORKFLOW_SHA", "workflow_sha"),
        ("GITHUB_WORKSPACE", "workspace"),
    ] {
        set(variable, field("github", name));
    }
    set("RUNNER_ARCH", field("runner", "arch"));
    set("RUNNER_ENVIRONMENT", field("runner", "environment"));
    set("RUNNER_NAME", field("runner", "name"));
    set("RUNNER_OS", field("runner", "os"));
    set("RUNNER_TEMP", field("runner", "temp"));
    // GitHub's runner: the directory that holds the workspace (`/home/runner/work/repo` for
    // `…/repo/repo`).
    let workspace = field("github", "workspace");
    let parent = workspace
        .trim_end_matches('/')
        .rsplit_once('/')
        .map_or(
            "/",
            |(parent, _)| if parent.is_empty() { "/" } else { parent },
        )
        .to_owned();
    set("RUNNER_WORKSPACE", parent);
    set("RUNNER_TOOL_CACHE", field("runner", "tool_cache"));
    if options.debug {
        set("RUNNER_DEBUG", "1".to_owned());
    }
    env
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::backend::{BackendError, ExecExit, ExecOutput, ExecRequest};

    /// An environment that only tells where it reaches the run's server.
    struct Elsewhere {
        paths: EnvironmentPaths,
        info: EnvironmentInfo,
        server_origin: Option<String>,
    }

    #[async_trait::async_trait]
    impl JobEnvironment for Elsewhere {
        fn paths(&self) -> &EnvironmentPaths {
            &self.paths
        }
        fn info(&self) -> &EnvironmentInfo {
            &self.info
        }
        fn server_origin(&self) -> Option<String> {
            self.server_origin.clone()
        }
        async fn exec(
            &self,
            _: &ExecRequest,
            _: mpsc::Sender<ExecOutput>,
            _: &CancellationToken,
        ) -> Result<ExecExit, BackendError> {
            Ok(ExecExit::Code(0))
        }
        async fn write_file(&self, _: &str, _: &[u8], _: bool) -> Result<(), BackendError> {
            Ok(())
        }
        async fn read_file(&self, _: &str) -> Result<Option<Vec<u8>>, BackendError> {
            Ok(None)
        }
        async fn teardown(&self) -> Result<(), BackendError> {
            Ok(())
        }
    }

    fn github_field(contexts: &Object, name: &str) -> String {
        match contexts.get("github") {
            Some(Value::Object(github)) => github
                .get(name)
                .map(Value::to_display_string)
                .unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// An environment that reaches the server elsewhere (a VM's forward) has the job see
    /// the server's URLs there, paths kept; `GITHUB_SERVER_URL` and the like follow; one
    /// that does not leaves them as the run has them.
    #[test]
    fn the_server_urls_follow_the_environments_origin() {
        let mut options = RunOptions::local(None);
        options.server = crate::ServerUrls::gitea("http://127.0.0.1:3000/sub/");
        let environment = |server_origin: Option<&str>| Elsewhere {
            paths: EnvironmentPaths {
                workspace: "/w".to_owned(),
                temp: "/t".to_owned(),
                tool_cache: "/tc".to_owned(),
                home: "/h".to_owned(),
            },
            info: EnvironmentInfo::default(),
            server_origin: server_origin.map(str::to_owned),
        };
        let mut contexts = Object::new();
        add_environment(
            &mut contexts,
            &environment(Some("http://10.0.2.101:3000")),
            &options,
        );
        assert_eq!(
            github_field(&contexts, "server_url"),
            "http://10.0.2.101:3000/sub"
        );
        assert_eq!(
            github_field(&contexts, "api_url"),
            "http://10.0.2.101:3000/sub/api/v1"
        );
        let env = default_env(&contexts, &options);
        assert_eq!(env["GITHUB_SERVER_URL"], "http://10.0.2.101:3000/sub");
        assert_eq!(env["GITHUB_API_URL"], "http://10.0.2.101:3000/sub/api/v1");
        let mut contexts = Object::new();
        add_environment(&mut contexts, &environment(None), &options);
        assert_eq!(github_field(&contexts, "server_url"), "");
    }
}
