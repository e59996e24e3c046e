//! GitHub's key matching, table-driven.

use super::{Entry, select_entry};

fn entry(id: u64, key: &str, version: &str, created_seq: u64) -> Entry {
    Entry {
        id,
        repository: "o/r".to_owned(),
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
        let got = select_entry(&entries, &keys, version).map(|e| e.id);
        assert_eq!(got, *expected, "keys {keys:?} version {version}");
    }
}
