//! `runnel bug-report`: what a bug report needs, to paste into an issue — runnel's version, the
//! OS and architecture, the CPUs (what the Gitea runner's command prints, its Go version aside),
//! and the kernel's release on Linux. Must not: contact anything or read the config (nothing
//! secret can leak through it).

use anyhow::Result;

use crate::Outcome;
use crate::common::version;

pub(crate) fn run() -> Result<Outcome> {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    println!("Runner version: {}", version());
    println!(
        "OS/Arch:        {}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!("CPUs:           {cpus}");
    if let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        println!("Kernel:         {}", release.trim());
    }
    Ok(Outcome::Success)
}
