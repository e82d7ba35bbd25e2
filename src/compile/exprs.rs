//! Compiling one expression written in a rule file, and walking expression trees.

use crate::diagnostic::{Code, Diagnostic, suggest};
use crate::expr::{self, Expr, ExprKind, Scope};
use crate::functions::Registry;
use crate::plan::ExprAt;
use crate::syntax::doc::Spanned;

use super::Context;

impl Context<'_> {
    /// Parses and type-checks `text`, reporting problems at their exact place in the file.
    pub fn compile_expr(&mut self, text: &Spanned<String>, scope: &Scope<'_>) -> Option<ExprAt> {
        let ast = self.parse_expr(text)?;
        self.compile_ast(&ast, text, scope)
    }

    pub fn parse_expr(&mut self, text: &Spanned<String>) -> Option<Expr> {
        match expr::parse(&text.value) {
            Ok(ast) => Some(ast),
            Err(e) => {
                let span = text.span.inner(
                    self.sources,
                    &text.value,
                    e.range.start as usize,
                    e.range.end as usize,
                );
                let unclosed = unclosed_bracket(&text.value);
                let help = e
                    .help
                    .clone()
                    .unwrap_or_else(|| syntax_hint(&e.message, unclosed));
                let mut d = Diagnostic::new(Code::ExprSyntax, span, e.message).with_help(help);
                if let Some((at, _)) = unclosed {
                    let opener = text.span.inner(self.sources, &text.value, at, at + 1);
                    d = d.with_related(opener, "opened here");
                }
                self.report(d);
                None
            }
        }
    }

    pub fn compile_ast(
        &mut self,
        ast: &Expr,
        text: &Spanned<String>,
        scope: &Scope<'_>,
    ) -> Option<ExprAt> {
        match expr::compile(ast, scope) {
            Ok((mut compiled, ty)) => Some(ExprAt {
                compiled: {
                    let leaky = &self.leaky;
                    compiled.mark_secret_calls(&|n| n == "secrets" || leaky.contains(n));
                    compiled
                },
                source: text.value.clone(),
                ty,
                span: text.span,
                location: self.sources.locate(text.span),
            }),
            Err(errors) => {
                for e in errors {
                    self.report_check_error(text, e);
                }
                None
            }
        }
    }

    pub fn report_check_error(&mut self, text: &Spanned<String>, e: expr::CheckError) {
        let span = text.span.inner(
            self.sources,
            &text.value,
            e.range.start as usize,
            e.range.end as usize,
        );
        let help = e.help.or_else(|| check_hint(e.code, &e.message));
        let mut d = Diagnostic::new(e.code, span, e.message).with_help_opt(help);
        if let Some(label) = e.label {
            d = d.with_label(label);
        }
        self.report(d);
    }

    /// Reports `secrets.NAME` uses whose name the flow does not declare.
    pub fn check_secret_names(&mut self, ast: &Expr, text: &Spanned<String>, declared: &[&str]) {
        for (name, range) in secret_uses(ast) {
            if !declared.contains(&name) {
                let span = text.span.inner(
                    self.sources,
                    &text.value,
                    range.start as usize,
                    range.end as usize,
                );
                self.report(
                    Diagnostic::new(Code::UnknownField, span, format!("unknown secret `{name}`"))
                        .with_help(
                            suggest(name, declared.iter().copied())
                                .unwrap_or_else(|| "declare it under the flow's `secrets:`".into()),
                        ),
                );
            }
        }
    }
}

/// A hint for an expression syntax error the parser gave none for, from what it expected.
fn syntax_hint(message: &str, unclosed: Option<(usize, char)>) -> String {
    let at_end = message.ends_with("found end of input");
    if let (true, Some((_, open))) = (at_end, unclosed) {
        let close = match open {
            '(' => ')',
            '[' => ']',
            _ => '}',
        };
        return format!("a `{open}` is never closed: add `{close}` where it should end");
    }
    if at_end {
        return "the expression stops too early: complete the last operand (`a + b`) or remove \
                the trailing operator"
            .into();
    }
    if message.starts_with("expected an operator") {
        return "two values follow each other: put an operator between them (`+`, `==`, `&&`), \
                a `,` between function arguments, or close the bracket before"
            .into();
    }
    if message.starts_with("expected an expression") {
        return "a value is missing here: write a literal, a field, a call like `lower(email)` or \
                `( ... )`, and check for a doubled or stray operator"
            .into();
    }
    "expressions are written like `lower(trim(email))`, `a + b`, `x ?? \"default\"` or \
     `if c then a else b`; see the expression section of README.md"
        .into()
}

/// The innermost bracket still open at the end of `text` (outside string literals), with
/// its byte offset.
fn unclosed_bracket(text: &str) -> Option<(usize, char)> {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => stack.push((i, c)),
            ')' | ']' | '}' => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack.pop()
}

/// A hint for a type-check error that came without one, by its code and message.
fn check_hint(code: Code, message: &str) -> Option<String> {
    let optional = message.ends_with('?');
    let hint = match code {
        Code::OperatorType => {
            let base = if message.contains("needs numbers") || message.contains("needs a number") {
                if message.contains("found string") {
                    "this operator works on numbers: convert text with `to_number(...)` first \
                     (`+` also joins two strings)"
                } else {
                    "this operator works on numbers: convert the value with `to_number(...)`"
                }
            } else if message.contains("needs a bool") || message.contains("needs bools") {
                "`!`, `&&` and `||` work on booleans: compare to get one, e.g. `x != \"\"` or \
                 `is_empty(x)`"
            } else if message.contains("compare") {
                "compare values of one type: convert with `to_number(...)` or `to_string(...)`; \
                 in a table cell, quote strings (`'\"IT\"'`) and write numbers bare"
            } else if message.contains("slice") {
                "slices work on arrays and strings, with number bounds: `x[1:3]`"
            } else if message.contains("`in`") {
                "`in` tests membership in an array (`x in [\"a\", \"b\"]`), the keys of an \
                 object or the text of a string"
            } else {
                "check the types of the values on both sides of the operator; `to_number(...)` \
                 and `to_string(...)` convert between text and numbers"
            };
            if optional {
                format!("{base}; the value may be null: give a default with `?? ...` first")
            } else {
                base.to_string()
            }
        }
        Code::InvalidArgument if message.contains("regex") => {
            "fix the pattern (Rust regex syntax): close every `(` and `[`, and escape a literal \
             special character with `\\` (doubled, `\\\\`, inside a YAML double-quoted string)"
                .to_string()
        }
        Code::InvalidArgument if message.contains("format") => {
            "use strftime-style specifiers such as `%Y-%m-%d`, `%H:%M:%S` or `%d/%m/%Y`".to_string()
        }
        Code::InvalidArgument => "constant arguments are checked when the rules are compiled; \
                                  see docs/functions.md for what this function accepts"
            .to_string(),
        _ => return None,
    };
    Some(hint)
}

/// Calls `f` on every node of the tree, parents first.
pub fn walk<'e>(e: &'e Expr, f: &mut dyn FnMut(&'e Expr)) {
    f(e);
    match &e.kind {
        ExprKind::Literal(_) | ExprKind::Name(_) | ExprKind::JsonPath(_) => {}
        ExprKind::Array(items) => items.iter().for_each(|i| walk(i, f)),
        ExprKind::Object(fields) => fields.iter().for_each(|(_, v)| walk(v, f)),
        ExprKind::Field(t, _) | ExprKind::Unary(_, t) => walk(t, f),
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => {
            walk(a, f);
            walk(b, f);
        }
        ExprKind::Slice(t, a, b) => {
            walk(t, f);
            for x in [a, b].into_iter().flatten() {
                walk(x, f);
            }
        }
        ExprKind::If(c, a, b) => {
            walk(c, f);
            walk(a, f);
            walk(b, f);
        }
        ExprKind::Call { args, .. } => args.iter().for_each(|a| walk(a, f)),
        ExprKind::Interpolated(_) => e.children().into_iter().for_each(|c| walk(c, f)),
    }
}

/// Root names an expression reads (record fields and bindings).
pub fn root_names(e: &Expr) -> Vec<&str> {
    let mut out = Vec::new();
    walk(e, &mut |n| {
        if let ExprKind::Name(name) = &n.kind {
            out.push(name.as_str());
        }
    });
    out
}

/// `secrets.NAME` accesses, with the range of each.
pub fn secret_uses(e: &Expr) -> Vec<(&str, crate::expr::TextRange)> {
    let mut out = Vec::new();
    walk(e, &mut |n| {
        if let ExprKind::Field(target, field) = &n.kind
            && matches!(&target.kind, ExprKind::Name(root) if root == "secrets")
        {
            out.push((field.as_str(), n.range));
        }
    });
    out
}

/// Functions whose output does not reveal their secret input (hashes, MACs, ciphertexts).
use crate::expr::SEALING;

/// Whether a secret can reach the expression's value without passing through a sealing
/// function; `leaky(name)` says whether a bound name (a named value) already carries one.
pub fn leaks_secret_with(e: &Expr, leaky: &dyn Fn(&str) -> bool) -> bool {
    let leaks = |x: &Expr| leaks_secret_with(x, leaky);
    match &e.kind {
        ExprKind::Name(n) => n == "secrets" || leaky(n),
        ExprKind::Call { name, .. } if SEALING.contains(&name.as_str()) => false,
        ExprKind::Literal(_) | ExprKind::JsonPath(_) => false,
        ExprKind::Array(items) => items.iter().any(leaks),
        ExprKind::Object(fields) => fields.iter().any(|(_, v)| leaks(v)),
        ExprKind::Field(t, _) | ExprKind::Unary(_, t) => leaks(t),
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => leaks(a) || leaks(b),
        ExprKind::Slice(t, a, b) => {
            leaks(t) || a.as_deref().is_some_and(leaks) || b.as_deref().is_some_and(leaks)
        }
        ExprKind::If(_, a, b) => leaks(a) || leaks(b),
        ExprKind::Call { args, .. } => args.iter().any(leaks),
        ExprKind::Interpolated(_) => e.children().into_iter().any(leaks),
    }
}

/// Whether the expression's value comes from the engine's clock alone: it calls a function
/// that reads the clock or names a value that does (`clock_only(name)`), and reads nothing
/// else — no field of the record, no other named value, no policy. `now()` and
/// `format_date(now(), "%Y-%m-%d")` are; `date_diff(signed_up, now())` is not, since it
/// changes with the record too.
pub fn clock_only(e: &Expr, registry: &Registry, clock_only: &dyn Fn(&str) -> bool) -> bool {
    let (mut clock, mut other) = (false, false);
    e.walk(&mut |x| match &x.kind {
        ExprKind::Name(n) if clock_only(n) => clock = true,
        ExprKind::Name(_) | ExprKind::JsonPath(_) => other = true,
        ExprKind::Call { name, .. } if registry.get(name).is_some_and(|f| f.reads_clock()) => {
            clock = true
        }
        _ => {}
    });
    clock && !other
}

/// Whether the expression's value differs from evaluation to evaluation: it calls a function
/// whose result does ([`crate::functions::Function::randomized`]) or names a value
/// (`randomized(name)`) that does.
pub fn randomized(e: &Expr, registry: &Registry, randomized: &dyn Fn(&str) -> bool) -> bool {
    let mut found = false;
    e.walk(&mut |x| {
        found |= match &x.kind {
            ExprKind::Name(n) => randomized(n),
            ExprKind::Call { name, .. } => registry.get(name).is_some_and(|f| f.randomized()),
            _ => false,
        }
    });
    found
}
