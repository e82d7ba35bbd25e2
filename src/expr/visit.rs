//! Walking and printing syntax trees.
//!
//! The printed form is compact and S-expression-like, so precedence is visible in parser
//! snapshots: `a + b * c` prints as `(+ a (* b c))`, `x | f(y)` as `(|f x y)`.

use std::fmt::{self, Write as _};

use super::ast::{Expr, ExprKind, StrPart, UnaryOp, UnaryTest, UnaryTestKind};

impl Expr {
    /// The direct children, left to right.
    pub fn children(&self) -> Vec<&Expr> {
        match &self.kind {
            ExprKind::Literal(_) | ExprKind::Name(_) | ExprKind::JsonPath(_) => Vec::new(),
            ExprKind::Array(items) => items.iter().collect(),
            ExprKind::Object(entries) => entries.iter().map(|(_, v)| v).collect(),
            ExprKind::Field(t, _) | ExprKind::Unary(_, t) => vec![t],
            ExprKind::Index(t, i) => vec![t, i],
            ExprKind::Slice(t, a, b) => {
                let mut v = vec![t.as_ref()];
                v.extend(a.as_deref());
                v.extend(b.as_deref());
                v
            }
            ExprKind::Binary(_, a, b) => vec![a, b],
            ExprKind::If(c, a, b) => vec![c, a, b],
            ExprKind::Call { args, .. } => args.iter().collect(),
            ExprKind::Interpolated(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    StrPart::Expr(e) => Some(e),
                    StrPart::Text(_) => None,
                })
                .collect(),
        }
    }

    /// Visits this node and every descendant, parents first.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Expr)) {
        f(self);
        for c in self.children() {
            c.walk(f);
        }
    }

    /// Calls `f` for every root name (`email` in `email`, `user` in `user.address.city`),
    /// in source order. JSONPath queries are not names; see [`Expr::uses_jsonpath`].
    pub fn for_each_name(&self, mut f: impl FnMut(&str, super::TextRange)) {
        self.walk(&mut |e| {
            if let ExprKind::Name(n) = &e.kind {
                f(n, e.range);
            }
        });
    }

    /// Calls `f` for every function call with the function's name and the name's range.
    pub fn for_each_call(&self, mut f: impl FnMut(&str, super::TextRange)) {
        self.walk(&mut |e| {
            if let ExprKind::Call {
                name, name_range, ..
            } = &e.kind
            {
                f(name, *name_range);
            }
        });
    }

    /// Whether a JSONPath query reads the record (it may read any field).
    pub fn uses_jsonpath(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| found |= matches!(e.kind, ExprKind::JsonPath(_)));
        found
    }

    /// `user.address.city` as `["user", "address", "city"]` when the expression is a plain
    /// path of names and field accesses.
    pub fn as_field_path(&self) -> Option<Vec<&str>> {
        match &self.kind {
            ExprKind::Name(n) => Some(vec![n.as_str()]),
            ExprKind::Field(t, n) => {
                let mut p = t.as_field_path()?;
                p.push(n);
                Some(p)
            }
            _ => None,
        }
    }

    /// Whether this is a literal, e.g. `"IT"` or `42` (negative numbers included).
    pub fn is_literal(&self) -> bool {
        matches!(self.kind, ExprKind::Literal(_))
    }
}

impl UnaryTest {
    /// The expression inside the test, if any.
    pub fn expr(&self) -> Option<&Expr> {
        match &self.kind {
            UnaryTestKind::Any => None,
            UnaryTestKind::Equals(e)
            | UnaryTestKind::Compare(_, e)
            | UnaryTestKind::In { list: e, .. }
            | UnaryTestKind::Condition(e) => Some(e),
        }
    }
}

fn is_plain_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn write_key(f: &mut fmt::Formatter<'_>, key: &str) -> fmt::Result {
    if is_plain_key(key) {
        f.write_str(key)
    } else {
        write!(f, "{}", serde_json::Value::String(key.to_string()))
    }
}

/// A postfix target; a JSONPath target is parenthesised, or the postfix would read as part
/// of the query.
struct Target<'a>(&'a Expr);

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.kind {
            ExprKind::JsonPath(_) => write!(f, "({})", self.0),
            _ => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Literal(v) => write!(f, "{v}"),
            ExprKind::Name(n) => f.write_str(n),
            ExprKind::JsonPath(p) => f.write_str(p),
            ExprKind::Array(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_char(']')
            }
            ExprKind::Object(entries) => {
                f.write_char('{')?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_key(f, k)?;
                    write!(f, ": {v}")?;
                }
                f.write_char('}')
            }
            ExprKind::Field(t, name) => {
                write!(f, "{}.", Target(t))?;
                f.write_str(name)
            }
            ExprKind::Index(t, i) => write!(f, "{}[{i}]", Target(t)),
            ExprKind::Slice(t, a, b) => {
                write!(f, "{}[", Target(t))?;
                if let Some(a) = a {
                    write!(f, "{a}")?;
                }
                f.write_char(':')?;
                if let Some(b) = b {
                    write!(f, "{b}")?;
                }
                f.write_char(']')
            }
            ExprKind::Unary(op, e) => {
                let sym = match op {
                    UnaryOp::Not => "!",
                    UnaryOp::Neg => "-",
                };
                write!(f, "({sym} {e})")
            }
            ExprKind::Binary(op, a, b) => write!(f, "({} {a} {b})", op.symbol()),
            ExprKind::If(c, a, b) => write!(f, "(if {c} {a} {b})"),
            ExprKind::Interpolated(parts) => {
                f.write_str("(str")?;
                for p in parts {
                    match p {
                        StrPart::Text(t) => write!(f, " {}", serde_json::Value::String(t.clone()))?,
                        StrPart::Expr(e) => write!(f, " {e}")?,
                    }
                }
                f.write_char(')')
            }
            ExprKind::Call {
                name, args, piped, ..
            } => {
                f.write_char('(')?;
                if *piped {
                    f.write_char('|')?;
                }
                f.write_str(name)?;
                for a in args {
                    write!(f, " {a}")?;
                }
                f.write_char(')')
            }
        }
    }
}

impl fmt::Display for UnaryTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            UnaryTestKind::Any => f.write_str("(any)"),
            UnaryTestKind::Equals(e) => write!(f, "(equals {e})"),
            UnaryTestKind::Compare(op, e) => write!(f, "(compare {} {e})", op.symbol()),
            UnaryTestKind::In { list, negated } => {
                write!(f, "({} {list})", if *negated { "not-in" } else { "in" })
            }
            UnaryTestKind::Condition(e) => write!(f, "(condition {e})"),
        }
    }
}
