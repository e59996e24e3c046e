//! What the caller decides about a run ([`RunOptions`]) and what a run reports back
//! ([`WorkflowResult`], [`JobOutcome`], [`StepSummary`]).
//!
//! Must not: hold behaviour; these are plain data shared by the job runner and the driver.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use runnel_plan::JobResult;

use crate::actions::ActionSource;
use crate::grants::RunnerGrants;
use crate::sink::StepStatus;

/// The runner as the `runner` context and `RUNNER_*` variables describe it.
#[derive(Debug, Clone)]
pub struct RunnerInfo {
    /// `runner.name`.
    pub name: String,
    /// `runner.os`: `Linux`, `Windows` or `macOS`.
    pub os: String,
    /// `runner.arch`: `X86`, `X64`, `ARM` or `ARM64`.
    pub arch: String,
    /// `runner.environment`: `self-hosted` for runnel.
    pub environment: String,
}

impl RunnerInfo {
    /// This machine: `runnel` on the OS and architecture the binary was built for.
    pub fn this_machine(name: &str) -> RunnerInfo {
        let os = match std::env::consts::OS {
            "macos" => "macOS",
            "windows" => "Windows",
            _ => "Linux",
        };
        let arch = match std::env::consts::ARCH {
            "x86" => "X86",
            "arm" => "ARM",
            "aarch64" => "ARM64",
            _ => "X64",
        };
        RunnerInfo {
            name: name.to_owned(),
            os: os.to_owned(),
            arch: arch.to_owned(),
            environment: "self-hosted".to_owned(),
        }
    }
}

/// The server the run belongs to, for `github.server_url`, `api_url` and `graphql_url`.
#[derive(Debug, Clone)]
pub struct ServerUrls {
    pub server_url: String,
    pub api_url: String,
    pub graphql_url: String,
}

impl ServerUrls {
    /// github.com, as a local run (and act) reports it.
    pub fn github() -> ServerUrls {
        ServerUrls {
            server_url: "https://github.com".to_owned(),
            api_url: "https://api.github.com".to_owned(),
            graphql_url: "https://api.github.com/graphql".to_owned(),
        }
    }

    /// A Gitea instance at `server_url` (`api_url` ends in `/api/v1`, as Gitea sets it).
    pub fn gitea(server_url: &str) -> ServerUrls {
        let base = server_url.trim_end_matches('/');
        ServerUrls {
            server_url: base.to_owned(),
            api_url: format!("{base}/api/v1"),
            graphql_url: String::new(),
        }
    }

    /// The same URLs with their origin (`scheme://host:port`) replaced by `origin`: the
    /// server as a job reaches it through its environment
    /// ([`crate::backend::JobEnvironment::server_origin`]). Empty URLs stay empty.
    pub fn at_origin(&self, origin: &str) -> ServerUrls {
        ServerUrls {
            server_url: replace_origin(&self.server_url, origin),
            api_url: replace_origin(&self.api_url, origin),
            graphql_url: replace_origin(&self.graphql_url, origin),
        }
    }
}

/// `url` with its origin (`scheme://authority`) replaced by `origin` (its path, query and
/// fragment kept): `http://gitea.example.com/api/v1` at `http://10.0.2.101:3000` is
/// `http://10.0.2.101:3000/api/v1`. A `url` without a scheme, or empty, is returned as is.
pub fn replace_origin(url: &str, origin: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let path = rest.find(['/', '?', '#']).map_or("", |at| &rest[at..]);
    format!("{}{path}", origin.trim_end_matches('/'))
}

/// Everything about a run that does not come from the workflow or the event.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub runner: RunnerInfo,
    pub server: ServerUrls,
    /// The directory that becomes the workspace (`GITHUB_WORKSPACE`); also where `hashFiles`
    /// looks. `None`: an empty workspace and `hashFiles` unavailable.
    pub workspace_source: Option<PathBuf>,
    /// Where `owner/repo@ref` actions are fetched from: `https://github.com`, a Gitea
    /// instance, a mirror (`file:///srv/mirror` works: `<base>/<owner>/<repo>` must be a git
    /// repository), or `self` for `server.server_url` (Gitea's `DEFAULT_ACTIONS_URL=self`).
    /// Full-URL `uses:` ignore it.
    pub actions_url: String,
    /// Where the default git action source keeps fetched actions, one directory per
    /// repository and commit.
    pub actions_cache: PathBuf,
    /// Replaces the git action source (for embedders and tests). `None`: fetch with `git`
    /// into `actions_cache`.
    pub action_source: Option<Arc<dyn ActionSource>>,
    /// `runner.debug`, `RUNNER_DEBUG=1`, and `::debug::` lines shown.
    pub debug: bool,
    /// `secrets` (and `github.token` from `GITHUB_TOKEN`); every value is masked in logs.
    pub secrets: BTreeMap<String, String>,
    /// More values masked in every job's logs without being `secrets`: the runner's own
    /// credentials (its token, the cache store's keys), should a job find them.
    pub mask: Vec<String>,
    /// Variables every process of every job starts with, over the environment's own and
    /// under everything the workflow sets (the daemon's `runner.envs`, `runnel run --env`).
    pub env: BTreeMap<String, String>,
    /// A local run over its working tree (`runnel run`): `actions/checkout` of the run's
    /// own repository is skipped, as act does, since the workspace holds the tree already.
    pub local_checkout: bool,
    /// How many job instances may run at once (at least 1).
    pub max_parallel_jobs: usize,
    /// Run only this job id (`-j`), as act does: its `needs` are not run; they appear to the
    /// job as succeeded with no outputs.
    pub job_filter: Option<String>,
    /// The job timeout when `timeout-minutes` is not given (GitHub: 360 minutes).
    pub default_job_timeout: Duration,
    /// Fields of the `github` context (and so of the `GITHUB_*` variables) the caller knows
    /// better than a local run can: a Gitea task's `run_id`, `run_number`, `run_attempt`,
    /// `workflow`, … Applied over the computed values.
    pub github_overrides: Vec<(String, runnel_expr::Value)>,
    /// The cache and artifact services jobs get (`ACTIONS_CACHE_URL`, …): asked once per job
    /// after its environment is prepared, released at teardown. `None`: no such variables.
    pub grants: Option<Arc<dyn RunnerGrants>>,
    /// `--matrix KEY:VALUE` (act's flag): only matrix legs whose `KEY` is one of the given
    /// values run (a leg without that key runs); legs filtered out are not run or reported.
    /// Empty: every leg runs. Applies to the run's own jobs, not to called workflows.
    pub matrix_filter: Vec<(String, String)>,
    /// Lift the stock artifact actions' "not GitHub" guard as their files are copied into the
    /// job, when the server is one the guard refuses (`actions::ghes`; the Gitea runner's
    /// `runner.patch_actions`). `false`: every action runs exactly as published.
    pub patch_actions: bool,
}

impl RunOptions {
    /// Options for a local run on this machine over `workspace_source`: runner `runnel`,
    /// github.com URLs, no secrets, four jobs at a time, GitHub's 360-minute job timeout.
    pub fn local(workspace_source: Option<PathBuf>) -> RunOptions {
        RunOptions {
            runner: RunnerInfo::this_machine("runnel"),
            server: ServerUrls::github(),
            workspace_source,
            actions_url: "https://github.com".to_owned(),
            actions_cache: default_actions_cache(),
            action_source: None,
            debug: false,
            secrets: BTreeMap::new(),
            max_parallel_jobs: 4,
            job_filter: None,
            default_job_timeout: Duration::from_secs(360 * 60),
            github_overrides: Vec::new(),
            grants: None,
            matrix_filter: Vec::new(),
            mask: Vec::new(),
            local_checkout: false,
            env: BTreeMap::new(),
            patch_actions: true,
        }
    }
}

/// Where runnel keeps what it caches for a local user: `$XDG_CACHE_HOME/runnel`, else
/// `~/.cache/runnel`, else `runnel` under the temp directory.
pub fn cache_home() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })
        .unwrap_or_else(std::env::temp_dir)
        .join("runnel")
}

/// `actions` under [`cache_home`].
fn default_actions_cache() -> PathBuf {
    cache_home().join("actions")
}

/// How one step ended, for summaries.
#[derive(Debug, Clone)]
pub struct StepSummary {
    pub index: usize,
    pub id: Option<String>,
    pub name: String,
    pub outcome: StepStatus,
    pub conclusion: StepStatus,
    pub duration: Duration,
}

/// How one job instance ended.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub job_id: String,
    /// Display name (with the matrix suffix).
    pub name: String,
    /// Unique key within the run (`build`, `test-1`).
    pub key: String,
    /// What `needs.<id>.result` shows.
    pub result: JobResult,
    /// The job failed but has `continue-on-error`: it neither fails the run nor triggers
    /// fail-fast.
    pub continue_on_error: bool,
    /// `jobs.<id>.outputs`, evaluated at job end, in declaration order.
    pub outputs: Vec<(String, String)>,
    pub duration: Duration,
    pub steps: Vec<StepSummary>,
    /// For a job that calls a reusable workflow: the called workflow's job instances, keyed
    /// `<caller key>/<called key>` and named `<caller name> / <called name>` (nested calls
    /// likewise). [`WorkflowResult::jobs`] lists them right after their caller.
    pub called: Vec<JobOutcome>,
}

/// How a whole run ended.
#[derive(Debug, Clone)]
pub struct WorkflowResult {
    /// `Failure` if a job failed (not counting `continue-on-error` jobs), `Cancelled` if the
    /// run was cancelled, else `Success`.
    pub result: JobResult,
    /// Every job instance in the order they were planned (skipped ones included), each
    /// followed by the job instances of the workflow it calls, if it calls one.
    pub jobs: Vec<JobOutcome>,
    pub duration: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_at_another_origin_keeps_its_paths() {
        let server =
            ServerUrls::gitea("http://gitea.example.com/sub/").at_origin("http://10.0.2.101:80/");
        assert_eq!(server.server_url, "http://10.0.2.101:80/sub");
        assert_eq!(server.api_url, "http://10.0.2.101:80/sub/api/v1");
        assert_eq!(server.graphql_url, "");
        assert_eq!(
            replace_origin("https://h:3000?x=1", "http://10.0.2.2:3000"),
            "http://10.0.2.2:3000?x=1"
        );
        assert_eq!(replace_origin("not a url", "http://o"), "not a url");
    }
}
