//! Step containers (`uses: docker://…`, `runs.using: docker` with a prebuilt image) on
//! Kubernetes: each is an ephemeral container `step-<n>` added to the job's pod (a PATCH of
//! the pod's `ephemeralcontainers` subresource). It shares the pod's network, so services
//! answer on `localhost` and by their ids as for the job; its output is its log, followed as
//! it comes (`pods/log`, one stream: stdout and stderr are not told apart); its exit code is
//! its `ephemeralContainerStatuses` entry's.
//!
//! Mounts: Kubernetes refuses `subPath` on ephemeral containers, so a step container mounts
//! the whole `work` volume (the job's `/__w`) at the one directory that holds every target
//! (`/github` for the engine's `/github/workspace`, `/github/home`, …). A target whose name is
//! not already the source's place in the volume is a relative symbolic link at the volume's
//! root (`/__w/home` → `_temp/_github_home`), made through exec in the job container before
//! the container starts, together with the missing source directories; relative, the link
//! resolves the same in both containers. So the step container also sees the rest of `/__w`.
//!
//! Stopping one (timeout, cancellation): an ephemeral container cannot be removed, stopped or
//! killed through the API, and lives until its pod does. It is started with
//! `targetContainerName: job`, which puts it in the job container's process namespace (no
//! `shareProcessNamespace` for the pod, so services stay apart); a timed-out or cancelled
//! step is killed by an exec in the job container that sends SIGKILL to every process whose
//! `/proc/PID/cgroup` names the step container's id (so also what it started in the
//! background), until none is left. This needs the job container to read `/proc` and signal
//! those processes (the same user, or root); a step container that has not started yet when
//! its time is up is killed if it starts within 15 s, else left to the pod's deletion (so is
//! one when the job is cancelled: its pod goes next). A wrapper program in the workspace was
//! the other way, but it would need a static binary for every image's libc and architecture,
//! and could not stop a container still pulling its image either.
//!
//! A `Dockerfile` action cannot be built in the cluster: `build_image` fails saying so.
//!
//! Must not: decide env, argv or mounts (the engine did); create or delete pods (`pod`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::AsyncReadExt;
use k8s_openapi::api::core::v1::{
    ContainerStateTerminated, ContainerStatus, EnvVar, EphemeralContainer, Pod, VolumeMount,
};
use kube::api::{LogParams, Patch, PatchParams};
use runnel_engine::backend::{ContainerMount, ContainerRun, ExecExit, ExecOutput};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::KubeError;
use super::exec::{JOB_CONTAINER, PodExec, quote};
use super::pod::{self, WORK_ROOT};

/// The pod's volume step containers mount (`pod`'s `/__w`).
const WORK_VOLUME: &str = "work";

/// How often a running step container's pod is looked at (deleted, evicted, node lost).
const WATCH_EVERY: Duration = Duration::from_secs(5);

/// How long a step container being stopped may take to start (then it is killed) and, once
/// killed, to be reported terminated.
const KILL_WAIT: Duration = Duration::from_secs(15);

/// Between two looks at a step container being stopped.
const PAUSE: Duration = Duration::from_millis(200);

/// The directories under `/__w` the pod itself uses: never replaced by a link.
const POD_DIRS: [&str; 4] = ["workspace", "_temp", "_tool", "_runnel"];

/// How a step container sees the job's directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MountPlan {
    /// Where the `work` volume is mounted in the step container; `None`: no mounts.
    pub(crate) mount_path: Option<String>,
    /// Source directories to create first (paths in the job container).
    pub(crate) dirs: Vec<String>,
    /// Links to make in the job container: (link path, relative target).
    pub(crate) links: Vec<(String, String)>,
}

/// A mount a step container cannot have on this backend, and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct MountRefused(String);

/// Maps `mounts` onto the `work` volume mounted at their targets' common parent (see the
/// module docs). An error says which mount cannot be had that way.
pub(crate) fn plan_mounts(
    mounts: &[ContainerMount],
    work_root: &str,
) -> Result<MountPlan, MountRefused> {
    let refuse = |mount: &ContainerMount, why: &str| {
        MountRefused(format!(
            "a step container on the kubernetes backend cannot see `{}` at `{}`: {why}",
            mount.source, mount.target
        ))
    };
    let root = work_root.trim_end_matches('/');
    let mut plan = MountPlan::default();
    let mut sources = Vec::new();
    for mount in mounts {
        let source = mount.source.trim_end_matches('/');
        let relative = if source == root {
            "."
        } else {
            match source.strip_prefix(root).and_then(|r| r.strip_prefix('/')) {
                Some(relative) if !relative.split('/').any(|c| c == ".." || c.is_empty()) => {
                    relative
                }
                _ => {
                    return Err(refuse(
                        mount,
                        &format!("only directories under the job's `{root}` can be mounted"),
                    ));
                }
            }
        };
        let target = mount.target.trim_end_matches('/');
        let Some((parent, leaf)) = target.rsplit_once('/') else {
            return Err(refuse(mount, "the target is not an absolute path"));
        };
        if parent.is_empty() || leaf.is_empty() || leaf == "." || leaf == ".." {
            return Err(refuse(
                mount,
                "the target must be a directory below another one (the volume is mounted at \
                 its parent)",
            ));
        }
        match &plan.mount_path {
            None => plan.mount_path = Some(parent.to_owned()),
            Some(common) if common == parent => {}
            Some(common) => {
                return Err(refuse(
                    mount,
                    &format!(
                        "every target must be in one directory (the others are in `{common}`)"
                    ),
                ));
            }
        }
        sources.push((mount, source, relative, leaf));
    }
    // Names at the volume's root that hold sources: a link there would hide them.
    let taken: BTreeSet<&str> = sources
        .iter()
        .filter(|(_, _, relative, _)| *relative != ".")
        .filter_map(|(_, _, relative, _)| relative.split('/').next())
        .chain(POD_DIRS)
        .collect();
    let mut leaves = BTreeSet::new();
    for (mount, source, relative, leaf) in sources {
        if !leaves.insert(leaf) {
            return Err(refuse(mount, "another mount has the same target"));
        }
        if source != root && !plan.dirs.iter().any(|d| d == source) {
            plan.dirs.push(source.to_owned());
        }
        if relative == leaf {
            continue;
        }
        if taken.contains(leaf) {
            return Err(refuse(
                mount,
                &format!("`{root}/{leaf}` is a directory of the job's own"),
            ));
        }
        plan.links
            .push((format!("{root}/{leaf}"), relative.to_owned()));
    }
    Ok(plan)
}

/// The script that makes `plan`'s directories and links in the job container.
fn prepare_script(plan: &MountPlan) -> String {
    let mut script = String::from("set -e\n");
    if !plan.dirs.is_empty() {
        script.push_str("mkdir -p");
        for dir in &plan.dirs {
            script.push(' ');
            script.push_str(&quote(dir));
        }
        script.push('\n');
    }
    for (link, target) in &plan.links {
        script.push_str(&format!(
            "l={link}; if [ -e \"$l\" ] && [ ! -L \"$l\" ]; then echo \"runnel: $l exists and is \
             not a link\" >&2; exit 1; fi; ln -sfn {target} \"$l\"\n",
            link = quote(link),
            target = quote(target)
        ));
    }
    script
}

/// `text` as Kubernetes passes it on: it expands `$(NAME)` in a container's command, args and
/// env values and turns `$$` into `$`, so every `$` is doubled.
fn literal(text: &str) -> String {
    text.replace('$', "$$")
}

/// The ephemeral container that runs `run` as `name` (its argv and env taken literally).
pub(crate) fn container(
    name: &str,
    run: &ContainerRun,
    plan: &MountPlan,
    pull_policy: Option<&str>,
) -> EphemeralContainer {
    EphemeralContainer {
        name: name.to_owned(),
        image: Some(run.image.clone()),
        image_pull_policy: pull_policy.map(str::to_owned),
        command: run
            .entrypoint
            .as_deref()
            .map(|entrypoint| vec![literal(entrypoint)]),
        args: (!run.args.is_empty()).then(|| run.args.iter().map(|a| literal(a)).collect()),
        env: Some(
            run.env
                .iter()
                // No process can have a name with `=`, nor an empty one.
                .filter(|(name, _)| !name.is_empty() && !name.contains('='))
                .map(|(name, value)| EnvVar {
                    name: name.clone(),
                    value: Some(literal(value)),
                    ..EnvVar::default()
                })
                .collect(),
        ),
        working_dir: (!run.workdir.is_empty()).then(|| run.workdir.clone()),
        volume_mounts: plan.mount_path.as_ref().map(|path| {
            vec![VolumeMount {
                name: WORK_VOLUME.to_owned(),
                mount_path: path.clone(),
                ..VolumeMount::default()
            }]
        }),
        target_container_name: Some(JOB_CONTAINER.to_owned()),
        ..EphemeralContainer::default()
    }
}

/// Kills every process whose cgroup names the container id `$1`, until none is left.
const KILL_BY_CGROUP: &str = r#"id=$1
for round in 1 2 3 4 5 6 7 8 9 10; do
  pids=""
  for c in /proc/[0-9]*/cgroup; do
    while read -r line; do
      case "$line" in *"$id"*) p=${c#/proc/}; pids="$pids ${p%/cgroup}"; break ;; esac
    done < "$c" 2>/dev/null
  done
  [ -n "$pids" ] || exit 0
  kill -9 $pids 2>/dev/null
  sleep 0.2 2>/dev/null || sleep 1
done
echo "runnel: processes of $id are still alive" >&2
exit 1
"#;

/// What a step container's status says.
enum State {
    /// Not started yet: the kubelet's reason (`ContainerCreating`, `ErrImagePull`, …) and
    /// message, when it gave them.
    Waiting {
        reason: String,
        message: String,
    },
    Running {
        id: String,
    },
    Terminated(ContainerStateTerminated),
}

impl State {
    fn waiting(reason: &str) -> State {
        State::Waiting {
            reason: reason.to_owned(),
            message: String::new(),
        }
    }
}

/// `reason: message`, or the reason alone.
fn why(reason: &str, message: &str) -> String {
    if message.is_empty() {
        reason.to_owned()
    } else {
        format!("{reason}: {message}")
    }
}

fn status_of<'p>(pod: &'p Pod, name: &str) -> Option<&'p ContainerStatus> {
    pod.status
        .as_ref()?
        .ephemeral_container_statuses
        .as_ref()?
        .iter()
        .find(|status| status.name == name)
}

fn state_of(pod: &Pod, name: &str) -> State {
    let Some(status) = status_of(pod, name) else {
        return State::waiting("no status yet");
    };
    let id = status
        .container_id
        .as_deref()
        .map(|id| id.rsplit_once("://").map_or(id, |(_, id)| id).to_owned());
    let Some(state) = status.state.as_ref() else {
        return State::waiting("no state yet");
    };
    if let Some(terminated) = &state.terminated {
        return State::Terminated(terminated.clone());
    }
    if state.running.is_some() {
        return State::Running {
            id: id.unwrap_or_default(),
        };
    }
    match &state.waiting {
        Some(waiting) => State::Waiting {
            reason: waiting
                .reason
                .clone()
                .unwrap_or_else(|| "waiting".to_owned()),
            message: waiting.message.clone().unwrap_or_default(),
        },
        None => State::waiting("no state yet"),
    }
}

/// Why a terminated container never ran its program (a missing entrypoint, say); `None` when
/// it did.
fn start_failure(terminated: &ContainerStateTerminated) -> Option<String> {
    matches!(
        terminated.reason.as_deref(),
        Some("StartError" | "ContainerCannotRun")
    )
    .then(|| {
        format!(
            "could not start (exit code {}): {}",
            terminated.exit_code,
            terminated.message.as_deref().unwrap_or("no message given")
        )
    })
}

/// One step container of a job's pod.
pub(crate) struct StepContainer<'a> {
    pub(crate) exec: &'a PodExec,
    pub(crate) name: String,
    pub(crate) pull_policy: Option<&'a str>,
    /// How long it may take to start (its image pulled).
    pub(crate) start_timeout: Duration,
}

impl StepContainer<'_> {
    fn problem(&self, image: &str, problem: String) -> KubeError {
        KubeError::StepContainer {
            pod: self.exec.pod.clone(),
            container: self.name.clone(),
            image: image.to_owned(),
            problem,
        }
    }

    async fn get(&self) -> Result<Pod, KubeError> {
        self.exec
            .pods
            .get(&self.exec.pod)
            .await
            .map_err(KubeError::api("get", "pods", &self.exec.namespace))
    }

    /// Runs `run` to its end (see the module docs).
    pub(crate) async fn run(
        &self,
        run: &ContainerRun,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, KubeError> {
        let plan = plan_mounts(&run.mounts, WORK_ROOT)
            .map_err(|refused| KubeError::Unsupported(refused.to_string()))?;
        if !plan.dirs.is_empty() || !plan.links.is_empty() {
            let script = prepare_script(&plan);
            let (code, _, err) = self.exec.collect(&["sh", "-c", &script], None).await?;
            if code != 0 {
                return Err(self.problem(
                    &run.image,
                    format!(
                        "cannot prepare its directories (exit {code}): {}",
                        String::from_utf8_lossy(&err).trim()
                    ),
                ));
            }
        }
        let container = container(&self.name, run, &plan, self.pull_policy);
        let patch = serde_json::json!({"spec": {"ephemeralContainers": [container]}});
        self.exec
            .pods
            .patch_ephemeral_containers(
                &self.exec.pod,
                &PatchParams::default(),
                &Patch::Strategic(patch),
            )
            .await
            .map_err(KubeError::api(
                "patch",
                "pods/ephemeralcontainers",
                &self.exec.namespace,
            ))?;
        tracing::debug!(pod = %self.exec.pod, container = %self.name, image = %run.image, "step container added");
        let timeout = run.timeout.unwrap_or(Duration::MAX);
        let watch = async {
            loop {
                tokio::time::sleep(WATCH_EVERY).await;
                if let Some(reason) = pod::lost(&self.exec.pods, &self.exec.pod).await {
                    return reason;
                }
            }
        };
        let why = tokio::select! {
            ended = self.follow(&run.image, output) => return ended,
            () = tokio::time::sleep(timeout) => ExecExit::TimedOut,
            () = cancel.cancelled() => ExecExit::Cancelled,
            reason = watch => return Err(self.exec.gone(reason)),
        };
        self.kill(why == ExecExit::TimedOut).await;
        Ok(why)
    }

    /// Waits for the container to start, streams its log to `output` and returns its exit
    /// code.
    async fn follow(
        &self,
        image: &str,
        output: mpsc::Sender<ExecOutput>,
    ) -> Result<ExecExit, KubeError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(25);
        loop {
            let pod = self.get().await?;
            if let Some(reason) = pod::lost_reason(&pod) {
                return Err(self.exec.gone(reason));
            }
            match state_of(&pod, &self.name) {
                State::Running { .. } | State::Terminated(_) => break,
                State::Waiting { reason, message } => {
                    if pod::is_image_failure(&reason) {
                        return Err(KubeError::Image {
                            pod: self.exec.pod.clone(),
                            image: image.to_owned(),
                            reason,
                            message: format!("(step container `{}`) {message}", self.name),
                        });
                    }
                    let why = why(&reason, &message);
                    if matches!(
                        reason.as_str(),
                        "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError"
                    ) {
                        return Err(self.problem(image, format!("cannot be created: {why}")));
                    }
                    if started.elapsed() >= self.start_timeout {
                        return Err(self.problem(
                            image,
                            format!(
                                "did not start within {:?} (last: {why})",
                                self.start_timeout
                            ),
                        ));
                    }
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
        let mut params = LogParams {
            container: Some(self.name.clone()),
            follow: true,
            ..LogParams::default()
        };
        let mut quiet_polls = 0;
        loop {
            self.stream_log(&params, &output).await?;
            // The log ends with the container, or when a stream is cut: wait for its status.
            let pod = self.get().await?;
            match state_of(&pod, &self.name) {
                State::Terminated(terminated) => {
                    return match start_failure(&terminated) {
                        Some(problem) => Err(self.problem(image, problem)),
                        None => Ok(ExecExit::Code(terminated.exit_code)),
                    };
                }
                _ if quiet_polls < 10 => {
                    quiet_polls += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    // Only what comes from now on: what came before was sent.
                    params.tail_lines = Some(0);
                }
                _ => {
                    return Err(
                        self.problem(image, "its log ended but it did not terminate".to_owned())
                    );
                }
            }
        }
    }

    /// Sends the container's log to `output` until the stream ends.
    async fn stream_log(
        &self,
        params: &LogParams,
        output: &mpsc::Sender<ExecOutput>,
    ) -> Result<(), KubeError> {
        let mut stream = self
            .exec
            .pods
            .log_stream(&self.exec.pod, params)
            .await
            .map_err(KubeError::api("get", "pods/log", &self.exec.namespace))?;
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) => return Ok(()),
                Ok(read) => {
                    // A receiver gone is fine: keep reading to the end.
                    let _ = output
                        .send(ExecOutput::Stdout(buffer[..read].to_vec()))
                        .await;
                }
                Err(error) => {
                    tracing::debug!(pod = %self.exec.pod, container = %self.name, %error, "step container log stream cut");
                    return Ok(());
                }
            }
        }
    }

    /// Kills the container's processes from the job container (see the module docs) and waits
    /// until it is reported terminated; a failure is logged (the pod goes at teardown). One not
    /// started yet is waited for when `await_start` (a timed-out step: the job goes on; a
    /// cancelled job's pod is deleted anyway).
    async fn kill(&self, await_start: bool) {
        let started = Instant::now();
        let mut killed = false;
        while started.elapsed() < KILL_WAIT {
            let pod = match self.get().await {
                Ok(pod) => pod,
                Err(error) => {
                    tracing::warn!(pod = %self.exec.pod, container = %self.name, %error, "cannot read a step container's state to stop it");
                    return;
                }
            };
            match state_of(&pod, &self.name) {
                State::Terminated(_) => return,
                // It may still start (an image being pulled): killed then, if soon enough.
                State::Waiting { reason, message }
                    if !await_start
                        || pod::is_image_failure(&reason)
                        || started.elapsed() + PAUSE >= KILL_WAIT =>
                {
                    let why = why(&reason, &message);
                    tracing::warn!(pod = %self.exec.pod, container = %self.name, %why, "a step container that has not started cannot be stopped: it is left to the pod's deletion");
                    return;
                }
                State::Waiting { .. } => {}
                State::Running { id } if !killed && !id.is_empty() => {
                    match self
                        .exec
                        .collect(&["sh", "-c", KILL_BY_CGROUP, "sh", &id], None)
                        .await
                    {
                        Ok((0, _, _)) => {}
                        Ok((code, _, err)) => {
                            tracing::warn!(pod = %self.exec.pod, container = %self.name, code, err = %String::from_utf8_lossy(&err).trim(), "could not kill a step container's processes (the job container's user may not signal them): it runs until the pod is deleted");
                            return;
                        }
                        Err(error) => {
                            tracing::warn!(pod = %self.exec.pod, container = %self.name, %error, "could not kill a step container's processes: it runs until the pod is deleted");
                            return;
                        }
                    }
                    killed = true;
                }
                State::Running { .. } => {}
            }
            tokio::time::sleep(PAUSE).await;
        }
        tracing::warn!(pod = %self.exec.pod, container = %self.name, "a killed step container was not reported terminated");
    }
}

/// The error of `build_image`: nothing in the cluster builds images.
pub(crate) fn cannot_build(context: &str, dockerfile: &str) -> String {
    format!(
        "the kubernetes backend cannot build the action's image from `{context}/{dockerfile}` \
         (it has no image builder in the cluster); give the action a prebuilt image \
         (`runs.image: docker://IMAGE` in its action.yml, or a `uses: docker://IMAGE` step), \
         or run the job on a Docker label"
    )
}

#[cfg(test)]
mod tests;
