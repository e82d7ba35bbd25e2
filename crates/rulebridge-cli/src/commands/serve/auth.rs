//! Who a `/v1` request acts for: its API key (`Authorization: Bearer KEY`) decides the
//! tenant, and each key (with `--no-auth`, each tenant) has a rate limit of its own.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use rulebridge::state::{ApiKeys, Refused};

use super::{ApiError, App, FieldError};

/// A key's `last used` is written at most this often (a write per request would contend
/// with the records' writes in the store).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Limiter entries kept before idle ones are dropped.
const MAX_LIMITER_KEYS: usize = 10_000;

/// Requests per key allowed: `requests` per `period`, in a burst of `requests` at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub requests: NonZeroU32,
    pub period: Duration,
}

/// `N/s`, `N/min` (or `N/m`), `N/h`, or a bare `N` (per second).
pub fn parse_rate(text: &str) -> anyhow::Result<Rate> {
    let (n, unit) = text.trim().split_once('/').unwrap_or((text.trim(), "s"));
    let period = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        other => {
            anyhow::bail!("--key-rate {text}: unknown period `{other}` (use N/s, N/min or N/h)")
        }
    };
    let requests = n
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or_else(|| {
            anyhow::anyhow!("--key-rate {text}: the count must be a whole number above 0")
        })?;
    Ok(Rate { requests, period })
}

/// How `/v1` requests are authenticated, and their rate limits.
pub struct Auth {
    /// `None`: `--no-auth`, the tenant from `X-Tenant-ID`.
    keys: Option<ApiKeys>,
    limiter: DefaultKeyedRateLimiter<String>,
    touched: Mutex<HashMap<String, Instant>>,
    /// Keys already registered with the secret scrubber.
    masked: Mutex<HashSet<String>>,
}

impl Auth {
    pub fn new(keys: Option<ApiKeys>, rate: Rate) -> Auth {
        let per_request = rate.period / rate.requests.get();
        let quota = Quota::with_period(per_request.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(rate.requests))
            .allow_burst(rate.requests);
        Auth {
            keys,
            limiter: RateLimiter::keyed(quota),
            touched: Mutex::new(HashMap::new()),
            masked: Mutex::new(HashSet::new()),
        }
    }

    /// Whether requests need an API key.
    pub fn required(&self) -> bool {
        self.keys.is_some()
    }

    /// A permit for `who`, or how long until there is one.
    fn permit(&self, who: &str) -> Result<(), Duration> {
        if self.limiter.len() > MAX_LIMITER_KEYS {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&who.to_string())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Masks a valid key in everything the process prints from now on (a declared
    /// endpoint's answer or a log line could quote a request's headers), once per key.
    fn mask(&self, id: &str, key: &str) {
        let mut masked = self.masked.lock().unwrap_or_else(|e| e.into_inner());
        if masked.insert(id.to_string()) {
            rulebridge::secrets::register(key);
        }
    }

    /// Whether key `id`'s `last used` is due for a write (and notes that it is done now).
    fn due(&self, id: &str) -> bool {
        let mut touched = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match touched.get(id) {
            Some(at) if now.duration_since(*at) < TOUCH_EVERY => false,
            _ => {
                touched.insert(id.to_string(), now);
                true
            }
        }
    }
}

/// The `X-Tenant-ID` header: `None` when absent.
pub fn tenant_header(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("x-tenant-id") {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(t) if !t.trim().is_empty() && t.len() <= 200 => Ok(Some(t.trim().to_string())),
            _ => Err(ApiError::invalid(vec![FieldError::new(
                "X-Tenant-ID",
                "must be non-empty printable text of at most 200 bytes",
            )])),
        },
    }
}

/// 401 with the challenge RFC 6750 asks for.
fn unauthorized(message: &str, invalid_token: bool) -> ApiError {
    let challenge = if invalid_token {
        "Bearer realm=\"rulebridge\", error=\"invalid_token\""
    } else {
        "Bearer realm=\"rulebridge\""
    };
    ApiError::new(StatusCode::UNAUTHORIZED, message).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    )
}

/// The tenant a `/v1` request acts for. With API keys (the default): the key of
/// `Authorization: Bearer KEY` decides it; a missing, unknown or revoked key is 401, an
/// `X-Tenant-ID` naming another tenant 403. With `--no-auth`: `X-Tenant-ID` (none: the
/// default tenant, `""`). Either way the key's (or tenant's) rate limit applies: 429 with
/// `Retry-After` when it is used up. Every `/v1` handler calls this first.
pub async fn resolve_tenant(app: &App, headers: &HeaderMap) -> Result<String, ApiError> {
    let claimed = tenant_header(headers)?;
    let Some(keys) = &app.auth.keys else {
        let tenant = claimed.unwrap_or_default();
        limit(app, &format!("tenant:{tenant}"))?;
        return Ok(tenant);
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "an API key is required: `Authorization: Bearer KEY` (see `rulebridge keys create`)",
            false,
        ));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or_else(|| unauthorized("the Authorization header must be `Bearer KEY`", true))?;
    let key = match keys.verify(presented).await? {
        Ok(key) => key,
        Err(Refused::Revoked) => return Err(unauthorized("the API key is revoked", true)),
        Err(Refused::Malformed | Refused::Unknown) => {
            return Err(unauthorized("the API key is not valid", true));
        }
    };
    if let Some(claimed) = claimed
        && claimed != key.tenant
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "X-Tenant-ID names another tenant than the API key's",
        ));
    }
    app.auth.mask(&key.id, presented);
    limit(app, &key.id)?;
    if app.auth.due(&key.id) {
        let (keys, id) = (keys.clone(), key.id.clone());
        tokio::spawn(async move {
            if let Err(e) = keys.touch(&id).await {
                tracing::warn!("state store: could not note when API key {id} was used: {e}");
            }
        });
    }
    Ok(key.tenant)
}

/// 429 with `Retry-After` (whole seconds, at least 1) once `who` has used up its rate.
fn limit(app: &App, who: &str) -> Result<(), ApiError> {
    let Err(wait) = app.auth.permit(who) else {
        return Ok(());
    };
    app.metrics.rate_limited(who);
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too many requests for this API key: slow down",
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from(secs.max(1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        let r = parse_rate("100/s").ok();
        assert_eq!(
            r.map(|r| (r.requests.get(), r.period)),
            Some((100, Duration::from_secs(1)))
        );
        let r = parse_rate("30/min").ok();
        assert_eq!(
            r.map(|r| (r.requests.get(), r.period)),
            Some((30, Duration::from_secs(60)))
        );
        assert_eq!(parse_rate("7").ok().map(|r| r.requests.get()), Some(7));
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("ten/s").is_err());
        assert!(parse_rate("5/fortnight").is_err());
    }

    #[test]
    fn each_key_has_its_own_budget() {
        let auth = Auth::new(None, parse_rate("2/min").unwrap_or_else(|e| panic!("{e}")));
        assert!(auth.permit("a").is_ok());
        assert!(auth.permit("a").is_ok());
        let wait = auth.permit("a").err();
        // One request every 30 s: the next permit is up to 30 s away.
        assert!(
            wait.is_some_and(|w| w > Duration::from_secs(20) && w <= Duration::from_secs(30)),
            "{wait:?}"
        );
        assert!(auth.permit("b").is_ok());
    }

    #[test]
    fn a_valid_key_is_masked_in_output() {
        let auth = Auth::new(None, parse_rate("1/s").unwrap_or_else(|e| panic!("{e}")));
        let key = "rbk_00112233aabbccdd_masked-in-output-test-key-0123456789abcdef";
        let line = format!("authorization: Bearer {key}");
        assert!(rulebridge::secrets::scrub::scrub(&line).contains(key));
        auth.mask("00112233aabbccdd", key);
        assert!(!rulebridge::secrets::scrub::scrub(&line).contains(key));
    }

    #[test]
    fn last_used_is_written_once_a_minute() {
        let auth = Auth::new(None, parse_rate("1/s").unwrap_or_else(|e| panic!("{e}")));
        assert!(auth.due("k"));
        assert!(!auth.due("k"));
        assert!(auth.due("other"));
    }
}
