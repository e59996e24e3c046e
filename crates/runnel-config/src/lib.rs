//! The runner's configuration: the act_runner-compatible `config.yaml` ([`Config`]), runner
//! labels ([`Label`]: `name`, `name:host`, `name:docker://image`), Go-style durations, and the
//! commented example config that `runnel config generate` prints, and `config get|set|add|remove`
//! edits of the file's text ([`edit`]).
//!
//! Owns: key names, defaults and validation; label syntax. Must not: do IO beyond reading the
//! config file and its `env_file`, contact a server, or pick backends (the daemon maps labels).
//! The `.runner` registration file belongs to `runnel-protocol` (`runner_file`).

mod config;
mod duration;
pub mod edit;
mod labels;
mod size;

pub use config::{
    CacheSection, Config, ConfigError, ContainerSection, DEFAULT_METRICS_ADDR,
    DEFAULT_SERVICE_READY_TIMEOUT, DockerHostUse, EnvLine, HealthCheckSection, HostSection,
    KubernetesResources, KubernetesSection, KubernetesToleration, Loaded, LogJobSection,
    LogSection, MetricsSection, Problem, RunnerSection, S3Section, ToolCacheMode, TransportChoice,
    VmLabelSettings, VmNetworkMode, VmSection, VmSettings, VmShareMode, parse_env_file,
    parse_env_line,
};
pub use duration::{
    DurationError, DurationGrammar, format_duration, parse_duration, parse_duration_with,
};
pub use labels::{
    DEFAULT_LABELS, KNOWN_SCHEMES, Label, LabelError, LabelKind, parse_labels, resolve_labels,
};
pub use size::parse_size;

/// What `runnel config init` writes: no key, so every key keeps its default.
pub const MINIMAL_CONFIG: &str = "\
# runnel's config.yaml. Every key this file does not set keeps its default:
# `runnel config generate` prints them all with what they do, and
# `runnel config set KEY VALUE` sets one here (`config get`, `add`, `remove` too).
";

/// The commented example config (`runner-config/config.example.yaml`): every key with its
/// default value.
pub const EXAMPLE_CONFIG: &str = include_str!("../../../runner-config/config.example.yaml");
