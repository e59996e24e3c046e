//! The host backend: steps run as process groups on this machine in a per-job work directory.
