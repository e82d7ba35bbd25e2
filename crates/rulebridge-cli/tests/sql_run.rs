//! `rulebridge run` into a SQL table: the shipped `user_sync` flow against an SQLite file
//! (`RULEBRIDGE_DATABASE_USERS_DB`), the table created by the provider's migration on the
//! first run.

use std::path::Path;
use std::process::Command;

use insta_cmd::get_cargo_bin;
use serde_json::Value;

fn run(dir: &Path, database: &Path, input: &Path) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(get_cargo_bin("rulebridge"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("RULEBRIDGE_DATABASE_USERS_DB", database)
        .args(["run", "user_sync", "--rules"])
        .arg(root.join("rules"))
        .arg("--input")
        .arg(input)
        .output()
        .expect("rulebridge runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn statuses(outcomes: &[Value]) -> Vec<(String, String)> {
    outcomes
        .iter()
        .map(|o| {
            (
                o["status"].as_str().unwrap_or_default().to_string(),
                o["target_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn user_sync_creates_then_updates_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("users.db");
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/data/user_sync.ndjson");
    let first = run(dir.path(), &database, &input);
    assert_eq!(
        statuses(&first),
        [
            ("created".into(), "1".into()),
            ("created".into(), "2".into())
        ]
    );
    // The same users again, one renamed: found by e-mail and updated. The other one's payload
    // carries `last_synced_at: now()`, so it is unchanged only when both runs fall in the same
    // second; either way it keeps its row.
    let text = std::fs::read_to_string(&input).expect("input");
    let changed = dir.path().join("again.ndjson");
    std::fs::write(
        &changed,
        text.replace("Grace Hopper", "Grace Brewster Hopper"),
    )
    .expect("write");
    let second = statuses(&run(dir.path(), &database, &changed));
    assert!(
        ["unchanged", "updated"].contains(&second[0].0.as_str()) && second[0].1 == "1",
        "{second:?}"
    );
    assert_eq!(second[1], ("updated".into(), "2".into()));
    assert!(database.is_file());
}
