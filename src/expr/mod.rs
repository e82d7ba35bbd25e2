//! The expression language: grammar (`grammar/expr.pest`), parser, type checker and evaluator.
//!
//! ```text
//! source ──parse──> Expr (AST with ranges) ──compile(Scope)──> Compiled + Type ──eval(Env)──> Value
//! ```
//!
//! Parsing and compiling happen once per rule set; [`Compiled::eval`] runs per record and
//! borrows from the record instead of cloning it where it can.
//!
//! # Syntax
//!
//! * Literals: `null`, `true`, `false`, numbers (`42`, `1.5`, `2e3`), strings in double or single
//!   quotes with escapes `\n \t \r \\ \" \' \/ \uXXXX`, arrays `[a, b]`, objects
//!   `{key: v, "quoted key": v}`. Trailing commas are allowed.
//! * Names: `email` is a binding (e.g. `policy`) or else a record field. Postfix `.field`,
//!   `[i]` (negative counts from the end; a string key reads an object field) and `[a:b]`
//!   (either bound optional; arrays and strings, by characters) apply to any expression:
//!   `split(name, " ")[0]`.
//! * Keywords (not usable as bare names, fine after `.` and as object keys):
//!   `null true false if then else in`. `not` is only special in a `not in` table cell.
//! * Operators, lowest precedence first: `|` (pipe: `x | f(y)` is `f(x, y)`, `x | f` is
//!   `f(x)`, postfix may follow: `x | split(" ")[0]`), `if c then a else b`, `??` and `?|`,
//!   `||`, `&&`, `== != < <= > >= in`, `+ -`, `* / %`, prefix `! -`, postfix.
//! * Interpolation: `"user-${id}"` in either kind of quotes, any expression inside `${ }`;
//!   `\${` is a literal `${`.
//! * `try(a, b)` looks like a call but is a form of the language: `b` when evaluating `a`
//!   fails.
//! * JSONPath: a `$` starts a query over the record that forms one token: names, `.`, `..`,
//!   `.*` and balanced `[...]` groups (which may contain spaces and operators, as in
//!   `$.items[?@.qty > 1].sku`). It ends at whitespace or any other character, so
//!   `$.a + 1`, `f($..id, 2)` and `$.price*2` work as expected. Member names with other
//!   characters need brackets: `$['first-name']`. To index the result of a query, wrap it in
//!   parentheses: `($..id)[0]`. A singular query (names and indices only) yields the value or
//!   null; any other query yields the array of matches.
//!
//! # Semantics
//!
//! * Navigation is null-safe: a field or index of null, a missing field and an index out of
//!   range are null; a field of a non-object or an index into a non-array is an error.
//! * Calls: a null argument for a non-optional parameter makes the call null without running
//!   the function.
//! * Arithmetic (`+ - * / %`, unary `-`) on null is null; `< <= > >=` with null are false;
//!   `! && ||` and `if` conditions must be bools (null is an error; add `?? false`).
//! * `a ?? b` is `b` when `a` is null; `a ?| b` also when `a` is `""`, `[]` or `{}`. Both
//!   type as the join of `a` without null and `b`; so does `try(a, b)`.
//! * An interpolated string is null when a part is null (as `+` is); parts must be strings,
//!   numbers or bools.
//! * `==` is deep equality with numbers compared numerically (`1 == 1.0`).
//! * Constant subtrees are folded at compile time; function calls are never folded (some
//!   read the clock or are otherwise impure), but constant arguments reach
//!   [`Function::prepare`](crate::functions::Function::prepare).

pub mod ast;
mod check;
mod error;
mod eval;
mod jsonpath;
mod parser;
mod unary;
pub mod value;
mod visit;

pub use ast::{BinaryOp, Expr, ExprKind, StrPart, TextRange, UnaryOp, UnaryTest, UnaryTestKind};
pub use check::{Compiled, Scope, compile, signature_text};
pub use error::{CheckError, EvalError, ParseError};
pub use eval::Env;
pub(crate) use eval::SEALING;
pub(crate) use jsonpath::{JsonPathError, convert as jsonpath_error};
pub use parser::{parse, parse_unary_test};
pub use unary::{CompiledTest, TestShape, compile_test};

use serde_json::Value;

use crate::functions::{Clock, Registry};

/// 1-based column (in characters) of a byte offset into `source`.
pub fn column(source: &str, offset: u32) -> usize {
    let mut end = (offset as usize).min(source.len());
    while end > 0 && !source.is_char_boundary(end) {
        end -= 1;
    }
    source[..end].chars().count() + 1
}

/// Compiles `source` with every record field typed `any` and evaluates it against `record`.
///
/// Used by function examples, `rulebridge eval`, and tests. Errors name the column.
pub fn eval_standalone(
    source: &str,
    record: &Value,
    registry: &Registry,
    clock: &dyn Clock,
) -> Result<Value, String> {
    let expr = parse(source).map_err(|e| {
        let mut m = format!(
            "syntax error at column {}: {}",
            column(source, e.range.start),
            e.message
        );
        if let Some(h) = e.help {
            m.push_str(&format!(" ({h})"));
        }
        m
    })?;
    let (compiled, _) = compile(&expr, &Scope::new(registry)).map_err(|errors| {
        errors
            .iter()
            .map(|e| {
                let mut m = format!(
                    "{} at column {}: {}",
                    e.code,
                    column(source, e.range.start),
                    e.message
                );
                if let Some(h) = &e.help {
                    m.push_str(&format!(" ({h})"));
                }
                m
            })
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let env = Env::new(record, clock);
    compiled
        .eval(&env)
        .map(std::borrow::Cow::into_owned)
        .map_err(|e| {
            format!(
                "error at column {}: {}",
                column(source, e.range.start),
                e.message
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::FixedClock;
    use serde_json::json;

    fn run(src: &str, record: Value) -> Result<Value, String> {
        eval_standalone(
            src,
            &record,
            &Registry::builtin(),
            &FixedClock::default_test(),
        )
    }

    #[test]
    fn compiled_is_send_sync() {
        fn assert<T: Send + Sync + Clone>() {}
        assert::<Compiled>();
        assert::<CompiledTest>();
    }

    #[test]
    fn end_to_end() {
        assert_eq!(
            run("lower(email)", json!({"email": "A@B"})),
            Ok(json!("a@b"))
        );
        assert_eq!(
            run("email | lower", json!({"email": "A@B"})),
            Ok(json!("a@b"))
        );
        assert_eq!(run("1 + 2 * 3", json!({})), Ok(json!(7)));
        assert_eq!(run("tags[-1]", json!({"tags": [1, 2, 3]})), Ok(json!(3)));
        assert_eq!(run("lower(x)", json!({})), Ok(json!(null)));
        assert_eq!(
            run("lower(x)", json!({"x": 5})),
            Err("error at column 1: lower() argument 1 expects string, got number".into())
        );
        assert!(run("lowr(x)", json!({})).is_err_and(|e| e.contains("did you mean `lower`")));
    }

    #[test]
    fn paths_borrow_from_the_record() {
        let record = json!({"user": {"name": "Ada"}});
        let registry = Registry::builtin();
        let expr = parse("user.name").unwrap_or_else(|e| panic!("{e}"));
        let (compiled, _) =
            compile(&expr, &Scope::new(&registry)).unwrap_or_else(|e| panic!("{e:?}"));
        let clock = FixedClock::default_test();
        let env = Env::new(&record, &clock);
        let v = compiled.eval(&env).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(v, std::borrow::Cow::Borrowed(_)));
        assert_eq!(v.as_ref(), &json!("Ada"));
    }
}
