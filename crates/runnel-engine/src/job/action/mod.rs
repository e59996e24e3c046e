//! `uses:` steps: finding the action (local actions in the workspace, repository actions
//! fetched through the [`ActionSource`] and copied into the environment), reading its
//! `action.yml`, evaluating its inputs, and handing it to the runner for its kind (composite
//! node, or container).
//!
//! Owns: [`JobActions`] (the job's fetched actions, `pre` state and pending `post` hooks) and
//! [`LoadedAction`]. Must not: read the job's files other than through the environment; only
//! the fetched copy on this machine is read directly, to copy it in.

mod checkout;
mod composite;
mod container;
mod hooks;
mod node;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use runnel_workflow::{Action, ActionRuns, Step, UsesStep, load_action, render};
use tokio_util::sync::CancellationToken;

pub(crate) use composite::CompositeFrame;

use super::JobState;
use super::error::StepError;
use super::exec::write;
use super::step::{Ended, PreparedStep, StepEnd, StepRun};
use crate::actions::{
    ActionReference, ActionSource, GitActionSource, RemoteAction, contained, ghes,
};
use crate::backend::JobEnvironment;
use crate::sink::{RunnerLevel, StepRef};

/// What a job keeps about its actions.
#[derive(Default)]
pub(crate) struct JobActions {
    /// Repository actions already in the environment, by `uses` text.
    remote: HashMap<String, Arc<LoadedAction>>,
    /// `STATE_*` saved by `pre` hooks, by the index of the job step.
    pre_state: HashMap<usize, Vec<(String, String)>>,
    /// `post` hooks in the order their main parts ran (they run in reverse).
    posts: Vec<hooks::Hook>,
}

/// A `uses:` step whose action is loaded and whose `with:` is evaluated.
pub(super) struct ActionStep<'m> {
    pub(super) step: &'m Step,
    pub(super) loaded: &'m Arc<LoadedAction>,
    pub(super) inputs: &'m IndexMap<String, String>,
}

/// An action whose metadata is read and whose files are in the environment.
pub(crate) struct LoadedAction {
    action: Action,
    /// The `uses` text, for messages.
    uses: String,
    /// The action directory inside the environment (`GITHUB_ACTION_PATH`).
    path: String,
    /// `github.action_repository` and `github.action_ref`; empty for local actions.
    repository: String,
    git_ref: String,
}

/// `INPUT_<NAME>`: upper-cased, spaces become `_`, other characters are kept.
fn input_variable(name: &str) -> String {
    format!("INPUT_{}", name.replace(' ', "_").to_uppercase())
}

impl JobState<'_> {
    fn action_source(&self) -> Arc<dyn ActionSource> {
        match &self.request.options.action_source {
            Some(source) => Arc::clone(source),
            None => Arc::new(GitActionSource::new(
                self.request.options.actions_cache.clone(),
            )),
        }
    }

    pub(super) async fn run_action(
        &mut self,
        run: &StepRun<'_>,
        step: &Step,
        uses: &UsesStep,
    ) -> Result<StepEnd, StepError> {
        if let Some(image) = uses.uses.value.strip_prefix("docker://") {
            return self.run_image_step(run, uses, image).await;
        }
        if self.is_local_checkout(uses) {
            self.skip_local_checkout(uses, &run.step_ref);
            return Ok(StepEnd::Exited(Ended::Success));
        }
        let loaded = self
            .load_action(
                run.environment,
                &uses.uses.value,
                Some(&run.step_ref),
                &run.token,
            )
            .await?;
        let inputs = self.action_inputs(&loaded, uses, &run.prepared, &run.step_ref)?;
        let action = ActionStep {
            step,
            loaded: &loaded,
            inputs: &inputs,
        };
        match &loaded.action.runs {
            ActionRuns::Composite(composite) => self.run_composite(run, &action, composite).await,
            ActionRuns::Node(node) => self.run_node_main(run, &action, node).await,
            ActionRuns::Docker(docker) => self.run_docker_action(run, &action, docker).await,
        }
    }

    async fn load_action(
        &mut self,
        environment: &dyn JobEnvironment,
        uses: &str,
        step_ref: Option<&StepRef>,
        token: &CancellationToken,
    ) -> Result<Arc<LoadedAction>, StepError> {
        let options = self.request.options;
        match ActionReference::parse(uses, &options.actions_url, &options.server.server_url) {
            None => Err(StepError::InvalidReference {
                uses: uses.to_owned(),
            }),
            Some(ActionReference::Container(_)) => Err(StepError::ContainerReference {
                uses: uses.to_owned(),
            }),
            Some(ActionReference::Local(path)) => {
                let workspace = &environment.paths().workspace;
                let relative = path.trim_start_matches("./").trim_end_matches('/');
                let directory = if relative.is_empty() || relative == "." {
                    workspace.clone()
                } else {
                    format!("{workspace}/{relative}")
                };
                let action = read_metadata(environment, &directory, uses, true).await?;
                Ok(Arc::new(LoadedAction {
                    action,
                    uses: uses.to_owned(),
                    path: directory,
                    repository: String::new(),
                    git_ref: String::new(),
                }))
            }
            Some(ActionReference::Remote(remote)) => {
                self.load_remote(environment, &remote, step_ref, token)
                    .await
            }
        }
    }

    /// Fetches (or finds in the cache) a repository action, copies it into the environment
    /// once per job and reads its metadata.
    async fn load_remote(
        &mut self,
        environment: &dyn JobEnvironment,
        remote: &RemoteAction,
        step_ref: Option<&StepRef>,
        token: &CancellationToken,
    ) -> Result<Arc<LoadedAction>, StepError> {
        if let Some(loaded) = self.actions.remote.get(&remote.uses) {
            return Ok(Arc::clone(loaded));
        }
        let source = self.action_source();
        let fetched = source
            .fetch(remote, token)
            .await
            .map_err(|source| StepError::Fetch {
                uses: remote.uses.clone(),
                source,
                hint: self.fetch_hint(remote),
            })?;
        let verb = if fetched.downloaded {
            "Download"
        } else {
            "Using cached"
        };
        self.log.runner(
            step_ref,
            RunnerLevel::Info,
            &format!(
                "{verb} action repository '{}' (SHA:{})",
                remote.uses, fetched.commit
            ),
        );
        let target = format!(
            "{}/_actions/{}/{}",
            environment.paths().temp,
            remote.repository,
            fetched.commit
        );
        let lift = self.request.options.patch_actions
            && ghes::toolkit_refuses(&self.request.options.server.server_url);
        let copied = copy_into_environment(environment, &fetched.directory, &target, lift).await?;
        for (link, text) in &copied.refused_links {
            self.log.runner(
                step_ref,
                RunnerLevel::Warning,
                &format!(
                    "Left out {}/{link}: it is a symbolic link to `{text}`, outside the \
                     action's repository, and the runner never reads host files for an action",
                    remote.repository
                ),
            );
        }
        for (file, guards) in copied.lifted {
            self.log.runner(
                step_ref,
                RunnerLevel::Info,
                &format!(
                    "Lifted {guards} GHESNotSupportedError guard(s) of @actions/artifact in \
                     {}/{file}: the artifacts v4 client refuses servers other than GitHub's, \
                     and this server serves artifacts v4 itself",
                    remote.repository
                ),
            );
        }
        let directory = if remote.path.is_empty() {
            target
        } else {
            format!("{target}/{}", remote.path)
        };
        let action = read_metadata(environment, &directory, &remote.uses, false).await?;
        let loaded = Arc::new(LoadedAction {
            action,
            uses: remote.uses.clone(),
            path: directory,
            repository: remote.repository.clone(),
            git_ref: remote.git_ref.clone(),
        });
        self.actions
            .remote
            .insert(remote.uses.clone(), Arc::clone(&loaded));
        Ok(loaded)
    }

    /// What to check when `remote` could not be fetched.
    fn fetch_hint(&self, remote: &RemoteAction) -> String {
        if remote.uses.contains("://") {
            format!(
                "`{}` is a full URL and is fetched as written; check that this machine can \
                 reach it",
                remote.repository_url
            )
        } else {
            format!(
                "`owner/repo@ref` actions are fetched from the actions URL `{}`; if it is not \
                 reachable from here, point the runner's `actions_url` at a mirror that hosts \
                 `{}` (a Gitea instance, or a directory of git repositories as \
                 `file:///path`), or write the full URL in `uses:`",
                self.request.options.actions_url, remote.repository
            )
        }
    }

    /// `with:` evaluated and matched (ignoring case) to the declared inputs; declared inputs
    /// not given get their default (evaluated now) or `''`. Unknown names are kept and
    /// warned about, as GitHub does.
    fn action_inputs(
        &self,
        loaded: &LoadedAction,
        uses: &UsesStep,
        prepared: &PreparedStep,
        step_ref: &StepRef,
    ) -> Result<IndexMap<String, String>, StepError> {
        let action = &loaded.action;
        let mut values = IndexMap::new();
        let mut unexpected = Vec::new();
        for (name, value) in self
            .expressions
            .evaluate_map(&prepared.contexts, &uses.with)?
        {
            match action
                .inputs
                .iter()
                .find(|(id, _)| id.eq_ignore_ascii_case(&name))
            {
                Some((id, input)) => {
                    if let Some(message) = &input.deprecation_message {
                        self.log.runner(
                            Some(step_ref),
                            RunnerLevel::Warning,
                            &format!("Input '{id}' has been deprecated with message: {message}"),
                        );
                    }
                    values.insert(id.clone(), value);
                }
                None => {
                    unexpected.push(format!("'{name}'"));
                    values.insert(name, value);
                }
            }
        }
        if !unexpected.is_empty() {
            let valid: Vec<String> = action.inputs.keys().map(|id| format!("'{id}'")).collect();
            self.log.runner(
                Some(step_ref),
                RunnerLevel::Warning,
                &format!(
                    "Unexpected input(s) {}, valid inputs are [{}]",
                    unexpected.join(", "),
                    valid.join(", ")
                ),
            );
        }
        for (id, input) in &action.inputs {
            if values.contains_key(id) {
                continue;
            }
            let value = match &input.default {
                Some(default) => self.expressions.evaluate_string(
                    &prepared.contexts,
                    &format!("inputs.{id}.default"),
                    default,
                )?,
                None => String::new(),
            };
            values.insert(id.clone(), value);
        }
        Ok(values)
    }
}

/// Reads `action.yml` (or `action.yaml`) from `directory` inside the environment.
async fn read_metadata(
    environment: &dyn JobEnvironment,
    directory: &str,
    uses: &str,
    local: bool,
) -> Result<Action, StepError> {
    for name in ["action.yml", "action.yaml"] {
        let path = format!("{directory}/{name}");
        let bytes = environment
            .read_file(&path)
            .await
            .map_err(|source| StepError::Read {
                path: path.clone(),
                source,
            })?;
        let Some(bytes) = bytes else {
            continue;
        };
        let text = String::from_utf8(bytes).map_err(|_| StepError::MetadataNotUtf8 {
            path: path.clone(),
            uses: uses.to_owned(),
        })?;
        let file = format!("{uses}/{name}");
        let loaded = load_action(&file, &text);
        if loaded.has_errors() {
            let rendered: Vec<String> = loaded
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| render(d, &text))
                .collect();
            return Err(StepError::MetadataInvalid {
                uses: uses.to_owned(),
                diagnostics: rendered.join("\n"),
            });
        }
        return loaded.action.ok_or_else(|| StepError::MetadataUnreadable {
            uses: uses.to_owned(),
        });
    }
    Err(StepError::MetadataMissing {
        uses: uses.to_owned(),
        directory: directory.to_owned(),
        local,
    })
}

/// What copying an action's checkout into the environment did beyond copying.
#[derive(Debug, Default)]
struct Copied {
    /// Files whose artifact-client guards were lifted, with the number of guards in each.
    lifted: Vec<(String, usize)>,
    /// Symbolic links left out because they point outside the checkout (path, link text).
    refused_links: Vec<(String, String)>,
}

/// Copies the directory tree `source` on this machine to `target` in the environment through
/// `write_file`, so the same code serves the host and containers. `.git` is left out;
/// symbolic links to files inside the checkout are copied as files, links to directories are
/// skipped (they may loop), and links leaving the checkout are never opened
/// ([`contained::list_files`]). With `lift`, JavaScript files get the artifact client's
/// server guard lifted ([`ghes`]).
async fn copy_into_environment(
    environment: &dyn JobEnvironment,
    source: &Path,
    target: &str,
    lift: bool,
) -> Result<Copied, StepError> {
    let root = source.to_path_buf();
    let listing = tokio::task::spawn_blocking(move || contained::list_files(&root))
        .await
        .map_err(|error| StepError::ListActionTask {
            path: source.to_path_buf(),
            source: error,
        })?
        .map_err(|error| StepError::ListAction {
            path: source.to_path_buf(),
            source: error,
        })?;
    let mut copied = Copied {
        refused_links: listing.refused,
        ..Copied::default()
    };
    for file in listing.files {
        let mut contents =
            tokio::fs::read(&file.path)
                .await
                .map_err(|error| StepError::ReadActionFile {
                    path: file.path.clone(),
                    source: error,
                })?;
        if lift
            && ghes::is_javascript(&file.relative)
            && let Ok(text) = std::str::from_utf8(&contents)
            && let Some(lifted) = ghes::lift_artifact_guards(text)
        {
            contents = lifted.text.into_bytes();
            copied.lifted.push((file.relative.clone(), lifted.guards));
        }
        write(
            environment,
            &format!("{target}/{}", file.relative),
            &contents,
            file.executable,
        )
        .await?;
    }
    Ok(copied)
}
