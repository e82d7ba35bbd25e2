//! How long the connectors of this process waited on providers' rate limits: for a pacing
//! permit (the kit's `rate_limit`), for a pause a response asked for (`Retry-After`,
//! rate-limit headers), and before trying again after a 429. Counted per provider name, so a
//! service can report it (`rulebridge serve`'s `/metrics`) without knowing any vendor.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Waits shorter than this are the pacer's own bookkeeping, not a wait on a limit.
const NOTICEABLE: Duration = Duration::from_millis(1);

/// What one provider's requests waited, in total, since the process started.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RateLimitWaits {
    pub provider: String,
    /// Requests held back.
    pub waits: u64,
    /// Time spent holding them back.
    pub seconds: f64,
}

static WAITS: Mutex<BTreeMap<String, (u64, Duration)>> = Mutex::new(BTreeMap::new());

/// Counts a wait of `took` on `provider`'s rate limit (nothing for a wait too short to be one).
pub(crate) fn record(provider: &str, took: Duration) {
    if took < NOTICEABLE {
        return;
    }
    let mut waits = WAITS.lock().unwrap_or_else(|e| e.into_inner());
    let entry = waits.entry(provider.to_string()).or_default();
    entry.0 += 1;
    entry.1 += took;
}

/// The waits of every provider that had one, by provider name.
pub fn rate_limit_waits() -> Vec<RateLimitWaits> {
    let waits = WAITS.lock().unwrap_or_else(|e| e.into_inner());
    waits
        .iter()
        .map(|(provider, (n, took))| RateLimitWaits {
            provider: provider.clone(),
            waits: *n,
            seconds: took.as_secs_f64(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_add_up_per_provider() {
        record("waits-test-a", Duration::from_millis(250));
        record("waits-test-a", Duration::from_millis(750));
        record("waits-test-b", Duration::from_micros(10));
        let all = rate_limit_waits();
        let a = all.iter().find(|w| w.provider == "waits-test-a");
        assert_eq!(a.map(|w| w.waits), Some(2));
        assert!(a.is_some_and(|w| (w.seconds - 1.0).abs() < 1e-9));
        assert!(!all.iter().any(|w| w.provider == "waits-test-b"));
    }
}
