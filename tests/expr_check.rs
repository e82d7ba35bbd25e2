//! Type-checking snapshots against a declared record schema (see `expr_support::schema`) and
//! the bindings `policy` and `secrets`. `fixtures/expr/check/*.expr` hold expressions, one per
//! line; `*.cells` hold decision-table cells as `<input type> :: <cell>`.

mod expr_support;

use expr_support::{bindings, lines, registry, render_error, schema};
use rulebridge::expr::{CheckError, Scope, compile, compile_test, parse, parse_unary_test};
use rulebridge::types::Type;

fn render_errors(src: &str, errors: &[CheckError]) -> String {
    errors
        .iter()
        .map(|e| {
            render_error(
                src,
                e.range,
                &format!("{}: {}", e.code, e.message),
                e.label.as_deref(),
                e.help.as_deref(),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn check_line(src: &str) -> String {
    let registry = registry();
    let schema = schema();
    let bindings = bindings();
    let scope = Scope {
        registry: &registry,
        record: Some(&schema),
        bindings: &bindings,
    };
    let expr = match parse(src) {
        Ok(e) => e,
        Err(e) => return render_error(src, e.range, "RB1001", Some(&e.message), None),
    };
    match compile(&expr, &scope) {
        Ok((_, ty)) => format!("  ok: {ty}"),
        Err(errors) => render_errors(src, &errors),
    }
}

#[test]
fn expressions() {
    insta::glob!("fixtures/expr/check/*.expr", |path| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let out: Vec<String> = lines(&text)
            .map(|src| format!("{src}\n{}", check_line(src)))
            .collect();
        insta::with_settings!({ description => text.trim_end() }, {
            insta::assert_snapshot!(out.join("\n\n"));
        });
    });
}

fn check_cell(line: &str) -> String {
    let Some((input, cell)) = line.split_once(" :: ") else {
        return "  bad fixture line: expected `<input type> :: <cell>`".into();
    };
    let Some(input) = Type::parse(input) else {
        return format!("  bad input type `{input}`");
    };
    let registry = registry();
    let schema = schema();
    let scope = Scope {
        registry: &registry,
        record: Some(&schema),
        bindings: &[],
    };
    let test = match parse_unary_test(cell) {
        Ok(t) => t,
        Err(e) => return render_error(cell, e.range, "RB1001", Some(&e.message), None),
    };
    match compile_test(&test, &input, &scope) {
        Ok(t) => format!("  ok: {}  {:?}", ast_kind(t.kind()), t.shape()),
        Err(errors) => render_errors(cell, &errors),
    }
}

fn ast_kind(kind: &rulebridge::expr::UnaryTestKind) -> &'static str {
    use rulebridge::expr::UnaryTestKind as K;
    match kind {
        K::Any => "any",
        K::Equals(_) => "equals",
        K::Compare(..) => "compare",
        K::In { .. } => "in",
        K::Condition(_) => "condition",
    }
}

#[test]
fn cells() {
    insta::glob!("fixtures/expr/check/*.cells", |path| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let out: Vec<String> = lines(&text)
            .map(|line| format!("{line}\n{}", check_cell(line)))
            .collect();
        insta::with_settings!({ description => text.trim_end() }, {
            insta::assert_snapshot!(out.join("\n\n"));
        });
    });
}

#[test]
fn every_expression_code_has_a_fixture() {
    let mut out = String::new();
    for entry in std::fs::read_dir("tests/fixtures/expr/check")
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let is_cells = entry.path().extension().is_some_and(|e| e == "cells");
        for line in lines(&text) {
            out.push_str(&if is_cells {
                check_cell(line)
            } else {
                check_line(line)
            });
        }
    }
    for code in [
        "RB1002", "RB1003", "RB1004", "RB1005", "RB1006", "RB1007", "RB1008", "RB1009",
    ] {
        assert!(out.contains(code), "no check fixture produces {code}");
    }
}
