//! The Docker backend (bollard): a job is a pod — the job container owns the network
//! namespace, services join it, names resolve through /etc/hosts.
