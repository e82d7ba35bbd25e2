//! Property tests: the parser never panics, whatever the input, and evaluation never panics,
//! whatever the record.

mod expr_support;

use proptest::prelude::*;
use rulebridge::expr::{Env, Scope, compile, compile_test, parse, parse_unary_test};
use rulebridge::functions::FixedClock;
use rulebridge::types::Type;
use serde_json::{Map, Value};

/// Tokens of the language, including some broken ones.
const TOKENS: &[&str] = &[
    "a",
    "b",
    "tags",
    "name",
    "n",
    "x",
    "lower",
    "upper",
    "split",
    "join",
    "len",
    "first",
    "coalesce",
    "matches",
    "fail",
    "now",
    "null",
    "true",
    "false",
    "if",
    "then",
    "else",
    "in",
    "not",
    "0",
    "1",
    "-1",
    "2.5",
    "1e3",
    "\"s\"",
    "'t'",
    "\"\\n\"",
    "\"\\u00e9\"",
    "\"",
    "'",
    "\\",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    ".",
    "..",
    "|",
    "||",
    "&&",
    "??",
    "?|",
    "?",
    "try",
    "${",
    "\"a${",
    "}\"",
    "\\$",
    "!",
    "!=",
    "==",
    "=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "$",
    "$.a",
    "$..b",
    "$.tags[0]",
    "$.tags[*]",
    "$[?@.a > 1]",
    "@",
    "[*]",
    "é",
    " ",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(TOKENS), prop::bool::ANY), 0..24).prop_map(
        |tokens| {
            tokens
                .into_iter()
                .map(|(t, space)| {
                    if space {
                        format!("{t} ")
                    } else {
                        t.to_string()
                    }
                })
                .collect()
        },
    )
}

fn json() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec!["a", "b", "tags", "name", "n", "x", "id"]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop_oneof![Just(0), Just(1), Just(-1), Just(i64::MAX), Just(i64::MIN)]
            .prop_map(Value::from),
        "[a-zé ]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5).prop_map(|kv| Value::Object(
                kv.into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect::<Map<_, _>>()
            )),
        ]
    })
}

/// Expressions exercising every operator over fields whose types vary with the record.
const EXPRESSIONS: &[&str] = &[
    "a + b",
    "a - b",
    "a * b",
    "a / b",
    "a % b",
    "-a",
    "!a",
    "a && b",
    "a || b",
    "a ?? b",
    "a == b",
    "a != b",
    "a < b",
    "a <= b",
    "a > b",
    "a >= b",
    "a in b",
    "a[0]",
    "a[-1]",
    "a[b]",
    "a[1:]",
    "a[:b]",
    "a[b:a]",
    "a.b.x",
    "tags[0].name",
    "if a then b else x",
    "lower(a)",
    "a | upper",
    "split(a, b)",
    "join(tags)",
    "join(tags, a)",
    "len(a)",
    "first(tags)",
    "coalesce(n, a, b)",
    "matches(a, \"^x\")",
    "matches(a, b)",
    "$.a",
    "$..id",
    "$.tags[*]",
    "$[?@.a > 1]",
    "($..x)[0]",
    "[a, b, {k: x}]",
    "a + \"s\"",
    "name[0:3] + \"…\"",
    "x.y.z ?? n",
    "9223372036854775807 + a",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_any_text(src in "\\PC{0,40}") {
        let _ = parse(&src);
        let _ = parse_unary_test(&src);
    }

    #[test]
    fn pipeline_never_panics_on_token_soup(src in token_soup(), record in json()) {
        let registry = expr_support::registry();
        let clock = FixedClock::default_test();
        let _ = parse_unary_test(&src);
        if let Ok(expr) = parse(&src) {
            // The printed tree and the walkers work on anything the parser accepts.
            let _ = expr.to_string();
            expr.for_each_name(|_, _| {});
            if let Ok((compiled, _)) = compile(&expr, &Scope::new(&registry)) {
                let env = Env::new(&record, &clock);
                let _ = compiled.eval(&env);
            }
        }
    }

    #[test]
    fn evaluation_never_panics(record in json(), input in json()) {
        let registry = expr_support::registry();
        let clock = FixedClock::default_test();
        let env = Env::new(&record, &clock);
        for src in EXPRESSIONS {
            let expr = parse(src).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
            let (compiled, _) = compile(&expr, &Scope::new(&registry))
                .map_err(|e| TestCaseError::fail(format!("{src}: {e:?}")))?;
            let _ = compiled.eval(&env);
            let test = parse_unary_test(src).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
            if let Ok(t) = compile_test(&test, &Type::Any, &Scope::new(&registry)) {
                let _ = t.matches(&input, &env);
                let _ = t.shape();
            }
        }
    }

    #[test]
    fn path_lookups_agree_with_json_pointer(record in json()) {
        // `a.b` and `a[0]` borrow from the record and read what a JSON pointer reads.
        let registry = expr_support::registry();
        let clock = FixedClock::default_test();
        let env = Env::new(&record, &clock);
        for (src, pointer) in [("a.b", "/a/b"), ("tags[0]", "/tags/0"), ("a.a.a", "/a/a/a")] {
            let expr = parse(src).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (compiled, _) = compile(&expr, &Scope::new(&registry))
                .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            if let (Ok(v), Some(expected)) = (compiled.eval(&env), record.pointer(pointer)) {
                prop_assert_eq!(v.as_ref(), expected);
            }
        }
    }
}
