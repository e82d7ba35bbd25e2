//! Jamf Pro: bearer tokens (Basic or client credentials), departments, computers inventory,
//! and creating computers through the Classic API (XML in, HTML errors out).

mod auth;
mod classic;
mod departments;
mod errors;
mod inventory;
mod rsql;
mod state;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use http::StatusCode;

use super::faults::{self, ProviderCtx};
use auth::{auth, invalidate, keep_alive, oauth_token, token};
use classic::{classic_create, classic_get, classic_get_serial};
use departments::{
    create_department, delete_department, get_department, list_departments, put_department,
};
use errors::{api_error, internal_error};
use inventory::{detail, inventory, inventory_one, patch_detail};

pub(crate) use state::{Ctx, Data};

// Not a word that other text holds: the value is masked wherever it appears.
pub const USERNAME: &str = "sandbox-jamf-admin";
pub const PASSWORD: &str = "sandbox-password";
pub const CLIENT_ID: &str = "sandbox-jamf-client";
pub const CLIENT_SECRET: &str = "sandbox-jamf-secret";

pub(crate) fn router(shared: Ctx) -> Router {
    let ctx = ProviderCtx {
        shared: shared.shared(),
        name: "jamf",
        internal_error,
    };
    let protected = Router::new()
        .route("/api/v1/auth/keep-alive", post(keep_alive))
        .route("/api/v1/auth/invalidate-token", post(invalidate))
        .route(
            "/api/v1/departments",
            get(list_departments).post(create_department),
        )
        .route(
            "/api/v1/departments/{id}",
            get(get_department)
                .put(put_department)
                .delete(delete_department),
        )
        .route("/api/v1/computers-inventory", get(inventory))
        .route("/api/v1/computers-inventory/{id}", get(inventory_one))
        .route(
            "/api/v1/computers-inventory-detail/{id}",
            get(detail).patch(patch_detail),
        )
        .route(
            "/JSSResource/computers/id/{id}",
            post(classic_create).get(classic_get),
        )
        .route(
            "/JSSResource/computers/serialnumber/{serial}",
            get(classic_get_serial),
        )
        .route_layer(middleware::from_fn_with_state(shared.clone(), auth));
    Router::new()
        .route("/api/v1/auth/token", post(token))
        .route("/api/oauth/token", post(oauth_token))
        .merge(protected)
        .fallback(|| async { api_error(StatusCode::NOT_FOUND, "NOT_FOUND", None, "Not Found") })
        .with_state(shared)
        .layer(middleware::from_fn_with_state(ctx, faults::observe))
}
