//! Load and fault benchmark of `rulebridge serve` (see BENCHMARKS.md, `benches/serve_load.sh`).
//!
//! This process hosts the sandbox (Salesforce leads without any uniqueness, so only the
//! engine keeps a lead from being created twice) and runs `rulebridge serve` as a child
//! process against it, with a real state file and a real API key. Then:
//!
//! 1. **Load**: `--clients` concurrent clients POST one new lead each per request to
//!    `/v1/flows/lead_to_salesforce/records` for `--seconds`: throughput, p50/p99/max latency,
//!    errors (any answer but 200 with a `created` outcome, or no answer).
//! 2. **Fault**: the same load; after `--kill-after` seconds `serve` gets SIGKILL, is started
//!    again on the same port and state file, and the load goes on for `--after-restart`
//!    seconds. Every record accepted (answered 200) in either phase must have exactly one
//!    outcome in the store's changelog and exactly one lead at the fake; no lead may be at
//!    the fake twice, accepted or not.
//!
//! The kit's own `rate_limit` (25 a second) is taken out of the copied rules so the figures
//! are the server's, not the pacing's.
//!
//! ```text
//! cargo bench --bench serve_load -- --bin target/release/rulebridge --clients 16 --seconds 30
//! ```

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rulebridge_sandbox::{SalesforceDuplicates, SandboxConfig};
use serde_json::{Value, json};

const FLOW: &str = "lead_to_salesforce";
const TENANT: &str = "load";

struct Args {
    bin: PathBuf,
    clients: usize,
    seconds: u64,
    kill_after: u64,
    after_restart: u64,
}

fn args() -> Args {
    let mut a = Args {
        bin: PathBuf::from("target/release/rulebridge"),
        clients: 16,
        seconds: 30,
        kill_after: 5,
        after_restart: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = match k.as_str() {
            "--bench" => continue,
            _ => it.next().unwrap_or_default(),
        };
        let n = || {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{k}: not a number: {v}"))
        };
        match k.as_str() {
            "--bin" => a.bin = PathBuf::from(&v),
            "--clients" => a.clients = n() as usize,
            "--seconds" => a.seconds = n(),
            "--kill-after" => a.kill_after = n(),
            "--after-restart" => a.after_restart = n(),
            _ => panic!("unknown argument {k}"),
        }
    }
    a
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read rules") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// The sandbox's credentials and base URLs, as `run --sandbox` would give them.
fn with_sandbox(c: &mut Command, sb: &rulebridge_sandbox::Sandbox) {
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
    c.env_remove("RULEBRIDGE_STATE").env("NO_COLOR", "1");
}

/// `serve` on `listen`; returns the child and its URL once it listens.
fn start_serve(
    bin: &Path,
    sb: &rulebridge_sandbox::Sandbox,
    rules: &Path,
    state: &str,
    work: &Path,
    listen: &str,
) -> (Child, String) {
    let mut c = Command::new(bin);
    with_sandbox(&mut c, sb);
    c.args([
        "serve",
        "--listen",
        listen,
        "--key-rate",
        "1000000/s",
        "--state",
        state,
    ])
    .arg("--rules")
    .arg(rules)
    .env("RULEBRIDGE_DATABASE_USERS_DB", work.join("users.db"))
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = c.spawn().expect("serve starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("a first line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("serve said `{line}`"))
        .to_string();
    (child, url)
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    latencies: Vec<Duration>,
    errors: u64,
    /// Record key → times answered `created` (1 each: every lead is sent once).
    accepted: Vec<String>,
}

/// `clients` clients sending new leads until `stop`; `phase` keeps the e-mails apart.
async fn load(
    url: Arc<std::sync::Mutex<String>>,
    key: String,
    clients: usize,
    phase: &str,
    stop: Arc<AtomicBool>,
) -> Seen {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");
    let seq = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (http, key, url, stop, seq, phase) = (
            http.clone(),
            key.clone(),
            url.clone(),
            stop.clone(),
            seq.clone(),
            phase.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            while !stop.load(Ordering::Relaxed) {
                let i = seq.fetch_add(1, Ordering::Relaxed);
                let lead = json!({
                    "email": format!("{phase}-{client}-{i}@example.com"),
                    "name": format!("Load{i} Person{client}"),
                    "company": format!("Company {}", i % 97),
                    "score": (i * 7) % 100,
                    "source": "web",
                    "country": "US",
                });
                let base = url.lock().map(|u| u.clone()).unwrap_or_default();
                let started = Instant::now();
                let answer = http
                    .post(format!("{base}/v1/flows/{FLOW}/records"))
                    .bearer_auth(&key)
                    .json(&lead)
                    .send()
                    .await;
                let body = match answer {
                    Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
                    _ => None,
                };
                let took = started.elapsed();
                match body {
                    Some(b) if b["outcomes"][0]["status"] == "created" => {
                        seen.latencies.push(took);
                        seen.accepted.push(
                            b["outcomes"][0]["key"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        );
                    }
                    _ => {
                        seen.errors += 1;
                        // The server is away (killed): do not spin.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            seen
        }));
    }
    let mut all = Seen::default();
    for t in tasks {
        let s = t.await.expect("client task");
        all.latencies.extend(s.latencies);
        all.errors += s.errors;
        all.accepted.extend(s.accepted);
    }
    all
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let a = args();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = if a.bin.is_absolute() {
        a.bin.clone()
    } else {
        root.join(&a.bin)
    };
    let work = tempfile::tempdir().expect("temp dir");
    let rules = work.path().join("rules");
    copy_dir(&root.join("rules"), &rules);
    let kit = rules.join("providers/salesforce.yaml");
    let text = std::fs::read_to_string(&kit).expect("kit");
    let unpaced: String = text
        .lines()
        .filter(|l| !l.starts_with("rate_limit:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(
        text, unpaced,
        "the kit's rate limit is where the benchmark expects it"
    );
    std::fs::write(&kit, unpaced).expect("write kit");
    let state = work.path().join("state.db").display().to_string();

    let sandbox_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let sb = sandbox_rt
        .block_on(rulebridge_sandbox::start(SandboxConfig {
            salesforce_duplicates: SalesforceDuplicates::None,
            salesforce_api_limit: 1_000_000_000,
            log_capacity: 0,
            ..SandboxConfig::default()
        }))
        .expect("sandbox");

    let made = Command::new(&bin)
        .args([
            "keys", "create", "--tenant", TENANT, "--name", "load", "--state", &state,
        ])
        .output()
        .expect("keys create");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let key = String::from_utf8_lossy(&made.stdout)
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().last())
        .expect("a key")
        .to_string();

    let (mut serve, url) = start_serve(&bin, &sb, &rules, &state, work.path(), "127.0.0.1:0");
    let listen = url.trim_start_matches("http://").to_string();
    let shared_url = Arc::new(std::sync::Mutex::new(url.clone()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    // 1. Load.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let timer = {
        let stop = stop.clone();
        let secs = a.seconds;
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(secs));
            stop.store(true, Ordering::Relaxed);
        })
    };
    let mut seen = rt.block_on(load(
        shared_url.clone(),
        key.clone(),
        a.clients,
        "load",
        stop,
    ));
    let wall = started.elapsed();
    let _ = timer.join();
    seen.latencies.sort_unstable();
    let ok = seen.latencies.len();
    println!(
        "load: {} clients, {:.1} s: {ok} records accepted ({:.0}/s), {} errors; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        a.clients,
        wall.as_secs_f64(),
        ok as f64 / wall.as_secs_f64(),
        seen.errors,
        percentile(&seen.latencies, 0.50),
        percentile(&seen.latencies, 0.99),
        percentile(&seen.latencies, 1.0),
    );

    // 2. Fault: SIGKILL during the load, restart on the same port and store.
    let stop = Arc::new(AtomicBool::new(false));
    let driver = {
        let (stop, bin, rules, state, dir) = (
            stop.clone(),
            bin.clone(),
            rules.clone(),
            state.clone(),
            work.path().to_path_buf(),
        );
        let (kill_after, after) = (a.kill_after, a.after_restart);
        let shared_url = shared_url.clone();
        let sb_urls: Vec<(String, String)> = rulebridge_sandbox::KITS
            .iter()
            .filter_map(|(kit, _, _)| sb.kit_base_url(kit).map(|u| (kit.to_string(), u)))
            .collect();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(kill_after));
            // Child::kill is SIGKILL on Unix.
            serve.kill().expect("SIGKILL");
            let _ = serve.wait();
            let killed_at = Instant::now();
            let mut c = Command::new(&bin);
            for (name, value) in rulebridge_sandbox::CREDENTIALS {
                c.env(name, value);
            }
            for (kit, url) in &sb_urls {
                c.env(
                    format!(
                        "RULEBRIDGE_BASE_URL_{}",
                        kit.to_uppercase().replace('-', "_")
                    ),
                    url,
                );
            }
            c.env_remove("RULEBRIDGE_STATE")
                .args([
                    "serve",
                    "--listen",
                    &listen,
                    "--key-rate",
                    "1000000/s",
                    "--state",
                    &state,
                ])
                .arg("--rules")
                .arg(&rules)
                .env("RULEBRIDGE_DATABASE_USERS_DB", dir.join("users.db"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            let mut again = c.spawn().expect("serve restarts");
            let mut line = String::new();
            if let Some(out) = again.stdout.take() {
                let _ = BufReader::new(out).read_line(&mut line);
            }
            if let Some(u) = line.trim().strip_prefix("listening on ")
                && let Ok(mut shared) = shared_url.lock()
            {
                *shared = u.to_string();
            }
            let down = killed_at.elapsed();
            std::thread::sleep(Duration::from_secs(after));
            stop.store(true, Ordering::Relaxed);
            (again, down)
        })
    };
    let fault = rt.block_on(load(
        shared_url.clone(),
        key.clone(),
        a.clients,
        "fault",
        stop,
    ));
    let (mut again, down) = driver.join().expect("driver");

    // Every accepted record: one outcome in the store, one lead at the fake.
    let accepted: Vec<String> = seen
        .accepted
        .iter()
        .chain(&fault.accepted)
        .cloned()
        .collect();
    let changes = rt.block_on(async {
        use rulebridge::state::Store;
        let store = rulebridge::state::SqlStore::open(&state)
            .await
            .expect("store");
        store
            .changes(&rulebridge::state::ChangeFilter {
                tenant: TENANT.to_string(),
                flow: Some(FLOW.to_string()),
                ..Default::default()
            })
            .await
            .expect("changelog")
    });
    let mut outcomes: HashMap<String, u32> = HashMap::new();
    for c in &changes {
        if let Some(k) = &c.record_key {
            *outcomes.entry(k.clone()).or_default() += 1;
        }
    }
    let mut at_fake: BTreeMap<String, u32> = BTreeMap::new();
    let snapshot = sb.state();
    if let Some(held) = snapshot
        .providers
        .get("salesforce")
        .and_then(|p| p.records.get("Lead"))
    {
        for lead in held {
            if let Some(e) = lead["Email"].as_str() {
                *at_fake.entry(e.to_string()).or_default() += 1;
            }
        }
    }
    let not_one_outcome = accepted
        .iter()
        .filter(|k| outcomes.get(*k) != Some(&1))
        .count();
    let not_at_fake = accepted
        .iter()
        .filter(|k| at_fake.get(*k) != Some(&1))
        .count();
    let written_twice = at_fake.values().filter(|n| **n > 1).count();
    let unanswered_written = at_fake.len().saturating_sub(accepted.len());
    println!(
        "fault: {} clients, SIGKILL after {} s, serving again {:.2} s later, {} s more: {} records accepted, {} errors (requests refused or cut while down)",
        a.clients,
        a.kill_after,
        down.as_secs_f64(),
        a.after_restart,
        fault.accepted.len(),
        fault.errors,
    );
    println!(
        "check: {} accepted in all; {} without exactly one outcome in the store, {} not exactly once at the fake; {} leads written twice at the fake; {} leads at the fake whose request got no answer (in flight at the kill)",
        accepted.len(),
        not_one_outcome,
        not_at_fake,
        written_twice,
        unanswered_written,
    );
    let _ = again.kill();
    let _ = again.wait();
    sandbox_rt.block_on(sb.shutdown());
    let pass = not_one_outcome == 0 && not_at_fake == 0 && written_twice == 0 && seen.errors == 0;
    println!("result: {}", if pass { "pass" } else { "FAIL" });
    if !pass {
        std::process::exit(1);
    }
}
