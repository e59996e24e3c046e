use super::*;

const KERNEL: &str = "linux-image-6.1.0-57-amd64";

/// An image's content as a build leaves it, without building.
fn fake_content(store: &ImageStore, id: &str, bytes: usize) {
    let dir = store.root().join("by-id").join(id);
    std::fs::create_dir_all(&dir).expect("create");
    for file in ["vmlinuz", "initramfs", "rootfs.qcow2"] {
        std::fs::write(dir.join(file), vec![0u8; bytes]).expect("write");
    }
    std::fs::write(dir.join("recipe"), "fake\n").expect("write");
}

fn id_for(store: &ImageStore, recipe: &Recipe) -> String {
    let source = match &recipe.source {
        Source::Debootstrap { suite } => SourceKey::Suite(suite.clone()),
        Source::From(path) => SourceKey::Tree(store.tree_digest(path).expect("digest")),
    };
    recipe_id(&recipe_lines(&source, &recipe.with, KERNEL))
}

fn bookworm(with: &[Extra]) -> Recipe {
    Recipe {
        source: Source::Debootstrap {
            suite: "bookworm".to_owned(),
        },
        with: with.to_vec(),
    }
}

#[test]
fn the_id_is_the_recipes_and_only_the_recipes() {
    let temp = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::new(temp.path());
    let plain = id_for(&store, &bookworm(&[Extra::Git, Extra::Node]));
    assert!(is_id(&plain), "{plain}");
    // The order and repetition of --with do not matter; its content does.
    assert_eq!(
        plain,
        id_for(&store, &bookworm(&[Extra::Node, Extra::Git, Extra::Node]))
    );
    assert_ne!(
        plain,
        id_for(&store, &bookworm(&[Extra::Git, Extra::Node, Extra::Docker]))
    );
    assert_ne!(
        plain,
        id_for(
            &store,
            &Recipe {
                source: Source::Debootstrap {
                    suite: "trixie".to_owned()
                },
                with: vec![Extra::Git, Extra::Node],
            }
        )
    );
    let source = SourceKey::Suite("bookworm".to_owned());
    assert_ne!(
        recipe_id(&recipe_lines(&source, &[], KERNEL)),
        recipe_id(&recipe_lines(&source, &[], "linux-image-6.1.0-58-amd64")),
        "another kernel is another image"
    );
    // A --from tree: by content, not by path or time.
    let tree = temp.path().join("tree");
    std::fs::create_dir_all(tree.join("bin")).expect("create");
    std::fs::write(tree.join("bin/hello"), "one").expect("write");
    let from = Recipe {
        source: Source::From(tree.clone()),
        with: Vec::new(),
    };
    let first = id_for(&store, &from);
    let copy = temp.path().join("copy");
    std::fs::create_dir_all(copy.join("bin")).expect("create");
    std::fs::write(copy.join("bin/hello"), "one").expect("write");
    assert_eq!(
        first,
        id_for(
            &store,
            &Recipe {
                source: Source::From(copy),
                with: Vec::new(),
            }
        )
    );
    std::fs::write(tree.join("bin/hello"), "two").expect("write");
    assert_ne!(first, id_for(&store, &from));
    assert!(matches!(
        store.tree_digest(&temp.path().join("absent")),
        Err(ImageError::FromMissing { .. })
    ));
}

#[test]
fn a_rebuild_of_a_built_recipe_only_points_the_name() {
    let temp = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::new(temp.path());
    let recipe = bookworm(&[Extra::Git]);
    let id = id_for(&store, &recipe);
    fake_content(&store, &id, 10);
    // A directory of the layout before ids under the name is replaced by the link.
    std::fs::create_dir_all(temp.path().join("debian-bookworm")).expect("create");
    std::fs::write(temp.path().join("debian-bookworm/vmlinuz"), "old").expect("write");
    let built = store
        .build_with_kernel("debian-bookworm", &recipe, KERNEL)
        .expect("build");
    assert_eq!(
        built,
        Built {
            id: id.clone(),
            dir: temp.path().join("debian-bookworm"),
            reused: true,
        }
    );
    assert_eq!(
        std::fs::read_link(temp.path().join("debian-bookworm")).expect("a link"),
        Path::new("by-id").join(&id)
    );
    assert!(temp.path().join("debian-bookworm/rootfs.qcow2").is_file());
    // Twice: still a no-op.
    assert!(
        store
            .build_with_kernel("debian-bookworm", &recipe, KERNEL)
            .expect("build")
            .reused
    );
    for bad in ["", ".hidden", "a/b", "by-id", "cache", "-x", "a b"] {
        assert!(
            matches!(
                store.build_with_kernel(bad, &recipe, KERNEL),
                Err(ImageError::BadName { .. })
            ),
            "{bad:?}"
        );
    }
}

/// A name moved to new content drops the old content when nothing else names it.
#[test]
fn a_moved_name_drops_the_content_nothing_else_names() {
    let temp = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::new(temp.path());
    let (old, new, kept) = ("1".repeat(32), "2".repeat(32), "3".repeat(32));
    for id in [&old, &new, &kept] {
        fake_content(&store, id, 1);
    }
    store.point("a", &old).expect("point");
    store.point("a", &new).expect("point");
    assert!(!temp.path().join("by-id").join(&old).exists());
    store.point("b", &kept).expect("point");
    store.point("c", &kept).expect("point");
    store.point("b", &new).expect("point");
    assert!(
        temp.path().join("by-id").join(&kept).is_dir(),
        "`c` still names it"
    );
    store.point("a", &new).expect("the same content again");
    assert!(temp.path().join("by-id").join(&new).is_dir());
}

#[test]
fn ls_shows_names_ids_and_sizes_and_rm_keeps_content_another_name_has() {
    let temp = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::new(temp.path());
    assert_eq!(store.list().expect("ls"), []);
    let shared = "a".repeat(32);
    let own = "b".repeat(32);
    fake_content(&store, &shared, 100);
    fake_content(&store, &own, 1000);
    store.point("one", &shared).expect("point");
    store.point("two", &shared).expect("point");
    store.point("three", &own).expect("point");
    // An image of the layout before ids, and what is not an image.
    std::fs::create_dir_all(temp.path().join("legacy")).expect("create");
    std::fs::write(temp.path().join("legacy/vmlinuz"), "k").expect("write");
    std::fs::write(temp.path().join("debian-docker-1234.tar"), "t").expect("write");
    std::fs::create_dir_all(temp.path().join("cache")).expect("create");
    let listed: Vec<(String, Option<String>, u64)> = store
        .list()
        .expect("ls")
        .into_iter()
        .map(|i| (i.name, i.id, i.size))
        .collect();
    assert_eq!(
        listed,
        [
            ("legacy".to_owned(), None, 1),
            ("one".to_owned(), Some(shared.clone()), 305),
            ("three".to_owned(), Some(own.clone()), 3005),
            ("two".to_owned(), Some(shared.clone()), 305),
        ]
    );
    // Another name has the content: only the name goes.
    assert_eq!(store.remove("one").expect("rm"), Removed { content: None });
    assert!(temp.path().join("by-id").join(&shared).is_dir());
    // The last name: the content goes too.
    assert_eq!(
        store.remove("two").expect("rm"),
        Removed {
            content: Some(shared.clone())
        }
    );
    assert!(!temp.path().join("by-id").join(&shared).exists());
    assert_eq!(
        store.remove("legacy").expect("rm"),
        Removed { content: None }
    );
    assert!(!temp.path().join("legacy").exists());
    assert!(matches!(
        store.remove("one"),
        Err(ImageError::NotFound { .. })
    ));
    let names: Vec<String> = store
        .list()
        .expect("ls")
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["three"]);
}

/// A QEMU (its command line naming a file of the content) holds the content: `rm` refuses
/// and removes nothing; once it is gone, `rm` works.
#[test]
fn rm_refuses_while_a_vm_of_the_image_runs() {
    let temp = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::new(temp.path());
    let id = "c".repeat(32);
    fake_content(&store, &id, 1);
    store.point("busy", &id).expect("point");
    let kernel = temp.path().join("by-id").join(&id).join("vmlinuz");
    let mut qemu = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec -a qemu-system-x86_64 tail -f {}",
            kernel.canonicalize().expect("canonical").display()
        ))
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    // Until bash has become the "QEMU".
    let cmdline = format!("/proc/{}/cmdline", qemu.id());
    for _ in 0..250 {
        if std::fs::read(&cmdline).is_ok_and(|c| c.starts_with(b"qemu-system")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let refused = store.remove("busy");
    let _ = qemu.kill();
    let _ = qemu.wait();
    match refused {
        Err(ImageError::InUse { pid, .. }) => assert_eq!(pid, qemu.id()),
        other => panic!("rm did not see the running VM: {other:?}"),
    }
    assert!(temp.path().join("busy").exists());
    assert_eq!(
        store.remove("busy").expect("rm"),
        Removed {
            content: Some(id.clone())
        }
    );
}

#[test]
fn the_kernel_package_is_what_linux_image_amd64_depends_on() {
    let text = "linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n  Depends: other\n";
    assert_eq!(kernel_dependency(text).as_deref(), Some(KERNEL));
    assert_eq!(kernel_dependency("linux-image-amd64\n"), None);
    assert_eq!(
        kernel_dependency("  Depends: linux-image-cloud-amd64\n"),
        None
    );
}

#[test]
fn extras_are_named() {
    assert_eq!(Extra::parse("nodejs").expect("node"), Extra::Node);
    assert!(matches!(
        Extra::parse("python"),
        Err(ImageError::UnknownExtra { .. })
    ));
}
