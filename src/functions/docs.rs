//! The function reference in Markdown, generated from the registry (`docs/functions.md`).

use std::fmt::Write as _;

use super::{Category, Example, Function, Registry, Signature};

/// A call signature as the reference shows it, e.g.
/// `split(value: string, separator: string) -> array<string>`; an omittable parameter is
/// written `name?: type`, a repeatable one `...name: type`.
pub fn signature_line(name: &str, sig: &Signature) -> String {
    let mut params: Vec<String> = sig
        .params
        .iter()
        .map(|p| {
            let mark = if p.optional { "?" } else { "" };
            format!("{}{mark}: {}", p.name, p.ty)
        })
        .collect();
    if let Some(v) = &sig.variadic {
        params.push(format!("...{}: {}", v.name, v.ty));
    }
    format!("{name}({}) -> {}", params.join(", "), sig.returns)
}

/// The reference for every function in `registry`, grouped by category.
pub fn markdown(registry: &Registry) -> String {
    let mut groups: Vec<(Category, Vec<&dyn Function>)> = Vec::new();
    for f in registry.iter() {
        let f = f.as_ref();
        match groups.iter_mut().find(|(c, _)| *c == f.category()) {
            Some((_, fs)) => fs.push(f),
            None => groups.push((f.category(), vec![f])),
        }
    }
    groups.sort_by_key(|(c, _)| *c);

    let mut out = String::new();
    out.push_str("# Function reference\n\n");
    out.push_str(
        "<!-- Generated from the function library by \
         `UPDATE_DOCS=1 cargo test --lib functions::docs`. Do not edit by hand. -->\n\n",
    );
    let _ = writeln!(
        out,
        "rulebridge expressions can call {} builtin functions. Every example below is also a \
         test.\n",
        registry.len()
    );
    out.push_str(
        "- **Null propagation.** When an argument is null and the parameter's type is not \
         optional (`any` and `T?` are), the call returns null without running the function: \
         `lower(null)` is `null`.\n\
         - **Fallible functions** can fail on some values of the right type \
         (`to_number(\"abc\")`); the failure is an error for that record, naming the rule and \
         the field.\n\
         - **Constant arguments** (regex patterns, date formats, keys) are checked and \
         compiled once, by `lint` and at load time, not per record.\n\
         - Examples run at the fixed test time 2024-01-15T10:30:00Z.\n\n",
    );

    for (category, functions) in &groups {
        let names: Vec<String> = functions
            .iter()
            .map(|f| format!("[`{0}`](#{0})", f.name()))
            .collect();
        let _ = writeln!(
            out,
            "- [{category}](#{}): {}",
            anchor(&category.to_string()),
            names.join(", ")
        );
    }

    for (category, functions) in &groups {
        let _ = write!(out, "\n## {category}\n");
        for f in functions {
            function_section(&mut out, *f);
        }
    }
    out
}

fn function_section(out: &mut String, f: &dyn Function) {
    let sig = f.signature();
    let _ = write!(
        out,
        "\n### {name}\n\n```text\n{line}\n```\n\n{doc}\n",
        name = f.name(),
        line = signature_line(f.name(), &sig),
        doc = f.doc().trim(),
    );
    if sig.fallible {
        out.push_str(
            "\n*Fallible:* some values make it fail, which is an error for that record.\n",
        );
    }
    let examples = f.examples();
    if examples.is_empty() {
        return;
    }
    out.push_str("\n| Example | Expression | Record | Result |\n|---|---|---|---|\n");
    for ex in examples {
        example_row(out, ex);
    }
}

fn example_row(out: &mut String, ex: &Example) {
    let record = if ex.record.trim() == "{}" {
        String::new()
    } else {
        code(ex.record)
    };
    let result = match ex.result.strip_prefix("error:") {
        Some(text) => format!("error: {}", code(text.trim())),
        None => code(ex.result),
    };
    let _ = writeln!(
        out,
        "| {} | {} | {record} | {result} |",
        cell(ex.title),
        code(ex.source)
    );
}

/// Inline code inside a table cell (a `|` would end the cell).
fn code(text: &str) -> String {
    format!("`{}`", cell(text.trim()))
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The anchor GitHub gives a heading.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::functions::{Param, Signature};
    use crate::types::Type;

    #[test]
    fn signature_lines() {
        let sig = Signature::new(
            vec![
                Param::new("value", Type::String),
                Param::opt("end", Type::Number),
            ],
            Type::array(Type::String),
        )
        .variadic(Param::new("more", Type::optional(Type::Number)));
        assert_eq!(
            signature_line("f", &sig),
            "f(value: string, end?: number, ...more: number?) -> array<string>"
        );
    }

    #[test]
    fn anchors_and_cells() {
        assert_eq!(
            anchor("Encoding and cryptography"),
            "encoding-and-cryptography"
        );
        assert_eq!(code("a | b"), "`a \\| b`");
    }

    /// `docs/functions.md` must match the library; `UPDATE_DOCS=1` rewrites it.
    #[test]
    fn committed_reference_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/functions.md");
        let generated = markdown(&Registry::builtin());
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/functions.md is out of date with the function library; regenerate it with \
             `UPDATE_DOCS=1 cargo test --lib functions::docs` and commit the result"
        );
    }
}
