//! Parser snapshots: every line of `fixtures/expr/parse/*.expr` (expressions) and `*.cell`
//! (decision-table cells) with its pretty-printed tree or its syntax error.

mod expr_support;

use expr_support::{lines, render_error};
use rulebridge::expr::{ParseError, parse, parse_unary_test};

fn render(src: &str, result: Result<String, ParseError>) -> String {
    match result {
        Ok(tree) => format!("{src}\n  => {tree}"),
        Err(e) => format!(
            "{src}\n{}",
            render_error(
                src,
                e.range,
                "syntax error",
                Some(&e.message),
                e.help.as_deref()
            )
        ),
    }
}

#[test]
fn expressions() {
    insta::glob!("fixtures/expr/parse/*.expr", |path| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let out: Vec<String> = lines(&text)
            .map(|src| render(src, parse(src).map(|e| e.to_string())))
            .collect();
        insta::with_settings!({ description => text.trim_end() }, {
            insta::assert_snapshot!(out.join("\n\n"));
        });
    });
}

#[test]
fn cells() {
    insta::glob!("fixtures/expr/parse/*.cell", |path| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let out: Vec<String> = lines(&text)
            .map(|src| render(src, parse_unary_test(src).map(|t| t.to_string())))
            .collect();
        insta::with_settings!({ description => text.trim_end() }, {
            insta::assert_snapshot!(out.join("\n\n"));
        });
    });
}

#[test]
fn ranges_cover_the_source_text() {
    let src = "lower(user.name) + \"x\"";
    let expr = parse(src).unwrap_or_else(|e| panic!("{e}"));
    let mut seen = Vec::new();
    expr.walk(&mut |e| {
        seen.push(src[e.range.start as usize..e.range.end as usize].to_string());
    });
    assert_eq!(
        seen,
        [
            "lower(user.name) + \"x\"",
            "lower(user.name)",
            "user.name",
            "user",
            "\"x\""
        ]
    );
    let mut names = Vec::new();
    expr.for_each_name(|n, _| names.push(n.to_string()));
    assert_eq!(names, ["user"]);
    let mut calls = Vec::new();
    expr.for_each_call(|n, r| calls.push((n.to_string(), r.start, r.end)));
    assert_eq!(calls, [("lower".to_string(), 0, 5)]);
}
