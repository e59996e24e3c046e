//! The cache (and, for local runs, artifact) service of a runner, as jobs see it: starts
//! `runnel_cache`'s server per the `cache:` settings, registers each job's token for the job's
//! lifetime, and gives the job the variables that point `@actions/cache` (and
//! `@actions/artifact`) at it — [`runnel_engine::JobServices`].
//!
//! Addresses: host jobs reach the server on `127.0.0.1`; job containers on the gateway of their
//! Docker network, where a listener is added the first time a job runs on that network. With
//! `cache.host` set, the server listens on every interface and jobs are told `host:port` (the
//! peer's meaning: an address the user made reachable, say a published port).
//!
//! Two flavours of grant: [`LocalServices`] (`runnel run`: a token minted here, cache v1 and
//! v2 and artifacts v4 all served here) and [`TaskServices`] (the daemon: Gitea's runtime token,
//! which Gitea also accepts for artifacts, so `ACTIONS_RESULTS_URL`/`ACTIONS_RUNTIME_URL` stay
//! Gitea's and only `ACTIONS_CACHE_URL` is ours).
//!
//! Must not: run jobs or talk to Gitea; it only serves HTTP and hands out variables.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use runnel_cache::{
    CacheServer, CacheServerConfig, DiskStore, DiskStoreConfig, JobIdentity, MapTokenVerifier,
};
use runnel_engine::{JobServiceGrant, JobServiceRequest, JobServices};
use tokio::sync::Mutex;

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
    /// Don't start a server: jobs get this `ACTIONS_CACHE_URL` (ends in `/`).
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
        })
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
}

/// The running service; shared by every job of the runner.
pub struct CacheServices {
    server: Option<CacheServer>,
    tokens: Arc<MapTokenVerifier>,
    external: Option<String>,
    /// `cache.host` when set (the server then listens on every interface).
    advertised_host: Option<String>,
    port: u16,
    /// Addresses of the listeners added for Docker networks, by network name.
    gateways: Mutex<HashMap<String, SocketAddr>>,
    docker_host: Option<String>,
    /// Removed when the service is dropped.
    artifacts_dir: Option<PathBuf>,
}

impl Drop for CacheServices {
    fn drop(&mut self) {
        if let Some(dir) = &self.artifacts_dir
            && let Err(error) = std::fs::remove_dir_all(dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), %error, "removing the run's artifacts failed");
        }
    }
}

impl std::fmt::Debug for CacheServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheServices")
            .field(
                "local_addr",
                &self.server.as_ref().map(CacheServer::local_addr),
            )
            .field("external", &self.external)
            .finish_non_exhaustive()
    }
}

impl CacheServices {
    /// Opens the store and starts listening (nothing is started with `external_server`).
    pub async fn start(settings: &CacheSettings) -> Result<Arc<CacheServices>, CacheStartError> {
        let tokens = Arc::new(MapTokenVerifier::new());
        let external = Some(settings.external_server.trim())
            .filter(|url| !url.is_empty())
            .map(|url| format!("{}/", url.trim_end_matches('/')));
        let advertised_host = Some(settings.host.trim())
            .filter(|host| !host.is_empty())
            .map(str::to_owned);
        if let Some(host) = &advertised_host
            && (host.contains(['/', ' ', '@']) || host == "0.0.0.0")
        {
            return Err(CacheStartError::BadHost(host.clone()));
        }
        let artifacts_dir = (settings.serve_artifacts && external.is_none()).then(|| {
            settings
                .dir
                .join("artifacts")
                .join(std::process::id().to_string())
        });
        let server = if external.is_some() {
            None
        } else {
            let store = open_store(settings)
                .await
                .map_err(|source| CacheStartError::Store {
                    dir: settings.dir.clone(),
                    source,
                })?;
            let ip = match advertised_host {
                Some(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            };
            let mut config =
                CacheServerConfig::new(SocketAddr::new(ip, settings.port), store, tokens.clone());
            config.artifacts_dir = artifacts_dir.clone();
            Some(
                CacheServer::bind(config)
                    .await
                    .map_err(CacheStartError::Server)?,
            )
        };
        Ok(Arc::new(CacheServices {
            server,
            tokens,
            external,
            advertised_host,
            port: settings.port,
            gateways: Mutex::new(HashMap::new()),
            docker_host: settings.docker_host.clone(),
            artifacts_dir,
        }))
    }

    /// The address the server bound first (`None` with an external server).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(CacheServer::local_addr)
    }

    /// `http://host:port/` for a job: the external server, `cache.host`, loopback for host
    /// jobs, or a listener on the job network's gateway.
    async fn base_url(&self, job: &JobServiceRequest) -> Result<String, String> {
        if let Some(external) = &self.external {
            return Ok(external.clone());
        }
        let Some(server) = &self.server else {
            return Err("the cache server is not running".to_owned());
        };
        let port = server.local_addr().port();
        if let Some(host) = &self.advertised_host {
            return Ok(format!("http://{}/", host_port(host, port)));
        }
        let Some(network) = job.network.as_deref().filter(|_| job.in_container) else {
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
            .map_err(|error| format!("{error}: {}", error_chain(&error)))?;
        gateways.insert(network.to_owned(), addr);
        Ok(format!("http://{addr}/"))
    }

    fn register(&self, token: &str, job: &JobServiceRequest) {
        self.tokens.insert(
            token,
            JobIdentity {
                repository: job.repository.clone(),
                job: job.job_key.clone(),
                run: job.run_id.clone(),
            },
        );
    }
}

/// The S3 store when `cache.s3` is set (keys default to the AWS_* variables), else the disk one.
async fn open_store(
    settings: &CacheSettings,
) -> Result<Arc<dyn runnel_cache::Store>, runnel_cache::StoreError> {
    let Some(s3) = &settings.s3 else {
        let config = DiskStoreConfig::new(settings.dir.clone(), settings.size_limit);
        return Ok(Arc::new(DiskStore::open(config).await?));
    };
    let or_env = |value: &str, name: &str| {
        Some(value.to_owned())
            .filter(|v| !v.is_empty())
            .or_else(|| std::env::var(name).ok())
            .unwrap_or_default()
    };
    let config = runnel_cache::S3StoreConfig {
        endpoint: s3.endpoint.clone(),
        bucket: s3.bucket.clone(),
        region: Some(s3.region.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "us-east-1".to_owned()),
        prefix: s3.prefix.clone(),
        access_key: or_env(&s3.access_key, "AWS_ACCESS_KEY_ID"),
        secret_key: or_env(&s3.secret_key, "AWS_SECRET_ACCESS_KEY"),
        staging_dir: settings.dir.join("s3-staging"),
        max_entry_size: settings.size_limit,
    };
    Ok(Arc::new(runnel_cache::S3Store::open(config).await?))
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
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
async fn network_gateway(docker_host: Option<&str>, network: &str) -> Result<IpAddr, String> {
    let docker = match docker_host {
        Some(host) => bollard::Docker::connect_with_host(host),
        None => bollard::Docker::connect_with_defaults(),
    }
    .map_err(|error| format!("connecting to Docker to find network {network}: {error}"))?;
    let inspected = docker
        .inspect_network(network, None)
        .await
        .map_err(|error| format!("inspecting Docker network {network}: {error}"))?;
    inspected
        .ipam
        .and_then(|ipam| ipam.config)
        .unwrap_or_default()
        .iter()
        .filter_map(|config| config.gateway.as_deref())
        .filter_map(|gateway| gateway.parse::<IpAddr>().ok())
        .find(IpAddr::is_ipv4)
        .ok_or_else(|| format!("Docker network {network} has no IPv4 gateway"))
}

/// `runnel run`: a token minted per job; cache v1 and v2 and artifacts v4 served here.
#[derive(Debug)]
pub struct LocalServices {
    cache: Arc<CacheServices>,
}

impl LocalServices {
    pub fn new(cache: Arc<CacheServices>) -> LocalServices {
        LocalServices { cache }
    }
}

#[async_trait::async_trait]
impl JobServices for LocalServices {
    async fn start_job(&self, job: &JobServiceRequest) -> Result<JobServiceGrant, String> {
        let base = self.cache.base_url(job).await?;
        let token = runnel_cache::mint_runtime_token(&job.run_id, &job.job_key)
            .map_err(|error| format!("minting the job's runtime token: {error}"))?;
        self.cache.register(&token, job);
        let mut env = BTreeMap::new();
        env.insert("ACTIONS_CACHE_URL".to_owned(), base.clone());
        if self.cache.external.is_none() {
            // Our server also speaks cache v2 and artifacts v4, both at the origin.
            env.insert("ACTIONS_RESULTS_URL".to_owned(), base.clone());
            env.insert("ACTIONS_RUNTIME_URL".to_owned(), base);
            env.insert("ACTIONS_CACHE_SERVICE_V2".to_owned(), "true".to_owned());
        }
        env.insert("ACTIONS_RUNTIME_TOKEN".to_owned(), token.clone());
        Ok(JobServiceGrant {
            env,
            secrets: vec![token.clone()],
            lease: token,
        })
    }

    async fn release(&self, lease: &str) {
        self.cache.tokens.revoke(lease);
    }
}

/// The daemon: Gitea's runtime token for one task. Gitea serves artifacts (v3 under
/// `/api/actions_pipeline/`, v4 at its origin) with that token, so only the cache is ours; the
/// token is registered with our server for the task's lifetime.
#[derive(Debug)]
pub struct TaskServices {
    cache: Option<Arc<CacheServices>>,
    gitea_url: String,
    runtime_token: String,
}

impl TaskServices {
    /// `cache`: `None` when `cache.enabled` is false (jobs still get Gitea's artifact URLs).
    pub fn new(
        cache: Option<Arc<CacheServices>>,
        gitea_url: &str,
        runtime_token: &str,
    ) -> TaskServices {
        TaskServices {
            cache,
            gitea_url: gitea_url.trim_end_matches('/').to_owned(),
            runtime_token: runtime_token.to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl JobServices for TaskServices {
    async fn start_job(&self, job: &JobServiceRequest) -> Result<JobServiceGrant, String> {
        let mut env = BTreeMap::new();
        if !self.gitea_url.is_empty() {
            env.insert(
                "ACTIONS_RUNTIME_URL".to_owned(),
                format!("{}/api/actions_pipeline/", self.gitea_url),
            );
            env.insert("ACTIONS_RESULTS_URL".to_owned(), self.gitea_url.clone());
        }
        if !self.runtime_token.is_empty() {
            env.insert(
                "ACTIONS_RUNTIME_TOKEN".to_owned(),
                self.runtime_token.clone(),
            );
        }
        let mut lease = String::new();
        if let Some(cache) = &self.cache
            && !self.runtime_token.is_empty()
        {
            match cache.base_url(job).await {
                Ok(base) => {
                    env.insert("ACTIONS_CACHE_URL".to_owned(), base);
                    cache.register(&self.runtime_token, job);
                    lease = self.runtime_token.clone();
                }
                // Artifacts still work through Gitea; only the cache is missing.
                Err(message) => {
                    tracing::warn!(job = %job.job_key, message, "no cache for this job")
                }
            }
        }
        Ok(JobServiceGrant {
            env,
            secrets: [self.runtime_token.clone()]
                .into_iter()
                .filter(|token| !token.is_empty())
                .collect(),
            lease,
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

/// The daemon's service, started from `config.yaml`'s `cache:` (`None` when disabled or when
/// it cannot start, which is logged: jobs then run without a cache, as with the peer).
pub(crate) async fn start_for_daemon(config: &runnel_config::Config) -> Option<Arc<CacheServices>> {
    let settings = CacheSettings::from_config(config)?;
    match CacheServices::start(&settings).await {
        Ok(cache) => {
            tracing::info!(cache = ?cache, dir = %settings.dir.display(), "cache service ready");
            Some(cache)
        }
        Err(error) => {
            tracing::warn!(error = %error, cause = error_chain(&error), "the cache service did not start; jobs run without a cache");
            None
        }
    }
}

/// One task's services: Gitea's URLs and runtime token (`gitea_runtime_token`, else the task
/// token of older Gitea versions), plus our cache.
pub(crate) fn task_services(
    cache: Option<Arc<CacheServices>>,
    context: &crate::context::TaskContext,
) -> Arc<dyn JobServices> {
    let mut token = context.text("gitea_runtime_token");
    if token.is_empty() {
        token = context.text("token");
    }
    Arc::new(TaskServices::new(
        cache,
        &context.text("server_url"),
        &token,
    ))
}
