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

mod reader;

use reader::Reader;

/// `log:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSection {
    /// `trace`, `debug`, `info`, `warn`, `error` (the peer also takes `fatal`, `panic`).
    pub level: String,
    /// `log.job` (the Gitea runner v3's): a copy of each task's log on this machine.
    pub job: LogJobSection,
}

/// `log.job:`: where the daemon keeps a copy of each task's log, so a job's output survives a
/// failure to send it to Gitea.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogJobSection {
    /// `None` (empty): no copies.
    pub dir: Option<PathBuf>,
    /// Copies older than this are removed when a task starts; zero keeps them all.
    pub retention: Duration,
    /// The most bytes one copy holds; zero is no limit.
    pub max_size: u64,
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
    /// The Gitea runner's (v3) key: the image of a bare `name:docker` label. Empty: such a
    /// label is left out with a warning.
    pub default_image: String,
    /// The peer's newer key: idle polls and failed polls back off from `fetch_interval` up to
    /// this.
    pub fetch_interval_max: Duration,
    /// The peer's newer key: heartbeat of a running task's state (UpdateTask), which is also
    /// how a cancel in Gitea is noticed. runnel's default is 1s (the peer's newer default is
    /// 5s) so a cancelled job stops within seconds.
    pub state_report_interval: Duration,
    /// The peer's newer key: how long the final report of a task may take per attempt.
    pub report_close_timeout: Duration,
    /// The Gitea runner's (v3) `patch_actions`: let the stock artifact actions talk to Gitea
    /// by lifting their "not GitHub" guard as they are copied into the job
    /// (`runnel_engine::actions::ghes`). `false`: actions run exactly as published.
    pub patch_actions: bool,
    /// runnel addition: `auto`, `connect` or `grpc`.
    pub transport: TransportChoice,
    /// runnel addition: where log rows and states of running tasks are spooled before they
    /// are sent. `None`: `.runnel-spool` next to `file`.
    pub spool_dir: Option<PathBuf>,
    /// The Gitea runner's (v3) `set_act_env`: `ACT=true` in every job unless `envs` sets
    /// `ACT`. Default true, as v3.
    pub set_act_env: bool,
    /// The Gitea runner's (v3) `tool_cache_mode`: what backs `RUNNER_TOOL_CACHE`.
    pub tool_cache_mode: ToolCacheMode,
}

/// What backs a job's `RUNNER_TOOL_CACHE` (`runner.tool_cache_mode`, v3's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolCacheMode {
    /// `none`: each job has its own (the image's `/opt/hostedtoolcache` in a container, a
    /// directory of the job on the host), gone when the job ends.
    #[default]
    None,
    /// `shared`: one tool cache every job of this runner reuses (a Docker volume, a directory
    /// under the host work directory), so a tool a `setup-*` action downloaded stays.
    Shared,
}

impl RunnerSection {
    /// `envs` as jobs get them: with `ACT=true` when `set_act_env` holds and `envs` has no
    /// `ACT` of its own.
    pub fn job_envs(&self) -> BTreeMap<String, String> {
        let mut envs = self.envs.clone();
        if self.set_act_env {
            envs.entry("ACT".to_owned())
                .or_insert_with(|| "true".to_owned());
        }
        envs
    }
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

/// `metrics:`: the operator endpoints `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSection {
    pub enabled: bool,
    /// `host:port` to listen on.
    pub addr: String,
    /// The Gitea runner's (v3) `readiness_grace`: how long polls may fail before `/readyz`
    /// answers 503. `None`: runnel's window (three idle poll pauses and a fetch, at least 30 s).
    pub readiness_grace: Option<Duration>,
}

/// `health_check:` (the Gitea runner v3's task admission): while it fails, the daemon fetches
/// no new task (running ones go on) and `/readyz` says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSection {
    pub enabled: bool,
    /// The least free space, in MiB, on the file system of the job directories.
    pub min_free_disk_space_mb: u64,
    /// An executable whose failure (non-zero exit, timeout, not started) fails the check;
    /// empty: none.
    pub script: String,
    /// How long a result is reused.
    pub interval: Duration,
    /// How long the script may run.
    pub timeout: Duration,
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
    /// `cache.retention` (the Gitea runner's): entries not used for this long are removed by
    /// the cache's sweep. Zero: kept whatever their age. Default 168h.
    pub retention: Duration,
    /// `cache.repo_size_limit` (the Gitea runner's): each repository's least recently used
    /// entries are removed by the sweep until it holds at most this. `None` (a written 0): no
    /// per-repository cap. Default 10 GiB.
    pub repo_size_limit: Option<u64>,
    /// `cache.sweep_interval` (the Gitea runner's): how often the sweep runs; zero means the
    /// default, 1h.
    pub sweep_interval: Duration,
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
    /// runnel addition: `docker run` options a workflow's `options:` may use beyond the
    /// Docker backend's allow-list (e.g. `--gpus`).
    pub workflow_options_allowed: Vec<String>,
    /// The Gitea runner's (v3) key: how long a job waits for its services to become healthy
    /// (or running, without a health check).
    pub service_ready_timeout: Duration,
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

impl HostSection {
    /// Where the daemon's job directories go: `workdir_parent`, else `$HOME/.cache/act`
    /// (`None` without a home).
    pub fn effective_workdir_parent(&self) -> Option<PathBuf> {
        self.workdir_parent.clone().or_else(|| {
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".cache/act"))
        })
    }
}

/// `kubernetes:` (runnel's own section): where `kubernetes://IMAGE` labels run their pods.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubernetesSection {
    /// A kubeconfig file; `None`: `KUBECONFIG`, `~/.kube/config`, or the in-cluster account.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; `None`: its current one.
    pub context: Option<String>,
    /// Use the runner pod's service account, ignoring kubeconfigs.
    pub in_cluster: bool,
    /// The namespace of job pods; `None`: the kubeconfig context's (or the runner pod's).
    pub namespace: Option<String>,
    /// The job container's `imagePullPolicy` (`Always`, `IfNotPresent`, `Never`); `None`:
    /// Kubernetes' default.
    pub pull_policy: Option<String>,
    /// How long a job's pod may take to be scheduled and started; `None`: 5 minutes.
    pub pod_start_timeout: Option<Duration>,
    /// The job container's resource requests and limits (`cpu: 500m`, `memory: 1Gi`).
    pub resources: KubernetesResources,
    /// The job pod's `nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// The job pod's `tolerations`.
    pub tolerations: Vec<KubernetesToleration>,
    /// Secrets (of the job namespace) the node pulls job and service images with.
    pub image_pull_secrets: Vec<String>,
    /// The job pod's service account; `None`: the namespace's `default`.
    pub service_account: Option<String>,
    /// Mount the service account's token into the job pod (off: jobs get no API rights).
    pub automount_service_account_token: bool,
}

/// `kubernetes.resources`: quantities as Kubernetes writes them, by resource name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubernetesResources {
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
}

/// One of `kubernetes.tolerations`, as a pod's toleration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubernetesToleration {
    pub key: String,
    /// `Equal` or `Exists`; empty: `Equal`.
    pub operator: String,
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; empty: all.
    pub effect: String,
    /// For `NoExecute`: how long the pod stays once tainted; `None`: for ever.
    pub toleration_seconds: Option<i64>,
}

/// `vm:` (runnel's own section): how `name:vm://IMAGE` labels boot their microVMs. Environment
/// variables (`RUNNEL_VM_*`) override these when the backend is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSection {
    /// Where images are (`IMAGES/NAME/…`); `None`: `${RUNNEL_CACHE:-$HOME/.cache/runnel}/vm`.
    pub images: Option<PathBuf>,
    /// How the job's directory reaches the guest (all vm labels alike).
    pub share: VmShareMode,
    /// The `virtiofsd` binary; `None`: beside runnel, on `PATH`, else in the cache
    /// `tests/vm/virtiofsd.sh` installs into.
    pub virtiofsd: Option<PathBuf>,
    /// What every vm label's jobs get, unless `labels` says otherwise for theirs.
    pub settings: VmSettings,
    /// Per label (by name, as in `runner.labels`): what differs from `settings`.
    pub labels: BTreeMap<String, VmLabelSettings>,
}

/// The section-wide settings of `vm:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSettings {
    /// vCPUs per guest.
    pub cpus: u32,
    /// Guest memory in bytes (a whole number of MiB).
    pub memory: u64,
    /// The guest's root disk: the overlay grows to this many bytes (at least the image's);
    /// `None`: the image's size.
    pub disk_size: Option<u64>,
    /// A guest whose agent has not answered by then is killed.
    pub boot_timeout: Duration,
    pub network: VmNetworkMode,
    /// Images saved from this machine's Docker engine and loaded by the guest's engine.
    pub preload_images: Vec<String>,
}

/// `vm.labels.<name>`: each key written replaces the section's value for that label's jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmLabelSettings {
    pub cpus: Option<u32>,
    pub memory: Option<u64>,
    pub disk_size: Option<u64>,
    pub boot_timeout: Option<Duration>,
    pub network: Option<VmNetworkMode>,
    pub preload_images: Option<Vec<String>>,
}

impl VmSection {
    /// The settings of `label`'s jobs (its `labels` entry, matched ignoring case as labels
    /// are, over the section's).
    pub fn settings_for(&self, label: &str) -> VmSettings {
        let mut settings = self.settings.clone();
        let Some(own) = self
            .labels
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(label))
            .map(|(_, own)| own)
        else {
            return settings;
        };
        if let Some(cpus) = own.cpus {
            settings.cpus = cpus;
        }
        if let Some(memory) = own.memory {
            settings.memory = memory;
        }
        if own.disk_size.is_some() {
            settings.disk_size = own.disk_size;
        }
        if let Some(timeout) = own.boot_timeout {
            settings.boot_timeout = timeout;
        }
        if let Some(network) = own.network {
            settings.network = network;
        }
        if let Some(images) = &own.preload_images {
            settings.preload_images = images.clone();
        }
        settings
    }
}

impl Default for VmSection {
    fn default() -> VmSection {
        VmSection {
            images: None,
            share: VmShareMode::Auto,
            virtiofsd: None,
            settings: VmSettings {
                cpus: 1,
                memory: 1 << 30,
                disk_size: None,
                boot_timeout: Duration::from_secs(180),
                network: VmNetworkMode::Restricted,
                preload_images: Vec::new(),
            },
            labels: BTreeMap::new(),
        }
    }
}

/// `vm.share`: how the job's directory reaches the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VmShareMode {
    /// virtiofs when a `virtiofsd` is found, else 9p (the default).
    #[default]
    Auto,
    Virtiofs,
    NineP,
}

/// `vm.network`: what a guest's user-mode network reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VmNetworkMode {
    /// Only the runner's cache server (the default).
    #[default]
    Restricted,
    /// QEMU's NAT: the outside, and this machine's loopback at the guest's gateway.
    Nat,
}

/// The whole config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub log: LogSection,
    pub runner: RunnerSection,
    pub cache: CacheSection,
    pub container: ContainerSection,
    pub host: HostSection,
    pub kubernetes: KubernetesSection,
    pub vm: VmSection,
    pub metrics: MetricsSection,
    pub health_check: HealthCheckSection,
}

impl Default for Config {
    /// The peer's defaults (what an empty or absent config file means).
    fn default() -> Config {
        Config {
            log: LogSection {
                level: "info".to_owned(),
                job: LogJobSection {
                    dir: None,
                    retention: Duration::from_secs(7 * 24 * 3600),
                    max_size: 1 << 30,
                },
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
                default_image: String::new(),
                labels: Vec::new(),
                fetch_interval_max: Duration::from_secs(5),
                state_report_interval: Duration::from_secs(1),
                report_close_timeout: Duration::from_secs(10),
                patch_actions: true,
                transport: TransportChoice::Auto,
                spool_dir: None,
                set_act_env: true,
                tool_cache_mode: ToolCacheMode::None,
            },
            cache: CacheSection {
                enabled: true,
                dir: None,
                host: String::new(),
                port: 0,
                external_server: String::new(),
                size_limit: None,
                retention: Duration::from_secs(7 * 24 * 3600),
                repo_size_limit: Some(10 << 30),
                sweep_interval: Duration::from_secs(3600),
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
                workflow_options_allowed: Vec::new(),
                service_ready_timeout: DEFAULT_SERVICE_READY_TIMEOUT,
            },
            host: HostSection {
                workdir_parent: None,
            },
            kubernetes: KubernetesSection::default(),
            vm: VmSection::default(),
            metrics: MetricsSection {
                enabled: false,
                addr: DEFAULT_METRICS_ADDR.to_owned(),
                readiness_grace: None,
            },
            health_check: HealthCheckSection {
                enabled: false,
                min_free_disk_space_mb: 1024,
                script: String::new(),
                interval: Duration::from_secs(30),
                timeout: Duration::from_secs(10),
            },
        }
    }
}

/// Where the operator endpoints listen unless `metrics.addr` says otherwise: the Gitea
/// runner's (v3) default, so scrape configs keep working when the binary is swapped.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9101";

/// How long services may take to become ready unless `container.service_ready_timeout` says
/// otherwise (the Gitea runner's default too).
pub const DEFAULT_SERVICE_READY_TIMEOUT: Duration = Duration::from_secs(300);

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

/// A config and the warnings (unknown keys, and keys of the Gitea runner that runnel reads
/// but does not apply, each saying what runnel does instead) found reading it.
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
        let mut reader = Reader::new(file);
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
    text.lines()
        .filter_map(|line| match parse_env_line(line) {
            EnvLine::Pair(key, value) => Some((key, value)),
            EnvLine::Blank | EnvLine::Malformed => None,
        })
        .collect()
}

/// One line of a dotenv file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvLine {
    /// Empty, or a `#` comment.
    Blank,
    /// `[export ]KEY=VALUE`, one level of matching quotes removed from the value.
    Pair(String, String),
    /// No `=`.
    Malformed,
}

/// Reads one dotenv line (the rules of [`parse_env_file`]).
pub fn parse_env_line(line: &str) -> EnvLine {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return EnvLine::Blank;
    }
    let line = line.strip_prefix("export ").unwrap_or(line);
    let Some((key, value)) = line.split_once('=') else {
        return EnvLine::Malformed;
    };
    let value = value.trim();
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
        .unwrap_or(value);
    EnvLine::Pair(key.trim().to_owned(), unquoted.to_owned())
}
