//! A scripted API server on 127.0.0.1 for the HTTP connector tests, and provider loading.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rulebridge::connect::http::{HttpConnector, HttpOptions};
use rulebridge::plan::ProviderPlan;
use rulebridge::secrets::Secret;
use serde_json::Value;

/// One request the server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// JSON when it parses, else the raw text (form bodies), null when empty.
    pub body: Value,
    pub at: Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A form field of a form-encoded body.
    pub fn form(&self, name: &str) -> Option<String> {
        let text = self.body.as_str()?;
        url::form_urlencoded::parse(text.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// What the server answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
    /// Close the connection instead of answering (after the request was read in full).
    pub hang_up: bool,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            delay: Duration::ZERO,
            hang_up: false,
        }
    }

    /// A body of raw bytes, as a vendor may send them (not necessarily UTF-8).
    pub fn raw(status: u16, content_type: &str, body: &[u8]) -> Reply {
        Reply {
            headers: vec![("content-type".into(), content_type.into())],
            body: body.to_vec(),
            ..Reply::empty(status)
        }
    }

    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
            hang_up: false,
        }
    }

    /// No answer: the connection is closed once the request was read (a response lost after
    /// the server processed the request).
    pub fn hang_up() -> Reply {
        Reply {
            hang_up: true,
            ..Reply::empty(200)
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Script = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// A running server: its URL and what it saw.
#[derive(Clone)]
pub struct Server {
    pub url: String,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Requests to `path` (any method).
    pub fn to(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }
}

/// Starts a server that answers every request with `script(request, n)`, where `n` counts
/// the earlier requests with the same method and path.
pub async fn serve(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Server {
    let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let script: Arc<Script> = Arc::new(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let server_log = log.clone();
    // Its own accept loop, so that a reply can close the connection without an answer.
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = server_log.clone();
            let counts = counts.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let log = log.clone();
                        let counts = counts.clone();
                        let script = script.clone();
                        async move { answer(req.map(Body::new), &log, &counts, &*script).await }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Server { url, log }
}

#[derive(Debug)]
struct HungUp;

impl std::fmt::Display for HungUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hung up on purpose")
    }
}

impl std::error::Error for HungUp {}

async fn answer(
    req: Request,
    log: &Mutex<Vec<Seen>>,
    counts: &Mutex<HashMap<String, usize>>,
    script: &Script,
) -> Result<Response, HungUp> {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 10 << 20)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
        at,
    };
    let n = {
        let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = c
            .entry(format!("{} {}", seen.method, seen.path))
            .or_insert(0);
        *n += 1;
        *n - 1
    };
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(seen.clone());
    let reply = script(&seen, n);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if reply.hang_up {
        return Err(HungUp);
    }
    let mut response =
        Response::builder().status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK));
    for (k, v) in &reply.headers {
        response = response.header(k, v);
    }
    Ok(response
        .body(Body::from(reply.body))
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

/// The compiled provider of a YAML text (it must compile without errors).
pub fn provider(yaml: &str) -> Arc<ProviderPlan> {
    try_provider(yaml).unwrap_or_else(|errors| panic!("provider has errors: {errors:#?}"))
}

/// The compiled provider of a YAML text, or the concise diagnostics that stop it.
pub fn try_provider(yaml: &str) -> Result<Arc<ProviderPlan>, Vec<String>> {
    let loaded = rulebridge::syntax::load_paths_with(&[], &[("provider.yaml".into(), yaml.into())])
        .expect("load the provider");
    compiled(&loaded)
}

fn compiled(loaded: &rulebridge::syntax::Loaded) -> Result<Arc<ProviderPlan>, Vec<String>> {
    let compiled = rulebridge::compile::compile_loaded(loaded, &rulebridge::Registry::builtin());
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .chain(&compiled.diagnostics)
        .filter(|d| d.is_error())
        .map(|d| format!("{} {}", d.code, d.message))
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let plan = compiled.plan.expect("a plan without errors");
    let p = plan
        .providers()
        .next()
        .expect("a provider document")
        .clone();
    Ok(p)
}

/// A provider kit from `rules/providers`, compiled.
pub fn kit(name: &str) -> Arc<ProviderPlan> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("rules/providers")
        .join(format!("{name}.yaml"));
    let loaded = rulebridge::syntax::load_paths(&[path]).expect("load the kit");
    compiled(&loaded).unwrap_or_else(|errors| panic!("kit {name} has errors: {errors:#?}"))
}

/// Options pointing at `server` with the given credentials (the environment is not read).
pub fn options(server: &Server, secrets: &[(&str, &str)]) -> HttpOptions {
    HttpOptions {
        base_url: Some(server.url.clone()),
        secrets: secrets
            .iter()
            .map(|(k, v)| (k.to_string(), Secret::new(v.to_string())))
            .collect(),
        read_env: false,
        ..HttpOptions::default()
    }
}

pub fn connector(yaml: &str, server: &Server, secrets: &[(&str, &str)]) -> HttpConnector {
    HttpConnector::new(&provider(yaml), options(server, secrets)).expect("build the connector")
}

/// A provider with one `contact` object; `extra` is spliced in at the top level.
pub fn simple(auth: &str, extra: &str) -> String {
    format!(
        r#"kind: provider
name: test
base_url: http://placeholder.invalid
auth: {auth}
{extra}
objects:
  contact:
    response: {{ updated_at: "$.updatedAt", fields: "$.properties" }}
    operations:
      search: {{ method: POST, path: /contacts/search, body: {{ q: "{{{{ key }}}}" }}, results: "$.results[*]" }}
      create: {{ method: POST, path: /contacts, body: {{ properties: "{{{{ payload }}}}" }}, id: "$.id" }}
      update: {{ method: PATCH, path: "/contacts/{{{{ id }}}}", body: {{ properties: "{{{{ payload }}}}" }} }}
"#
    )
}
