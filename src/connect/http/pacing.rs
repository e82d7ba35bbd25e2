//! Pacing: requests wait for a permit instead of being sent to be refused.
//!
//! A `rate_limit` of `N per T` becomes a `governor` quota of one request every `T·(1+1/20)/N`
//! with a burst of one. With a burst of one, `N + 1` permits are always at least `T·(1+1/20)`
//! apart, so in any window of length `T` at most `N` requests are sent, even with some
//! scheduling jitter between the permit and the server's clock. (A burst of `N` would let
//! `2N - 1` requests through in a window that straddles a refill.)
//!
//! Responses can ask for a pause for everyone: a `Retry-After`, or rate-limit headers saying
//! nothing is left in the current window (`X-HubSpot-RateLimit-Remaining: 0` with
//! `-Interval-Milliseconds`, `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset`). `Sforce-Limit-Info`
//! (a daily allowance) is only reported in the log when nearly used up.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::HeaderMap;
use tokio::time::Instant;

use crate::syntax::doc::RateLimit;

/// The extra share of each window left unused, against clock and scheduling jitter.
const SAFETY_DIVISOR: u32 = 20;

/// The longest pause rate-limit headers can impose.
const MAX_PAUSE: Duration = Duration::from_secs(300);

/// One `N per T` limit.
pub(crate) struct Limiter {
    rate: RateLimit,
    inner: DefaultDirectRateLimiter,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Limiter({} per {:?})", self.rate.requests, self.rate.per)
    }
}

impl Limiter {
    pub fn new(rate: RateLimit) -> Option<Limiter> {
        let requests = NonZeroU32::new(rate.requests)?;
        let window = rate.per + rate.per / SAFETY_DIVISOR;
        let interval = window / requests.get();
        let quota =
            Quota::with_period(interval.max(Duration::from_nanos(1)))?.allow_burst(NonZeroU32::MIN);
        Some(Limiter {
            rate,
            inner: RateLimiter::direct(quota),
        })
    }

    async fn wait(&self) {
        self.inner.until_ready().await;
    }
}

/// The provider-wide limit and pause, shared by every request of one connector.
#[derive(Debug)]
pub(crate) struct Pacer {
    provider: Option<Limiter>,
    pause: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(rate: Option<RateLimit>) -> Self {
        Pacer {
            provider: rate.and_then(Limiter::new),
            pause: Mutex::new(None),
        }
    }

    /// Waits until a request may be sent: no pause in force, and a permit from the operation's
    /// limit and the provider's.
    pub async fn acquire(&self, operation: Option<&Limiter>) {
        loop {
            self.wait_pause().await;
            if let Some(l) = operation {
                l.wait().await;
            }
            if let Some(l) = &self.provider {
                l.wait().await;
            }
            // A pause that began while we waited for permits holds this request back too.
            if self
                .paused_until()
                .is_none_or(|until| until <= Instant::now())
            {
                return;
            }
        }
    }

    async fn wait_pause(&self) {
        while let Some(until) = self.paused_until() {
            if until <= Instant::now() {
                return;
            }
            tokio::time::sleep_until(until).await;
        }
    }

    fn paused_until(&self) -> Option<Instant> {
        *self.pause.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds every request back for `wait` (extends a pause already in force).
    pub fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait.min(MAX_PAUSE);
        let mut pause = self.pause.lock().unwrap_or_else(|e| e.into_inner());
        if pause.is_none_or(|p| p < until) {
            *pause = Some(until);
        }
    }

    /// Reads rate-limit headers of any response.
    pub fn observe(&self, provider: &str, headers: &HeaderMap) {
        if let Some(wait) = exhausted_window(headers) {
            tracing::debug!(
                provider,
                wait_ms = wait.as_millis() as u64,
                "rate limit window used up; pausing"
            );
            self.pause_for(wait);
        }
        if let Some((used, limit)) = header(headers, "sforce-limit-info").and_then(sforce_usage)
            && limit > 0
            && used * 10 >= limit * 9
        {
            tracing::warn!(provider, used, limit, "API allowance nearly used up");
        }
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// How long to wait when the headers say the current window has no request left.
fn exhausted_window(headers: &HeaderMap) -> Option<Duration> {
    let zero = |name: &str| header(headers, name).is_some_and(|v| v.parse::<f64>() == Ok(0.0));
    if zero("x-hubspot-ratelimit-remaining") {
        let ms = header(headers, "x-hubspot-ratelimit-interval-milliseconds")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(10_000);
        return Some(Duration::from_millis(ms));
    }
    if zero("x-hubspot-ratelimit-secondly-remaining") {
        return Some(Duration::from_secs(1));
    }
    if zero("x-ratelimit-remaining") || zero("ratelimit-remaining") {
        let reset = header(headers, "x-ratelimit-reset")
            .or_else(|| header(headers, "ratelimit-reset"))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)?;
        // Large values are epoch seconds; small ones are seconds from now.
        if reset > 1_000_000_000.0 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs_f64();
            return Some(Duration::from_secs_f64((reset - now).clamp(0.0, 1e6)));
        }
        return Some(Duration::from_secs_f64(reset.min(1e6)));
    }
    None
}

/// `api-usage=18/5000`.
fn sforce_usage(v: &str) -> Option<(u64, u64)> {
    let usage = v
        .split(',')
        .find_map(|p| p.trim().strip_prefix("api-usage="))?;
    let (used, limit) = usage.split_once('/')?;
    Some((used.trim().parse().ok()?, limit.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(v) = v.parse() {
                h.insert(*k, v);
            }
        }
        h
    }

    #[test]
    fn reads_rate_limit_headers() {
        let h = map(&[
            ("x-hubspot-ratelimit-remaining", "0"),
            ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
        ]);
        assert_eq!(exhausted_window(&h), Some(Duration::from_secs(10)));
        let h = map(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "2")]);
        assert_eq!(exhausted_window(&h), Some(Duration::from_secs(2)));
        let h = map(&[("x-ratelimit-remaining", "3"), ("x-ratelimit-reset", "2")]);
        assert_eq!(exhausted_window(&h), None);
        assert_eq!(sforce_usage("api-usage=18/5000"), Some((18, 5000)));
    }
}
