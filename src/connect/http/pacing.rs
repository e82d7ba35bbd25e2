//! Pacing: requests wait for a permit instead of being sent to be refused.
//!
//! A `rate_limit` of `N per T` becomes a `governor` quota of one request every `T·(1+1/20)/N`
//! with a burst of one. With a burst of one, `N + 1` permits are always at least `T·(1+1/20)`
//! apart, so in any window of length `T` at most `N` requests are sent, even with some
//! scheduling jitter between the permit and the server's clock. (A burst of `N` would let
//! `2N - 1` requests through in a window that straddles a refill.)
//!
//! Responses can ask for a pause for everyone: a `Retry-After`, or rate-limit headers saying
//! nothing is left in the current window. Which headers say so is the provider's
//! `rate_limit_headers` (by default `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset`, and
//! the IETF draft's `RateLimit-*`). A `usage` entry (a daily allowance) is only reported in
//! the log when nearly used up.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::HeaderMap;
use tokio::time::Instant;

use crate::plan::provider::RateLimitHeader;
use crate::syntax::doc::{RateLimit, ResetUnit};

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

    /// Reads rate-limit headers of any response, by the provider's `rate_limit_headers`.
    pub fn observe(&self, provider: &str, rules: &[RateLimitHeader], headers: &HeaderMap) {
        if let Some(wait) = exhausted_window(rules, headers) {
            tracing::debug!(
                provider,
                wait_ms = wait.as_millis() as u64,
                "rate limit window used up; pausing"
            );
            self.pause_for(wait);
        }
        for (used, limit) in usage(rules, headers) {
            if limit > 0 && used * 10 >= limit * 9 {
                tracing::warn!(provider, used, limit, "API allowance nearly used up");
            }
        }
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &http::HeaderName) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// How long to wait when a window entry's `remaining` header says nothing is left: the
/// first such entry wins.
fn exhausted_window(rules: &[RateLimitHeader], headers: &HeaderMap) -> Option<Duration> {
    rules.iter().find_map(|r| {
        let RateLimitHeader::Window {
            remaining,
            reset,
            unit,
            wait,
        } = r
        else {
            return None;
        };
        let left = header(headers, remaining)?.parse::<f64>().ok()?;
        if left != 0.0 {
            return None;
        }
        let reset = reset
            .as_ref()
            .and_then(|h| header(headers, h))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0);
        Some(match reset {
            None => *wait,
            Some(v) => reset_wait(v, *unit)?,
        })
    })
}

fn reset_wait(v: f64, unit: ResetUnit) -> Option<Duration> {
    let until_epoch = |epoch: f64| -> Option<Duration> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        Some(Duration::from_secs_f64((epoch - now).clamp(0.0, 1e6)))
    };
    match unit {
        ResetUnit::Milliseconds => Some(Duration::from_secs_f64((v / 1000.0).min(1e6))),
        ResetUnit::EpochSeconds => until_epoch(v),
        // Large values are epoch seconds; small ones are seconds from now.
        ResetUnit::Seconds if v > 1_000_000_000.0 => until_epoch(v),
        ResetUnit::Seconds => Some(Duration::from_secs_f64(v.min(1e6))),
    }
}

/// `(used, limit)` of every `usage` entry present (`api-usage=18/5000` with its pattern).
fn usage(rules: &[RateLimitHeader], headers: &HeaderMap) -> Vec<(u64, u64)> {
    rules
        .iter()
        .filter_map(|r| {
            let RateLimitHeader::Usage { header: h, pattern } = r else {
                return None;
            };
            let caps = pattern.captures(header(headers, h)?)?;
            let used = caps.get(1)?.as_str().trim().parse().ok()?;
            let limit = caps.get(2)?.as_str().trim().parse().ok()?;
            Some((used, limit))
        })
        .collect()
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

    fn window(
        remaining: &'static str,
        reset: Option<&'static str>,
        unit: ResetUnit,
    ) -> RateLimitHeader {
        RateLimitHeader::Window {
            remaining: http::HeaderName::from_static(remaining),
            reset: reset.map(http::HeaderName::from_static),
            unit,
            wait: Duration::from_secs(7),
        }
    }

    #[test]
    fn reads_the_declared_rate_limit_headers() {
        let rules = [
            window(
                "x-a-remaining",
                Some("x-a-interval"),
                ResetUnit::Milliseconds,
            ),
            window("x-b-remaining", None, ResetUnit::Seconds),
            window(
                "x-ratelimit-remaining",
                Some("x-ratelimit-reset"),
                ResetUnit::Seconds,
            ),
        ];
        let h = map(&[("x-a-remaining", "0"), ("x-a-interval", "10000")]);
        assert_eq!(exhausted_window(&rules, &h), Some(Duration::from_secs(10)));
        let h = map(&[("x-b-remaining", "0")]);
        assert_eq!(exhausted_window(&rules, &h), Some(Duration::from_secs(7)));
        let h = map(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "2")]);
        assert_eq!(exhausted_window(&rules, &h), Some(Duration::from_secs(2)));
        let h = map(&[("x-ratelimit-remaining", "3"), ("x-ratelimit-reset", "2")]);
        assert_eq!(exhausted_window(&rules, &h), None);
        // Headers no entry declares are not read.
        let h = map(&[("x-c-remaining", "0")]);
        assert_eq!(exhausted_window(&rules, &h), None);
        let Ok(pattern) = regex::Regex::new(r"api-usage=(\d+)/(\d+)") else {
            panic!()
        };
        let rules = [RateLimitHeader::Usage {
            header: http::HeaderName::from_static("x-usage"),
            pattern,
        }];
        let h = map(&[("x-usage", "api-usage=18/5000")]);
        assert_eq!(usage(&rules, &h), [(18, 5000)]);
    }
}
