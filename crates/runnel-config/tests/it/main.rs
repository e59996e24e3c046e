//! `runnel-config` through its public API: the config keys and their defaults, problems with
//! positions, the example config; durations, labels and `config` edits in their own modules.

mod durations;
mod edit;
mod labels;
mod vm;

use std::time::Duration;

use runnel_config::{
    Config, ConfigError, EXAMPLE_CONFIG, ToolCacheMode, TransportChoice, parse_env_file,
};

fn parse(text: &str) -> runnel_config::Loaded {
    match Config::parse("config.yaml", text) {
        Ok(loaded) => loaded,
        Err(error) => panic!("{error}"),
    }
}

fn problems(text: &str) -> Vec<String> {
    match Config::parse("config.yaml", text) {
        Ok(loaded) => panic!("expected errors, got {:?}", loaded.config),
        Err(ConfigError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[test]
fn empty_file_means_the_peer_defaults() {
    for text in ["", "# nothing\n", "log:\nrunner:\n"] {
        let loaded = parse(text);
        assert_eq!(loaded.config, Config::default(), "{text:?}");
        assert!(loaded.warnings.is_empty());
    }
    let defaults = Config::default();
    assert_eq!(defaults.runner.capacity, 1);
    assert_eq!(defaults.runner.timeout, Duration::from_secs(3 * 3600));
    assert_eq!(defaults.runner.fetch_timeout, Duration::from_secs(5));
    assert_eq!(defaults.runner.fetch_interval, Duration::from_secs(2));
    assert_eq!(defaults.runner.file.to_str(), Some(".runner"));
    assert_eq!(defaults.container.workdir_parent, "workspace");
    assert!(defaults.cache.enabled);
}

#[test]
fn the_example_config_is_the_defaults() {
    let loaded = parse(EXAMPLE_CONFIG);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let mut expected = Config::default();
    // The example names the conventional env file; absent, it changes nothing.
    expected.runner.env_file = ".env".to_owned();
    // It writes `docker_host: '-'`: what no key means too (no socket in jobs), said out loud,
    // since an empty value written there would mount the socket as the Gitea runner does.
    expected.container.docker_host = "-".to_owned();
    expected.container.docker_host_written = true;
    // It writes the Gitea runner v3.3's default image, so a generated config runs a bare
    // `NAME:docker` label and a job no label matches where v3.3 does (in that container).
    expected.runner.default_image = "docker.gitea.com/runner-images:ubuntu-latest".to_owned();
    assert_eq!(
        loaded.config.container.docker_host_use(),
        runnel_config::DockerHostUse::DetectNoMount
    );
    assert_eq!(loaded.config, expected);
}

/// The Gitea runner v3.3's documented keys, each at its default (a fixture written for runnel,
/// not copied): a config an operator brings along loads quietly and means v3.3's defaults.
#[test]
fn the_gitea_runner_v3_3_config_loads_without_a_warning() {
    let text = include_str!("../data/gitea-runner-v3.3.yaml");
    let loaded = parse(text);
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    let mut expected = Config::default();
    expected.runner.env_file = ".env".to_owned();
    expected.runner.state_report_interval = Duration::from_secs(5);
    expected.runner.default_image = "docker.gitea.com/runner-images:ubuntu-latest".to_owned();
    // `set_act_env: true` is the default: `ACT` is added to the jobs' env, not to `envs`.
    expected.metrics.readiness_grace = Some(Duration::from_secs(30));
    // Written empty, `docker_host` means what it means there: the engine found, mounted.
    expected.container.docker_host_written = true;
    assert_eq!(loaded.config, expected);
    assert_eq!(
        loaded.config.container.docker_host_use(),
        runnel_config::DockerHostUse::DetectAndMount
    );
}

#[test]
fn every_key_is_read() {
    let text = "\
log:
  level: debug
runner:
  file: /var/lib/runnel/.runner
  capacity: 4
  envs:
    A: one
    B: 2
  env_file: vars.env
  timeout: 1h30m
  shutdown_timeout: 30s
  insecure: true
  fetch_timeout: 10s
  fetch_interval: 500ms
  fetch_interval_max: 20s
  state_report_interval: 2s
  report_close_timeout: 1m
  github_mirror: https://mirror.example/
  labels: [linux:host, 'ubuntu:docker://node:20']
  transport: connect
cache:
  enabled: false
  dir: /cache
  host: 10.0.0.1
  port: 8088
  external_server: http://cache:8080/
container:
  network: host
  privileged: true
  options: --cpus 2
  workdir_parent: /work
  valid_volumes: ['**']
  docker_host: '-'
  force_pull: true
  force_rebuild: true
  require_docker: true
  docker_timeout: 1m
  ca_bundle: /etc/company/ca.pem
host:
  workdir_parent: /tmp/jobs
kubernetes:
  kubeconfig: /etc/runnel/kubeconfig
  context: ci
  in_cluster: true
  namespace: jobs
  pull_policy: IfNotPresent
  pod_start_timeout: 2m
  resources:
    requests: {cpu: 500m, memory: 1Gi}
    limits: {memory: 2Gi}
  node_selector:
    kubernetes.io/arch: amd64
  tolerations:
    - {key: dedicated, operator: Equal, value: ci, effect: NoSchedule}
    - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, toleration_seconds: 30}
  image_pull_secrets: [registry-login]
  service_account: ci-jobs
  automount_service_account_token: true
";
    let loaded = parse(text);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.log.level, "debug");
    assert_eq!(c.runner.file.to_str(), Some("/var/lib/runnel/.runner"));
    assert_eq!(c.runner.capacity, 4);
    assert_eq!(c.runner.envs.get("B").map(String::as_str), Some("2"));
    assert_eq!(c.runner.env_file, "vars.env");
    assert_eq!(c.runner.timeout, Duration::from_secs(5400));
    assert_eq!(c.runner.shutdown_timeout, Duration::from_secs(30));
    assert!(c.runner.insecure);
    assert_eq!(c.runner.fetch_timeout, Duration::from_secs(10));
    assert_eq!(c.runner.fetch_interval, Duration::from_millis(500));
    assert_eq!(c.runner.fetch_interval_max, Duration::from_secs(20));
    assert_eq!(c.runner.state_report_interval, Duration::from_secs(2));
    assert_eq!(c.runner.report_close_timeout, Duration::from_secs(60));
    assert_eq!(c.runner.github_mirror, "https://mirror.example/");
    assert_eq!(c.runner.labels, ["linux:host", "ubuntu:docker://node:20"]);
    assert_eq!(c.runner.transport, TransportChoice::Connect);
    assert!(!c.cache.enabled);
    assert_eq!(
        c.cache.dir.as_deref().and_then(|d| d.to_str()),
        Some("/cache")
    );
    assert_eq!(c.cache.host, "10.0.0.1");
    assert_eq!(c.cache.port, 8088);
    assert_eq!(c.cache.external_server, "http://cache:8080/");
    assert_eq!(c.container.network, "host");
    assert!(c.container.privileged);
    assert_eq!(c.container.options, "--cpus 2");
    assert_eq!(
        c.container.workdir_parent, "work",
        "leading / trimmed like the peer"
    );
    assert_eq!(c.container.valid_volumes, ["**"]);
    assert_eq!(c.container.docker_host, "-");
    assert!(c.container.force_pull && c.container.force_rebuild && c.container.require_docker);
    assert_eq!(c.container.docker_timeout, Duration::from_secs(60));
    assert_eq!(
        c.container.ca_bundle.as_deref().and_then(|p| p.to_str()),
        Some("/etc/company/ca.pem")
    );
    assert_eq!(
        c.host.workdir_parent.as_deref().and_then(|d| d.to_str()),
        Some("/tmp/jobs")
    );
    let k = &c.kubernetes;
    assert_eq!(
        k.kubeconfig.as_deref().and_then(|p| p.to_str()),
        Some("/etc/runnel/kubeconfig")
    );
    assert_eq!(k.context.as_deref(), Some("ci"));
    assert!(k.in_cluster);
    assert_eq!(k.namespace.as_deref(), Some("jobs"));
    assert_eq!(k.pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(k.pod_start_timeout, Some(Duration::from_secs(120)));
    assert_eq!(k.resources.requests["cpu"], "500m");
    assert_eq!(k.resources.requests["memory"], "1Gi");
    assert_eq!(k.resources.limits.len(), 1);
    assert_eq!(k.node_selector["kubernetes.io/arch"], "amd64");
    assert_eq!(
        k.tolerations,
        [
            runnel_config::KubernetesToleration {
                key: "dedicated".to_owned(),
                operator: "Equal".to_owned(),
                value: "ci".to_owned(),
                effect: "NoSchedule".to_owned(),
                toleration_seconds: None,
            },
            runnel_config::KubernetesToleration {
                key: "node.kubernetes.io/unreachable".to_owned(),
                operator: "Exists".to_owned(),
                value: String::new(),
                effect: "NoExecute".to_owned(),
                toleration_seconds: Some(30),
            },
        ]
    );
    assert_eq!(k.image_pull_secrets, ["registry-login"]);
    assert_eq!(k.service_account.as_deref(), Some("ci-jobs"));
    assert!(k.automount_service_account_token);
}

#[test]
fn kubernetes_pod_keys_are_checked() {
    let errors = problems(
        "kubernetes:\n  tolerations:\n    - {key: a, operator: Maybe}\n    - {key: b, operator: Exists, value: x}\n    - {toleration_seconds: soon}\n",
    );
    for expected in [
        "kubernetes.tolerations[0].operator: `Maybe` is not one of Equal, Exists",
        "kubernetes.tolerations[1]: operator Exists takes no value",
        "kubernetes.tolerations[2].toleration_seconds: expected a whole number of seconds",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{expected:?} missing from {errors:?}"
        );
    }
    let loaded = parse(
        "kubernetes:\n  tolerations:\n    - {key: b, colour: red}\n  resources:\n    wants: {cpu: 1}\n",
    );
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    for expected in [
        "unknown key `kubernetes.tolerations[0].colour`",
        "unknown key `kubernetes.resources.wants`",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(expected)),
            "{expected:?} missing from {warnings:?}"
        );
    }
    let empty = parse("kubernetes:\n  service_account: ''\n  image_pull_secrets: []\n");
    assert_eq!(
        empty.config.kubernetes,
        runnel_config::KubernetesSection::default()
    );
}

#[test]
fn unknown_keys_are_warnings_naming_key_and_line() {
    let loaded = parse("runner:\n  capacity: 2\n  capacityy: 3\nhealthcheck:\n  enabled: true\n");
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "config.yaml:3:3: unknown key `runner.capacityy` (ignored)",
            "config.yaml:4:1: unknown key `healthcheck` (ignored)",
        ]
    );
    assert_eq!(loaded.config.runner.capacity, 2);
}

#[test]
fn runnel_additions_metrics_and_spool_dir() {
    let c = parse("runner:\n  file: /var/lib/runnel/.runner\nmetrics:\n  enabled: true\n  addr: 0.0.0.0:9999\n").config;
    assert!(c.metrics.enabled);
    assert_eq!(c.metrics.addr, "0.0.0.0:9999");
    assert_eq!(
        c.runner.effective_spool_dir(),
        std::path::Path::new("/var/lib/runnel/.runnel-spool"),
        "the spool sits next to .runner by default"
    );
    let c = parse("runner:\n  spool_dir: /spool\n").config;
    assert_eq!(
        c.runner.effective_spool_dir(),
        std::path::Path::new("/spool")
    );
    assert!(!c.metrics.enabled);
    assert_eq!(c.metrics.addr, runnel_config::DEFAULT_METRICS_ADDR);
    assert_eq!(
        Config::default().runner.effective_spool_dir(),
        std::path::Path::new("./.runnel-spool")
    );
    let found = problems("metrics:\n  addr: localhost\n");
    assert_eq!(
        found,
        ["config.yaml:2:9: metrics.addr: `localhost` is not an address such as 127.0.0.1:9101"]
    );
}

#[test]
fn wrong_values_are_errors_with_positions_all_at_once() {
    let found = problems(
        "runner:\n  capacity: -1\n  timeout: 3 hours\n  insecure: maybe\n  labels: linux\ncache:\n  port: 70000\n",
    );
    assert_eq!(
        found,
        [
            "config.yaml:3:12: runner.timeout: invalid duration `3 hours`: unknown unit ` hours` (use ns, us, ms, s, m or h)",
            "config.yaml:4:13: runner.insecure: `maybe` is not true or false",
            "config.yaml:5:11: runner.labels: expected a list",
            "config.yaml:7:9: cache.port: 70000 is not a port number",
        ]
    );
    assert_eq!(
        problems("runner:\n  tool_cache_mode: per-job\n"),
        ["config.yaml:2:20: runner.tool_cache_mode: `per-job` is not one of `none`, `shared`"]
    );
    assert_eq!(
        problems("runner: [1]\n"),
        ["config.yaml:1:9: runner must be a mapping"]
    );
    assert_eq!(problems("a: [\n").len(), 1);
}

#[test]
fn yaml_level_semantics() {
    // Only the first document counts, as with the peer's decoder.
    let loaded = parse("runner:\n  capacity: 3\n---\nrunner:\n  capacity: 9\n");
    assert_eq!(loaded.config.runner.capacity, 3);
    // Null and empty values mean the default or zero value; quoted `null` is a string.
    let loaded = parse("cache: ~\nrunner:\n  env_file: null\n  github_mirror: 'null'\n");
    assert_eq!(loaded.config.cache, Config::default().cache);
    assert_eq!(loaded.config.runner.env_file, "");
    assert_eq!(loaded.config.runner.github_mirror, "null");
    // Anchors are copied; positions stay those of the anchored node.
    let loaded = parse("runner:\n  labels: &l [a, b]\ncontainer:\n  valid_volumes: *l\n");
    assert_eq!(loaded.config.container.valid_volumes, ["a", "b"]);
    // A duplicate key is an error naming both places.
    assert_eq!(
        problems("runner:\n  capacity: 2\n  capacity: 3\n"),
        [
            "config.yaml:3:3: duplicate key `capacity` (`capacity` is first defined at line 2, column 3)"
        ]
    );
}

#[test]
fn env_file_is_merged_over_envs_when_present() {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("tempdir: {e}"),
    };
    let env_path = dir.path().join("vars.env");
    let config_path = dir.path().join("config.yaml");
    let write = |path: &std::path::Path, text: &str| {
        if let Err(e) = std::fs::write(path, text) {
            panic!("write {}: {e}", path.display());
        }
    };
    write(
        &config_path,
        &format!(
            "runner:\n  envs:\n    A: from-config\n    B: kept\n  env_file: {}\n",
            env_path.display()
        ),
    );
    write(&env_path, "# comment\nA=from-file\nexport C=\"quoted\"\n");
    let loaded = match Config::load(&config_path) {
        Ok(loaded) => loaded,
        Err(e) => panic!("{e}"),
    };
    let envs: Vec<(&str, &str)> = loaded
        .config
        .runner
        .envs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(envs, [("A", "from-file"), ("B", "kept"), ("C", "quoted")]);
    assert_eq!(
        parse_env_file("X='1'\nbad line\n"),
        [("X".to_owned(), "1".to_owned())]
    );
}

#[test]
fn cache_shared_secret_from_the_config_or_a_file_not_both() {
    let c = parse("cache:\n  shared_secret: s3cr3t-of-the-fleet\n").config;
    assert_eq!(c.cache.shared_secret, "s3cr3t-of-the-fleet");
    assert_eq!(c.cache.shared_secret_file, None);
    let c = parse("cache:\n  shared_secret_file: /etc/runnel/cache-secret\n").config;
    assert_eq!(
        c.cache
            .shared_secret_file
            .as_deref()
            .and_then(|p| p.to_str()),
        Some("/etc/runnel/cache-secret")
    );
    let both = problems("cache:\n  shared_secret: a\n  shared_secret_file: /f\n");
    assert!(both.iter().any(|p| p.contains("not both")), "{both:?}");
}

/// What the Gitea runner (v3) makes of values runnel used to refuse: a capacity below 1 runs
/// one job, a zero timeout is the default, YAML 1.1's yes/no/on/off are booleans, and the
/// deprecated `container.network_mode` still names the network.
#[test]
fn values_the_gitea_runner_accepts_mean_what_they_mean_there() {
    let loaded = parse(
        "runner:\n  capacity: 0\n  timeout: 0s\n  fetch_timeout: 0s\n  insecure: yes\n\
         container:\n  privileged: off\n  force_pull: On\n  network_mode: host\n",
    );
    let c = &loaded.config;
    assert_eq!(c.runner.capacity, 1);
    assert_eq!(c.runner.timeout, Config::default().runner.timeout);
    assert_eq!(
        c.runner.fetch_timeout,
        Config::default().runner.fetch_timeout
    );
    assert!(c.runner.insecure);
    assert!(!c.container.privileged);
    assert!(c.container.force_pull);
    assert_eq!(c.container.network, "host");
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "config.yaml:2:13: runner.capacity: 0 is less than 1; 1 is used",
            "config.yaml:9:17: container.network_mode is deprecated, use container.network; read as container.network: host",
        ]
    );
    let bridge = parse("container:\n  network_mode: bridge\n");
    assert_eq!(bridge.config.container.network, "");
    let both = parse("container:\n  network: ci\n  network_mode: host\n");
    assert_eq!(both.config.container.network, "ci");
}

/// Keys the Gitea runner (v1–v3) added, one row each: the config text, what runnel makes of
/// it, and the warning at load (empty: none, because runnel does what the value asks).
#[test]
fn the_gitea_runners_newer_keys_are_applied_or_warned_about() {
    type Effect = fn(&Config) -> bool;
    let unchanged: Effect = |c| *c == Config::default();
    let cases: &[(&str, Effect, &str)] = &[
        // Applied.
        ("runner:\n  patch_actions: true\n", unchanged, ""),
        ("runner:\n  patch_actions:\n", unchanged, ""),
        (
            "runner:\n  patch_actions: false\n",
            |c| !c.runner.patch_actions,
            "",
        ),
        (
            "runner:\n  shutdown_timeout: 2m\n",
            |c| c.runner.shutdown_timeout == Duration::from_secs(120),
            "",
        ),
        (
            "runner:\n  fetch_interval_max: 1m\n",
            |c| c.runner.fetch_interval_max == Duration::from_secs(60),
            "",
        ),
        (
            "runner:\n  fetch_interval: 0s\n  fetch_interval_max: 0s\n  state_report_interval: 0s\n  report_close_timeout: 0s\n",
            unchanged,
            "",
        ),
        (
            "container:\n  docker_timeout: 30s\n",
            |c| c.container.docker_timeout == Duration::from_secs(30),
            "",
        ),
        ("container:\n  workdir_parent: ''\n", unchanged, ""),
        ("container:\n  workdir_parent: /\n", unchanged, ""),
        ("runner:\n  set_act_env: true\n", unchanged, ""),
        ("runner:\n  set_act_env: ~\n", unchanged, ""),
        (
            "runner:\n  set_act_env: false\n",
            |c| !c.runner.set_act_env && !c.runner.job_envs().contains_key("ACT"),
            "",
        ),
        (
            "runner:\n  set_act_env: true\n  envs:\n    ACT: 'no'\n",
            |c| c.runner.job_envs().get("ACT").map(String::as_str) == Some("no"),
            "",
        ),
        ("runner:\n  tool_cache_mode: none\n", unchanged, ""),
        (
            "runner:\n  tool_cache_mode: shared\n",
            |c| c.runner.tool_cache_mode == ToolCacheMode::Shared,
            "",
        ),
        (
            "runner:\n  capacity: 2\n  tool_cache_mode: shared\n",
            |c| c.runner.tool_cache_mode == ToolCacheMode::Shared,
            "runner.tool_cache_mode: shared with capacity 2: two jobs writing",
        ),
        (
            "container:\n  service_ready_timeout: 90s\n",
            |c| c.container.service_ready_timeout == Duration::from_secs(90),
            "",
        ),
        ("container:\n  service_ready_timeout: 0s\n", unchanged, ""),
        (
            "container:\n  service_ready_timeout: -1s\n",
            unchanged,
            "container.service_ready_timeout: a negative value (start the steps without waiting) is not supported: runnel waits for services as GitHub does, up to 5m",
        ),
        (
            "metrics:\n  readiness_grace: 45s\n",
            |c| c.metrics.readiness_grace == Some(Duration::from_secs(45)),
            "",
        ),
        (
            "container:\n  workflow_options_allowed: ['--gpus']\n",
            |c| c.container.workflow_options_allowed == ["--gpus"],
            "",
        ),
        (
            "cache:\n  external_secret: s3cr3t-of-the-fleet\n",
            |c| c.cache.shared_secret == "s3cr3t-of-the-fleet",
            "cache.external_secret is read as runnel's cache.shared_secret(_file)",
        ),
        (
            "cache:\n  external_secret_file: /etc/secret\n",
            |c| c.cache.shared_secret_file.as_deref() == Some(std::path::Path::new("/etc/secret")),
            "cache.external_secret_file is read as runnel's cache.shared_secret(_file)",
        ),
        ("cache:\n  external_secret: ''\n", unchanged, ""),
        // Read, not applied: a warning unless the value is what runnel does anyway.
        // At the Gitea runner's default (or "off"), quiet: docs/migrating.md says what
        // runnel does instead.
        ("runner:\n  workdir_cleanup_age: 24h\n", unchanged, ""),
        ("runner:\n  workdir_cleanup_age: 1440m\n", unchanged, ""),
        ("runner:\n  workdir_cleanup_age: 0s\n", unchanged, ""),
        (
            "runner:\n  workdir_cleanup_age: 48h\n",
            unchanged,
            "runner.workdir_cleanup_age: runnel runs no idle sweep",
        ),
        ("runner:\n  idle_cleanup_interval: 10m\n", unchanged, ""),
        (
            "runner:\n  idle_cleanup_interval: 1m\n",
            unchanged,
            "runner.idle_cleanup_interval: runnel runs no idle sweep",
        ),
        ("runner:\n  allocate_pty: false\n", unchanged, ""),
        (
            "runner:\n  allocate_pty: true\n",
            unchanged,
            "runner.allocate_pty: runnel runs steps without a terminal",
        ),
        ("runner:\n  action_shallow_clone: true\n", unchanged, ""),
        (
            "runner:\n  action_shallow_clone: no\n",
            unchanged,
            "runner.action_shallow_clone: runnel always fetches only the commit",
        ),
        (
            "runner:\n  log_report_interval: 5s\n  log_report_max_latency: 3s\n  log_report_batch_size: 100\n",
            unchanged,
            "",
        ),
        (
            "runner:\n  log_report_interval: 1s\n",
            unchanged,
            "runner.log_report_interval: runnel sends new log rows with each state report",
        ),
        (
            "runner:\n  log_report_max_latency: 500ms\n",
            unchanged,
            "runner.log_report_max_latency: runnel sends new log rows",
        ),
        (
            "runner:\n  log_report_batch_size: 10\n",
            unchanged,
            "runner.log_report_batch_size: runnel sends new log rows",
        ),
        (
            "runner:\n  log_report_batch_size: lots\n",
            unchanged,
            "error",
        ),
        (
            "runner:\n  post_task_script: ''\n  post_task_script_timeout: 5m\n",
            unchanged,
            "",
        ),
        (
            "runner:\n  post_task_script: /usr/local/bin/after\n",
            unchanged,
            "runner.post_task_script: runnel runs no host script after a task",
        ),
        (
            "runner:\n  hooks:\n    job_started: ''\n    job_completed: ''\n",
            unchanged,
            "",
        ),
        (
            "runner:\n  hooks:\n    job_started: /hooks/start.sh\n",
            unchanged,
            "runner.hooks.job_started: job hooks are not supported yet",
        ),
        (
            "runner:\n  hooks:\n    job_completed: /hooks/end.sh\n",
            unchanged,
            "runner.hooks.job_completed: job hooks are not supported yet",
        ),
        (
            "container:\n  network_create_options:\n    enable_ipv4: true\n    enable_ipv6: false\n",
            unchanged,
            "",
        ),
        (
            "container:\n  network_create_options:\n    enable_ipv6: true\n",
            unchanged,
            "container.network_create_options.enable_ipv6: runnel's own network",
        ),
        (
            "container:\n  network_create_options:\n    enable_ipv4: no\n",
            unchanged,
            "container.network_create_options.enable_ipv4: runnel's own network",
        ),
        ("container:\n  bind_workdir: true\n", unchanged, ""),
        ("container:\n  bind_workdir: false\n", unchanged, ""),
        ("cache:\n  offline_mode: false\n  v2: true\n", unchanged, ""),
        (
            "cache:\n  offline_mode: true\n",
            unchanged,
            "cache.offline_mode: runnel resolves an action's ref on every job",
        ),
        (
            "cache:\n  v2: false\n",
            unchanged,
            "cache.v2: runnel's cache service always answers both",
        ),
        // Applied by the cache's sweep: at v3.3's defaults nothing changes, 0 turns a limit
        // off, a zero interval is the default (no "off", as in v3.3).
        (
            "cache:\n  retention: 168h\n  repo_size_limit: 10GB\n  sweep_interval: 1h\n",
            unchanged,
            "",
        ),
        (
            "cache:\n  retention: 0s\n  repo_size_limit: 0\n  sweep_interval: 0s\n",
            |c| {
                c.cache.retention.is_zero()
                    && c.cache.repo_size_limit.is_none()
                    && c.cache.sweep_interval == Duration::from_secs(3600)
            },
            "",
        ),
        (
            "cache:\n  retention: 24h\n  repo_size_limit: 1g\n  sweep_interval: 10m\n",
            |c| {
                c.cache.retention == Duration::from_secs(24 * 3600)
                    && c.cache.repo_size_limit == Some(1 << 30)
                    && c.cache.sweep_interval == Duration::from_secs(600)
            },
            "",
        ),
        ("cache:\n  repo_size_limit: 10240MiB\n", unchanged, ""),
        ("cache:\n  repo_size_limit: big\n", unchanged, "error"),
        // Applied: the whole-cache cap. The Gitea runner's 0 (no cap) keeps runnel's.
        ("cache:\n  size_limit: 0\n", unchanged, ""),
        (
            "cache:\n  size_limit: 2GB\n",
            |c| c.cache.size_limit == Some(2 << 30),
            "",
        ),
        (
            "health_check:\n  enabled: false\n  min_free_disk_space_mb: 1024\n  script: ''\n  interval: 30s\n  timeout: 10s\n",
            unchanged,
            "",
        ),
        (
            "health_check:\n  min_free_disk_space_mb: many\n",
            unchanged,
            "error",
        ),
        (
            "health_check:\n  enabled: true\n",
            |c| c.health_check.enabled && c.health_check.min_free_disk_space_mb == 1024,
            "",
        ),
        (
            "health_check:\n  enabled: yes\n  min_free_disk_space_mb: 10\n  script: /bin/check\n  interval: 1m\n  timeout: 2s\n",
            |c| {
                c.health_check.enabled
                    && c.health_check.min_free_disk_space_mb == 10
                    && c.health_check.script == "/bin/check"
                    && c.health_check.interval == Duration::from_secs(60)
                    && c.health_check.timeout == Duration::from_secs(2)
            },
            "",
        ),
        (
            "health_check:\n  min_free_disk_space_mb: 0\n  interval: 0s\n  timeout: 0s\n",
            unchanged,
            "",
        ),
        (
            "log:\n  job:\n    dir: ''\n    retention: 72h\n    max_size: 10m\n",
            |c| {
                c.log.job.dir.is_none()
                    && c.log.job.retention == Duration::from_secs(72 * 3600)
                    && c.log.job.max_size == 10 << 20
            },
            "",
        ),
        (
            "log:\n  job:\n    dir: /var/log/runner-jobs\n",
            |c| c.log.job.dir.as_deref() == Some(std::path::Path::new("/var/log/runner-jobs")),
            "",
        ),
        (
            "log:\n  job:\n    retention: 0s\n    max_size: 0\n",
            |c| c.log.job.retention.is_zero() && c.log.job.max_size == 0,
            "",
        ),
        ("log:\n  job:\n    max_size: huge\n", unchanged, "error"),
        (
            "log:\n  job:\n    dirr: /x\n",
            unchanged,
            "unknown key `log.job.dirr` (ignored)",
        ),
        (
            "runner:\n  hooks:\n    job_startd: x\n",
            unchanged,
            "unknown key `runner.hooks.job_startd` (ignored)",
        ),
    ];
    for (text, effect, warning) in cases {
        if *warning == "error" {
            let found = problems(text);
            assert_eq!(found.len(), 1, "{text}: {found:?}");
            continue;
        }
        let loaded = parse(text);
        assert!(effect(&loaded.config), "{text}: {:?}", loaded.config);
        let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.message.clone()).collect();
        match *warning {
            "" => assert!(warnings.is_empty(), "{text}: {warnings:?}"),
            expected => assert!(
                warnings.len() == 1 && warnings[0].starts_with(expected),
                "{text}: {warnings:?}"
            ),
        }
    }
    // Two secrets under the two names are one too many.
    let both = problems("cache:\n  shared_secret: a\n  external_secret: b\n");
    assert!(both.iter().any(|p| p.contains("not both")), "{both:?}");
    assert_eq!(runnel_config::DEFAULT_METRICS_ADDR, "127.0.0.1:9101");
}
