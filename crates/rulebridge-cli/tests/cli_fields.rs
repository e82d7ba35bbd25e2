//! `rulebridge fields` discovers an object's fields (here from the sandbox), caches them next
//! to the rules, and `lint` then checks mappings against them.

use std::process::Command;

use insta_cmd::get_cargo_bin;

const RULES: &str = r#"
kind: provider
name: hubspot
base_url: https://api.hubapi.com
auth: { type: bearer, token: "${env:HUBSPOT_TOKEN}" }
objects:
  contact:
    operations:
      fields: { method: GET, path: /crm/v3/properties/contacts, results: "$.results[*]", types: { enumeration: enum } }
      create: { method: POST, path: /crm/v3/objects/contacts, body: { properties: "{{ payload }}" }, id: "$.id" }
---
kind: flow
name: leads
source: {}
target: { provider: hubspot, object: contact }
mapping:
  email: email
  firstnam: first_name
  lifecyclestage: { value: prospect }
"#;

fn rulebridge(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(get_cargo_bin("rulebridge"))
        .args(args)
        .arg("--format")
        .arg(if args[0] == "lint" { "concise" } else { "text" })
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("HUBSPOT_TOKEN")
        .output()
        .expect("runs")
}

#[test]
fn discovered_fields_feed_lint() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("rules")).expect("mkdir");
    std::fs::write(dir.path().join("rules/hubspot.yaml"), RULES).expect("write");

    // Nothing is known about the fields yet.
    let before = rulebridge(dir.path(), &["lint", "rules"]);
    assert_eq!(
        before.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&before.stdout)
    );

    let fields = rulebridge(dir.path(), &["fields", "hubspot", "contact", "--sandbox"]);
    let listing = String::from_utf8_lossy(&fields.stdout);
    assert_eq!(
        fields.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&fields.stderr)
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("lifecyclestage") && l.contains("enum [")),
        "{listing}"
    );
    assert!(
        dir.path()
            .join("rules/.fields/hubspot.contact.json")
            .exists()
    );

    let after = rulebridge(dir.path(), &["lint", "rules"]);
    let report = String::from_utf8_lossy(&after.stdout);
    assert_eq!(after.status.code(), Some(1), "{report}");
    assert!(
        report.contains("error[RB2003] `firstnam` is not a field of the target object"),
        "{report}"
    );
    assert!(report.contains("did you mean `firstname`?"), "{report}");
    assert!(
        report.contains("error[RB2002] `prospect` is not an option of enum field `lifecyclestage`"),
        "{report}"
    );
}

/// A flow into the HubSpot kit, with Acme's custom properties from their extension of it.
const ACME_FLOW: &str = r#"
kind: flow
name: acme_leads
source: {}
target: { provider: hubspot, object: contact }
mapping:
  email: email
  firstname: first_name
  lead_owner_team: team
  form_submitted_at: submitted_at
"#;

#[test]
fn declared_fields_the_portal_lacks_fail_lint_until_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules/providers");
    for kit in ["hubspot.yaml", "acme_hubspot_fields.yaml"] {
        std::fs::copy(format!("{repo}/{kit}"), rules.join(kit)).expect("copy kit");
    }
    std::fs::write(rules.join("flow.yaml"), ACME_FLOW).expect("write");
    let stdout = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let clean = rulebridge(dir.path(), &["lint", "rules"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));

    // A fresh portal: HubSpot's default properties only.
    let fields = rulebridge(dir.path(), &["fields", "hubspot", "contact", "--sandbox"]);
    assert_eq!(fields.status.code(), Some(0), "{}", stderr(&fields));
    let lint = rulebridge(dir.path(), &["lint", "rules"]);
    let report = stdout(&lint);
    assert_eq!(lint.status.code(), Some(1), "{report}");
    for field in ["lead_owner_team", "form_submitted_at"] {
        assert!(
            report.contains(&format!(
                "error[RB2012] `hubspot.contact` has no field `{field}` (discovered fields)"
            )),
            "{report}"
        );
    }
    assert!(
        report.contains("rulebridge fields hubspot contact --create-missing"),
        "{report}"
    );
    assert!(!report.contains("`firstname`"), "HubSpot has it: {report}");

    // Creating what the rule files declare: the portal then has it, and lint is clean.
    let created = rulebridge(
        dir.path(),
        &[
            "fields",
            "hubspot",
            "contact",
            "--sandbox",
            "--create-missing",
        ],
    );
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    assert!(
        stderr(&created).contains(
            "created 4 field(s) of hubspot.contact: lead_owner_team, lead_source, tags, form_submitted_at"
        ),
        "{}",
        stderr(&created)
    );
    assert!(
        stdout(&created)
            .lines()
            .any(|l| l.starts_with("form_submitted_at") && l.contains("datetime")),
        "{}",
        stdout(&created)
    );
    let after = rulebridge(dir.path(), &["lint", "rules"]);
    assert_eq!(after.status.code(), Some(0), "{}", stdout(&after));
}
