//! A VM job's `services:`, started by the guest's own Docker engine before the first step:
//! each service a container on a network of the job (`runnel-job`, so services find each
//! other by id), its id added to the guest's `/etc/hosts` (the steps, which run on the guest
//! itself, reach it by name) and its `ports:` published on the guest (so `localhost:PORT`
//! works as on a host job); ready when its health check says healthy (or, without one, when it
//! runs). The ports are reported for the `job.services` context.
//!
//! Must not: outlive the VM (nothing to remove: the guest goes with the job) or reach this
//! machine's engine (images come from the preloaded set, else the guest pulls them).

use std::collections::BTreeMap;
use std::time::Duration;

use runnel_engine::backend::{ExecExit, ExecOutput, ExecRequest, JobEnvironment, ServiceSpec};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::environment::VmEnvironment;
use super::error::VmError;

/// How long one service may take to start and become healthy.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// The script that starts one service in the guest; the service's variables come through the
/// environment (`-e NAME` takes the value from there, so no value is quoted into the script).
fn script(service: &ServiceSpec) -> String {
    let container = &service.container;
    let name = container_name(&service.id);
    let mut run = vec![
        "docker run -d".to_owned(),
        format!("--name {}", quote(&name)),
        "--network runnel-job".to_owned(),
        format!("--network-alias {}", quote(&service.id)),
    ];
    run.extend(container.env.keys().map(|key| format!("-e {}", quote(key))));
    run.extend(
        container
            .ports
            .iter()
            .map(|port| format!("-p {}", quote(port))),
    );
    run.extend(
        container
            .volumes
            .iter()
            .map(|volume| format!("-v {}", quote(volume))),
    );
    // The workflow's options as it wrote them (the guest's shell splits them): the VM is the
    // job's own, so nothing here reaches beyond it.
    run.extend(container.options.iter().cloned());
    if let Some(entrypoint) = &service.entrypoint {
        run.push(format!("--entrypoint {}", quote(entrypoint)));
    }
    run.push(quote(&container.image));
    // `command:` as written: the guest's shell splits it into arguments, as GitHub does.
    if let Some(command) = &service.command {
        run.push(command.clone());
    }
    format!(
        r#"set -eu
name={name}
docker network inspect runnel-job >/dev/null 2>&1 || docker network create runnel-job >/dev/null
{run} >/dev/null
state=
for _ in $(seq 1 {tries}); do
  state=$(docker inspect -f '{{{{.State.Status}}}} {{{{if .State.Health}}}}{{{{.State.Health.Status}}}}{{{{end}}}}' "$name")
  case "$state" in
    "running healthy"|"running ") break ;;
    "running starting"|"created "*|"created") sleep 0.5 ;;
    *) echo "service {id} is $state; its last lines:"; docker logs --tail 20 "$name" 2>&1; exit 1 ;;
  esac
done
case "$state" in
  "running healthy"|"running ") ;;
  *) echo "service {id} did not become ready ($state)"; docker logs --tail 20 "$name" 2>&1; exit 1 ;;
esac
ip=$(docker inspect -f '{{{{range .NetworkSettings.Networks}}}}{{{{.IPAddress}}}}{{{{end}}}}' "$name")
echo "$ip {id}" >>/etc/hosts
docker port "$name" | sed 's/^/port /'
"#,
        name = quote(&name),
        run = run.join(" "),
        tries = READY_TIMEOUT.as_secs() * 2,
        id = service.id,
    )
}

/// The service's container in the guest.
fn container_name(id: &str) -> String {
    let id: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("runnel-service-{id}")
}

/// `text` as one word of a POSIX shell.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `docker port` lines (`port 80/tcp -> 0.0.0.0:49153`) as container port → host port, as the
/// `job.services.<id>.ports` context has them (`"80": "49153"`).
fn parse_ports(output: &str) -> BTreeMap<String, String> {
    let mut ports = BTreeMap::new();
    for line in output.lines() {
        let Some(rest) = line.strip_prefix("port ") else {
            continue;
        };
        let Some((container, host)) = rest.split_once(" -> ") else {
            continue;
        };
        let container = container.split('/').next().unwrap_or(container).trim();
        let Some((_, host_port)) = host.trim().rsplit_once(':') else {
            continue;
        };
        ports
            .entry(container.to_owned())
            .or_insert_with(|| host_port.to_owned());
    }
    ports
}

/// Starts `services` in the guest, in order; their ports by service id. The image must carry
/// Docker's engine (its start hook has started it).
pub(crate) async fn start(
    environment: &VmEnvironment,
    image: &str,
    services: &[ServiceSpec],
    cancel: &CancellationToken,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, VmError> {
    let mut all = BTreeMap::new();
    if services.is_empty() {
        return Ok(all);
    }
    let agent = |error: runnel_engine::backend::BackendError| VmError::Agent {
        message: error.to_string(),
    };
    let path = environment.default_env().remove("PATH").unwrap_or_default();
    if environment
        .find_program("docker", &path)
        .await
        .map_err(agent)?
        .is_none()
    {
        return Err(VmError::ServicesNeedDocker {
            image: image.to_owned(),
            service: services[0].id.clone(),
        });
    }
    for service in services {
        runnel_engine::backend::setup_log(&format!(
            "Starting service {} ({}) in the VM",
            service.id, service.container.image
        ));
        let mut env = environment.default_env();
        env.extend(service.container.env.clone());
        let request = ExecRequest {
            argv: vec!["/bin/sh".to_owned(), "-c".to_owned(), script(service)],
            env,
            workdir: "/".to_owned(),
            timeout: Some(READY_TIMEOUT + Duration::from_secs(30)),
        };
        let started = std::time::Instant::now();
        let (sender, mut receiver) = mpsc::channel(64);
        let run = async {
            environment
                .exec(&request, sender, cancel)
                .await
                .map_err(agent)
        };
        let collect = async {
            let mut text = String::new();
            while let Some(chunk) = receiver.recv().await {
                let (ExecOutput::Stdout(data) | ExecOutput::Stderr(data)) = chunk;
                text.push_str(&String::from_utf8_lossy(&data));
            }
            text
        };
        let (exit, output) = tokio::join!(run, collect);
        match exit? {
            ExecExit::Code(0) => {
                runnel_engine::backend::setup_log(&format!(
                    "Service {} ready in {:.1} s",
                    service.id,
                    started.elapsed().as_secs_f64()
                ));
                all.insert(service.id.clone(), parse_ports(&output));
            }
            exit => {
                return Err(VmError::Service {
                    service: service.id.clone(),
                    exit: format!("{exit:?}"),
                    output: output.trim_end().to_owned(),
                });
            }
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_engine::backend::ContainerSpec;

    #[test]
    fn a_services_entrypoint_and_command_replace_the_images() {
        let service = ServiceSpec {
            id: "db".to_owned(),
            container: ContainerSpec {
                image: "postgres:16".to_owned(),
                ..ContainerSpec::default()
            },
            entrypoint: Some("docker-entrypoint.sh".to_owned()),
            command: Some("postgres -c fsync=off".to_owned()),
        };
        let text = script(&service);
        assert!(
            text.contains(
                "--entrypoint 'docker-entrypoint.sh' 'postgres:16' postgres -c fsync=off"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_service_runs_on_the_job_network_under_its_id_with_its_ports() {
        let service = ServiceSpec {
            id: "db".to_owned(),
            container: ContainerSpec {
                image: "postgres:16".to_owned(),
                env: BTreeMap::from([("POSTGRES_PASSWORD".to_owned(), "it's".to_owned())]),
                ports: vec!["5432:5432".to_owned()],
                options: vec!["--health-cmd pg_isready".to_owned()],
                ..ContainerSpec::default()
            },
            entrypoint: None,
            command: None,
        };
        let text = script(&service);
        assert!(
            text.contains(
                "docker run -d --name 'runnel-service-db' --network runnel-job \
                 --network-alias 'db' -e 'POSTGRES_PASSWORD' -p '5432:5432' \
                 --health-cmd pg_isready 'postgres:16' >/dev/null"
            ),
            "{text}"
        );
        // The value comes through the environment, never the script.
        assert!(!text.contains("it's"), "{text}");
        assert!(text.contains(r#"echo "$ip db" >>/etc/hosts"#), "{text}");
    }

    #[test]
    fn ports_read_as_the_job_context_has_them() {
        let ports = parse_ports(
            "port 80/tcp -> 0.0.0.0:49153\nport 80/tcp -> [::]:49153\nport 5432/tcp -> 0.0.0.0:5432\nnoise\n",
        );
        assert_eq!(
            ports,
            BTreeMap::from([
                ("80".to_owned(), "49153".to_owned()),
                ("5432".to_owned(), "5432".to_owned()),
            ])
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(container_name("my db"), "runnel-service-my-db");
    }
}
