//! Runner labels as the peer writes them: `name`, `name:host`, `name:docker://image[:tag]`,
//! `name:docker` (the runner's `default_image`), runnel's `name:vm://IMAGE` (a microVM per job)
//! and `name:kubernetes://image` (a pod per job), and other schemes (`pool:e57e…`), which the
//! Gitea runner (v3.3) keeps as opaque labels named by the whole string.
//!
//! Owns: [`Label`] and its parsing (split on the first two `:`; what follows the second is the
//! argument, so image tags keep their own `:`), and [`resolve_labels`]: a bare `docker` label
//! given `runner.default_image`, every label runnel cannot run said in a warning. Must not:
//! decide which backend runs a job; the job assembly maps a label's [`LabelKind`] to one.

/// Where a label's jobs run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelKind {
    /// Directly on this machine (`name` or `name:host`).
    Host,
    /// In a container of `image` (`name:docker://image`).
    Docker {
        /// The image, with the leading `//` removed; empty for a bare `name:docker`, which
        /// [`resolve_labels`] replaces by `runner.default_image`.
        image: String,
    },
    /// In a microVM booted from the VM image `image` (`name:vm://image`).
    Vm {
        /// The image's name, with the leading `//` removed.
        image: String,
    },
    /// In a pod of `image` on the configured Kubernetes cluster (`name:kubernetes://image`).
    Kubernetes {
        /// The image, with the leading `//` removed.
        image: String,
    },
    /// A scheme runnel does not run (`pool:e57e…`, `name:lxc:debian`). As in the Gitea runner
    /// v3.3, the whole string is the label's name (so Gitea routes the same jobs here); its
    /// jobs fail saying why (v3.3 runs them on the host, which such a label does not ask for
    /// and which runnel gives a job only where the operator's config says so).
    Unsupported {
        scheme: String,
        /// What followed the scheme.
        argument: String,
    },
}

/// One label: the name Gitea matches `runs-on` against, and where its jobs run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Sent to Gitea; matched against `runs-on` by exact string.
    pub name: String,
    pub kind: LabelKind,
}

/// Why a label string is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("label `{label}` has an empty name")]
    EmptyName { label: String },
}

impl Label {
    /// Parses one label string.
    pub fn parse(text: &str) -> Result<Label, LabelError> {
        let text = text.trim();
        let mut parts = text.splitn(3, ':');
        let name = parts.next().unwrap_or_default().to_owned();
        if name.is_empty() {
            return Err(LabelError::EmptyName {
                label: text.to_owned(),
            });
        }
        let scheme = parts.next();
        let argument = parts.next().unwrap_or_default();
        let kind = match scheme {
            None | Some("host") => LabelKind::Host,
            Some("docker") => LabelKind::Docker {
                image: argument.strip_prefix("//").unwrap_or(argument).to_owned(),
            },
            Some("vm") => LabelKind::Vm {
                image: argument.strip_prefix("//").unwrap_or(argument).to_owned(),
            },
            Some("kubernetes") => LabelKind::Kubernetes {
                image: argument.strip_prefix("//").unwrap_or(argument).to_owned(),
            },
            Some(other) => {
                // Not a scheme runnel knows: the `:` belongs to the name, as v3.3 reads it.
                return Ok(Label {
                    name: text.to_owned(),
                    kind: LabelKind::Unsupported {
                        scheme: other.to_owned(),
                        argument: argument.to_owned(),
                    },
                });
            }
        };
        Ok(Label { name, kind })
    }

    /// The full label string, as the `.runner` file stores it.
    pub fn to_label_string(&self) -> String {
        match &self.kind {
            LabelKind::Host => format!("{}:host", self.name),
            LabelKind::Docker { image } if image.is_empty() => format!("{}:docker", self.name),
            LabelKind::Docker { image } => format!("{}:docker://{image}", self.name),
            LabelKind::Vm { image } => format!("{}:vm://{image}", self.name),
            LabelKind::Kubernetes { image } => format!("{}:kubernetes://{image}", self.name),
            // The name is already the whole string.
            LabelKind::Unsupported { .. } => self.name.clone(),
        }
    }
}

/// The label schemes runnel runs, as a job's failure and the start warning name them.
pub const KNOWN_SCHEMES: &str =
    "`host`, `docker://IMAGE`, `docker` (runner.default_image), `vm://IMAGE`, `kubernetes://IMAGE`";

/// The peer's default labels, used when registration is given none.
pub const DEFAULT_LABELS: &[&str] = &[
    "ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest",
    "ubuntu-24.04:docker://docker.gitea.com/runner-images:ubuntu-24.04",
    "ubuntu-22.04:docker://docker.gitea.com/runner-images:ubuntu-22.04",
];

/// Parses every label; valid ones are returned, invalid ones reported beside them (the
/// daemon skips them with a warning, as the peer does).
pub fn parse_labels(texts: &[String]) -> (Vec<Label>, Vec<LabelError>) {
    let mut labels = Vec::new();
    let mut errors = Vec::new();
    for text in texts {
        match Label::parse(text) {
            Ok(label) => labels.push(label),
            Err(error) => errors.push(error),
        }
    }
    (labels, errors)
}

/// Labels as the runner uses them: a bare `docker` label runs in `default_image`
/// (`runner.default_image`); without one it is left out. Returns what to warn about at start:
/// labels left out, and labels whose jobs will fail (a scheme runnel does not run).
pub fn resolve_labels(labels: Vec<Label>, default_image: &str) -> (Vec<Label>, Vec<String>) {
    let mut kept = Vec::new();
    let mut warnings = Vec::new();
    for mut label in labels {
        match &mut label.kind {
            LabelKind::Docker { image } if image.is_empty() => {
                if default_image.trim().is_empty() {
                    warnings.push(format!(
                        "label `{}` names no image and runner.default_image is not set: left out \
                         (write `{}:docker://IMAGE`)",
                        label.to_label_string(),
                        label.name
                    ));
                    continue;
                }
                *image = default_image.trim().to_owned();
            }
            LabelKind::Unsupported { scheme, .. } => {
                let scheme = scheme.clone();
                warnings.push(format!(
                    "label `{}`: `{scheme}` is not a scheme runnel runs (a scheme is what \
                     follows a label's first `:`), so the whole string is \
                     the label's name (as the Gitea runner v3.3 reads it) and jobs sent to it will \
                     fail (runnel's schemes: {KNOWN_SCHEMES})",
                    label.name
                ));
            }
            _ => {}
        }
        kept.push(label);
    }
    (kept, warnings)
}
