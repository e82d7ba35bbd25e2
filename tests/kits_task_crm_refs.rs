//! The task CRM's five entities synced twice against the sandbox, in dependency order: the
//! first run creates everything, the second creates nothing; every link (a project's client,
//! a task's project and assignee, a comment's task and author) holds the CRM's own id of a
//! record that exists; a reference to nothing fails only its record; lookups of a reference
//! are made once per distinct key.

mod kits_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kits_support::{Recorded, count, one_by_one, outcomes, pipeline, recorder, records};
use rulebridge::Engine;
use rulebridge_sandbox::{self as sandbox, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const KIT: &str = "task_crm";

/// The task CRM kit and flows of `rules/`, paced for a test (the kit's 100 per minute would
/// make two runs of five flows take minutes; the sandbox's limit is raised to match).
fn quick_engine() -> Engine {
    let kit = std::fs::read_to_string("rules/providers/task_crm.yaml").expect("kit");
    assert!(
        kit.contains("rate_limit: 100 per 1m"),
        "the kit's pacing changed"
    );
    let kit = kit.replace("rate_limit: 100 per 1m", "rate_limit: 200 per 1s");
    let flows = std::fs::read_to_string("rules/flows/task_crm.yaml").expect("flows");
    let mut b = Engine::builder()
        .rules_str("task_crm.yaml", kit)
        .rules_str("task_crm_flows.yaml", flows);
    for (k, v) in sandbox::CREDENTIALS {
        b = b.credential(*k, *v);
    }
    b.build().expect("rules compile")
}

async fn quick_sandbox() -> Sandbox {
    sandbox::start(SandboxConfig {
        taskcrm_rate_limit: 100_000,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox")
}

fn ndjson(rows: &[Value]) -> String {
    rows.iter().map(|r| r.to_string() + "\n").collect()
}

/// The five inputs, by flow. `round` changes a field of every record, so a second run has
/// something to update.
fn inputs(round: u32) -> BTreeMap<&'static str, String> {
    let industry = if round == 0 { "retail" } else { "banking" };
    // Billing ids unlike the CRM's ids (which count from 1), so a wrong link shows.
    let clients: Vec<Value> = (101..=103)
        .map(|i| json!({"id": i, "name": format!("Client {i}"), "industry": industry}))
        .collect();
    let users: Vec<Value> = ["ada", "bob", "cy"]
        .iter()
        .map(|u| json!({"email": format!("{u}@example.com"), "name": format!("{u} {round}")}))
        .collect();
    // Four projects of two clients (two share client 1), one without a client.
    let projects: Vec<Value> = [(10, Some(101)), (11, Some(101)), (12, Some(102)), (13, None)]
        .iter()
        .map(|(id, client)| {
            json!({"id": id, "title": format!("Project {id}"), "client_id": client, "summary": format!("round {round}")})
        })
        .collect();
    // Two tasks per project; the same titles in every project: a task is its title within
    // its project.
    let mut tasks = Vec::new();
    for (n, p) in [10, 11, 12, 13].iter().enumerate() {
        for (k, title) in ["Kick-off", "Handover"].iter().enumerate() {
            let assignee = ["ada", "bob", "cy"][(n + k) % 3];
            tasks.push(json!({
                "id": p * 100 + k as i32,
                "title": title,
                "project_id": p,
                "assignee_email": format!("{assignee}@example.com"),
                "notes": format!("round {round}"),
            }));
        }
    }
    let comments: Vec<Value> = [(10, "Kick-off", "ada"), (10, "Handover", "bob"), (12, "Kick-off", "cy"), (13, "Handover", "ada")]
        .iter()
        .enumerate()
        .map(|(i, (p, t, a))| {
            json!({"id": i, "body": format!("Comment {i}"), "project_id": p, "task_title": t, "author_email": format!("{a}@example.com")})
        })
        .collect();
    BTreeMap::from([
        ("client_to_task_crm", ndjson(&clients)),
        ("user_to_task_crm", ndjson(&users)),
        ("project_to_task_crm", ndjson(&projects)),
        ("task_to_task_crm", ndjson(&tasks)),
        ("comment_to_task_crm", ndjson(&comments)),
    ])
}

const FLOWS: &[&str] = &[
    // Listed out of order on purpose: the plan orders them.
    "comment_to_task_crm",
    "task_to_task_crm",
    "project_to_task_crm",
    "user_to_task_crm",
    "client_to_task_crm",
];

/// Runs the five flows in dependency order through `base_url`; outcomes and the requests
/// each flow made (from the recorder's log), by flow.
async fn sync(
    engine: &Engine,
    base_url: &str,
    seen: impl Fn() -> Vec<Recorded>,
    round: u32,
) -> Vec<(String, Vec<Value>, Vec<Recorded>)> {
    let order = engine.plan().run_order(FLOWS).expect("no cycle");
    let names: Vec<&str> = order.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "client_to_task_crm",
            "project_to_task_crm",
            "user_to_task_crm",
            "task_to_task_crm",
            "comment_to_task_crm"
        ]
    );
    let input = inputs(round);
    let mut out = Vec::new();
    for flow in names {
        let connector = Arc::new(
            engine
                .http_connector(KIT, Some(base_url))
                .expect("connector"),
        );
        let before = seen().len();
        let p = pipeline(engine, connector, flow, &one_by_one(4));
        let got = outcomes(&p, &input[flow]).await;
        let requests = seen().split_off(before);
        out.push((flow.to_string(), got, requests));
    }
    out
}

fn rows(sb: &Sandbox, collection: &str) -> Vec<Value> {
    records(sb, "taskcrm", collection)
}

fn ids(sb: &Sandbox, collection: &str) -> BTreeSet<u64> {
    rows(sb, collection)
        .iter()
        .filter_map(|r| r["id"].as_u64())
        .collect()
}

/// Links that point at no record, as `collection.id.field -> id`.
fn dangling(sb: &Sandbox) -> Vec<String> {
    let links = [
        ("projects", "client_id", "clients"),
        ("tasks", "project_id", "projects"),
        ("tasks", "assignee_id", "users"),
        ("comments", "entity_id", "tasks"),
        ("comments", "author_id", "users"),
    ];
    let mut out = Vec::new();
    for (collection, field, target) in links {
        let exists = ids(sb, target);
        for r in rows(sb, collection) {
            if let Some(id) = r[field].as_u64()
                && !exists.contains(&id)
            {
                out.push(format!("{collection}.{}.{field} -> {id}", r["id"]));
            }
        }
    }
    out
}

/// The record of `collection` whose `field` is `value`.
fn by(sb: &Sandbox, collection: &str, field: &str, value: &Value) -> Value {
    rows(sb, collection)
        .into_iter()
        .find(|r| &r[field] == value)
        .unwrap_or_else(|| panic!("no {collection} with {field} = {value}"))
}

fn gets(requests: &[Recorded], path: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(path))
        .count()
}

#[tokio::test]
async fn five_entities_resync_updates_and_every_link_resolves() {
    let sb = quick_sandbox().await;
    let rec = recorder(&sb).await;
    let engine = quick_engine();
    let base = rec.through(&sb, &sb.kit_base_url(KIT).expect("kit"));

    let first = sync(&engine, &base, || rec.seen(), 0).await;
    for (flow, got, _) in &first {
        assert_eq!(count(got, "created"), got.len(), "{flow}: {got:?}");
    }
    let held: Vec<usize> = ["clients", "users", "projects", "tasks", "comments"]
        .iter()
        .map(|c| rows(&sb, c).len())
        .collect();
    assert_eq!(held, [3, 3, 4, 8, 4]);
    assert_eq!(dangling(&sb), Vec::<String>::new());

    // Links are the CRM's own ids of the right records, not the source's ids.
    let acme = by(&sb, "clients", "external_id", &json!("billing-101"));
    for p in ["tracker-10", "tracker-11"] {
        assert_eq!(
            by(&sb, "projects", "external_id", &json!(p))["client_id"],
            acme["id"]
        );
    }
    assert!(by(&sb, "projects", "external_id", &json!("tracker-13"))["client_id"].is_null());
    let p12 = by(&sb, "projects", "external_id", &json!("tracker-12"));
    let cy = by(&sb, "users", "email", &json!("cy@example.com"));
    let kickoff_12 = rows(&sb, "tasks")
        .into_iter()
        .find(|t| t["project_id"] == p12["id"] && t["title"] == "Kick-off")
        .expect("project 12's kick-off");
    let comment = by(&sb, "comments", "content", &json!("Comment 2"));
    assert_eq!(comment["entity_type"], "task");
    assert_eq!(comment["entity_id"], kickoff_12["id"]);
    assert_eq!(comment["author_id"], cy["id"]);

    // One lookup per distinct reference key, however many records share it: four projects
    // refer to two clients (one has none); eight tasks to four projects and three users.
    let project_run = &first[1].2;
    assert_eq!(gets(project_run, "/clients"), 2, "client lookups");
    assert_eq!(
        gets(project_run, "/projects"),
        4,
        "one duplicate lookup per project"
    );
    let task_run = &first[3].2;
    assert_eq!(gets(task_run, "/projects"), 4, "project lookups");
    assert_eq!(gets(task_run, "/users"), 3, "user lookups");

    // The second run updates everything and creates nothing.
    let second = sync(&engine, &base, || rec.seen(), 1).await;
    for (flow, got, _) in &second {
        assert_eq!(count(got, "created"), 0, "{flow}: {got:?}");
        assert_eq!(count(got, "updated"), got.len(), "{flow}: {got:?}");
    }
    for ((flow, a, _), (_, b, _)) in first.iter().zip(&second) {
        let ids = |o: &[Value]| o.iter().map(|o| o["target_id"].clone()).collect::<Vec<_>>();
        assert_eq!(ids(a), ids(b), "{flow}: the same records");
    }
    let again: Vec<usize> = ["clients", "users", "projects", "tasks", "comments"]
        .iter()
        .map(|c| rows(&sb, c).len())
        .collect();
    assert_eq!(again, held);
    assert_eq!(dangling(&sb), Vec::<String>::new());
    assert!(
        rows(&sb, "clients")
            .iter()
            .all(|c| c["industry"] == "Banking")
    );
    assert!(
        rows(&sb, "tasks")
            .iter()
            .all(|t| t["description"] == "round 1")
    );
}

#[tokio::test]
async fn an_unresolved_reference_fails_only_its_record() {
    let sb = quick_sandbox().await;
    let engine = quick_engine();
    let base = sb.kit_base_url(KIT).expect("kit");
    let send = |flow: &'static str, input: String| {
        let connector = Arc::new(engine.http_connector(KIT, Some(&base)).expect("connector"));
        let p = pipeline(&engine, connector, flow, &one_by_one(2));
        async move { outcomes(&p, &input).await }
    };
    let c = send(
        "client_to_task_crm",
        ndjson(&[json!({"id": 1, "name": "Acme"})]),
    )
    .await;
    assert_eq!(count(&c, "created"), 1, "{c:?}");
    let projects = ndjson(&[
        json!({"id": 1, "title": "Known", "client_id": 1}),
        json!({"id": 2, "title": "Unknown client", "client_id": 99}),
        json!({"id": 3, "title": "Known too", "client_id": 1}),
    ]);
    let p = send("project_to_task_crm", projects).await;
    assert_eq!(p[0]["status"], "created", "{p:?}");
    assert_eq!(p[2]["status"], "created", "{p:?}");
    assert_eq!(p[1]["status"], "failed", "{p:?}");
    assert_eq!(p[1]["error"]["kind"], "unresolved_reference");
    assert_eq!(p[1]["error"]["field"], "client_id");
    let message = p[1]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("billing-99"), "{message}");
    assert_eq!(rows(&sb, "projects").len(), 2);

    // An assignee no user has: the task is not sent.
    let users = ndjson(&[json!({"email": "ada@example.com", "name": "Ada"})]);
    assert_eq!(count(&send("user_to_task_crm", users).await, "created"), 1);
    let tasks = ndjson(&[
        json!({"id": 1, "title": "T", "project_id": 1, "assignee_email": "nobody@example.com"}),
    ]);
    let t = send("task_to_task_crm", tasks).await;
    assert_eq!(t[0]["error"]["kind"], "unresolved_reference", "{t:?}");
    assert_eq!(t[0]["error"]["field"], "assignee_id", "{t:?}");
    assert!(rows(&sb, "tasks").is_empty());
}
