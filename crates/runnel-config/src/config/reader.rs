//! Reading a parsed `config.yaml` key by key into [`Config`]: each section's keys, their
//! types (strings, booleans as the Gitea runner takes them, Go durations, sizes, ports), and
//! every problem with its position — errors for wrong values, warnings for unknown or
//! deprecated keys.
//!
//! Must not: read files (the caller parses the text).

use super::*;

mod kubernetes;
mod peer;
mod vm;

pub(super) struct Reader<'a> {
    file: &'a str,
    pub(super) config: Config,
    pub(super) errors: Vec<Problem>,
    pub(super) warnings: Vec<Problem>,
    /// The deprecated `container.network_mode`, applied once every key is read.
    network_mode: Option<(String, Span)>,
    /// Where `runner.tool_cache_mode` was written, for the warning that needs `capacity`.
    tool_cache_at: Option<Span>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(file: &'a str) -> Reader<'a> {
        Reader {
            file,
            config: Config::default(),
            errors: Vec::new(),
            warnings: Vec::new(),
            network_mode: None,
            tool_cache_at: None,
        }
    }

    fn problem(&self, at: Span, message: String) -> Problem {
        Problem {
            file: self.file.to_owned(),
            line: at.line,
            col: at.col,
            message,
        }
    }

    pub(super) fn error(&mut self, at: Span, message: String) {
        let problem = self.problem(at, message);
        self.errors.push(problem);
    }

    fn warn(&mut self, at: Span, message: String) {
        let problem = self.problem(at, message);
        self.warnings.push(problem);
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

    pub(super) fn root(&mut self, root: &Node) {
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
                "kubernetes" => self.section(&key, value, Reader::kubernetes_key),
                "vm" => self.section(&key, value, Reader::vm_key),
                "metrics" => self.section(&key, value, Reader::metrics_key),
                "health_check" => self.section(&key, value, Reader::health_check_key),
                _ => self.unknown(&key, at),
            }
        }
        self.apply_network_mode();
        if let Some(at) = self.tool_cache_at
            && self.config.runner.tool_cache_mode == ToolCacheMode::Shared
            && self.config.runner.capacity > 1
        {
            let capacity = self.config.runner.capacity;
            self.warn(
                at,
                format!(
                    "runner.tool_cache_mode: shared with capacity {capacity}: two jobs writing \
                     the same tool version at once corrupt it (use it with capacity 1)"
                ),
            );
        }
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
            if !read(self, &path, value) && !self.peer_key(&path, value) {
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
            "log.job" => {
                for (key, value, at) in self.entries(path, v).unwrap_or_default() {
                    let inner = format!("{path}.{key}");
                    match key.as_str() {
                        "dir" => set(self.string(&inner, value), |s| {
                            let dir = s.trim();
                            self.config.log.job.dir = (!dir.is_empty()).then(|| PathBuf::from(dir));
                        }),
                        "retention" => set(self.duration(&inner, value), |d| {
                            // Unset keeps the default; a written 0 keeps every copy.
                            if !value.is_null() {
                                self.config.log.job.retention = d;
                            }
                        }),
                        "max_size" => set(self.string(&inner, value), |s| {
                            if value.is_null() {
                                return;
                            }
                            match crate::parse_size(&s) {
                                Ok(bytes) => self.config.log.job.max_size = bytes,
                                Err(message) => {
                                    self.error(value.span, format!("{inner}: {message}"))
                                }
                            }
                        }),
                        _ => self.unknown(&inner, at),
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
            // A zero timeout or interval means the default, as in the Gitea runner (not "fail
            // at once" or "poll without pause").
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
                if !d.is_zero() {
                    self.config.runner.fetch_interval = d;
                }
            }),
            "fetch_interval_max" => set(self.duration(path, v), |d| {
                if !d.is_zero() {
                    self.config.runner.fetch_interval_max = d;
                }
            }),
            "state_report_interval" => set(self.duration(path, v), |d| {
                if !d.is_zero() {
                    self.config.runner.state_report_interval = d;
                }
            }),
            "report_close_timeout" => set(self.duration(path, v), |d| {
                if !d.is_zero() {
                    self.config.runner.report_close_timeout = d;
                }
            }),
            "github_mirror" => set(self.string(path, v), |s| {
                self.config.runner.github_mirror = s
            }),
            "labels" => set(self.strings(path, v), |l| self.config.runner.labels = l),
            "default_image" => set(self.string(path, v), |s| {
                self.config.runner.default_image = s
            }),
            "patch_actions" => set(self.boolean(path, v), |b| {
                // Unset (null) is the Gitea runner's default: patch.
                self.config.runner.patch_actions = b || v.is_null();
            }),
            // Unset (or null): the Gitea runner's default, true.
            "set_act_env" => {
                if !v.is_null() {
                    set(self.boolean(path, v), |b| {
                        self.config.runner.set_act_env = b
                    });
                }
            }
            "tool_cache_mode" => {
                self.tool_cache_at = Some(v.span);
                if !v.is_null() {
                    match self.string(path, v).as_deref() {
                        None => {}
                        Some("" | "none") => {
                            self.config.runner.tool_cache_mode = ToolCacheMode::None
                        }
                        Some("shared") => {
                            self.config.runner.tool_cache_mode = ToolCacheMode::Shared
                        }
                        Some(other) => self.error(
                            v.span,
                            format!("{path}: `{other}` is not one of `none`, `shared`"),
                        ),
                    }
                }
            }
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
        const SECRET_TWICE: &str = "cache: set `shared_secret` or `shared_secret_file`, not \
             both (the Gitea runner's `external_secret` and `external_secret_file` are read as \
             the same keys)";
        const EXTERNAL_SECRET: &str = "{key} is read as runnel's cache.shared_secret(_file): \
             runnel runners and `runnel cache-server` sharing it check each other's job tokens. \
             A Gitea runner's cache-server cannot: it learns each job's runtime token from the \
             runner (POST /_internal/register) where runnel signs a token with the secret, so \
             runnel runners and Gitea runners cannot share one cache server";
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
            "cache.shared_secret" | "cache.external_secret" => {
                if let Some(secret) = self.string(path, v) {
                    if !secret.is_empty()
                        && (self.config.cache.shared_secret_file.is_some()
                            || !self.config.cache.shared_secret.is_empty())
                    {
                        self.error(v.span, SECRET_TWICE.to_owned());
                    }
                    if path == "cache.external_secret" && !secret.is_empty() {
                        self.warn(v.span, EXTERNAL_SECRET.replace("{key}", path));
                    }
                    if !secret.is_empty() {
                        self.config.cache.shared_secret = secret;
                    }
                }
            }
            "cache.shared_secret_file" | "cache.external_secret_file" => {
                if let Some(file) = self.string(path, v) {
                    if !file.is_empty()
                        && (!self.config.cache.shared_secret.is_empty()
                            || self.config.cache.shared_secret_file.is_some())
                    {
                        self.error(v.span, SECRET_TWICE.to_owned());
                    }
                    if path == "cache.external_secret_file" && !file.is_empty() {
                        self.warn(v.span, EXTERNAL_SECRET.replace("{key}", path));
                    }
                    if !file.is_empty() {
                        self.config.cache.shared_secret_file = Some(PathBuf::from(file));
                    }
                }
            }
            "cache.size_limit" => set(self.string(path, v), |s| {
                // The Gitea runner's 0 is "no cap on the whole cache" (its repo_size_limit
                // and free-space floor bound it); runnel has neither, so its default cap
                // stays (docs/migrating.md).
                if s.trim().is_empty() || s.trim() == "0" {
                    self.config.cache.size_limit = None;
                    return;
                }
                match crate::parse_size(&s) {
                    Ok(bytes) => self.config.cache.size_limit = Some(bytes),
                    Err(message) => self.error(v.span, format!("{path}: {message}")),
                }
            }),
            "cache.retention" => set(self.duration(path, v), |d| {
                // Unset keeps the default; a written 0 keeps entries whatever their age.
                if !v.is_null() {
                    self.config.cache.retention = d;
                }
            }),
            "cache.repo_size_limit" => set(self.string(path, v), |s| {
                if v.is_null() || s.trim().is_empty() {
                    return;
                }
                match crate::parse_size(&s) {
                    Ok(0) => self.config.cache.repo_size_limit = None,
                    Ok(bytes) => self.config.cache.repo_size_limit = Some(bytes),
                    Err(message) => self.error(v.span, format!("{path}: {message}")),
                }
            }),
            "cache.sweep_interval" => set(self.duration(path, v), |d| {
                // No "off", as in the Gitea runner: zero means the default.
                if !d.is_zero() {
                    self.config.cache.sweep_interval = d;
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
                // Empty is the default (`workspace`), as in the Gitea runner.
                let parent = s.trim().trim_start_matches('/');
                if !parent.is_empty() {
                    self.config.container.workdir_parent = parent.to_owned();
                }
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
            "container.workflow_options_allowed" => set(self.strings(path, v), |l| {
                self.config.container.workflow_options_allowed = l
            }),
            "container.service_ready_timeout" => self.service_ready_timeout(path, v),
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

    /// The Gitea runner's (v3) task admission; zero values mean the defaults, as there.
    fn health_check_key(&mut self, path: &str, v: &Node) -> bool {
        fn health<'r>(reader: &'r mut Reader<'_>) -> &'r mut HealthCheckSection {
            &mut reader.config.health_check
        }
        match path {
            "health_check.enabled" => set(self.boolean(path, v), |b| health(self).enabled = b),
            "health_check.min_free_disk_space_mb" => {
                if v.is_null() {
                    return true;
                }
                if let Some(n) = self.integer(path, v)
                    && n > 0
                {
                    health(self).min_free_disk_space_mb = n.unsigned_abs();
                }
            }
            "health_check.script" => {
                set(self.string(path, v), |s| {
                    health(self).script = s.trim().to_owned()
                });
            }
            "health_check.interval" => set(self.duration(path, v), |d| {
                if !d.is_zero() {
                    health(self).interval = d;
                }
            }),
            "health_check.timeout" => set(self.duration(path, v), |d| {
                if !d.is_zero() {
                    health(self).timeout = d;
                }
            }),
            _ => return false,
        }
        true
    }

    fn metrics_key(&mut self, path: &str, v: &Node) -> bool {
        match path {
            "metrics.enabled" => set(self.boolean(path, v), |b| self.config.metrics.enabled = b),
            "metrics.readiness_grace" => set(self.duration(path, v), |d| {
                self.config.metrics.readiness_grace = (!d.is_zero()).then_some(d);
            }),
            "metrics.addr" => {
                if let Some(addr) = self.string(path, v) {
                    if addr.is_empty() {
                        self.config.metrics.addr = DEFAULT_METRICS_ADDR.to_owned();
                    } else if addr.parse::<std::net::SocketAddr>().is_ok() {
                        self.config.metrics.addr = addr;
                    } else {
                        self.error(
                            v.span,
                            format!("{path}: `{addr}` is not an address such as 127.0.0.1:9101"),
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
