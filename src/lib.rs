//! rulebridge: an embeddable rules engine for moving records between business systems.
//!
//! Integrators describe systems (providers), flows, field mappings, policy tables and
//! duplicate rules in YAML rule files with a small expression language. rulebridge checks
//! them, compiles them into an immutable [`Plan`](plan::Plan), and runs that plan on records.
//!
//! The data flows one way:
//!
//! ```text
//! syntax (YAML + spans) → compile (resolve, type-check) → plan → exec (per record) → outcome
//! ```
//!
//! Start with [`Engine`]: see its module docs for an example.

pub mod compile;
pub mod connect;
pub mod db;
pub mod diagnostic;
pub mod engine;
pub mod exec;
pub mod expr;
pub mod functions;
pub mod http_client;
pub mod plan;
pub mod secrets;
pub mod span;
pub mod state;
pub mod suite;
pub mod syntax;
pub mod testing;
pub mod types;

pub use engine::{Engine, EngineBuilder, Error, FlowRunner};
pub use exec::{Outcome, Status};
pub use functions::{Function, Registry};
