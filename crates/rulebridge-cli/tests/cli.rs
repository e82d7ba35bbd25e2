//! The command-line contract: exit codes, output formats, the dry run.

use std::process::Command;

use insta_cmd::{assert_cmd_snapshot, get_cargo_bin};

fn rulebridge() -> Command {
    let mut cmd = Command::new(get_cargo_bin("rulebridge"));
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("NO_COLOR", "1");
    cmd
}

#[test]
fn lint_rules_is_clean() {
    assert_cmd_snapshot!(rulebridge().args(["lint", "rules"]));
}

#[test]
fn lint_reports_every_problem_with_location() {
    assert_cmd_snapshot!(rulebridge().args([
        "lint",
        "--format",
        "concise",
        "tests/fixtures/diagnostics/RB1002-unknown-function.yaml",
        "tests/fixtures/diagnostics/RB2003-unknown-target-field.yaml",
    ]));
}

#[test]
fn lint_human_format() {
    assert_cmd_snapshot!(rulebridge().args([
        "lint",
        "tests/fixtures/diagnostics/RB3002-unreachable-row.yaml"
    ]));
}

#[test]
fn lint_json_format() {
    assert_cmd_snapshot!(rulebridge().args([
        "lint",
        "--format",
        "json",
        "tests/fixtures/diagnostics/RB2002-number-into-string.yaml"
    ]));
}

#[test]
fn lint_sarif_format() {
    assert_cmd_snapshot!(rulebridge().args([
        "lint",
        "--format",
        "sarif",
        "tests/fixtures/diagnostics/RB1003-too-many-arguments.yaml"
    ]));
}

#[test]
fn lint_warnings_fail_only_when_denied() {
    let file = "tests/fixtures/diagnostics/RB3004-no-default-row.yaml";
    let ok = rulebridge().args(["lint", file]).status().expect("runs");
    assert_eq!(ok.code(), Some(0));
    let denied = rulebridge()
        .args(["lint", "--deny-warnings", file])
        .status()
        .expect("runs");
    assert_eq!(denied.code(), Some(1));
}

#[test]
fn lint_missing_path_cannot_run() {
    assert_cmd_snapshot!(rulebridge().args(["lint", "no/such/dir"]));
}

#[test]
fn test_runs_the_rule_set_fixtures() {
    assert_cmd_snapshot!(rulebridge().args(["test", "rules"]));
}

#[test]
fn plan_shows_the_flow() {
    assert_cmd_snapshot!(rulebridge().args(["plan", "lead_to_hubspot"]));
}

/// `last_synced_at: now()` is marked as a time stamp the ledger does not compare.
#[test]
fn plan_marks_fields_stamped_from_the_clock() {
    assert_cmd_snapshot!(rulebridge().args(["plan", "user_sync"]));
}

#[test]
fn plan_as_json() {
    assert_cmd_snapshot!(rulebridge().args(["plan", "employee_to_jamf", "--format", "json"]));
}

#[test]
fn dry_run_outcomes_in_input_order() {
    assert_cmd_snapshot!(rulebridge().args([
        "run",
        "lead_to_hubspot",
        "--input",
        "examples/data/leads-with-errors.ndjson",
        "--dry-run",
    ]));
}

#[test]
fn dry_run_never_prints_secrets() {
    let secret = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
    let input = r#"{"crm_id":"c","employee_id":"E1","email":"a@b.co","full_name":"A B","department":"IT","device":{"serial":"S1"}}"#;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("in.ndjson");
    std::fs::write(&path, input).expect("write");
    let out = rulebridge()
        .args(["run", "employee_to_jamf", "--dry-run", "--input"])
        .arg(&path)
        .env("JAMF_ENCRYPTION_KEY", secret)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(r#""status":"dry_run""#), "{stdout}");
    assert!(!stdout.contains(secret));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(secret));
}

#[test]
fn run_without_a_needed_secret_cannot_run() {
    let out = rulebridge()
        .args([
            "run",
            "employee_to_jamf",
            "--dry-run",
            "--input",
            "examples/data/leads.ndjson",
        ])
        .env_remove("JAMF_ENCRYPTION_KEY")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("JAMF_ENCRYPTION_KEY"), "{stderr}");
}

#[test]
fn readme_command_runs_against_the_sandbox() {
    let out = rulebridge()
        .args([
            "run",
            "lead_to_hubspot",
            "--input",
            "examples/data/leads.ndjson",
            "--sandbox",
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains(r#""status":"created""#))
            .count(),
        5,
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds 5 contacts"), "{stderr}");
    // The fresh sandbox portal got Acme's custom properties first, and said so.
    assert!(
        stderr.contains(
            "created 4 field(s) of hubspot.contact: lead_owner_team, lead_source, tags, form_submitted_at"
        ),
        "{stderr}"
    );
}

#[test]
fn schema_prints_the_rule_file_schema() {
    let out = rulebridge().arg("schema").output().expect("runs");
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(schema, rulebridge::syntax::schema::rule_file_schema());
}

#[test]
fn several_flows_run_in_dependency_order_each_on_its_input() {
    // Listed out of order; one input from a directory, one named.
    assert_cmd_snapshot!(rulebridge().args([
        "run",
        "comment_to_task_crm",
        "task_to_task_crm",
        "project_to_task_crm",
        "client_to_task_crm",
        "user_to_task_crm",
        "--input",
        "examples/data/task_crm",
        "--input",
        "client_to_task_crm=examples/data/task_crm/client_to_task_crm.ndjson",
        "--dry-run",
    ]));
}

#[test]
fn several_flows_without_an_input_each_cannot_run() {
    let out = rulebridge()
        .args([
            "run",
            "client_to_task_crm",
            "project_to_task_crm",
            "--input",
            "client_to_task_crm=examples/data/task_crm/client_to_task_crm.ndjson",
            "--dry-run",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no input for project_to_task_crm"),
        "{stderr}"
    );
}
