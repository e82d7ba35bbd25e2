//! Sending one request: pacing, credentials, attempts and their outcome.

use std::error::Error as _;
use std::time::Duration;

use http::{HeaderMap, Method};
use serde_json::Value;
use tokio::time::Instant;

use super::HttpConnector;
use super::auth::Credentials;
use super::classify;
use super::pacing::Limiter;
use super::retry;
use crate::connect::{ConnectError, ErrorKind};
use crate::plan::provider::ErrorRulePlan;

/// A rendered request, sent as many times as the retry policy allows.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// `contact.create`, for logs.
    pub what: String,
    pub method: Method,
    /// The rendered path (appended to the base URL) or an absolute URL.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Option<Value>,
}

/// A response, read in full.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON; a body that is not JSON is kept as a string.
    pub body: Value,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A request that failed for good: the classified error, and the response when there was one.
#[derive(Debug)]
pub(crate) struct Failed {
    pub error: ConnectError,
    pub response: Option<Response>,
}

impl From<ConnectError> for Failed {
    fn from(error: ConnectError) -> Self {
        Failed {
            error,
            response: None,
        }
    }
}

enum Failure {
    /// Worth another attempt when `network` is in `retry.on`.
    Transport(ConnectError),
    /// Final.
    Fatal(ConnectError),
}

impl HttpConnector {
    /// Sends `req` until it succeeds, fails for good, runs out of attempts, or the deadline
    /// passes (no attempt starts after it). A non-2xx response that is not retried becomes a
    /// classified error (`rules` are the object's; the provider's follow), kept with the
    /// response it came from.
    pub(crate) async fn send(
        &self,
        req: &Prepared,
        limiter: Option<&Limiter>,
        rules: &[ErrorRulePlan],
        deadline: Option<Instant>,
    ) -> Result<Response, Failed> {
        let mut backoff = self.retry.backoff();
        let mut refreshed = false;
        let mut attempt = 0u32;
        let mut last: Option<ConnectError> = None;
        loop {
            if let Some(d) = deadline
                && Instant::now() >= d
            {
                return Err(Failed::from(last.unwrap_or_else(deadline_passed)));
            }
            match deadline {
                // Waiting for a permit ends at the deadline too.
                Some(d) => {
                    let paced = tokio::time::timeout_at(d, self.pacer.acquire(limiter)).await;
                    if paced.is_err() || Instant::now() >= d {
                        return Err(Failed::from(last.unwrap_or_else(deadline_passed)));
                    }
                }
                None => self.pacer.acquire(limiter).await,
            }
            attempt += 1;
            let (err, wait) = match self.attempt(req).await {
                Ok((resp, _)) if resp.is_success() => {
                    tracing::debug!(provider = %self.plan.name, op = %req.what, attempt, status = resp.status, "ok");
                    return Ok(resp);
                }
                Ok((resp, Some(generation))) if resp.status == 401 && !refreshed => {
                    tracing::debug!(provider = %self.plan.name, op = %req.what, "401: refreshing the token");
                    refreshed = true;
                    self.auth.refused(generation).await.map_err(Failed::from)?;
                    attempt -= 1;
                    continue;
                }
                Ok((resp, _)) => {
                    let err = classify::classify(
                        rules,
                        &self.plan.errors,
                        resp.status,
                        &resp.text,
                        &resp.body,
                    );
                    tracing::debug!(provider = %self.plan.name, op = %req.what, attempt, status = resp.status, kind = ?err.kind, "failed");
                    if !self.retry.retries_status(resp.status) {
                        return Err(Failed {
                            error: err,
                            response: Some(resp),
                        });
                    }
                    let asked = self.retry.honoured(retry::retry_after(&resp.headers));
                    let Some(computed) = backoff.next() else {
                        return Err(Failed {
                            error: err,
                            response: Some(resp),
                        });
                    };
                    let wait = asked.unwrap_or(computed);
                    if resp.status == 429 || asked.is_some() {
                        // The whole provider is refusing: hold every request back.
                        self.pacer.pause_for(wait);
                    }
                    (err, wait)
                }
                Err(Failure::Transport(err)) => {
                    tracing::debug!(provider = %self.plan.name, op = %req.what, attempt, error = %err.message, "transport failure");
                    if !self.retry.on_network {
                        return Err(err.into());
                    }
                    let Some(wait) = backoff.next() else {
                        return Err(err.into());
                    };
                    (err, wait)
                }
                Err(Failure::Fatal(err)) => return Err(err.into()),
            };
            if deadline.is_some_and(|d| Instant::now() + wait >= d) {
                return Err(err.into());
            }
            tokio::time::sleep(wait).await;
            last = Some(err);
        }
    }

    /// One attempt; also returns the token generation it used.
    async fn attempt(&self, req: &Prepared) -> Result<(Response, Option<u64>), Failure> {
        let credentials = self.auth.credentials().await.map_err(|e| {
            if e.kind == ErrorKind::Transient {
                Failure::Transport(e)
            } else {
                Failure::Fatal(e)
            }
        })?;
        let (instance_url, generation) = match &credentials {
            Credentials::Token {
                instance_url,
                generation,
                ..
            } => (instance_url.as_deref(), Some(*generation)),
            _ => (None, None),
        };
        let url = self.url(&req.path, instance_url);
        let mut rb = self
            .client
            .request(req.method.clone(), url)
            .timeout(self.timeout)
            .headers(self.headers.clone())
            .headers(req.headers.clone());
        if !req.query.is_empty() {
            rb = rb.query(&req.query);
        }
        rb = match credentials {
            Credentials::None => rb,
            Credentials::Header(name, value) => rb.header(name, value),
            Credentials::Query(name, value) => rb.query(&[(name, value)]),
            Credentials::Basic(user, password) => rb.basic_auth(user, Some(password)),
            Credentials::Token { value, .. } => rb.header(http::header::AUTHORIZATION, value),
        };
        if let Some(body) = &req.body {
            rb = rb.json(body);
        }
        let response = rb
            .send()
            .await
            .map_err(|e| classify_transport(&e, self.timeout))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.pacer
            .observe(&self.plan.name, &self.plan.rate_limit_headers, &headers);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| classify_transport(&e, self.timeout))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()))
        };
        Ok((
            Response {
                status,
                headers,
                text,
                body,
            },
            generation,
        ))
    }
}

fn deadline_passed() -> ConnectError {
    ConnectError::new(
        ErrorKind::Transient,
        "the record's deadline passed before the request could be sent",
    )
}

fn classify_transport(e: &reqwest::Error, timeout: Duration) -> Failure {
    let err = transport_error(e, Some(timeout));
    if e.is_builder() || e.is_redirect() {
        Failure::Fatal(ConnectError {
            kind: ErrorKind::Fatal,
            ..err
        })
    } else {
        Failure::Transport(err)
    }
}

/// A transport failure in words, without the URL (which may carry an API key).
pub(crate) fn transport_error(e: &reqwest::Error, timeout: Option<Duration>) -> ConnectError {
    let what = if e.is_timeout() {
        match timeout {
            Some(t) => format!("timed out after {t:?}"),
            None => "timed out".to_string(),
        }
    } else if e.is_connect() {
        "could not connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "reading the response failed".to_string()
    } else if e.is_builder() {
        "the request could not be built".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut causes: Vec<String> = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !causes.iter().any(|c| c.contains(&text)) && !text.contains("://") {
            causes.push(text);
        }
        source = s.source();
    }
    let message = if causes.is_empty() {
        what
    } else {
        format!("{what}: {}", causes.join(": "))
    };
    ConnectError::new(ErrorKind::Transient, classify::truncate(&message))
}
