//! The `vm:` section: its keys, per-label overrides, and every wrong value an error naming the
//! key and its place (unknown keys warnings, as in the rest of the file). Table-driven.

use std::time::Duration;

use runnel_config::{Config, ConfigError, VmNetworkMode, VmSection, VmSettings, VmShareMode};

fn read(text: &str) -> Result<runnel_config::Loaded, Vec<String>> {
    match Config::parse("config.yaml", text) {
        Ok(loaded) => Ok(loaded),
        Err(ConfigError::Invalid { problems, .. }) => {
            Err(problems.iter().map(ToString::to_string).collect())
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

#[test]
fn every_vm_key_is_read_and_labels_override_the_section() {
    let text = "\
vm:
  images: /srv/vm-images
  share: virtiofs
  virtiofsd: /opt/virtiofsd/bin/virtiofsd
  cpus: 2
  memory: 2GiB
  disk_size: 10G
  boot_timeout: 90s
  network: nat
  preload_images: [busybox:latest, 'registry:2']
  labels:
    big: {cpus: 4, memory: 8GiB, disk_size: 40GiB}
    Untrusted:
      network: restricted
      boot_timeout: 5m
      preload_images: []
    plain:
";
    let loaded = read(text).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let vm = &loaded.config.vm;
    assert_eq!(
        vm.images.as_deref().and_then(|p| p.to_str()),
        Some("/srv/vm-images")
    );
    assert_eq!(vm.share, VmShareMode::Virtiofs);
    assert_eq!(
        vm.virtiofsd.as_deref().and_then(|p| p.to_str()),
        Some("/opt/virtiofsd/bin/virtiofsd")
    );
    let section = VmSettings {
        cpus: 2,
        memory: 2 * GIB,
        disk_size: Some(10 * GIB),
        boot_timeout: Duration::from_secs(90),
        network: VmNetworkMode::Nat,
        preload_images: vec!["busybox:latest".to_owned(), "registry:2".to_owned()],
    };
    assert_eq!(vm.settings, section);
    // (label, what its jobs get)
    let cases = [
        (
            "big",
            VmSettings {
                cpus: 4,
                memory: 8 * GIB,
                disk_size: Some(40 * GIB),
                ..section.clone()
            },
        ),
        (
            // Labels match ignoring case, as runs-on does.
            "untrusted",
            VmSettings {
                network: VmNetworkMode::Restricted,
                boot_timeout: Duration::from_secs(300),
                preload_images: Vec::new(),
                ..section.clone()
            },
        ),
        ("plain", section.clone()),
        ("not-listed", section.clone()),
    ];
    for (label, expected) in cases {
        assert_eq!(vm.settings_for(label), expected, "label {label}");
    }
}

#[test]
fn an_absent_or_empty_vm_section_is_the_defaults() {
    for text in [
        "",
        "vm:\n",
        "vm:\n  images: ''\n  disk_size: ''\n  labels: {}\n",
        "vm:\n  share: auto\n  virtiofsd: ''\n",
    ] {
        let loaded = read(text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
        assert_eq!(loaded.config.vm, VmSection::default(), "{text:?}");
    }
    let defaults = VmSection::default().settings;
    assert_eq!(
        (defaults.cpus, defaults.memory, defaults.disk_size),
        (1, 1024 * MIB, None)
    );
    assert_eq!(defaults.boot_timeout, Duration::from_secs(180));
    assert_eq!(defaults.network, VmNetworkMode::Restricted);
    assert_eq!(VmSection::default().share, VmShareMode::Auto);
    let nine = read("vm:\n  share: 9p\n").unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(nine.config.vm.share, VmShareMode::NineP);
}

#[test]
fn wrong_vm_values_are_errors_naming_the_key_and_place() {
    // (text, the one error expected)
    let cases = [
        (
            "vm:\n  cpus: 0\n",
            "config.yaml:2:9: vm.cpus: 0 is not a number of vCPUs (1 to 255)",
        ),
        (
            "vm:\n  cpus: two\n",
            "config.yaml:2:9: vm.cpus: `two` is not an integer",
        ),
        (
            "vm:\n  memory: 1024\n",
            "config.yaml:2:11: vm.memory: `1024` is 1024 bytes, less than the 128MiB a guest \
             needs (write a size with its unit, e.g. 2GiB)",
        ),
        (
            "vm:\n  memory: 1.5M\n",
            "config.yaml:2:11: vm.memory: `1.5M` is 1572864 bytes, less than the 128MiB a guest \
             needs (write a size with its unit, e.g. 2GiB)",
        ),
        (
            "vm:\n  memory: 1000.5MiB\n",
            "config.yaml:2:11: vm.memory: `1000.5MiB` is not a whole number of MiB",
        ),
        (
            "vm:\n  memory: lots\n",
            "config.yaml:2:11: vm.memory: `lots` is not a size (e.g. 500M, 10G)",
        ),
        (
            "vm:\n  disk_size: 10parsecs\n",
            "config.yaml:2:14: vm.disk_size: unknown unit `parsecs` in `10parsecs`: use K, M, G or T",
        ),
        (
            "vm:\n  disk_size: 4096\n",
            "config.yaml:2:14: vm.disk_size: `4096` is 4096 bytes; a root disk needs a size such \
             as 10GiB",
        ),
        (
            "vm:\n  boot_timeout: 0s\n",
            "config.yaml:2:17: vm.boot_timeout: a boot takes seconds at least (write e.g. 3m)",
        ),
        (
            "vm:\n  boot_timeout: soon\n",
            "config.yaml:2:17: vm.boot_timeout: invalid duration `soon`: expected a number",
        ),
        (
            "vm:\n  network: bridged\n",
            "config.yaml:2:12: vm.network: `bridged` is not `restricted` or `nat`",
        ),
        (
            "vm:\n  share: nfs\n",
            "config.yaml:2:10: vm.share: `nfs` is not `auto`, `virtiofs` or `9p`",
        ),
        (
            "vm:\n  preload_images: busybox\n",
            "config.yaml:2:19: vm.preload_images: expected a list",
        ),
        (
            "vm:\n  labels: [big]\n",
            "config.yaml:2:11: vm.labels must be a mapping",
        ),
        (
            "vm:\n  labels:\n    big: 4\n",
            "config.yaml:3:10: vm.labels.big must be a mapping",
        ),
        (
            "vm:\n  labels:\n    big: {cpus: 999}\n",
            "config.yaml:3:17: vm.labels.big.cpus: 999 is not a number of vCPUs (1 to 255)",
        ),
        (
            "vm:\n  labels:\n    big:\n      memory: 64MiB\n",
            "config.yaml:4:15: vm.labels.big.memory: `64MiB` is 67108864 bytes, less than the \
             128MiB a guest needs (write a size with its unit, e.g. 2GiB)",
        ),
        (
            "vm:\n  labels:\n    big: {network: open}\n",
            "config.yaml:3:20: vm.labels.big.network: `open` is not `restricted` or `nat`",
        ),
    ];
    for (text, expected) in cases {
        match read(text) {
            Ok(loaded) => panic!("{text:?}: expected an error, read {:?}", loaded.config.vm),
            Err(errors) => assert_eq!(errors, [expected], "{text:?}"),
        }
    }
}

#[test]
fn unknown_vm_keys_are_warnings_naming_the_key() {
    let loaded = read("vm:\n  cpu: 2\n  labels:\n    big: {images: /x, cpus: 2}\n")
        .unwrap_or_else(|e| panic!("{e:?}"));
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "config.yaml:2:3: unknown key `vm.cpu` (ignored)",
            "config.yaml:4:11: unknown key `vm.labels.big.images` (ignored)",
        ]
    );
    assert_eq!(loaded.config.vm.settings_for("big").cpus, 2);
}
