use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Map, Number, Value};

use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Prepared, Signature, arg,
};
use crate::types::Type;

/// `json_dumps(value, options?)`: JSON text exactly as Python's `json.dumps` writes it.
pub struct JsonDumps;

/// Python's `json.dumps` keyword arguments that change the text.
#[derive(Clone, Debug, PartialEq)]
struct Options {
    sort_keys: bool,
    item_sep: String,
    key_sep: String,
    ensure_ascii: bool,
    indent: Option<usize>,
}

impl Options {
    fn parse(v: Option<&Value>) -> Result<Options, String> {
        let empty = Map::new();
        let m = match v {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(other) => return Err(format!("options must be an object, got {other}")),
        };
        let flag = |name: &str, default: bool| -> Result<bool, String> {
            match m.get(name) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Bool(b)) => Ok(*b),
                Some(other) => Err(format!("`{name}` must be true or false, got {other}")),
            }
        };
        for key in m.keys() {
            if !["sort_keys", "separators", "ensure_ascii", "indent"].contains(&key.as_str()) {
                return Err(format!(
                    "unknown option `{key}`; the options are sort_keys, separators, \
                     ensure_ascii and indent"
                ));
            }
        }
        let indent = match m.get("indent") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(
                n.as_u64()
                    .filter(|n| *n <= 64)
                    .ok_or_else(|| format!("`indent` must be a whole number 0..64, got {n}"))?
                    as usize,
            ),
            Some(other) => return Err(format!("`indent` must be a number, got {other}")),
        };
        // Python's defaults: `", "` between items, but `","` when indenting.
        let default_item = if indent.is_some() { "," } else { ", " };
        let (item_sep, key_sep) = match m.get("separators") {
            None | Some(Value::Null) => (default_item.to_string(), ": ".to_string()),
            Some(Value::Array(pair)) => match pair.as_slice() {
                [Value::String(i), Value::String(k)] => (i.clone(), k.clone()),
                _ => return Err("`separators` must be two strings, e.g. [\",\", \":\"]".into()),
            },
            Some(other) => return Err(format!("`separators` must be two strings, got {other}")),
        };
        Ok(Options {
            sort_keys: flag("sort_keys", false)?,
            item_sep,
            key_sep,
            ensure_ascii: flag("ensure_ascii", true)?,
            indent,
        })
    }
}

impl Function for JsonDumps {
    fn name(&self) -> &str {
        "json_dumps"
    }
    fn category(&self) -> Category {
        Category::Json
    }
    fn doc(&self) -> &'static str {
        "Writes a value as JSON text byte for byte as Python's `json.dumps` does, so that a \
         checksum or signature computed by a Python service over `json.dumps(data)` matches. \
         `options` takes Python's keyword arguments: `sort_keys` (default false), \
         `separators` (default `[\", \", \": \"]`, or `[\",\", \": \"]` with `indent`), \
         `ensure_ascii` (default true: non-ASCII characters are written as `\\uXXXX`, \
         characters beyond U+FFFF as surrogate pairs) and `indent` (spaces per level). \
         Numbers are written as Python writes them (`1.0`, `1e-05`, `1e+16`). Keys keep \
         record order unless sorted. Use `to_json` for compact JSON."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("value", Type::Any),
                Param::opt("options", Type::optional(Type::Object)),
            ],
            Type::String,
        )
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "Python's default separators",
                source: "json_dumps(data)",
                record: r#"{"data": {"b": [1, 2.5], "a": null}}"#,
                result: r#""{\"b\": [1, 2.5], \"a\": null}""#,
            },
            Example {
                title: "`json.dumps(data, sort_keys=True)`, with non-ASCII text escaped",
                source: "json_dumps(data, {sort_keys: true})",
                record: r#"{"data": {"name": "Zoë", "city": "Zürich"}}"#,
                result: r#""{\"city\": \"Z\\u00fcrich\", \"name\": \"Zo\\u00eb\"}""#,
            },
            Example {
                title: "compact, keeping non-ASCII text",
                source: r#"json_dumps(data, {separators: [",", ":"], ensure_ascii: false})"#,
                record: r#"{"data": {"name": "Zoë"}}"#,
                result: r#""{\"name\":\"Zoë\"}""#,
            },
            Example {
                title: "an unknown option",
                source: "json_dumps(1, {sorted: true})",
                record: "{}",
                result: "error: unknown option `sorted`",
            },
        ]
    }
    fn prepare(&self, consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        match consts.get(1).copied().flatten() {
            Some(v) => Ok(Some(Arc::new(Options::parse(Some(v))?) as Prepared)),
            None => Ok(None),
        }
    }
    fn call(&self, args: &[Cow<'_, Value>], cx: &CallContext<'_>) -> Result<Value, FnError> {
        let parsed;
        let options = match cx.prepared::<Options>() {
            Some(o) => o,
            None => {
                parsed = Options::parse(arg::opt(args, 1)).map_err(FnError)?;
                &parsed
            }
        };
        let mut out = String::new();
        write_value(&mut out, arg::any(args, 0), options, 0);
        Ok(Value::String(out))
    }
}

fn newline(out: &mut String, o: &Options, level: usize) {
    if let Some(n) = o.indent {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', n * level));
    }
}

fn write_value(out: &mut String, v: &Value, o: &Options, level: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s, o.ensure_ascii),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&o.item_sep);
                }
                newline(out, o, level + 1);
                write_value(out, item, o, level + 1);
            }
            newline(out, o, level);
            out.push(']');
        }
        Value::Object(m) if m.is_empty() => out.push_str("{}"),
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            if o.sort_keys {
                // Python compares code points; UTF-8 byte order is the same order.
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(&o.item_sep);
                }
                newline(out, o, level + 1);
                write_string(out, k, o.ensure_ascii);
                out.push_str(&o.key_sep);
                write_value(out, v, o, level + 1);
            }
            newline(out, o, level);
            out.push('}');
        }
    }
}

/// Integers as they are; floats as Python's `repr(float)`: the shortest digits that read
/// back, with `.0` on whole numbers and an exponent below 1e-4 or from 1e16 on.
fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
        return;
    }
    if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
        return;
    }
    let Some(f) = n.as_f64() else {
        out.push_str(&n.to_string());
        return;
    };
    out.push_str(&python_float(f));
}

fn python_float(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let sign = if f < 0.0 { "-" } else { "" };
    // `{:e}` gives the shortest round-trip digits: `1.5e16`, `1e-5`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    // Where the decimal point goes in `digits`.
    let point = exp + 1;
    let body = if (-3..=16).contains(&point) {
        if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let e = point - 1;
        format!(
            "{first}{frac}e{}{:02}",
            if e < 0 { '-' } else { '+' },
            e.unsigned_abs()
        )
    };
    format!("{sign}{body}")
}

/// A JSON string as Python writes it: `\"`, `\\`, `\n \r \t \b \f`, other control
/// characters as `\u00XX`; with `ensure_ascii`, everything outside space..`~` as `\uXXXX`
/// (lower-case hex, surrogate pairs beyond U+FFFF).
fn write_string(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ensure_ascii && !(' '..='~').contains(&c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, call_dynamic};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&JsonDumps);
    }

    #[test]
    fn floats_as_python_writes_them() {
        for (f, text) in [
            (1.0, "1.0"),
            (2.5, "2.5"),
            (-0.0, "-0.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-1.25e-7, "-1.25e-07"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
        ] {
            assert_eq!(python_float(f), text, "{f}");
        }
    }

    #[test]
    fn escapes() {
        let dumps = |v: Value, o: Value| call(&JsonDumps, vec![v, o]);
        assert_eq!(
            dumps(json!("a\"\\\n\u{1}\u{7f}é😀"), json!({})),
            Ok(json!(r#""a\"\\\n\u0001\u007f\u00e9\ud83d\ude00""#))
        );
        assert_eq!(
            dumps(json!("a\u{7f}é😀\u{1}"), json!({"ensure_ascii": false})),
            Ok(json!("\"a\u{7f}é😀\\u0001\""))
        );
    }

    #[test]
    fn indent_and_separators() {
        let v = json!({"b": [1, {}], "a": []});
        assert_eq!(
            call(&JsonDumps, vec![v.clone(), json!({"indent": 2, "sort_keys": true})]),
            Ok(json!("{\n  \"a\": [],\n  \"b\": [\n    1,\n    {}\n  ]\n}"))
        );
        assert!(call_dynamic(&JsonDumps, vec![v, json!({"separators": [","]})]).is_err());
    }

    /// The same bytes as CPython's `json.dumps` for non-ASCII, nested and numeric data.
    #[test]
    fn byte_identical_to_python() {
        let data = json!({
            "zeta": "Zoë Ünal — 東京 😀",
            "alpha": {"nested": [1, 2.5, -0.0, 1e16, 0.00001, true, null, "tab\there"]},
            "Ärger": "\"quoted\" \\ back",
            "émoji🎉": [],
            "e": {},
            "n": 12345678901234567890u64,
            "ctl": "\u{1}\u{7f}\u{2028}"
        });
        let calls: [(&str, Value); 4] = [
            ("sort_keys=True", json!({"sort_keys": true})),
            ("", json!({})),
            (
                "sort_keys=True, separators=(',', ':'), ensure_ascii=False",
                json!({"sort_keys": true, "separators": [",", ":"], "ensure_ascii": false}),
            ),
            ("sort_keys=True, indent=2", json!({"sort_keys": true, "indent": 2})),
        ];
        for (kwargs, options) in calls {
            let ours = call(&JsonDumps, vec![data.clone(), options])
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let script = format!(
                "import json,sys\n\
                 data = json.loads(sys.stdin.read(), object_pairs_hook=dict)\n\
                 sys.stdout.buffer.write(json.dumps(data{}{kwargs}).encode('utf-8'))",
                if kwargs.is_empty() { "" } else { ", " }
            );
            let Some(theirs) = python(&script, &data.to_string()) else {
                eprintln!("python3 is not available: skipping the comparison with json.dumps");
                return;
            };
            assert_eq!(ours, theirs, "json.dumps(data, {kwargs})");
        }
    }

    /// Runs python3 with `stdin`, `None` when python3 cannot be started.
    fn python(script: &str, stdin: &str) -> Option<String> {
        use std::io::Write as _;
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(stdin.as_bytes()).ok()?;
        let out = child.wait_with_output().ok()?;
        assert!(out.status.success(), "python3 failed: {out:?}");
        String::from_utf8(out.stdout).ok()
    }
}
