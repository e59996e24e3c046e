//! The `vm` backend's errors: what failed (booting, the agent, a request), with the job or
//! path it is about and the cause kept as `source()`. They leave the backend as
//! `BackendError::Backend`.

use std::path::PathBuf;
use std::time::Duration;

use runnel_engine::backend::BackendError;

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("the vm backend runs no job containers (the job asks for image `{image}`)")]
    ContainerUnsupported { job_key: String, image: String },
    #[error(
        "service `{service}` needs Docker's engine in the VM, and image `{image}` has none \
         (use an image with Docker, such as debian-bookworm-docker)"
    )]
    ServicesNeedDocker { image: String, service: String },
    #[error("service `{service}` did not start in the VM ({exit}):\n{output}")]
    Service {
        service: String,
        exit: String,
        output: String,
    },
    #[error(
        "VM image `{image}` is not built: {dir} lacks {missing} (build it with `runnel vm image build`)"
    )]
    ImageMissing {
        image: String,
        dir: PathBuf,
        missing: &'static str,
    },
    #[error("the guest agent {path} is missing (build runnel-vm-agent, or set RUNNEL_VM_AGENT)")]
    AgentMissing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}` failed: {detail}")]
    Tool { program: String, detail: String },
    #[error(
        "the VM did not come up within {} s; QEMU was killed. Last lines of its console:\n{console}",
        timeout.as_secs()
    )]
    BootTimeout { timeout: Duration, console: String },
    #[error(
        "QEMU ended while the VM was booting ({status}). Last lines of its console and log:\n{console}"
    )]
    QemuExited { status: String, console: String },
    #[error("cancelled while the VM was booting")]
    BootCancelled,
    #[error("the guest agent went away (the VM stopped or its channel broke)")]
    AgentGone,
    #[error("the guest agent sent an unreadable frame")]
    Protocol(#[source] runnel_vm_agent::protocol::DecodeError),
    #[error("{message}")]
    Agent { message: String },
    #[error("the image's start hook {hook} failed ({exit}); its last lines:\n{output}")]
    StartHook {
        hook: &'static str,
        exit: String,
        output: String,
    },
    #[error(transparent)]
    Preload(#[from] super::preload::PreloadError),
    #[error(
        "the runner's executable {} has white space in its path, which QEMU's forward to the \
         cache server cannot take (move it, or set vm.network: nat)",
        path.display()
    )]
    ForwarderPath { path: PathBuf },
    #[error(
        "the vm disk_size ({} MiB) is smaller than image `{image}`'s root disk ({} MiB): a \
         guest's disk can grow, not shrink",
        size >> 20,
        base >> 20
    )]
    DiskTooSmall { image: String, size: u64, base: u64 },
    #[error(
        "virtiofsd, which shares the job's directory with the guest, did not start (`{command}`): \
         {detail} (install it with tests/vm/virtiofsd.sh, or set vm.share: 9p)"
    )]
    Virtiofsd { command: String, detail: String },
    #[error("the guest agent answered request {id} with an unexpected message")]
    Unexpected { id: u32 },
}

/// What the backend was doing when `error` happened: the first words of the job's error.
/// The agent gone means the VM is (QEMU killed, the guest crashed): [`BackendError::Lost`],
/// so the job ends there instead of failing each step that is left.
pub(crate) fn into_backend(operation: impl Into<String>, error: VmError) -> BackendError {
    let operation = operation.into();
    let source = Box::new(error);
    if matches!(*source, VmError::AgentGone) {
        BackendError::Lost { operation, source }
    } else {
        BackendError::Backend { operation, source }
    }
}
