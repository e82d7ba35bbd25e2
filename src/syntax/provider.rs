//! `kind: provider` documents: how to talk to one system over HTTP.

use std::time::Duration;

use super::decode::{Cx, Fields};
use super::doc::{
    ApiKeyLocation, Auth, BatchDoc, ConfigFieldDoc, ConnectDoc, ErrorKind, ErrorRule, ExtensionDoc,
    FieldMapDoc, MigrationDoc, ObjectDoc, ObjectExtension, Operation, ProviderDoc,
    RateLimitHeaderDoc, ResetUnit, ResponseDoc, RetryPolicy, Spanned, SqlDoc,
};
use super::node::{Node, NodeKind};
use super::record::field_decls;
use crate::diagnostic::{Code, Diagnostic};
use crate::span::Span;

pub(crate) const KEYS: &[&str] = &[
    "kind",
    "name",
    "description",
    "type",
    "extends",
    "base_url",
    "auth",
    "rate_limit",
    "retry",
    "timeout",
    "headers",
    "secrets",
    "vars",
    "rate_limit_headers",
    "objects",
    "errors",
    "config",
    "connect",
];

/// The keys of a `connect:` section.
pub(crate) const CONNECT_KEYS: &[&str] = &[
    "type",
    "authorize_url",
    "token_url",
    "login_url",
    "scopes",
    "client_id",
    "client_secret",
    "redirect_url",
    "params",
    "base_url_from",
];

/// The `connect:` types.
pub(crate) const CONNECT_TYPES: &[&str] = &["oauth2"];

/// The keys of a `config:` field.
pub(crate) const CONFIG_FIELD_KEYS: &[&str] = &["label", "description", "sensitive", "required"];

/// The keys of a `type: sql` provider: a database whose objects are tables.
pub(crate) const SQL_KEYS: &[&str] = &[
    "kind",
    "name",
    "description",
    "type",
    "database",
    "migrations",
    "objects",
];

/// The keys of a table of a `type: sql` provider.
pub(crate) const SQL_OBJECT_KEYS: &[&str] = &["description", "fields"];

/// The keys of a per-backend `migrations:` entry.
pub(crate) const MIGRATION_KEYS: &[&str] = &["sqlite", "postgres"];

pub(crate) const AUTH_TYPES: &[&str] = &[
    "none",
    "api_key",
    "bearer",
    "basic",
    "oauth2_refresh",
    "oauth2_client_credentials",
    "token_exchange",
];

pub(crate) const RETRY_KEYS: &[&str] = &[
    "attempts",
    "base",
    "max",
    "on",
    "respect_retry_after",
    "backoff",
];

pub(crate) const OBJECT_KEYS: &[&str] =
    &["description", "fields", "response", "operations", "errors"];

/// The keys of an extension (`extends: BASE`): it adds fields, everything else is the base's.
pub(crate) const EXTENSION_KEYS: &[&str] = &["kind", "name", "description", "extends", "objects"];

/// The keys of an object in an extension.
pub(crate) const EXTENSION_OBJECT_KEYS: &[&str] = &["description", "fields"];

pub(crate) const RESPONSE_KEYS: &[&str] = &["id", "updated_at", "fields", "omit"];

pub(crate) const FIELD_MAP_KEYS: &[&str] =
    &["name", "label", "type", "options", "required", "read_only"];

pub(crate) const RATE_LIMIT_HEADER_KEYS: &[&str] =
    &["remaining", "reset", "unit", "wait", "usage", "pattern"];

pub(crate) const RESET_UNITS: &[(&str, ResetUnit)] = &[
    ("seconds", ResetUnit::Seconds),
    ("milliseconds", ResetUnit::Milliseconds),
    ("epoch_seconds", ResetUnit::EpochSeconds),
];

pub(crate) const OPERATION_KEYS: &[&str] = &[
    "description",
    "method",
    "path",
    "query",
    "headers",
    "body",
    "item",
    "id",
    "results",
    "item_errors",
    "created",
    "max_batch",
    "batch",
    "rate_limit",
    "field",
    "types",
    "idempotent",
    "matched",
    "total",
    "max_url_length",
];

/// Keys of an operation's `batch:`.
pub(crate) const BATCH_KEYS: &[&str] = &["group_by"];

pub(crate) const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

pub(crate) const ERROR_RULE_KEYS: &[&str] = &[
    "status",
    "contains",
    "kind",
    "existing_id",
    "message",
    "field",
    "correlation_id",
];

pub(crate) const ERROR_KINDS: &[(&str, ErrorKind)] = &[
    ("duplicate", ErrorKind::Duplicate),
    ("validation", ErrorKind::Validation),
    ("auth", ErrorKind::Auth),
    ("rate_limited", ErrorKind::RateLimited),
    ("transient", ErrorKind::Transient),
    ("not_found", ErrorKind::NotFound),
    ("fatal", ErrorKind::Fatal),
];

/// Retry defaults when `retry:` is given without some of its settings.
const DEFAULT_ATTEMPTS: u32 = 3;
const DEFAULT_BASE: Duration = Duration::from_millis(500);
const DEFAULT_MAX: Duration = Duration::from_secs(30);
const DEFAULT_RETRY_ON: &[u16] = &[429, 502, 503, 504];

pub(crate) fn decode(
    cx: &mut Cx<'_>,
    f: &Fields<'_>,
    name: Spanned<String>,
) -> Option<ProviderDoc> {
    let description = f.opt(cx, "description", |cx, n, _| cx.string(n).map(|s| s.value));
    // `type: http` is the default; `type: sql` documents are decoded by `decode_sql`.
    f.opt(cx, "type", |cx, n, _| {
        cx.choice(n, &[("http", ()), ("sql", ())], "provider type")
    });
    let base_url = f.require(cx, "base_url", |cx, n, _| base_url(cx, n));
    let auth = f.opt(cx, "auth", auth);
    let rate_limit = f.opt(cx, "rate_limit", |cx, n, k| cx.rate(n, Some(k)));
    let retry = f.opt(cx, "retry", retry);
    let timeout = f.opt(cx, "timeout", |cx, n, _| cx.duration(n));
    let headers = f
        .opt(cx, "headers", |cx, n, _| Some(cx.string_map(n, true)))
        .unwrap_or_default();
    let secrets = f
        .opt(cx, "secrets", |cx, n, _| Some(super::flow::secrets(cx, n)))
        .unwrap_or_default();
    let vars = f
        .opt(cx, "vars", |cx, n, _| Some(cx.string_list(n)))
        .unwrap_or_default();
    let rate_limit_headers = f.opt(cx, "rate_limit_headers", |cx, n, _| {
        Some(rate_limit_headers(cx, n))
    });
    let objects = f
        .opt(cx, "objects", |cx, n, _| Some(objects(cx, n)))
        .unwrap_or_default();
    let errors = f
        .opt(cx, "errors", |cx, n, _| Some(error_rules(cx, n)))
        .unwrap_or_default();
    let config = f
        .opt(cx, "config", |cx, n, _| Some(config_fields(cx, n)))
        .unwrap_or_default();
    let connect = f.opt(cx, "connect", connect).map(Box::new);
    Some(ProviderDoc {
        name,
        description,
        base_url: base_url?,
        auth,
        rate_limit,
        retry,
        timeout,
        headers,
        secrets,
        vars,
        rate_limit_headers,
        objects,
        errors,
        sql: None,
        config,
        connect,
        span: f.span,
    })
}

/// `connect: { type: oauth2, authorize_url, token_url, scopes, client_id, client_secret,
/// redirect_url, login_url?, params?, base_url_from? }`.
fn connect(cx: &mut Cx<'_>, node: &Node, key: Span) -> Option<ConnectDoc> {
    let f = cx.fields(node, Some(key), CONNECT_KEYS)?;
    if f.has("type") {
        f.opt(cx, "type", |cx, n, _| {
            cx.choice(n, &[("oauth2", ())], "connect type")
        });
    } else {
        cx.missing(
            f.owner,
            "type",
            Some(
                "add `type: oauth2` (the OAuth 2.0 authorization-code flow, the only one today)"
                    .into(),
            ),
        );
    }
    let secret = |cx: &mut Cx<'_>, name: &str| f.require(cx, name, |cx, n, _| cx.secret_text(n));
    let authorize_url = secret(cx, "authorize_url");
    let token_url = secret(cx, "token_url");
    let client_id = secret(cx, "client_id");
    let client_secret = secret(cx, "client_secret");
    let redirect_url = secret(cx, "redirect_url");
    let login_url = f.opt(cx, "login_url", |cx, n, _| cx.secret_text(n));
    let scopes = f.opt(cx, "scopes", |cx, n, _| {
        let list = match &n.kind {
            NodeKind::String(s) => s.split_whitespace().map(str::to_string).collect(),
            _ => cx.string_list(n).into_iter().map(|s| s.value).collect(),
        };
        Some(Spanned::new(list, n.span))
    });
    let params = f
        .opt(cx, "params", |cx, n, _| Some(cx.string_map(n, true)))
        .unwrap_or_default();
    let base_url_from = f.opt(cx, "base_url_from", |cx, n, _| cx.string(n));
    Some(ConnectDoc {
        authorize_url: authorize_url?,
        token_url: token_url?,
        login_url,
        scopes,
        client_id: client_id?,
        client_secret: client_secret?,
        redirect_url: redirect_url?,
        params,
        base_url_from,
        span: f.span,
    })
}

/// `config: { api_key: { label: API token, sensitive: true, required: true } }`; a field
/// given as `NAME: LABEL` is a required, not sensitive one.
fn config_fields(cx: &mut Cx<'_>, node: &Node) -> Vec<ConfigFieldDoc> {
    let mut out = Vec::new();
    for (name, key, value) in cx.entries(node) {
        let field = cx.at(name.value.clone(), |cx| {
            if matches!(value.kind, NodeKind::String(_)) {
                let label = cx.string(value);
                return Some(ConfigFieldDoc {
                    name: name.clone(),
                    label,
                    description: None,
                    sensitive: false,
                    required: true,
                    span: key.span.to(value.span),
                });
            }
            let f = cx.fields(value, Some(key.span), CONFIG_FIELD_KEYS)?;
            let label = f.opt(cx, "label", |cx, n, _| cx.string(n));
            let description = f.opt(cx, "description", |cx, n, _| cx.string(n).map(|s| s.value));
            let sensitive = f.opt(cx, "sensitive", |cx, n, _| cx.bool(n));
            let required = f.opt(cx, "required", |cx, n, _| cx.bool(n));
            Some(ConfigFieldDoc {
                name: name.clone(),
                label,
                description,
                sensitive: sensitive.unwrap_or(false),
                required: required.unwrap_or(true),
                span: key.span.to(f.span),
            })
        });
        out.extend(field);
    }
    out
}

/// Whether a provider document says `type: sql`.
pub(crate) fn is_sql(node: &Node) -> bool {
    node.get("type").and_then(Node::as_str) == Some("sql")
}

/// A `type: sql` provider: `database:`, optional `migrations:`, and its tables as `objects`.
pub(crate) fn decode_sql(
    cx: &mut Cx<'_>,
    f: &Fields<'_>,
    name: Spanned<String>,
) -> Option<ProviderDoc> {
    let description = f.opt(cx, "description", |cx, n, _| cx.string(n).map(|s| s.value));
    let database = f.require(cx, "database", |cx, n, _| cx.secret_text(n));
    let migrations = f
        .opt(cx, "migrations", |cx, n, _| Some(migrations(cx, n)))
        .unwrap_or_default();
    let objects = f
        .opt(cx, "objects", |cx, n, _| Some(tables(cx, n)))
        .unwrap_or_default();
    let database = database?;
    Some(ProviderDoc {
        name,
        description,
        base_url: Spanned::new(String::new(), database.span),
        auth: None,
        rate_limit: None,
        retry: None,
        timeout: None,
        headers: Vec::new(),
        secrets: Vec::new(),
        vars: Vec::new(),
        rate_limit_headers: None,
        objects,
        errors: Vec::new(),
        sql: Some(SqlDoc {
            database,
            migrations,
        }),
        config: Vec::new(),
        connect: None,
        span: f.span,
    })
}

/// `migrations: [users.sql, { sqlite: users.sqlite.sql, postgres: users.pg.sql }]`.
fn migrations(cx: &mut Cx<'_>, node: &Node) -> Vec<MigrationDoc> {
    let items = cx.list(node, true);
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let entry = cx.item(i, |cx| {
            if item.as_map().is_none() {
                let file = cx.string(item)?;
                return Some(MigrationDoc {
                    sqlite: Some(file.clone()),
                    postgres: Some(file),
                    span: item.span,
                });
            }
            let f = cx.fields(item, None, MIGRATION_KEYS)?;
            let sqlite = f.opt(cx, "sqlite", |cx, n, _| cx.string(n));
            let postgres = f.opt(cx, "postgres", |cx, n, _| cx.string(n));
            if sqlite.is_none() && postgres.is_none() {
                cx.missing(
                    f.span,
                    "sqlite",
                    Some("a per-backend migration names an `sqlite:` file, a `postgres:` file or both".into()),
                );
            }
            Some(MigrationDoc {
                sqlite,
                postgres,
                span: item.span,
            })
        });
        out.extend(entry);
    }
    out
}

/// The tables of a SQL provider: `objects: { users: {} }`, optionally with declared columns.
fn tables(cx: &mut Cx<'_>, node: &Node) -> Vec<ObjectDoc> {
    let mut out = Vec::new();
    for (name, key, value) in cx.entries(node) {
        let object = cx.at(name.value.clone(), |cx| {
            let fields = if matches!(value.kind, NodeKind::Null) {
                Vec::new()
            } else {
                let f = cx.fields(value, Some(key.span), SQL_OBJECT_KEYS)?;
                f.opt(cx, "fields", |cx, n, _| Some(field_decls(cx, n)))
                    .unwrap_or_default()
            };
            Some(ObjectDoc {
                name,
                fields,
                response: None,
                operations: Vec::new(),
                errors: Vec::new(),
                span: value.span,
            })
        });
        out.extend(object);
    }
    out
}

/// A provider document with `extends: BASE`: the fields it adds to the base's objects. Keys
/// that only a provider of its own has (`base_url`, `auth`, an object's `operations`, ...)
/// are reported: they would silently do nothing.
pub(crate) fn decode_extension(
    cx: &mut Cx<'_>,
    f: &Fields<'_>,
    name: Spanned<String>,
) -> Option<ExtensionDoc> {
    for (key, node, _) in &f.entries {
        if !EXTENSION_KEYS.contains(key) {
            cx.push(
                Diagnostic::new(
                    Code::UnknownKey,
                    node.span,
                    format!("`{key}` has no effect in an extension of another provider"),
                )
                .with_label("belongs to the base provider")
                .with_help(format!(
                    "an extension (`extends:`) adds fields to the base's objects; change `{key}` in the base provider, or drop `extends` to declare a provider of its own"
                )),
            );
        }
    }
    let description = f.opt(cx, "description", |cx, n, _| cx.string(n).map(|s| s.value));
    let base = f.require(cx, "extends", |cx, n, _| cx.text(n));
    let objects = f
        .opt(cx, "objects", |cx, n, _| Some(extension_objects(cx, n)))
        .unwrap_or_default();
    Some(ExtensionDoc {
        name,
        description,
        base: base?,
        objects,
        span: f.span,
    })
}

fn extension_objects(cx: &mut Cx<'_>, node: &Node) -> Vec<ObjectExtension> {
    let mut out = Vec::new();
    for (name, key, value) in cx.entries(node) {
        let object = cx.at(name.value.clone(), |cx| {
            let f = cx.fields(value, Some(key.span), EXTENSION_OBJECT_KEYS)?;
            let fields = f
                .opt(cx, "fields", |cx, n, _| Some(field_decls(cx, n)))
                .unwrap_or_default();
            Some(ObjectExtension {
                name,
                fields,
                span: value.span,
            })
        });
        out.extend(object);
    }
    out
}

/// `rate_limit_headers: [{ remaining: X-RateLimit-Remaining, reset: X-RateLimit-Reset }]`.
fn rate_limit_headers(cx: &mut Cx<'_>, node: &Node) -> Vec<RateLimitHeaderDoc> {
    let items = cx.list(node, true);
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let entry = cx.item(i, |cx| {
            let f = cx.fields(item, None, RATE_LIMIT_HEADER_KEYS)?;
            let text = |cx: &mut Cx<'_>, key: &str| f.opt(cx, key, |cx, n, _| cx.string(n));
            let remaining = text(cx, "remaining");
            let reset = text(cx, "reset");
            let usage = text(cx, "usage");
            let pattern = text(cx, "pattern");
            let unit = f
                .opt(cx, "unit", |cx, n, _| {
                    cx.choice(n, RESET_UNITS, "reset unit")
                })
                .map_or(ResetUnit::Seconds, |u| u.value);
            let wait = f.opt(cx, "wait", |cx, n, _| cx.duration(n));
            if remaining.is_none() && usage.is_none() {
                cx.missing(
                    f.owner,
                    "remaining",
                    Some(
                        "an entry names a `remaining` header (a window) or a `usage` header".into(),
                    ),
                );
            }
            Some(RateLimitHeaderDoc {
                remaining,
                reset,
                unit,
                wait,
                usage,
                pattern,
                span: f.span,
            })
        });
        out.extend(entry);
    }
    out
}

fn base_url(cx: &mut Cx<'_>, node: &Node) -> Option<Spanned<String>> {
    let url = cx.secret_text(node)?;
    let v = url.value.trim();
    // A secret reference or a template (`{{ instance_url }}`) is checked when it is resolved.
    let deferred = v.starts_with("${") || v.starts_with("{{");
    if !(deferred || v.starts_with("https://") || v.starts_with("http://")) {
        let d = Diagnostic::new(
            Code::InvalidValue,
            url.span,
            format!("`base_url` `{v}` is not an http(s) URL"),
        )
        .with_label("expected `https://...`")
        .with_help("write the API's root URL, e.g. `https://api.hubapi.com`");
        cx.push(d);
    }
    Some(url)
}

// ---------------------------------------------------------------------------------------------
// Auth

fn auth(cx: &mut Cx<'_>, node: &Node, key: Span) -> Option<Spanned<Auth>> {
    if node.as_str() == Some("none") {
        return Some(Spanned::new(Auth::None, node.span));
    }
    if node.as_map().is_none() {
        cx.wrong_type(
            node,
            "a mapping",
            Some(
                "write `auth: { type: bearer, token: \"${env:API_TOKEN}\" }` or `auth: none`"
                    .into(),
            ),
        );
        return None;
    }
    let Some(type_node) = node.get("type") else {
        let f = cx.fields(node, Some(key), &all_auth_keys())?;
        cx.missing(
            f.owner,
            "type",
            Some(format!("the auth type is one of {}", list(AUTH_TYPES))),
        );
        return None;
    };
    let ty = cx.at("type", |cx| cx.string(type_node))?;
    let Some(allowed) = auth_keys(&ty.value) else {
        cx.at("type", |cx| {
            cx.invalid_value(ty.span, &ty.value, AUTH_TYPES, "auth type")
        });
        return None;
    };
    let f = cx.fields(node, Some(key), &allowed)?;
    let secret = |cx: &mut Cx<'_>, name: &str| f.require(cx, name, |cx, n, _| cx.secret_text(n));
    let auth = match ty.value.as_str() {
        "none" => Auth::None,
        "api_key" => {
            let location = f
                .opt(cx, "in", |cx, n, _| {
                    cx.choice(
                        n,
                        &[
                            ("header", ApiKeyLocation::Header),
                            ("query", ApiKeyLocation::Query),
                        ],
                        "api key location",
                    )
                })
                .map_or(ApiKeyLocation::Header, |l| l.value);
            let name = f.require(cx, "name", |cx, n, _| cx.string(n));
            let value = secret(cx, "value");
            Auth::ApiKey {
                location,
                name: name?,
                value: value?,
            }
        }
        "bearer" => Auth::Bearer {
            token: secret(cx, "token")?,
        },
        "basic" => {
            let username = secret(cx, "username");
            let password = secret(cx, "password");
            Auth::Basic {
                username: username?,
                password: password?,
            }
        }
        "oauth2_refresh" => {
            let token_url = secret(cx, "token_url");
            let client_id = secret(cx, "client_id");
            let client_secret = secret(cx, "client_secret");
            let refresh_token = secret(cx, "refresh_token");
            let scopes = scopes(cx, &f);
            let base_url_from = f.opt(cx, "base_url_from", |cx, n, _| cx.string(n));
            Auth::OAuth2Refresh {
                token_url: token_url?,
                client_id: client_id?,
                client_secret: client_secret?,
                refresh_token: refresh_token?,
                scopes,
                base_url_from,
            }
        }
        "oauth2_client_credentials" => {
            let token_url = secret(cx, "token_url");
            let client_id = secret(cx, "client_id");
            let client_secret = secret(cx, "client_secret");
            let scopes = scopes(cx, &f);
            let base_url_from = f.opt(cx, "base_url_from", |cx, n, _| cx.string(n));
            Auth::OAuth2ClientCredentials {
                token_url: token_url?,
                client_id: client_id?,
                client_secret: client_secret?,
                scopes,
                base_url_from,
            }
        }
        _ => {
            let token_url = secret(cx, "token_url");
            let username = secret(cx, "username");
            let password = secret(cx, "password");
            let token = f
                .opt(cx, "token", |cx, n, _| cx.string(n))
                .unwrap_or_else(|| Spanned::new("$.token".to_string(), ty.span));
            let expires = f.opt(cx, "expires", |cx, n, _| cx.string(n));
            let keep_alive_url = f.opt(cx, "keep_alive_url", |cx, n, _| cx.secret_text(n));
            Auth::TokenExchange {
                token_url: token_url?,
                username: username?,
                password: password?,
                token,
                expires,
                keep_alive_url,
            }
        }
    };
    Some(Spanned::new(auth, node.span))
}

/// The keys allowed for one auth type (`None` for an unknown type).
pub(crate) fn auth_keys(ty: &str) -> Option<Vec<&'static str>> {
    let specific: &[&str] = match ty {
        "none" => &[],
        "api_key" => &["in", "name", "value"],
        "bearer" => &["token"],
        "basic" => &["username", "password"],
        "oauth2_refresh" => &[
            "token_url",
            "client_id",
            "client_secret",
            "refresh_token",
            "scopes",
            "base_url_from",
        ],
        "oauth2_client_credentials" => &[
            "token_url",
            "client_id",
            "client_secret",
            "scopes",
            "base_url_from",
        ],
        "token_exchange" => &[
            "token_url",
            "username",
            "password",
            "token",
            "expires",
            "keep_alive_url",
        ],
        _ => return None,
    };
    let mut keys = vec!["type"];
    keys.extend_from_slice(specific);
    Some(keys)
}

fn all_auth_keys() -> Vec<&'static str> {
    let mut keys: Vec<&str> = AUTH_TYPES
        .iter()
        .filter_map(|t| auth_keys(t))
        .flatten()
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// `scopes: [a, b]` or `scopes: "a b"`.
fn scopes(cx: &mut Cx<'_>, f: &Fields<'_>) -> Vec<String> {
    f.opt(cx, "scopes", |cx, n, _| {
        Some(match &n.kind {
            NodeKind::String(s) => s.split_whitespace().map(str::to_string).collect(),
            _ => cx.string_list(n).into_iter().map(|s| s.value).collect(),
        })
    })
    .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Retry

fn retry(cx: &mut Cx<'_>, node: &Node, key: Span) -> Option<Spanned<RetryPolicy>> {
    let f = cx.fields(node, Some(key), RETRY_KEYS)?;
    let attempts = f
        .opt(cx, "attempts", |cx, n, _| cx.u32(n, 1))
        .map_or(DEFAULT_ATTEMPTS, |a| a.value);
    let base = f.opt(cx, "base", |cx, n, _| cx.duration(n));
    let max = f.opt(cx, "max", |cx, n, _| cx.duration(n));
    f.opt(cx, "backoff", |cx, n, _| {
        cx.choice(n, &[("exponential", ())], "backoff strategy")
    });
    let (on_status, on_network) = f
        .opt(cx, "on", |cx, n, _| Some(retry_on(cx, n)))
        .unwrap_or_else(|| (DEFAULT_RETRY_ON.to_vec(), true));
    let respect_retry_after = f
        .opt(cx, "respect_retry_after", |cx, n, _| cx.bool(n))
        .unwrap_or(true);
    if let (Some(base), Some(max)) = (&base, &max)
        && max.value < base.value
    {
        let d = Diagnostic::new(
            Code::InvalidDuration,
            max.span,
            "`retry.max` is shorter than `retry.base`",
        )
        .with_label("the longest wait between attempts")
        .with_related(base.span, "the first wait")
        .with_help("make `max` at least as long as `base`");
        cx.push(d);
    }
    Some(Spanned::new(
        RetryPolicy {
            attempts,
            base: base.map_or(DEFAULT_BASE, |b| b.value),
            max: max.map_or(DEFAULT_MAX, |m| m.value),
            on_status,
            on_network,
            respect_retry_after,
        },
        node.span,
    ))
}

/// `on: [429, 503, network]`.
fn retry_on(cx: &mut Cx<'_>, node: &Node) -> (Vec<u16>, bool) {
    let mut statuses = Vec::new();
    let mut network = false;
    let items = cx.list(node, true);
    for (i, item) in items.into_iter().enumerate() {
        cx.item(i, |cx| match &item.kind {
            NodeKind::String(s) if s == "network" => network = true,
            NodeKind::String(s) if s.parse::<u64>().is_err() => {
                cx.invalid_value(item.span, s, &["network"], "retry condition");
            }
            _ => statuses.extend(cx.status(item)),
        });
    }
    (statuses, network)
}

// ---------------------------------------------------------------------------------------------
// Objects and operations

fn objects(cx: &mut Cx<'_>, node: &Node) -> Vec<ObjectDoc> {
    let mut out = Vec::new();
    for (name, key, value) in cx.entries(node) {
        let object = cx.at(name.value.clone(), |cx| {
            let f = cx.fields(value, Some(key.span), OBJECT_KEYS)?;
            let fields = f
                .opt(cx, "fields", |cx, n, _| Some(field_decls(cx, n)))
                .unwrap_or_default();
            let response = f.opt(cx, "response", response);
            let operations = f
                .opt(cx, "operations", |cx, n, _| Some(operations(cx, n)))
                .unwrap_or_default();
            let errors = f
                .opt(cx, "errors", |cx, n, _| Some(error_rules(cx, n)))
                .unwrap_or_default();
            Some(ObjectDoc {
                name,
                fields,
                response,
                operations,
                errors,
                span: value.span,
            })
        });
        out.extend(object);
    }
    out
}

/// `response: { id: "$.id", updated_at: "$.updatedAt", fields: "$.properties" }`.
fn response(cx: &mut Cx<'_>, node: &Node, key: Span) -> Option<ResponseDoc> {
    let f = cx.fields(node, Some(key), RESPONSE_KEYS)?;
    let text = |cx: &mut Cx<'_>, key: &str| f.opt(cx, key, |cx, n, _| cx.string(n));
    let id = text(cx, "id");
    let updated_at = text(cx, "updated_at");
    let fields = text(cx, "fields");
    let omit = f
        .opt(cx, "omit", |cx, n, _| Some(cx.string_list(n)))
        .unwrap_or_default();
    Some(ResponseDoc {
        id,
        updated_at,
        fields,
        omit,
        span: f.span,
    })
}

/// `field: { name: name, type: "type", required: "required ?? false" }` of a `fields` operation.
fn field_map(cx: &mut Cx<'_>, node: &Node, key: Span) -> Option<FieldMapDoc> {
    let f = cx.fields(node, Some(key), FIELD_MAP_KEYS)?;
    let text = |cx: &mut Cx<'_>, key: &str| f.opt(cx, key, |cx, n, _| cx.text(n));
    Some(FieldMapDoc {
        name: text(cx, "name"),
        label: text(cx, "label"),
        ty: text(cx, "type"),
        options: text(cx, "options"),
        required: text(cx, "required"),
        read_only: text(cx, "read_only"),
        span: f.span,
    })
}

fn operations(cx: &mut Cx<'_>, node: &Node) -> Vec<Operation> {
    let mut out = Vec::new();
    for (name, key, value) in cx.entries(node) {
        let op = cx.at(name.value.clone(), |cx| {
            operation(cx, name, key.span, value)
        });
        out.extend(op);
    }
    out
}

fn operation(cx: &mut Cx<'_>, name: Spanned<String>, key: Span, node: &Node) -> Option<Operation> {
    let f = cx.fields(node, Some(key), OPERATION_KEYS)?;
    let method = f.require(cx, "method", |cx, n, _| method(cx, n));
    let path = f.require(cx, "path", |cx, n, _| cx.string(n));
    let query = f
        .opt(cx, "query", |cx, n, _| Some(cx.string_map(n, true)))
        .unwrap_or_default();
    let headers = f
        .opt(cx, "headers", |cx, n, _| Some(cx.string_map(n, true)))
        .unwrap_or_default();
    let body = f.opt(cx, "body", |cx, n, _| Some(cx.json(n)));
    let item = f.opt(cx, "item", |cx, n, _| Some(cx.json(n)));
    let id = f.opt(cx, "id", |cx, n, _| cx.string(n));
    let results = f.opt(cx, "results", |cx, n, _| cx.string(n));
    let item_errors = f.opt(cx, "item_errors", |cx, n, _| cx.string(n));
    let created = f.opt(cx, "created", |cx, n, _| cx.string(n));
    let max_batch = f.opt(cx, "max_batch", |cx, n, _| cx.u32(n, 1));
    let batch = f.opt(cx, "batch", batch);
    let rate_limit = f.opt(cx, "rate_limit", |cx, n, k| cx.rate(n, Some(k)));
    let field = f.opt(cx, "field", field_map);
    let types = f
        .opt(cx, "types", |cx, n, _| Some(cx.string_map(n, false)))
        .unwrap_or_default();
    let idempotent = f.opt(cx, "idempotent", |cx, n, _| {
        cx.bool(n).map(|b| Spanned::new(b, n.span))
    });
    let matched = f.opt(cx, "matched", |cx, n, _| cx.string(n));
    let total = f.opt(cx, "total", |cx, n, _| cx.string(n));
    let max_url_length = f.opt(cx, "max_url_length", |cx, n, _| cx.u32(n, 256));
    Some(Operation {
        name,
        method: method?,
        path: path?,
        query,
        headers,
        body,
        item,
        id,
        results,
        item_errors,
        created,
        max_batch,
        batch,
        rate_limit,
        field,
        types,
        idempotent,
        matched,
        total,
        max_url_length,
        span: f.span,
    })
}

/// `batch: { group_by: tenantId }`.
fn batch(cx: &mut Cx<'_>, node: &Node, key: Span) -> Option<BatchDoc> {
    let f = cx.fields(node, Some(key), BATCH_KEYS)?;
    let group_by = f.opt(cx, "group_by", |cx, n, _| cx.text(n));
    Some(BatchDoc {
        group_by,
        span: f.span,
    })
}

/// An HTTP method; lower case is accepted and stored in upper case.
fn method(cx: &mut Cx<'_>, node: &Node) -> Option<Spanned<String>> {
    let m = cx.string(node)?;
    let upper = m.value.to_ascii_uppercase();
    if METHODS.contains(&upper.as_str()) {
        return Some(Spanned::new(upper, m.span));
    }
    cx.invalid_value(m.span, &m.value, METHODS, "HTTP method");
    None
}

// ---------------------------------------------------------------------------------------------
// Error classification

fn error_rules(cx: &mut Cx<'_>, node: &Node) -> Vec<ErrorRule> {
    let items = cx.list(node, false);
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        out.extend(cx.item(i, |cx| error_rule(cx, item)));
    }
    out
}

fn error_rule(cx: &mut Cx<'_>, node: &Node) -> Option<ErrorRule> {
    let f = cx.fields(node, None, ERROR_RULE_KEYS)?;
    let status = f
        .opt(cx, "status", |cx, n, _| {
            Some(match &n.kind {
                NodeKind::Seq(items) => {
                    let mut codes = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        codes.extend(cx.item(i, |cx| cx.status(item)));
                    }
                    codes
                }
                _ => cx.status(n).into_iter().collect(),
            })
        })
        .unwrap_or_default();
    let contains = f.opt(cx, "contains", |cx, n, _| cx.text(n));
    let kind = f.require(cx, "kind", |cx, n, _| {
        cx.choice(n, ERROR_KINDS, "error kind")
    });
    let existing_id = f.opt(cx, "existing_id", |cx, n, _| cx.string(n));
    let message = f.opt(cx, "message", |cx, n, _| cx.string(n));
    let field = f.opt(cx, "field", |cx, n, _| cx.string(n));
    let correlation_id = f.opt(cx, "correlation_id", |cx, n, _| cx.string(n));
    if !f.has("status") && !f.has("contains") {
        cx.missing(
            f.owner,
            "status",
            Some("an error rule matches on `status`, `contains` or both".into()),
        );
    }
    Some(ErrorRule {
        status,
        contains,
        kind: kind?,
        existing_id,
        message,
        field,
        correlation_id,
        span: f.span,
    })
}

fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
