//! Integration tests of the `runnel` binary: its command-line contract (`cli`) and the
//! differential oracles that compare it with GitHub's npm packages (`oracle_expr`,
//! `oracle_workflow`). Everything here spawns the real binary; the oracles also need Node and
//! `tests/oracle/setup.sh`, and run only when `RUN_SLOW_TESTS` is set.

mod act_cases;
mod artifacts_gitea;
mod cache;
mod cache_action;
mod cache_cmd;
mod cache_daemon;
mod cache_fleet;
mod cache_s3;
mod cache_support;
mod chain;
mod chain_daemon;
mod cli;
mod config_cmd;
mod container_options;
mod daemon;
mod daemon_backends;
mod daemon_container_keys;
mod daemon_gitea;
mod daemon_gitea_next;
mod daemon_hash_files;
mod daemon_job_env;
mod daemon_ops;
mod daemon_recovery;
mod daemon_shapes;
mod doctor;
mod exec;
mod file_command_links;
mod k8s_runner;
mod oracle_expr;
mod oracle_workflow;
mod packaging;
mod packaging_deb;
mod packaging_entrypoint;
mod packaging_gitea;
mod packaging_systemd;
mod reusable;
mod run;
mod run_ca_bundle;
mod run_container_flags;
mod run_docker_hooks;
mod run_host_services;
mod run_job_files;
mod run_kubernetes;
mod run_kubernetes_failures;
mod run_node;
mod run_registry;
mod run_summary;
mod run_vm;
mod run_vm_settings;
mod security;
mod security_docker;
mod support;
mod vm_image;
