//! File commands after a step: `GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_STATE`
//! and `GITHUB_STEP_SUMMARY` read back through the environment and applied to the job (the
//! summary goes to the sink as a [`LogEvent::StepSummary`]).
//!
//! Must not: parse the formats (the output module does) or run anything.

use super::JobState;
use crate::backend::JobEnvironment;
use crate::contexts::FileCommandPaths;
use crate::output::{EnvFileKind, parse_env_file, parse_path_file};
use crate::sink::{LogEvent, RunnerLevel, StepRef};

/// Largest `GITHUB_STEP_SUMMARY` GitHub accepts.
const MAX_SUMMARY_BYTES: usize = 1024 * 1024;

/// What a step's output and file commands asked for.
#[derive(Default)]
pub(super) struct Effects {
    pub(super) outputs: Vec<(String, String)>,
    pub(super) env: Vec<(String, String)>,
    pub(super) paths: Vec<String>,
    /// `GITHUB_STATE` and `::save-state::`: `STATE_<name>` for the action's later phases.
    pub(super) state: Vec<(String, String)>,
    /// A workflow or file command failed: the step fails after it exits.
    pub(super) command_failed: bool,
}

impl JobState<'_> {
    /// Reads `GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH`, `GITHUB_STATE` and
    /// `GITHUB_STEP_SUMMARY` back. GitHub processes them whatever the exit code.
    pub(super) async fn read_file_commands(
        &self,
        environment: &dyn JobEnvironment,
        files: &FileCommandPaths,
        step_ref: &StepRef,
        effects: &mut Effects,
    ) {
        let step = Some(step_ref);
        let fail = |name: &str, message: String| {
            self.log.runner(
                step,
                RunnerLevel::Error,
                &format!("Unable to process file command '{name}' successfully."),
            );
            self.log.runner(step, RunnerLevel::Error, &message);
        };
        // All five in one call (one round trip where the backend can); when that fails, one by
        // one, so that an error names its file.
        let all = [
            files.output.clone(),
            files.env.clone(),
            files.state.clone(),
            files.path.clone(),
            files.step_summary.clone(),
        ];
        let batch = environment.read_files(&all).await.ok();
        let read = async |index: usize, path: &str| match batch.as_ref().and_then(|b| b.get(index))
        {
            Some(contents) => Ok(contents.clone()),
            None => environment.read_file(path).await,
        };
        for (index, (kind, path, name)) in [
            (EnvFileKind::Output, &files.output, "output"),
            (EnvFileKind::Env, &files.env, "env"),
            (EnvFileKind::State, &files.state, "save-state"),
        ]
        .into_iter()
        .enumerate()
        {
            let bytes = match read(index, path).await {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue,
                Err(error) => {
                    fail(name, error.to_string());
                    effects.command_failed = true;
                    continue;
                }
            };
            match parse_env_file(kind, &bytes) {
                Ok(pairs) => match kind {
                    EnvFileKind::Output => effects.outputs.extend(pairs),
                    EnvFileKind::Env => {
                        for (name, value) in pairs {
                            if name == "NODE_OPTIONS" {
                                self.log.runner(
                                    step,
                                    RunnerLevel::Error,
                                    "Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command.",
                                );
                            } else {
                                effects.env.push((name, value));
                            }
                        }
                    }
                    EnvFileKind::State => effects.state.extend(pairs),
                },
                Err(error) => {
                    fail(name, error.to_string());
                    effects.command_failed = true;
                }
            }
        }
        match read(3, &files.path).await {
            Ok(Some(bytes)) => effects.paths.extend(parse_path_file(&bytes)),
            Ok(None) => {}
            Err(error) => {
                fail("add-path", error.to_string());
                effects.command_failed = true;
            }
        }
        match read(4, &files.step_summary).await {
            Ok(Some(bytes)) if bytes.len() > MAX_SUMMARY_BYTES => self.log.runner(
                step,
                RunnerLevel::Warning,
                "$GITHUB_STEP_SUMMARY is larger than 1 MiB; it is not uploaded.",
            ),
            Ok(Some(bytes)) => self.emit_summary(step_ref, &bytes),
            Ok(None) => {}
            Err(error) => self.log.runner(
                step,
                RunnerLevel::Warning,
                &format!("reading $GITHUB_STEP_SUMMARY failed: {error}"),
            ),
        }
    }

    /// Hands a step's summary to the sink, masked like its output; blank ones are dropped.
    fn emit_summary(&self, step_ref: &StepRef, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        if text.trim().is_empty() {
            return;
        }
        let markdown = self.log.masker.mask(&text).into_owned();
        self.log
            .emit(Some(step_ref), LogEvent::StepSummary { markdown });
    }

    /// `GITHUB_ENV` writes go to the job env (later steps); `GITHUB_PATH` entries go in
    /// front, the most recent first, an entry added again moving to the front.
    pub(super) fn apply_effects(&mut self, env: Vec<(String, String)>, paths: Vec<String>) {
        for (name, value) in env {
            self.env.insert(name, value);
        }
        for path in paths {
            self.path_entries.retain(|p| p != &path);
            self.path_entries.insert(0, path);
        }
    }
}
