//! The ledger around a sink, through the library: a real SQLite store and the in-memory
//! connector, whose call log shows which requests a run made.

use std::sync::Arc;

use futures::future::BoxFuture;
use rulebridge::Engine;
use rulebridge::connect::Found;
use rulebridge::connect::memory::MemoryConnector;
use rulebridge::exec::ledger::Recorder;
use rulebridge::exec::pipeline::{Completion, Job, NdjsonOutput, Wrote};
use rulebridge::exec::send::SendOptions;
use rulebridge::exec::{Outcome, RunOptions, Sink, Status};
use rulebridge::functions::Clock;
use rulebridge::state::{ChangeFilter, Claiming, RunStart, Scope, Settle, SqlStore, Store, Target};
use serde_json::Value;

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
options: { omit_nulls: true, audit_payloads: AUDIT }
duplicates: { match: [email], on_match: update }
"#;

struct Setup {
    crm: Arc<MemoryConnector>,
    store: Arc<SqlStore>,
    engine: Engine,
    _dir: tempfile::TempDir,
}

async fn setup(audit: bool) -> Setup {
    let rules = RULES.replace("AUDIT", if audit { "true" } else { "false" });
    setup_with(rules, Arc::new(rulebridge::functions::SystemClock)).await
}

async fn setup_with(rules: String, clock: Arc<dyn Clock>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::open(dir.path().join("s.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    let crm = Arc::new(MemoryConnector::new().unique("contact", "email"));
    let engine = Engine::builder()
        .rules_str("rules.yaml", rules)
        .clock(clock)
        .connector("crm", crm.clone())
        .build()
        .unwrap();
    Setup {
        crm,
        store,
        engine,
        _dir: dir,
    }
}

/// One recorded run of `input`; the outcomes. The outcome writer stores from a thread of
/// its own through the runtime's handle, so the tests run on a multi-thread runtime.
async fn send(s: &Setup, input: &str) -> Vec<Value> {
    let start = RunStart {
        flow: "sync".into(),
        rules_hash: "h".into(),
        ..RunStart::default()
    };
    let run = s.store.begin_run(&start).await.unwrap();
    let run_id = run.id.clone();
    let (pipeline, recorder) = s
        .engine
        .recorded_sender(
            "sync",
            RunOptions::default(),
            SendOptions::default(),
            s.store.clone(),
            run,
            false,
        )
        .unwrap();
    let output = recorder.output(NdjsonOutput(Vec::new()), tokio::runtime::Handle::current());
    let input = std::io::Cursor::new(input.as_bytes().to_vec());
    let (_, out) = pipeline.run(input, output, |_| {}).await.unwrap();
    s.store
        .finish_run(&run_id, out.counters(), out.checkpoint())
        .await
        .unwrap();
    let bytes = out.into_inner().0;
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn statuses(out: &[Value]) -> Vec<&str> {
    out.iter()
        .map(|o| o["status"].as_str().unwrap_or(""))
        .collect()
}

const THREE: &str = "{\"email\":\"a@x.com\",\"name\":\"A\"}\n{\"email\":\"b@x.com\",\"name\":\"B\"}\n{\"email\":\"c@x.com\",\"name\":\"C\"}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_records_make_no_call_and_changed_ones_update_by_stored_id() {
    let s = setup(false).await;
    assert_eq!(statuses(&send(&s, THREE).await), ["created"; 3]);
    let calls = s.crm.calls().len();
    let again = send(&s, THREE).await;
    assert_eq!(statuses(&again), ["unchanged"; 3]);
    assert_eq!(s.crm.calls().len(), calls, "no call at all");
    assert!(again.iter().all(|o| o["target_id"].is_string()));

    let changed = THREE.replace("\"B\"", "\"Bee\"");
    let out = send(&s, &changed).await;
    assert_eq!(statuses(&out), ["unchanged", "updated", "unchanged"]);
    let new_calls: Vec<String> = s.crm.calls()[calls..].to_vec();
    assert_eq!(new_calls.len(), 1, "one update, no search: {new_calls:?}");
    assert!(new_calls[0].starts_with("update"), "{new_calls:?}");
    // The changelog holds what was done, not the data (the flow does not opt in).
    let log = s.store.changes(&ChangeFilter::default()).await.unwrap();
    assert_eq!(
        log.len(),
        3 + 1,
        "created, then one update; unchanged records did nothing"
    );
    assert!(log.iter().all(|c| c.payload.is_none()));
}

/// A clock a minute further on at every reading.
struct Ticking(std::sync::atomic::AtomicI64);

impl Clock for Ticking {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let minutes = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        chrono::DateTime::from_timestamp(1_705_314_600 + 60 * minutes, 0).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_stamped_from_the_clock_do_not_make_a_record_changed() {
    // `synced_at` straight from the clock, `meta.day` through a named value and a template:
    // time stamps, not compared.
    let rules = RULES.replace("AUDIT", "false").replace(
        "  name: name\n",
        "  name: name\n  synced_at: now()\n  meta:\n    day: { template: \"{{ today }}\" }\n    source: { value: import }\n",
    ).replace("mapping:\n", "let:\n  today: format_date(now(), \"%Y-%m-%d %H:%M\")\nmapping:\n");
    // Values that also read the record change with it, so they are compared: a lead's age
    // in days is a change when the day turns.
    let aged = rules.replace(
        "  synced_at: now()\n",
        "  synced_at: now()\n  age: date_diff(joined, now())\n  seen: { template: \"{{ name }} {{ today }}\" }\n",
    );
    let aged = Engine::builder()
        .rules_str("rules.yaml", aged)
        .build()
        .unwrap();
    let stamps = |e: &Engine| e.plan().flow("sync").map(|f| f.stamps.clone());
    assert_eq!(stamps(&aged).unwrap_or_default(), ["synced_at", "meta.day"]);

    let s = setup_with(rules, Arc::new(Ticking(Default::default()))).await;
    assert_eq!(
        stamps(&s.engine).unwrap_or_default(),
        ["synced_at", "meta.day"]
    );

    // A change elsewhere is still a change, and its write carries a fresh stamp.
    only_what_changed_is_sent(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ciphertext_field_is_compared_by_the_input_it_was_made_from() {
    // A Fernet token differs at every encryption (random IV, time stamp).
    let rules = RULES.replace("AUDIT", "false").replace(
        "  name: name\n",
        "  name: name\n  sealed: fernet_encrypt(name, \"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=\")\n",
    );
    let s = setup_with(rules, Arc::new(rulebridge::functions::SystemClock)).await;
    let random = s.engine.plan().flow("sync").map(|f| f.randomized.clone());
    assert_eq!(random.unwrap_or_default(), ["sealed"]);

    // A changed input is a change, though the ciphertext alone could not tell.
    only_what_changed_is_sent(&s).await;
}

/// [`THREE`] sent twice, then with B's name changed: created ×3; unchanged ×3 without a
/// call; exactly one update.
async fn only_what_changed_is_sent(s: &Setup) {
    assert_eq!(statuses(&send(s, THREE).await), ["created"; 3]);
    let calls = s.crm.calls().len();
    assert_eq!(statuses(&send(s, THREE).await), ["unchanged"; 3]);
    assert_eq!(s.crm.calls().len(), calls, "no call at all");
    let out = send(s, &THREE.replace("\"B\"", "\"Bee\"")).await;
    assert_eq!(statuses(&out), ["unchanged", "updated", "unchanged"]);
    assert_eq!(s.crm.calls().len(), calls + 1, "one update");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_can_keep_its_payloads_in_the_changelog() {
    let s = setup(true).await;
    send(&s, THREE).await;
    let log = s.store.changes(&ChangeFilter::default()).await.unwrap();
    let payload: Value = serde_json::from_str(log[0].payload.as_deref().unwrap()).unwrap();
    assert_eq!(payload["email"], "a@x.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_id_the_target_no_longer_has_is_forgotten_and_looked_up() {
    let s = setup(false).await;
    let scope = Scope {
        tenant: String::new(),
        flow: "sync".into(),
    };
    let target = Target {
        tenant: String::new(),
        provider: "crm".into(),
        object: "contact".into(),
    };
    // The ledger says a@x.com was written as record 999, which the CRM does not have.
    let run = s
        .store
        .begin_run(&RunStart {
            flow: "sync".into(),
            ..RunStart::default()
        })
        .await
        .unwrap();
    s.store
        .claim(&scope, &run.id, &[Claiming::any("a@x.com")])
        .await
        .unwrap();
    let stale = Settle {
        identity: "a@x.com".into(),
        record_key: None,
        outcome: "created",
        hash: Some("old".into()),
        target_id: Some("999".into()),
        ids: vec![("email".into(), "a@x.com".into())],
    };
    s.store
        .settle(&scope, &target, &run.id, &[stale])
        .await
        .unwrap();
    let out = send(&s, "{\"email\":\"a@x.com\",\"name\":\"A\"}\n").await;
    assert_eq!(statuses(&out), ["created"], "{out:?}");
    assert_eq!(s.crm.records("contact").len(), 1);
    let id = out[0]["target_id"].as_str().unwrap().to_string();
    assert_ne!(id, "999");
    assert_eq!(
        s.store
            .ids(&target, "email", &["a@x.com".into()])
            .await
            .unwrap(),
        vec![Some(id)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_left_pending_by_a_dead_process_is_found_not_repeated() {
    let s = setup(false).await;
    let scope = Scope {
        tenant: String::new(),
        flow: "sync".into(),
    };
    // Another process claimed a@x.com, its create landed, and it died before settling.
    let other = SqlStore::open(s.store.db().location().to_string().as_str())
        .await
        .unwrap();
    let dead = other
        .begin_run(&RunStart {
            flow: "sync".into(),
            ..RunStart::default()
        })
        .await
        .unwrap();
    other
        .claim(&scope, &dead.id, &[Claiming::any("a@x.com")])
        .await
        .unwrap();
    let landed = s.crm.insert(
        "contact",
        serde_json::json!({"email": "a@x.com", "name": "A"}),
    );
    sqlx::query("UPDATE rb_runs SET heartbeat_at = 0 WHERE run_id = $1")
        .bind(&dead.id)
        .execute(other.db().pool())
        .await
        .unwrap();
    let out = send(&s, "{\"email\":\"a@x.com\",\"name\":\"A\"}\n").await;
    // Our own earlier create: reported created with its id, not updated, not created twice.
    assert_eq!(statuses(&out), ["created"], "{out:?}");
    assert_eq!(out[0]["target_id"], landed.as_str());
    assert_eq!(s.crm.records("contact").len(), 1);
}

const SENSITIVE_RULES: &str = r#"
kind: record
name: person
fields:
  email: { type: string, required: true }
  ssn: { type: string, sensitive: true }
  age: number
---
kind: provider
name: crm
base_url: https://crm.example.com
objects:
  contact:
    fields:
      email: string
      ssn: { type: string, sensitive: true }
      age: number
    operations:
      create: { method: POST, path: /contacts }
---
kind: flow
name: people
source: { record: person }
target: { provider: crm, object: contact }
mapping:
  email: email
  ssn: ssn
  age: age
options: { omit_nulls: true, audit_payloads: true }
duplicates: { match: [email], on_match: update }
"#;

/// A run of `people` whose second record fails its declared type; the dead letters after it.
async fn send_people(
    key: Option<rulebridge::secrets::sealed::MasterKey>,
) -> (
    Vec<rulebridge::state::DeadLetter>,
    Vec<rulebridge::state::Change>,
    Vec<u8>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Arc::new(SqlStore::open(path.to_str().unwrap()).await.unwrap());
    let engine = Engine::builder()
        .rules_str("rules.yaml", SENSITIVE_RULES)
        .connector("crm", Arc::new(MemoryConnector::new()))
        .build()
        .unwrap();
    let start = RunStart {
        flow: "people".into(),
        rules_hash: "h".into(),
        ..RunStart::default()
    };
    let run = store.begin_run(&start).await.unwrap();
    let (pipeline, recorder) = engine
        .recorded_sender(
            "people",
            RunOptions::default(),
            SendOptions::default(),
            store.clone(),
            run,
            false,
        )
        .unwrap();
    let recorder = recorder.with_input_key(key);
    let output = recorder.output(NdjsonOutput(Vec::new()), tokio::runtime::Handle::current());
    let input = "{\"email\":\"a@x.com\",\"ssn\":\"078-05-1120\",\"age\":30}\n{\"email\":\"b@x.com\",\"ssn\":\"219-09-9999\",\"age\":\"old\"}\n";
    let (_, out) = pipeline
        .run(
            std::io::Cursor::new(input.as_bytes().to_vec()),
            output,
            |_| {},
        )
        .await
        .unwrap();
    drop(out);
    let letters = store.dead_letters("", Some("people")).await.unwrap();
    let log = store.changes(&ChangeFilter::default()).await.unwrap();
    store.db().close().await;
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("s.db-wal")) {
        bytes.extend(wal);
    }
    (letters, log, bytes)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_with_sensitive_fields_is_kept_sealed_in_the_dead_letter_queue() {
    use rulebridge::secrets::sealed::MasterKey;
    use rulebridge::state::InputForm;
    let key = MasterKey::generate();
    let (letters, log, file) = send_people(Some(key.clone())).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let d = &letters[0];
    assert_eq!(d.input_form, InputForm::Sealed);
    // Nowhere in the file in clear: not the failed record's, not the sent one's.
    assert!(!contains(&file, "219-09-9999"));
    assert!(!contains(&file, "078-05-1120"));
    let line = d.open_input(Some(&key)).unwrap();
    assert_eq!(
        String::from_utf8(line).unwrap(),
        "{\"email\":\"b@x.com\",\"ssn\":\"219-09-9999\",\"age\":\"old\"}"
    );
    assert!(
        d.open_input(None)
            .unwrap_err()
            .contains("RULEBRIDGE_MASTER_KEY")
    );
    let other = MasterKey::generate();
    assert!(
        d.open_input(Some(&other))
            .unwrap_err()
            .contains("sealed with master key")
    );
    // Bound to its row: the same ciphertext under another dead letter's id does not open.
    let mut moved = d.clone();
    moved.id = "another".into();
    assert!(
        moved
            .open_input(Some(&key))
            .unwrap_err()
            .contains("does not decrypt")
    );
    // The audited payload of the record sent masks the object's sensitive field.
    let sent = log.iter().find(|c| c.action == "created").unwrap();
    let payload: Value = serde_json::from_str(sent.payload.as_deref().unwrap()).unwrap();
    assert_eq!(payload["ssn"], "***");
    assert_eq!(payload["email"], "a@x.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_master_key_sensitive_values_are_not_kept_at_all() {
    use rulebridge::state::InputForm;
    let (letters, _, file) = send_people(None).await;
    let d = &letters[0];
    assert_eq!(d.input_form, InputForm::Redacted);
    assert!(!contains(&file, "219-09-9999"));
    let kept: Value = serde_json::from_slice(&d.input).unwrap();
    assert_eq!(kept["email"], "b@x.com");
    assert_eq!(kept["ssn"], Value::Null);
    assert!(d.open_input(None).unwrap_err().contains("not kept"));
}

/// A sink that notes the stored target id each job came with, and "creates" every record.
struct Capture {
    reads_prior: bool,
    priors: std::sync::Mutex<Vec<Option<String>>>,
}

impl Capture {
    fn new(reads_prior: bool) -> Arc<Capture> {
        Arc::new(Capture {
            reads_prior,
            priors: std::sync::Mutex::default(),
        })
    }

    fn priors(&self) -> Vec<Option<String>> {
        self.priors.lock().unwrap().clone()
    }
}

impl Sink for Capture {
    fn group_size(&self) -> usize {
        10
    }

    fn write(&self, jobs: Vec<Job>) -> BoxFuture<'_, Vec<Completion>> {
        Box::pin(async move {
            jobs.into_iter()
                .map(|job| {
                    let prior = job.prior.as_ref().map(|p| p.id.clone());
                    self.priors.lock().unwrap().push(prior);
                    let id = format!("t-{}", job.identity.join("/"));
                    Completion::Done {
                        outcome: Outcome {
                            index: job.index,
                            key: job.key,
                            status: Status::Created,
                            target_id: Some(id.clone()),
                            payload: None,
                            policy: None,
                            reason: None,
                            error: None,
                            provenance: None,
                        },
                        written: Some(Wrote {
                            identity: job.identity,
                            found: Found {
                                id,
                                updated_at: None,
                                fields: Value::Null,
                            },
                            origin: job.origin,
                        }),
                    }
                })
                .collect()
        })
    }

    fn reads_prior(&self) -> bool {
        self.reads_prior
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_id_map_is_read_only_for_sinks_that_decide_against_it() {
    // Three flows writing the same object: what one wrote is in the id map the others see.
    let mut rules = RULES.replace("AUDIT", "false");
    const FLOW: &str = r#"---
kind: flow
name: NAME
source: { require: [email] }
target: { provider: crm, object: contact }
mapping:
  email: lower(trim(email))
duplicates: { match: [email], on_match: update }
"#;
    for name in ["again", "upserting"] {
        rules.push_str(&FLOW.replace("NAME", name));
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::open(dir.path().join("s.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    let engine = Engine::builder()
        .rules_str("rules.yaml", rules)
        .connector("crm", Arc::new(MemoryConnector::new()))
        .build()
        .unwrap();
    let run = |flow: &'static str, sink: Arc<Capture>| {
        let (engine, store) = (&engine, store.clone());
        async move {
            let start = RunStart {
                flow: flow.into(),
                rules_hash: "h".into(),
                ..RunStart::default()
            };
            let state = store.begin_run(&start).await.unwrap();
            let plan = engine.plan().flow(flow).unwrap().clone();
            let recorder = Recorder::new(store, state, plan, false);
            let pipeline = engine
                .runner(flow)
                .unwrap()
                .pipeline(Arc::new(recorder.sink(sink)), RunOptions::default());
            let output =
                recorder.output(NdjsonOutput(Vec::new()), tokio::runtime::Handle::current());
            let input = std::io::Cursor::new(b"{\"email\":\"a@x.com\"}\n".to_vec());
            pipeline.run(input, output, |_| {}).await.unwrap();
        }
    };
    let first = Capture::new(true);
    run("sync", first.clone()).await;
    assert_eq!(first.priors(), [None]);
    // Another flow's first record: its target id comes from the id map, no search needed.
    let again = Capture::new(true);
    run("again", again.clone()).await;
    assert_eq!(again.priors(), [Some("t-a@x.com".to_string())]);
    // A sink that upserts by the identity never decides against it: not looked up.
    let upserting = Capture::new(false);
    run("upserting", upserting.clone()).await;
    assert_eq!(upserting.priors(), [None]);
}
