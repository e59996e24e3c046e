use super::*;

fn policy<'a>(valid: &'a [String], mount_docker_socket: bool) -> VolumePolicy<'a> {
    let config = DockerBackendConfig {
        mount_docker_socket,
        ..DockerBackendConfig::safe_defaults()
    };
    VolumePolicy {
        valid_volumes: valid,
        ..VolumePolicy::of(&config)
    }
}

fn check(spec: &str, policy: &VolumePolicy<'_>) -> Result<VolumeMount, String> {
    check_volume(spec, policy).map_err(|e| e.to_string())
}

#[test]
fn volumes_go_through_the_allow_list() {
    let valid = ["/srv/cache/*".to_owned(), "data-*".to_owned()];
    let policy = policy(&valid, false);
    let cases = [
        ("/cache", Ok(VolumeMount::Anonymous { target: "/cache".to_owned() })),
        ("/srv/cache/npm:/root/.npm", Ok(VolumeMount::Bind("/srv/cache/npm:/root/.npm".to_owned()))),
        ("/srv//cache/./npm/:/root/.npm:ro", Ok(VolumeMount::Bind("/srv/cache/npm:/root/.npm:ro".to_owned()))),
        ("data-1:/data:ro", Ok(VolumeMount::Bind("data-1:/data:ro".to_owned()))),
        ("/etc:/host-etc", Err("volume `/etc:/host-etc` is not allowed: its source matches none of the backend's valid_volumes (/srv/cache/*, data-*)".to_owned())),
        ("/var/run/docker.sock:/var/run/docker.sock", Err("volume `/var/run/docker.sock:/var/run/docker.sock` would mount the Docker socket: enable mount_docker_socket in the backend config to allow it".to_owned())),
        ("./x:/x", Err("volume `./x:/x`: a bind mount source must be an absolute path".to_owned())),
        ("relative", Err("volume `relative`: the target must be an absolute path".to_owned())),
    ];
    for (spec, expected) in cases {
        assert_eq!(check(spec, &policy), expected, "{spec}");
    }
    let socket = policy_with_socket();
    assert!(check("/var/run/docker.sock:/var/run/docker.sock", &socket).is_ok());
}

fn policy_with_socket() -> VolumePolicy<'static> {
    policy(&[], true)
}

#[test]
fn dot_dot_cannot_climb_out_of_an_allowed_directory() {
    let valid = ["/srv/data/**".to_owned(), "/srv/data/*".to_owned()];
    let policy = policy(&valid, false);
    for spec in [
        "/srv/data/../../../var/run:/x",
        "/srv/data/..:/x",
        "/srv/data/x/../../../:/x",
    ] {
        assert_eq!(
            check(spec, &policy),
            Err(format!(
                "volume `{spec}`: `..` is not allowed in a bind mount source"
            )),
            "{spec}"
        );
    }
}

#[test]
fn the_socket_its_directories_and_the_root_are_refused_whatever_the_globs_say() {
    let everything = ["*".to_owned(), "/**".to_owned()];
    for mount_docker_socket in [false, true] {
        let policy = policy(&everything, mount_docker_socket);
        for spec in ["/var/run:/x", "/run:/x", "/var:/x", "/var/run/:/x"] {
            assert_eq!(
                check(spec, &policy),
                Err(format!(
                    "volume `{spec}`: it holds the Docker socket, which would hand the job the host's engine"
                )),
                "{spec}"
            );
        }
        for spec in ["/:/host", "//:/host", "/./:/host"] {
            assert_eq!(
                check(spec, &policy),
                Err(format!(
                    "volume `{spec}`: mounting the host's root directory is never allowed"
                )),
                "{spec}"
            );
        }
        let socket = check("/run/docker.sock:/var/run/docker.sock", &policy);
        assert_eq!(socket.is_ok(), mount_docker_socket, "{socket:?}");
    }
}

#[test]
fn links_under_an_allowed_directory_are_followed_before_matching() {
    let base = tempfile::tempdir().expect("temp dir");
    let allowed = base.path().join("allowed");
    std::fs::create_dir_all(allowed.join("real")).expect("setup");
    std::os::unix::fs::symlink("/etc", allowed.join("to-etc")).expect("setup");
    std::os::unix::fs::symlink("/var/run", allowed.join("to-run")).expect("setup");
    std::os::unix::fs::symlink(allowed.join("real"), allowed.join("to-real")).expect("setup");
    let allowed = allowed.display().to_string();
    let valid = [format!("{allowed}/*")];
    let policy = policy(&valid, false);
    assert_eq!(
        check(&format!("{allowed}/real:/x"), &policy),
        Ok(VolumeMount::Bind(format!("{allowed}/real:/x")))
    );
    // The bind names the resolved path: what was checked is what is mounted.
    assert_eq!(
        check(&format!("{allowed}/to-real:/x:ro"), &policy),
        Ok(VolumeMount::Bind(format!("{allowed}/real:/x:ro")))
    );
    // A path that does not exist yet is checked as written (Docker creates it).
    assert_eq!(
        check(&format!("{allowed}/new/dir:/x"), &policy),
        Ok(VolumeMount::Bind(format!("{allowed}/new/dir:/x")))
    );
    let spec = format!("{allowed}/to-etc:/x");
    assert!(
        check(&spec, &policy)
            .is_err_and(|e| e.contains("matches none of the backend's valid_volumes")),
        "{spec}"
    );
    let spec = format!("{allowed}/to-run:/x");
    assert!(
        check(&spec, &policy).is_err_and(|e| e.contains("holds the Docker socket")),
        "{spec}"
    );
    let spec = format!("{allowed}/to-etc/passwd:/x");
    assert!(check(&spec, &policy).is_err(), "{spec}");
}

#[test]
fn a_pattern_under_a_linked_directory_still_matches() {
    let base = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(base.path().join("disk/data/cache")).expect("setup");
    std::os::unix::fs::symlink(base.path().join("disk/data"), base.path().join("data"))
        .expect("setup");
    let valid = [format!("{}/data/*", base.path().display())];
    let policy = policy(&valid, false);
    let spec = format!("{}/data/cache:/cache", base.path().display());
    let real = std::fs::canonicalize(base.path().join("disk/data/cache")).expect("real");
    assert_eq!(
        check(&spec, &policy),
        Ok(VolumeMount::Bind(format!("{}:/cache", real.display())))
    );
}

#[test]
fn glob_matches_like_a_shell() {
    let cases = [
        ("*", "/anything/at/all", true),
        ("/srv/*", "/srv/a/b", true),
        ("/srv/?", "/srv/a", true),
        ("/srv/?", "/srv/ab", false),
        ("a*b*c", "axxbyyc", true),
        ("a*b*c", "axxbyy", false),
        ("exact", "exact", true),
        ("", "x", false),
    ];
    for (pattern, text, expected) in cases {
        assert_eq!(glob_match(pattern, text), expected, "{pattern} vs {text}");
    }
}
