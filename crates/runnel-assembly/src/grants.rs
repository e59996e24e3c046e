//! The cache (and, for local runs, artifact) service of a runner, as jobs see it: starts
//! `runnel_cache`'s server per the `cache:` settings, mints each job's cache token, and gives
//! the job the variables that point `@actions/cache` (and `@actions/artifact`) at it —
//! [`runnel_engine::RunnerGrants`]. In daemon mode Gitea's artifact and runtime URLs take the
//! origin the job reaches Gitea at (`GrantRequest::server_origin`: a VM's forward to it).
//!
//! Tokens: every job gets a signed token ([`runnel_cache::JobTokens`]) for its repository and
//! its refs ([`ref_scope`]: it saves to `github.ref`, restores from there, then from a pull
//! request's base branch and the default branch), valid for its timeout plus [`TOKEN_MARGIN`],
//! revoked at its end in this process. The key is
//! `cache.shared_secret` when set — so a `runnel cache-server` holding the same secret (what
//! `cache.external_server` names) checks it without ever hearing from this runner — else
//! random per process. The token is the last segment of `ACTIONS_CACHE_URL`: in daemon mode
//! `ACTIONS_RUNTIME_TOKEN` must stay Gitea's (artifacts go to Gitea), and the v1 client keeps
//! that path. An external server without a secret gets the URL alone (act_runner's meaning);
//! that server then has to run without authentication, which the runner warns about.
//!
//! Addresses: host jobs reach the built-in server on `127.0.0.1`; job containers on the
//! gateway of their Docker network, where a listener is added the first time a job runs on
//! that network; VM jobs at the address their environment maps onto this machine's loopback
//! (`GrantRequest::host_loopback`: the restricted VM network's forward, or QEMU's gateway),
//! also when `cache.host` is set (a restricted guest reaches nothing else). With `cache.host`
//! set, the server listens on every interface and other jobs are told `host:port` (the peer's
//! meaning: an address the user made reachable). Without it, pods reach the server at their
//! node's address when the node is this machine (`GrantRequest::host_route`: a listener is
//! added there), and get no address at all, but a warning in the job's log, when it is another
//! machine.
//!
//! Two flavours of grant: [`LocalGrants`] (`runnel run`: the token is also the job's
//! `ACTIONS_RUNTIME_TOKEN`; cache v1 and v2 and artifacts v4 are served here, or cache v1 by
//! the external server) and [`TaskGrants`] (the daemon: Gitea's runtime token, which Gitea
//! accepts for artifacts, so `ACTIONS_RESULTS_URL`/`ACTIONS_RUNTIME_URL` stay Gitea's and
//! only `ACTIONS_CACHE_URL` is ours). [`start_standalone`] is `runnel cache-server`.
//!
//! Must not: run jobs or talk to Gitea; it only serves HTTP and hands out variables.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use runnel_cache::{
    CacheServer, CacheServerConfig, DiskStore, DiskStoreConfig, JobTokens, NoAuth, PruneRules,
    RefScope, TokenRequest, TokenVerifier,
};
use runnel_engine::backend::HostRoute;
use runnel_engine::{GrantError, GrantRequest, JobGrant, RunnerGrants};
use tokio::sync::Mutex;

/// How much longer than the job's timeout its cache token lives: post steps (where
/// `actions/cache` saves) and teardown run after the steps' deadline. The timeout itself is
/// capped by the runner's (`GrantRequest::timeout`), so a leaked token of an external
/// cache server, which cannot learn that the job ended, lives at most that plus this.
pub const TOKEN_MARGIN: Duration = Duration::from_secs(15 * 60);

/// A shared secret shorter than this is refused: it keys every token of the fleet.
pub const MIN_SECRET_LEN: usize = 16;

/// Where and how the cache service runs: act_runner's `cache:` keys plus the store's limit.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Where entries (and local artifacts) are kept.
    pub dir: PathBuf,
    /// The address advertised to jobs; empty: `127.0.0.1` for host jobs and the Docker
    /// network's gateway for container jobs.
    pub host: String,
    /// 0: a free port.
    pub port: u16,
    /// A fleet's cache server instead of the built-in cache: jobs get this URL as
    /// `ACTIONS_CACHE_URL`, followed by their token when `shared_secret` is set.
    pub external_server: String,
    /// The disk store's size limit in bytes (least recently used entries go first).
    pub size_limit: u64,
    /// The Docker engine to ask for network gateways (`None`: `DOCKER_HOST` or the socket).
    pub docker_host: Option<String>,
    /// runnel addition: keep entries in this S3-compatible bucket (`dir` then only stages
    /// uploads in progress); `size_limit` caps one entry.
    pub s3: Option<runnel_config::S3Section>,
    /// Also serve artifacts v4 (local runs; Gitea serves them in daemon mode). They are kept
    /// under `dir/artifacts/<pid>` while the service lives and removed with it.
    pub serve_artifacts: bool,
    /// runnel addition: the key of the job tokens, shared with an external `runnel
    /// cache-server`.
    pub shared_secret: SharedSecret,
    /// What the server's sweep removes (`cache.retention`, `cache.repo_size_limit`).
    pub eviction: PruneRules,
    /// How often it sweeps (`cache.sweep_interval`).
    pub sweep_interval: Duration,
}

/// `cache.shared_secret` or `cache.shared_secret_file` (or `--secret-file`). Its `Debug`
/// never shows the value.
#[derive(Clone, Default)]
pub enum SharedSecret {
    /// None configured.
    #[default]
    None,
    /// The secret itself.
    Value(String),
    /// A file holding it (trailing white space dropped).
    File(PathBuf),
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SharedSecret::None => f.write_str("None"),
            SharedSecret::Value(_) => f.write_str("Value(<redacted>)"),
            SharedSecret::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl SharedSecret {
    /// What the `cache:` section says.
    pub fn from_config(cache: &runnel_config::CacheSection) -> SharedSecret {
        match (&cache.shared_secret_file, cache.shared_secret.as_str()) {
            (Some(file), _) => SharedSecret::File(file.clone()),
            (None, "") => SharedSecret::None,
            (None, value) => SharedSecret::Value(value.to_owned()),
        }
    }

    /// The secret's bytes; `None` when none is configured.
    pub fn load(&self) -> Result<Option<Vec<u8>>, CacheStartError> {
        let text = match self {
            SharedSecret::None => return Ok(None),
            SharedSecret::Value(value) => value.clone(),
            SharedSecret::File(path) => {
                std::fs::read_to_string(path).map_err(|source| CacheStartError::SecretFile {
                    path: path.clone(),
                    source,
                })?
            }
        };
        let secret = text.trim_end();
        if secret.len() < MIN_SECRET_LEN {
            return Err(CacheStartError::SecretTooShort {
                len: secret.len(),
                min: MIN_SECRET_LEN,
            });
        }
        Ok(Some(secret.as_bytes().to_vec()))
    }
}

impl CacheSettings {
    /// The settings `config.yaml`'s `cache:` section gives (`None` when `enabled: false`).
    pub fn from_config(config: &runnel_config::Config) -> Option<CacheSettings> {
        let cache = &config.cache;
        if !cache.enabled {
            return None;
        }
        let dir = config_dir(config);
        let docker_host = match config.container.docker_host.as_str() {
            "" | "-" => None,
            host => Some(host.to_owned()),
        };
        Some(CacheSettings {
            dir,
            host: cache.host.clone(),
            port: cache.port,
            external_server: cache.external_server.clone(),
            size_limit: cache.size_limit.unwrap_or(DEFAULT_SIZE_LIMIT),
            docker_host,
            serve_artifacts: false,
            s3: cache.s3.clone(),
            shared_secret: SharedSecret::from_config(cache),
            eviction: eviction(cache),
            sweep_interval: cache.sweep_interval,
        })
    }
}

/// The sweep's rules from `cache:`: `retention` (zero: no age limit) and `repo_size_limit`;
/// the whole-cache `size_limit` is the store's own, applied as entries are saved.
pub fn eviction(cache: &runnel_config::CacheSection) -> PruneRules {
    PruneRules {
        older_than: (!cache.retention.is_zero()).then_some(cache.retention),
        max_repo_size: cache.repo_size_limit,
        max_size: None,
    }
}

/// The cache directory of `config.yaml`: `cache.dir`, else `$HOME/.cache/actcache` (the
/// peer's default, so a switched runner keeps its cache).
pub fn config_dir(config: &runnel_config::Config) -> PathBuf {
    config.cache.dir.clone().unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(".cache")
            .join("actcache")
    })
}

/// 10 GiB per store, GitHub's per-repository cache quota.
pub const DEFAULT_SIZE_LIMIT: u64 = 10 << 30;

/// Why the cache service could not start.
#[derive(Debug, thiserror::Error)]
pub enum CacheStartError {
    #[error("opening the cache store in {dir}")]
    Store {
        dir: PathBuf,
        #[source]
        source: runnel_cache::StoreError,
    },
    #[error("starting the cache server")]
    Server(#[source] runnel_cache::ServerError),
    #[error("cache.host `{0}` is not an IP address or host name")]
    BadHost(String),
    #[error("reading the cache's shared secret from {path}")]
    SecretFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the cache's shared secret has {len} characters; it needs at least {min}")]
    SecretTooShort { len: usize, min: usize },
    #[error(
        "the cache server needs a shared secret (cache.shared_secret, cache.shared_secret_file \
         or --secret-file) to check job tokens, or --no-auth"
    )]
    NoSecret,
    #[error("--no-auth and a shared secret exclude each other")]
    NoAuthWithSecret,
    #[error("drawing the cache token key")]
    TokenKey(#[source] runnel_cache::MintError),
}

/// The running service; shared by every job of the runner.
pub struct CacheService {
    /// The built-in server (`None` with an external one, unless it serves a local run's
    /// artifacts).
    server: Option<CacheServer>,
    /// Mints (and checks, in the built-in server) every job's token.
    tokens: Arc<JobTokens>,
    external: Option<ExternalServer>,
    /// `cache.host` when set (the server then listens on every interface).
    advertised_host: Option<String>,
    port: u16,
    /// Addresses of the listeners added for Docker networks, by network name.
    gateways: Mutex<HashMap<String, SocketAddr>>,
    /// Listeners added on this machine's interfaces for jobs that reach it there
    /// ([`HostRoute::Interface`]: pods on this machine's node), by address.
    interfaces: Mutex<HashMap<IpAddr, SocketAddr>>,
    docker_host: Option<String>,
    /// Removed when the service is dropped.
    artifacts_dir: Option<PathBuf>,
}

/// `cache.external_server`, ending in `/`.
#[derive(Debug)]
struct ExternalServer {
    url: String,
    /// It shares our secret, so it checks the token we put in the URL; else the URL alone.
    checks_tokens: bool,
}

impl Drop for CacheService {
    fn drop(&mut self) {
        if let Some(dir) = &self.artifacts_dir
            && let Err(error) = std::fs::remove_dir_all(dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), %error, "removing the run's artifacts failed");
        }
    }
}

impl std::fmt::Debug for CacheService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheService")
            .field(
                "local_addr",
                &self.server.as_ref().map(CacheServer::local_addr),
            )
            .field("external", &self.external)
            .finish_non_exhaustive()
    }
}

impl CacheService {
    /// Opens the store and starts listening (with `external_server`, only when the run's
    /// artifacts need a server).
    pub async fn start(settings: &CacheSettings) -> Result<Arc<CacheService>, CacheStartError> {
        let secret = settings.shared_secret.load()?;
        let tokens = Arc::new(match &secret {
            Some(secret) => JobTokens::from_secret(secret),
            None => JobTokens::random().map_err(CacheStartError::TokenKey)?,
        });
        let external = Some(settings.external_server.trim())
            .filter(|url| !url.is_empty())
            .map(|url| ExternalServer {
                url: format!("{}/", url.trim_end_matches('/')),
                checks_tokens: secret.is_some(),
            });
        if let Some(external) = &external
            && !external.checks_tokens
        {
            tracing::warn!(
                url = %external.url,
                "cache.external_server is set without cache.shared_secret: jobs get the URL \
                 alone, so that server must run without authentication (runnel cache-server \
                 --no-auth), where any job can read and overwrite the entries of every repository"
            );
        }
        let advertised_host = Some(settings.host.trim())
            .filter(|host| !host.is_empty())
            .map(str::to_owned);
        if let Some(host) = &advertised_host
            && (host.contains(['/', ' ', '@']) || host == "0.0.0.0")
        {
            return Err(CacheStartError::BadHost(host.clone()));
        }
        let artifacts_dir = settings.serve_artifacts.then(|| {
            settings
                .dir
                .join("artifacts")
                .join(std::process::id().to_string())
        });
        let server = if external.is_some() && artifacts_dir.is_none() {
            None
        } else {
            let store = open_store(settings).await?;
            let ip = match advertised_host {
                Some(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            };
            let verifier: Arc<dyn TokenVerifier> = tokens.clone();
            let mut config =
                CacheServerConfig::new(SocketAddr::new(ip, settings.port), store, verifier);
            config.artifacts_dir = artifacts_dir.clone();
            config.eviction = settings.eviction;
            config.eviction_interval = settings.sweep_interval;
            Some(
                CacheServer::bind(config)
                    .await
                    .map_err(CacheStartError::Server)?,
            )
        };
        Ok(Arc::new(CacheService {
            server,
            tokens,
            external,
            advertised_host,
            port: settings.port,
            gateways: Mutex::new(HashMap::new()),
            interfaces: Mutex::new(HashMap::new()),
            docker_host: settings.docker_host.clone(),
            artifacts_dir,
        }))
    }

    /// The address the built-in server bound first (`None` when there is none).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(CacheServer::local_addr)
    }

    /// `http://host:port/` of the built-in server for a job: `cache.host`, loopback for host
    /// jobs, or a listener on the job network's gateway.
    async fn local_origin(&self, job: &GrantRequest) -> Result<String, CacheGrantError> {
        let Some(server) = &self.server else {
            return Err(CacheGrantError::NoServer);
        };
        let port = server.local_addr().port();
        // A VM reaches this machine's loopback (where the server listens also with
        // `cache.host`) at the address its network maps there, and on the restricted VM
        // network nothing else.
        if let Some(loopback) = &job.host_loopback {
            return Ok(format!("http://{}/", host_port(loopback, port)));
        }
        if let Some(host) = &self.advertised_host {
            return Ok(format!("http://{}/", host_port(host, port)));
        }
        // A pod reaches this machine at its node's address, or not at all.
        match &job.host_route {
            Some(HostRoute::Interface(ip)) => {
                let mut interfaces = self.interfaces.lock().await;
                if let Some(addr) = interfaces.get(ip) {
                    return Ok(format!("http://{addr}/"));
                }
                let addr = server
                    .listen_also(SocketAddr::new(*ip, self.port))
                    .await
                    .map_err(CacheGrantError::Listen)?;
                interfaces.insert(*ip, addr);
                return Ok(format!("http://{addr}/"));
            }
            Some(HostRoute::Unreachable(why)) => {
                return Err(CacheGrantError::Unreachable { why: why.clone() });
            }
            None => {}
        }
        // Host jobs, and containers on Docker's `host` network (`container.network: host`),
        // share this machine's loopback.
        let Some(network) = job
            .network
            .as_deref()
            .filter(|network| job.in_container && *network != "host")
        else {
            return Ok(format!("http://127.0.0.1:{port}/"));
        };
        let mut gateways = self.gateways.lock().await;
        if let Some(addr) = gateways.get(network) {
            return Ok(format!("http://{addr}/"));
        }
        let gateway = network_gateway(self.docker_host.as_deref(), network).await?;
        let addr = server
            .listen_also(SocketAddr::new(gateway, self.port))
            .await
            .map_err(CacheGrantError::Listen)?;
        gateways.insert(network.to_owned(), addr);
        Ok(format!("http://{addr}/"))
    }

    /// The job's token, valid for its timeout plus [`TOKEN_MARGIN`], scoped to its refs.
    fn mint(&self, job: &GrantRequest) -> Result<String, CacheGrantError> {
        let refs = ref_scope(job);
        let request = TokenRequest {
            repository: &job.repository,
            job: &job.job_key,
            run: &job.run_id,
            refs: &refs,
            lifetime: job.timeout.saturating_add(TOKEN_MARGIN),
        };
        self.tokens.mint(&request).map_err(CacheGrantError::Mint)
    }

    /// A daemon job's `ACTIONS_CACHE_URL` and the token in it; no token when the external
    /// server gets the URL alone.
    async fn task_grant(
        &self,
        job: &GrantRequest,
    ) -> Result<(String, Option<String>), CacheGrantError> {
        if let Some(external) = self.external.as_ref().filter(|e| !e.checks_tokens) {
            return Ok((external.url.clone(), None));
        }
        let token = self.mint(job)?;
        Ok((self.cache_url(job, &token).await?, Some(token)))
    }

    /// `ACTIONS_CACHE_URL`: the server's base with the token as its last path segment (the
    /// external server's URL alone when it does not check tokens).
    async fn cache_url(&self, job: &GrantRequest, token: &str) -> Result<String, CacheGrantError> {
        match &self.external {
            Some(external) if external.checks_tokens => Ok(format!("{}{token}/", external.url)),
            Some(external) => Ok(external.url.clone()),
            None => Ok(format!("{}{token}/", self.local_origin(job).await?)),
        }
    }
}

/// The default branch when the event does not name one (`runnel run` without an event file):
/// Gitea's and GitHub's default for new repositories.
pub const FALLBACK_DEFAULT_BRANCH: &str = "main";

/// GitHub's cache isolation for `job`: it saves to `github.ref`; it restores from there, then
/// from a pull request's base branch, then from the repository's default branch.
pub fn ref_scope(job: &GrantRequest) -> RefScope {
    // `base_ref` and `default_branch` are branch names; `ref` is a full ref.
    let branch = |name: &str| match name {
        name if name.starts_with("refs/") => name.to_owned(),
        name => format!("refs/heads/{name}"),
    };
    let default_branch = match job.default_branch.trim() {
        "" => FALLBACK_DEFAULT_BRANCH,
        name => name,
    };
    let mut fallback = Vec::new();
    for name in [job.base_ref.trim(), default_branch] {
        let full = branch(name);
        if !name.is_empty() && full != job.git_ref && !fallback.contains(&full) {
            fallback.push(full);
        }
    }
    RefScope {
        own: job.git_ref.clone(),
        fallback,
    }
}

/// `runnel cache-server`: the built-in server alone, on `listen`, for runners elsewhere that
/// share its secret (or, with `no_auth`, for any client). No artifacts.
pub async fn start_standalone(
    settings: &CacheSettings,
    listen: SocketAddr,
    no_auth: bool,
) -> Result<CacheServer, CacheStartError> {
    let verifier: Arc<dyn TokenVerifier> = match (settings.shared_secret.load()?, no_auth) {
        (Some(_), true) => return Err(CacheStartError::NoAuthWithSecret),
        (None, false) => return Err(CacheStartError::NoSecret),
        (Some(secret), false) => Arc::new(JobTokens::from_secret(&secret)),
        (None, true) => Arc::new(NoAuth),
    };
    let store = open_store(settings).await?;
    let mut config = CacheServerConfig::new(listen, store, verifier);
    config.eviction = settings.eviction;
    config.eviction_interval = settings.sweep_interval;
    CacheServer::bind(config)
        .await
        .map_err(CacheStartError::Server)
}

/// The S3 store when `cache.s3` is set, else the disk one.
async fn open_store(
    settings: &CacheSettings,
) -> Result<Arc<dyn runnel_cache::Store>, CacheStartError> {
    let store_error = |source| CacheStartError::Store {
        dir: settings.dir.clone(),
        source,
    };
    let Some(s3) = &settings.s3 else {
        let config = DiskStoreConfig::new(settings.dir.clone(), settings.size_limit);
        return Ok(Arc::new(
            DiskStore::open(config).await.map_err(store_error)?,
        ));
    };
    let config = s3_store_config(s3, settings.dir.join("s3-staging"), settings.size_limit);
    let store = runnel_cache::S3Store::open(config).await;
    Ok(Arc::new(store.map_err(store_error)?))
}

/// The S3 store's settings from `cache.s3`; empty keys default to `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY`, an empty region to `us-east-1`.
pub fn s3_store_config(
    s3: &runnel_config::S3Section,
    staging_dir: PathBuf,
    max_entry_size: u64,
) -> runnel_cache::S3StoreConfig {
    let or_env = |value: &str, name: &str| {
        Some(value.to_owned())
            .filter(|v| !v.is_empty())
            .or_else(|| std::env::var(name).ok())
            .unwrap_or_default()
    };
    runnel_cache::S3StoreConfig {
        endpoint: s3.endpoint.clone(),
        bucket: s3.bucket.clone(),
        region: Some(s3.region.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".to_owned()),
        prefix: s3.prefix.clone(),
        access_key: or_env(&s3.access_key, "AWS_ACCESS_KEY_ID"),
        secret_key: or_env(&s3.secret_key, "AWS_SECRET_ACCESS_KEY"),
        staging_dir,
        max_entry_size,
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The IPv4 gateway of a Docker network: the host's address on that bridge.
async fn network_gateway(
    docker_host: Option<&str>,
    network: &str,
) -> Result<IpAddr, CacheGrantError> {
    let docker = match docker_host {
        Some(host) => bollard::Docker::connect_with_host(host),
        None => bollard::Docker::connect_with_defaults(),
    }
    .map_err(|source| CacheGrantError::Docker {
        doing: "connecting to Docker to find network",
        network: network.to_owned(),
        source,
    })?;
    let inspected = docker
        .inspect_network(network, None)
        .await
        .map_err(|source| CacheGrantError::Docker {
            doing: "inspecting Docker network",
            network: network.to_owned(),
            source,
        })?;
    gateway::gateway_of(&inspected).ok_or_else(|| CacheGrantError::NoGateway {
        network: network.to_owned(),
    })
}

/// Why a job gets no cache or artifact address from this runner.
#[derive(Debug, thiserror::Error)]
pub enum CacheGrantError {
    #[error("the cache server is not running")]
    NoServer,
    #[error("minting the job's cache token")]
    Mint(#[source] runnel_cache::MintError),
    #[error("{doing} {network}")]
    Docker {
        doing: &'static str,
        network: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("Docker network {network} has no IPv4 gateway")]
    NoGateway { network: String },
    #[error("listening for the job's network")]
    Listen(#[source] runnel_cache::ServerError),
    #[error(
        "the cache and artifact server is not reachable from this job ({why}): set cache.host \
         to an address of this runner the job reaches (for a runner inside a cluster: its pod \
         IP or a Service name)"
    )]
    Unreachable { why: String },
}

/// `runnel run`: a token minted per job, which is also its `ACTIONS_RUNTIME_TOKEN`; cache v1
/// and v2 and artifacts v4 served here, or cache v1 by the external server (v2 would need
/// `ACTIONS_RESULTS_URL`, whose origin serves the run's artifacts here).
#[derive(Debug)]
pub struct LocalGrants {
    cache: Arc<CacheService>,
}

impl LocalGrants {
    pub fn new(cache: Arc<CacheService>) -> LocalGrants {
        LocalGrants { cache }
    }
}

#[async_trait::async_trait]
impl RunnerGrants for LocalGrants {
    async fn start_job(&self, job: &GrantRequest) -> Result<JobGrant, GrantError> {
        let token = self.cache.mint(job)?;
        let mut env = BTreeMap::new();
        env.insert(
            "ACTIONS_CACHE_URL".to_owned(),
            self.cache.cache_url(job, &token).await?,
        );
        if self.cache.server.is_some() {
            // Artifacts v4 (and cache v2 when the cache is ours) at the origin.
            let origin = self.cache.local_origin(job).await?;
            env.insert("ACTIONS_RESULTS_URL".to_owned(), origin.clone());
            env.insert("ACTIONS_RUNTIME_URL".to_owned(), origin);
            if self.cache.external.is_none() {
                env.insert("ACTIONS_CACHE_SERVICE_V2".to_owned(), "true".to_owned());
            }
        }
        env.insert("ACTIONS_RUNTIME_TOKEN".to_owned(), token.clone());
        Ok(JobGrant {
            env,
            secrets: vec![token.clone()],
            lease: token,
            warnings: Vec::new(),
        })
    }

    async fn release(&self, lease: &str) {
        self.cache.tokens.revoke(lease);
    }
}

/// The daemon: Gitea's runtime token for one task. Gitea serves artifacts (v3 under
/// `/api/actions_pipeline/`, v4 at its origin) with that token, so only the cache is ours; its
/// token rides in `ACTIONS_CACHE_URL`.
#[derive(Debug)]
pub struct TaskGrants {
    cache: Option<Arc<CacheService>>,
    gitea_url: String,
    runtime_token: String,
    /// Gitea's OIDC token URL (`ACTIONS_ID_TOKEN_REQUEST_URL`); empty: none offered.
    id_token_url: String,
}

impl TaskGrants {
    /// `cache`: `None` when `cache.enabled` is false (jobs still get Gitea's artifact URLs).
    pub fn new(
        cache: Option<Arc<CacheService>>,
        gitea_url: &str,
        runtime_token: &str,
    ) -> TaskGrants {
        TaskGrants {
            cache,
            gitea_url: gitea_url.trim_end_matches('/').to_owned(),
            runtime_token: runtime_token.to_owned(),
            id_token_url: String::new(),
        }
    }

    /// Also hands out Gitea's OIDC token URL (`permissions: id-token: write`), at the origin
    /// the job reaches Gitea at; empty: none.
    pub fn with_id_token_url(mut self, url: &str) -> TaskGrants {
        self.id_token_url = url.to_owned();
        self
    }
}

#[async_trait::async_trait]
impl RunnerGrants for TaskGrants {
    async fn start_job(&self, job: &GrantRequest) -> Result<JobGrant, GrantError> {
        let mut env = BTreeMap::new();
        let mut secrets = Vec::new();
        if !self.gitea_url.is_empty() {
            // Gitea as the job reaches it (a VM's forward to it), else at its own URL.
            let gitea_url = match &job.server_origin {
                Some(origin) => runnel_engine::replace_origin(&self.gitea_url, origin),
                None => self.gitea_url.clone(),
            };
            env.insert(
                "ACTIONS_RUNTIME_URL".to_owned(),
                format!("{gitea_url}/api/actions_pipeline/"),
            );
            env.insert("ACTIONS_RESULTS_URL".to_owned(), gitea_url);
        }
        if !self.id_token_url.is_empty() {
            let url = match &job.server_origin {
                Some(origin) => runnel_engine::replace_origin(&self.id_token_url, origin),
                None => self.id_token_url.clone(),
            };
            env.insert("ACTIONS_ID_TOKEN_REQUEST_URL".to_owned(), url);
        }
        if !self.runtime_token.is_empty() {
            env.insert(
                "ACTIONS_RUNTIME_TOKEN".to_owned(),
                self.runtime_token.clone(),
            );
            secrets.push(self.runtime_token.clone());
        }
        let mut lease = String::new();
        let mut warnings = Vec::new();
        if let Some(cache) = &self.cache {
            match cache.task_grant(job).await {
                Ok((url, token)) => {
                    env.insert("ACTIONS_CACHE_URL".to_owned(), url);
                    if let Some(token) = token {
                        // `@actions/cache` refuses to run without any runtime token.
                        env.entry("ACTIONS_RUNTIME_TOKEN".to_owned())
                            .or_insert_with(|| token.clone());
                        secrets.push(token.clone());
                        lease = token;
                    }
                }
                // Artifacts still work through Gitea; only the cache is missing.
                Err(error) => {
                    tracing::warn!(
                        job = %job.job_key,
                        error = %error,
                        cause = error_chain(&error),
                        "no cache for this job"
                    );
                    let cause = error_chain(&error);
                    warnings.push(match cause.as_str() {
                        "" => format!("no cache for this job: {error}"),
                        cause => format!("no cache for this job: {error}: {cause}"),
                    });
                }
            }
        }
        Ok(JobGrant {
            env,
            secrets,
            lease,
            warnings,
        })
    }

    async fn release(&self, lease: &str) {
        if let Some(cache) = &self.cache
            && !lease.is_empty()
        {
            cache.tokens.revoke(lease);
        }
    }
}

mod gateway;
#[cfg(test)]
mod tests;
