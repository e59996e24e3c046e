//! JavaScript actions: `node <action>/<main>` in the environment with `INPUT_*`, `STATE_*`
//! from the action's `pre`, and `GITHUB_ACTION_PATH`; the `post` hook registered when the main
//! part ran. Every runtime an action may declare (`node12`, `node16`, `node20`, `node24`) runs
//! with the `node` on the job environment's `PATH`, not a bundled runtime: act and the Gitea
//! runner look up `node` the same way and know no `node20`-style program names or versioned
//! paths (GitHub's runner bundles its own Node.js per runtime, which a job image cannot be
//! expected to have). When there is none, the error names the runtime the action declares and
//! the `PATH` searched.
//!
//! Must not: decide when hooks run (the `hooks` module does).

use indexmap::IndexMap;
use runnel_workflow::NodeRuns;

use super::hooks::{Hook, HookRun};
use super::{ActionStep, LoadedAction, input_variable};
use crate::backend::ExecRequest;
use crate::job::JobState;
use crate::job::error::StepError;
use crate::job::files::Effects;
use crate::job::step::{StepEnd, StepRun};

/// What a node script runs with besides the step's env.
pub(super) struct NodeScript<'s> {
    pub(super) loaded: &'s LoadedAction,
    /// Relative to the action directory.
    pub(super) script: &'s str,
    pub(super) inputs: &'s IndexMap<String, String>,
    pub(super) state: &'s [(String, String)],
}

impl JobState<'_> {
    pub(super) async fn run_node_main(
        &mut self,
        run: &StepRun<'_>,
        action: &ActionStep<'_>,
        node: &NodeRuns,
    ) -> Result<StepEnd, StepError> {
        let state = self.pre_state(action.step);
        let script = NodeScript {
            loaded: action.loaded,
            script: &node.main.value,
            inputs: action.inputs,
            state: &state,
        };
        let (end, effects) = self.run_node_script(run, &script).await?;
        self.pending_outputs = effects.outputs;
        if let Some(post) = &node.post {
            let mut all_state = state;
            all_state.extend(effects.state);
            let hook = Hook::post(
                run,
                action,
                HookRun::Node {
                    script: post.value.clone(),
                },
                node.post_if.clone(),
                all_state,
            );
            self.actions.posts.push(hook);
        }
        Ok(end)
    }

    pub(super) async fn run_node_script(
        &mut self,
        run: &StepRun<'_>,
        script: &NodeScript<'_>,
    ) -> Result<(StepEnd, Effects), StepError> {
        let environment = run.environment;
        let loaded = script.loaded;
        let mut env = self.exec_env(run);
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
                return Err(StepError::NodeNotFound {
                    uses: loaded.uses.clone(),
                    using: loaded.action.runs.using().to_owned(),
                    path: path_var,
                });
            }
            Err(source) => {
                return Err(StepError::FindProgram {
                    program: "node".to_owned(),
                    source,
                });
            }
        };
        let entry = script.script.trim_start_matches("./");
        let request = ExecRequest {
            argv: vec![node, format!("{}/{entry}", loaded.path)],
            env,
            workdir: environment.paths().workspace.clone(),
            timeout: Some(run.limit.duration),
        };
        self.exec_in_step(run, &request).await
    }
}
