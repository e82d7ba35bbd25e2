//! Shared by the sending benchmarks: generated leads, engines over `rules/`, runtimes with
//! named threads, and per-thread CPU time.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rulebridge::Engine;
use rulebridge_sandbox as sandbox;

/// The crate's `rules/` directory, wherever the benchmark is started from.
pub fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules")
}

/// The HubSpot kit's text.
pub fn hubspot_kit() -> String {
    std::fs::read_to_string(rules_dir().join("providers/hubspot.yaml")).expect("hubspot kit")
}

/// The engine over `rules/`, with the sandbox's credentials.
pub fn engine() -> Engine {
    with_credentials(Engine::builder().rules_dir(rules_dir()))
        .build()
        .expect("rules compile")
}

/// An engine holding only `kit` (a provider file), with the sandbox's credentials.
pub fn kit_engine(kit: &str) -> Engine {
    with_credentials(Engine::builder().rules_str("hubspot.yaml", kit))
        .build()
        .expect("kit compiles")
}

fn with_credentials(mut b: rulebridge::EngineBuilder) -> rulebridge::EngineBuilder {
    for (k, v) in sandbox::CREDENTIALS {
        b = b.credential(*k, *v);
    }
    b
}

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Barbara",
    "Edsger",
    "Donald",
    "Margaret",
    "Ken",
    "Dennis",
    "Radia",
    "Frances",
    "Hedy",
    "Niklaus",
    "Leslie",
    "Shafi",
    "Katherine",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Liskov",
    "Dijkstra",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Ritchie",
    "Perlman",
    "Allen",
    "Lamarr",
    "Wirth",
    "Lamport",
    "Goldwasser",
    "Johnson",
];
const COMPANIES: &[&str] = &[
    "Analytical Engines",
    "Acme Corp",
    "Initech",
    "Globex",
    "Hooli",
    "Umbrella Labs",
    "Pied Piper",
];
const AREA_CODES: &[u32] = &[212, 312, 415, 206, 617, 512, 303, 404];
const COUNTRIES: &[&str] = &["us", "US", "ca", "DE", "GB", "fr", "JP", "BR"];
const SOURCES: &[&str] = &["webinar", "ebook", "trade_show", "referral", "ads"];
const TAGS: &[&str] = &["math", "engines", "saas", "trial", "demo", "vip"];

/// `n` web-form leads as NDJSON: every field of `lead_to_hubspot` filled, all valid, every
/// e-mail unique (in mixed case, so `normalize_email` has work to do). Deterministic.
pub fn leads(n: usize) -> String {
    let mut out = String::with_capacity(n * 260);
    for i in 0..n {
        let first = FIRST[i % FIRST.len()];
        let last = LAST[(i / FIRST.len()) % LAST.len()];
        let second = LAST[(i * 7 + 3) % LAST.len()];
        let tags: Vec<&str> = (0..1 + i % 3)
            .map(|k| TAGS[(i + k * 5) % TAGS.len()])
            .collect();
        let record = serde_json::json!({
            "email": format!(" {first}.{last}{i}@Example.COM "),
            "name": if i % 4 == 0 { format!("{first} {last} {second}") } else { format!("{first} {last}") },
            "company": COMPANIES[i % COMPANIES.len()],
            "phone": format!("({}) 555-01{:02}", AREA_CODES[i % AREA_CODES.len()], i % 100),
            "score": (i * 37) % 101,
            "country": COUNTRIES[i % COUNTRIES.len()],
            "source": SOURCES[i % SOURCES.len()],
            "tags": tags,
            "submitted_at": format!("2024-{:02}-{:02}T{:02}:{:02}:00Z", 1 + i % 12, 1 + i % 28, i % 24, i % 60),
        });
        out.push_str(&record.to_string());
        out.push('\n');
    }
    out
}

/// A multi-thread runtime like the CLI's (one worker per core), its threads named `name`.
pub fn runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}

/// CPU time of this process's threads so far, by thread name (the main thread is `main`):
/// `/proc/self/task/*/schedstat` (Linux; empty elsewhere).
pub fn cpu_by_thread() -> BTreeMap<String, Duration> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    let main = std::process::id().to_string();
    for task in tasks.flatten() {
        let dir = task.path();
        let Ok(stat) = std::fs::read_to_string(dir.join("schedstat")) else {
            continue;
        };
        let Some(ns) = stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        let name = if task.file_name().to_string_lossy() == main {
            "main".to_string()
        } else {
            std::fs::read_to_string(dir.join("comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_default()
        };
        *out.entry(name).or_default() += Duration::from_nanos(ns);
    }
    out
}

/// CPU time spent between two [`cpu_by_thread`] readings by threads whose name starts with
/// one of `prefixes`. (Threads that ended in between are not counted: the runtimes live for
/// the whole benchmark.)
pub fn cpu_spent(
    before: &BTreeMap<String, Duration>,
    after: &BTreeMap<String, Duration>,
    prefixes: &[&str],
) -> Duration {
    after
        .iter()
        .filter(|(n, _)| prefixes.iter().any(|p| n.starts_with(p)))
        .map(|(n, t)| t.saturating_sub(before.get(n).copied().unwrap_or_default()))
        .sum()
}

/// The median of some figures.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if !v.len().is_multiple_of(2) {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// `--name value` from the command line (cargo's own `--bench` flag is ignored).
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}
