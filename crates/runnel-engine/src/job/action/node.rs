//! JavaScript actions: `node <action>/<main>` in the environment with `INPUT_*`, `STATE_*`
//! from the action's `pre`, and `GITHUB_ACTION_PATH`; the `post` hook registered when the main
//! part ran. `node` is whatever the environment has on `PATH` (as Gitea's runner does), not a
//! bundled runtime.
//!
//! Must not: decide when hooks run (the `hooks` module does).

use std::sync::Arc;

use indexmap::IndexMap;
use runnel_workflow::{NodeRuns, Step};
use tokio_util::sync::CancellationToken;

use super::hooks::{Hook, HookRun};
use super::{LoadedAction, input_variable};
use crate::backend::{ExecRequest, JobEnvironment};
use crate::contexts::FileCommandPaths;
use crate::job::JobState;
use crate::job::files::Effects;
use crate::job::step::{PreparedStep, StepEnd, TimeLimit};
use crate::sink::StepRef;

/// The main part of a node action step.
pub(super) struct NodeMain<'m> {
    pub(super) step: &'m Step,
    pub(super) loaded: &'m Arc<LoadedAction>,
    pub(super) node: &'m NodeRuns,
    pub(super) inputs: &'m IndexMap<String, String>,
}

/// What a node script runs with besides the step's env.
pub(super) struct NodeScript<'s> {
    pub(super) loaded: &'s LoadedAction,
    /// Relative to the action directory.
    pub(super) script: &'s str,
    pub(super) inputs: &'s IndexMap<String, String>,
    pub(super) state: &'s [(String, String)],
}

impl JobState<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_node_main(
        &mut self,
        environment: &dyn JobEnvironment,
        main: &NodeMain<'_>,
        prepared: &PreparedStep,
        step_ref: &StepRef,
        files: &FileCommandPaths,
        token: &CancellationToken,
        limit: TimeLimit,
    ) -> Result<StepEnd, String> {
        let state = self.pre_state(main.step);
        let script = NodeScript {
            loaded: main.loaded,
            script: &main.node.main.value,
            inputs: main.inputs,
            state: &state,
        };
        let (end, effects) = self
            .run_node_script(
                environment,
                &script,
                prepared,
                step_ref,
                files,
                token,
                limit,
            )
            .await?;
        self.pending_outputs = effects.outputs;
        if let Some(post) = &main.node.post {
            let mut all_state = state;
            all_state.extend(effects.state);
            let hook = Hook::post(
                main.step,
                step_ref,
                main.loaded,
                HookRun::Node {
                    script: post.value.clone(),
                },
                main.node.post_if.clone(),
                prepared,
                main.inputs,
                all_state,
            );
            self.actions.posts.push(hook);
        }
        Ok(end)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_node_script(
        &mut self,
        environment: &dyn JobEnvironment,
        script: &NodeScript<'_>,
        prepared: &PreparedStep,
        step_ref: &StepRef,
        files: &FileCommandPaths,
        token: &CancellationToken,
        limit: TimeLimit,
    ) -> Result<(StepEnd, Effects), String> {
        let loaded = script.loaded;
        let mut env = self.exec_env(environment, prepared, files);
        for (name, value) in [
            ("GITHUB_ACTION_PATH", &loaded.path),
            ("GITHUB_ACTION_REPOSITORY", &loaded.repository),
            ("GITHUB_ACTION_REF", &loaded.git_ref),
        ] {
            env.insert(name.to_owned(), value.clone());
        }
        for (name, value) in script.inputs {
            env.insert(input_variable(name), value.clone());
        }
        for (name, value) in script.state {
            env.insert(format!("STATE_{name}"), value.clone());
        }
        let path_var = env.get("PATH").cloned().unwrap_or_default();
        let node = match environment.find_program("node", &path_var).await {
            Ok(Some(node)) => node,
            Ok(None) => {
                return Err(format!(
                    "`uses: {}` is a JavaScript action ({}) but `node` was not found on PATH \
                     in the job environment; install Node.js there (Debian: `apt-get install \
                     nodejs`) or run the job in an image that has it",
                    loaded.uses,
                    loaded.action.runs.using()
                ));
            }
            Err(error) => return Err(format!("looking for `node` failed: {error}")),
        };
        let entry = script.script.trim_start_matches("./");
        let request = ExecRequest {
            argv: vec![node, format!("{}/{entry}", loaded.path)],
            env,
            workdir: environment.paths().workspace.clone(),
            timeout: Some(limit.duration),
        };
        self.exec_in_step(environment, &request, prepared, step_ref, files, token)
            .await
    }
}
