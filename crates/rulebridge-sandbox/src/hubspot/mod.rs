//! HubSpot CRM v3: contacts (CRUD, search, batch), contact properties, OAuth connect
//! (authorize, code exchange) and refresh.
//!
//! Authentication: `Authorization: Bearer sandbox-hubspot-token` (a private-app token, never
//! expires) or an access token from `POST /oauth/v1/token`. Rate limits are per app (the
//! private app, or the OAuth client), as at HubSpot: a rolling 10 s window for every CRM call
//! plus a per-second limit on search.

mod batch;
mod contacts;
mod errors;
mod gate;
mod oauth;
mod properties;
mod search;
mod state;

use axum::Router;
use axum::extract::State;
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};

use super::faults::{self, ProviderCtx};
use batch::batch;
use contacts::{create_contact, delete_contact, get_contact, list_contacts, patch_contact};
use errors::{internal_error, not_found};
use gate::gate;
use oauth::{authorize, token};
use properties::{create_property, get_property, list_properties};
use search::search;

pub(crate) use state::{Ctx, Data};

pub const STATIC_TOKEN: &str = "sandbox-hubspot-token";
pub const CLIENT_ID: &str = "sandbox-hubspot-client";
pub const CLIENT_SECRET: &str = "sandbox-hubspot-secret";
pub const REFRESH_TOKEN: &str = "sandbox-hubspot-refresh";

/// An authorization code the fake's token endpoint always accepts (the authorize endpoint
/// issues single-use ones).
pub const AUTH_CODE: &str = "sandbox-hubspot-code";
/// The redirect URL registered for the sandbox's OAuth app (`HUBSPOT_REDIRECT_URL`).
pub const REDIRECT_URL: &str = "http://localhost:3000/oauth/hubspot/callback";

const PORTAL_ID: u64 = 4_000_001;
const BATCH_LIMIT: usize = 100;
const SEARCH_LIMIT: usize = 200;
const SEARCH_MAX_GROUPS: usize = 5;
const SEARCH_MAX_FILTERS_PER_GROUP: usize = 6;
const SEARCH_MAX_FILTERS: usize = 18;
const SEARCH_MAX_RESULTS: usize = 10_000;
const DAILY_LIMIT: u32 = 250_000;

const DEFAULT_PROPERTIES: &[&str] = &[
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
];

pub(crate) fn router(shared: Ctx) -> Router {
    let crm = Router::new()
        .route(
            "/crm/v3/objects/contacts",
            post(create_contact).get(list_contacts),
        )
        .route(
            "/crm/v3/objects/contacts/{id}",
            get(get_contact).patch(patch_contact).delete(delete_contact),
        )
        .route("/crm/v3/objects/contacts/search", post(search))
        .route("/crm/v3/objects/contacts/batch/{action}", post(batch))
        .route(
            "/crm/v3/properties/contacts",
            get(list_properties).post(create_property),
        )
        .route("/crm/v3/properties/contacts/{name}", get(get_property))
        .route_layer(middleware::from_fn_with_state(shared.clone(), gate));
    let ctx = ProviderCtx {
        shared: shared.shared(),
        name: "hubspot",
        internal_error,
    };
    Router::new()
        .route("/oauth/v1/token", post(token))
        .route("/oauth/authorize", get(authorize))
        .merge(crm)
        .fallback(fallback)
        .with_state(shared)
        .layer(middleware::from_fn_with_state(ctx, faults::observe))
}

async fn fallback(State(shared): State<Ctx>) -> Response {
    not_found(&shared)
}
