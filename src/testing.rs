//! Snapshot testing of flows in an embedding service.
//!
//! [`dry_run`] gives the outcome of one record as a serializable value, with the fixed test
//! clock so snapshots are stable; [`assert_flow_snapshot!`](crate::assert_flow_snapshot) makes
//! an [insta](https://insta.rs) snapshot of it in one line (the calling crate depends on
//! `insta` with the `yaml` feature).
//!
//! ```no_run
//! # use rulebridge::Engine;
//! # use serde_json::json;
//! let engine = rulebridge::testing::engine("rules").unwrap();
//! rulebridge::assert_flow_snapshot!(engine, "lead_to_hubspot", json!({"email": "ada@example.com"}));
//! ```

use std::sync::Arc;

use serde_json::Value;

use crate::engine::{Engine, Error};
use crate::exec::Outcome;
use crate::functions::FixedClock;

/// An engine over a rules directory with the fixed test clock (2024-01-15T10:30:00Z).
pub fn engine(rules: impl Into<std::path::PathBuf>) -> Result<Engine, Error> {
    Engine::builder()
        .rules_dir(rules)
        .clock(Arc::new(FixedClock::default_test()))
        .build()
}

/// The dry-run outcome of `record` through `flow`.
pub fn dry_run(engine: &Engine, flow: &str, record: &Value) -> Result<Outcome, Error> {
    Ok(engine.runner(flow)?.evaluate(0, record))
}

/// Snapshots the dry-run outcome of a record: `assert_flow_snapshot!(engine, "flow", record)`.
#[macro_export]
macro_rules! assert_flow_snapshot {
    ($engine:expr, $flow:expr, $record:expr $(,)?) => {{
        let outcome = $crate::testing::dry_run(&$engine, $flow, &$record)
            .unwrap_or_else(|e| panic!("flow {} could not run: {e}", $flow));
        ::insta::assert_yaml_snapshot!(outcome);
    }};
    ($name:expr, $engine:expr, $flow:expr, $record:expr $(,)?) => {{
        let outcome = $crate::testing::dry_run(&$engine, $flow, &$record)
            .unwrap_or_else(|e| panic!("flow {} could not run: {e}", $flow));
        ::insta::assert_yaml_snapshot!($name, outcome);
    }};
}
