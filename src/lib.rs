//! rulebridge: an embeddable rules engine for moving records between business systems.

pub mod diagnostic;
pub mod expr;
pub mod functions;
pub mod span;
pub mod syntax;
pub mod types;
