//! Runner labels as the peer writes them: `name`, `name:host`, `name:docker://image[:tag]`.
//!
//! Owns: [`Label`] and its parsing (split on the first two `:`; what follows the second is the
//! argument, so image tags keep their own `:`). Must not: decide which backend runs a job; the
//! daemon maps a label's [`LabelKind`] to a backend.

/// Where a label's jobs run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelKind {
    /// Directly on this machine (`name` or `name:host`).
    Host,
    /// In a container of `image` (`name:docker://image`).
    Docker {
        /// The image, with the leading `//` removed.
        image: String,
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
    #[error("label `{label}`: unknown scheme `{scheme}` (use `host` or `docker://IMAGE`)")]
    UnknownScheme { label: String, scheme: String },
    #[error("label `{label}`: `docker` needs an image, as in `{name}:docker://node:20`")]
    MissingImage { label: String, name: String },
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
            Some("docker") => {
                let image = argument.strip_prefix("//").unwrap_or(argument);
                if image.is_empty() {
                    return Err(LabelError::MissingImage {
                        label: text.to_owned(),
                        name,
                    });
                }
                LabelKind::Docker {
                    image: image.to_owned(),
                }
            }
            Some(other) => {
                return Err(LabelError::UnknownScheme {
                    label: text.to_owned(),
                    scheme: other.to_owned(),
                });
            }
        };
        Ok(Label { name, kind })
    }

    /// The full label string, as the `.runner` file stores it.
    pub fn to_label_string(&self) -> String {
        match &self.kind {
            LabelKind::Host => format!("{}:host", self.name),
            LabelKind::Docker { image } => format!("{}:docker://{image}", self.name),
        }
    }
}

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
