//! `POST /v1/connections/{provider}/test` and `GET /v1/providers/{provider}/fields`: what
//! `rulebridge connect test` and `rulebridge fields` do, for the request's tenant, with its
//! stored credentials (then the environment's), never another tenant's.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use rulebridge::Engine;

use super::{ApiError, App, FieldError, resolve_tenant};
use crate::commands::connect::{Untestable, test_connection as call_test};
use crate::common::{build, sandbox_credentials};

/// An engine holding `tenant`'s credentials for `provider`, built as `connect test` builds
/// one. Reads the rule files and the store: call it on a blocking thread.
fn tenant_engine(
    app: &App,
    handle: &tokio::runtime::Handle,
    tenant: &str,
    provider: &str,
) -> Result<Engine, ApiError> {
    // The tenant's stored values come first: the first value given for a variable wins.
    let builder = handle
        .block_on(crate::commands::creds::tenant_builder(
            Engine::builder().rules_dir(&app.rules).field_cache(false),
            &app.rules,
            app.creds.clone(),
            tenant,
            Some(provider),
        ))
        .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    let mut builder = sandbox_credentials(builder, app.sandbox);
    for (kit, url) in &app.sandbox_urls {
        builder = builder.base_url(kit.clone(), url.clone());
    }
    build(builder).map_err(|e| ApiError::internal(format!("{e:#}")))
}

/// Runs `work` with `tenant`'s engine on a blocking thread (the connectors' futures are not
/// all `Send`).
async fn with_tenant_engine<T: Send + 'static>(
    app: &Arc<App>,
    tenant: String,
    provider: &str,
    work: impl AsyncFnOnce(&Engine) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if app.engine.plan().provider(provider).is_none() {
        return Err(ApiError::not_found(format!("no provider `{provider}`")));
    }
    let (app, provider) = (app.clone(), provider.to_string());
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let engine = tenant_engine(&app, &handle, &tenant, &provider)?;
        handle.block_on(work(&engine))
    })
    .await
    .map_err(|e| ApiError::internal(format!("the request did not finish: {e}")))?
}

/// `POST /v1/connections/{provider}/test`: calls the kit's `test` operation. 200 whether the
/// connection works or not (`ok`), with the classified error when not, as
/// `rulebridge connect test --format json` prints it.
pub async fn test_connection(
    State(app): State<Arc<App>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let tenant = resolve_tenant(&app, &headers).await?;
    let name = provider.clone();
    let shown = tenant.clone();
    let tested = with_tenant_engine(&app, tenant, &provider, async move |engine: &Engine| {
        call_test(engine, &name, None).await.map_err(|e| match e {
            Untestable::NoProvider(_) | Untestable::NoTest(_) => ApiError::not_found(e.to_string()),
            Untestable::Engine(e) => ApiError::internal(e),
        })
    })
    .await?;
    let mut body = json!({
        "provider": provider,
        "tenant": shown,
        "ok": tested.result.is_ok(),
        "request": tested.request,
        "ms": tested.ms,
    });
    if let Err(e) = tested.result {
        body["error"] = json!(e);
    }
    Ok(Json(body))
}

/// `GET /v1/providers/{provider}/fields?object=NAME`: the object's fields as the system
/// reports them, normalized as `rulebridge fields` prints them with `--format json`. Unlike
/// the command, it does not write the field cache next to the rules.
pub async fn fields(
    State(app): State<Arc<App>>,
    Path(provider): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let tenant = resolve_tenant(&app, &headers).await?;
    let mut object = None;
    let mut problems = Vec::new();
    for (k, v) in query {
        match k.as_str() {
            "object" if !v.trim().is_empty() => object = Some(v),
            "object" => problems.push(FieldError::new(k, "must name an object")),
            _ => problems.push(FieldError::new(k, "unknown parameter (object)")),
        }
    }
    let Some(object) = object.filter(|_| problems.is_empty()) else {
        if problems.is_empty() {
            problems.push(FieldError::new(
                "object",
                "is required: the provider object whose fields to read",
            ));
        }
        return Err(ApiError::invalid(problems));
    };
    let (name, what) = (provider.clone(), object.clone());
    let found = with_tenant_engine(&app, tenant, &provider, async move |engine: &Engine| {
        // A SQL provider's objects are its database's tables, found by asking it.
        let known = engine
            .plan()
            .provider(&name)
            .is_some_and(|p| p.sql().is_some() || p.object(&what).is_some());
        if !known {
            return Err(ApiError::not_found(format!(
                "provider `{name}` has no object `{what}`"
            )));
        }
        crate::commands::fields::discover(engine, &name, &what, None)
            .await
            .map_err(|e| ApiError::new(axum::http::StatusCode::BAD_GATEWAY, format!("{e:#}")))
    })
    .await?;
    Ok(Json(json!({
        "provider": provider,
        "object": object,
        "fields": found.fields,
    })))
}
