//! Command-line arguments: what each subcommand accepts, validated into plain values.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "runnel",
    version,
    about = "A Gitea Actions runner",
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// Config file, as the Gitea runner takes it before the subcommand (`runnel -c
    /// config.yaml daemon`); the subcommand's own `-c` wins.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Check workflow files and report every problem with file:line:col.
    Validate(ValidateArgs),
    /// Evaluate an expression (or JSON lines from stdin) and print the value as JSON.
    Eval(EvalArgs),
    /// Show which workflows an event triggers and the job instances each would run.
    Plan(PlanArgs),
    /// Run workflows locally, like `act`: live output per job and step, a summary, exit 1
    /// when a job failed.
    Run(Box<RunArgs>),
    /// Run workflows locally as the Gitea runner's `exec` does (its flags; every job in
    /// `--image`, or on this machine with `-i -self-hosted`).
    Exec(Box<ExecArgs>),
    /// Register this machine as a runner of a Gitea instance (writes the `.runner` file).
    Register(RegisterArgs),
    /// Run as a Gitea runner: take jobs from Gitea and report them back.
    Daemon(DaemonArgs),
    /// Print, write and edit config files: `generate` (the commented example), `init` (a
    /// minimal file), `get`, `set`, `add`, `remove` (one key, the rest of the file kept).
    Config(ConfigArgs),
    /// Deprecated: `runnel config generate` (the Gitea runner's old name, kept).
    #[command(hide = true)]
    GenerateConfig,
    /// Print what a bug report needs: runnel's version, the OS and architecture, the CPUs.
    BugReport,
    /// Check the setup (config, registration, Gitea, Docker, images, disk, host tools) and
    /// print each problem with its fix; exit 1 when a check failed.
    Doctor(DoctorArgs),
    /// Look at and manage the cache's entries: `ls`, `rm`, `prune`.
    Cache(CacheArgs),
    /// Serve the cache alone, for the runners of a fleet whose `cache.external_server` names
    /// it; they share `cache.shared_secret` with it.
    CacheServer(CacheServerArgs),
    /// The vm backend's images: `runnel vm image build|ls|rm`.
    Vm(VmArgs),
    /// Load and plan workflow files repeatedly in-process (for tests/bench).
    #[command(hide = true)]
    BenchParse(BenchArgs),
    /// QEMU's forwarder of a VM's connection to the cache server or Gitea: copies stdin to
    /// ADDR and ADDR's answers to stdout (the vm backend's restricted network runs it).
    #[command(hide = true, name = "__vm-forward")]
    VmForward {
        /// `HOST:PORT`: the cache server on this machine, or the Gitea server.
        addr: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

#[derive(Args)]
pub(crate) struct ValidateArgs {
    /// Workflow files or directories [default: .gitea/workflows, else .github/workflows].
    pub(crate) paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

#[derive(Args)]
pub(crate) struct EvalArgs {
    /// JSON object whose keys are the contexts the expression may use.
    #[arg(long, value_name = "FILE.json")]
    pub(crate) context: Option<PathBuf>,
    /// The expression (without `${{ }}`). Without it, JSON lines are read from stdin.
    pub(crate) expr: Option<String>,
}

#[derive(Args)]
pub(crate) struct PlanArgs {
    /// Workflow file or directory [default: .gitea/workflows, else .github/workflows].
    #[arg(short = 'W', long = "workflows", value_name = "PATH")]
    pub(crate) workflows: Option<PathBuf>,
    /// Event name.
    #[arg(long, default_value = "push")]
    pub(crate) event: String,
    #[command(flatten)]
    pub(crate) event_args: EventArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

/// What the event carries besides its name; shared by `plan` and `run`.
#[derive(Args)]
pub(crate) struct EventArgs {
    /// Git ref of the event, e.g. refs/heads/main or refs/tags/v1 [default: the working
    /// tree's branch, else refs/heads/main].
    #[arg(long = "ref")]
    pub(crate) git_ref: Option<String>,
    /// Commit SHA of the event [default: the working tree's HEAD].
    #[arg(long)]
    pub(crate) sha: Option<String>,
    /// A workflow_dispatch input (repeatable).
    #[arg(long = "input", value_name = "K=V", value_parser = key_value)]
    pub(crate) inputs: Vec<(String, String)>,
    /// A file of inputs, one `K=V` per line; `--input` wins [default: .input, when it
    /// exists, as act].
    #[arg(long = "input-file", value_name = "FILE")]
    pub(crate) input_file: Option<PathBuf>,
    /// JSON file with the event payload (github.event).
    #[arg(short = 'e', long, value_name = "FILE")]
    pub(crate) eventpath: Option<PathBuf>,
    /// A configuration variable, `vars.K` (repeatable).
    #[arg(long = "var", value_name = "K=V", value_parser = key_value)]
    pub(crate) vars: Vec<(String, String)>,
    /// A changed file, for `paths` filters (repeatable); unknown when absent.
    #[arg(long = "changed-file", value_name = "PATH")]
    pub(crate) changed_files: Vec<String>,
    /// `github.actor` (act's `-a`) [default: runnel].
    #[arg(short = 'a', long = "actor", value_name = "NAME")]
    pub(crate) actor: Option<String>,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Event name.
    #[arg(default_value = "push")]
    pub(crate) event: String,
    /// Workflow file or directory [default: .gitea/workflows, else .github/workflows].
    #[arg(short = 'W', long = "workflows", value_name = "PATH")]
    pub(crate) workflows: Option<std::path::PathBuf>,
    /// Run only this job (all its matrix legs).
    #[arg(short = 'j', long = "job", value_name = "JOB")]
    pub(crate) job: Option<String>,
    /// Run only the matrix legs whose KEY has this VALUE (repeatable; several values of one
    /// key are alternatives). Legs without KEY, and jobs without a matrix, still run.
    #[arg(long = "matrix", value_name = "KEY:VALUE", value_parser = matrix_value)]
    pub(crate) matrix: Vec<(String, String)>,
    #[command(flatten)]
    pub(crate) event_args: EventArgs,
    /// A secret (repeatable). `-s NAME` alone reads the value from the environment.
    #[arg(short = 's', long = "secret", value_name = "K=V")]
    pub(crate) secrets: Vec<String>,
    /// A file of secrets, one `K=V` per line [default: .secrets, when it exists, as act].
    #[arg(long = "secret-file", value_name = "FILE")]
    pub(crate) secret_file: Option<std::path::PathBuf>,
    /// A file of variables, one `K=V` per line [default: .vars, when it exists, as act].
    #[arg(long = "var-file", value_name = "FILE")]
    pub(crate) var_file: Option<std::path::PathBuf>,
    /// A variable every step's process starts with (repeatable; act's `--env`). `--env K`
    /// alone takes the value from this environment. Workflow `env:` still wins.
    #[arg(long = "env", value_name = "K=V")]
    pub(crate) env: Vec<String>,
    /// A file of such variables, one `K=V` per line [default: .env, when it exists, as act].
    #[arg(long = "env-file", value_name = "FILE")]
    pub(crate) env_file: Option<std::path::PathBuf>,
    /// Label mapping (repeatable): `LABEL=IMAGE` or `LABEL=docker://IMAGE` runs that label's
    /// jobs in a container of IMAGE; `LABEL=vm://IMAGE` in a microVM per job (experimental,
    /// images from tests/vm/build.sh); `LABEL=kubernetes://IMAGE` in a pod of IMAGE on the cluster of
    /// `KUBECONFIG`; `LABEL=-self-hosted` on this machine. Unmapped labels
    /// run on this machine.
    #[arg(short = 'P', long = "platform", value_name = "LABEL=IMAGE")]
    pub(crate) platforms: Vec<String>,
    /// Where `owner/repo@ref` actions are cloned from (a Gitea instance, or `file:///dir` of
    /// git repositories) [default: https://github.com].
    #[arg(long = "actions-url", value_name = "URL")]
    pub(crate) actions_url: Option<String>,
    /// PEM file of CA certificates that job, service and action containers trust, on top of
    /// this machine's system bundle.
    #[arg(long = "ca-bundle", value_name = "FILE")]
    pub(crate) ca_bundle: Option<PathBuf>,
    /// Pull job, service and action images even when they are present (act's `--pull`, which
    /// act turns on by default; off here, since a local run often has no registry). A failed
    /// pull falls back to the local copy.
    #[arg(long, short = 'p')]
    pub(crate) pull: bool,
    /// Rebuild Dockerfile actions even when an image of the same content exists (act's
    /// `--rebuild`).
    #[arg(long)]
    pub(crate) rebuild: bool,
    /// Also write each job's step summaries ($GITHUB_STEP_SUMMARY, Markdown) to
    /// DIR/<job key>.md (created if missing); they are printed after each job either way.
    #[arg(long, value_name = "DIR")]
    pub(crate) summary_dir: Option<PathBuf>,
    /// Mount the working tree into job containers read-write (act's `--bind`) instead of
    /// giving each container job a copy of it. Steps then change your files, `.git`
    /// included: use it only for workflows you trust.
    #[arg(long, short = 'b')]
    pub(crate) bind: bool,
    /// Run `actions/checkout` of this run's own repository for real. By default it is
    /// skipped, as act does: the workspace is the working tree already. With this flag host
    /// jobs work on a copy of the tree, since checkout empties the workspace first.
    #[arg(long)]
    pub(crate) no_skip_checkout: bool,
    /// Print the plan and run nothing (act's `-n/--dryrun`).
    #[arg(long, short = 'n', visible_alias = "dryrun")]
    pub(crate) plan: bool,
    /// List the jobs the event runs, in `needs` order, and run nothing (act's `-l/--list`
    /// and `-g/--graph` print the same plan).
    #[arg(long, short = 'l', visible_alias = "graph", short_alias = 'g')]
    pub(crate) list: bool,
    /// Start no cache and artifact server; jobs get no `ACTIONS_CACHE_URL`.
    #[arg(long)]
    pub(crate) no_cache_server: bool,
    /// Where the cache server keeps entries and artifacts (act's `--artifact-server-path`
    /// names the same place: one server serves both) [default: ~/.cache/runnel/cache].
    #[arg(long, value_name = "DIR", visible_alias = "artifact-server-path")]
    pub(crate) cache_server_path: Option<std::path::PathBuf>,
    /// The address jobs reach the cache server at; it then listens on every interface
    /// [default: 127.0.0.1 for host jobs, the Docker network's gateway for container jobs].
    #[arg(long, value_name = "ADDR")]
    pub(crate) cache_server_addr: Option<String>,
    /// The cache server's port [default: a free one].
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub(crate) cache_server_port: u16,
    /// The most the cache keeps (`500M`, `10G`); least recently used entries go first
    /// [default: 10G].
    #[arg(long, value_name = "SIZE", value_parser = runnel_config::parse_size)]
    pub(crate) cache_size_limit: Option<u64>,
    /// Keep cache entries in an S3-compatible bucket, `http(s)://host[:port]/BUCKET[/PREFIX]`
    /// (path-style; keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, region from AWS_REGION
    /// or us-east-1), shared with every runner pointing at it.
    #[arg(long, value_name = "URL")]
    pub(crate) cache_s3: Option<String>,
    /// Use this `runnel cache-server` for the cache (`cache.external_server`); artifacts stay
    /// with the built-in server.
    #[arg(long, value_name = "URL")]
    pub(crate) cache_external_server: Option<String>,
    /// The secret shared with that server (`cache.shared_secret_file`).
    #[arg(long, value_name = "FILE")]
    pub(crate) cache_secret_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub(crate) container: ContainerArgs,
    /// A config.yaml whose `vm:` section (vCPUs, memory, disk size, boot timeout, network,
    /// per label) applies to `vm://` labels and whose `kubernetes:` section (cluster,
    /// namespace, pod spec) to `kubernetes://` labels; its other sections are not read (the
    /// flags above say those) [also `runnel -c FILE run`].
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

/// act's container flags, shared by `run` and `exec` and mapped onto `config.yaml`'s
/// `container:` keys (`local_config`); `--container-architecture` has no key there.
#[derive(Args, Clone, Default)]
pub(crate) struct ContainerArgs {
    /// The platform job, service and action containers are created, pulled and built for,
    /// e.g. `linux/amd64`; an image present for another one is pulled again [default: the
    /// Docker engine's own].
    #[arg(long = "container-architecture", value_name = "OS/ARCH")]
    pub(crate) architecture: Option<String>,
    /// More `docker run` options for every job container (`container.options`), e.g.
    /// `--container-options="--shm-size 1g"`.
    #[arg(
        long = "container-options",
        visible_alias = "container-opts",
        value_name = "OPTIONS",
        allow_hyphen_values = true
    )]
    pub(crate) options: Option<String>,
    /// A capability added to job containers (repeatable).
    #[arg(long = "container-cap-add", value_name = "CAP")]
    pub(crate) cap_add: Vec<String>,
    /// A capability dropped from job containers (repeatable).
    #[arg(long = "container-cap-drop", value_name = "CAP")]
    pub(crate) cap_drop: Vec<String>,
    /// The Docker network job containers join (`container.network`; act's default is
    /// `host`) [default: Docker's default bridge].
    #[arg(long, value_name = "NAME")]
    pub(crate) network: Option<String>,
    /// Run job, service and step containers privileged (`container.privileged`).
    #[arg(long)]
    pub(crate) privileged: bool,
    /// The user namespace mode of job containers (`docker run --userns`, e.g. `host`).
    #[arg(long, value_name = "MODE")]
    pub(crate) userns: Option<String>,
}

#[derive(Args)]
pub(crate) struct RegisterArgs {
    /// Config file (for `runner.file`, `runner.insecure`, `runner.transport`).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The Gitea instance URL, e.g. https://gitea.example.com/.
    #[arg(long)]
    pub(crate) instance: Option<String>,
    /// The runner registration token (from Gitea's runner settings) [default: the
    /// `--token-file`, else GITEA_RUNNER_REGISTRATION_TOKEN, else
    /// GITEA_RUNNER_REGISTRATION_TOKEN_FILE].
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// A file holding the registration token (its first line), as the Gitea runner takes it.
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub(crate) token_file: Option<PathBuf>,
    /// The runner's name [default: this machine's host name].
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Labels, comma separated: NAME, NAME:host or NAME:docker://IMAGE; ignored (with a
    /// warning) when the config has `runner.labels`, as by the Gitea runner [default: the
    /// Gitea runner's ubuntu-* docker labels].
    #[arg(long, value_delimiter = ',')]
    pub(crate) labels: Vec<String>,
    /// Never prompt; take everything from the flags.
    #[arg(long)]
    pub(crate) no_interactive: bool,
    /// Register an ephemeral runner: it takes one job, then Gitea removes it (Gitea 1.24+).
    #[arg(long)]
    pub(crate) ephemeral: bool,
}

#[derive(Args)]
pub(crate) struct DaemonArgs {
    /// Config file [default: built-in defaults, as `runnel generate-config` prints them].
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Run one job, then exit.
    #[arg(long)]
    pub(crate) once: bool,
    /// Labels, comma separated, in place of the config's `runner.labels` and the `.runner`
    /// file's (which is updated to them), as the Gitea runner's flag.
    #[arg(long, value_name = "LABELS", env = "GITEA_RUNNER_LABELS")]
    pub(crate) labels: Option<String>,
}

impl DaemonArgs {
    /// `--labels` split on commas, blanks dropped (empty: not given).
    pub(crate) fn labels(&self) -> Vec<String> {
        self.labels
            .iter()
            .flat_map(|text| text.split(','))
            .map(str::trim)
            .filter(|label| !label.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// `runnel config …`, as the Gitea runner's `config` commands.
#[derive(Args)]
#[command(subcommand_required = true, arg_required_else_help = true)]
pub(crate) struct ConfigArgs {
    /// The config file [default: config.yaml or config.yml in the working directory, else
    /// next to the runnel binary; `init` writes config.yaml here].
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: ConfigCommand,
}

#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the commented example config: every key, its default and what it does.
    Generate,
    /// Write a minimal config file (every key at its default) to `-c FILE` or config.yaml.
    Init {
        /// Replace a file that is there.
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Print the value of a key (`runner.capacity`); a list one item a line.
    Get {
        /// The key, its sections joined by dots.
        key: String,
    },
    /// Set a key (a list key takes one or more values); the file's other lines stay.
    Set(ConfigEditArgs),
    /// Append values to a list key (`runner.labels`, `container.valid_volumes`).
    Add(ConfigEditArgs),
    /// Remove values from a list key.
    Remove(ConfigEditArgs),
}

#[derive(Args)]
pub(crate) struct ConfigEditArgs {
    /// The key, its sections joined by dots (`runner.envs.NAME` for a job variable).
    pub(crate) key: String,
    /// The values; everything after the key is a value, `--cpus 2` included.
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) values: Vec<String>,
}

#[derive(Args)]
pub(crate) struct DoctorArgs {
    /// Config file to check and to take the other checks' settings from [default: built-in
    /// defaults].
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct CacheArgs {
    #[command(subcommand)]
    pub(crate) command: CacheCommand,
}

#[derive(Subcommand)]
pub(crate) enum CacheCommand {
    /// List the entries, oldest first.
    Ls(CacheLsArgs),
    /// Remove entries by key (every version) or by id.
    Rm(CacheRmArgs),
    /// Remove entries unused for a while, then the least recently used beyond a total size.
    Prune(CachePruneArgs),
}

impl CacheArgs {
    /// `runnel -c FILE cache …`: the config file, unless the subcommand names a cache itself.
    pub(crate) fn default_config(&mut self, config: Option<PathBuf>) {
        let dir = match &mut self.command {
            CacheCommand::Ls(args) => &mut args.dir,
            CacheCommand::Rm(args) => &mut args.dir,
            CacheCommand::Prune(args) => &mut args.dir,
        };
        if dir.dir.is_none() && dir.s3.is_none() && dir.config.is_none() {
            dir.config = config;
        }
    }
}

/// Which cache directory: `--dir`, else `cache.dir` of `-c`, else `runnel run`'s default.
#[derive(Args)]
pub(crate) struct CacheDirArgs {
    /// The cache directory [default: ~/.cache/runnel/cache, as `runnel run`].
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    pub(crate) dir: Option<PathBuf>,
    /// Take the directory from this config file's `cache.dir` (the daemon's cache), or its
    /// bucket when it has `cache.s3`.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The cache is this S3 bucket, `http(s)://host[:port]/BUCKET[/PREFIX]` (keys from
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), as `runnel run --cache-s3` takes it.
    #[arg(long, value_name = "URL", conflicts_with_all = ["dir", "config"])]
    pub(crate) s3: Option<String>,
}

#[derive(Args)]
pub(crate) struct CacheLsArgs {
    #[command(flatten)]
    pub(crate) dir: CacheDirArgs,
    /// Only entries of this repository (`owner/name`).
    #[arg(long, value_name = "OWNER/NAME")]
    pub(crate) repo: Option<String>,
    /// Only entries whose key starts with this.
    #[arg(long, value_name = "PREFIX")]
    pub(crate) key: Option<String>,
    /// `json`: one object per line.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

#[derive(Args)]
pub(crate) struct CacheRmArgs {
    #[command(flatten)]
    pub(crate) dir: CacheDirArgs,
    /// Keys to remove (exact match, every version).
    pub(crate) keys: Vec<String>,
    /// An entry id, as `ls` shows it (repeatable).
    #[arg(long = "id", value_name = "ID")]
    pub(crate) ids: Vec<u64>,
    /// Only keys of this repository (`owner/name`).
    #[arg(long, value_name = "OWNER/NAME")]
    pub(crate) repo: Option<String>,
}

#[derive(Args)]
pub(crate) struct CachePruneArgs {
    #[command(flatten)]
    pub(crate) dir: CacheDirArgs,
    /// Remove entries not used for this long (`7d`, `36h`, `90m`).
    #[arg(long, value_name = "DURATION", value_parser = age)]
    pub(crate) older_than: Option<std::time::Duration>,
    /// Then remove least recently used entries until the total is at most this (`10G`, `500M`).
    #[arg(long, value_name = "SIZE", value_parser = runnel_config::parse_size)]
    pub(crate) max_size: Option<u64>,
}

#[derive(Args)]
pub(crate) struct CacheServerArgs {
    /// Config file whose `cache:` section gives what the flags leave out.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The address to listen on (the Gitea runner's `-s/--host`, here an IP address)
    /// [default: 0.0.0.0, every interface].
    #[arg(short = 's', long, value_name = "ADDR", visible_alias = "host")]
    pub(crate) addr: Option<std::net::IpAddr>,
    /// The port [default: `cache.port`, else a free one, printed at start].
    #[arg(short = 'p', long, value_name = "PORT")]
    pub(crate) port: Option<u16>,
    /// Where entries are kept [default: `cache.dir`, else ~/.cache/actcache]; with S3 only
    /// uploads in progress.
    #[arg(short = 'd', long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Keep entries in an S3-compatible bucket, `http(s)://host[:port]/BUCKET[/PREFIX]` (keys
    /// from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) [default: `cache.s3`].
    #[arg(long, value_name = "URL")]
    pub(crate) s3: Option<String>,
    /// The most the cache keeps (`500M`, `10G`); least recently used entries go first; with
    /// S3 the largest entry [default: `cache.size_limit`, else 10G].
    #[arg(long, value_name = "SIZE", value_parser = runnel_config::parse_size)]
    pub(crate) size_limit: Option<u64>,
    /// The file holding the secret shared with the runners [default:
    /// `cache.shared_secret(_file)`].
    #[arg(long, value_name = "FILE")]
    pub(crate) secret_file: Option<PathBuf>,
    /// Check no tokens: any client that reaches the port reads and overwrites the entries of
    /// every repository. Only for runners that cannot mint tokens (no shared secret).
    #[arg(long, conflicts_with = "secret_file")]
    pub(crate) no_auth: bool,
}

#[derive(Args)]
pub(crate) struct BenchArgs {
    #[arg(long, default_value_t = 10)]
    pub(crate) iterations: u32,
    pub(crate) files: Vec<PathBuf>,
}

/// An age such as `--older-than 7d`: Go's durations with days and weeks.
fn age(text: &str) -> Result<std::time::Duration, runnel_config::DurationError> {
    runnel_config::parse_duration_with(text, runnel_config::DurationGrammar::AGE)
}

/// `--matrix KEY:VALUE`, as act takes it.
fn matrix_value(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY:VALUE, got {s:?}")),
    }
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected K=V, got {s:?}")),
    }
}

/// The Gitea runner's default `exec` image.
pub(crate) const DEFAULT_EXEC_IMAGE: &str = "docker.gitea.com/runner-images:ubuntu-latest";

/// `runnel exec`: the Gitea runner's `exec` flags (see `exec.rs` for how they map onto `run`).
#[derive(Args)]
pub(crate) struct ExecArgs {
    /// Event name [default: push; see --detect-event].
    #[arg(value_name = "EVENT")]
    pub(crate) event_name: Option<String>,
    /// Event name (the Gitea runner's flag; the positional EVENT does the same).
    #[arg(
        short = 'E',
        long = "event",
        value_name = "EVENT",
        conflicts_with = "event_name"
    )]
    pub(crate) event: Option<String>,
    /// Take the event from the workflow's first trigger when none is given.
    #[arg(long)]
    pub(crate) detect_event: bool,
    /// Workflow file or directory [default: .gitea/workflows, else .github/workflows].
    #[arg(short = 'W', long = "workflows", value_name = "PATH")]
    pub(crate) workflows: Option<PathBuf>,
    /// Work in this directory (the repository) instead of the current one.
    #[arg(short = 'C', long = "directory", value_name = "DIR")]
    pub(crate) directory: Option<PathBuf>,
    /// Run only this job.
    #[arg(short = 'j', long = "job", value_name = "JOB")]
    pub(crate) job: Option<String>,
    #[command(flatten)]
    pub(crate) event_args: EventArgs,
    /// A secret (repeatable); `-s NAME` alone reads it from the environment.
    #[arg(short = 's', long = "secret", value_name = "K=V")]
    pub(crate) secrets: Vec<String>,
    /// A variable every step's process starts with (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    pub(crate) env: Vec<String>,
    /// A file of such variables [default: .env, when it exists].
    #[arg(long = "env-file", value_name = "FILE")]
    pub(crate) env_file: Option<PathBuf>,
    /// The image every job runs in; `-self-hosted` runs them on this machine.
    #[arg(short = 'i', long = "image", value_name = "IMAGE", default_value = DEFAULT_EXEC_IMAGE, allow_hyphen_values = true)]
    pub(crate) image: String,
    /// Print the plan and run nothing.
    #[arg(short = 'n', long = "dryrun")]
    pub(crate) dryrun: bool,
    /// List the jobs and run nothing.
    #[arg(short = 'l', long = "list")]
    pub(crate) list: bool,
    /// Run `actions/checkout` of this repository for real instead of using the working tree
    /// (host jobs then work on a copy of it, which checkout empties first).
    #[arg(long)]
    pub(crate) no_skip_checkout: bool,
    #[command(flatten)]
    pub(crate) container: ContainerArgs,
    /// The Docker engine (`unix:///path`, `tcp://host:port`); a unix socket is then mounted
    /// into job containers, as the Gitea runner does. `-`: the engine found, not mounted
    /// [default: the engine found, not mounted].
    #[arg(
        long = "container-daemon-socket",
        value_name = "URL",
        allow_hyphen_values = true
    )]
    pub(crate) daemon_socket: Option<String>,
    /// Where the artifact (and cache) server keeps its files.
    #[arg(long = "artifact-server-path", value_name = "DIR")]
    pub(crate) artifact_server_path: Option<PathBuf>,
    /// The address jobs reach the artifact server at.
    #[arg(long = "artifact-server-addr", value_name = "ADDR")]
    pub(crate) artifact_server_addr: Option<String>,
    /// The artifact server's port [default: a free one].
    #[arg(
        long = "artifact-server-port",
        value_name = "PORT",
        default_value_t = 0
    )]
    pub(crate) artifact_server_port: u16,
    /// Where `owner/repo@ref` actions come from [default: https://github.com].
    #[arg(long = "default-actions-url", value_name = "URL")]
    pub(crate) default_actions_url: Option<String>,
    /// The Gitea instance the run pretends to belong to (`github.server_url`).
    #[arg(long = "gitea-instance", value_name = "URL")]
    pub(crate) gitea_instance: Option<String>,
    /// Pull images even when they are present (`container.force_pull`).
    #[arg(short = 'p', long)]
    pub(crate) pull: bool,
    /// Rebuild Dockerfile actions even when their image exists (`container.force_rebuild`).
    #[arg(long)]
    pub(crate) rebuild: bool,
    /// Accepted for the Gitea runner's command lines: runnel never reads workflow files in
    /// subdirectories of `-W`.
    #[arg(long)]
    pub(crate) no_recurse: bool,
    /// Accepted as the Gitea runner's default (`true`: what `.gitignore` names is not copied
    /// into the job); `false` is refused.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub(crate) use_gitignore: Option<bool>,
    /// Not supported (runnel always masks secrets).
    #[arg(long, hide = true)]
    pub(crate) insecure_secrets: bool,
    /// Not supported (set `RUST_LOG=debug` for runnel's own log).
    #[arg(short = 'd', long, hide = true)]
    pub(crate) debug: bool,
    /// `RUNNER_TOOL_CACHE` per job (`none`) or one every job reuses (`shared`), as
    /// `runner.tool_cache_mode` [default: none].
    #[arg(long = "tool-cache-mode", value_name = "MODE")]
    pub(crate) tool_cache_mode: Option<String>,
    /// Not supported (runnel prints text).
    #[arg(long, hide = true)]
    pub(crate) json: bool,
}

/// `runnel vm …`.
#[derive(Args)]
pub(crate) struct VmArgs {
    #[command(subcommand)]
    pub(crate) command: VmCommand,
}

#[derive(Subcommand)]
pub(crate) enum VmCommand {
    /// The images `NAME:vm://IMAGE` labels boot: `build`, `ls`, `rm`.
    #[command(subcommand)]
    Image(VmImageCommand),
}

/// Where the images are: `--images`, else `RUNNEL_VM_IMAGES`, else the config's
/// `vm.images`, else `${RUNNEL_CACHE:-~/.cache/runnel}/vm`.
#[derive(Args)]
pub(crate) struct VmImagesDir {
    /// The images directory.
    #[arg(long, value_name = "DIR", global = true)]
    pub(crate) images: Option<PathBuf>,
    /// A config.yaml whose `vm.images` names the directory.
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(Subcommand)]
pub(crate) enum VmImageCommand {
    /// Build an image (kernel, initramfs, root disk) and name it; a recipe built before is
    /// only named again. Prints the image's directory. Needs root (debootstrap, chroot) and
    /// Debian's apt for the kernel package.
    Build {
        /// The name labels use (`vm://NAME`).
        name: String,
        /// The root file system: a directory holding a root tree, or a tarball of one.
        #[arg(long, value_name = "DIR|TAR", conflicts_with = "debootstrap")]
        from: Option<PathBuf>,
        /// The root file system: debootstrap's minbase of this Debian suite [default:
        /// bookworm].
        #[arg(long, value_name = "SUITE")]
        debootstrap: Option<String>,
        /// What else goes in (apt-get in a chroot): docker (its engine, which jobs then use),
        /// node, git; comma separated.
        #[arg(long, value_name = "LIST", value_delimiter = ',')]
        with: Vec<String>,
        #[command(flatten)]
        dir: VmImagesDir,
    },
    /// List the images: name, id, size, when built.
    Ls {
        #[command(flatten)]
        dir: VmImagesDir,
    },
    /// Remove an image's name, and its content when no other name has it (not while a VM of
    /// it runs).
    Rm {
        name: String,
        #[command(flatten)]
        dir: VmImagesDir,
    },
}
