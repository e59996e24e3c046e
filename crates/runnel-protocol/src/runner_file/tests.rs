use std::path::Path;

use super::RunnerFile;

fn sample() -> RunnerFile {
    RunnerFile {
        id: 7,
        uuid: "0b7e2f9c-1111-2222-3333-444455556666".to_owned(),
        name: "builder".to_owned(),
        token: "abc123".to_owned(),
        address: "https://gitea.example.com".to_owned(),
        labels: vec![
            "ubuntu-latest:docker://node:20".to_owned(),
            "self:host".to_owned(),
        ],
        ephemeral: false,
    }
}

#[test]
fn renders_in_the_peer_layout() {
    let text = sample().render();
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("  \""))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(
        keys,
        [
            "WARNING",
            "id",
            "uuid",
            "name",
            "token",
            "address",
            "labels",
            "ephemeral"
        ]
    );
    assert!(text.contains("\n  \"id\": 7,\n"), "{text}");
    assert!(text.ends_with("}\n"));
}

#[test]
fn reads_a_peer_file_and_ignores_warning_and_unknown_keys() {
    // Shape as the peer writes it (older files lack `ephemeral`).
    let text = r#"{
  "WARNING": "anything",
  "id": 3,
  "uuid": "u",
  "name": "n",
  "token": "t",
  "address": "http://127.0.0.1:3000",
  "labels": ["ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest"],
  "future_key": 1
}"#;
    let file = RunnerFile::parse(Path::new(".runner"), text);
    let file = match file {
        Ok(file) => file,
        Err(e) => panic!("parse failed: {e}"),
    };
    assert_eq!(file.id, 3);
    assert!(!file.ephemeral);
    assert_eq!(file.identity().uuid, "u");
}

#[test]
fn round_trips_through_disk() {
    let dir = tempfile::tempdir().map_err(|e| e.to_string());
    let dir = match dir {
        Ok(dir) => dir,
        Err(e) => panic!("tempdir: {e}"),
    };
    let path = dir.path().join(".runner");
    let written = sample();
    if let Err(e) = written.save(&path) {
        panic!("save: {e}");
    }
    match RunnerFile::load(&path) {
        Ok(read) => assert_eq!(read, written),
        Err(e) => panic!("load: {e}"),
    }
}

#[test]
fn reports_the_path_of_a_broken_file() {
    match RunnerFile::parse(Path::new("/x/.runner"), "{") {
        Ok(_) => panic!("accepted broken JSON"),
        Err(e) => assert_eq!(e.to_string(), "runner file /x/.runner is not valid"),
    }
}
