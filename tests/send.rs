//! The duplicate decision and the write path, driven through the in-memory connector (a CRM
//! with, where a test says so, a unique e-mail): lookups, decisions, repeated identities in
//! one input, creates whose response was lost, the end-of-run pass, batches. The HTTP
//! connector and the sandbox are tested elsewhere; this checks the engine.

use std::sync::Arc;

use rulebridge::Engine;
use rulebridge::connect::Capabilities;
use rulebridge::connect::memory::{Fault, MemoryConnector};
use rulebridge::exec::pipeline::{Completion, Job};
use rulebridge::exec::send::SendOptions;
use rulebridge::exec::{Pipeline, RunOptions, Sink, Status};
use serde_json::{Value, json};

const RULES: &str = r#"
kind: provider
name: crm
base_url: https://crm.example.com
objects:
  contact:
    operations:
      create: { method: POST, path: /contacts }
---
kind: flow
name: sync
source: { require: [email] }
target: { provider: crm, object: contact }
mapping:
  email: lower(trim(email))
  name: name
options: { omit_nulls: true }
duplicates: { match: [email], on_match: ON_MATCH, on_multiple: ON_MULTIPLE, repeats: REPEATS }
"#;

struct Run<'a> {
    on_match: &'a str,
    on_multiple: &'a str,
    repeats: &'a str,
}

const UPDATE: Run<'static> = Run {
    on_match: "update",
    on_multiple: "fail",
    repeats: "in_order",
};

/// [`RULES`] with `how`'s duplicate rule, `crm` as the provider.
fn engine(how: &Run<'_>, crm: Arc<MemoryConnector>) -> Engine {
    let rules = RULES
        .replace("ON_MATCH", how.on_match)
        .replace("ON_MULTIPLE", how.on_multiple)
        .replace("REPEATS", how.repeats);
    Engine::builder()
        .rules_str("rules.yaml", rules)
        .connector("crm", crm)
        .build()
        .expect("rules compile")
}

/// The `sync` flow of [`RULES`] sending to `crm`.
fn pipeline(crm: Arc<MemoryConnector>, how: &Run<'_>, options: RunOptions) -> Pipeline {
    engine(how, crm)
        .sender("sync", options, SendOptions::default())
        .expect("sender")
}

async fn run_with(crm: Arc<MemoryConnector>, how: &Run<'_>, input: &str) -> Vec<Value> {
    let options = RunOptions {
        concurrency: 4,
        ..RunOptions::default()
    };
    run_options(crm, how, input, options).await
}

async fn run_options(
    crm: Arc<MemoryConnector>,
    how: &Run<'_>,
    input: &str,
    options: RunOptions,
) -> Vec<Value> {
    let pipeline = pipeline(crm, how, options);
    let (_, out): (_, Vec<rulebridge::Outcome>) = pipeline
        .run(
            std::io::Cursor::new(input.as_bytes().to_vec()),
            Vec::new(),
            |_| {},
        )
        .await
        .expect("run");
    out.iter()
        .map(|o| serde_json::to_value(o).expect("json"))
        .collect()
}

async fn run(
    crm: Arc<MemoryConnector>,
    on_match: &str,
    on_multiple: &str,
    input: &str,
) -> Vec<Value> {
    let how = Run {
        on_match,
        on_multiple,
        repeats: "in_order",
    };
    run_with(crm, &how, input).await
}

fn statuses(outcomes: &[Value]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| o["status"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn crm() -> Arc<MemoryConnector> {
    Arc::new(MemoryConnector::new().unique("contact", "email"))
}

fn named(crm: &MemoryConnector, email: &str) -> Vec<Value> {
    crm.records("contact")
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| {
            r["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
        .collect()
}

#[tokio::test]
async fn creates_then_updates_on_match() {
    let crm = crm();
    crm.insert("contact", json!({"email": "old@x.io", "name": "Old"}));
    let out = run(crm.clone(), "update", "fail", "{\"email\":\"new@x.io\",\"name\":\"New\"}\n{\"email\":\"OLD@x.io\",\"name\":\"Renamed\"}\n").await;
    assert_eq!(statuses(&out), ["created", "updated"]);
    assert_eq!(out[1]["target_id"], "1");
    assert_eq!(named(&crm, "old@x.io")[0]["name"], "Renamed");
    assert_eq!(crm.records("contact").len(), 2);
}

#[tokio::test]
async fn skip_leaves_the_existing_record() {
    let crm = crm();
    crm.insert("contact", json!({"email": "a@x.io", "name": "Keep"}));
    let out = run(
        crm.clone(),
        "skip",
        "fail",
        "{\"email\":\"a@x.io\",\"name\":\"Other\"}\n",
    )
    .await;
    assert_eq!(statuses(&out), ["skipped"]);
    assert_eq!(out[0]["target_id"], "1");
    assert_eq!(named(&crm, "a@x.io")[0]["name"], "Keep");
}

#[tokio::test]
async fn create_new_on_a_unique_target_updates_what_it_has() {
    let crm = crm();
    crm.insert("contact", json!({"email": "a@x.io", "name": "A"}));
    let out = run(
        crm.clone(),
        "create_new",
        "fail",
        "{\"email\":\"a@x.io\",\"name\":\"B\"}\n",
    )
    .await;
    assert_eq!(statuses(&out), ["updated"]);
    assert_eq!(crm.records("contact").len(), 1);
    assert_eq!(named(&crm, "a@x.io")[0]["name"], "B");

    // A target without the constraint gets its second record.
    let open = Arc::new(MemoryConnector::new());
    open.insert("contact", json!({"email": "a@x.io"}));
    let out = run(
        open.clone(),
        "create_new",
        "fail",
        "{\"email\":\"a@x.io\",\"name\":\"B\"}\n",
    )
    .await;
    assert_eq!(statuses(&out), ["created"]);
    assert_eq!(open.records("contact").len(), 2);
}

#[tokio::test]
async fn merge_fills_only_empty_fields() {
    let crm = crm();
    crm.insert(
        "contact",
        json!({"email": "a@x.io", "name": "", "phone": "+1"}),
    );
    let out = run(
        crm.clone(),
        "merge",
        "fail",
        "{\"email\":\"a@x.io\",\"name\":\"New\"}\n",
    )
    .await;
    assert_eq!(statuses(&out), ["updated"]);
    let r = &named(&crm, "a@x.io")[0];
    assert_eq!(
        (r["name"].as_str(), r["phone"].as_str()),
        (Some("New"), Some("+1"))
    );
}

#[tokio::test]
async fn several_matches_follow_on_multiple() {
    for (policy, want) in [
        ("fail", "failed"),
        ("first", "updated"),
        ("most_recent", "updated"),
    ] {
        let crm = Arc::new(MemoryConnector::new().updated_at("updated"));
        crm.insert(
            "contact",
            json!({"email": "a@x.io", "updated": "2024-01-02T00:00:00Z"}),
        );
        crm.insert(
            "contact",
            json!({"email": "A@x.io", "updated": "2024-03-01T00:00:00Z"}),
        );
        let out = run(
            crm.clone(),
            "update",
            policy,
            "{\"email\":\"a@x.io\",\"name\":\"N\"}\n",
        )
        .await;
        assert_eq!(statuses(&out), [want], "{policy}");
        match policy {
            "fail" => assert_eq!(out[0]["error"]["kind"], "multiple_matches"),
            "first" => assert_eq!(out[0]["target_id"], "1"),
            _ => assert_eq!(out[0]["target_id"], "2"),
        }
    }
}

#[tokio::test]
async fn a_create_that_races_another_writer_becomes_an_update() {
    let crm = crm();
    crm.race_next_create("contact", json!({"email": "race@x.io", "name": "Theirs"}));
    let out = run(
        crm.clone(),
        "update",
        "fail",
        "{\"email\":\"race@x.io\",\"name\":\"Ours\"}\n",
    )
    .await;
    assert_eq!(statuses(&out), ["updated"]);
    assert_eq!(crm.records("contact").len(), 1, "never a second record");
    assert_eq!(named(&crm, "race@x.io")[0]["name"], "Ours");
}

#[tokio::test]
async fn every_line_gets_one_outcome_at_its_line_number() {
    let crm = crm();
    let input = b"{\"email\":\"a@x.io\"}\n\n{\"name\":\"no email\"}\nnot json\n\xff\xfe\n[1,2]\n{\"email\":\"a@x.io\",\"email\":\"b@x.io\"}\n{\"email\":\"b@x.io\"}";
    let input = String::from_utf8_lossy(input).into_owned();
    let out = run(crm.clone(), "update", "fail", &input).await;
    let indexes: Vec<u64> = out.iter().filter_map(|o| o["index"].as_u64()).collect();
    assert_eq!(
        indexes,
        [0, 1, 2, 3, 4, 5, 6, 7],
        "one outcome per line, in order"
    );
    assert_eq!(out[1]["status"], "skipped");
    assert_eq!(out[1]["reason"], "blank_line");
    for i in [2, 3, 5] {
        assert_eq!(out[i]["status"], "failed", "{}", out[i]);
        assert_eq!(out[i]["error"]["kind"], "invalid_record");
    }
    assert_eq!(out[3]["error"]["offset"], 41, "byte offset in the input");
    assert_eq!(out[4]["status"], "failed");
    assert_eq!(
        out[6]["status"], "failed",
        "duplicate keys in one object: {}",
        out[6]
    );
    assert_eq!(out[7]["status"], "created");
}

#[tokio::test]
async fn invalid_utf8_is_a_failed_record_not_the_end_of_the_run() {
    let crm = crm();
    let engine = Engine::builder()
        .rules_str(
            "rules.yaml",
            RULES
                .replace("ON_MATCH", "update")
                .replace("ON_MULTIPLE", "fail")
                .replace("REPEATS", "in_order"),
        )
        .connector("crm", crm.clone())
        .build()
        .expect("rules");
    let runner = engine.runner("sync").expect("flow");
    let pipeline = runner.dry_run_pipeline(RunOptions::default());
    let (_, out): (_, Vec<rulebridge::Outcome>) = pipeline
        .run(
            std::io::Cursor::new(
                b"{\"email\":\"a@x.io\"}\n\xff\n{\"email\":\"b@x.io\"}\n".to_vec(),
            ),
            Vec::new(),
            |_| {},
        )
        .await
        .expect("dry run");
    let statuses: Vec<_> = out.iter().map(|o| o.status.as_str()).collect();
    assert_eq!(statuses, ["dry_run", "failed", "dry_run"]);
    let e = out[1].error.as_ref().expect("error");
    assert_eq!(e.offset(), Some(19));
}

#[tokio::test]
async fn repeated_identities_apply_in_input_order() {
    let input = "{\"email\":\"a@x.io\",\"name\":\"First\"}\n{\"email\":\"b@x.io\"}\n{\"email\":\"A@x.io \",\"name\":\"Second\"}\n{\"email\":\"a@x.io\",\"name\":\"Third\"}\n";
    // update: the later records update what the first created.
    let crm = Arc::new(MemoryConnector::new());
    let out = run(crm.clone(), "update", "fail", input).await;
    assert_eq!(statuses(&out), ["created", "created", "updated", "updated"]);
    assert_eq!(out[2]["target_id"], out[0]["target_id"]);
    assert_eq!(out[3]["target_id"], out[0]["target_id"]);
    assert_eq!(named(&crm, "a@x.io").len(), 1);
    assert_eq!(
        named(&crm, "a@x.io")[0]["name"],
        "Third",
        "applied in input order"
    );

    // skip: the later ones leave it.
    let crm = Arc::new(MemoryConnector::new());
    let out = run(crm.clone(), "skip", "fail", input).await;
    assert_eq!(statuses(&out), ["created", "created", "skipped", "skipped"]);
    assert_eq!(named(&crm, "a@x.io")[0]["name"], "First");

    // create_new: another record each time.
    let crm = Arc::new(MemoryConnector::new());
    let out = run(crm.clone(), "create_new", "fail", input).await;
    assert_eq!(statuses(&out), ["created", "created", "created", "created"]);
    assert_eq!(named(&crm, "a@x.io").len(), 3);
}

#[tokio::test]
async fn a_repeat_long_after_its_first_write_is_looked_up_and_updated() {
    // More distinct identities than the run keeps what it wrote for (4 here): the first
    // record's entry has aged out by the time its repeat comes, so the repeat is looked up
    // at the target (and found), not created again. With room to keep it, no second lookup.
    let mut input = String::from("{\"email\":\"first@x.io\",\"name\":\"First\"}\n");
    // Past the first chunk of input lines (512), so the repeat is read after the first
    // chunk's records are done.
    for i in 0..600 {
        input.push_str(&format!("{{\"email\":\"r{i}@x.io\"}}\n"));
    }
    input.push_str("{\"email\":\"FIRST@x.io\",\"name\":\"Again\"}\n");
    for (kept, lookups) in [(4, 2), (1_000, 1)] {
        let crm = Arc::new(MemoryConnector::new());
        let options = RunOptions {
            concurrency: 1,
            known_identities: kept,
            // One chunk admitted at a time: the repeat comes in long after the first record
            // is done (admitted together, it would wait for it instead).
            max_in_flight_bytes: 100,
            ..RunOptions::default()
        };
        let out = run_options(crm.clone(), &UPDATE, &input, options).await;
        assert_eq!(out.len(), 602);
        assert!(out.iter().all(|o| o["status"] != "failed"), "{out:?}");
        assert_eq!(out[601]["status"], "updated");
        assert_eq!(out[601]["target_id"], out[0]["target_id"]);
        let first = named(&crm, "first@x.io");
        assert_eq!(first.len(), 1);
        assert_eq!(first[0]["name"], "Again");
        let calls = crm.calls();
        let searched = calls
            .iter()
            .filter(|c| c.starts_with("search") && c.contains("first@x.io"))
            .count();
        assert_eq!(searched, lookups, "kept {kept}");
    }
}

#[tokio::test]
async fn last_wins_sends_only_the_last_of_each_identity() {
    let input = "{\"email\":\"a@x.io\",\"name\":\"First\"}\n{\"email\":\"b@x.io\"}\n{\"email\":\"a@x.io\",\"name\":\"Last\"}\n";
    let crm = Arc::new(MemoryConnector::new());
    let how = Run {
        repeats: "last_wins",
        ..UPDATE
    };
    let out = run_with(crm.clone(), &how, input).await;
    assert_eq!(statuses(&out), ["skipped", "created", "created"]);
    assert_eq!(out[0]["reason"], "superseded");
    assert_eq!(named(&crm, "a@x.io").len(), 1);
    assert_eq!(named(&crm, "a@x.io")[0]["name"], "Last");
    assert_eq!(
        crm.calls()
            .iter()
            .filter(|c| c.starts_with("create"))
            .count(),
        2
    );
}

#[tokio::test]
async fn repeats_fail_keeps_the_later_record_out() {
    let input = "{\"email\":\"a@x.io\"}\n{\"email\":\"A@X.IO\"}\n";
    let crm = Arc::new(MemoryConnector::new());
    let how = Run {
        repeats: "fail",
        ..UPDATE
    };
    let out = run_with(crm.clone(), &how, input).await;
    assert_eq!(statuses(&out), ["created", "failed"]);
    assert_eq!(out[1]["error"]["kind"], "duplicate_key");
    assert_eq!(crm.records("contact").len(), 1);
}

#[tokio::test]
async fn a_create_whose_response_was_lost_is_looked_up_not_repeated() {
    // No duplicate detection at the target: only the engine can keep the record single.
    let crm = Arc::new(MemoryConnector::new());
    crm.fail_next("create", Fault::After);
    let out = run(
        crm.clone(),
        "update",
        "fail",
        "{\"email\":\"a@x.io\",\"name\":\"A\"}\n",
    )
    .await;
    assert_eq!(statuses(&out), ["created"], "{out:?}");
    assert_eq!(crm.records("contact").len(), 1, "one record, not two");
    assert_eq!(out[0]["target_id"], "1");
    let calls = crm.calls();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("create")).count(),
        1,
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_repeated_create_refused_as_our_own_duplicate_is_created() {
    // The lookup after the lost response misses the record (search lags behind), so the
    // create is repeated; the target refuses it as a duplicate: that record is ours.
    let crm = crm();
    crm.fail_next("create", Fault::After);
    crm.fail_next("search", Fault::Before);
    let out = run(
        crm.clone(),
        "update",
        "fail",
        "{\"email\":\"a@x.io\",\"name\":\"A\"}\n",
    )
    .await;
    assert_eq!(statuses(&out), ["created"], "{out:?}");
    assert_eq!(crm.records("contact").len(), 1);
}

#[tokio::test]
async fn a_lost_create_without_a_way_to_look_it_up_is_not_repeated() {
    let crm = Arc::new(MemoryConnector::new());
    crm.fail_next("create", Fault::After);
    let rules = r#"
kind: provider
name: crm
base_url: https://crm.example.com
objects:
  contact:
    operations:
      create: { method: POST, path: /contacts }
---
kind: flow
name: sync
source: { require: [email] }
target: { provider: crm, object: contact }
mapping:
  email: email
"#;
    let engine = Engine::builder()
        .rules_str("rules.yaml", rules)
        .connector("crm", crm.clone())
        .build()
        .expect("rules");
    let pipeline = engine
        .sender("sync", RunOptions::default(), SendOptions::default())
        .expect("sender");
    let o = pipeline.run_one(0, &json!({"email": "a@x.io"})).await;
    assert_eq!(o.status, rulebridge::Status::Failed);
    assert!(o.error.expect("error").message.contains("not sent again"));
    assert_eq!(crm.records("contact").len(), 1, "written once, never twice");
}

#[tokio::test]
async fn transient_failures_get_one_more_pass_at_the_end() {
    let crm = Arc::new(MemoryConnector::new());
    crm.fail_next("search", Fault::Before);
    let out = run(
        crm.clone(),
        "update",
        "fail",
        "{\"email\":\"a@x.io\"}\n{\"email\":\"b@x.io\"}\n",
    )
    .await;
    assert_eq!(statuses(&out), ["created", "created"], "{out:?}");
    let calls = crm.calls();
    // The failed lookup of the first record is retried after the second record is done.
    let last_create = calls.iter().rposition(|c| c.starts_with("create")).unwrap();
    assert_eq!(
        calls[last_create - 1],
        "search contact email=a@x.io",
        "{calls:?}"
    );
}

#[tokio::test]
async fn lookups_and_creates_go_in_batches() {
    let crm = Arc::new(MemoryConnector::new().with_capabilities(Capabilities {
        search: true,
        create: true,
        update: true,
        batch_search: Some(200),
        batch_create: Some(200),
        batch_update: Some(200),
        ..Capabilities::default()
    }));
    crm.insert("contact", json!({"email": "lead7@x.io"}));
    let input: String = (0..300)
        .map(|i| format!("{{\"email\":\"lead{i}@x.io\",\"name\":\"L{i}\"}}\n"))
        .collect();
    let out = run(crm.clone(), "update", "fail", &input).await;
    assert_eq!(out.iter().filter(|o| o["status"] == "created").count(), 299);
    assert_eq!(out[7]["status"], "updated");
    let calls = crm.calls();
    assert!(
        calls.len() <= 6,
        "at most 2 requests per 200 records: {calls:?}"
    );
    assert!(
        calls
            .iter()
            .filter(|c| c.starts_with("create"))
            .all(|c| c.starts_with("create_batch")),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .filter(|c| c.starts_with("search"))
            .all(|c| c.contains(" in [")),
        "{calls:?}"
    );
    assert_eq!(crm.records("contact").len(), 300);
}

#[tokio::test]
async fn batch_upsert_maps_results_back_per_record() {
    let crm = Arc::new(
        MemoryConnector::new()
            .refuse("contact", "name", json!("REJECT"))
            .with_capabilities(Capabilities {
                search: true,
                create: true,
                update: true,
                batch_upsert: Some(2),
                ..Capabilities::default()
            }),
    );
    crm.insert("contact", json!({"email": "b@x.io"}));
    let input = "{\"email\":\"a@x.io\"}\n{\"email\":\"b@x.io\"}\n{\"email\":\"c@x.io\",\"name\":\"REJECT\"}\n";
    let out = run(crm.clone(), "update", "fail", input).await;
    assert_eq!(statuses(&out), ["created", "updated", "failed"]);
    assert_eq!(out[2]["error"]["kind"], "validation");
    let calls = crm.calls();
    assert!(
        calls.iter().all(|c| c.starts_with("upsert_batch")),
        "{calls:?}"
    );
}

#[tokio::test]
async fn last_wins_holds_records_outside_the_byte_budget() {
    // Far more held records than the budget allows in flight: the input must still end.
    let crm = Arc::new(MemoryConnector::new());
    let how = Run {
        repeats: "last_wins",
        ..UPDATE
    };
    let options = RunOptions {
        max_in_flight_bytes: 1024,
        ..RunOptions::default()
    };
    let pipeline = pipeline(crm.clone(), &how, options);
    let input: String = (0..2000)
        .map(|i| format!("{{\"email\":\"p{}@x.io\",\"name\":\"v{i}\"}}\n", i % 500))
        .collect();
    let (summary, out): (_, Vec<rulebridge::Outcome>) = pipeline
        .run(std::io::Cursor::new(input.into_bytes()), Vec::new(), |_| {})
        .await
        .expect("run");
    assert_eq!(summary.total, 2000);
    assert_eq!(summary.created, 500);
    assert_eq!(summary.skipped, 1500);
    assert_eq!(out[1999].status, rulebridge::Status::Created);
    assert_eq!(crm.records("contact").len(), 500);
}

#[tokio::test]
async fn a_small_byte_budget_still_sends_everything_in_groups() {
    let crm = Arc::new(MemoryConnector::new().with_capabilities(Capabilities {
        search: true,
        create: true,
        update: true,
        batch_search: Some(150),
        batch_create: Some(150),
        ..Capabilities::default()
    }));
    let options = RunOptions {
        max_in_flight_bytes: 4096,
        concurrency: 1,
        ..RunOptions::default()
    };
    let pipeline = pipeline(crm.clone(), &UPDATE, options);
    let input: String = (0..3000)
        .map(|i| format!("{{\"email\":\"q{i}@x.io\"}}\n"))
        .collect();
    let (summary, _) = pipeline
        .run(std::io::Cursor::new(input.into_bytes()), Vec::new(), |_| {})
        .await
        .expect("run");
    assert_eq!(summary.created, 3000, "{summary}");
    assert_eq!(crm.records("contact").len(), 3000);
}

#[tokio::test]
async fn repeated_identities_go_through_batch_upserts_in_order() {
    let crm = Arc::new(MemoryConnector::new().with_capabilities(Capabilities {
        search: true,
        create: true,
        update: true,
        batch_upsert: Some(100),
        ..Capabilities::default()
    }));
    let input = "{\"email\":\"a@x.io\",\"name\":\"First\"}\n{\"email\":\"b@x.io\"}\n{\"email\":\"a@x.io\",\"name\":\"Second\"}\n";
    let out = run(crm.clone(), "update", "fail", input).await;
    assert_eq!(statuses(&out), ["created", "created", "updated"]);
    assert_eq!(named(&crm, "a@x.io").len(), 1);
    assert_eq!(named(&crm, "a@x.io")[0]["name"], "Second");
    let calls = crm.calls();
    assert!(
        calls.iter().all(|c| c.starts_with("upsert_batch")),
        "{calls:?}"
    );
    assert_eq!(
        calls.len(),
        2,
        "the repeat waits for its first record: {calls:?}"
    );
}

/// `SendOptions::on_match` replaces the flow's rule for one send: the same rule set skips,
/// updates or creates anew as each request asks.
#[tokio::test]
async fn a_send_can_override_on_match() {
    use rulebridge::syntax::doc::OnMatch;
    let crm = Arc::new(MemoryConnector::new());
    crm.insert(
        "contact",
        json!({"email": "ada@example.com", "name": "Ada"}),
    );
    let engine = engine(&UPDATE, crm.clone());
    let mut statuses = Vec::new();
    for on_match in [None, Some(OnMatch::Skip), Some(OnMatch::CreateNew)] {
        let send = SendOptions {
            on_match,
            ..SendOptions::default()
        };
        let pipeline = engine
            .sender("sync", RunOptions::default(), send)
            .expect("sender");
        let input = br#"{"email": "ada@example.com", "name": "Ada L"}"#.to_vec();
        let (_, out): (_, Vec<rulebridge::Outcome>) = pipeline
            .run(std::io::Cursor::new(input), Vec::new(), |_| {})
            .await
            .expect("run");
        statuses.push(out[0].status.as_str());
    }
    assert_eq!(statuses, ["updated", "skipped", "created"]);
    assert_eq!(crm.records("contact").len(), 2);
}

/// A sink taking `delay` per call that "creates" every record and notes each group's size.
struct Slow {
    delay: std::time::Duration,
    groups: std::sync::Mutex<Vec<usize>>,
}

impl Sink for Slow {
    fn group_size(&self) -> usize {
        100
    }

    fn write(&self, jobs: Vec<Job>) -> futures::future::BoxFuture<'_, Vec<Completion>> {
        Box::pin(async move {
            self.groups.lock().unwrap().push(jobs.len());
            tokio::time::sleep(self.delay).await;
            jobs.into_iter()
                .map(|job| Completion::Done {
                    outcome: rulebridge::Outcome {
                        index: job.index,
                        key: job.key,
                        status: Status::Created,
                        target_id: Some(format!("t{}", job.index)),
                        payload: None,
                        policy: None,
                        reason: None,
                        error: None,
                        provenance: None,
                    },
                    written: None,
                })
                .collect()
        })
    }
}

/// `n` leads through the `sync` flow into a [`Slow`] sink taking 50 ms per call: the
/// outcomes, and the size of each group the sink was given.
async fn through_slow_sink(
    n: usize,
    options: RunOptions,
) -> (Vec<rulebridge::Outcome>, Vec<usize>) {
    let engine = engine(&UPDATE, Arc::new(MemoryConnector::new()));
    let sink = Arc::new(Slow {
        delay: std::time::Duration::from_millis(50),
        groups: std::sync::Mutex::default(),
    });
    let pipeline = engine
        .runner("sync")
        .expect("runner")
        .pipeline(sink.clone(), options);
    let input: String = (0..n)
        .map(|i| format!("{{\"email\":\"lead{i}@x.io\",\"name\":\"L{i}\"}}\n"))
        .collect();
    let (_, out): (_, Vec<rulebridge::Outcome>) = pipeline
        .run(std::io::Cursor::new(input.into_bytes()), Vec::new(), |_| {})
        .await
        .expect("run");
    let groups = sink.groups.lock().unwrap().clone();
    (out, groups)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_group_waits_while_requests_are_in_flight() {
    // 1,000 records read in chunks of 512 lines: the first chunk fills five groups and
    // leaves 12 records over. While those five are on their way, the 12 wait for the next
    // chunk instead of going out as a request of their own, so every request is full.
    let options = RunOptions {
        threads: 1,
        concurrency: 8,
        ..RunOptions::default()
    };
    let (out, groups) = through_slow_sink(1000, options).await;
    assert_eq!(out.len(), 1000);
    assert!(out.iter().all(|o| o.status.as_str() == "created"));
    assert_eq!(groups, [100; 10]);

    // The last records go at once when the input ends, full group or not.
    let (out, groups) = through_slow_sink(250, RunOptions::default()).await;
    assert_eq!(out.len(), 250);
    assert_eq!(groups, [100, 100, 50]);
}
