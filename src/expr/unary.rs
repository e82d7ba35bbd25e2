//! Decision-table cells: compiling a [`UnaryTest`] against the column's input type.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::diagnostic::Code;
use crate::types::Type;

use super::ast::{BinaryOp, TextRange, UnaryTest, UnaryTestKind};
use super::check::{Checker, Kind, Scope, kind};
use super::error::{CheckError, EvalError};
use super::eval::{self, Env, Node};
use super::value;

/// A compiled cell. Cheap to clone and share.
#[derive(Clone)]
pub struct CompiledTest {
    kind: UnaryTestKind,
    node: Arc<TestNode>,
    range: TextRange,
}

#[derive(Debug)]
enum TestNode {
    Any,
    Equals(Node),
    Compare(BinaryOp, Node),
    In(Node, bool),
    Condition(Node),
}

/// What a cell tests, for static analysis of tables (overlap, reachability).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TestShape<'a> {
    /// `-`
    Any,
    /// Input equals a constant.
    Equals(&'a Value),
    /// Input compared with a constant: `<`, `<=`, `>`, `>=` or `!=`.
    Compare(BinaryOp, &'a Value),
    /// Input is (or with `negated`, is not) one of constant values.
    In {
        /// The list's elements.
        values: &'a [Value],
        /// `not in`.
        negated: bool,
    },
    /// Depends on the record (a condition or a non-constant value).
    Opaque,
}

impl fmt::Debug for CompiledTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.node.fmt(f)
    }
}

impl CompiledTest {
    /// Whether the cell accepts `input` for this record.
    pub fn matches(&self, input: &Value, env: &Env<'_>) -> Result<bool, EvalError> {
        match &*self.node {
            TestNode::Any => Ok(true),
            TestNode::Equals(n) => Ok(value::deep_eq(input, eval::eval(n, env)?.as_ref())),
            TestNode::Compare(op, n) => {
                let v = eval::eval(n, env)?;
                value::compare(*op, input, &v).map_err(|m| EvalError::new(self.range, m))
            }
            TestNode::In(list, negated) => {
                let l = eval::eval(list, env)?;
                value::contains(input, &l)
                    .map(|found| found != *negated)
                    .map_err(|m| EvalError::new(self.range, m))
            }
            TestNode::Condition(n) => match eval::eval(n, env)?.as_ref() {
                Value::Bool(b) => Ok(*b),
                Value::Null => Err(EvalError::new(self.range, "condition is null")),
                other => Err(EvalError::new(
                    self.range,
                    format!(
                        "condition must be a bool, got {}",
                        crate::functions::type_name(other)
                    ),
                )),
            },
        }
    }

    /// The test as classified by the checker: a non-literal boolean-typed `Equals` cell is a
    /// `Condition` here.
    pub fn kind(&self) -> &UnaryTestKind {
        &self.kind
    }

    /// The constant parts of the test, when there are any.
    pub fn shape(&self) -> TestShape<'_> {
        match &*self.node {
            TestNode::Any => TestShape::Any,
            TestNode::Equals(n) => n.as_const().map_or(TestShape::Opaque, TestShape::Equals),
            TestNode::Compare(op, n) => n
                .as_const()
                .map_or(TestShape::Opaque, |v| TestShape::Compare(*op, v)),
            TestNode::In(n, negated) => match n.as_const() {
                Some(Value::Array(values)) => TestShape::In {
                    values,
                    negated: *negated,
                },
                _ => TestShape::Opaque,
            },
            TestNode::Condition(_) => TestShape::Opaque,
        }
    }
}

fn comparable(a: Kind, b: Kind) -> bool {
    matches!(a, Kind::Any | Kind::Null) || matches!(b, Kind::Any | Kind::Null) || a == b
}

/// Checks a cell against the type of the column's input and compiles it.
pub fn compile_test(
    test: &UnaryTest,
    input: &Type,
    scope: &Scope,
) -> Result<CompiledTest, Vec<CheckError>> {
    let mut checker = Checker {
        scope,
        errors: Vec::new(),
    };
    let ik = kind(input);
    let (kind_out, node) = match &test.kind {
        UnaryTestKind::Any => (UnaryTestKind::Any, TestNode::Any),
        UnaryTestKind::Equals(e) => {
            let (n, t) = checker.expr(e);
            if t == Type::Bool && !e.is_literal() {
                (UnaryTestKind::Condition(e.clone()), TestNode::Condition(n))
            } else {
                if !comparable(ik, kind(&t)) {
                    checker.errors.push(
                        CheckError::new(
                            Code::OperatorType,
                            e.range,
                            format!("this cell compares the input ({input}) with {t}"),
                        )
                        .label(format!("expected {input}, found {t}")),
                    );
                }
                (UnaryTestKind::Equals(e.clone()), TestNode::Equals(n))
            }
        }
        UnaryTestKind::Compare(op, e) => {
            let (n, t) = checker.expr(e);
            let k = kind(&t);
            let ok = if *op == BinaryOp::Ne {
                comparable(ik, k)
            } else {
                let ordered = [Kind::Number, Kind::String, Kind::Any, Kind::Null];
                ordered.contains(&ik) && ordered.contains(&k) && comparable(ik, k)
            };
            if !ok {
                checker.errors.push(
                    CheckError::new(
                        Code::OperatorType,
                        e.range,
                        format!(
                            "cannot compare the input ({input}) with {t} using `{}`",
                            op.symbol()
                        ),
                    )
                    .label(format!("this is {t}")),
                );
            }
            (
                UnaryTestKind::Compare(*op, e.clone()),
                TestNode::Compare(*op, n),
            )
        }
        UnaryTestKind::In { list, negated } => {
            let (n, t) = checker.expr(list);
            let lk = kind(&t);
            let bad = match lk {
                Kind::Any | Kind::Null => false,
                Kind::Array => match t.non_null() {
                    Type::Array(elem) => !comparable(ik, kind(elem)),
                    _ => false,
                },
                Kind::String | Kind::Object => !matches!(ik, Kind::String | Kind::Any | Kind::Null),
                _ => true,
            };
            if bad {
                checker.errors.push(
                    CheckError::new(
                        Code::OperatorType,
                        list.range,
                        format!("the input ({input}) cannot be in {t}"),
                    )
                    .label(format!("this is {t}")),
                );
            }
            (
                UnaryTestKind::In {
                    list: list.clone(),
                    negated: *negated,
                },
                TestNode::In(n, *negated),
            )
        }
        UnaryTestKind::Condition(e) => {
            let (n, t) = checker.expr(e);
            if !t.fits_ignoring_null(&Type::Bool) {
                checker.errors.push(
                    CheckError::new(
                        Code::NonBooleanCondition,
                        e.range,
                        format!("a condition cell must be a bool, found {t}"),
                    )
                    .label(format!("this is {t}")),
                );
            }
            (UnaryTestKind::Condition(e.clone()), TestNode::Condition(n))
        }
    };
    if !checker.errors.is_empty() {
        checker.errors.sort_by_key(|e| e.range.start);
        return Err(checker.errors);
    }
    Ok(CompiledTest {
        kind: kind_out,
        node: Arc::new(node),
        range: test.range,
    })
}
