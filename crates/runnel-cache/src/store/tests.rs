//! GitHub's key matching and cache isolation by ref, table-driven.

use super::{Entry, RefScope, select_entry};

fn entry(id: u64, key: &str, version: &str, created_seq: u64) -> Entry {
    scoped(id, None, key, version, created_seq)
}

fn scoped(id: u64, git_ref: Option<&str>, key: &str, version: &str, created_seq: u64) -> Entry {
    Entry {
        id,
        repository: "o/r".to_owned(),
        git_ref: git_ref.map(str::to_owned),
        key: key.to_owned(),
        version: version.to_owned(),
        size: 1,
        created_seq,
        created_at_ms: 0,
    }
}

#[test]
fn matching_follows_github() {
    let entries = [
        entry(1, "linux-deps-aaa", "v1", 1),
        entry(2, "linux-deps-bbb", "v1", 3),
        entry(3, "linux-deps", "v1", 2),
        entry(4, "linux-deps-ccc", "v2", 9),
        entry(5, "Linux-tools", "v1", 4),
    ];
    // (keys, version, expected id)
    let cases: &[(&[&str], &str, Option<u64>)] = &[
        (&["linux-deps-aaa"], "v1", Some(1)),
        // An exact match beats a newer prefix match of the same key.
        (&["linux-deps"], "v1", Some(3)),
        // Prefix: newest wins.
        (&["linux-deps-"], "v1", Some(2)),
        // The first key with a match decides, even if a later key matches something newer.
        (&["nope", "linux-deps-a", "linux-"], "v1", Some(1)),
        // Version scopes everything.
        (&["linux-deps-ccc"], "v1", None),
        (&["linux-"], "v2", Some(4)),
        // Case-sensitive.
        (&["linux-tools"], "v1", None),
        (&["Linux-"], "v1", Some(5)),
        (&[], "v1", None),
    ];
    for (keys, version, expected) in cases {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let got = select_entry(&entries, None, &keys, version).map(|e| e.id);
        assert_eq!(got, *expected, "keys {keys:?} version {version}");
    }
}

fn refs(own: &str, fallback: &[&str]) -> RefScope {
    RefScope {
        own: own.to_owned(),
        fallback: fallback.iter().map(|r| (*r).to_owned()).collect(),
    }
}

#[test]
fn each_ref_reads_its_own_scope_first_then_its_fallbacks() {
    const MAIN: &str = "refs/heads/main";
    const DEV: &str = "refs/heads/dev";
    const PR: &str = "refs/pull/1/head";
    let entries = [
        scoped(1, Some(MAIN), "deps-main", "v", 1),
        scoped(2, Some(DEV), "deps-dev", "v", 2),
        // The pull request's save is the newest prefix match of `deps-`.
        scoped(3, Some(PR), "deps-pr", "v", 3),
        scoped(4, Some(MAIN), "tools-a", "v", 4),
        // Saved before scopes: everyone's, searched last.
        scoped(5, None, "legacy-x", "v", 5),
        scoped(6, Some(PR), "tools-b", "v", 6),
        scoped(7, None, "deps-old", "v", 7),
    ];
    let main = refs(MAIN, &[MAIN]);
    let pr = refs(PR, &[DEV, MAIN]);
    let other_pr = refs("refs/pull/2/head", &[MAIN]);
    // (reader, keys, expected id)
    let cases: &[(&RefScope, &[&str], Option<u64>)] = &[
        // The default branch never sees a pull request's entries.
        (&main, &["deps-"], Some(1)),
        (&main, &["tools-"], Some(4)),
        (&main, &["deps-pr"], None),
        // A pull request: its own entries first, for every key, before its base branch.
        (&pr, &["deps-"], Some(3)),
        (&pr, &["deps-main", "deps-"], Some(3)),
        // Its base branch before the default branch.
        (&pr, &["deps-dev", "deps-main"], Some(2)),
        (&pr, &["deps-main"], Some(1)),
        // Another pull request sees neither this one's entries nor an unlisted base.
        (&other_pr, &["deps-"], Some(1)),
        (&other_pr, &["tools-"], Some(4)),
        // Entries without a ref are everyone's, after every ref's own.
        (&main, &["legacy-"], Some(5)),
        (&pr, &["legacy-x"], Some(5)),
        (&main, &["deps-old"], Some(7)),
        (&pr, &["nothing"], None),
    ];
    for (reader, keys, expected) in cases {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let got = select_entry(&entries, Some(reader), &keys, "v").map(|e| e.id);
        assert_eq!(got, *expected, "{} reads {keys:?}", reader.own);
    }
    // An unscoped reader (no-auth server, a token from before scopes) reads unscoped entries.
    let all = ["deps-".to_owned(), "legacy-".to_owned()];
    assert_eq!(
        select_entry(&entries, None, &all, "v").map(|e| e.id),
        Some(7)
    );
    let tools = ["tools-".to_owned()];
    assert_eq!(select_entry(&entries, None, &tools, "v"), None);
}
