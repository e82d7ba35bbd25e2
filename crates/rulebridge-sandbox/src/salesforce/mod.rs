//! Salesforce REST (`/services/data/vXX.X`): Lead and Contact sObjects, describe, a SOQL
//! subset, sObject Collections, upsert by external id, and OAuth (the web server flow's
//! authorize and code exchange, and refresh).
//!
//! Sessions come only from `POST /services/oauth2/token`; every data response carries
//! `Sforce-Limit-Info: api-usage=N/LIMIT`, counted over a rolling 24 h.

mod collections;
mod errors;
mod gate;
mod ids;
mod oauth;
mod records;
mod schema;
mod soql;
mod state;
mod validation;

use axum::Router;
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use http::StatusCode;
use serde_json::json;

use super::faults::{self, ProviderCtx};
use super::util::json as reply;
use collections::{collection_create, collection_update};
use errors::{internal_error, not_found};
use gate::{gate, limits};
use oauth::{authorize, token};
use records::{create, delete, get_record, update, upsert};
use schema::describe;
use soql::query;

pub(crate) use state::{Ctx, Data};

pub const CLIENT_ID: &str = "sandbox-salesforce-client";
pub const CLIENT_SECRET: &str = "sandbox-salesforce-secret";
pub const REFRESH_TOKEN: &str = "sandbox-salesforce-refresh";
/// The callback URL registered for the sandbox's connected app (`SALESFORCE_REDIRECT_URL`).
pub const REDIRECT_URL: &str = "http://localhost:3000/oauth/salesforce/callback";
const ORG_ID: &str = "00D5g00000SBX01EAA";
const USER_ID: &str = "0055g00000SBX01AAA";
const COLLECTION_LIMIT: usize = 200;
const QUERY_BATCH: usize = 2000;

pub(crate) fn router(shared: Ctx) -> Router {
    let data = Router::new()
        .route("/services/data/{v}/limits", get(limits))
        .route("/services/data/{v}/sobjects/{obj}/describe", get(describe))
        .route("/services/data/{v}/sobjects/{obj}", post(create))
        .route(
            "/services/data/{v}/sobjects/{obj}/{id}",
            get(get_record).patch(update).delete(delete),
        )
        .route(
            "/services/data/{v}/sobjects/{obj}/{field}/{value}",
            axum::routing::patch(upsert),
        )
        .route("/services/data/{v}/query", get(query))
        .route(
            "/services/data/{v}/composite/sobjects",
            post(collection_create).patch(collection_update),
        )
        .fallback(data_fallback)
        .layer(middleware::from_fn_with_state(shared.clone(), gate));
    let ctx = ProviderCtx {
        shared: shared.shared(),
        name: "salesforce",
        internal_error,
    };
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/oauth2/authorize", get(authorize))
        .route("/services/data", get(versions))
        .merge(data)
        .fallback(|| async { not_found() })
        .with_state(shared)
        .layer(middleware::from_fn_with_state(ctx, faults::observe))
}

async fn data_fallback() -> Response {
    not_found()
}

async fn versions() -> Response {
    reply(
        StatusCode::OK,
        json!([{"label": "Summer '23", "url": "/services/data/v58.0", "version": "58.0"}]),
    )
}
