//! `/metrics`: counters and a latency histogram in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use rulebridge::Outcome;
use rulebridge::exec::FailureKind;

use super::App;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    /// (flow, status) → records.
    records: BTreeMap<(String, String), u64>,
    /// (flow, error kind) → failed records.
    record_errors: BTreeMap<(String, String), u64>,
    /// (provider, error kind) → records the provider refused or could not take.
    provider_errors: BTreeMap<(String, String), u64>,
    /// (method, route, status) → requests.
    requests: BTreeMap<(String, String, u16), u64>,
    /// (method, route) → latency.
    latency: BTreeMap<(String, String), Histogram>,
    /// API key id (with `--no-auth`, `tenant:T`) → requests refused by its rate limit.
    rate_limited: BTreeMap<String, u64>,
}

/// What `/metrics` reports, shared by the handlers.
#[derive(Default, Clone)]
pub struct Metrics(Arc<Mutex<Inner>>);

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        // A poisoned lock only means a panic elsewhere mid-update; counting goes on.
        let mut inner = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner);
    }

    /// Counts the outcomes of a batch of `flow` (writing to `provider`), and the failures by
    /// their kind.
    pub fn records(&self, flow: &str, provider: &str, outcomes: &[Outcome]) {
        self.with(|m| {
            for o in outcomes {
                *m.records
                    .entry((flow.to_string(), o.status.as_str().to_string()))
                    .or_default() += 1;
                if let Some(e) = &o.error {
                    let kind = serde_json::to_value(e.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_else(|| "unknown".into());
                    if from_provider(e.kind) {
                        *m.provider_errors
                            .entry((provider.to_string(), kind.clone()))
                            .or_default() += 1;
                    }
                    *m.record_errors.entry((flow.to_string(), kind)).or_default() += 1;
                }
            }
        });
    }

    /// Counts a request refused by the rate limit of `who` (an API key id).
    pub fn rate_limited(&self, who: &str) {
        self.with(|m| *m.rate_limited.entry(who.to_string()).or_default() += 1);
    }

    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        self.with(|m| {
            *m.requests
                .entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
            let h = m
                .latency
                .entry((method.to_string(), route.to_string()))
                .or_default();
            for (n, le) in BUCKETS.iter().enumerate() {
                if secs <= *le {
                    h.counts[n] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        });
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.with(|m| {
            let _ = writeln!(
                out,
                "# HELP rulebridge_records_total Records processed, by flow and outcome status.\n# TYPE rulebridge_records_total counter"
            );
            for ((flow, status), n) in &m.records {
                let _ = writeln!(
                    out,
                    "rulebridge_records_total{{flow=\"{}\",status=\"{}\"}} {n}",
                    label(flow),
                    label(status)
                );
            }
            let _ = writeln!(
                out,
                "# HELP rulebridge_record_errors_total Failed records, by flow and error kind (auth, rate_limited, transient, validation, ...).\n# TYPE rulebridge_record_errors_total counter"
            );
            for ((flow, kind), n) in &m.record_errors {
                let _ = writeln!(
                    out,
                    "rulebridge_record_errors_total{{flow=\"{}\",kind=\"{}\"}} {n}",
                    label(flow),
                    label(kind)
                );
            }
            let _ = writeln!(
                out,
                "# HELP rulebridge_provider_errors_total Records a provider refused or could not take, by provider and error kind.\n# TYPE rulebridge_provider_errors_total counter"
            );
            for ((provider, kind), n) in &m.provider_errors {
                let _ = writeln!(
                    out,
                    "rulebridge_provider_errors_total{{provider=\"{}\",kind=\"{}\"}} {n}",
                    label(provider),
                    label(kind)
                );
            }
            let _ = writeln!(
                out,
                "# HELP rulebridge_http_requests_total HTTP requests served.\n# TYPE rulebridge_http_requests_total counter"
            );
            for ((method, route, status), n) in &m.requests {
                let _ = writeln!(
                    out,
                    "rulebridge_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    label(route)
                );
            }
            let _ = writeln!(
                out,
                "# HELP rulebridge_http_request_duration_seconds Time to answer a request.\n# TYPE rulebridge_http_request_duration_seconds histogram"
            );
            for ((method, route), h) in &m.latency {
                let route = label(route);
                for (n, le) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "rulebridge_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"{le}\"}} {}",
                        h.counts[n]
                    );
                }
                let _ = writeln!(
                    out,
                    "rulebridge_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"+Inf\"}} {}\nrulebridge_http_request_duration_seconds_sum{{method=\"{method}\",route=\"{route}\"}} {}\nrulebridge_http_request_duration_seconds_count{{method=\"{method}\",route=\"{route}\"}} {}",
                    h.count, h.sum, h.count
                );
            }
            let _ = writeln!(
                out,
                "# HELP rulebridge_rate_limited_requests_total Requests refused (429) by the per-key rate limit, by API key id.\n# TYPE rulebridge_rate_limited_requests_total counter"
            );
            for (key, n) in &m.rate_limited {
                let _ = writeln!(
                    out,
                    "rulebridge_rate_limited_requests_total{{key=\"{}\"}} {n}",
                    label(key)
                );
            }
        });
        // Kept by the connectors themselves, for the whole process.
        let waits = rulebridge::connect::waits::rate_limit_waits();
        let _ = writeln!(
            out,
            "# HELP rulebridge_rate_limit_waits_total Provider requests held back by the provider's rate limit (pacing, a pause it asked for, a 429), by provider.\n# TYPE rulebridge_rate_limit_waits_total counter"
        );
        for w in &waits {
            let _ = writeln!(
                out,
                "rulebridge_rate_limit_waits_total{{provider=\"{}\"}} {}",
                label(&w.provider),
                w.waits
            );
        }
        let _ = writeln!(
            out,
            "# HELP rulebridge_rate_limit_wait_seconds_total Time provider requests waited on the provider's rate limit, by provider.\n# TYPE rulebridge_rate_limit_wait_seconds_total counter"
        );
        for w in &waits {
            let _ = writeln!(
                out,
                "rulebridge_rate_limit_wait_seconds_total{{provider=\"{}\"}} {}",
                label(&w.provider),
                w.seconds
            );
        }
        out
    }
}

/// Whether a failure came from the target system (its answer, or none in time), not from
/// the record or the rules.
fn from_provider(kind: FailureKind) -> bool {
    matches!(
        kind,
        FailureKind::Duplicate
            | FailureKind::Auth
            | FailureKind::RateLimited
            | FailureKind::Transient
            | FailureKind::NotFound
            | FailureKind::Rejected
    )
}

/// A label value escaped as the text format requires.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub async fn handler(State(app): State<Arc<App>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_cumulative() {
        let m = Metrics::default();
        m.request("GET", "/healthz", 200, Duration::from_millis(20));
        m.request("GET", "/healthz", 200, Duration::from_secs(3));
        let text = m.render();
        assert!(text.contains(
            "rulebridge_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"0.025\"} 1"
        ));
        assert!(text.contains(
            "rulebridge_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"10\"} 2"
        ));
        assert!(text.contains(
            "rulebridge_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
    }

    #[test]
    fn provider_errors_are_counted_by_provider_and_kind() {
        use rulebridge::exec::RecordError;
        let m = Metrics::default();
        let refused = Outcome::failed(0, None, RecordError::new(FailureKind::Auth, "401"));
        let bad = Outcome::failed(1, None, RecordError::new(FailureKind::Mapping, "x"));
        m.records("f", "crm", &[refused, bad]);
        let text = m.render();
        assert!(
            text.contains("rulebridge_provider_errors_total{provider=\"crm\",kind=\"auth\"} 1")
        );
        assert!(
            !text.contains("rulebridge_provider_errors_total{provider=\"crm\",kind=\"mapping\"}")
        );
        assert!(text.contains("rulebridge_record_errors_total{flow=\"f\",kind=\"mapping\"} 1"));
        assert!(text.contains("rulebridge_records_total{flow=\"f\",status=\"failed\"} 2"));
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
