use std::time::Duration;

use runnel_cache::{JobTokens, TokenError, TokenVerifier};
use runnel_engine::backend::HostRoute;
use runnel_engine::{GrantRequest, RunnerGrants};

use super::{
    CacheService, CacheSettings, CacheStartError, LocalGrants, SharedSecret, TaskGrants, ref_scope,
};

const SECRET: &str = "fleet-secret-0123456789abcdef";

fn settings(external_server: &str, shared_secret: SharedSecret) -> CacheSettings {
    CacheSettings {
        dir: std::env::temp_dir().join("runnel-cache-unit-unused"),
        host: String::new(),
        port: 0,
        external_server: external_server.to_owned(),
        size_limit: 1 << 20,
        docker_host: None,
        s3: None,
        serve_artifacts: false,
        shared_secret,
        eviction: runnel_cache::PruneRules::default(),
        sweep_interval: std::time::Duration::from_secs(3600),
    }
}

fn job(repository: &str) -> GrantRequest {
    GrantRequest {
        job_key: "gitea-task-7".to_owned(),
        repository: repository.to_owned(),
        run_id: "3".to_owned(),
        in_container: true,
        network: Some("runnel-jobs".to_owned()),
        host_loopback: None,
        server_origin: None,
        host_route: None,
        timeout: Duration::from_secs(600),
        git_ref: "refs/pull/4/head".to_owned(),
        base_ref: "dev".to_owned(),
        default_branch: "trunk".to_owned(),
    }
}

#[test]
fn a_job_saves_to_its_ref_and_restores_from_its_base_and_default_branch() {
    let refs = |git_ref: &str, base_ref: &str, default_branch: &str| {
        let request = GrantRequest {
            git_ref: git_ref.to_owned(),
            base_ref: base_ref.to_owned(),
            default_branch: default_branch.to_owned(),
            ..job("owner/a")
        };
        let scope = ref_scope(&request);
        (scope.own, scope.fallback)
    };
    let list = |refs: &[&str]| refs.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
    // (github.ref, github.base_ref, default branch) → (own, fallback)
    assert_eq!(
        refs("refs/pull/4/head", "dev", "trunk"),
        (
            "refs/pull/4/head".to_owned(),
            list(&["refs/heads/dev", "refs/heads/trunk"])
        )
    );
    assert_eq!(
        refs("refs/heads/trunk", "", "trunk"),
        ("refs/heads/trunk".to_owned(), list(&[]))
    );
    assert_eq!(
        refs("refs/pull/5/head", "main", ""),
        ("refs/pull/5/head".to_owned(), list(&["refs/heads/main"])),
        "no default branch in the event: main, and no repeat"
    );
    assert_eq!(
        refs("refs/tags/v1", "", "release"),
        ("refs/tags/v1".to_owned(), list(&["refs/heads/release"]))
    );
}

#[test]
fn shared_secrets_come_from_the_config_or_a_file_and_must_be_long_enough() {
    assert_eq!(SharedSecret::None.load().ok(), Some(None));
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).expect("write");
    assert_eq!(
        SharedSecret::File(file).load().ok().flatten(),
        Some(SECRET.as_bytes().to_vec()),
        "the trailing newline is not part of it"
    );
    assert!(matches!(
        SharedSecret::Value("short".to_owned()).load(),
        Err(CacheStartError::SecretTooShort { len: 5, min: 16 })
    ));
    assert!(matches!(
        SharedSecret::File(dir.path().join("missing")).load(),
        Err(CacheStartError::SecretFile { .. })
    ));
    let debug = format!("{:?}", SharedSecret::Value(SECRET.to_owned()));
    assert!(!debug.contains(SECRET), "{debug}");
}

#[tokio::test]
async fn a_daemon_job_gets_the_external_server_with_a_token_the_server_accepts() {
    let settings = settings(
        "http://cache.lan:8088",
        SharedSecret::Value(SECRET.to_owned()),
    );
    let cache = CacheService::start(&settings).await.expect("start");
    assert_eq!(cache.local_addr(), None, "no built-in server");
    let services = TaskGrants::new(Some(cache), "http://gitea:3000/", "gitea-token");
    let grant = services.start_job(&job("owner/a")).await.expect("grant");
    let url = &grant.env["ACTIONS_CACHE_URL"];
    let token = url
        .strip_prefix("http://cache.lan:8088/")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{url}"));
    // What the cache-server, which only knows the secret, makes of it.
    let server = JobTokens::from_secret(SECRET.as_bytes());
    let identity = server.verify(Some(token)).expect("a valid token");
    assert_eq!(
        (identity.repository.as_str(), identity.run.as_str()),
        ("owner/a", "3")
    );
    assert_eq!(identity.write_ref(), Some("refs/pull/4/head"));
    assert_eq!(
        token_lifetime(token),
        600 + 15 * 60,
        "the job's (capped) timeout plus a short margin for post steps"
    );
    assert_eq!(grant.env["ACTIONS_RUNTIME_TOKEN"], "gitea-token");
    assert_eq!(grant.env["ACTIONS_RESULTS_URL"], "http://gitea:3000");
    assert!(grant.secrets.iter().any(|s| s == token));
    assert!(grant.secrets.iter().any(|s| s == "gitea-token"));
    // Revocation reaches only this process's verifier; the server relies on the expiry.
    services.release(&grant.lease).await;
    assert!(server.verify(Some(token)).is_ok());
    let other = JobTokens::from_secret(b"another fleet's secret");
    assert_eq!(other.verify(Some(token)), Err(TokenError::Signature));
}

#[tokio::test]
async fn without_a_secret_the_external_server_is_handed_out_alone() {
    let cache = CacheService::start(&settings("http://cache.lan:8088/", SharedSecret::None))
        .await
        .expect("start");
    let services = TaskGrants::new(Some(cache), "http://gitea:3000", "gitea-token");
    let grant = services.start_job(&job("owner/a")).await.expect("grant");
    assert_eq!(grant.env["ACTIONS_CACHE_URL"], "http://cache.lan:8088/");
    assert_eq!(grant.secrets, ["gitea-token"]);
}

/// `exp - iat` of a job token, read from its payload.
fn token_lifetime(token: &str) -> u64 {
    let payload = token.split('.').nth(1).expect("a JWT");
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in payload.bytes() {
        let value = alphabet.iter().position(|a| *a == c).expect("base64url") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
        }
    }
    let claims: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat")
}

#[tokio::test]
async fn containers_on_the_host_network_reach_the_cache_on_loopback() {
    let dir = tempfile::tempdir().expect("dir");
    let settings = CacheSettings {
        dir: dir.path().to_path_buf(),
        ..settings("", SharedSecret::None)
    };
    let cache = CacheService::start(&settings).await.expect("start");
    let port = cache.local_addr().expect("a built-in server").port();
    let services = TaskGrants::new(Some(cache), "http://gitea:3000/", "gitea-token");
    let on_host = GrantRequest {
        network: Some("host".to_owned()),
        ..job("owner/a")
    };
    let grant = services.start_job(&on_host).await.expect("grant");
    let url = &grant.env["ACTIONS_CACHE_URL"];
    assert!(
        url.starts_with(&format!("http://127.0.0.1:{port}/")),
        "{url}"
    );
}

/// A VM job reaches this machine's loopback at its user-mode network's gateway: the cache
/// (and, for local runs, the artifact) URLs name that address.
#[tokio::test]
async fn a_vm_job_reaches_the_cache_at_its_gateway() {
    let dir = tempfile::tempdir().expect("dir");
    let settings = CacheSettings {
        dir: dir.path().to_path_buf(),
        ..settings("", SharedSecret::None)
    };
    let cache = CacheService::start(&settings).await.expect("start");
    let port = cache.local_addr().expect("a built-in server").port();
    let in_vm = GrantRequest {
        in_container: false,
        network: None,
        host_loopback: Some("10.0.2.2".to_owned()),
        ..job("owner/a")
    };
    let daemon = TaskGrants::new(Some(cache.clone()), "http://gitea:3000/", "gitea-token");
    let grant = daemon.start_job(&in_vm).await.expect("grant");
    let url = &grant.env["ACTIONS_CACHE_URL"];
    assert!(
        url.starts_with(&format!("http://10.0.2.2:{port}/")),
        "{url}"
    );
    let local = LocalGrants::new(cache);
    let grant = local.start_job(&in_vm).await.expect("grant");
    for name in [
        "ACTIONS_CACHE_URL",
        "ACTIONS_RESULTS_URL",
        "ACTIONS_RUNTIME_URL",
    ] {
        let url = &grant.env[name];
        assert!(
            url.starts_with(&format!("http://10.0.2.2:{port}/")),
            "{name}={url}"
        );
    }
}

/// With `cache.host` set, a VM job still gets the address its network maps onto this
/// machine's loopback (the restricted network's forward reaches nothing else); other jobs get
/// the advertised host.
#[tokio::test]
async fn a_vm_job_gets_its_forward_even_with_an_advertised_host() {
    let dir = tempfile::tempdir().expect("dir");
    let settings = CacheSettings {
        dir: dir.path().to_path_buf(),
        host: "cache.example".to_owned(),
        ..settings("", SharedSecret::None)
    };
    let cache = CacheService::start(&settings).await.expect("start");
    let port = cache.local_addr().expect("a built-in server").port();
    let daemon = TaskGrants::new(Some(cache), "http://gitea:3000/", "gitea-token");
    let in_vm = GrantRequest {
        in_container: false,
        network: None,
        host_loopback: Some("10.0.2.100".to_owned()),
        ..job("owner/a")
    };
    let grant = daemon.start_job(&in_vm).await.expect("grant");
    let url = &grant.env["ACTIONS_CACHE_URL"];
    assert!(
        url.starts_with(&format!("http://10.0.2.100:{port}/")),
        "{url}"
    );
    let on_host = GrantRequest {
        in_container: false,
        network: None,
        ..job("owner/a")
    };
    let grant = daemon.start_job(&on_host).await.expect("grant");
    let url = &grant.env["ACTIONS_CACHE_URL"];
    assert!(
        url.starts_with(&format!("http://cache.example:{port}/")),
        "{url}"
    );
}

/// A daemon job whose environment reaches Gitea elsewhere (a restricted VM's forward) gets
/// Gitea's artifact, runtime and OIDC URLs at that origin, paths kept; others get Gitea's own.
#[tokio::test]
async fn a_vm_job_gets_gitea_at_its_forward() {
    let daemon = TaskGrants::new(None, "http://gitea.example:3000/sub/", "gitea-token")
        .with_id_token_url("http://gitea.example:3000/sub/api/actions/_apis/idtoken?x=1");
    let in_vm = GrantRequest {
        server_origin: Some("http://10.0.2.101:3000".to_owned()),
        ..job("owner/a")
    };
    let grant = daemon.start_job(&in_vm).await.expect("grant");
    assert_eq!(
        grant.env["ACTIONS_RUNTIME_URL"],
        "http://10.0.2.101:3000/sub/api/actions_pipeline/"
    );
    assert_eq!(
        grant.env["ACTIONS_RESULTS_URL"],
        "http://10.0.2.101:3000/sub"
    );
    assert_eq!(
        grant.env["ACTIONS_ID_TOKEN_REQUEST_URL"],
        "http://10.0.2.101:3000/sub/api/actions/_apis/idtoken?x=1"
    );
    let grant = daemon.start_job(&job("owner/a")).await.expect("grant");
    assert_eq!(
        grant.env["ACTIONS_RESULTS_URL"],
        "http://gitea.example:3000/sub"
    );
}

/// A pod whose node is this machine reaches the server at the node's address: a listener is
/// added there (once) and both flavours hand it out; `cache.host` still wins.
#[tokio::test]
async fn a_pod_on_this_machines_node_reaches_the_cache_at_the_node_address() {
    let dir = tempfile::tempdir().expect("dir");
    let plain = CacheSettings {
        dir: dir.path().to_path_buf(),
        ..settings("", SharedSecret::None)
    };
    let cache = CacheService::start(&plain).await.expect("start");
    // Loopback stands in for the node's bridge address: every machine has it.
    let in_pod = GrantRequest {
        in_container: true,
        network: None,
        host_route: Some(HostRoute::Interface("127.0.0.1".parse().expect("ip"))),
        ..job("owner/a")
    };
    let local = LocalGrants::new(cache.clone());
    let grant = local.start_job(&in_pod).await.expect("grant");
    let origin = grant.env["ACTIONS_RESULTS_URL"].clone();
    let addr = origin
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix('/'))
        .expect("http://addr/");
    assert!(addr.starts_with("127.0.0.1:"), "{origin}");
    assert!(
        grant.env["ACTIONS_CACHE_URL"].starts_with(&origin),
        "{:?}",
        grant.env
    );
    assert!(grant.warnings.is_empty(), "{:?}", grant.warnings);
    std::net::TcpStream::connect(addr).expect("the added listener accepts");
    let daemon = TaskGrants::new(Some(cache), "http://gitea:3000/", "gitea-token");
    let again = daemon.start_job(&in_pod).await.expect("grant");
    assert!(
        again.env["ACTIONS_CACHE_URL"].starts_with(&origin),
        "one listener per address: {:?}",
        again.env
    );

    let advertised = CacheSettings {
        host: "cache.example".to_owned(),
        dir: dir.path().join("advertised"),
        ..settings("", SharedSecret::None)
    };
    let cache = CacheService::start(&advertised).await.expect("start");
    let port = cache.local_addr().expect("a built-in server").port();
    let grant = LocalGrants::new(cache)
        .start_job(&in_pod)
        .await
        .expect("grant");
    assert!(
        grant.env["ACTIONS_CACHE_URL"].starts_with(&format!("http://cache.example:{port}/")),
        "{:?}",
        grant.env
    );
}

/// A pod on another machine gets no loopback address it cannot reach: a local run's grant
/// fails (the engine warns in the job's log), a daemon job keeps Gitea's artifact URLs and
/// gets the warning; both say to set `cache.host`. With `cache.host` set it is handed out.
#[tokio::test]
async fn a_pod_on_another_machine_is_told_to_set_cache_host() {
    let dir = tempfile::tempdir().expect("dir");
    let plain = CacheSettings {
        dir: dir.path().to_path_buf(),
        ..settings("", SharedSecret::None)
    };
    let cache = CacheService::start(&plain).await.expect("start");
    let elsewhere = GrantRequest {
        network: None,
        host_route: Some(HostRoute::Unreachable(
            "pod `p` runs on node 10.0.0.7, not on this machine".to_owned(),
        )),
        ..job("owner/a")
    };
    let error = LocalGrants::new(cache.clone())
        .start_job(&elsewhere)
        .await
        .expect_err("no address the pod reaches");
    let text = error.to_string();
    assert!(text.contains("node 10.0.0.7"), "{text}");
    assert!(text.contains("set cache.host"), "{text}");
    assert!(text.contains("its pod IP or a Service name"), "{text}");
    let daemon = TaskGrants::new(Some(cache), "http://gitea:3000/", "gitea-token");
    let grant = daemon.start_job(&elsewhere).await.expect("grant");
    assert!(
        !grant.env.contains_key("ACTIONS_CACHE_URL"),
        "{:?}",
        grant.env
    );
    assert_eq!(grant.env["ACTIONS_RESULTS_URL"], "http://gitea:3000");
    assert_eq!(grant.warnings.len(), 1, "{:?}", grant.warnings);
    assert!(
        grant.warnings[0].contains("set cache.host"),
        "{:?}",
        grant.warnings
    );

    let advertised = CacheSettings {
        host: "10.0.0.1".to_owned(),
        dir: dir.path().join("advertised"),
        ..settings("", SharedSecret::None)
    };
    let cache = CacheService::start(&advertised).await.expect("start");
    let port = cache.local_addr().expect("a built-in server").port();
    let grant = LocalGrants::new(cache)
        .start_job(&elsewhere)
        .await
        .expect("grant");
    assert!(
        grant.env["ACTIONS_CACHE_URL"].starts_with(&format!("http://10.0.0.1:{port}/")),
        "{:?}",
        grant.env
    );
}
