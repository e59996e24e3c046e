//! Which contexts and special functions an expression may use, by the key it is written under.
//!
//! Owns: the availability table of semantics.md §2.1 turned into [`ParseOptions`], so an
//! expression naming an unavailable context is a load-time error, as on GitHub.
//! Gitea also exposes `gitea` as an alias of `github`, so `gitea` is allowed wherever `github`
//! is.

use runnel_expr::ParseOptions;

/// Where an expression is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// `run-name`, workflow `concurrency`, `on.workflow_call.inputs.*.default`.
    WorkflowLevel,
    /// Workflow `env`.
    WorkflowEnv,
    /// `jobs.<id>.if`.
    JobIf,
    /// `jobs.<id>.strategy`.
    JobStrategy,
    /// `jobs.<id>.name`, `runs-on`, `environment`, `timeout-minutes`, `continue-on-error`,
    /// `container`, `services`, `concurrency`, `with`.
    Job,
    /// `jobs.<id>.env`, `jobs.<id>.secrets.*`.
    JobWithSecrets,
    /// `container.credentials`, `services.*.credentials`.
    ContainerCredentials,
    /// `container.env.*`, `services.*.env.*`.
    ContainerEnv,
    /// `jobs.<id>.defaults.run`.
    JobDefaultsRun,
    /// `environment.url`.
    EnvironmentUrl,
    /// `jobs.<id>.outputs.*`.
    JobOutputs,
    /// `steps[*].if`.
    StepIf,
    /// Every other step key that takes expressions.
    Step,
    /// `on.workflow_call.outputs.*.value`.
    CallOutput,
    /// `inputs.<id>.default` in an action's metadata.
    ActionInputDefault,
    /// Keys of a composite action's steps other than `if`; docker `runs.env` and `args`.
    ActionStep,
    /// `runs.steps[*].if`, `pre-if`, `post-if` of an action.
    ActionStepIf,
    /// `outputs.<id>.value` of a composite action.
    ActionOutputValue,
}

impl Place {
    pub(crate) fn contexts(self) -> &'static [&'static str] {
        match self {
            Place::WorkflowLevel => &["github", "gitea", "inputs", "vars"],
            Place::WorkflowEnv => &["github", "gitea", "secrets", "inputs", "vars"],
            Place::JobIf | Place::JobStrategy => &["github", "gitea", "needs", "vars", "inputs"],
            Place::Job => &[
                "github", "gitea", "needs", "strategy", "matrix", "vars", "inputs",
            ],
            Place::JobWithSecrets => &[
                "github", "gitea", "needs", "strategy", "matrix", "vars", "inputs", "secrets",
            ],
            Place::ContainerCredentials => &[
                "github", "gitea", "needs", "strategy", "matrix", "env", "vars", "secrets",
                "inputs",
            ],
            Place::ContainerEnv => &[
                "github", "gitea", "needs", "strategy", "matrix", "job", "runner", "env", "vars",
                "secrets", "inputs",
            ],
            Place::JobDefaultsRun => &[
                "github", "gitea", "needs", "strategy", "matrix", "env", "vars", "inputs",
            ],
            Place::EnvironmentUrl => &[
                "github", "gitea", "needs", "strategy", "matrix", "job", "runner", "env", "vars",
                "steps", "inputs",
            ],
            Place::JobOutputs | Place::Step => &[
                "github", "gitea", "needs", "strategy", "matrix", "job", "runner", "env", "vars",
                "secrets", "steps", "inputs",
            ],
            Place::StepIf => &[
                "github", "gitea", "needs", "strategy", "matrix", "job", "runner", "env", "vars",
                "steps", "inputs",
            ],
            Place::CallOutput => &["github", "gitea", "jobs", "vars", "inputs"],
            // Actions see no `secrets` and no `needs`: what they get comes through inputs.
            Place::ActionInputDefault => &[
                "github", "gitea", "strategy", "matrix", "job", "runner", "vars",
            ],
            Place::ActionStep | Place::ActionStepIf | Place::ActionOutputValue => &[
                "github", "gitea", "inputs", "strategy", "matrix", "steps", "job", "runner", "env",
                "vars",
            ],
        }
    }

    pub(crate) fn options(self) -> ParseOptions {
        ParseOptions {
            named_values: self.contexts().iter().map(|c| (*c).to_owned()).collect(),
            status_functions: matches!(self, Place::JobIf | Place::StepIf | Place::ActionStepIf),
            hash_files: matches!(
                self,
                Place::StepIf
                    | Place::Step
                    | Place::ActionInputDefault
                    | Place::ActionStep
                    | Place::ActionStepIf
            ),
            job_status_arguments: matches!(self, Place::JobIf),
        }
    }
}
