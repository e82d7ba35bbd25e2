//! Runs that keep state, through the real binary against the sandbox over HTTP and a real
//! SQLite file: a replay sends nothing, a change sends exactly what changed, and a run killed
//! with SIGKILL three times and restarted ends with every record written exactly once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rulebridge_sandbox::{Faults, SalesforceDuplicates, Sandbox, SandboxConfig};
use serde_json::{Value, json};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rulebridge")
}

fn rules_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

/// A copy of the shipped rules (commands write caches next to them).
fn copy_rules(to: &Path) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let name = e.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                copy(&p, &to.join(&name));
            } else {
                std::fs::copy(&p, to.join(&name)).unwrap();
            }
        }
    }
    let dir = to.join("rules");
    copy(&rules_src(), &dir);
    dir
}

fn runtime() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn command(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args);
    for (name, value) in rulebridge_sandbox::CREDENTIALS {
        c.env(name, value);
    }
    for (kit, _, _) in rulebridge_sandbox::KITS {
        if let Some(url) = sb.kit_base_url(kit) {
            c.env(
                format!(
                    "RULEBRIDGE_BASE_URL_{}",
                    kit.to_uppercase().replace('-', "_")
                ),
                url,
            );
        }
    }
    c.env_remove("RULEBRIDGE_STATE");
    c
}

fn outcomes(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count(out: &[Value], status: &str) -> usize {
    out.iter().filter(|o| o["status"] == status).count()
}

fn write_ndjson(path: &Path, records: &[Value]) {
    let mut text = String::new();
    for r in records {
        text.push_str(&r.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

fn lead(i: usize) -> Value {
    json!({
        "email": format!("lead{i}@example.com"),
        "name": format!("Lead{i} Person{i}"),
        "company": format!("Company {}", i % 97),
        "score": (i * 7) % 100,
        "source": if i.is_multiple_of(5) { "partner" } else { "web" },
        "country": "US",
    })
}

#[test]
fn a_replay_sends_nothing_and_a_change_sends_only_the_changed_records() {
    let rt = runtime();
    let sb = rt
        .block_on(rulebridge_sandbox::start(SandboxConfig::default()))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let rules = copy_rules(tmp.path());
    let rules = rules.to_str().unwrap();
    let state = tmp.path().join("state.db");
    let state = state.to_str().unwrap();
    // A fresh sandbox portal lacks the flow's custom properties.
    let created = command(
        &sb,
        &[
            "fields",
            "hubspot",
            "contact",
            "--create-missing",
            "--rules",
            rules,
        ],
    )
    .output()
    .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let n = 200;
    let input = tmp.path().join("leads.ndjson");
    let mut leads: Vec<Value> = (0..n).map(lead).collect();
    write_ndjson(&input, &leads);
    let run = |sb: &Sandbox| {
        let out = command(
            sb,
            &["run", "lead_to_hubspot", "--rules", rules, "--state", state],
        )
        .arg("--input")
        .arg(&input)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
        (
            outcomes(&out.stdout),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (first, err) = run(&sb);
    assert_eq!(count(&first, "created"), n, "{err}");

    let before = sb.state().providers["hubspot"].requests;
    let (second, err) = run(&sb);
    assert_eq!(count(&second, "unchanged"), n, "{err}");
    assert_eq!(
        sb.state().providers["hubspot"].requests,
        before,
        "a replay makes no request at all"
    );
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(
            a["target_id"], b["target_id"],
            "the ledger knows each record's id"
        );
    }
    assert!(err.contains("200 unchanged"), "{err}");

    // Ten records change one field each: exactly ten updates.
    for l in leads.iter_mut().step_by(20) {
        l["company"] = json!("Changed Ltd");
    }
    write_ndjson(&input, &leads);
    let (third, err) = run(&sb);
    assert_eq!(
        (count(&third, "updated"), count(&third, "unchanged")),
        (10, n - 10),
        "{err}"
    );
    let held = &sb.state().providers["hubspot"].records["contacts"];
    let changed = held
        .iter()
        .filter(|c| c["properties"]["company"] == "Changed Ltd")
        .count();
    assert_eq!((held.len(), changed), (n, 10));

    // --full sends everything again.
    let out = command(
        &sb,
        &[
            "run",
            "lead_to_hubspot",
            "--rules",
            rules,
            "--state",
            state,
            "--full",
        ],
    )
    .arg("--input")
    .arg(&input)
    .output()
    .unwrap();
    assert_eq!(count(&outcomes(&out.stdout), "updated"), n);

    // The audit: runs, the changelog.
    let runs = command(&sb, &["runs", "--state", state, "--format", "json"])
        .output()
        .unwrap();
    let runs = outcomes(&runs.stdout);
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[0]["counters"]["updated"], n);
    assert_eq!(runs[2]["counters"]["unchanged"], n);
    let log = command(
        &sb,
        &[
            "log", "--state", state, "--status", "updated", "--format", "json",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(outcomes(&log.stdout).len(), 10 + n);
    let key = command(
        &sb,
        &["log", "--state", state, "--key", "lead0@example.com"],
    )
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&key.stdout);
    assert_eq!(
        text.lines().count(),
        3,
        "created, updated, updated again (--full): {text}"
    );
    rt.block_on(sb.shutdown());
}

#[test]
fn failed_records_wait_in_the_dead_letters_until_a_later_run_succeeds() {
    let rt = runtime();
    let sb = rt
        .block_on(rulebridge_sandbox::start(SandboxConfig::default()))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let rules = copy_rules(tmp.path());
    let rules = rules.to_str().unwrap();
    let state = tmp.path().join("state.db");
    let state = state.to_str().unwrap();
    // Without the custom properties HubSpot refuses every lead.
    let input = tmp.path().join("leads.ndjson");
    write_ndjson(&input, &(0..5).map(lead).collect::<Vec<_>>());
    let send = |sb: &Sandbox, input: &Path| {
        let out = command(
            sb,
            &["run", "lead_to_hubspot", "--rules", rules, "--state", state],
        )
        .arg("--input")
        .arg(input)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
        (
            outcomes(&out.stdout),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (out, err) = send(&sb, &input);
    assert_eq!(count(&out, "failed"), 5, "{err}");
    let list = command(&sb, &["dlq", "list", "--state", state, "--format", "json"])
        .output()
        .unwrap();
    let letters = outcomes(&list.stdout);
    assert_eq!(letters.len(), 5);
    assert_eq!(letters[0]["kind"], "validation");
    // The changelog keeps HubSpot's correlation id of each refused request.
    let log = command(
        &sb,
        &[
            "log", "--state", state, "--status", "failed", "--format", "json",
        ],
    )
    .output()
    .unwrap();
    let log = outcomes(&log.stdout);
    assert_eq!(log.len(), 5);
    assert!(
        log.iter()
            .all(|c| c["correlation_id"].as_str().is_some_and(|c| c.len() == 36)),
        "{log:?}"
    );
    assert!(log.iter().all(|c| c["http_status"] == 400));
    // Dead letters are listed oldest first, ties by id: find lead0's.
    let id = letters
        .iter()
        .find(|l| l["record_key"] == "lead0@example.com")
        .and_then(|l| l["id"].as_str())
        .unwrap()
        .to_string();
    let show = command(
        &sb,
        &["dlq", "show", "--state", state, "lead_to_hubspot", &id],
    )
    .output()
    .unwrap();
    let shown: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(
        shown["input"]["email"], "lead0@example.com",
        "the input is kept as read"
    );
    let dropped = command(
        &sb,
        &["dlq", "drop", "--state", state, "lead_to_hubspot", &id],
    )
    .output()
    .unwrap();
    assert!(dropped.status.success());

    // The portal gets its properties; the next run, over other records, retries the queue.
    let created = command(
        &sb,
        &[
            "fields",
            "hubspot",
            "contact",
            "--create-missing",
            "--rules",
            rules,
        ],
    )
    .output()
    .unwrap();
    assert!(created.status.success());
    let other = tmp.path().join("other.ndjson");
    write_ndjson(&other, &[lead(100)]);
    let (out, err) = send(&sb, &other);
    assert_eq!(count(&out, "created"), 1 + 4, "{err}");
    assert!(err.contains("retrying 4 dead letter(s)"), "{err}");
    let list = command(&sb, &["dlq", "list", "--state", state])
        .output()
        .unwrap();
    assert!(list.stdout.is_empty(), "succeeded records leave the queue");
    let held = &sb.state().providers["hubspot"].records["contacts"];
    assert_eq!(
        held.len(),
        5,
        "four retried, one new; the dropped one not sent"
    );
    rt.block_on(sb.shutdown());
}

/// A lead record whose `name` is marked sensitive: its failed inputs are sealed under the
/// master key, shown and retried with it, left queued without it.
#[test]
fn dead_letters_of_sensitive_records_are_sealed_and_retried_with_the_key() {
    let rt = runtime();
    let sb = rt
        .block_on(rulebridge_sandbox::start(SandboxConfig::default()))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let rules = copy_rules(tmp.path());
    let record = rules.join("records/lead.yaml");
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(text.contains("  name: string\n"));
    std::fs::write(
        &record,
        text.replace(
            "  name: string\n",
            "  name: { type: string, sensitive: true }\n",
        ),
    )
    .unwrap();
    let rules = rules.to_str().unwrap();
    let state = tmp.path().join("state.db");
    let state = state.to_str().unwrap();
    let key = rulebridge::secrets::sealed::MasterKey::generate();
    let key = key.to_base64();
    let keyed = |args: &[&str], with_key: bool| {
        let mut c = command(&sb, args);
        c.env_remove("RULEBRIDGE_MASTER_KEY")
            .env_remove("RULEBRIDGE_MASTER_PASSPHRASE");
        if with_key {
            c.env("RULEBRIDGE_MASTER_KEY", key.expose());
        }
        c.stderr(Stdio::piped()).output().unwrap()
    };
    // Without the custom properties HubSpot refuses every lead.
    let input = tmp.path().join("leads.ndjson");
    write_ndjson(&input, &(0..3).map(lead).collect::<Vec<_>>());
    let input = input.to_str().unwrap();
    let run = [
        "run",
        "lead_to_hubspot",
        "--rules",
        rules,
        "--state",
        state,
        "--input",
    ];
    let out = keyed(&[&run[..], &[input]].concat(), true);
    assert_eq!(count(&outcomes(&out.stdout), "failed"), 3);
    let mut file = std::fs::read(state).unwrap();
    file.extend(std::fs::read(format!("{state}-wal")).unwrap_or_default());
    assert!(
        !file.windows(12).any(|w| w == b"Lead1 Person"),
        "a sensitive value is in the state file in clear"
    );

    let list = keyed(
        &["dlq", "list", "--state", state, "--format", "json"],
        false,
    );
    let letters = outcomes(&list.stdout);
    assert_eq!(letters.len(), 3);
    assert_eq!(letters[0]["input_form"], "sealed");
    // Dead letters are listed oldest first, ties by id: find lead0's.
    let id = letters
        .iter()
        .find(|l| l["record_key"] == "lead0@example.com")
        .and_then(|l| l["id"].as_str())
        .unwrap()
        .to_string();
    let show = |with_key| {
        let out = keyed(
            &["dlq", "show", "--state", state, "lead_to_hubspot", &id],
            with_key,
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert!(
        show(true)["input"]["name"]
            .as_str()
            .unwrap()
            .starts_with("Lead")
    );
    assert!(
        show(false)["input"]
            .as_str()
            .unwrap()
            .contains("RULEBRIDGE_MASTER_KEY"),
        "without the key the input is not shown"
    );

    assert!(
        keyed(
            &[
                "fields",
                "hubspot",
                "contact",
                "--create-missing",
                "--rules",
                rules
            ],
            false
        )
        .status
        .success()
    );
    let other = tmp.path().join("other.ndjson");
    write_ndjson(&other, &[lead(100)]);
    let other = other.to_str().unwrap();
    // Without the key the queue is left as it is, and says why.
    let out = keyed(&[&run[..], &[other]].concat(), false);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("3 dead letter(s) left queued"), "{err}");
    assert_eq!(count(&outcomes(&out.stdout), "created"), 1, "{err}");
    // With it, the three are opened and sent.
    let out = keyed(&[&run[..], &[other]].concat(), true);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("retrying 3 dead letter(s)"), "{err}");
    assert_eq!(count(&outcomes(&out.stdout), "created"), 3, "{err}");
    let list = keyed(&["dlq", "list", "--state", state], false);
    assert!(list.stdout.is_empty(), "succeeded records leave the queue");
    rt.block_on(sb.shutdown());
}

/// The checkpoint of the flow's latest run, read from the store file as another process.
fn checkpoint(rt: &tokio::runtime::Runtime, state: &str) -> u64 {
    rt.block_on(async {
        use rulebridge::state::Store;
        let Ok(store) = rulebridge::state::SqlStore::open(state).await else {
            return 0;
        };
        let runs = store.runs(&Default::default()).await.unwrap_or_default();
        store.db().close().await;
        runs.first().map_or(0, |r| r.checkpoint)
    })
}

/// Ledger entries left pending (writes in flight when the process died).
fn pending(rt: &tokio::runtime::Runtime, state: &str) -> i64 {
    rt.block_on(async {
        let store = rulebridge::state::SqlStore::open(state).await.unwrap();
        // Settles the dead process journaled are outcomes known, not writes in flight.
        store.fold_journal().await.unwrap();
        let n: i64 = sqlx_count(
            &store,
            "SELECT count(*) AS n FROM rb_ledger WHERE state = 'pending'",
        )
        .await;
        store.db().close().await;
        n
    })
}

async fn sqlx_count(store: &rulebridge::state::SqlStore, sql: &'static str) -> i64 {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_one(store.db().pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap()
}

/// What a chaos run did: kills, writes in flight at them, runs needed to finish.
struct Chaos {
    kills: usize,
    in_flight_at_kills: i64,
    rounds: usize,
}

/// Starts the run, kills it with SIGKILL `kills_wanted` times (spread evenly over the first
/// 90% of its records, each while writes are in flight) and restarts it until it ends clean.
fn kill_and_restart(
    rt: &tokio::runtime::Runtime,
    state: &str,
    n: usize,
    kills_wanted: usize,
    // Kill this long after each start instead of at checkpoints (a run whose output order
    // is held up by long waits checkpoints in large steps).
    after: Option<Duration>,
    spawn: impl Fn() -> std::process::Child,
) -> Chaos {
    // Kill points spread evenly over the first 90% of the run, each while writes are in
    // flight.
    let mut kills = 0;
    let mut in_flight_at_kills = 0;
    let targets: Vec<u64> = (1..=kills_wanted)
        .map(|k| (n * 9 * k / (10 * (kills_wanted + 1))) as u64)
        .collect();
    let mut rng_state = 0x9e37_79b9_u64;
    let mut jitter = || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        Duration::from_millis(rng_state % 40)
    };
    for target in targets {
        let mut child = spawn();
        let started = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut finished = false;
        let due = |started: Instant| match after {
            Some(d) => started.elapsed() >= d,
            None => checkpoint(rt, state) >= target,
        };
        while !due(started) {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                eprintln!(
                    "run ended by itself before kill {} (checkpoint {}): {status}: {}",
                    kills + 1,
                    checkpoint(rt, state),
                    err.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                );
                finished = true;
                break;
            }
            assert!(Instant::now() < deadline, "the run made no progress");
            std::thread::sleep(Duration::from_millis(20));
        }
        if finished {
            continue;
        }
        // Kill while writes are in flight (claimed, not yet settled), at a random moment.
        let until = Instant::now() + Duration::from_secs(3);
        while pending(rt, state) == 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(jitter());
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let p = pending(rt, state);
        eprintln!(
            "kill {kills} at checkpoint {}, {:?} after its start: {p} pending",
            checkpoint(rt, state),
            started.elapsed()
        );
        in_flight_at_kills += p;
    }
    assert!(
        in_flight_at_kills > 0,
        "some kill came with writes in flight"
    );
    assert_eq!(kills, kills_wanted, "the run was killed every time");

    // Restart until the run is done and nothing is left failed (a record whose retries ran
    // out is retried by the next run, as a dead letter or from the input).
    let mut rounds = 0;
    loop {
        rounds += 1;
        let out = spawn().wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            break;
        }
        eprintln!(
            "run {rounds} did not finish clean: {}",
            err.lines().last().unwrap_or("")
        );
        assert!(rounds < 6, "still failing after {rounds} runs: {err}");
    }

    Chaos {
        kills,
        in_flight_at_kills,
        rounds,
    }
}

#[test]
fn killed_three_times_and_restarted_every_record_is_written_once() {
    let rt = runtime();
    // Salesforce leads as shipped: no uniqueness at all, so only the engine keeps a lead from
    // being created twice. Faults from the sandbox: 5xx, connections dropped before and after
    // the request was processed, slow responses.
    let config = SandboxConfig {
        seed: 11,
        faults: Faults {
            error_rate: 0.08,
            drop_rate: 0.06,
            drop_after_rate: 0.06,
            latency_ms: 2,
            jitter_ms: 25,
            ..Faults::default()
        },
        salesforce_duplicates: SalesforceDuplicates::None,
        salesforce_api_limit: 1_000_000,
        ..SandboxConfig::default()
    };
    let sb = rt.block_on(rulebridge_sandbox::start(config)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.db");
    let state = state.to_str().unwrap().to_string();
    // `benches/chaos.sh` runs the same test larger (100,000 records, 10 kills).
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n = env("CHAOS_RECORDS", 10_000);
    let kills_wanted = env("CHAOS_KILLS", 3);
    let leads: Vec<Value> = (0..n).map(lead).collect();
    let input = tmp.path().join("leads.ndjson");
    write_ndjson(&input, &leads);
    // The kit's own backoff (1 s doubling to 30 s) as milliseconds, so the test is quick.
    let rules = copy_rules(tmp.path());
    let kit = rules.join("providers/salesforce.yaml");
    let text = std::fs::read_to_string(&kit).unwrap();
    let quick = text.replace("base: 1s, max: 30s", "base: 20ms, max: 300ms");
    assert_ne!(
        text, quick,
        "the kit's retry policy is where the test expects it"
    );
    std::fs::write(&kit, quick).unwrap();
    let rules = rules.to_str().unwrap();
    let spawn = || {
        command(
            &sb,
            &[
                "run",
                "lead_to_salesforce",
                "--rules",
                rules,
                "--state",
                &state,
            ],
        )
        .arg("--input")
        .arg(&input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };

    let Chaos {
        kills,
        in_flight_at_kills,
        rounds,
    } = kill_and_restart(&rt, &state, n, kills_wanted, None, spawn);

    let st = sb.state();
    let sf = &st.providers["salesforce"];
    let held = &sf.records["Lead"];
    let mut emails: Vec<&str> = held.iter().filter_map(|l| l["Email"].as_str()).collect();
    emails.sort_unstable();
    let total = emails.len();
    emails.dedup();
    let mut want: Vec<String> = (0..n).map(|i| format!("lead{i}@example.com")).collect();
    want.sort_unstable();
    assert_eq!(total - emails.len(), 0, "duplicates");
    assert_eq!(emails, want, "every lead exactly once, none missing");
    assert!(
        sf.injected_errors > 0 && sf.dropped > 0,
        "faults happened: {sf:?}"
    );

    // Every input record has exactly one terminal outcome in the store: the first run's
    // changelog (resumed three times) holds each index once.
    rt.block_on(async {
        use rulebridge::state::Store;
        let store = rulebridge::state::SqlStore::open(&state).await.unwrap();
        let mut runs = store.runs(&Default::default()).await.unwrap();
        runs.reverse();
        let first = &runs[0];
        assert_eq!(first.status, rulebridge::state::RunStatus::Done);
        assert_eq!(first.counters.total, n as u64, "{first:?}");
        let changes = store
            .changes(&rulebridge::state::ChangeFilter {
                run_id: Some(first.id.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut seen = vec![0u32; n];
        for c in &changes {
            seen[c.index as usize] += 1;
            assert!(
                ["created", "skipped", "failed", "unchanged"].contains(&c.action.as_str()),
                "{c:?}"
            );
        }
        assert!(seen.iter().all(|&k| k == 1), "one outcome per record");
        eprintln!(
            "chaos: {n} records, {kills} kills ({in_flight_at_kills} writes in flight), {rounds} restart(s) to finish; sandbox: {} requests, {} 5xx injected, {} dropped; {} duplicates, {} missing",
            sf.requests,
            sf.injected_errors,
            sf.dropped,
            total - emails.len(),
            want.len() - emails.len()
        );
    });
    rt.block_on(sb.shutdown());
}

#[test]
fn two_processes_sharing_a_postgres_store_never_write_a_record_twice() {
    let Some(server) = rulebridge::testing::postgres_server() else {
        eprintln!(
            "RULEBRIDGE_TEST_POSTGRES is not set: the two-process PostgreSQL test was not run"
        );
        return;
    };
    let rt = runtime();
    let url = rt
        .block_on(rulebridge::testing::postgres_database(&server))
        .unwrap();
    // No uniqueness at Salesforce: two processes that both looked and both created would
    // leave duplicates; only the shared ledger's claims prevent them.
    // Slow answers keep the first process busy for seconds after its first claims, so the
    // second one, started then, meets records the first holds or has not reached (a
    // process claims a group at a time, as it sends them, and two groups are in flight at
    // once: 2,000 leads take the first process about five seconds, even on a fast machine).
    let config = SandboxConfig {
        faults: Faults {
            latency_ms: 1_000,
            jitter_ms: 200,
            ..Faults::default()
        },
        salesforce_duplicates: SalesforceDuplicates::None,
        salesforce_api_limit: 1_000_000,
        ..SandboxConfig::default()
    };
    let sb = rt.block_on(rulebridge_sandbox::start(config)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let n = 2_000;
    let input = tmp.path().join("leads.ndjson");
    write_ndjson(&input, &(0..n).map(lead).collect::<Vec<_>>());
    let rules = rules_src();
    let rules = rules.to_str().unwrap();
    let spawn = || {
        command(
            &sb,
            &[
                "run",
                "lead_to_salesforce",
                "--rules",
                rules,
                "--state",
                &url,
                "--concurrency",
                "2",
            ],
        )
        .arg("--input")
        .arg(&input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let a = spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while pending(&rt, &url) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first process claims nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let b = spawn();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let err = format!(
        "{}\n{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    let (a, b) = (outcomes(&a.stdout), outcomes(&b.stdout));
    assert_eq!((a.len(), b.len()), (n, n), "{err}");
    let created = count(&a, "created") + count(&b, "created");
    assert_eq!(created, n, "each record created by one process: {err}");
    assert_eq!(count(&a, "failed") + count(&b, "failed"), 0, "{err}");
    // Both really ran at once (their runs overlap in the store). Each either wrote records
    // the other had not reached, or met records the other was still writing, waited for
    // them and found them unchanged: which depends on how far apart they start.
    let overlapping = rt.block_on(async {
        let store = rulebridge::state::SqlStore::open(&url).await.unwrap();
        let n = sqlx_count(
            &store,
            "SELECT count(*) AS n FROM rb_runs a JOIN rb_runs b ON a.run_id < b.run_id \
             WHERE a.started_at < b.ended_at AND b.started_at < a.ended_at",
        )
        .await;
        store.db().close().await;
        n
    });
    assert_eq!(overlapping, 1, "the two runs did not overlap: {err}");
    for side in [&a, &b] {
        let ended = count(side, "created") + count(side, "unchanged") + count(side, "skipped");
        assert_eq!(ended, n, "{err}");
    }
    let held = &sb.state().providers["salesforce"].records["Lead"];
    let mut emails: Vec<&str> = held.iter().filter_map(|l| l["Email"].as_str()).collect();
    emails.sort_unstable();
    emails.dedup();
    assert_eq!((held.len(), emails.len()), (n, n), "no lead written twice");
    rt.block_on(sb.shutdown());
}

#[test]
fn references_resolve_from_the_id_map_without_a_search() {
    let rt = runtime();
    let sb = rt
        .block_on(rulebridge_sandbox::start(SandboxConfig::default()))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.db");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/data/task_crm");
    let rules = rules_src();
    let run = |sb: &Sandbox, state_args: &[&str]| {
        let out = command(
            sb,
            &[
                "run",
                "client_to_task_crm",
                "project_to_task_crm",
                "--rules",
                rules.to_str().unwrap(),
            ],
        )
        .args(state_args)
        .arg("--input")
        .arg(&data)
        .output()
        .unwrap();
        // The example data holds a project whose client does not exist: it fails alone.
        let out = outcomes(&out.stdout);
        (count(&out, "created"), count(&out, "failed"))
    };
    // A search for a client by its external id is a GET on the clients list with a filter.
    let client_searches = |sb: &Sandbox| -> u64 {
        sb.state().providers["taskcrm"]
            .log
            .iter()
            .filter(|e| e.method == "GET" && e.path.contains("/clients"))
            .count() as u64
    };
    let with_state = run(&sb, &["--state", state.to_str().unwrap()]);
    let with_ids = client_searches(&sb);
    let sb2 = rt
        .block_on(rulebridge_sandbox::start(SandboxConfig::default()))
        .unwrap();
    assert_eq!(run(&sb2, &["--no-state"]), with_state);
    let without = client_searches(&sb2);
    // Without the id map, each project's client is searched (and each client looked up
    // before its own write); with it, the clients written first answer the projects' links.
    assert!(
        without > with_ids,
        "searches: {with_ids} with the id map, {without} without"
    );
    // Each project linked to the same client (by the client's external id) either way.
    let links = |sb: &Sandbox| {
        let st = sb.state();
        let crm = &st.providers["taskcrm"];
        let client = |id: &Value| {
            crm.records["clients"]
                .iter()
                .find(|c| &c["id"] == id)
                .map(|c| c["external_id"].clone())
        };
        let mut l: Vec<(Value, Option<Value>)> = crm.records["projects"]
            .iter()
            .map(|p| (p["external_id"].clone(), client(&p["client_id"])))
            .collect();
        l.sort_by_key(|(p, _)| p.to_string());
        l
    };
    assert_eq!(links(&sb), links(&sb2), "the same links either way");
    rt.block_on(sb.shutdown());
    rt.block_on(sb2.shutdown());
}

#[test]
fn killed_during_429_storms_every_record_ends_once() {
    let rt = runtime();
    // HubSpot's limit scaled to a twentieth (5 requests per 10 s) with the kit's own pacing
    // removed: the client runs into 429 storms and rides them out on Retry-After, while 5xx
    // and dropped connections hit it too and the process is killed three times.
    let config = SandboxConfig {
        seed: 23,
        faults: Faults {
            error_rate: 0.05,
            drop_rate: 0.03,
            drop_after_rate: 0.03,
            rate_limit_factor: 0.05,
            ..Faults::default()
        },
        ..SandboxConfig::default()
    };
    let sb = rt.block_on(rulebridge_sandbox::start(config)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let rules = copy_rules(tmp.path());
    let kit = rules.join("providers/hubspot.yaml");
    let text = std::fs::read_to_string(&kit).unwrap();
    let unpaced: String = text
        .lines()
        .filter(|l| !l.starts_with("rate_limit:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(
        text, unpaced,
        "the kit's rate limit is where the test expects it"
    );
    std::fs::write(&kit, unpaced).unwrap();
    let rules = rules.to_str().unwrap().to_string();
    let created = command(
        &sb,
        &[
            "fields",
            "hubspot",
            "contact",
            "--create-missing",
            "--rules",
            &rules,
        ],
    )
    .output()
    .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let n = 1_000;
    let input = tmp.path().join("leads.ndjson");
    write_ndjson(&input, &(0..n).map(lead).collect::<Vec<_>>());
    let state = tmp.path().join("state.db").to_str().unwrap().to_string();
    let spawn = || {
        command(
            &sb,
            &[
                "run",
                "lead_to_hubspot",
                "--rules",
                &rules,
                "--state",
                &state,
            ],
        )
        .arg("--input")
        .arg(&input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let chaos = kill_and_restart(&rt, &state, n, 3, Some(Duration::from_secs(2)), spawn);
    let st = sb.state();
    let hs = &st.providers["hubspot"];
    assert!(hs.rate_limited > 0, "429 storms happened: {hs:?}");
    let held = &hs.records["contacts"];
    let mut emails: Vec<&str> = held
        .iter()
        .filter_map(|c| c["properties"]["email"].as_str())
        .collect();
    emails.sort_unstable();
    emails.dedup();
    assert_eq!((held.len(), emails.len()), (n, n), "every lead once");
    eprintln!(
        "chaos (429 storms): {n} records, {} kills ({} writes in flight), {} run(s) to finish; sandbox: {} requests, {} rate limited, {} 5xx injected, {} dropped",
        chaos.kills,
        chaos.in_flight_at_kills,
        chaos.rounds,
        hs.requests,
        hs.rate_limited,
        hs.injected_errors,
        hs.dropped
    );
    rt.block_on(sb.shutdown());
}

#[test]
fn a_corrupt_state_file_is_refused_with_what_to_do_and_left_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("state.db");
    std::fs::write(&junk, "not a database, an operator's notes").unwrap();
    let input = tmp.path().join("leads.ndjson");
    write_ndjson(&input, &[lead(0)]);
    for args in [
        vec!["run", "lead_to_hubspot", "--input", input.to_str().unwrap()],
        vec!["runs"],
        vec!["log"],
        vec!["dlq", "list"],
    ] {
        let out = Command::new(bin())
            .args(&args)
            .args(
                ["--rules", rules_src().to_str().unwrap()]
                    .iter()
                    .filter(|_| args[0] == "run"),
            )
            .arg("--state")
            .arg(&junk)
            .env("HUBSPOT_TOKEN", "t")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            out.stdout.is_empty(),
            "{args:?}: nothing was sent or listed"
        );
        assert!(
            err.contains("state.db")
                && err.contains("not a rulebridge database")
                && err.contains("move it aside"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&junk).unwrap(),
        "not a database, an operator's notes"
    );
}
