//! `/openapi.json`: the OpenAPI 3.1 description of the routes `serve` answers.

use axum::Json;
use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn tenant_header() -> Value {
    json!({
        "name": "X-Tenant-ID", "in": "header", "required": false,
        "description": "With an API key: optional, and must name the key's tenant (else 403). With `serve --no-auth`: the tenant the request acts for (default: the default tenant).",
        "schema": { "type": "string" }
    })
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn provider_param() -> Value {
    json!({ "name": "provider", "in": "path", "required": true, "description": "A provider whose kit has a `connect:` section (hubspot, salesforce)", "schema": { "type": "string" } })
}

fn callback_params() -> Value {
    json!([
        provider_param(),
        query(
            "code",
            "The authorization code of the vendor's redirect",
            json!({"type": "string"})
        ),
        query(
            "state",
            "The `state` of the start, as the vendor's redirect carries it",
            json!({"type": "string"})
        ),
        query(
            "error",
            "The vendor's error when the user declined",
            json!({"type": "string"})
        ),
        tenant_header()
    ])
}

fn callback_body() -> Value {
    json!({"type": "object", "properties": {"code": {"type": "string"}, "state": {"type": "string"}}})
}

fn callback_responses() -> Value {
    json!({
        "200": json_response("Connected: the tokens are stored encrypted for the tenant", json!({"type": "object", "properties": {
            "provider": {"type": "string"}, "connected": {"const": true},
            "connected_at": {"type": "integer"}, "expires_at": {"type": ["integer", "null"]}, "scope": {"type": ["string", "null"]}
        }})),
        "400": error_response("No code or state; a state that is unknown, used, expired, or of another tenant or provider; the user declined; or the vendor refused the code"),
        "404": error_response("No such provider, or its kit has no `connect:` section"),
        "502": error_response("The vendor's token endpoint failed"),
        "503": error_response("No master key, or the kit's connect settings are not set")
    })
}

fn callback_op(summary: &str) -> Value {
    json!({ "summary": summary, "parameters": callback_params(), "responses": callback_responses() })
}

/// The document, with the declared endpoints; `/v1` operations name the bearer API key
/// when `keys` (not `serve --no-auth`).
pub fn document(endpoints: &[super::endpoint::Endpoint], keys: bool) -> Value {
    let mut doc = base();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for op in item
                .as_object_mut()
                .into_iter()
                .flat_map(|i| i.values_mut())
            {
                if keys {
                    op["security"] = json!([{ "apiKey": [] }]);
                    op["responses"]["401"] = error_response(
                        "No API key, or one unknown or revoked (with `WWW-Authenticate: Bearer`)",
                    );
                    op["responses"]["403"] =
                        error_response("`X-Tenant-ID` names another tenant than the API key's");
                }
                op["responses"]["429"] = json!({
                    "description": "The API key's rate limit is used up (`serve --key-rate`)",
                    "headers": { "Retry-After": { "description": "Seconds until a request is accepted again", "schema": { "type": "integer" } } },
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
                });
            }
        }
    }
    for e in endpoints {
        let p = &e.plan;
        let mut parameters = Vec::new();
        if let Some(a) = &p.auth {
            parameters.push(json!({ "name": a.header, "in": "header", "required": true, "schema": { "type": "string" }, "description": "Must equal the endpoint's key" }));
        }
        for h in &p.require_headers {
            parameters.push(json!({ "name": h, "in": "header", "required": true, "schema": { "type": "string" } }));
        }
        let op = json!({
            "summary": format!("Endpoint `{}`: records into flow `{}`", p.name, p.flow),
            "operationId": p.name,
            "parameters": parameters,
            "requestBody": { "required": true, "content": { "application/json": { "schema": {
                "type": "object", "required": p.require_body.iter().filter(|f| !f.contains('.')).collect::<Vec<_>>()
            } } } },
            "responses": {
                "200": json_response("The declared response", json!({"type": "object", "required": p.response.iter().map(|(k, _)| k).collect::<Vec<_>>()})),
                "400": { "description": "The request is not valid" },
                "401": { "description": "The key is missing or wrong" }
            }
        });
        doc["paths"][p.path.as_str()][p.method.to_lowercase()] = op;
    }
    doc
}

fn base() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "rulebridge serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Records into rulebridge flows over HTTP, and the state store's runs, changelog and dead letters. Every response is scrubbed of secret values."
        },
        "paths": {
            "/healthz": { "get": {
                "summary": "Liveness: answers as soon as the server listens",
                "responses": { "200": json_response("Listening", json!({"type": "object", "properties": {"status": {"const": "ok"}}})) }
            }},
            "/metrics": { "get": {
                "summary": "Prometheus metrics: records by status, request latency, record errors by kind",
                "responses": { "200": { "description": "Prometheus text format", "content": { "text/plain": { "schema": { "type": "string" } } } } }
            }},
            "/openapi.json": { "get": {
                "summary": "This document",
                "responses": { "200": json_response("OpenAPI 3.1", json!({"type": "object"})) }
            }},
            "/v1/flows/{flow}/records": { "post": {
                "summary": "Send one record or an array of records through a flow",
                "description": "Each record is sent as `rulebridge run` sends it, through the state store: unchanged records make no request, every outcome is in the changelog, failures are dead letters. Outcomes come back in input order.",
                "parameters": [
                    { "name": "flow", "in": "path", "required": true, "schema": { "type": "string" } },
                    query("dry_run", "Evaluate only: the outcomes carry the exact payloads that would be sent.", json!({"type": "boolean"})),
                    query("duplicatePolicy", "What happens to a record the target already holds, instead of the flow's `duplicates.on_match`.", json!({"enum": ["skip", "update", "create_new"]})),
                    tenant_header()
                ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "oneOf": [ { "type": "object" }, { "type": "array", "items": { "type": "object" } } ]
                } } } },
                "responses": {
                    "200": json_response("Per-record outcomes", json!({"$ref": "#/components/schemas/Sent"})),
                    "400": error_response("The request is not valid (see `details`)"),
                    "404": error_response("No such flow"),
                    "413": { "description": "The body is larger than `--max-body`" }
                }
            }},
            "/v1/runs/{id}": { "get": {
                "summary": "One run with its counters",
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }, tenant_header() ],
                "responses": {
                    "200": json_response("The run", json!({"$ref": "#/components/schemas/Run"})),
                    "404": error_response("No such run")
                }
            }},
            "/v1/log": { "get": {
                "summary": "The changelog: one row per record per run, newest first",
                "parameters": [
                    query("flow", "Only this flow", json!({"type": "string"})),
                    query("key", "Only this record key", json!({"type": "string"})),
                    query("status", "Only this outcome", json!({"enum": ["created", "updated", "unchanged", "skipped", "failed"]})),
                    query("run", "Only this run", json!({"type": "string"})),
                    query("since", "An age (30s, 15m, 2h, 7d) or an RFC 3339 time", json!({"type": "string"})),
                    query("limit", "At most this many rows (default 100)", json!({"type": "integer", "minimum": 1, "maximum": 10000})),
                    tenant_header()
                ],
                "responses": {
                    "200": json_response("Changelog rows", json!({"type": "object", "properties": {"changes": {"type": "array", "items": {"type": "object"}}}})),
                    "400": error_response("A filter is not valid")
                }
            }},
            "/v1/oauth/{provider}/start": { "get": {
                "summary": "Start connecting the tenant's account of a provider over OAuth",
                "description": "Answers the vendor's authorize URL (from the kit's `connect:` section) with a `state` that is random, single-use, bound to the tenant and provider, and valid for 10 minutes. Send the user's browser there; the vendor redirects to the app's redirect URL with `code` and `state`, which go to the callback.",
                "parameters": [ provider_param(), tenant_header() ],
                "responses": {
                    "200": json_response("Where to send the user", json!({"type": "object", "required": ["authorize_url", "state"], "properties": {
                        "provider": {"type": "string"}, "authorize_url": {"type": "string", "format": "uri"},
                        "state": {"type": "string"}, "expires_in": {"type": "integer", "description": "Seconds the state can be used"}
                    }})),
                    "404": error_response("No such provider, or its kit has no `connect:` section"),
                    "503": error_response("No master key (the tokens are kept encrypted), or the kit's client id, secret or redirect URL are not set")
                }
            }},
            "/v1/oauth/{provider}/callback": {
                "get": callback_op("Finish connecting: the vendor's redirect parameters in the query"),
                "post": {
                    "requestBody": { "required": false, "content": {
                        "application/json": { "schema": callback_body() },
                        "application/x-www-form-urlencoded": { "schema": callback_body() }
                    } },
                    "summary": "Finish connecting: `{code, state}` in the body (or the query)",
                    "parameters": callback_params(),
                    "responses": callback_responses()
                }
            },
            "/v1/integrations/{provider}": { "delete": {
                "summary": "Disconnect: forget the tenant's OAuth tokens for the provider",
                "parameters": [ provider_param(), tenant_header() ],
                "responses": {
                    "200": json_response("Disconnected", json!({"type": "object", "properties": {
                        "provider": {"type": "string"}, "connected": {"const": false},
                        "disconnected": {"type": "boolean", "description": "Whether there was a connection"}
                    }})),
                    "404": error_response("No such provider, or its kit has no `connect:` section"),
                    "503": error_response("No master key")
                }
            }},
            "/v1/integrations/status": { "get": {
                "summary": "Per provider with OAuth connect: connected, since when, the latest run of a flow writing to it, its latest failed record",
                "parameters": [ tenant_header() ],
                "responses": {
                    "200": json_response("The tenant's integrations", json!({"type": "object", "properties": {
                        "tenant": {"type": "string"},
                        "integrations": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Integration"}}
                    }})),
                    "503": error_response("No master key")
                }
            }},
            "/v1/connections/{provider}/test": { "post": {
                "summary": "Test the tenant's connection to a provider (the kit's `test` operation), as `rulebridge connect test` does",
                "description": "Uses the tenant's stored credentials, then the environment's. Answers 200 whether the connection works or not: `ok`, and the classified error when not.",
                "parameters": [ { "name": "provider", "in": "path", "required": true, "schema": { "type": "string" } }, tenant_header() ],
                "responses": {
                    "200": json_response("What the test came to", json!({"$ref": "#/components/schemas/ConnectionTest"})),
                    "404": error_response("No such provider, or it has no `test` operation")
                }
            }},
            "/v1/providers/{provider}/fields": { "get": {
                "summary": "Discover a provider object's fields with the tenant's credentials, as `rulebridge fields` does (without writing the field cache)",
                "parameters": [
                    { "name": "provider", "in": "path", "required": true, "schema": { "type": "string" } },
                    { "name": "object", "in": "query", "required": true, "description": "The provider object (a SQL provider: its table)", "schema": { "type": "string" } },
                    tenant_header()
                ],
                "responses": {
                    "200": json_response("The fields", json!({"type": "object", "required": ["provider", "object", "fields"], "properties": {
                        "provider": {"type": "string"}, "object": {"type": "string"},
                        "fields": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}
                    }})),
                    "400": error_response("No `object`, or an unknown parameter"),
                    "404": error_response("No such provider or object"),
                    "502": error_response("The provider could not be asked (the classified error)")
                }
            }},
            "/v1/dlq": { "get": {
                "summary": "Dead letters, oldest first",
                "parameters": [ query("flow", "Only this flow", json!({"type": "string"})), tenant_header() ],
                "responses": {
                    "200": json_response("Dead letters", json!({"type": "object", "properties": {"dead_letters": {"type": "array", "items": {"type": "object"}}}})),
                    "400": error_response("A filter is not valid")
                }
            }}
        },
        "components": {
        "securitySchemes": {
            "apiKey": { "type": "http", "scheme": "bearer", "description": "A tenant's API key from `rulebridge keys create --tenant T` (`rbk_...`); the key decides the tenant." }
        },
        "schemas": {
            "ConnectionTest": { "type": "object", "required": ["provider", "tenant", "ok", "request", "ms"], "properties": {
                "provider": {"type": "string"}, "tenant": {"type": "string"}, "ok": {"type": "boolean"},
                "request": {"type": "string"}, "ms": {"type": "integer"},
                "error": {"type": "object", "properties": {"kind": {"type": "string"}, "status": {"type": "integer"}, "message": {"type": "string"}}}
            }},
            "Error": { "type": "object", "required": ["error"], "properties": {
                "error": { "type": "string" },
                "details": { "type": "array", "items": { "type": "object", "required": ["field", "message"], "properties": {
                    "field": { "type": "string" }, "message": { "type": "string" } } } }
            }},
            "Counters": { "type": "object", "properties": {
                "total": {"type": "integer"}, "created": {"type": "integer"}, "updated": {"type": "integer"},
                "unchanged": {"type": "integer"}, "skipped": {"type": "integer"}, "failed": {"type": "integer"}
            }},
            "Outcome": { "type": "object", "required": ["index", "status"], "properties": {
                "index": {"type": "integer"}, "key": {"type": "string"},
                "status": {"enum": ["created", "updated", "unchanged", "skipped", "failed", "dry_run"]},
                "target_id": {"type": "string"}, "payload": {}, "policy": {}, "reason": {"type": "string"},
                "error": {"type": "object"}
            }},
            "Sent": { "type": "object", "properties": {
                "flow": {"type": "string"}, "run": {"type": ["string", "null"]}, "dry_run": {"type": "boolean"},
                "counters": {"$ref": "#/components/schemas/Counters"},
                "outcomes": {"type": "array", "items": {"$ref": "#/components/schemas/Outcome"}}
            }},
            "Integration": { "type": "object", "required": ["connected"], "properties": {
                "connected": {"type": "boolean"},
                "connected_at": {"type": ["integer", "null"], "description": "ms since the epoch"},
                "expires_at": {"type": ["integer", "null"], "description": "When the access token expires (refreshed before), ms"},
                "last_sync": {"type": ["object", "null"], "properties": {
                    "run": {"type": "string"}, "flow": {"type": "string"}, "status": {"type": "string"},
                    "at": {"type": "integer"}, "counters": {"$ref": "#/components/schemas/Counters"}
                }},
                "last_error": {"type": ["object", "null"], "properties": {
                    "at": {"type": "integer"}, "flow": {"type": "string"}, "run_id": {"type": "string"},
                    "kind": {"type": ["string", "null"]}, "message": {"type": ["string", "null"]},
                    "http_status": {"type": ["integer", "null"]}
                }}
            }},
            "Run": { "type": "object", "properties": {
                "id": {"type": "string"}, "tenant": {"type": "string"}, "flow": {"type": "string"},
                "status": {"enum": ["running", "done", "interrupted"]}, "started_at": {"type": "integer"},
                "ended_at": {"type": ["integer", "null"]}, "checkpoint": {"type": "integer"},
                "counters": {"$ref": "#/components/schemas/Counters"}
            }}
        }}
    })
}

pub async fn handler(
    axum::extract::State(app): axum::extract::State<std::sync::Arc<super::App>>,
) -> Json<Value> {
    Json(document(&app.endpoints, app.auth.required()))
}
