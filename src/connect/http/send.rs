//! Sending one request: pacing, credentials, attempts and their outcome.

use std::borrow::Cow;
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
use super::shape::Shape;
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
    /// The JSON body, serialized once.
    pub body: Option<Vec<u8>>,
    /// Whether it may be sent again after it reached the server and its answer was lost
    /// (false for a create the kit does not declare idempotent).
    pub repeatable: bool,
    /// What a successful answer is read for; the rest of it is not built.
    pub shape: Option<Shape>,
}

/// A response, read in full.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as received; only a failure's classification reads it as text.
    pub bytes: bytes::Bytes,
    /// The body as JSON; a body that is not JSON is kept as a string. Only the request's
    /// shape of it when `projected`.
    pub body: Value,
    pub projected: bool,
}

impl Response {
    pub fn is_success(&self) -> bool {
        is_success(self.status)
    }

    /// The body as text (invalid UTF-8 replaced), borrowed where it is valid.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    /// The whole body as JSON, parsed again when only a shape of it was built.
    pub fn whole(&self) -> Cow<'_, Value> {
        if self.projected {
            Cow::Owned(parse_body(&self.bytes))
        } else {
            Cow::Borrowed(&self.body)
        }
    }
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// A body as JSON, from the bytes as they came; a body that is not JSON is kept as text.
fn parse_body(bytes: &[u8]) -> Value {
    if bytes.trim_ascii().is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| {
        // Invalid UTF-8 inside JSON (a vendor's Latin-1 message) still parses once
        // replaced; anything else is kept as text.
        let text = String::from_utf8_lossy(bytes);
        serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()))
    })
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
    /// Worth another attempt when `network` is in `retry.on`; `sent`: the request may have
    /// reached the server (see [`classify_transport`]).
    Transport { error: ConnectError, sent: bool },
    /// Final.
    Fatal(ConnectError),
}

/// A failure after which the request may or may not have been processed: a request that is
/// not repeatable is returned with it instead of being sent again.
fn unknown(mut e: ConnectError) -> ConnectError {
    e.kind = ErrorKind::Transient;
    e.outcome_unknown = true;
    e
}

/// A status that says the server did not process the request: it refused it for now (429),
/// timed out waiting for it (408), or is unavailable and says when to come back (503 with
/// `Retry-After`). Other 5xx answers, a bare 503 included (proxies send one when the upstream
/// reset the connection after reading the request), leave the outcome unknown.
fn unprocessed(status: u16, headers: &HeaderMap) -> bool {
    match status {
        408 | 429 => true,
        503 => headers.contains_key(http::header::RETRY_AFTER),
        s => s < 500,
    }
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
            let pacing = Instant::now();
            match deadline {
                // Waiting for a permit ends at the deadline too.
                Some(d) => {
                    let paced = tokio::time::timeout_at(d, self.pacer.acquire(limiter)).await;
                    crate::connect::waits::record(&self.plan.name, pacing.elapsed());
                    if paced.is_err() || Instant::now() >= d {
                        return Err(Failed::from(last.unwrap_or_else(deadline_passed)));
                    }
                }
                None => {
                    self.pacer.acquire(limiter).await;
                    crate::connect::waits::record(&self.plan.name, pacing.elapsed());
                }
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
                    match self.creds().auth.refused(generation).await {
                        Ok(_) => {
                            attempt -= 1;
                            continue;
                        }
                        // The token endpoint failed for now: the refused token is gone, so
                        // the next attempt fetches one, after a wait like any failed request.
                        // A 401 was not processed, so even a create may go again.
                        Err(e) if self.retries_transient(&e) => match backoff.next() {
                            Some(wait) => (e, wait),
                            None => return Err(e.into()),
                        },
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok((resp, _)) => {
                    let mut err = classify::classify(
                        rules,
                        &self.plan.errors,
                        resp.status,
                        &resp.text(),
                        &resp.body,
                    );
                    tracing::debug!(provider = %self.plan.name, op = %req.what, attempt, status = resp.status, kind = ?err.kind, "failed");
                    // A create that may have landed is not repeated blindly: the engine
                    // looks the record up first. An error the kit recognised (a duplicate
                    // reported with a 500, say) is known, not unknown.
                    if !req.repeatable
                        && err.kind == ErrorKind::Transient
                        && !unprocessed(resp.status, &resp.headers)
                    {
                        err = unknown(err);
                        return Err(Failed {
                            error: err,
                            response: Some(resp),
                        });
                    }
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
                Err(Failure::Transport { error: err, sent }) => {
                    tracing::debug!(provider = %self.plan.name, op = %req.what, attempt, sent, error = %err.message, "transport failure");
                    if sent && !req.repeatable {
                        return Err(unknown(err).into());
                    }
                    if !self.retries_transient(&err) {
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
            if err.kind == ErrorKind::RateLimited {
                crate::connect::waits::record(&self.plan.name, wait);
            }
            last = Some(err);
        }
    }

    /// Whether a transient failure that came without a data response (a token request, a
    /// transport error) is tried again: by its status when it has one, else when `network`
    /// is in `retry.on`.
    fn retries_transient(&self, e: &ConnectError) -> bool {
        e.kind == ErrorKind::Transient
            && match e.status {
                Some(s) => self.retry.retries_status(s),
                None => self.retry.on_network,
            }
    }

    /// One attempt; also returns the token generation it used.
    async fn attempt(&self, req: &Prepared) -> Result<(Response, Option<u64>), Failure> {
        // Credentials come before the request: a failure to get them never sent it.
        let creds = self.creds();
        let credentials = creds.auth.credentials().await.map_err(|e| {
            if e.kind == ErrorKind::Transient {
                Failure::Transport {
                    error: e,
                    sent: false,
                }
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
            .headers(creds.headers.clone())
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
        let (client, request) = rb.build_split();
        let mut request = request.map_err(|e| classify_transport(&e, self.timeout))?;
        if let Some(body) = &req.body {
            // As `RequestBuilder::json` does, from the bytes serialized once.
            request
                .headers_mut()
                .entry(http::header::CONTENT_TYPE)
                .or_insert_with(|| http::HeaderValue::from_static("application/json"));
            *request.body_mut() = Some(body.clone().into());
        }
        let response = client
            .execute(request)
            .await
            .map_err(|e| classify_transport(&e, self.timeout))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.pacer
            .observe(&self.plan.name, &self.plan.rate_limit_headers, &headers);
        // The status line came back: the request was received, whatever the body says.
        let bytes = response.bytes().await.map_err(|e| Failure::Transport {
            error: transport_error(&e, Some(self.timeout)),
            sent: true,
        })?;
        // Parsed from the bytes as they came: a batch's answer is not copied into a string
        // first (only a failure's classification reads the text). A success is built only
        // as far as the request's shape reads it; a failure is classified from all of it.
        let shape = req.shape.as_ref().filter(|_| is_success(status));
        let (body, projected) = match shape.map(|s| s.parse(&bytes)) {
            Some(Ok(body)) => (body, true),
            _ => (parse_body(&bytes), false),
        };
        Ok((
            Response {
                status,
                headers,
                bytes,
                body,
                projected,
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

/// A failed `send()`. Whether the request may have reached the server decides whether a
/// create can go again:
///
/// * `is_connect()`: the connector failed — DNS, a refused or timed-out TCP connect, the TLS
///   handshake, a proxy's CONNECT. Not one byte of the request was written: not sent.
/// * A pooled keep-alive connection the server had already closed fails the write; hyper's
///   client sends such a request again on a new connection by itself (it retries requests
///   canceled before they were written), so that case never reaches here.
/// * Everything else — a timeout (the request's own, which runs while the server may be
///   working on it), a connection reset or closed before or while the response came
///   ("connection closed before message completed"), an HTTP/2 stream reset — happens after
///   the request was (at least partly) written: the server may have processed it.
///
/// A connect timeout is both `is_connect()` and `is_timeout()`: not sent.
///
/// A server certificate the process does not trust (unknown issuer, expired, another host's)
/// is fatal: retrying cannot change the answer, the trust store or the URL must.
fn classify_transport(e: &reqwest::Error, timeout: Duration) -> Failure {
    let err = transport_error(e, Some(timeout));
    if e.is_builder() || e.is_redirect() || refused_certificate(e) {
        Failure::Fatal(ConnectError {
            kind: ErrorKind::Fatal,
            ..err
        })
    } else {
        Failure::Transport {
            error: err,
            sent: !e.is_connect(),
        }
    }
}

/// Whether the TLS handshake refused the server's certificate. The connector wraps rustls's
/// error in I/O errors, whose `source()` skips the error they carry: those are opened too.
fn refused_certificate(e: &reqwest::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return matches!(tls, rustls::Error::InvalidCertificate(_));
        }
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as _),
            None => err.source(),
        };
    }
    false
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
    ConnectError::new(
        ErrorKind::Transient,
        classify::truncate(&crate::secrets::scrub::scrub(&message)),
    )
}
