//! `run:` steps: the shell chosen (the step's, the job's or workflow's `defaults`, or
//! GitHub's default) and found on the step's `PATH`, the script written into the environment
//! through its template, and run as the step's process.
//!
//! Must not: interpret the script's output (the step's process does, through `exec`).

use runnel_expr::Object;
use runnel_workflow::{RunDefaults, RunStep};

use super::JobState;
use super::error::StepError;
use super::exec::write;
use super::expr::ExprError;
use super::step::{StepEnd, StepRun};
use crate::backend::{ExecRequest, JobEnvironment};
use crate::shell::ShellCommand;

impl JobState<'_> {
    pub(super) async fn run_script(
        &mut self,
        run: &StepRun<'_>,
        run_step: &RunStep,
    ) -> Result<StepEnd, StepError> {
        let environment = run.environment;
        let contexts = &run.prepared.contexts;
        let job = self.job;
        // Workflow defaults do not reach into composite actions.
        let defaults = if self.frames.is_empty() {
            [
                job.defaults.as_ref(),
                self.request.workflow.defaults.as_ref(),
            ]
        } else {
            [None, None]
        };
        let shell = match &run_step.shell {
            Some(t) => Some(self.expressions.evaluate_string(contexts, "shell", t)?),
            None => self.run_default(contexts, &defaults, RunDefault::Shell)?,
        };
        let directory = match &run_step.working_directory {
            Some(t) => Some(
                self.expressions
                    .evaluate_string(contexts, "working-directory", t)?,
            ),
            None => self.run_default(contexts, &defaults, RunDefault::WorkingDirectory)?,
        };
        let workspace = environment.paths().workspace.clone();
        let workdir = match directory {
            Some(dir) if dir.starts_with('/') => dir,
            Some(dir) => format!("{workspace}/{dir}"),
            None => workspace,
        };
        let script = self
            .expressions
            .evaluate_string(contexts, "run", &run_step.run)?;

        let exec_env = self.exec_env(run);
        let path_var = exec_env.get("PATH").cloned().unwrap_or_default();
        let command = ShellCommand::resolve(shell.as_deref(), environment.info().has_bash)?;
        if command.windows_only {
            return Err(StepError::WindowsOnlyShell {
                program: command.program,
                os: self.request.options.runner.os.clone(),
            });
        }
        let program = self.find_shell(environment, &command, &path_var).await?;

        self.file_counter += 1;
        let script_path = format!(
            "{}/run_{}{}",
            environment.paths().temp,
            self.file_counter,
            command.extension
        );
        write(
            environment,
            &script_path,
            command.script(&script).as_bytes(),
            true,
        )
        .await?;

        let request = ExecRequest {
            argv: command.argv(&program, &script_path),
            env: exec_env,
            workdir,
            timeout: Some(run.limit.duration),
        };
        let (end, effects) = self.exec_in_step(run, &request).await?;
        self.pending_outputs = effects.outputs;
        Ok(end)
    }

    /// `defaults.run`'s `key`, from the first of `defaults` (the job's, then the workflow's)
    /// that sets it, evaluated with `contexts`. A job's `defaults.run` with computed keys is
    /// evaluated whole first; a key other than `shell` and `working-directory` is an error.
    fn run_default(
        &self,
        contexts: &Object,
        defaults: &[Option<&RunDefaults>],
        key: RunDefault,
    ) -> Result<Option<String>, StepError> {
        for run_defaults in defaults.iter().flatten() {
            if let Some(map) = &run_defaults.computed {
                let values = self.expressions.evaluate_map(contexts, map)?;
                if let Some(unknown) = values
                    .keys()
                    .find(|name| !matches!(name.as_str(), "shell" | "working-directory"))
                {
                    return Err(ExprError::UnexpectedKey {
                        place: "defaults.run",
                        key: unknown.clone(),
                    }
                    .into());
                }
                if let Some(value) = values.get(key.name()) {
                    return Ok(Some(value.clone()));
                }
                continue;
            }
            let template = match key {
                RunDefault::Shell => run_defaults.shell.as_ref(),
                RunDefault::WorkingDirectory => run_defaults.working_directory.as_ref(),
            };
            if let Some(template) = template {
                return Ok(Some(self.expressions.evaluate_string(
                    contexts,
                    key.name(),
                    template,
                )?));
            }
        }
        Ok(None)
    }

    /// The shell program as found on the step's `PATH` (or a fallback such as `python3`).
    async fn find_shell(
        &self,
        environment: &dyn JobEnvironment,
        command: &ShellCommand,
        path_var: &str,
    ) -> Result<String, StepError> {
        for candidate in std::iter::once(&command.program).chain(&command.fallbacks) {
            match environment.find_program(candidate, path_var).await {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(source) => {
                    return Err(StepError::FindProgram {
                        program: candidate.clone(),
                        source,
                    });
                }
            }
        }
        Err(StepError::ShellNotFound {
            program: command.program.clone(),
            fallbacks: command.fallbacks.clone(),
        })
    }
}

/// A key of `defaults.run`.
#[derive(Clone, Copy)]
enum RunDefault {
    Shell,
    WorkingDirectory,
}

impl RunDefault {
    fn name(self) -> &'static str {
        match self {
            RunDefault::Shell => "shell",
            RunDefault::WorkingDirectory => "working-directory",
        }
    }
}
