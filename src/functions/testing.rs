//! Test helpers for the function library: running a function's documented examples, and
//! calling a function directly the way the evaluator does.

use std::borrow::Cow;

use serde_json::Value;

use super::{CallContext, FixedClock, FnError, Function, Param, Prepared, Registry};
use crate::types::Type;

/// An example's expected outcome.
#[derive(Debug)]
enum Expected {
    Value(Value),
    /// The error message contains this text.
    Error(String),
}

impl Expected {
    fn parse(result: &str) -> Result<Expected, String> {
        match result.strip_prefix("error:") {
            Some(text) if !text.trim().is_empty() => Ok(Expected::Error(text.trim().to_string())),
            Some(_) => Err("`error:` needs the text the error contains".to_string()),
            None => serde_json::from_str(result)
                .map(Expected::Value)
                .map_err(|e| format!("result is not JSON: {e}")),
        }
    }
}

/// Evaluates every example of `f` and compares it with the expected result, panicking once
/// with all the failures.
pub fn run_examples(f: &dyn Function) {
    let registry = Registry::builtin();
    let clock = FixedClock::default_test();
    let mut failures = Vec::new();
    for ex in f.examples() {
        let fail = |why: String| format!("  {:?} `{}`: {why}", ex.title, ex.source);
        if ex.title.trim().is_empty() {
            failures.push(fail("the example has no title".into()));
        }
        if !ex.source.contains(&format!("{}(", f.name())) {
            failures.push(fail(format!("the example does not call {}()", f.name())));
        }
        let record: Value = match serde_json::from_str(ex.record) {
            Ok(r) => r,
            Err(e) => {
                failures.push(fail(format!("record is not JSON: {e}")));
                continue;
            }
        };
        let expected = match Expected::parse(ex.result) {
            Ok(e) => e,
            Err(e) => {
                failures.push(fail(e));
                continue;
            }
        };
        let got = crate::expr::eval_standalone(ex.source, &record, &registry, &clock);
        match (got, &expected) {
            (Ok(v), Expected::Value(want)) if v == *want => {}
            (Err(e), Expected::Error(want)) if e.contains(want.as_str()) => {}
            (Ok(v), _) => failures.push(fail(format!("got {v}, expected {}", ex.result))),
            (Err(e), _) => failures.push(fail(format!("got error {e:?}, expected {}", ex.result))),
        }
    }
    if !failures.is_empty() {
        panic!(
            "{} example(s) of {}() failed:\n{}",
            failures.len(),
            f.name(),
            failures.join("\n")
        );
    }
}

/// Calls `f` as the evaluator does for a call site whose arguments are all literals: runs
/// `prepare` on them first (a prepare error is returned as `prepare: <message>`).
pub fn call(f: &dyn Function, args: Vec<Value>) -> Result<Value, FnError> {
    let consts: Vec<Option<&Value>> = args.iter().map(Some).collect();
    let prepared = f
        .prepare(&consts)
        .map_err(|e| FnError(format!("prepare: {e}")))?;
    invoke(f, &args, prepared.as_ref())
}

/// Calls `f` as for a call site whose arguments are all computed: nothing is prepared.
pub fn call_dynamic(f: &dyn Function, args: Vec<Value>) -> Result<Value, FnError> {
    let consts = vec![None; args.len()];
    let prepared = f
        .prepare(&consts)
        .map_err(|e| FnError(format!("prepare: {e}")))?;
    invoke(f, &args, prepared.as_ref())
}

/// The result type `f` declares for these argument types, as text.
pub fn return_type(f: &dyn Function, args: &[Type]) -> String {
    f.return_type(args).to_string()
}

fn invoke(f: &dyn Function, args: &[Value], prepared: Option<&Prepared>) -> Result<Value, FnError> {
    let sig = f.signature();
    let (min, max) = sig.arity();
    assert!(
        args.len() >= min && max.is_none_or(|max| args.len() <= max),
        "{}() called with {} arguments",
        f.name(),
        args.len()
    );
    // Null propagation, as the evaluator does it.
    for (i, a) in args.iter().enumerate() {
        if a.is_null() && !sig.param(i).is_some_and(Param::accepts_null) {
            return Ok(Value::Null);
        }
    }
    let clock = FixedClock::default_test();
    let cx = CallContext {
        clock: &clock,
        prepared,
    };
    let args: Vec<Cow<'_, Value>> = args.iter().map(Cow::Borrowed).collect();
    f.call(&args, &cx)
}
