//! The daemon's `config.yaml`: the peer's keys (log, runner, cache, container, host) with the
//! same meaning and defaults, plus runnel's additions, read into [`Config`].
//!
//! Owns: key names, types, defaults, and the problems found reading them (every wrong value is
//! an error naming file:line:col; an unknown key is a warning naming key and position). Must
//! not: act on the values (the daemon does) or read any file but the config and its `env_file`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use runnel_yaml::{Node, NodeKind, Span};

use crate::duration::parse_duration;

/// `log:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSection {
    /// `trace`, `debug`, `info`, `warn`, `error` (the peer also takes `fatal`, `panic`).
    pub level: String,
}

/// Which wire protocol the daemon speaks (a runnel addition; the peer always uses Connect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportChoice {
    /// gRPC when the server answers it, else Connect over HTTP/1.1.
    #[default]
    Auto,
    Connect,
    Grpc,
}

/// `runner:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerSection {
    /// The registration file (`.runner`).
    pub file: PathBuf,
    /// Tasks run at once.
    pub capacity: usize,
    /// Extra variables of every job (after `load`, `env_file`'s entries are merged in).
    pub envs: BTreeMap<String, String>,
    /// A dotenv file merged into `envs` when it exists; empty: none.
    pub env_file: String,
    /// Timeout of a whole job.
    pub timeout: Duration,
    /// How long running jobs may finish after SIGTERM/SIGINT before they are cancelled.
    pub shutdown_timeout: Duration,
    /// Accept any TLS certificate from Gitea.
    pub insecure: bool,
    /// Deadline of one FetchTask call.
    pub fetch_timeout: Duration,
    /// Time between FetchTask calls.
    pub fetch_interval: Duration,
    /// Replaces `https://github.com` when resolving actions.
    pub github_mirror: String,
    /// When non-empty, replaces the `.runner` file's labels (declared at each start).
    pub labels: Vec<String>,
    /// The peer's newer key: idle polls and failed polls back off from `fetch_interval` up to
    /// this.
    pub fetch_interval_max: Duration,
    /// The peer's newer key: heartbeat of a running task's state (UpdateTask), which is also
    /// how a cancel in Gitea is noticed. runnel's default is 1s (the peer's newer default is
    /// 5s) so a cancelled job stops within seconds.
    pub state_report_interval: Duration,
    /// The peer's newer key: how long the final report of a task may take per attempt.
    pub report_close_timeout: Duration,
    /// runnel addition: `auto`, `connect` or `grpc`.
    pub transport: TransportChoice,
    /// runnel addition: where log rows and states of running tasks are spooled before they
    /// are sent. `None`: `.runnel-spool` next to `file`.
    pub spool_dir: Option<PathBuf>,
}

impl RunnerSection {
    /// The spool directory in effect: `spool_dir`, else `.runnel-spool` beside the `.runner`
    /// file.
    pub fn effective_spool_dir(&self) -> PathBuf {
        match &self.spool_dir {
            Some(dir) => dir.clone(),
            None => self
                .file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join(".runnel-spool"),
        }
    }
}

/// `metrics:` (a runnel addition): the operator endpoints `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSection {
    pub enabled: bool,
    /// `host:port` to listen on.
    pub addr: String,
}

/// `cache:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSection {
    pub enabled: bool,
    /// `None`: `$HOME/.cache/actcache`.
    pub dir: Option<PathBuf>,
    pub host: String,
    /// 0: a random free port.
    pub port: u16,
    pub external_server: String,
    /// runnel addition: the most bytes of entries kept; least recently used entries are
    /// evicted beyond it. `None`: 10 GiB.
    pub size_limit: Option<u64>,
    /// runnel addition, `cache.s3`: keep entries in an S3-compatible bucket shared by several
    /// runner hosts. `None` (or an empty `endpoint`): the local directory.
    pub s3: Option<S3Section>,
    /// runnel addition, `cache.shared_secret`: the secret the runners of a fleet and their
    /// `runnel cache-server` share; runners sign each job's cache token with it, the server
    /// checks them. Empty: none (see `shared_secret_file`).
    pub shared_secret: String,
    /// runnel addition, `cache.shared_secret_file`: the same, read from this file (trailing
    /// white space dropped). At most one of the two is set.
    pub shared_secret_file: Option<PathBuf>,
}

/// `cache.s3:` (runnel addition). Empty keys fall back to the environment when the store is
/// opened: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Section {
    /// `http(s)://host[:port]`; requests use path-style URLs.
    pub endpoint: String,
    pub bucket: String,
    /// Empty: `us-east-1`.
    pub region: String,
    /// Prepended to every object name, e.g. `runnel-cache/`.
    pub prefix: String,
    pub access_key: String,
    pub secret_key: String,
}

/// `container:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSection {
    /// Empty: runnel's shared `runnel-jobs` network (jobs cannot reach each other); or
    /// `host`, `bridge`, the name of an existing network.
    pub network: String,
    pub privileged: bool,
    pub options: String,
    pub workdir_parent: String,
    pub valid_volumes: Vec<String>,
    /// The engine, and whether its socket goes into job containers: see
    /// [`ContainerSection::docker_host_use`].
    pub docker_host: String,
    /// Whether the file wrote `docker_host` at all (the Gitea runner's meaning applies then).
    pub docker_host_written: bool,
    pub force_pull: bool,
    pub force_rebuild: bool,
    pub require_docker: bool,
    pub docker_timeout: Duration,
    /// runnel addition: a PEM file of CA certificates that job, service and action
    /// containers trust (on top of the runner machine's system bundle).
    pub ca_bundle: Option<PathBuf>,
}

/// What `container.docker_host` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerHostUse {
    /// Not in the file: the engine runnel finds (`DOCKER_HOST`, else the local socket), never
    /// mounted into jobs (runnel's safe default).
    Detect,
    /// Written empty, as the Gitea runner's generated config has it: the engine runnel finds,
    /// and its socket mounted into job containers, as the Gitea runner does.
    DetectAndMount,
    /// `-`: the engine runnel finds, not mounted.
    DetectNoMount,
    /// A URL (`unix:///path`, `tcp://host:port`): that engine; a `unix://` socket is mounted
    /// into job containers, as the Gitea runner does.
    Url(String),
}

impl ContainerSection {
    /// The Gitea runner's meaning of `docker_host` for a file that sets it; runnel's safe
    /// default (no socket in jobs) for one that does not.
    pub fn docker_host_use(&self) -> DockerHostUse {
        let host = self.docker_host.trim();
        match (self.docker_host_written, host) {
            (false, "") => DockerHostUse::Detect,
            (true, "") => DockerHostUse::DetectAndMount,
            (_, "-") => DockerHostUse::DetectNoMount,
            (_, url) => DockerHostUse::Url(url.to_owned()),
        }
    }
}

/// `host:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSection {
    /// `None`: `$HOME/.cache/act`.
    pub workdir_parent: Option<PathBuf>,
}

/// The whole config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub log: LogSection,
    pub runner: RunnerSection,
    pub cache: CacheSection,
    pub container: ContainerSection,
    pub host: HostSection,
    pub metrics: MetricsSection,
}

impl Default for Config {
    /// The peer's defaults (what an empty or absent config file means).
    fn default() -> Config {
        Config {
            log: LogSection {
                level: "info".to_owned(),
            },
            runner: RunnerSection {
                file: PathBuf::from(".runner"),
                capacity: 1,
                envs: BTreeMap::new(),
                env_file: String::new(),
                timeout: Duration::from_secs(3 * 3600),
                shutdown_timeout: Duration::ZERO,
                insecure: false,
                fetch_timeout: Duration::from_secs(5),
                fetch_interval: Duration::from_secs(2),
                github_mirror: String::new(),
                labels: Vec::new(),
                fetch_interval_max: Duration::from_secs(5),
                state_report_interval: Duration::from_secs(1),
                report_close_timeout: Duration::from_secs(10),
                transport: TransportChoice::Auto,
                spool_dir: None,
            },
            cache: CacheSection {
                enabled: true,
                dir: None,
                host: String::new(),
                port: 0,
                external_server: String::new(),
                size_limit: None,
                s3: None,
                shared_secret: String::new(),
                shared_secret_file: None,
            },
            container: ContainerSection {
                network: String::new(),
                privileged: false,
                options: String::new(),
                workdir_parent: "workspace".to_owned(),
                valid_volumes: Vec::new(),
                docker_host: String::new(),
                docker_host_written: false,
                force_pull: false,
                force_rebuild: false,
                require_docker: false,
                docker_timeout: Duration::ZERO,
                ca_bundle: None,
            },
            host: HostSection {
                workdir_parent: None,
            },
            metrics: MetricsSection {
                enabled: false,
                addr: DEFAULT_METRICS_ADDR.to_owned(),
            },
        }
    }
}

/// Where the operator endpoints listen unless `metrics.addr` says otherwise.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9180";

/// A problem at a place in the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

/// A config and the warnings (unknown keys) found reading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Problem>,
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {file} is not valid:\n{}", render_problems(.problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
    #[error("cannot read runner.env_file {path}")]
    EnvFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn render_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Reads `path`, then merges `runner.env_file` (relative to the working directory, as the
    /// peer resolves it) into `runner.envs` when that file exists; its entries win.
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut loaded = Config::parse(&path.display().to_string(), &text)?;
        let env_file = loaded.config.runner.env_file.clone();
        if !env_file.is_empty() {
            let env_path = PathBuf::from(&env_file);
            match std::fs::read_to_string(&env_path) {
                Ok(text) => loaded.config.runner.envs.extend(parse_env_file(&text)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ConfigError::EnvFile {
                        path: env_path,
                        source,
                    });
                }
            }
        }
        Ok(loaded)
    }

    /// Reads config text; `file` names it in problems.
    pub fn parse(file: &str, text: &str) -> Result<Loaded, ConfigError> {
        let mut reader = Reader {
            file,
            config: Config::default(),
            errors: Vec::new(),
            warnings: Vec::new(),
            network_mode: None,
        };
        let parsed = runnel_yaml::parse(text);
        // Like the peer's decoder, only the first document counts; later ones are ignored.
        for error in parsed.errors.into_iter().filter(|e| !e.is_extra_document()) {
            let message = match error.hint {
                Some(hint) => format!("{} ({hint})", error.message),
                None => error.message,
            };
            reader.error(error.span, message);
        }
        // Read what the YAML reader produced even after an error (e.g. a duplicate key), so
        // every problem in the file is reported at once.
        if let Some(root) = &parsed.root {
            reader.root(root);
        }
        if reader.errors.is_empty() {
            Ok(Loaded {
                config: reader.config,
                warnings: reader.warnings,
            })
        } else {
            Err(ConfigError::Invalid {
                file: file.to_owned(),
                problems: reader.errors,
            })
        }
    }
}

/// `KEY=VALUE` lines (dotenv): blank lines and `#` comments skipped, `export ` allowed, one
/// level of matching quotes removed.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        pairs.push((key.trim().to_owned(), unquoted.to_owned()));
    }
    pairs
}

struct Reader<'a> {
    file: &'a str,
    config: Config,
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
    /// The deprecated `container.network_mode`, applied once every key is read.
    network_mode: Option<(String, Span)>,
}

impl Reader<'_> {
    fn problem(&self, at: Span, message: String) -> Problem {
        Problem {
            file: self.file.to_owned(),
            line: at.line,
            col: at.col,
            message,
        }
    }

    fn error(&mut self, at: Span, message: String) {
        let problem = self.problem(at, message);
        self.errors.push(problem);
    }

    fn unknown(&mut self, key: &str, at: Span) {
        let problem = self.problem(at, format!("unknown key `{key}` (ignored)"));
        self.warnings.push(problem);
    }

    /// The entries of a mapping node (`None` for a null section, which means defaults).
    fn entries<'n>(&mut self, path: &str, node: &'n Node) -> Option<Vec<(String, &'n Node, Span)>> {
        match &node.kind {
            NodeKind::Mapping(entries) => Some(
                entries
                    .iter()
                    .filter_map(|(k, v)| Some((k.scalar_text()?.to_owned(), v, k.span)))
                    .collect(),
            ),
            _ if node.is_null() => None,
            _ => {
                let what = if path.is_empty() { "the file" } else { path };
                self.error(node.span, format!("{what} must be a mapping"));
                None
            }
        }
    }

    fn root(&mut self, root: &Node) {
        let Some(entries) = self.entries("", root) else {
            return;
        };
        for (key, value, at) in entries {
            match key.as_str() {
                "log" => self.section(&key, value, Reader::log_key),
                "runner" => self.section(&key, value, Reader::runner_key),
                "cache" => self.section(&key, value, Reader::cache_key),
                "container" => self.section(&key, value, Reader::container_key),
                "host" => self.section(&key, value, Reader::host_key),
                "metrics" => self.section(&key, value, Reader::metrics_key),
                _ => self.unknown(&key, at),
            }
        }
        self.apply_network_mode();
    }

    /// act_runner's deprecated `container.network_mode`, read as it does when `network` is
    /// empty: `bridge` meant a network of the runner's own (now an empty `network`), any
    /// other value is the network.
    fn apply_network_mode(&mut self) {
        let Some((mode, at)) = self.network_mode.take() else {
            return;
        };
        let applied = if !self.config.container.network.is_empty() {
            "ignored: container.network is set".to_owned()
        } else if mode == "bridge" {
            "`bridge` reads as an empty container.network (a network of the runner's own)"
                .to_owned()
        } else {
            self.config.container.network = mode.clone();
            format!("read as container.network: {mode}")
        };
        let problem = self.problem(
            at,
            format!("container.network_mode is deprecated, use container.network; {applied}"),
        );
        self.warnings.push(problem);
    }

    fn section(&mut self, name: &str, node: &Node, read: fn(&mut Self, &str, &Node) -> bool) {
        let Some(entries) = self.entries(name, node) else {
            return;
        };
        for (key, value, at) in entries {
            let path = format!("{name}.{key}");
            if !read(self, &path, value) {
                self.unknown(&path, at);
            }
        }
    }

    fn log_key(&mut self, path: &str, v: &Node) -> bool {
        match path {
            "log.level" => {
                if let Some(level) = self.string(path, v) {
                    let known = [
                        "trace", "debug", "info", "warn", "warning", "error", "fatal", "panic",
                    ];
                    if known.contains(&level.to_ascii_lowercase().as_str()) {
                        self.config.log.level = level.to_ascii_lowercase();
                    } else {
                        self.error(v.span, format!("{path}: unknown level `{level}` (use trace, debug, info, warn or error)"));
                    }
                }
            }
            _ => return false,
        }
        true
    }

    fn runner_key(&mut self, path: &str, v: &Node) -> bool {
        let key = path.trim_start_matches("runner.");
        match key {
            "file" => set(self.string(path, v), |s| {
                self.config.runner.file = PathBuf::from(s)
            }),
            "capacity" => {
                if let Some(n) = self.integer(path, v) {
                    if n < 1 {
                        // The Gitea runner runs one job at a time then, not none.
                        let problem =
                            self.problem(v.span, format!("{path}: {n} is less than 1; 1 is used"));
                        self.warnings.push(problem);
                        self.config.runner.capacity = 1;
                    } else {
                        self.config.runner.capacity = usize::try_from(n).unwrap_or(usize::MAX);
                    }
                }
            }
            "envs" => {
                if let Some(map) = self.string_map(path, v) {
                    self.config.runner.envs = map;
                }
            }
            "env_file" => set(self.string(path, v), |s| self.config.runner.env_file = s),
            // A zero timeout means the default, as in the Gitea runner (not "fail at once").
            "timeout" => set(self.duration(path, v), |d| {
                if !d.is_zero() {
                    self.config.runner.timeout = d;
                }
            }),
            "shutdown_timeout" => set(self.duration(path, v), |d| {
                self.config.runner.shutdown_timeout = d
            }),
            "insecure" => set(self.boolean(path, v), |b| self.config.runner.insecure = b),
            "fetch_timeout" => set(self.duration(path, v), |d| {
                if !d.is_zero() {
                    self.config.runner.fetch_timeout = d;
                }
            }),
            "fetch_interval" => set(self.duration(path, v), |d| {
                self.config.runner.fetch_interval = d
            }),
            "fetch_interval_max" => set(self.duration(path, v), |d| {
                self.config.runner.fetch_interval_max = d
            }),
            "state_report_interval" => set(self.duration(path, v), |d| {
                self.config.runner.state_report_interval = d
            }),
            "report_close_timeout" => set(self.duration(path, v), |d| {
                self.config.runner.report_close_timeout = d
            }),
            "github_mirror" => set(self.string(path, v), |s| {
                self.config.runner.github_mirror = s
            }),
            "labels" => set(self.strings(path, v), |l| self.config.runner.labels = l),
            "spool_dir" => set(self.string(path, v), |s| {
                self.config.runner.spool_dir = (!s.is_empty()).then(|| PathBuf::from(s));
            }),
            "transport" => {
                if let Some(text) = self.string(path, v) {
                    match text.as_str() {
                        "auto" | "" => self.config.runner.transport = TransportChoice::Auto,
                        "connect" => self.config.runner.transport = TransportChoice::Connect,
                        "grpc" => self.config.runner.transport = TransportChoice::Grpc,
                        other => self.error(
                            v.span,
                            format!("{path}: `{other}` is not one of auto, connect, grpc"),
                        ),
                    }
                }
            }
            _ => return false,
        }
        true
    }

    fn cache_key(&mut self, path: &str, v: &Node) -> bool {
        const SECRET_TWICE: &str = "cache: set `shared_secret` or `shared_secret_file`, not both";
        match path {
            "cache.enabled" => set(self.boolean(path, v), |b| self.config.cache.enabled = b),
            "cache.dir" => set(self.string(path, v), |s| {
                self.config.cache.dir = (!s.is_empty()).then(|| PathBuf::from(s));
            }),
            "cache.host" => set(self.string(path, v), |s| self.config.cache.host = s),
            "cache.port" => {
                if let Some(n) = self.integer(path, v) {
                    match u16::try_from(n) {
                        Ok(port) => self.config.cache.port = port,
                        Err(_) => self.error(v.span, format!("{path}: {n} is not a port number")),
                    }
                }
            }
            "cache.external_server" => set(self.string(path, v), |s| {
                self.config.cache.external_server = s
            }),
            "cache.shared_secret" => {
                if let Some(secret) = self.string(path, v) {
                    if !secret.is_empty() && self.config.cache.shared_secret_file.is_some() {
                        self.error(v.span, SECRET_TWICE.to_owned());
                    }
                    self.config.cache.shared_secret = secret;
                }
            }
            "cache.shared_secret_file" => {
                if let Some(file) = self.string(path, v) {
                    if !file.is_empty() && !self.config.cache.shared_secret.is_empty() {
                        self.error(v.span, SECRET_TWICE.to_owned());
                    }
                    self.config.cache.shared_secret_file =
                        (!file.is_empty()).then(|| PathBuf::from(file));
                }
            }
            "cache.size_limit" => set(self.string(path, v), |s| {
                if s.trim().is_empty() {
                    self.config.cache.size_limit = None;
                    return;
                }
                match crate::parse_size(&s) {
                    Ok(bytes) => self.config.cache.size_limit = Some(bytes),
                    Err(message) => self.error(v.span, format!("{path}: {message}")),
                }
            }),
            "cache.s3" => {
                let mut s3 = S3Section::default();
                for (key, value, at) in self.entries(path, v).unwrap_or_default() {
                    let field = match key.as_str() {
                        "endpoint" => &mut s3.endpoint,
                        "bucket" => &mut s3.bucket,
                        "region" => &mut s3.region,
                        "prefix" => &mut s3.prefix,
                        "access_key" => &mut s3.access_key,
                        "secret_key" => &mut s3.secret_key,
                        _ => {
                            self.unknown(&format!("{path}.{key}"), at);
                            continue;
                        }
                    };
                    if let Some(text) = self.string(&format!("{path}.{key}"), value) {
                        *field = text;
                    }
                }
                if !s3.endpoint.is_empty() && s3.bucket.is_empty() {
                    self.error(
                        v.span,
                        format!("{path}: `bucket` is required with `endpoint`"),
                    );
                }
                self.config.cache.s3 = (!s3.endpoint.is_empty()).then_some(s3);
            }
            _ => return false,
        }
        true
    }

    fn container_key(&mut self, path: &str, v: &Node) -> bool {
        match path {
            "container.network" => set(self.string(path, v), |s| self.config.container.network = s),
            "container.network_mode" => {
                if let Some(mode) = self.string(path, v).filter(|mode| !mode.is_empty()) {
                    self.network_mode = Some((mode, v.span));
                }
            }
            "container.privileged" => set(self.boolean(path, v), |b| {
                self.config.container.privileged = b
            }),
            "container.options" => set(self.string(path, v), |s| self.config.container.options = s),
            "container.workdir_parent" => set(self.string(path, v), |s| {
                self.config.container.workdir_parent = s.trim_start_matches('/').to_owned();
            }),
            "container.valid_volumes" => set(self.strings(path, v), |l| {
                self.config.container.valid_volumes = l
            }),
            "container.docker_host" => set(self.string(path, v), |s| {
                self.config.container.docker_host = s;
                self.config.container.docker_host_written = true;
            }),
            "container.force_pull" => set(self.boolean(path, v), |b| {
                self.config.container.force_pull = b
            }),
            "container.force_rebuild" => set(self.boolean(path, v), |b| {
                self.config.container.force_rebuild = b
            }),
            "container.require_docker" => set(self.boolean(path, v), |b| {
                self.config.container.require_docker = b
            }),
            "container.docker_timeout" => set(self.duration(path, v), |d| {
                self.config.container.docker_timeout = d
            }),
            "container.ca_bundle" => set(self.string(path, v), |s| {
                self.config.container.ca_bundle = (!s.is_empty()).then(|| PathBuf::from(s));
            }),
            _ => return false,
        }
        true
    }

    fn host_key(&mut self, path: &str, v: &Node) -> bool {
        match path {
            "host.workdir_parent" => set(self.string(path, v), |s| {
                self.config.host.workdir_parent = (!s.is_empty()).then(|| PathBuf::from(s));
            }),
            _ => return false,
        }
        true
    }

    fn metrics_key(&mut self, path: &str, v: &Node) -> bool {
        match path {
            "metrics.enabled" => set(self.boolean(path, v), |b| self.config.metrics.enabled = b),
            "metrics.addr" => {
                if let Some(addr) = self.string(path, v) {
                    if addr.is_empty() {
                        self.config.metrics.addr = DEFAULT_METRICS_ADDR.to_owned();
                    } else if addr.parse::<std::net::SocketAddr>().is_ok() {
                        self.config.metrics.addr = addr;
                    } else {
                        self.error(
                            v.span,
                            format!("{path}: `{addr}` is not an address such as 127.0.0.1:9180"),
                        );
                    }
                }
            }
            _ => return false,
        }
        true
    }

    /// A scalar's text; null reads as the empty string (as Go's YAML decoder leaves the zero
    /// value).
    fn string(&mut self, path: &str, v: &Node) -> Option<String> {
        match &v.kind {
            _ if v.is_null() => Some(String::new()),
            NodeKind::Scalar(scalar) => Some(scalar.text.clone()),
            _ => {
                self.error(v.span, format!("{path}: expected a string"));
                None
            }
        }
    }

    fn boolean(&mut self, path: &str, v: &Node) -> Option<bool> {
        match &v.kind {
            _ if v.is_null() => Some(false),
            // By text, so a quoted "true" reads as true too (as the peer's decoder does).
            // YAML 1.1's words too, as the Gitea runner's decoder takes them.
            NodeKind::Scalar(scalar) => match scalar.text.as_str() {
                "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y"
                | "Y" => Some(true),
                "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n"
                | "N" => Some(false),
                other => {
                    self.error(v.span, format!("{path}: `{other}` is not true or false"));
                    None
                }
            },
            _ => {
                self.error(v.span, format!("{path}: expected true or false"));
                None
            }
        }
    }

    fn integer(&mut self, path: &str, v: &Node) -> Option<i64> {
        match &v.kind {
            NodeKind::Scalar(scalar) if !v.is_null() => match scalar.text.trim().parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    let text = &scalar.text;
                    self.error(v.span, format!("{path}: `{text}` is not an integer"));
                    None
                }
            },
            _ => {
                self.error(v.span, format!("{path}: expected an integer"));
                None
            }
        }
    }

    fn duration(&mut self, path: &str, v: &Node) -> Option<Duration> {
        match &v.kind {
            _ if v.is_null() => Some(Duration::ZERO),
            NodeKind::Scalar(scalar) => match parse_duration(&scalar.text) {
                Ok(d) => Some(d),
                Err(message) => {
                    self.error(v.span, format!("{path}: {message}"));
                    None
                }
            },
            _ => {
                self.error(
                    v.span,
                    format!("{path}: expected a duration such as 5s or 3h"),
                );
                None
            }
        }
    }

    fn strings(&mut self, path: &str, v: &Node) -> Option<Vec<String>> {
        match &v.kind {
            _ if v.is_null() => Some(Vec::new()),
            NodeKind::Sequence(items) => {
                let mut out = Vec::new();
                for item in items {
                    match &item.kind {
                        NodeKind::Scalar(scalar) if !item.is_null() => {
                            out.push(scalar.text.clone());
                        }
                        _ => self.error(item.span, format!("{path}: expected a list of strings")),
                    }
                }
                Some(out)
            }
            _ => {
                self.error(v.span, format!("{path}: expected a list"));
                None
            }
        }
    }

    fn string_map(&mut self, path: &str, v: &Node) -> Option<BTreeMap<String, String>> {
        let entries = self.entries(path, v)?;
        let mut map = BTreeMap::new();
        for (key, value, _) in entries {
            let entry_path = format!("{path}.{key}");
            if let Some(text) = self.string(&entry_path, value) {
                map.insert(key, text);
            }
        }
        Some(map)
    }
}

/// Applies `value` when reading it succeeded (the error is already recorded otherwise).
fn set<T>(value: Option<T>, apply: impl FnOnce(T)) {
    if let Some(value) = value {
        apply(value);
    }
}
