use super::{ActionReference, RemoteAction};

fn remote(url: &str, repository: &str, path: &str, git_ref: &str, uses: &str) -> ActionReference {
    ActionReference::Remote(RemoteAction {
        uses: uses.to_owned(),
        repository_url: url.to_owned(),
        repository: repository.to_owned(),
        path: path.to_owned(),
        git_ref: git_ref.to_owned(),
    })
}

#[test]
fn uses_forms() {
    let gitea = "https://gitea.example";
    let cases: &[(&str, &str, Option<ActionReference>)] = &[
        (
            "actions/checkout@v4",
            "https://github.com",
            Some(remote(
                "https://github.com/actions/checkout",
                "actions/checkout",
                "",
                "v4",
                "actions/checkout@v4",
            )),
        ),
        (
            "o/r/sub/dir@main",
            "file:///srv/mirror/",
            Some(remote(
                "file:///srv/mirror/o/r",
                "o/r",
                "sub/dir",
                "main",
                "o/r/sub/dir@main",
            )),
        ),
        (
            "o/r@v1",
            "self",
            Some(remote(
                "https://gitea.example/o/r",
                "o/r",
                "",
                "v1",
                "o/r@v1",
            )),
        ),
        (
            "https://code.example/o/r.git/x@abc",
            "https://github.com",
            Some(remote(
                "https://code.example/o/r",
                "o/r",
                "x",
                "abc",
                "https://code.example/o/r.git/x@abc",
            )),
        ),
        (
            "./.github/actions/x",
            "https://github.com",
            Some(ActionReference::Local("./.github/actions/x".to_owned())),
        ),
        (
            "docker://alpine:3",
            "https://github.com",
            Some(ActionReference::Container("alpine:3".to_owned())),
        ),
        ("owner-only@v1", "https://github.com", None),
        ("o/r@", "https://github.com", None),
        ("o/r", "https://github.com", None),
    ];
    for (uses, base, expected) in cases {
        assert_eq!(
            &ActionReference::parse(uses, base, gitea),
            expected,
            "{uses} with {base}"
        );
    }
}
