//! The expression language: grammar (`grammar/expr.pest`), parser, type checker and evaluator.
//!
//! ```text
//! source ──parse──> Expr (AST with ranges) ──compile(Scope)──> Compiled + Type ──eval(Env)──> Value
//! ```
//!
//! Parsing and compiling happen once per rule set; [`Compiled::eval`] runs per record and
//! borrows from the record instead of cloning it where it can.

pub mod ast;

pub use ast::{BinaryOp, Expr, ExprKind, TextRange, UnaryOp, UnaryTest, UnaryTestKind};
