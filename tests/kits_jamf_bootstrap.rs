//! The Jamf bootstrap kit end to end against the sandbox: encrypted, checksummed requests
//! the API can open, idempotency keys that make re-runs and retries safe, and faults that
//! lose nothing and duplicate nothing.
//!
//! The API has no lookup, batch, rate limit or token refresh (a static token in the body):
//! those cases do not apply to this kit.

mod kits_support;

use kits_support::{
    assert_faults_happened, count, engine, kit_variant, one_by_one, others, recorder, records,
    send, shown, twenty_percent_faults,
};
use rulebridge_sandbox::{self as sandbox, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const KIT: &str = "jamf_bootstrap";
const FLOW: &str = "employee_to_jamf";

fn employee(i: usize, department: &str) -> Value {
    json!({
        "crm_id": format!("crm-{i}"), "employee_id": format!("E{i:05}"),
        "email": format!("Emp{i}@PharmacyHub.com"), "full_name": format!("Employee {i}"),
        "department": department, "device": {"serial": format!("C02X{i:04}"), "platform": "macOS"},
    })
}

fn ndjson(records: &[Value]) -> String {
    records.iter().map(|r| r.to_string() + "\n").collect()
}

fn employees(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| employee(i, if i % 2 == 0 { "IT" } else { "Sales" }))
        .collect()
}

/// One of the sandbox's credentials (the Vault key, the API secret).
fn credential(name: &str) -> &'static str {
    sandbox::CREDENTIALS
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| *v)
        .expect("a sandbox credential")
}

fn requests(sb: &Sandbox) -> Vec<Value> {
    records(sb, "jamf-bootstrap", "requests")
}

#[tokio::test]
async fn creates_then_replays_what_was_submitted_and_sends_changes() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let engine = engine(&[]);
    let input = employees(3);
    let first = send(&engine, &sb, KIT, KIT, FLOW, &ndjson(&input), one_by_one(4)).await;
    assert_eq!(count(&first, "created"), 3, "{first:?}");
    let stored = requests(&sb);
    assert_eq!(stored.len(), 3);
    for (o, e) in first.iter().zip(&input) {
        assert_eq!(o["key"], e["employee_id"]);
        let r = stored
            .iter()
            .find(|r| r["request_id"] == o["target_id"])
            .expect("the outcome's request");
        // The API decrypted the payload and verified its checksum.
        assert_eq!(r["employee"]["employee_id"], e["employee_id"]);
        // As the guide's client sends it: the e-mail as given, the device's defaults filled.
        assert_eq!(r["employee"]["email"], e["email"]);
        assert_eq!(r["employee"]["device"]["os_version"], "15.0");
        assert_eq!(r["crm_id"], e["crm_id"]);
        assert_eq!(r["request_type"], "create");
    }
    let it = stored
        .iter()
        .find(|r| r["employee"]["department"] == "IT")
        .expect("an IT request");
    assert_eq!(it["smart_group"], "IT_Computers");

    // The same employees again: encrypted anew, but the same data under the same
    // idempotency key, which the API answers with the request it already has.
    let again = send(&engine, &sb, KIT, KIT, FLOW, &ndjson(&input), one_by_one(4)).await;
    assert_eq!(count(&again, "created"), 3, "{again:?}");
    for (a, b) in again.iter().zip(&first) {
        assert_eq!(a["target_id"], b["target_id"], "the first request's id");
    }
    assert_eq!(requests(&sb).len(), 3);

    // A changed department is new data: a new request.
    let mut changed = input.clone();
    changed[1]["department"] = json!("IT");
    let third = send(
        &engine,
        &sb,
        KIT,
        KIT,
        FLOW,
        &ndjson(&changed),
        one_by_one(4),
    )
    .await;
    assert_eq!(count(&third, "created"), 3, "{third:?}");
    assert_eq!(third[0]["target_id"], first[0]["target_id"]);
    assert_ne!(third[1]["target_id"], first[1]["target_id"]);
    assert_eq!(third[2]["target_id"], first[2]["target_id"]);
    let stored = requests(&sb);
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[3]["request_id"], third[1]["target_id"]);
    assert_eq!(stored[3]["employee"]["department"], "IT");
    assert_eq!(stored[3]["smart_group"], "IT_Computers");
    assert_ne!(
        stored[3]["idempotency_key"], stored[1]["idempotency_key"],
        "changed data is a new request"
    );
}

#[tokio::test]
async fn a_request_refused_by_the_api_fails_with_its_reason() {
    // A flow with another Vault key: the API cannot open `encrypted_key`, 400 "Invalid key"
    // (the guide's text), a validation failure.
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let flow = std::fs::read_to_string(format!("rules/flows/{FLOW}.yaml"))
        .expect("flow")
        .replace("name: employee_to_jamf", "name: jamf_wrong_key")
        .replace("${env:JAMF_ENCRYPTION_KEY}", "${env:OTHER_KEY}");
    let mut b = rulebridge::Engine::builder()
        .rules_dir("rules")
        .rules_str("flow.yaml", flow);
    for (k, v) in sandbox::CREDENTIALS {
        b = b.credential(*k, *v);
    }
    let engine = b
        .credential("OTHER_KEY", "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=")
        .build()
        .expect("rules");
    let out = send(
        &engine,
        &sb,
        KIT,
        KIT,
        "jamf_wrong_key",
        &ndjson(&employees(1)),
        one_by_one(1),
    )
    .await;
    assert_eq!(out[0]["status"], "failed", "{out:?}");
    assert_eq!(out[0]["error"]["kind"], "validation");
    assert!(
        out[0]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Invalid key")),
        "{out:?}"
    );
    assert!(requests(&sb).is_empty());
}

#[tokio::test]
async fn faults_at_twenty_percent_lose_nothing_and_duplicate_nothing() {
    // One record at a time: the same seed meets the same faults on every run.
    // A request processed but whose response was lost is retried with the very same body:
    // the API replays it with its request_id, so the record is created once.
    let faults = twenty_percent_faults();
    let sb = sandbox::start(SandboxConfig {
        seed: 5,
        faults,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    // The kit's backoff (1 s, up to 10 s) is shortened so the test stays quick.
    let kit = kit_variant(
        KIT,
        "jamf_bootstrap_quick",
        &[("base: 1s, max: 10s", "base: 50ms, max: 200ms")],
    );
    let flow = std::fs::read_to_string(format!("rules/flows/{FLOW}.yaml"))
        .expect("flow")
        .replace("name: employee_to_jamf", "name: jamf_quick")
        .replace("provider: jamf_bootstrap", "provider: jamf_bootstrap_quick");
    let engine = engine(&[("kit.yaml", kit), ("flow.yaml", flow)]);
    let input = employees(25);
    let out = send(
        &engine,
        &sb,
        KIT,
        "jamf_bootstrap_quick",
        "jamf_quick",
        &ndjson(&input),
        one_by_one(1),
    )
    .await;
    assert_eq!(
        count(&out, "created"),
        25,
        "{:?}",
        others(&out, &["created"])
    );
    let stored = requests(&sb);
    assert_eq!(stored.len(), 25, "one request per employee");
    for (o, e) in out.iter().zip(&input) {
        let r = stored
            .iter()
            .find(|r| r["request_id"] == o["target_id"])
            .expect("the outcome's request");
        assert_eq!(r["employee"]["employee_id"], e["employee_id"]);
    }
    assert_faults_happened(&sb, "jamf-bootstrap");
}

#[tokio::test]
async fn request_bodies() {
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let rec = recorder(&sb).await;
    let engine = engine(&[]);
    let base = rec.through(&sb, &sb.kit_base_url(KIT).expect("kit"));
    let mut legal = employee(7, "Legal");
    legal["device"] = json!({"serial": "C02YYYYY"});
    let input = ndjson(&[employee(1, "IT"), legal]);
    let out = kits_support::send_at(&engine, &base, KIT, FLOW, &input, one_by_one(1)).await;
    assert_eq!(count(&out, "created"), 2, "{out:?}");
    let seen = rec.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        // The guide sends the API secret in the body, no auth header.
        assert!(
            !s.headers.iter().any(|(k, _)| k == "authorization"),
            "{:?}",
            s.headers
        );
        assert_eq!(s.body["token"], credential("JAMF_API_TOKEN"));
        let fields: Vec<&str> = s
            .body
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            fields,
            [
                "crm_id",
                "request_type",
                "payload",
                "encrypted_key",
                "token",
                "checksum"
            ]
        );
    }
    // `payload` and `encrypted_key` are Fernet tokens (random IV and time) and `token` a
    // credential: redacted; the checksum (over data with a derived idempotency key) is stable.
    insta::assert_yaml_snapshot!(shown(
        &seen,
        "/jamf-bootstrap",
        &["payload", "encrypted_key", "token"]
    ));
}

/// Why the guide's Python code cannot run here, if it cannot.
fn python_missing() -> Option<String> {
    match std::process::Command::new("python3")
        .args(["-c", "import cryptography, requests"])
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Some(format!("python3: {e}")),
    }
}

/// Opens `request` with the guide's own code and compares it with what the guide's client
/// builds for `employee` (tests/fixtures/seeds/jamf_bootstrap_check.py).
fn seed_check(request: &Value, employee: &Value) -> Value {
    use std::io::Write;
    let root = env!("CARGO_MANIFEST_DIR");
    let input = json!({
        "client": format!("{root}/crates/rulebridge-sandbox/tests/fixtures/jamf_seed_client.py"),
        "vault_key": credential("JAMF_ENCRYPTION_KEY"),
        "request": request,
        "employee": employee,
    });
    let mut child = std::process::Command::new("python3")
        .arg(format!(
            "{root}/tests/fixtures/seeds/jamf_bootstrap_check.py"
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write the request");
    let out = child.wait_with_output().expect("python3 finishes");
    assert!(
        out.status.success(),
        "the guide's code could not open the kit's request: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the check prints JSON")
}

#[tokio::test]
async fn the_kits_request_is_the_one_the_guides_client_builds() {
    if let Some(why) = python_missing() {
        eprintln!(
            "SKIPPED the_kits_request_is_the_one_the_guides_client_builds: needs python3 with cryptography and requests ({why})"
        );
        return;
    }
    let sb = sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let rec = recorder(&sb).await;
    let engine = engine(&[]);
    let base = rec.through(&sb, &sb.kit_base_url(KIT).expect("kit"));
    // Non-ASCII text (json.dumps escapes it, and the checksum is over that text), a mixed-case
    // e-mail (sent as given), an unknown department and a device without platform or version
    // (the guide's client fills `Default`, `macOS`, `15.0`), and a device with its own.
    let mut zoe = employee(1, "IT");
    zoe["full_name"] = json!("Zoë Ångström 😀");
    zoe["email"] = json!("Zoe.Angstrom@Example.com");
    zoe["device"] = json!({"serial": "C02ZOE", "platform": "macOS", "os_version": "14.2"});
    let mut legal = employee(2, "Legal");
    legal["device"] = json!({"serial": "C02LEGAL"});
    let input = [zoe, legal];
    let out =
        kits_support::send_at(&engine, &base, KIT, FLOW, &ndjson(&input), one_by_one(1)).await;
    assert_eq!(count(&out, "created"), 2, "{out:?}");
    let seen = rec.seen();
    assert_eq!(seen.len(), 2);
    for (s, e) in seen.iter().zip(&input) {
        let c = seed_check(&s.body, e);
        assert_eq!(c["request_fields"], c["seed_request_fields"]);
        assert_eq!(s.body["crm_id"], e["crm_id"]);
        assert_eq!(
            s.body["request_type"], "create",
            "send_jamf_request's default"
        );
        assert_eq!(s.body["token"], credential("JAMF_API_TOKEN"));
        assert_eq!(c["key"], c["seed_key"], "the key the guide derives");
        // Byte for byte the text the guide's client encrypts and checksums.
        assert_eq!(c["json_text"], c["seed_json_text"]);
        assert_eq!(c["checksum"], c["seed_checksum"]);
        assert_eq!(c["checksum"], c["own_checksum"]);
    }
    let zoe_text = seen
        .first()
        .map(|s| seed_check(&s.body, &input[0])["json_text"].clone())
        .unwrap_or_default();
    assert!(
        zoe_text.as_str().is_some_and(
            |t| t.contains(r#""full_name": "Zo\u00eb \u00c5ngstr\u00f6m \ud83d\ude00""#)
        ),
        "{zoe_text}"
    );
    // The API opened them as the guide's server does.
    let stored = requests(&sb);
    assert_eq!(stored[0]["employee"]["full_name"], "Zoë Ångström 😀");
    assert_eq!(stored[1]["employee"]["department"], "Default");
    assert_eq!(
        stored[1]["employee"]["device"],
        json!({"serial": "C02LEGAL", "platform": "macOS", "os_version": "15.0"})
    );
}
