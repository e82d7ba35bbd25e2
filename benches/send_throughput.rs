//! Sending throughput against the sandbox, next to its ceiling.
//!
//! `lead_to_hubspot` sends generated leads through the HubSpot kit with batch upserts of 100,
//! the kit's `rate_limit` removed and the sandbox's HubSpot limit out of reach; a load generator
//! sends the very same batch-upsert requests (byte for byte: checked before measuring) straight
//! to the sandbox with reqwest at the same concurrency. Both create the same new contacts in a
//! fresh sandbox. Runs alternate (rulebridge first, then the load generator first, ...) so
//! drift on a noisy machine hits both alike.
//!
//! The sandbox finds a contact by e-mail by scanning every contact it holds, so its cost per
//! record grows with the contacts already stored. `--segment S` sends the input in parts of S
//! leads, each part to a fresh sandbox (timings summed), which keeps that cost small and the
//! same for both clients; `--segment` equal to `--records` (the default) uses one sandbox.
//!
//! Both clients live in this process like the CLI's `send --sandbox`: the sandbox on one
//! multi-thread runtime, the client on another, the client's top-level future run by
//! `block_on` on the main thread, and on the CLI's allocator. CPU time per thread comes from
//! `/proc/self/task`.
//!
//! ```text
//! cargo bench --bench send_throughput -- --records 50000 --segment 1000 --concurrency 1,4,8 --rounds 2
//! ```
//!
//! `--only rulebridge` (or `--only load-generator`) runs one client alone, for profiling;
//! `SEND_BENCH_LOG=1` prints each sandbox's batch requests as `arrival_ms+duration_ms`.

mod send_support;

#[global_allocator]
static ALLOC: rulebridge_alloc::Mimalloc = rulebridge_alloc::Mimalloc;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures::StreamExt;
use rulebridge::exec::RunOptions;
use rulebridge::exec::pipeline::NdjsonOutput;
use rulebridge::exec::send::SendOptions;
use rulebridge::{FlowRunner, Status};
use rulebridge_sandbox::{self as sandbox, Sandbox, SandboxConfig};
use send_support as support;
use serde_json::{Value, json};

const FLOW: &str = "lead_to_hubspot";
const BATCH: usize = 100;
const UPSERT_PATH: &str = "/crm/v3/objects/contacts/batch/upsert";
const UPSERT_ENDPOINT: &str = "POST /crm/v3/objects/contacts/batch/{action}";

/// One measurement: every segment of the input, by one client at one concurrency.
#[derive(Default)]
struct Run {
    records: usize,
    /// Summed over the segments.
    wall: Duration,
    /// CPU of the client: the main thread (its top-level future) and its runtime's workers.
    client_cpu: Duration,
    /// CPU of the sandbox runtime's workers.
    sandbox_cpu: Duration,
    requests: u64,
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64()
    }

    fn add(&mut self, other: Run) {
        self.records += other.records;
        self.wall += other.wall;
        self.client_cpu += other.client_cpu;
        self.sandbox_cpu += other.sandbox_cpu;
        self.requests += other.requests;
    }

    fn micros_per_record(&self, d: Duration) -> f64 {
        d.as_secs_f64() * 1e6 / self.records.max(1) as f64
    }
}

struct Bench {
    server: tokio::runtime::Runtime,
    client: tokio::runtime::Runtime,
    runner: FlowRunner,
    /// An engine holding the HubSpot kit without its `rate_limit`.
    kit: rulebridge::Engine,
    /// The rule files' engine, whose HubSpot provider declares the flow's custom properties.
    rules: rulebridge::Engine,
    /// The leads as NDJSON, one string per segment (each sent to a fresh sandbox).
    segments: Vec<String>,
    /// The batch-upsert bodies rulebridge sends for each segment, in order.
    bodies: Vec<Vec<Bytes>>,
}

fn main() {
    let number = |name: &str, default: usize| -> usize {
        support::arg(name)
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name} takes a number"))
            })
            .unwrap_or(default)
    };
    let records = number("--records", 50_000);
    let segment = number("--segment", records).clamp(1, records.max(1));
    let rounds = number("--rounds", 1);
    let concurrency: Vec<usize> = support::arg("--concurrency")
        .unwrap_or_else(|| "1,4,8".into())
        .split(',')
        .map(|c| c.trim().parse().expect("--concurrency 1,4,8"))
        .collect();
    let only = support::arg("--only");
    assert!(
        segment == records || segment.is_multiple_of(BATCH),
        "--segment must be a multiple of {BATCH}, so segments batch like the whole input"
    );

    let kit_text = support::hubspot_kit();
    let unlimited: String = kit_text
        .lines()
        .filter(|l| !l.starts_with("rate_limit:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        kit_text.contains("\nrate_limit:") && !unlimited.contains("\nrate_limit:"),
        "the kit's provider-wide rate_limit line moved: update this benchmark"
    );
    let engine = support::engine();
    let runner = engine.runner(FLOW).expect("flow");
    let input = support::leads(records);
    let lines: Vec<&str> = input.lines().collect();
    let segments: Vec<String> = lines
        .chunks(segment)
        .map(|c| c.iter().map(|l| format!("{l}\n")).collect())
        .collect();
    let bodies: Vec<Vec<Bytes>> = segments.iter().map(|s| bodies(&runner, s)).collect();
    let bench = Bench {
        server: support::runtime("rb-sandbox"),
        client: support::runtime("rb-client"),
        runner,
        kit: support::kit_engine(&unlimited),
        rules: support::engine(),
        segments,
        bodies,
    };
    bench.check_same_bodies();
    eprintln!(
        "{records} leads in {} segment(s) of {segment} (a fresh sandbox each), {} batch requests; concurrency {concurrency:?}; {rounds} round(s)",
        bench.segments.len(),
        bench.bodies.iter().map(Vec::len).sum::<usize>(),
    );

    let mut results: Vec<(usize, Vec<Run>, Vec<Run>)> =
        concurrency.iter().map(|&c| (c, vec![], vec![])).collect();
    let mut order = 0usize;
    for round in 0..rounds {
        for (c, ours, ceiling) in results.iter_mut() {
            let (mut a, mut b) = (Run::default(), Run::default());
            for s in 0..bench.segments.len() {
                // Alternate which one goes first.
                if let Some(only) = only.as_deref() {
                    // For profiling one client alone.
                    match only {
                        "rulebridge" => a.add(bench.rulebridge(s, *c)),
                        _ => b.add(bench.load_generator(s, *c)),
                    }
                } else if order.is_multiple_of(2) {
                    a.add(bench.rulebridge(s, *c));
                    b.add(bench.load_generator(s, *c));
                } else {
                    b.add(bench.load_generator(s, *c));
                    a.add(bench.rulebridge(s, *c));
                }
                order += 1;
            }
            eprintln!(
                "round {} c={c}: rulebridge {:.0}/s ({:.2}s), load generator {:.0}/s ({:.2}s)",
                round + 1,
                a.per_sec(),
                a.wall.as_secs_f64(),
                b.per_sec(),
                b.wall.as_secs_f64(),
            );
            ours.push(a);
            ceiling.push(b);
        }
    }

    println!(
        "| records (per sandbox) | concurrency | rulebridge records/s | load generator records/s (ceiling) | ratio | client CPU µs/record: rulebridge / load gen | sandbox CPU µs/record: rulebridge / load gen |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (c, ours, ceiling) in &results {
        let rate = |runs: &[Run]| support::median(runs.iter().map(Run::per_sec).collect());
        let cpu = |runs: &[Run], f: fn(&Run) -> Duration| {
            support::median(runs.iter().map(|r| r.micros_per_record(f(r))).collect())
        };
        let each = |runs: &[Run]| {
            if runs.len() < 2 {
                return String::new();
            }
            let v: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.per_sec())).collect();
            format!(" ({})", v.join(", "))
        };
        let (a, b) = (rate(ours), rate(ceiling));
        println!(
            "| {records} ({segment}) | {c} | {a:.0}{} | {b:.0}{} | {:.0}% | {:.1} / {:.1} | {:.1} / {:.1} |",
            each(ours),
            each(ceiling),
            100.0 * a / b,
            cpu(ours, |r| r.client_cpu),
            cpu(ceiling, |r| r.client_cpu),
            cpu(ours, |r| r.sandbox_cpu),
            cpu(ceiling, |r| r.sandbox_cpu),
        );
    }
}

/// The batch-upsert bodies the HubSpot kit renders for `input`: the flow's payloads and keys
/// (a dry run) in chunks of 100, each item `{"id", "idProperty", "properties"}`.
fn bodies(runner: &FlowRunner, input: &str) -> Vec<Bytes> {
    let items: Vec<Value> = input
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let record: Value = serde_json::from_str(line).expect("lead json");
            let o = runner.evaluate(i, &record);
            assert_eq!(o.status, Status::DryRun, "lead {i} does not map: {o:?}");
            json!({
                "id": o.key.expect("key"),
                "idProperty": "email",
                "properties": o.payload.expect("payload"),
            })
        })
        .collect();
    items
        .chunks(BATCH)
        .map(|chunk| {
            Bytes::from(serde_json::to_vec(&json!({ "inputs": chunk })).expect("json body"))
        })
        .collect()
}

impl Bench {
    fn sandbox(&self) -> Sandbox {
        let config = SandboxConfig {
            hubspot_rate_limit: u32::MAX / 2,
            ..SandboxConfig::default()
        };
        let sb = self
            .server
            .block_on(sandbox::start(config))
            .expect("sandbox");
        // A fresh portal has HubSpot's default properties only: the lead flow's custom ones
        // are created first, as `rulebridge fields hubspot contact --create-missing` does.
        let connector = self
            .rules
            .http_connector("hubspot", sb.kit_base_url("hubspot").as_deref())
            .expect("connector");
        self.client
            .block_on(rulebridge::connect::fields::create_missing(
                &connector, "contact",
            ))
            .expect("custom properties created");
        sb
    }

    /// Sends the input through rulebridge to a server that keeps the request bodies, and
    /// checks they are the load generator's bodies byte for byte.
    fn check_same_bodies(&self) {
        let n = 3.min(self.bodies[0].len());
        let input: String = self.segments[0]
            .lines()
            .take(n * BATCH)
            .map(|l| format!("{l}\n"))
            .collect();
        let seen: Arc<Mutex<Vec<Bytes>>> = Arc::default();
        let keep = seen.clone();
        let app = axum::Router::new().route(
            &format!("/hubspot{UPSERT_PATH}"),
            axum::routing::post(move |body: Bytes| {
                let keep = keep.clone();
                async move {
                    keep.lock().expect("lock").push(body);
                    axum::Json(json!({"status": "COMPLETE", "results": []}))
                }
            }),
        );
        let listener = self
            .server
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = self.server.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let base = format!("http://{addr}/hubspot");
        let connector = Arc::new(
            self.kit
                .http_connector("hubspot", Some(&base))
                .expect("connector"),
        );
        let sender = self.runner.send_through(
            connector,
            RunOptions {
                concurrency: 1,
                ..RunOptions::default()
            },
            SendOptions::default(),
        );
        let input = std::io::Cursor::new(input.as_bytes().to_vec());
        self.client
            .block_on(sender.run(input, NdjsonOutput(std::io::sink()), |_| {}))
            .expect("run");
        server.abort();
        let seen = seen.lock().expect("lock");
        assert_eq!(
            seen.len(),
            n,
            "rulebridge sent {} batch requests",
            seen.len()
        );
        for (i, (ours, theirs)) in seen.iter().zip(&self.bodies[0]).enumerate() {
            assert!(
                ours == theirs,
                "batch {i}: the load generator's body differs from rulebridge's\nrulebridge: {}\nload generator: {}",
                String::from_utf8_lossy(&ours[..ours.len().min(400)]),
                String::from_utf8_lossy(&theirs[..theirs.len().min(400)]),
            );
        }
        eprintln!("load generator bodies: identical to rulebridge's (first {n} batches)");
    }

    /// rulebridge end to end: NDJSON in, outcomes out, batches of 100 through the kit.
    fn rulebridge(&self, segment: usize, concurrency: usize) -> Run {
        let sb = self.sandbox();
        let base = sb.kit_base_url("hubspot").expect("hubspot kit url");
        let connector = Arc::new(
            self.kit
                .http_connector("hubspot", Some(&base))
                .expect("connector"),
        );
        let sender = self.runner.send_through(
            connector,
            RunOptions {
                concurrency,
                ..RunOptions::default()
            },
            SendOptions::default(),
        );
        let input = &self.segments[segment];
        let out = NdjsonOutput(Vec::with_capacity(input.len() / 2));
        let cpu0 = support::cpu_by_thread();
        let t0 = Instant::now();
        let (summary, out) = self
            .client
            .block_on(sender.run(
                std::io::Cursor::new(input.clone().into_bytes()),
                out,
                |_| {},
            ))
            .expect("run");
        let out = out.0;
        let wall = t0.elapsed();
        let cpu1 = support::cpu_by_thread();
        let records = input.lines().count();
        assert_eq!(
            summary.created,
            records,
            "every lead is a new contact: {summary:?}; first problem: {}",
            String::from_utf8_lossy(&out)
                .lines()
                .find(|l| !l.contains("\"created\""))
                .unwrap_or_default()
        );
        self.finish(sb, segment, records, wall, &cpu0, &cpu1)
    }

    /// The ceiling: the same requests, pre-built, sent with reqwest at the same concurrency.
    fn load_generator(&self, segment: usize, concurrency: usize) -> Run {
        let sb = self.sandbox();
        let url = format!("{}{UPSERT_PATH}", sb.kit_base_url("hubspot").expect("url"));
        let token = sandbox::CREDENTIALS
            .iter()
            .find(|(k, _)| *k == "HUBSPOT_TOKEN")
            .map(|(_, v)| format!("Bearer {v}"))
            .expect("token");
        let client = reqwest::Client::builder().build().expect("client");
        let cpu0 = support::cpu_by_thread();
        let t0 = Instant::now();
        let statuses: Vec<u16> = self.client.block_on(
            futures::stream::iter(self.bodies[segment].iter().cloned())
                .map(|body| {
                    let request = client
                        .post(&url)
                        .header(http::header::AUTHORIZATION, &token)
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .header(http::header::ACCEPT, "application/json")
                        .body(body);
                    async move {
                        let response = request.send().await.expect("send");
                        let status = response.status().as_u16();
                        response.bytes().await.expect("body");
                        status
                    }
                })
                .buffered(concurrency.max(1))
                .collect(),
        );
        let wall = t0.elapsed();
        let cpu1 = support::cpu_by_thread();
        assert!(statuses.iter().all(|&s| s == 200), "statuses: {statuses:?}");
        let records = self.segments[segment].lines().count();
        self.finish(sb, segment, records, wall, &cpu0, &cpu1)
    }

    /// Checks the sandbox holds exactly the new contacts, and reads its side of the run.
    fn finish(
        &self,
        sb: Sandbox,
        segment: usize,
        records: usize,
        wall: Duration,
        cpu0: &std::collections::BTreeMap<String, Duration>,
        cpu1: &std::collections::BTreeMap<String, Duration>,
    ) -> Run {
        let state = sb.state();
        let hs = &state.providers["hubspot"];
        assert_eq!(state.records("hubspot", "contacts").len(), records);
        assert_eq!(hs.rate_limited, 0);
        if std::env::var_os("SEND_BENCH_LOG").is_some() {
            let t: Vec<String> = hs
                .log
                .iter()
                .map(|e| format!("{}+{}", e.elapsed_ms, e.duration_ms))
                .collect();
            eprintln!("sandbox requests: {}", t.join(" "));
        }
        let batch = &hs.endpoints[UPSERT_ENDPOINT];
        // rulebridge sends a partial batch when the evaluation falls behind the requests (a
        // busy machine): more requests than the load generator's, never fewer.
        let expected = self.bodies[segment].len();
        assert!(batch.requests as usize >= expected, "{hs:?}");
        if batch.requests as usize > expected {
            eprintln!(
                "segment {segment}: {} batch requests for {expected} full batches",
                batch.requests
            );
        }
        // Besides the upserts, only the custom properties' setup (before the clock started).
        let setup = hs
            .endpoints
            .iter()
            .filter(|(name, _)| name.as_str() != UPSERT_ENDPOINT)
            .map(|(name, e)| {
                assert!(name.contains("properties"), "unexpected request: {name}");
                e.requests
            })
            .sum::<u64>();
        assert_eq!(
            hs.requests,
            batch.requests + setup,
            "only batch upserts were sent"
        );
        self.server.block_on(sb.shutdown());
        Run {
            records,
            wall,
            client_cpu: support::cpu_spent(cpu0, cpu1, &["main", "rb-client"]),
            sandbox_cpu: support::cpu_spent(cpu0, cpu1, &["rb-sandbox"]),
            requests: batch.requests,
        }
    }
}
