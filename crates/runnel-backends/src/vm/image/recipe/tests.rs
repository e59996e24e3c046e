//! Tests of the image recipe (kept out of recipe.rs, whose text is hashed into image ids).

use super::*;

/// A failing command's error names the step, the command line and what it said last.
#[test]
fn a_failing_step_says_which_command_and_why() {
    let error = step(
        "make the root file system (ext4)",
        Command::new("sh").args(["-c", "echo working; echo 'no space left' >&2; exit 3"]),
    )
    .expect_err("it fails");
    let text = error.to_string();
    assert!(
        text.starts_with(
            "make the root file system (ext4): `sh -c echo working; echo 'no space left' >&2; \
             exit 3` failed: exit status: 3\nno space left"
        ),
        "{text}"
    );
    let missing = step("fetch", &mut Command::new("/nonexistent/apt-get")).expect_err("fails");
    assert!(missing.to_string().contains("cannot start it"), "{missing}");
    assert!(step("fine", &mut Command::new("true")).is_ok());
}

/// The initramfs lists parents before their children, relative to its root.
#[test]
fn the_cpio_list_has_parents_first() {
    let temp = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(temp.path().join("lib/modules")).expect("create");
    std::fs::write(temp.path().join("lib/modules/order"), "").expect("write");
    std::fs::write(temp.path().join("init"), "").expect("write");
    let mut names = Vec::new();
    list_tree(temp.path(), Path::new("."), &mut names).expect("list");
    let names: Vec<String> = names.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(
        names,
        [
            ".",
            "./init",
            "./lib",
            "./lib/modules",
            "./lib/modules/order"
        ]
    );
}
