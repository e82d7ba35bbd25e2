//! Rolling-window rate limits, keyed by token, account or client.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A sliding log of accepted requests per key: at most `limit` in any `window`.
#[derive(Debug)]
pub(crate) struct Rolling {
    window: Duration,
    hits: HashMap<String, VecDeque<Instant>>,
}

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accepted; this many more fit in the window.
    Allowed { remaining: u32 },
    /// Refused; the oldest counted request leaves the window after this long.
    Limited { retry_after: Duration },
}

impl Rolling {
    pub fn new(window: Duration) -> Rolling {
        Rolling {
            window,
            hits: HashMap::new(),
        }
    }

    /// Counts a request for `key` if it fits under `limit` (refused requests do not count).
    pub fn check(&mut self, key: &str, limit: u32) -> Verdict {
        self.check_at(key, limit, Instant::now())
    }

    pub fn check_at(&mut self, key: &str, limit: u32, now: Instant) -> Verdict {
        let q = self.hits.entry(key.to_string()).or_default();
        while let Some(&first) = q.front() {
            if now.saturating_duration_since(first) >= self.window {
                q.pop_front();
            } else {
                break;
            }
        }
        if q.len() as u32 >= limit {
            let retry_after = q
                .front()
                .map(|&first| {
                    self.window
                        .saturating_sub(now.saturating_duration_since(first))
                })
                .unwrap_or(self.window);
            return Verdict::Limited { retry_after };
        }
        q.push_back(now);
        Verdict::Allowed {
            remaining: limit.saturating_sub(q.len() as u32),
        }
    }

    /// Requests of `key` inside the window now (without counting one).
    pub fn used(&mut self, key: &str) -> u32 {
        let now = Instant::now();
        let window = self.window;
        match self.hits.get_mut(key) {
            Some(q) => {
                q.retain(|&t| now.saturating_duration_since(t) < window);
                q.len() as u32
            }
            None => 0,
        }
    }
}

/// Seconds for a `Retry-After` header (rounded up, at least 1).
#[allow(dead_code)]
pub(crate) fn retry_after_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_window() {
        let mut r = Rolling::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(
                r.check_at("k", 3, t0 + Duration::from_secs(i)),
                Verdict::Allowed {
                    remaining: 2 - i as u32
                }
            );
        }
        assert_eq!(
            r.check_at("k", 3, t0 + Duration::from_secs(5)),
            Verdict::Limited {
                retry_after: Duration::from_secs(5)
            }
        );
        // Another key has its own window.
        assert!(matches!(r.check_at("j", 3, t0), Verdict::Allowed { .. }));
        // The first request leaves the window at t0 + 10 s.
        assert!(matches!(
            r.check_at("k", 3, t0 + Duration::from_secs(10)),
            Verdict::Allowed { remaining: 0 }
        ));
        assert_eq!(retry_after_secs(Duration::from_millis(1200)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
