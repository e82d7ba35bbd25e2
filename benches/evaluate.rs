//! In-process evaluation of the `lead_to_hubspot` flow, without process start-up, file I/O or
//! rule loading:
//!
//! * `evaluate_one`: `FlowRunner::evaluate` on single pre-parsed records of different shapes;
//! * `evaluate_batch`: `FlowRunner::evaluate` over 1,000 pre-parsed generated leads;
//! * `dry_run_10k`: `FlowRunner::dry_run` over 10,000 NDJSON lines held in memory, writing to
//!   a sink: JSON parsing, evaluation on all cores, the duplicate check and serialization.
//!
//! The leads come from `benches/gen_leads.py` (python3), the same generator as
//! `benches/dry_run.sh` uses. Run with `cargo bench --bench evaluate`.

use std::sync::LazyLock;

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use rulebridge::{Engine, FlowRunner};
use serde_json::{Value, json};

fn main() {
    divan::main();
}

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

static RUNNER: LazyLock<FlowRunner> = LazyLock::new(|| {
    let engine = Engine::builder()
        .rules_dir(format!("{ROOT}/rules"))
        .build()
        .unwrap_or_else(|e| panic!("the rules do not build: {e}"));
    engine
        .runner("lead_to_hubspot")
        .unwrap_or_else(|e| panic!("no runner for lead_to_hubspot: {e}"))
});

/// 10,000 generated leads as NDJSON text.
static LINES: LazyLock<String> = LazyLock::new(|| generate(10_000));

fn generate(n: usize) -> String {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
    let path = dir.path().join("leads.ndjson");
    let status = std::process::Command::new("python3")
        .arg(format!("{ROOT}/benches/gen_leads.py"))
        .arg(n.to_string())
        .arg(&path)
        .status()
        .unwrap_or_else(|e| panic!("cannot run python3 benches/gen_leads.py: {e}"));
    assert!(status.success(), "benches/gen_leads.py failed: {status}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read generated leads: {e}"))
}

fn record(shape: &str) -> Value {
    match shape {
        "complete" => json!({
            "email": " Ada.Lovelace@Example.COM ",
            "name": "Ada King Lovelace",
            "company": "Analytical Engines",
            "phone": "(415) 555-0132",
            "score": 91,
            "country": "us",
            "source": "webinar",
            "tags": ["math", "math", "engines"],
            "submitted_at": "2024-01-14T09:00:00Z"
        }),
        "no_phone" => json!({
            "email": "Grace.Hopper@navy.mil",
            "name": "Grace Hopper",
            "score": 55,
            "country": "US",
            "tags": ["cobol"],
            "submitted_at": "2023-06-01T12:30:00Z"
        }),
        "sparse" => json!({ "email": "grace@navy.mil" }),
        other => panic!("unknown record shape {other}"),
    }
}

#[divan::bench(args = ["complete", "no_phone", "sparse"])]
fn evaluate_one(bencher: Bencher, shape: &str) {
    let runner = &*RUNNER;
    let record = record(shape);
    let outcome = runner.evaluate(0, &record);
    assert_eq!(outcome.status, rulebridge::Status::DryRun, "{outcome:?}");
    bencher.bench(|| runner.evaluate(black_box(0), black_box(&record)));
}

#[divan::bench]
fn evaluate_batch(bencher: Bencher) {
    let runner = &*RUNNER;
    let records: Vec<Value> = LINES
        .lines()
        .take(1_000)
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad generated line: {e}")))
        .collect();
    bencher.counter(ItemsCount::new(records.len())).bench(|| {
        for (i, r) in records.iter().enumerate() {
            black_box(runner.evaluate(i, r));
        }
    });
}

#[divan::bench(sample_count = 20)]
fn dry_run_10k(bencher: Bencher) {
    let runner = &*RUNNER;
    let input = LINES.as_bytes();
    let (summary, _) = runner
        .dry_run(input, std::io::sink(), |_| {})
        .unwrap_or_else(|e| panic!("dry run failed: {e}"));
    assert_eq!(summary.total, 10_000, "{summary}");
    bencher
        .counter(ItemsCount::new(10_000usize))
        .counter(BytesCount::new(input.len()))
        .bench(|| {
            runner
                .dry_run(black_box(input), std::io::sink(), |_| {})
                .unwrap_or_else(|e| panic!("dry run failed: {e}"))
        });
}

/// Parsing 1,000 generated lead lines from bytes: serde_json (UTF-8 check, then parse, as
/// `benches/floor.rs` does through `read_line`), and the strict `parse_record` (duplicate keys
/// refused while building the value) the record reader uses.
#[divan::bench(args = ["serde_json", "parse_record"])]
fn parse_1k(bencher: Bencher, parser: &str) {
    let lines: Vec<&[u8]> = LINES.lines().take(1_000).map(str::as_bytes).collect();
    let strict = parser == "parse_record";
    bencher
        .counter(ItemsCount::new(lines.len()))
        .counter(BytesCount::new(
            lines.iter().map(|l| l.len()).sum::<usize>(),
        ))
        .bench(|| {
            for l in &lines {
                let l = black_box(*l);
                if strict {
                    black_box(rulebridge::exec::parse_record(l).ok());
                } else {
                    let text = std::str::from_utf8(l).ok();
                    black_box(text.and_then(|t| serde_json::from_str::<Value>(t).ok()));
                }
            }
        });
}
