//! Shared helpers of the `kits_*` tests: an engine over `rules/` with the sandbox's
//! credentials, sending a flow through a kit, reading what the sandbox holds, and a recording
//! proxy in front of the sandbox for snapshots of the request bodies a kit sends.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures::future::BoxFuture;
use rulebridge::Engine;
use rulebridge::connect::{
    Call, Capabilities, ConnectError, Connector, Found, UpdateItem, UpsertItem, Written,
};
use rulebridge::exec::pipeline::Pipeline;
use rulebridge::exec::{Outcome, RunOptions};
use rulebridge_sandbox::{self as sandbox, Sandbox};
use serde_json::{Map, Value, json};

/// How a test sends: the pipeline's and the sink's settings in one literal.
#[derive(Clone, Debug)]
pub struct SendOptions {
    pub concurrency: usize,
    pub record_deadline: Option<std::time::Duration>,
    pub batch: bool,
    pub include_payload: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        let run = RunOptions::default();
        let send = rulebridge::exec::send::SendOptions::default();
        SendOptions {
            concurrency: run.concurrency,
            record_deadline: run.record_deadline,
            batch: send.batch,
            include_payload: send.include_payload,
        }
    }
}

impl SendOptions {
    pub fn split(&self) -> (RunOptions, rulebridge::exec::send::SendOptions) {
        (
            RunOptions {
                concurrency: self.concurrency,
                record_deadline: self.record_deadline,
                ..RunOptions::default()
            },
            rulebridge::exec::send::SendOptions {
                batch: self.batch,
                include_payload: self.include_payload,
                ..Default::default()
            },
        )
    }
}

/// A pipeline of `flow` into `connector`.
pub fn pipeline(
    engine: &Engine,
    connector: Arc<dyn Connector>,
    flow: &str,
    options: &SendOptions,
) -> Pipeline {
    let (run, send) = options.split();
    engine
        .runner(flow)
        .expect("flow")
        .send_through(connector, run, send)
}

/// Runs `input` (NDJSON) through a pipeline; the outcomes as JSON, in input order.
pub async fn outcomes(pipeline: &Pipeline, input: &str) -> Vec<Value> {
    let input = std::io::Cursor::new(input.to_string().into_bytes());
    let (_, got): (_, Vec<Outcome>) = pipeline.run(input, Vec::new(), |_| {}).await.expect("run");
    got.iter()
        .map(|o| serde_json::to_value(o).expect("outcome json"))
        .collect()
}

/// The rules of `rules/` plus `extra` (name, YAML text), with the sandbox's credentials.
pub fn engine(extra: &[(&str, String)]) -> Engine {
    let mut b = Engine::builder().rules_dir("rules");
    for (n, t) in extra {
        b = b.rules_str(*n, t.clone());
    }
    for (k, v) in sandbox::CREDENTIALS {
        b = b.credential(*k, *v);
    }
    b.build().expect("rules compile")
}

/// A kit of `rules/providers` under another name, with textual replacements (each must
/// apply, so a changed kit fails loudly here instead of silently testing something else).
pub fn kit_variant(kit: &str, name: &str, replace: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(format!("rules/providers/{kit}.yaml")).expect("kit");
    let header = format!("name: {kit}\n");
    assert!(text.contains(&header), "kit {kit} has no `{header}`");
    text = text.replace(&header, &format!("name: {name}\n"));
    for (from, to) in replace {
        assert!(
            text.contains(from),
            "kit {kit} changed: `{from}` is gone; update this test"
        );
        text = text.replace(from, to);
    }
    text
}

/// Sends `input` (NDJSON) through `flow` with `provider`'s connector at `base_url`; the
/// outcomes, in input order.
pub async fn send_at(
    engine: &Engine,
    base_url: &str,
    provider: &str,
    flow: &str,
    input: &str,
    options: SendOptions,
) -> Vec<Value> {
    let connector = Arc::new(
        engine
            .http_connector(provider, Some(base_url))
            .expect("connector"),
    );
    outcomes(&pipeline(engine, connector, flow, &options), input).await
}

/// [`send_at`] with the sandbox URL of the kit `kit` (the provider may be a variant of it).
pub async fn send(
    engine: &Engine,
    sb: &Sandbox,
    kit: &str,
    provider: &str,
    flow: &str,
    input: &str,
    options: SendOptions,
) -> Vec<Value> {
    let base = sb.kit_base_url(kit).expect("a sandbox kit");
    send_at(engine, &base, provider, flow, input, options).await
}

pub fn count(outcomes: &[Value], status: &str) -> usize {
    outcomes.iter().filter(|o| o["status"] == status).count()
}

/// The outcomes that are not `status`, for assertion messages.
pub fn others<'a>(outcomes: &'a [Value], status: &[&str]) -> Vec<&'a Value> {
    outcomes
        .iter()
        .filter(|o| !status.iter().any(|s| o["status"] == *s))
        .collect()
}

/// What the sandbox holds for one provider prefix and collection.
pub fn records(sb: &Sandbox, provider: &str, collection: &str) -> Vec<Value> {
    sb.state()
        .providers
        .get(provider)
        .and_then(|p| p.records.get(collection).cloned())
        .unwrap_or_default()
}

pub fn one_by_one(concurrency: usize) -> SendOptions {
    SendOptions {
        batch: false,
        concurrency,
        ..SendOptions::default()
    }
}

/// One request that went through the [`Recorder`].
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

/// A proxy on 127.0.0.1 that forwards every request to a sandbox and remembers it.
#[derive(Clone)]
pub struct Recorder {
    pub url: String,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    pub fn seen(&self) -> Vec<Recorded> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The URL standing for `sandbox_url` (a kit base URL on the sandbox) through the proxy.
    pub fn through(&self, sb: &Sandbox, sandbox_url: &str) -> String {
        sandbox_url.replacen(&sb.url(), &self.url, 1)
    }
}

/// Starts a recording proxy in front of `sb`.
pub async fn recorder(sb: &Sandbox) -> Recorder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
    let target = sb.url();
    let client = reqwest::Client::new();
    let app = {
        let log = log.clone();
        axum::Router::new().fallback(move |req: Request| {
            let log = log.clone();
            let target = target.clone();
            let client = client.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, 10 << 20)
                    .await
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let recorded_body = if text.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&text).unwrap_or(Value::String(text))
                };
                let headers: Vec<(String, String)> = parts
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                log.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Recorded {
                        method: parts.method.to_string(),
                        path: parts.uri.path().to_string(),
                        query: parts.uri.query().map(str::to_string),
                        headers,
                        body: recorded_body,
                    });
                let path_and_query = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let mut rb =
                    client.request(parts.method.clone(), format!("{target}{path_and_query}"));
                for (k, v) in &parts.headers {
                    if k != http::header::HOST && k != http::header::CONTENT_LENGTH {
                        rb = rb.header(k, v);
                    }
                }
                let upstream = match rb.body(bytes).send().await {
                    Ok(r) => r,
                    Err(e) => {
                        return Response::builder()
                            .status(502)
                            .body(Body::from(format!("proxy: {e}")))
                            .unwrap_or_default();
                    }
                };
                let mut out = Response::builder().status(upstream.status().as_u16());
                for (k, v) in upstream.headers() {
                    if k != http::header::CONTENT_LENGTH && k != http::header::TRANSFER_ENCODING {
                        out = out.header(k, v);
                    }
                }
                let body = upstream.bytes().await.unwrap_or_default();
                out.body(Body::from(body)).unwrap_or_default()
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Recorder { url, log }
}

/// The requests as snapshot values: `METHOD path` below the sandbox prefix, the query, the
/// body; token requests (credentials) are left out; values of the `redact` keys (anywhere in
/// a body) become `[key]`.
pub fn shown(seen: &[Recorded], prefix: &str, redact: &[&str]) -> Vec<Value> {
    seen.iter()
        .filter(|s| !s.path.contains("token"))
        .map(|s| {
            let path = s.path.strip_prefix(prefix).unwrap_or(&s.path);
            let mut body = s.body.clone();
            redact_keys(&mut body, redact);
            json!({
                "request": format!("{} {}", s.method, path),
                "query": s.query.as_deref().map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .map(|(k, v)| (k.into_owned(), Value::from(v.into_owned())))
                        .collect::<Map<String, Value>>()
                }),
                "body": body,
            })
        })
        .collect()
}

fn redact_keys(v: &mut Value, keys: &[&str]) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if keys.contains(&k.as_str()) && !x.is_null() {
                    *x = Value::String(format!("[{k}]"));
                } else {
                    redact_keys(x, keys);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact_keys(x, keys)),
        _ => {}
    }
}

/// A connector that lets another writer create a record just before its first create: the
/// race between a lookup that found nothing and the create that follows it.
pub struct Racing {
    inner: Arc<dyn Connector>,
    race: Mutex<Option<BoxFuture<'static, ()>>>,
}

impl Racing {
    pub fn new(inner: Arc<dyn Connector>, race: BoxFuture<'static, ()>) -> Arc<Racing> {
        Arc::new(Racing {
            inner,
            race: Mutex::new(Some(race)),
        })
    }
}

impl Connector for Racing {
    fn capabilities(&self, object: &str) -> Capabilities {
        self.inner.capabilities(object)
    }

    fn search<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        field: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Found>, ConnectError>> {
        self.inner.search(call, object, field, value)
    }

    fn search_many<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        field: &'a str,
        values: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<(usize, Found)>, ConnectError>> {
        self.inner.search_many(call, object, field, values)
    }

    fn create<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>> {
        Box::pin(async move {
            self.race_first().await;
            self.inner.create(call, object, payload).await
        })
    }

    fn update<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        id: &'a str,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<Written, ConnectError>> {
        self.inner.update(call, object, id, payload)
    }

    fn upsert_batch<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        field: &'a str,
        items: &'a [UpsertItem<'a>],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        self.inner.upsert_batch(call, object, field, items)
    }

    fn create_batch<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        payloads: &'a [&'a Value],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        Box::pin(async move {
            self.race_first().await;
            self.inner.create_batch(call, object, payloads).await
        })
    }

    fn update_batch<'a>(
        &'a self,
        call: &'a Call,
        object: &'a str,
        items: &'a [UpdateItem<'a>],
    ) -> BoxFuture<'a, Vec<Result<Written, ConnectError>>> {
        self.inner.update_batch(call, object, items)
    }
}

impl Racing {
    /// The race runs once, before the first create.
    async fn race_first(&self) {
        let race = self.race.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(race) = race {
            race.await;
        }
    }
}

/// Sends `input` through `flow` with a given connector.
pub async fn send_via(
    engine: &Engine,
    connector: Arc<dyn Connector>,
    flow: &str,
    input: &str,
    options: SendOptions,
) -> Vec<Value> {
    outcomes(&pipeline(engine, connector, flow, &options), input).await
}

/// POSTs JSON to the sandbox directly (another writer), returning the response body.
pub async fn post_json(url: &str, headers: &[(&str, &str)], body: &Value) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut rb = reqwest::Client::new().post(url).json(body);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let resp = rb.send().await.expect("direct request");
    resp.json().await.unwrap_or(Value::Null)
}

/// The fault mix of the "20% faults" tests: 10% server errors, 5% of connections dropped before
/// the request is processed and 5% after (the ambiguous case retries must survive).
pub fn twenty_percent_faults() -> rulebridge_sandbox::Faults {
    rulebridge_sandbox::Faults {
        error_rate: 0.1,
        drop_rate: 0.05,
        drop_after_rate: 0.05,
        ..rulebridge_sandbox::Faults::default()
    }
}

/// Fails unless the sandbox really injected server errors and dropped connections for
/// `provider` (a fault test that met no fault proves nothing).
pub fn assert_faults_happened(sb: &Sandbox, provider: &str) {
    let st = &sb.state().providers[provider];
    assert!(
        st.injected_errors > 0 && st.dropped > 0,
        "faults really happened: {st:?}"
    );
}
