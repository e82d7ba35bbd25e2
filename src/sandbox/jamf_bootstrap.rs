//! Placeholder.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use serde_json::Value;

use super::store::Shared;

pub(crate) struct Data {}

impl Data {
    pub fn new() -> Data {
        Data {}
    }

    pub fn records(&self) -> BTreeMap<String, Vec<Value>> {
        BTreeMap::new()
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().with_state(shared)
}
pub const TOKEN: &str = "sandbox-jamf-bootstrap-token";
pub const ENCRYPTION_KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
