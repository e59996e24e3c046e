//! Image pulls against a real registry (Debian's `docker-registry` with password auth, started
//! by `tests/registry/start.sh` on 127.0.0.1, which dockerd treats as insecure): images made
//! here and pushed there, their local copies removed, then `runnel run`:
//! - the job image and a service image pulled with the workflow's `credentials:` (the
//!   service's with computed keys), a `docker://` step's image with the Docker client config's
//!   (`DOCKER_CONFIG`), each pull's progress in the output, the job green;
//! - `--pull` replaces a present copy with the registry's, without it the present copy runs;
//! - a refused password, a missing image and an unreachable registry each fail their job with
//!   an error naming the image and what the registry said.

use std::path::Path;
use std::process::Command;

use crate::daemon_gitea::unique;
use crate::support::{repo_root, run_expecting, runnel};

/// A running registry of `tests/registry/start.sh`.
pub(crate) struct Registry {
    /// `127.0.0.1:PORT`.
    pub(crate) address: String,
    pub(crate) user: String,
    pub(crate) password: String,
    /// A Docker client config directory logged in to it.
    pub(crate) docker_config: String,
}

/// An image pushed to the registry, whose local copies are removed; removed again on drop.
pub(crate) struct Pushed {
    pub(crate) reference: String,
}

impl Drop for Pushed {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.reference])
            .output();
    }
}

impl Registry {
    /// The shared test registry, started when needed; `None` (a note) without
    /// `RUN_SLOW_TESTS`, a failure when it cannot be had.
    pub(crate) fn start(test: &str) -> Option<Registry> {
        if std::env::var_os("RUN_SLOW_TESTS").is_none() {
            eprintln!("note: skipping {test}: needs Docker and a registry; set RUN_SLOW_TESTS=1");
            return None;
        }
        let image = Command::new("docker")
            .args(["image", "inspect", "runnel-test/busybox"])
            .output();
        assert!(
            image.is_ok_and(|o| o.status.success()),
            "{test}: Docker or runnel-test/busybox is missing: run tests/docker/ensure-dockerd.sh \
             and tests/images/build.sh busybox"
        );
        let started = Command::new("bash")
            .arg(repo_root().join("tests/registry/start.sh"))
            .output()
            .unwrap_or_else(|e| panic!("{test}: run tests/registry/start.sh: {e}"));
        assert!(
            started.status.success(),
            "{test}: tests/registry/start.sh could not start a registry (it installs Debian's \
             docker-registry and apache2-utils):\n{}",
            String::from_utf8_lossy(&started.stderr)
        );
        let stdout = String::from_utf8_lossy(&started.stdout);
        let env_file = stdout.lines().last().unwrap_or_default().trim().to_owned();
        let text = std::fs::read_to_string(&env_file)
            .unwrap_or_else(|e| panic!("{test}: read {env_file}: {e}"));
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{test}: {env_file} has no {key}"))
                .to_owned()
        };
        Some(Registry {
            address: value("REGISTRY"),
            user: value("REGISTRY_USER"),
            password: value("REGISTRY_PASSWORD"),
            docker_config: value("REGISTRY_DOCKER_CONFIG"),
        })
    }

    /// An image only this test has (runnel-test/busybox with a layer of 3 MB of random
    /// bytes, `sleep 600` as its command), pushed as `REGISTRY/runnel-it/NAME-…:1`; no local
    /// copy is left, so the next use pulls it.
    pub(crate) fn push_unique(&self, name: &str) -> Pushed {
        let local = format!("runnel-it/{}:1", unique(name));
        build_image(&local, "");
        let pushed = self.push(&local, &local);
        docker(&["rmi", &local]);
        pushed
    }

    /// Pushes the local image `source` as `REGISTRY/target` (`tests/registry/push.sh`, which
    /// removes the local tag of that reference).
    pub(crate) fn push(&self, source: &str, target: &str) -> Pushed {
        let pushed = Command::new("bash")
            .arg(repo_root().join("tests/registry/push.sh"))
            .args([source, target])
            .output()
            .unwrap_or_else(|e| panic!("run tests/registry/push.sh: {e}"));
        assert!(
            pushed.status.success(),
            "push.sh {source}: {}",
            String::from_utf8_lossy(&pushed.stderr)
        );
        let reference = String::from_utf8_lossy(&pushed.stdout).trim().to_owned();
        assert_eq!(reference, format!("{}/{target}", self.address));
        Pushed { reference }
    }
}

/// Makes the local image `name`: runnel-test/busybox with a 3 MB layer of random bytes (so
/// a pull downloads something), `marker` in `/marker`, and `sleep 600` as its command.
pub(crate) fn build_image(name: &str, marker: &str) {
    let container = docker(&[
        "create",
        "runnel-test/busybox",
        "sh",
        "-c",
        &format!("head -c 3000000 /dev/urandom > /blob && echo '{marker}' > /marker"),
    ]);
    docker(&["start", "-a", &container]);
    docker(&[
        "commit",
        "--change",
        r#"CMD ["sleep", "600"]"#,
        &container,
        name,
    ]);
    docker(&["rm", &container]);
}

pub(crate) fn docker(args: &[&str]) -> String {
    match Command::new("docker").args(args).output() {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
        other => panic!("docker {args:?}: {other:?}"),
    }
}

/// Writes `workflow` as the only workflow of a fresh directory and runs `runnel run` there
/// with the registry's user and `password` as secrets, and `env`; returns the exit code and
/// the output.
fn run_workflow(
    dir: &Path,
    workflow: &str,
    registry: &Registry,
    password: &str,
    env: &[(&str, &str)],
    flags: &[&str],
) -> (i32, String) {
    let workflows = dir.join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("create workflow dir");
    std::fs::write(workflows.join("ci.yml"), workflow).expect("write workflow");
    let mut command = runnel();
    command
        .current_dir(dir)
        .args(["run", "--no-cache-server"])
        .args(["-s", &format!("REG_USER={}", registry.user)])
        .args(["-s", &format!("REG_PASSWORD={password}")])
        .args(flags)
        .envs(env.iter().copied());
    let output = run_expecting(command, None, &[0, 1]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

const CREDENTIALS: &str = "      credentials:
        username: ${{ secrets.REG_USER }}
        password: ${{ secrets.REG_PASSWORD }}";

#[test]
fn private_images_are_pulled_with_credentials_and_their_progress_is_shown() {
    let test = "private_images_are_pulled_with_credentials_and_their_progress_is_shown";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let job = registry.push_unique("job");
    let service = registry.push_unique("service");
    let step = registry.push_unique("step");
    let (job_ref, service_ref, step_ref) = (&job.reference, &service.reference, &step.reference);
    let workflow = format!(
        r#"on: push
jobs:
  private:
    runs-on: linux
    container:
      image: {job_ref}
{CREDENTIALS}
    services:
      side:
        image: {service_ref}
        # Computed keys, as GitHub's template engine evaluates them in `credentials:`.
        credentials:
          ${{{{ 'username' }}}}: ${{{{ secrets.REG_USER }}}}
          ${{{{ 'pass' }}}}word: ${{{{ secrets.REG_PASSWORD }}}}
    steps:
      - run: test -s /blob && echo job-image-ok
      - uses: docker://{step_ref}
        with:
          entrypoint: sh
          args: -c "test -s /blob && echo step-image-ok"
"#
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, output) = run_workflow(
        dir.path(),
        &workflow,
        &registry,
        &registry.password,
        &[("DOCKER_CONFIG", &registry.docker_config)],
        &[],
    );
    assert_eq!(code, 0, "{workflow}\n{output}");
    let client_config = format!("{}/config.json", registry.docker_config);
    let expected = [
        format!("pulling {job_ref} with the credentials of the container's `credentials:`"),
        format!("pulled {job_ref} in "),
        format!("pulling {service_ref} with the credentials of the container's `credentials:`"),
        format!("pulled {service_ref} in "),
        format!("pulling {step_ref} with the credentials in {client_config}"),
        format!("pulled {step_ref} in "),
        "3.0 MB downloaded in 1 layer, 1 already present".to_owned(),
        "job-image-ok".to_owned(),
        "step-image-ok".to_owned(),
    ];
    for line in expected {
        assert!(output.contains(&line), "{line}\n{output}");
    }
    assert!(!output.contains(&registry.password), "{output}");
}

#[test]
fn refused_credentials_missing_images_and_unreachable_registries_fail_clearly() {
    let test = "refused_credentials_missing_images_and_unreachable_registries_fail_clearly";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let pushed = registry.push_unique("refused");
    let pushed_ref = &pushed.reference;
    let missing_ref = format!("{}/runnel-it/{}:1", registry.address, unique("missing"));
    // Nothing listens on port 1.
    let unreachable_ref = "127.0.0.1:1/runnel-it/nowhere:1";
    let workflow = format!(
        r#"on: push
jobs:
  refused:
    runs-on: linux
    container:
      image: {pushed_ref}
{CREDENTIALS}
    steps:
      - run: echo never
  missing:
    runs-on: linux
    container:
      image: {missing_ref}
      credentials:
        username: ${{{{ secrets.REG_USER }}}}
        password: {password}
    steps:
      - run: echo never
  unreachable:
    runs-on: linux
    container:
      image: {unreachable_ref}
    steps:
      - run: echo never
"#,
        password = registry.password,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, output) = run_workflow(
        dir.path(),
        &workflow,
        &registry,
        "not-the-password",
        &[("DOCKER_CONFIG", "/nonexistent")],
        &[],
    );
    assert_eq!(code, 1, "{output}");
    let registry_address = &registry.address;
    let expected = [
        format!(
            "image `{pushed_ref}` is not present and could not be pulled: {registry_address} \
             refused the credentials of the container's `credentials:`"
        ),
        "The engine said: unauthorized: authentication required.".to_owned(),
        format!(
            "image `{missing_ref}` is not present and could not be pulled: {registry_address} \
             has no such image"
        ),
        "manifest unknown".to_owned(),
        format!(
            "image `{unreachable_ref}` is not present and could not be pulled: 127.0.0.1:1 \
             cannot be reached from this machine"
        ),
        "connection refused".to_owned(),
        "or run the label on the host (`-P <label>=-self-hosted`".to_owned(),
    ];
    for line in expected {
        assert!(output.contains(&line), "{line}\n{output}");
    }
    assert!(!output.contains("never"), "no step ran: {output}");
}

#[test]
fn pull_flag_replaces_a_present_image_with_the_registrys() {
    let test = "pull_flag_replaces_a_present_image_with_the_registrys";
    let Some(registry) = Registry::start(test) else {
        return;
    };
    let name = format!("runnel-it/{}:1", unique("pull-flag"));
    build_image(&name, "from-registry");
    let pushed = registry.push(&name, &name);
    docker(&["rmi", &name]);
    // A different local image under the registry's reference, as after an old pull.
    build_image(&pushed.reference, "from-local-copy");
    let workflow = format!(
        "on: push\njobs:\n  pinned:\n    runs-on: linux\n    container:\n      image: {}\n\
         {CREDENTIALS}\n    steps:\n      - run: echo \"marker=$(cat /marker)\"\n",
        pushed.reference
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("DOCKER_CONFIG", registry.docker_config.as_str())];
    let (code, output) = run_workflow(
        dir.path(),
        &workflow,
        &registry,
        &registry.password,
        &env,
        &[],
    );
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("marker=from-local-copy"), "{output}");
    assert!(!output.contains("pulling "), "{output}");

    let (code, output) = run_workflow(
        dir.path(),
        &workflow,
        &registry,
        &registry.password,
        &env,
        &["--pull"],
    );
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains(&format!("pulled {} in ", pushed.reference)),
        "{output}"
    );
    assert!(output.contains("marker=from-registry"), "{output}");
}
