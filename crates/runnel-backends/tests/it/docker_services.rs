//! Services in the Docker pod: reachable by name and on localhost, health checks waited on,
//! failures reported with the service's log, two services on one port refused.

use std::collections::BTreeMap;

use runnel_engine::backend::{ContainerSpec, ServiceSpec};

use super::{POSTGRES, container, docker_ready, job_spec, prepare_error, sh, with_pod};

fn postgres(id: &str, options: &str, password: Option<&str>) -> ServiceSpec {
    let mut env = BTreeMap::new();
    if let Some(password) = password {
        env.insert("POSTGRES_PASSWORD".to_owned(), password.to_owned());
    }
    ServiceSpec {
        id: id.to_owned(),
        container: ContainerSpec {
            env,
            ports: vec!["5432".to_owned()],
            options: vec![options.to_owned()],
            ..container(POSTGRES)
        },
        entrypoint: None,
        command: None,
    }
}

const HEALTHY: &str =
    "--health-cmd pg_isready --health-interval 500ms --health-timeout 5s --health-retries 60";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_is_reachable_by_name_and_on_localhost_once_healthy() {
    if !docker_ready() {
        return;
    }
    let backend = super::backend().await;
    // The job runs in the postgres image too, for its psql; its entrypoint is replaced.
    let job = ContainerSpec {
        env: BTreeMap::from([("PGPASSWORD".to_owned(), "secret".to_owned())]),
        ..container(POSTGRES)
    };
    let spec = job_spec(
        "services",
        job,
        vec![postgres("postgres", HEALTHY, Some("secret"))],
    );
    with_pod(&backend, &spec, async |environment| {
        for host in ["postgres", "localhost"] {
            let query = format!("psql -h {host} -p 5432 -U postgres -tAc 'select 40 + 2'");
            let ran = sh(environment, &query).await;
            assert_eq!(
                (ran.stdout.as_str(), ran.stderr.as_str()),
                ("42\n", ""),
                "{host}"
            );
        }
        let info = environment.info();
        let host_port = info
            .service_ports
            .get("postgres")
            .and_then(|ports| ports.get("5432"));
        let Some(host_port) = host_port else {
            panic!("no published port in {info:?}");
        };
        // Published on the job container (owner of the namespace), on 127.0.0.1.
        let connected =
            std::net::TcpStream::connect(("127.0.0.1", host_port.parse::<u16>().unwrap_or(0)));
        assert!(connected.is_ok(), "127.0.0.1:{host_port}: {connected:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_service_is_reported_with_its_log() {
    if !docker_ready() {
        return;
    }
    let backend = super::backend().await;
    let unhealthy = postgres(
        "db",
        // It fails only once the server answers, so the log surely holds the start-up lines.
        "--health-cmd 'until pg_isready -q; do sleep 0.1; done; echo probe says no; exit 1' \
         --health-interval 300ms --health-timeout 60s --health-retries 2",
        Some("secret"),
    );
    let spec = job_spec("unhealthy", container(super::BUSYBOX), vec![unhealthy]);
    let message = prepare_error(&backend, &spec).await;
    for expected in [
        "start services: service `db` is unhealthy",
        "last health check output:\nprobe says no",
        "runnel-postgres: initialized /var/lib/postgresql/data",
    ] {
        assert!(message.contains(expected), "`{expected}` not in: {message}");
    }

    let exits = postgres("db", HEALTHY, None);
    let spec = job_spec("exits", container(super::BUSYBOX), vec![exits]);
    let message = prepare_error(&backend, &spec).await;
    for expected in [
        "start services: service `db` exited with code 1",
        "runnel-postgres: set POSTGRES_PASSWORD",
    ] {
        assert!(message.contains(expected), "`{expected}` not in: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_on_one_port_are_refused_naming_both() {
    if !docker_ready() {
        return;
    }
    let backend = super::backend().await;
    let services = vec![
        postgres("main-db", HEALTHY, Some("a")),
        postgres("replica", HEALTHY, Some("b")),
    ];
    let spec = job_spec("conflict", container(super::BUSYBOX), services);
    let message = prepare_error(&backend, &spec).await;
    assert!(
        message.starts_with(
            "start services: services `main-db` and `replica` both listen on port 5432/tcp"
        ),
        "{message}"
    );
}
