//! Pacing accuracy: the HubSpot kit's `rate_limit: 100 per 10s` against a sandbox that
//! enforces HubSpot's own 100 requests per rolling 10 s.
//!
//! 8 callers (the CLI's default concurrency) create contacts through one connector, one
//! `create` call per lead: exactly one paced request per call. (Records sent one by one through
//! `lead_to_hubspot` would each be a search and a create, and the kit paces search separately
//! at 4 per second, so the search limit rather than the provider-wide one would set the pace.)
//! The figures come from the sandbox's request log: arrival times at the server.
//!
//! ```text
//! cargo bench --bench send_pacing -- --requests 320
//! ```

mod send_support;

use rulebridge::connect::{Call, Connector};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rulebridge::Status;
use rulebridge_sandbox::{self as sandbox, SandboxConfig};
use send_support as support;
use serde_json::Value;

const CALLERS: usize = 8;
const WINDOW: Duration = Duration::from_secs(10);

fn main() {
    let requests: usize = support::arg("--requests")
        .map(|v| v.parse().expect("--requests N"))
        .unwrap_or(320);
    let engine = support::engine();
    let runner = engine.runner("lead_to_hubspot").expect("flow");
    let payloads: Vec<Value> = support::leads(requests)
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let o = runner.evaluate(i, &serde_json::from_str(line).expect("lead json"));
            assert_eq!(o.status, Status::DryRun, "lead {i}: {o:?}");
            o.payload.expect("payload")
        })
        .collect();

    let server = support::runtime("rb-sandbox");
    let client = support::runtime("rb-client");
    let sb = server
        .block_on(sandbox::start(SandboxConfig::default()))
        .expect("sandbox");
    let base = sb.kit_base_url("hubspot").expect("url");
    let connector = std::sync::Arc::new(
        engine
            .http_connector("hubspot", Some(&base))
            .expect("connector"),
    );
    eprintln!("{requests} creates from {CALLERS} callers, kit rate_limit: 100 per 10s");
    let t0 = Instant::now();
    let results: Vec<bool> = client.block_on(
        futures::stream::iter(&payloads)
            .map(|p| {
                let connector = &connector;
                async move {
                    match connector.create(&Call::default(), "contact", p).await {
                        Ok(_) => true,
                        Err(e) => {
                            eprintln!("create failed: {e:?}");
                            false
                        }
                    }
                }
            })
            .buffer_unordered(CALLERS)
            .collect(),
    );
    let wall = t0.elapsed();
    let failed = results.iter().filter(|ok| !**ok).count();

    let state = sb.state();
    let hs = &state.providers["hubspot"];
    let mut times: Vec<u64> = hs.log.iter().map(|e| e.elapsed_ms).collect();
    times.sort_unstable();
    assert_eq!(
        times.len() as u64,
        hs.requests,
        "the log holds every request"
    );
    let sent = times.len();
    let span_ms = times.last().copied().unwrap_or(0) - times.first().copied().unwrap_or(0);
    // Requests per 10 s over the run: the gaps between the first and the last arrival.
    let sustained = (sent.saturating_sub(1)) as f64 * WINDOW.as_millis() as f64 / span_ms as f64;
    let max_10s = hs.max_requests_in_window(WINDOW, None);
    let max_1s = hs.max_requests_in_window(Duration::from_secs(1), None);
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let min_gap = gaps.iter().copied().min().unwrap_or(0);
    let contacts = state.records("hubspot", "contacts").len();
    let too_many = hs.count_status(429);
    server.block_on(sb.shutdown());

    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!("| figure | value | target |");
    println!("|---|---:|---|");
    println!(
        "| requests sent (creates; calls that failed) | {sent} ({failed}) | ≥ 300, 0 failed: {} |",
        verdict(sent >= 300 && failed == 0 && contacts == requests)
    );
    println!(
        "| run time (first to last arrival; whole run) | {:.1} s ({:.1} s) | ≥ 30 s |",
        span_ms as f64 / 1000.0,
        wall.as_secs_f64()
    );
    println!(
        "| most requests in any 10 s window | {max_10s} | ≤ 100: {} |",
        verdict(max_10s <= 100)
    );
    println!(
        "| sustained rate (per 10 s) | {sustained:.1} | ≥ 90: {} |",
        verdict(sustained >= 90.0)
    );
    println!(
        "| 429 responses (sandbox: rate limited) | {too_many} ({}) | 0: {} |",
        hs.rate_limited,
        verdict(too_many == 0 && hs.rate_limited == 0)
    );
    println!("| most requests in any 1 s window | {max_1s} | (burstiness) |");
    println!("| shortest gap between arrivals | {min_gap} ms | (burstiness) |");
}
