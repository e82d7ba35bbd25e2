//! Fault injection and request accounting, as one middleware in front of every fake.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::DropConnection;
use super::store::{LogEntry, Shared};

/// Fault settings. Every request draws the same number of random values whatever the
/// settings, so request number N meets the same fault for a given seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Fraction of requests answered 500, 502 or 503 (with the vendor's own error body for
    /// 500 and a gateway page for 502/503), without touching any record.
    pub error_rate: f64,
    /// Added to every response.
    pub latency_ms: u64,
    /// Up to this much more, uniformly.
    pub jitter_ms: u64,
    /// Fraction of requests whose connection is closed before they are processed.
    pub drop_rate: f64,
    /// Fraction of requests that are processed (records written) and whose connection is
    /// then closed without the response: the ambiguous failure retries must survive.
    pub drop_after_rate: f64,
    /// Multiplies every rate limit (0.1 turns 100 per 10 s into 10 per 10 s): 429 storms.
    pub rate_limit_factor: f64,
    /// Providers the faults apply to (`hubspot`, ...); empty means all. Rate limits are
    /// scaled everywhere.
    pub providers: Vec<String>,
    /// Error answers (400 and up) echo the request — URL, headers with the credentials, body
    /// — and the original answer, as vendors that echo the request in error bodies do (see
    /// the `echo` module). Applies to every provider.
    pub echo_errors: bool,
    /// A refresh-token grant with a refresh token from the connect flow answers a new refresh
    /// token and revokes the one it was given, as an app with refresh-token rotation does
    /// (an option of Salesforce connected apps; HubSpot keeps its refresh tokens). Clients
    /// must store the new one.
    pub rotate_refresh_tokens: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            error_rate: 0.0,
            latency_ms: 0,
            jitter_ms: 0,
            drop_rate: 0.0,
            drop_after_rate: 0.0,
            rate_limit_factor: 1.0,
            providers: Vec::new(),
            echo_errors: false,
            rotate_refresh_tokens: false,
        }
    }
}

impl Faults {
    /// No faults at all.
    pub fn none() -> Faults {
        Faults::default()
    }

    fn applies_to(&self, provider: &str) -> bool {
        self.providers.is_empty() || self.providers.iter().any(|p| p == provider)
    }
}

/// What happens to one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    pub delay: Duration,
    pub drop_before: bool,
    pub error: Option<StatusCode>,
    pub drop_after: bool,
}

pub(crate) struct FaultEngine {
    settings: Faults,
    rng: StdRng,
}

impl FaultEngine {
    pub fn new(settings: Faults, seed: u64) -> FaultEngine {
        FaultEngine {
            settings,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn settings(&self) -> &Faults {
        &self.settings
    }

    pub fn set(&mut self, settings: Faults) {
        self.settings = settings;
    }

    pub fn decide(&mut self, provider: &str) -> Decision {
        // Always five draws, in this order.
        let u_drop: f64 = self.rng.random();
        let u_error: f64 = self.rng.random();
        let u_status: f64 = self.rng.random();
        let u_jitter: f64 = self.rng.random();
        let u_after: f64 = self.rng.random();
        let s = &self.settings;
        if !s.applies_to(provider) {
            return Decision::default();
        }
        let delay = Duration::from_millis(s.latency_ms)
            + Duration::from_millis((s.jitter_ms as f64 * u_jitter) as u64);
        let drop_before = u_drop < s.drop_rate;
        let error = (!drop_before && u_error < s.error_rate).then(|| {
            if u_status < 1.0 / 3.0 {
                StatusCode::INTERNAL_SERVER_ERROR
            } else if u_status < 2.0 / 3.0 {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            }
        });
        let drop_after = !drop_before && error.is_none() && u_after < s.drop_after_rate;
        Decision {
            delay,
            drop_before,
            error,
            drop_after,
        }
    }
}

/// Marks a response as a rate-limit refusal, for the counters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RateLimited;

/// What the accounting middleware needs to know about a provider.
#[derive(Clone)]
pub(crate) struct ProviderCtx {
    pub shared: Arc<Shared>,
    pub name: &'static str,
    /// The provider's own body for an injected 500.
    pub internal_error: fn(&Shared) -> Response,
}

/// Counts and logs every request, and applies the fault decision.
pub(crate) async fn observe(
    State(ctx): State<ProviderCtx>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let arrived = Instant::now();
    let seq = ctx.shared.next_seq();
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let prefix = format!("/{}", ctx.name);
    let endpoint = match &matched {
        Some(m) => {
            let p = m.as_str();
            let p = p.strip_prefix(&prefix).unwrap_or(p);
            format!("{method} {}", if p.is_empty() { "/" } else { p })
        }
        None => "unmatched".to_string(),
    };
    let decision = ctx.shared.fault_engine().decide(ctx.name);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let mut fault = None;
    let mut resp = if decision.drop_before {
        fault = Some("drop");
        let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        r.extensions_mut().insert(DropConnection);
        r
    } else if let Some(status) = decision.error {
        fault = Some("error");
        injected_error(&ctx, status)
    } else {
        // A panicking handler answers like the vendor's 500 instead of killing the connection.
        use futures::FutureExt;
        match std::panic::AssertUnwindSafe(next.run(req))
            .catch_unwind()
            .await
        {
            Ok(r) => r,
            Err(_) => {
                fault = Some("panic");
                (ctx.internal_error)(&ctx.shared)
            }
        }
    };
    if decision.drop_after {
        fault = Some("drop_after");
        resp.extensions_mut().insert(DropConnection);
    }
    let rate_limited = resp.extensions().get::<RateLimited>().is_some();
    let dropped = resp.extensions().get::<DropConnection>().is_some();
    let entry = LogEntry {
        seq,
        at: (ctx.shared.started_at
            + chrono::Duration::from_std(arrived - ctx.shared.started).unwrap_or_default())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        elapsed_ms: ctx.shared.elapsed_ms(arrived),
        method,
        path,
        endpoint,
        status: (!dropped).then(|| resp.status().as_u16()),
        fault: fault.map(str::to_string),
        rate_limited,
        duration_ms: arrived.elapsed().as_millis() as u64,
    };
    ctx.shared.record(ctx.name, entry);
    resp
}

fn injected_error(ctx: &ProviderCtx, status: StatusCode) -> Response {
    match status {
        StatusCode::INTERNAL_SERVER_ERROR => (ctx.internal_error)(&ctx.shared),
        StatusCode::BAD_GATEWAY => (
            status,
            [(http::header::CONTENT_TYPE, "text/html")],
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
        )
            .into_response(),
        _ => (
            status,
            [
                (http::header::CONTENT_TYPE, "text/html"),
                (http::header::RETRY_AFTER, "1"),
            ],
            "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_repeat_for_a_seed() {
        let f = Faults {
            error_rate: 0.3,
            drop_rate: 0.1,
            jitter_ms: 50,
            ..Faults::default()
        };
        let mut a = FaultEngine::new(f.clone(), 7);
        let mut b = FaultEngine::new(f, 7);
        let da: Vec<_> = (0..200).map(|_| a.decide("hubspot")).collect();
        let db: Vec<_> = (0..200).map(|_| b.decide("hubspot")).collect();
        assert_eq!(da, db);
        let errors = da.iter().filter(|d| d.error.is_some()).count();
        assert!((30..90).contains(&errors), "{errors}");
        assert!(da.iter().any(|d| d.drop_before));
    }

    #[test]
    fn other_providers_are_spared() {
        let f = Faults {
            error_rate: 1.0,
            providers: vec!["salesforce".into()],
            ..Faults::default()
        };
        let mut e = FaultEngine::new(f, 1);
        assert_eq!(e.decide("hubspot"), Decision::default());
        assert!(e.decide("salesforce").error.is_some());
    }
}
