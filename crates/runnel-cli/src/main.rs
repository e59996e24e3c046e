//! The `runnel` binary: parses arguments, calls one function per subcommand, maps the outcome to
//! an exit code. Logic that a test could want without spawning a process belongs in a library.
//!
//! Exit codes: 0 success; 1 the thing checked failed (a workflow has errors, a job failed);
//! 2 usage or environment errors (unreadable file, bad JSON, bad flag).

mod args;
mod bench;
mod bug_report;
mod cache_cmd;
mod cache_server;
mod common;
mod config_cmd;
mod daemon;
mod discover;
mod doctor;
mod eval;
mod exec;
mod generate_config;
mod local_config;
mod plan;
mod register;
mod run;
mod terminal;
mod validate;
mod vm_cmd;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

/// What a subcommand reports when it ran to the end.
pub(crate) enum Outcome {
    Success,
    /// The command worked, and what it checked failed.
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `runnel -c FILE VERB` as the Gitea runner's command lines have it.
    let global = cli.config;
    let unused = |verb: &str| {
        if let Some(path) = &global {
            eprintln!(
                "runnel: warning: `runnel {verb}` reads no config file; -c {} is ignored",
                path.display()
            );
        }
    };
    let result = match cli.command {
        Command::Validate(a) => {
            unused("validate");
            validate::run(&a)
        }
        Command::Eval(a) => {
            unused("eval");
            eval::run(&a)
        }
        Command::Plan(a) => {
            unused("plan");
            plan::run(&a)
        }
        Command::Run(mut a) => {
            a.config = a.config.or(global);
            run::run(&a)
        }
        Command::Exec(a) => {
            unused("exec");
            exec::run(*a)
        }
        Command::Register(mut a) => {
            a.config = a.config.or(global);
            register::run(&a)
        }
        Command::Daemon(mut a) => {
            a.config = a.config.or(global);
            daemon::run(&a)
        }
        Command::Config(mut a) => {
            a.config = a.config.or(global);
            config_cmd::run(&a)
        }
        Command::GenerateConfig => {
            eprintln!("runnel: `generate-config` is deprecated, use `runnel config generate`");
            generate_config::run()
        }
        Command::BugReport => {
            unused("bug-report");
            bug_report::run()
        }
        Command::Doctor(mut a) => {
            a.config = a.config.or(global);
            doctor::run(&a)
        }
        Command::Cache(mut a) => {
            a.default_config(global);
            cache_cmd::run(&a)
        }
        Command::CacheServer(mut a) => {
            a.config = a.config.or(global);
            cache_server::run(&a)
        }
        Command::Vm(a) => vm_cmd::run(a, global),
        Command::BenchParse(a) => bench::run(&a),
        // stderr is the guest's connection too: nothing is said, the exit code tells.
        Command::VmForward { addr } => {
            return match runnel_backends::vm::forward::forward_stdio(&addr) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(1),
            };
        }
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(error) => {
            eprintln!("runnel: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
