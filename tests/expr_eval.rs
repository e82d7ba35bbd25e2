//! Evaluation snapshots. `fixtures/expr/eval/*.txt` hold `<record JSON>\n---\n` followed by
//! expressions, one per line; `*.cells` hold the record and lines `<input JSON> :: <cell>`.
//! Records are undeclared (every field is `any`), so type problems surface at run time.

mod expr_support;

use expr_support::{lines, read_with_record, registry, render_error};
use rulebridge::expr::{Env, Scope, UnaryTestKind, compile, compile_test, parse, parse_unary_test};
use rulebridge::functions::FixedClock;
use rulebridge::types::Type;
use serde_json::Value;

fn eval_line(src: &str, record: &Value) -> String {
    let registry = registry();
    let clock = FixedClock::default_test();
    let expr = match parse(src) {
        Ok(e) => e,
        Err(e) => return render_error(src, e.range, "syntax error", Some(&e.message), None),
    };
    let (compiled, ty) = match compile(&expr, &Scope::new(&registry)) {
        Ok(c) => c,
        Err(errors) => {
            return errors
                .iter()
                .map(|e| render_error(src, e.range, e.code.as_str(), Some(&e.message), None))
                .collect::<Vec<_>>()
                .join("\n");
        }
    };
    let env = Env::new(record, &clock);
    match compiled.eval(&env) {
        Ok(v) => format!("  => {v}  : {ty}"),
        Err(e) => render_error(src, e.range, "runtime error", Some(&e.message), None),
    }
}

#[test]
fn expressions() {
    insta::glob!("fixtures/expr/eval/*.txt", |path| {
        let (record, body) = read_with_record(path);
        let out: Vec<String> = lines(&body)
            .map(|src| format!("{src}\n{}", eval_line(src, &record)))
            .collect();
        insta::with_settings!({ description => format!("record: {record}") }, {
            insta::assert_snapshot!(out.join("\n\n"));
        });
    });
}

fn cell_line(line: &str, record: &Value) -> String {
    let Some((input, cell)) = line.split_once(" :: ") else {
        return "  bad fixture line: expected `<input JSON> :: <cell>`".into();
    };
    let input: Value = serde_json::from_str(input).unwrap_or(Value::Null);
    let registry = registry();
    let clock = FixedClock::default_test();
    let test = match parse_unary_test(cell) {
        Ok(t) => t,
        Err(e) => return render_error(cell, e.range, "syntax error", Some(&e.message), None),
    };
    let compiled = match compile_test(&test, &Type::of(&input), &Scope::new(&registry)) {
        Ok(c) => c,
        Err(errors) => {
            return errors
                .iter()
                .map(|e| render_error(cell, e.range, e.code.as_str(), Some(&e.message), None))
                .collect::<Vec<_>>()
                .join("\n");
        }
    };
    let env = Env::new(record, &clock);
    let kind = match compiled.kind() {
        UnaryTestKind::Any => "any",
        UnaryTestKind::Equals(_) => "equals",
        UnaryTestKind::Compare(..) => "compare",
        UnaryTestKind::In { .. } => "in",
        UnaryTestKind::Condition(_) => "condition",
    };
    let shape = format!("{kind}: {:?}", compiled.shape());
    match compiled.matches(&input, &env) {
        Ok(m) => format!("  => {m}  [{shape}]"),
        Err(e) => render_error(cell, e.range, "runtime error", Some(&e.message), None),
    }
}

#[test]
fn cells() {
    insta::glob!("fixtures/expr/eval/*.cells", |path| {
        let (record, body) = read_with_record(path);
        let out: Vec<String> = lines(&body)
            .map(|line| format!("{line}\n{}", cell_line(line, &record)))
            .collect();
        insta::with_settings!({ description => format!("record: {record}") }, {
            insta::assert_snapshot!(out.join("\n\n"));
        });
    });
}
