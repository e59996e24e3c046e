//! Container actions: `uses: docker://image` steps and `runs.using: docker` actions (an image,
//! or a `Dockerfile` built from the action directory). The step runs in a container of its own
//! beside the job (`JobEnvironment::run_container`) that sees the job's directories at
//! GitHub's fixed paths: the workspace at `/github/workspace` (the working directory),
//! `/github/home`, `/github/workflow` (the event payload), `/github/file_commands` (so
//! `GITHUB_OUTPUT` and friends work as for any step) and `/github/runner_temp`. Its env is the
//! step's plus `INPUT_*`, with the default variables' paths rewritten to those.
//!
//! A docker action's `pre-entrypoint` and `post-entrypoint` run in the same image with the
//! same args, env and inputs and only the entrypoint replaced, as hooks (see `hooks`): the pre
//! during job setup, the post after the job's steps; `STATE_*` passes from pre to main to post.
//!
//! Owns: the env, argv and mounts of a step container. Must not: know how a backend makes the
//! container (that is behind the trait).

use std::collections::BTreeMap;

use runnel_expr::{Object, Value};
use runnel_workflow::{DockerRuns, UsesStep};
use tokio_util::sync::CancellationToken;

use super::hooks::{Hook, HookRun};
use super::{ActionStep, input_variable};
use crate::backend::{ContainerMount, ContainerRun, ImageBuild, JobEnvironment};
use crate::contexts;
use crate::job::JobState;
use crate::job::error::StepError;
use crate::job::files::Effects;
use crate::job::step::{StepEnd, StepRun};
use crate::sink::{RunnerLevel, StepRef};

const WORKSPACE: &str = "/github/workspace";
const HOME: &str = "/github/home";
const WORKFLOW: &str = "/github/workflow";
const FILE_COMMANDS: &str = "/github/file_commands";
const RUNNER_TEMP: &str = "/github/runner_temp";

/// What differs between a `docker://` step, a docker action and its hooks.
#[derive(Clone)]
pub(super) struct ContainerStep {
    image: String,
    pub(super) entrypoint: Option<String>,
    args: Vec<String>,
    /// The action's `runs.env` (evaluated), then `INPUT_*` (and `STATE_*` once it runs).
    pub(super) env: Vec<(String, String)>,
}

impl JobState<'_> {
    /// `uses: docker://image`: `with.args` is split like a command line (quotes group),
    /// `with.entrypoint` replaces the entrypoint, and every `with` key is also `INPUT_*`.
    pub(super) async fn run_image_step(
        &mut self,
        run: &StepRun<'_>,
        uses: &UsesStep,
        image: &str,
    ) -> Result<StepEnd, StepError> {
        let prepared = &run.prepared;
        if image.is_empty() {
            return Err(StepError::NoImage {
                uses: uses.uses.value.clone(),
            });
        }
        let with = self
            .expressions
            .evaluate_map(&prepared.contexts, &uses.with)?;
        let find = |key: &str| {
            with.iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(key))
                .map(|(_, value)| value.clone())
        };
        let args = find("args")
            .map(|args| split_args(&args))
            .unwrap_or_default();
        let entrypoint = find("entrypoint").filter(|e| !e.is_empty());
        let env = with
            .iter()
            .map(|(name, value)| (input_variable(name), value.clone()))
            .collect();
        let step = ContainerStep {
            image: image.to_owned(),
            entrypoint,
            args,
            env,
        };
        let (end, effects) = self.run_step_container(run, &step).await?;
        self.pending_outputs = effects.outputs;
        Ok(end)
    }

    /// `runs.using: docker`: the image pulled or built, `runs.args` evaluated with `inputs`
    /// (one argv element each), `runs.env`, `INPUT_*` and the `pre-entrypoint`'s `STATE_*`
    /// added. With a `post-entrypoint`, the post hook is registered once the main part ran.
    pub(super) async fn run_docker_action(
        &mut self,
        run: &StepRun<'_>,
        action: &ActionStep<'_>,
        docker: &DockerRuns,
    ) -> Result<StepEnd, StepError> {
        let state = self.pre_state(action.step);
        let mut container = self
            .docker_action_container(
                run.environment,
                action,
                docker,
                &run.prepared.contexts,
                Some(&run.step_ref),
                &run.token,
            )
            .await?;
        let post = docker.post_entrypoint.as_ref().map(|post| ContainerStep {
            entrypoint: Some(post.value.clone()),
            ..container.clone()
        });
        container.entrypoint = docker.entrypoint.as_ref().map(|e| e.value.clone());
        container.env.extend(state_variables(&state));
        let (end, effects) = self.run_step_container(run, &container).await?;
        self.pending_outputs = effects.outputs;
        if let Some(post) = post {
            let mut all_state = state;
            all_state.extend(effects.state);
            let hook = Hook::post(
                run,
                action,
                HookRun::Container(post),
                docker.post_if.clone(),
                all_state,
            );
            self.actions.posts.push(hook);
        }
        Ok(end)
    }

    /// A docker action's step container without its entrypoint: the image pulled or built
    /// (`step_ref` `None`: during job setup, for a `pre-entrypoint`), `runs.args` and
    /// `runs.env` evaluated with `inputs`, and `INPUT_*`.
    pub(super) async fn docker_action_container(
        &self,
        environment: &dyn JobEnvironment,
        action: &ActionStep<'_>,
        docker: &DockerRuns,
        contexts: &Object,
        step_ref: Option<&StepRef>,
        token: &CancellationToken,
    ) -> Result<ContainerStep, StepError> {
        let (loaded, inputs) = (action.loaded, action.inputs);
        let mut contexts = contexts.clone();
        let mut input_object = Object::new();
        for (name, value) in inputs {
            input_object.insert(name.clone(), Value::String(value.clone()));
        }
        contexts.insert("inputs", Value::Object(input_object.into()));
        let mut args = Vec::new();
        for (n, template) in docker.args.iter().enumerate() {
            args.push(self.expressions.evaluate_string(
                &contexts,
                &format!("runs.args[{n}]"),
                template,
            )?);
        }
        let mut env: Vec<_> = self
            .expressions
            .evaluate_map(&contexts, &docker.env)?
            .into_iter()
            .collect();
        for (name, value) in inputs {
            env.push((input_variable(name), value.clone()));
        }
        let image = match docker.image.value.strip_prefix("docker://") {
            Some(image) => image.to_owned(),
            None => {
                let build = ImageBuild {
                    context: loaded.path.clone(),
                    dockerfile: docker.image.value.trim_start_matches("./").to_owned(),
                };
                self.log.runner(
                    step_ref,
                    RunnerLevel::Info,
                    &format!(
                        "Build container for action use: '{}/{}'",
                        loaded.path, build.dockerfile
                    ),
                );
                let built = environment
                    .build_image(&build, token)
                    .await
                    .map_err(|source| StepError::BuildImage {
                        uses: loaded.uses.clone(),
                        source,
                    })?;
                if built.reused {
                    self.log.runner(
                        step_ref,
                        RunnerLevel::Info,
                        &format!(
                            "Using image {} built earlier from the same files",
                            built.image
                        ),
                    );
                }
                built.image
            }
        };
        Ok(ContainerStep {
            image,
            entrypoint: None,
            args,
            env,
        })
    }

    /// Runs `step` as (a phase of) a step; the caller decides what outputs and state mean.
    pub(super) async fn run_step_container(
        &mut self,
        run: &StepRun<'_>,
        step: &ContainerStep,
    ) -> Result<(StepEnd, Effects), StepError> {
        let (environment, prepared, files) = (run.environment, &run.prepared, &run.files);
        let paths = environment.paths();
        let event_path = contexts::event_path(paths);
        let event_dir = parent(&event_path);
        let commands_dir = parent(&files.output);
        let mut env: BTreeMap<String, String> =
            contexts::default_env(&prepared.contexts, self.request.options);
        for (name, value) in &prepared.env {
            env.insert(name.clone(), value.clone());
        }
        env.extend(step.env.iter().cloned());
        // The job's paths mean nothing inside the step container: point at the mounts. Last,
        // so no `env:` can redirect the file commands.
        let file_command = |path: &str| format!("{FILE_COMMANDS}/{}", file_name(path));
        for (name, value) in [
            ("GITHUB_WORKSPACE", WORKSPACE.to_owned()),
            ("HOME", HOME.to_owned()),
            ("RUNNER_TEMP", RUNNER_TEMP.to_owned()),
            (
                "GITHUB_EVENT_PATH",
                format!("{WORKFLOW}/{}", file_name(&event_path)),
            ),
        ] {
            env.insert(name.to_owned(), value);
        }
        env.extend(crate::contexts::file_command_env(files, file_command));
        let mount = |source: &str, target: &str| ContainerMount {
            source: source.to_owned(),
            target: target.to_owned(),
        };
        let container = ContainerRun {
            image: step.image.clone(),
            entrypoint: step.entrypoint.clone(),
            args: step.args.clone(),
            env,
            workdir: WORKSPACE.to_owned(),
            mounts: vec![
                mount(&paths.workspace, WORKSPACE),
                mount(&format!("{}/_github_home", paths.temp), HOME),
                mount(event_dir, WORKFLOW),
                mount(commands_dir, FILE_COMMANDS),
                mount(&paths.temp, RUNNER_TEMP),
            ],
            timeout: Some(run.limit.duration),
        };
        self.exec_in_step(run, &container).await
    }
}

/// `STATE_<name>` for each saved state.
pub(super) fn state_variables(state: &[(String, String)]) -> Vec<(String, String)> {
    state
        .iter()
        .map(|(name, value)| (format!("STATE_{name}"), value.clone()))
        .collect()
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(dir, _)| dir)
}

fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// `with.args` of a `docker://` step as argv: split at unquoted whitespace; single or double
/// quotes group (and are removed); there are no escapes.
pub(super) fn split_args(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_arg = false;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => current.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_arg = true;
            }
            None if c.is_whitespace() => {
                if in_arg {
                    args.push(std::mem::take(&mut current));
                    in_arg = false;
                }
            }
            None => {
                current.push(c);
                in_arg = true;
            }
        }
    }
    if in_arg {
        args.push(current);
    }
    args
}

#[cfg(test)]
mod tests;
