//! What the job's expressions see and how a key's template is evaluated: the job's contexts,
//! the `steps` context, the status the status functions answer and the tree `hashFiles`
//! reads.
//!
//! Owns: [`ExpressionState`], [`StepHost`] and [`ExprError`] (it names the key and its raw
//! text).
//! Must not: log or run anything; callers decide what a failed key means.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use runnel_expr::{EvalContext, EvalError, Host, JobStatus, Object, Value};
use runnel_workflow::{IfExpr, LiteralOrExpr, MapError, TemplateMap, TemplateString};

use crate::backend::JobEnvironment;
use crate::backend::RemoteWorkspace;
use crate::contexts;
use crate::hash_files::{hash_files, hash_remote_files};

/// Why a key's expression gave no usable value. The text names the key and its raw text.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExprError {
    #[error("{key} `{raw}`: {source}")]
    Evaluate {
        key: String,
        raw: String,
        #[source]
        source: EvalError,
    },
    /// `if:`, `pre-if:` or `post-if:` (`key`) did not evaluate.
    #[error("`{key}: {text}`: {source}")]
    Condition {
        key: &'static str,
        text: String,
        #[source]
        source: EvalError,
    },
    #[error("{key} `{raw}`: `{text}` is not a number")]
    NotANumber {
        key: String,
        raw: String,
        text: String,
    },
    #[error("{key} `{raw}`: expected a number, got {kind}")]
    NumberExpected {
        key: String,
        raw: String,
        kind: &'static str,
    },
    #[error("{key}: {minutes} is not a positive number of minutes")]
    NotPositiveMinutes { key: String, minutes: f64 },
    /// An `env:`-like map (keys may be expressions or `${{ insert }}`); the text names the
    /// file, line and column.
    #[error(transparent)]
    Map(#[from] MapError),
    /// A mapping whose keys were computed got a key it does not have (GitHub: "Unexpected
    /// value").
    #[error("{place}: unexpected key '{key}' once its computed keys are evaluated")]
    UnexpectedKey { place: &'static str, key: String },
}

/// The job's expression state: what `${{ }}` in its keys sees.
pub(crate) struct ExpressionState {
    /// `github`, `vars`, `inputs`, `secrets`, `needs`, `matrix`, `strategy`, and once the
    /// environment exists `runner` and `job`.
    pub(super) contexts: Object,
    /// The `steps` context.
    pub(super) steps: Object,
    /// The job's status (inside a composite action: the composite's), for `success()` and
    /// friends and for which steps run.
    pub(super) status: JobStatus,
    /// Where `hashFiles` reads the workspace, when it is on this machine.
    pub(super) hash_root: Option<PathBuf>,
    /// Who lists and digests the workspace for `hashFiles` when it is elsewhere (a pod).
    pub(super) hash_remote: Option<Arc<dyn RemoteWorkspace>>,
}

/// Answers the status functions and `hashFiles` for step-level expressions.
pub(crate) struct StepHost<'a> {
    status: JobStatus,
    hash_root: Option<&'a std::path::Path>,
    hash_remote: Option<&'a dyn RemoteWorkspace>,
}

impl Host for StepHost<'_> {
    fn job_status(&self) -> JobStatus {
        self.status
    }

    fn hash_files(&self, follow_symlinks: bool, patterns: &[String]) -> Result<String, String> {
        match (self.hash_root, self.hash_remote) {
            (Some(root), _) => hash_files(root, follow_symlinks, patterns),
            (None, Some(remote)) => hash_remote_files(remote, follow_symlinks, patterns),
            (None, None) => Err(
                "hashFiles needs the job's workspace on this machine, and this job's \
                 environment keeps it elsewhere"
                    .to_owned(),
            ),
        }
    }
}

impl ExpressionState {
    pub(super) fn new(contexts: Object, hash_root: Option<PathBuf>) -> ExpressionState {
        ExpressionState {
            contexts,
            steps: Object::new(),
            status: JobStatus::Success,
            hash_root,
            hash_remote: None,
        }
    }

    pub(super) fn host(&self) -> StepHost<'_> {
        StepHost {
            status: self.status,
            hash_root: self.hash_root.as_deref(),
            hash_remote: self.hash_remote.as_deref(),
        }
    }

    /// Evaluates `template` with `contexts`; errors name the key and its raw text.
    pub(super) fn evaluate(
        &self,
        contexts: &Object,
        key: &str,
        template: &TemplateString,
    ) -> Result<Value, ExprError> {
        let host = self.host();
        let cx = EvalContext {
            contexts,
            host: &host,
        };
        template
            .template
            .evaluate(&cx)
            .map_err(|source| ExprError::Evaluate {
                key: key.to_owned(),
                raw: template.raw.clone(),
                source,
            })
    }

    /// Evaluates an `env:`-like map, whose keys may be expressions or `${{ insert }}`
    /// (`runnel_workflow::TemplateMap::evaluate`), with `contexts`; values as strings.
    pub(super) fn evaluate_map(
        &self,
        contexts: &Object,
        map: &TemplateMap,
    ) -> Result<IndexMap<String, String>, ExprError> {
        let host = self.host();
        let cx = EvalContext {
            contexts,
            host: &host,
        };
        Ok(map.evaluate(&cx)?)
    }

    pub(super) fn evaluate_string(
        &self,
        contexts: &Object,
        key: &str,
        template: &TemplateString,
    ) -> Result<String, ExprError> {
        self.evaluate(contexts, key, template)
            .map(|value| value.to_display_string())
    }

    pub(super) fn evaluate_bool(
        &self,
        contexts: &Object,
        key: &str,
        value: Option<&LiteralOrExpr<bool>>,
    ) -> Result<bool, ExprError> {
        match value {
            None => Ok(false),
            Some(LiteralOrExpr::Literal(literal)) => Ok(literal.value),
            Some(LiteralOrExpr::Expr(template)) => self
                .evaluate(contexts, key, template)
                .map(|v| v.is_truthy()),
        }
    }

    /// `timeout-minutes` as a duration; `None` when absent.
    pub(super) fn evaluate_minutes(
        &self,
        contexts: &Object,
        key: &str,
        value: Option<&LiteralOrExpr<f64>>,
    ) -> Result<Option<Duration>, ExprError> {
        let minutes = match value {
            None => return Ok(None),
            Some(LiteralOrExpr::Literal(literal)) => literal.value,
            Some(LiteralOrExpr::Expr(template)) => match self.evaluate(contexts, key, template)? {
                Value::Number(n) => n,
                Value::String(s) => s.trim().parse::<f64>().map_err(|_| ExprError::NotANumber {
                    key: key.to_owned(),
                    raw: template.raw.clone(),
                    text: s.clone(),
                })?,
                other => {
                    return Err(ExprError::NumberExpected {
                        key: key.to_owned(),
                        raw: template.raw.clone(),
                        kind: other.kind_name(),
                    });
                }
            },
        };
        if !minutes.is_finite() || minutes <= 0.0 {
            return Err(ExprError::NotPositiveMinutes {
                key: key.to_owned(),
                minutes,
            });
        }
        Ok(Some(Duration::from_secs_f64(minutes * 60.0)))
    }

    /// An `if:`-like condition (`key` is `if`, `pre-if` or `post-if`).
    pub(super) fn condition(
        &self,
        contexts: &Object,
        key: &'static str,
        condition: &IfExpr,
    ) -> Result<bool, ExprError> {
        let host = self.host();
        let cx = EvalContext {
            contexts,
            host: &host,
        };
        condition
            .condition
            .evaluate(&cx)
            .map_err(|source| ExprError::Condition {
                key,
                text: condition.source.clone(),
                source,
            })
    }

    /// The contexts for step-level keys: the job's plus `env`, `steps` and a fresh `job`.
    pub(super) fn step_contexts(
        &self,
        env: &IndexMap<String, String>,
        environment: &dyn JobEnvironment,
    ) -> Object {
        let mut contexts = self.contexts.clone();
        contexts::set_env(&mut contexts, env);
        contexts.insert("steps", Value::Object(self.steps.clone().into()));
        let status = match self.status {
            JobStatus::Success => "success",
            JobStatus::Failure => "failure",
            JobStatus::Cancelled => "cancelled",
        };
        contexts.insert(
            "job",
            Value::Object(contexts::job_context(environment.info(), status).into()),
        );
        contexts
    }
}
