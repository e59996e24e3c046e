use super::image_os;

/// (image, runs-on, ImageOS); the rows follow the Gitea runner v3.3's behaviour.
const CASES: &[(Option<&str>, &[&str], Option<&str>)] = &[
    (
        Some("docker.gitea.com/runner-images:ubuntu-24.04"),
        &["ubuntu-latest"],
        Some("ubuntu24"),
    ),
    (
        Some("docker.gitea.com/runner-images:ubuntu-22.04-full"),
        &["x"],
        Some("ubuntu22"),
    ),
    (
        Some("ghcr.io/catthehacker/ubuntu:act-22.04"),
        &["ubuntu-22.04"],
        Some("ubuntu22"),
    ),
    (
        Some("ghcr.io/catthehacker/ubuntu:act-22.04"),
        &["ubuntu-latest"],
        Some("ubuntu20"),
    ),
    (Some("app:22.04"), &["linux"], Some("linux")),
    (
        Some("mcr.microsoft.com/windows:win2022"),
        &[],
        Some("win2022"),
    ),
    (
        Some("localhost:5000/ubuntu2404"),
        &["self-hosted"],
        Some("selfhosted"),
    ),
    (Some("node:20-bookworm"), &[], None),
    (None, &["ubuntu-24.04-arm"], Some("ubuntu24")),
    (None, &["self-hosted", "linux"], Some("linux")),
    (None, &["macos-14"], Some("macos14")),
    (None, &["linux", ""], Some("linux")),
    (None, &[], None),
];

#[test]
fn image_os_from_the_image_tag_then_the_last_label() {
    for (image, runs_on, expected) in CASES {
        let runs_on: Vec<String> = runs_on.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(
            image_os(*image, &runs_on).as_deref(),
            *expected,
            "{image:?} {runs_on:?}"
        );
    }
}
