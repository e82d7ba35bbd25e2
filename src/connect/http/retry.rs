//! When a failed attempt is tried again, and how long to wait first.
//!
//! Statuses listed in the provider's `retry.on` (default 429, 502, 503, 504) are retried, as
//! are transport failures (timeout, refused or dropped connection, DNS) when `network` is
//! listed; other 4xx statuses (all but 408 and 429) never are, whatever `on` says. Waits grow
//! exponentially from `base` to `max` with jitter (`backon`); a `Retry-After` header (seconds or
//! an HTTP date) replaces the computed wait when `respect_retry_after` is on.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use http::HeaderMap;

use crate::syntax::doc::RetryPolicy;

/// The longest `Retry-After` honoured, unless `retry.max` is longer.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub(crate) struct RetrySettings {
    /// Total attempts, the first included (at least 1).
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
    pub on_status: Vec<u16>,
    pub on_network: bool,
    pub respect_retry_after: bool,
}

impl RetrySettings {
    /// The provider's policy, or the defaults of a `retry:` written without settings.
    pub fn new(policy: Option<&RetryPolicy>) -> Self {
        match policy {
            Some(p) => RetrySettings {
                attempts: p.attempts.max(1),
                base: p.base,
                max: p.max.max(p.base),
                on_status: p.on_status.clone(),
                on_network: p.on_network,
                respect_retry_after: p.respect_retry_after,
            },
            None => RetrySettings {
                attempts: 3,
                base: Duration::from_millis(500),
                max: Duration::from_secs(30),
                on_status: vec![429, 502, 503, 504],
                on_network: true,
                respect_retry_after: true,
            },
        }
    }

    /// Whether a response with this status is worth another attempt.
    pub fn retries_status(&self, status: u16) -> bool {
        let retryable_class = status >= 500 || status == 408 || status == 429;
        retryable_class && self.on_status.contains(&status)
    }

    /// The waits before the second, third, ... attempt (`attempts - 1` of them).
    pub fn backoff(&self) -> Backoff {
        let max = self.max;
        let inner = ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.attempts.saturating_sub(1) as usize)
            .build();
        Backoff { inner, max }
    }

    /// How long to wait after a response that asked for `retry_after`.
    pub fn honoured(&self, retry_after: Option<Duration>) -> Option<Duration> {
        retry_after
            .filter(|_| self.respect_retry_after)
            .map(|d| d.min(self.max.max(RETRY_AFTER_CAP)))
    }
}

/// Exponential waits with jitter, never longer than `max`.
pub(crate) struct Backoff {
    inner: backon::ExponentialBackoff,
    max: Duration,
}

impl Iterator for Backoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        self.inner.next().map(|d| d.min(self.max))
    }
}

/// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e6)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = v.parse() {
            h.insert(http::header::RETRY_AFTER, v);
        }
        h
    }

    #[test]
    fn parses_retry_after() {
        assert_eq!(retry_after(&headers("2")), Some(Duration::from_secs(2)));
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon")), None);
    }

    #[test]
    fn four_hundreds_are_never_retried() {
        let mut s = RetrySettings::new(None);
        s.on_status = vec![400, 409, 429, 503];
        assert!(!s.retries_status(400));
        assert!(!s.retries_status(409));
        assert!(s.retries_status(429));
        assert!(s.retries_status(503));
        assert!(!s.retries_status(502));
    }

    #[test]
    fn backoff_is_bounded() {
        let mut s = RetrySettings::new(None);
        s.attempts = 4;
        s.base = Duration::from_millis(10);
        s.max = Duration::from_millis(25);
        let waits: Vec<Duration> = s.backoff().collect();
        assert_eq!(waits.len(), 3);
        assert!(
            waits
                .iter()
                .all(|w| *w >= Duration::from_millis(10) && *w <= s.max)
        );
    }
}
