//! Parsing with the pest grammar in `grammar/expr.pest`, then building the [`Expr`] tree.
//!
//! Nesting is bounded before and during parsing (pest and the tree walkers recurse), so hostile
//! input produces a [`ParseError`] instead of exhausting the stack.

use pest::Parser as _;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::{Pair, Pairs};
use serde_json::Value;

use super::ast::{BinaryOp, Expr, ExprKind, StrPart, TextRange, UnaryOp, UnaryTest, UnaryTestKind};
use super::error::ParseError;

mod grammar {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    #[derive(pest_derive::Parser)]
    #[grammar = "../grammar/expr.pest"]
    pub(super) struct ExprParser;
}

use grammar::{ExprParser, Rule};

/// Deepest bracket plus `if` nesting accepted by the pre-scan (pest recursion per level is deep).
const MAX_NESTING: usize = 32;
/// Deepest syntax tree accepted; bounds recursion in the checker and evaluator.
pub(crate) const MAX_DEPTH: usize = 128;

/// Parses an expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    prescan(src)?;
    let mut pairs = ExprParser::parse(Rule::expression_main, src).map_err(|e| convert(src, e))?;
    let main = next(&mut pairs, src.len())?;
    let mut inner = main.into_inner();
    let expr = next(&mut inner, src.len())?;
    Ok(build(expr)?.expr)
}

/// Parses a decision-table cell.
///
/// The parser classifies syntactically: a top-level comparison, `&&`, `||`, `in` or `!` is a
/// [`UnaryTestKind::Condition`]; any other expression is [`UnaryTestKind::Equals`] (the
/// checker turns a non-literal boolean-typed `Equals` into a condition).
pub fn parse_unary_test(src: &str) -> Result<UnaryTest, ParseError> {
    prescan(src)?;
    let mut pairs = ExprParser::parse(Rule::unary_test_main, src).map_err(|e| convert(src, e))?;
    let main = next(&mut pairs, src.len())?;
    let mut inner = main.into_inner();
    let test = next(&mut inner, src.len())?;
    let range = range_of(&test);
    let kind = match test.as_rule() {
        Rule::test_any => UnaryTestKind::Any,
        Rule::test_compare => {
            let mut parts = test.into_inner();
            let op = next(&mut parts, range.end as usize)?;
            let value = build(next(&mut parts, range.end as usize)?)?.expr;
            match op.as_str() {
                "==" => UnaryTestKind::Equals(value),
                "!=" => UnaryTestKind::Compare(BinaryOp::Ne, value),
                "<" => UnaryTestKind::Compare(BinaryOp::Lt, value),
                "<=" => UnaryTestKind::Compare(BinaryOp::Le, value),
                ">" => UnaryTestKind::Compare(BinaryOp::Gt, value),
                ">=" => UnaryTestKind::Compare(BinaryOp::Ge, value),
                _ => return Err(internal(&op)),
            }
        }
        Rule::test_in | Rule::test_not_in => {
            let negated = test.as_rule() == Rule::test_not_in;
            let list = test
                .into_inner()
                .find(|p| p.as_rule() == Rule::expr)
                .ok_or_else(|| ParseError::new(range, "expected a list after `in`"))?;
            UnaryTestKind::In {
                list: build(list)?.expr,
                negated,
            }
        }
        Rule::expr => {
            let expr = build(test)?.expr;
            if is_syntactic_condition(&expr) {
                UnaryTestKind::Condition(expr)
            } else {
                UnaryTestKind::Equals(expr)
            }
        }
        _ => return Err(internal(&test)),
    };
    Ok(UnaryTest { kind, range })
}

fn is_syntactic_condition(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::Binary(op, _, _) => matches!(
            op,
            BinaryOp::Eq
                | BinaryOp::Ne
                | BinaryOp::Lt
                | BinaryOp::Le
                | BinaryOp::Gt
                | BinaryOp::Ge
                | BinaryOp::And
                | BinaryOp::Or
                | BinaryOp::In
        ),
        ExprKind::Unary(UnaryOp::Not, _) => true,
        _ => false,
    }
}

// ------------------------------------------------------------------------------------------
// Pre-scan: unterminated strings and nesting depth.

/// What the pre-scan is inside: a string (quote byte, start) or a `${` (start, open braces).
enum Frame {
    Str(u8, usize),
    Interp(usize, usize),
}

fn prescan(src: &str) -> Result<(), ParseError> {
    let bytes = src.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut depth = 0usize;
    let mut ifs = 0usize;
    // Consecutive prefix operators (`!!x`, `- -x`) recurse too.
    let mut prefix_run = 0usize;
    let mut after_operand = false;
    // Strings and the interpolations inside them nest: `"a${ f("b${c}") }"`.
    let mut frames: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(Frame::Str(quote, _)) = frames.last() {
            let quote = *quote;
            match b {
                b'\\' => i += 1,
                b'$' if bytes.get(i + 1) == Some(&b'{') => {
                    frames.push(Frame::Interp(i, 0));
                    depth += 1;
                    after_operand = false;
                    i += 1;
                }
                q if q == quote => {
                    frames.pop();
                    after_operand = true;
                }
                _ => {}
            }
            i += 1;
            if depth + ifs + prefix_run > MAX_NESTING {
                return Err(too_deep(i.min(bytes.len()).saturating_sub(1)));
            }
            continue;
        }
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'!' if bytes.get(i + 1) != Some(&b'=') => prefix_run += 1,
            b'-' if !after_operand => prefix_run += 1,
            _ => prefix_run = 0,
        }
        if !b.is_ascii_whitespace() {
            after_operand =
                is_word(b) || matches!(b, b')' | b']' | b'}' | b'"' | b'\'' | b'$' | b'*' | b'.');
        }
        match b {
            b'"' | b'\'' => frames.push(Frame::Str(b, i)),
            b'(' | b'[' => depth += 1,
            b'{' => {
                depth += 1;
                if let Some(Frame::Interp(_, open)) = frames.last_mut() {
                    *open += 1;
                }
            }
            b'}' if matches!(frames.last(), Some(Frame::Interp(_, 0))) => {
                // The end of a `${ ... }`: back inside its string.
                frames.pop();
                depth = depth.saturating_sub(1);
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if b == b'}'
                    && let Some(Frame::Interp(_, open)) = frames.last_mut()
                {
                    *open -= 1;
                }
            }
            b'i' | b'e' if i == 0 || !is_word(bytes[i - 1]) => {
                let word_end = bytes[i..]
                    .iter()
                    .position(|c| !is_word(*c))
                    .map_or(bytes.len(), |n| i + n);
                match &bytes[i..word_end] {
                    // Pest nests from an `if` up to its `else`; after it the operand is a
                    // sibling, so `else if` chains do not nest.
                    b"if" => ifs += 1,
                    b"else" => ifs = ifs.saturating_sub(1),
                    _ => {}
                }
            }
            _ => {}
        }
        if depth + ifs + prefix_run > MAX_NESTING {
            return Err(too_deep(i));
        }
        i += 1;
    }
    // The outermost unclosed construct is the one to report: closing it is the fix.
    match frames.first() {
        None => Ok(()),
        Some(Frame::Str(quote, start)) => {
            if let Some(Frame::Interp(at, _)) = frames.get(1) {
                return Err(unclosed_interp(*at, bytes.len()));
            }
            Err(
                ParseError::new(TextRange::new(*start, bytes.len()), "unterminated string")
                    .with_help(format!("close the string with {}", *quote as char)),
            )
        }
        Some(Frame::Interp(at, _)) => Err(unclosed_interp(*at, bytes.len())),
    }
}

fn unclosed_interp(at: usize, end: usize) -> ParseError {
    ParseError::new(TextRange::new(at, end), "unclosed `${` in a string")
        .with_help("close the interpolation with `}`; write `\\${` for a literal `${`")
}

fn too_deep(at: usize) -> ParseError {
    ParseError::new(
        TextRange::new(at, at + 1),
        "expression is nested too deeply",
    )
    .with_help(format!(
        "at most {MAX_NESTING} levels of brackets, `if` and prefix operators are allowed"
    ))
}

// ------------------------------------------------------------------------------------------
// Building the tree.

/// An expression and the depth of its tree.
struct Built {
    expr: Expr,
    depth: usize,
}

fn leaf(kind: ExprKind, range: TextRange) -> Built {
    Built {
        expr: Expr { kind, range },
        depth: 1,
    }
}

fn node(kind: ExprKind, range: TextRange, child_depth: usize) -> Result<Built, ParseError> {
    let depth = child_depth + 1;
    if depth > MAX_DEPTH {
        return Err(
            ParseError::new(range, "expression is nested too deeply").with_help(format!(
                "at most {MAX_DEPTH} levels of operators are allowed"
            )),
        );
    }
    Ok(Built {
        expr: Expr { kind, range },
        depth,
    })
}

/// A pair's range without trailing whitespace (pest includes whitespace it skipped while
/// trying an optional part, e.g. the arguments after a name).
fn range_of(pair: &Pair<'_, Rule>) -> TextRange {
    let span = pair.as_span();
    let text = span.as_str();
    TextRange::new(span.start(), span.start() + text.trim_end().len())
}

fn next<'i>(pairs: &mut Pairs<'i, Rule>, at: usize) -> Result<Pair<'i, Rule>, ParseError> {
    pairs
        .next()
        .ok_or_else(|| ParseError::new(TextRange::new(at, at), "internal parser error"))
}

fn internal(pair: &Pair<'_, Rule>) -> ParseError {
    ParseError::new(
        range_of(pair),
        format!("internal parser error: unexpected {:?}", pair.as_rule()),
    )
}

fn is_punct(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::rparen | Rule::rbracket | Rule::rbrace | Rule::comma | Rule::colon
    )
}

/// How an operator in the flat `expr` sequence binds.
#[derive(Clone, Copy)]
enum Affix {
    Prefix(u8),
    Infix(u8, BinaryOp),
    Postfix(u8),
}

/// Binding powers, lowest first: pipe, `if`, `?? ?|`, `||`, `&&`, comparisons, `+ -`, `* / %`,
/// prefix `! -`, postfix `.x [i]`.
fn affix(rule: Rule) -> Option<Affix> {
    use Affix::{Infix, Postfix, Prefix};
    Some(match rule {
        Rule::pipe_call => Postfix(1),
        Rule::if_prefix => Prefix(2),
        Rule::op_coalesce => Infix(3, BinaryOp::Coalesce),
        Rule::op_otherwise => Infix(3, BinaryOp::Otherwise),
        Rule::op_or => Infix(4, BinaryOp::Or),
        Rule::op_and => Infix(5, BinaryOp::And),
        Rule::op_eq => Infix(6, BinaryOp::Eq),
        Rule::op_ne => Infix(6, BinaryOp::Ne),
        Rule::op_lt => Infix(6, BinaryOp::Lt),
        Rule::op_le => Infix(6, BinaryOp::Le),
        Rule::op_gt => Infix(6, BinaryOp::Gt),
        Rule::op_ge => Infix(6, BinaryOp::Ge),
        Rule::kw_in => Infix(6, BinaryOp::In),
        Rule::op_add => Infix(7, BinaryOp::Add),
        Rule::op_sub => Infix(7, BinaryOp::Sub),
        Rule::op_mul => Infix(8, BinaryOp::Mul),
        Rule::op_div => Infix(8, BinaryOp::Div),
        Rule::op_rem => Infix(8, BinaryOp::Rem),
        Rule::op_not | Rule::op_neg => Prefix(9),
        Rule::member | Rule::bracket => Postfix(10),
        _ => return None,
    })
}

type Stream<'i> = std::iter::Peekable<Pairs<'i, Rule>>;

/// Precedence climbing over the flat sequence of an `expr` pair.
fn climb(pairs: &mut Stream<'_>, min_bp: u8, at: TextRange) -> Result<Built, ParseError> {
    let first = pairs
        .next()
        .ok_or_else(|| ParseError::new(at, "expected an expression"))?;
    let mut lhs = match affix(first.as_rule()) {
        Some(Affix::Prefix(bp)) => {
            let operand = climb(pairs, bp, at)?;
            apply_prefix(first, operand)?
        }
        Some(_) => return Err(internal(&first)),
        None => build(first)?,
    };
    while let Some(next) = pairs.peek() {
        let (bp, op) = match affix(next.as_rule()) {
            Some(Affix::Infix(bp, op)) => (bp, Some(op)),
            Some(Affix::Postfix(bp)) => (bp, None),
            _ => return Err(internal(next)),
        };
        if bp <= min_bp {
            break;
        }
        let Some(pair) = pairs.next() else { break };
        lhs = match op {
            Some(op) => {
                let rhs = climb(pairs, bp, at)?;
                let r = lhs.expr.range.to(rhs.expr.range);
                let depth = lhs.depth.max(rhs.depth);
                node(
                    ExprKind::Binary(op, Box::new(lhs.expr), Box::new(rhs.expr)),
                    r,
                    depth,
                )?
            }
            None => apply_postfix(lhs, pair)?,
        };
    }
    Ok(lhs)
}

fn apply_prefix(op: Pair<'_, Rule>, operand: Built) -> Result<Built, ParseError> {
    let op_range = range_of(&op);
    let r = op_range.to(operand.expr.range);
    match op.as_rule() {
        Rule::op_neg => {
            if let ExprKind::Literal(Value::Number(n)) = &operand.expr.kind
                && let Some(neg) = negate(n)
            {
                return Ok(leaf(ExprKind::Literal(neg), r));
            }
            node(
                ExprKind::Unary(UnaryOp::Neg, Box::new(operand.expr)),
                r,
                operand.depth,
            )
        }
        Rule::op_not => node(
            ExprKind::Unary(UnaryOp::Not, Box::new(operand.expr)),
            r,
            operand.depth,
        ),
        Rule::if_prefix => {
            let mut parts = op.into_inner().filter(|p| p.as_rule() == Rule::expr);
            let mut take = || {
                parts
                    .next()
                    .ok_or_else(|| internal_at(op_range))
                    .and_then(build)
            };
            let (c, a) = (take()?, take()?);
            let depth = c.depth.max(a.depth).max(operand.depth);
            node(
                ExprKind::If(Box::new(c.expr), Box::new(a.expr), Box::new(operand.expr)),
                r,
                depth,
            )
        }
        _ => Err(internal(&op)),
    }
}

fn build(pair: Pair<'_, Rule>) -> Result<Built, ParseError> {
    let range = range_of(&pair);
    match pair.as_rule() {
        Rule::expr => climb(&mut pair.into_inner().peekable(), 0, range),
        Rule::null => Ok(leaf(ExprKind::Literal(Value::Null), range)),
        Rule::boolean => Ok(leaf(
            ExprKind::Literal(Value::Bool(pair.as_str() == "true")),
            range,
        )),
        Rule::number => Ok(leaf(
            ExprKind::Literal(parse_number(pair.as_str(), range)?),
            range,
        )),
        Rule::string => string(pair, range),
        Rule::array => {
            let mut items = Vec::new();
            let mut depth = 0;
            for p in pair.into_inner().filter(|p| !is_punct(p.as_rule())) {
                let b = build(p)?;
                depth = depth.max(b.depth);
                items.push(b.expr);
            }
            node(ExprKind::Array(items), range, depth)
        }
        Rule::object => {
            let mut entries = Vec::new();
            let mut depth = 0;
            for entry in pair.into_inner().filter(|p| p.as_rule() == Rule::entry) {
                let entry_range = range_of(&entry);
                let mut parts = entry.into_inner().filter(|p| !is_punct(p.as_rule()));
                let key = parts
                    .next()
                    .ok_or_else(|| ParseError::new(entry_range, "expected a key"))?;
                let key = match key.as_rule() {
                    Rule::string => {
                        let key_range = range_of(&key);
                        match string(key, key_range)?.expr.kind {
                            ExprKind::Literal(Value::String(k)) => k,
                            _ => {
                                return Err(ParseError::new(
                                    key_range,
                                    "an object key cannot be interpolated",
                                )
                                .with_help(
                                    "object keys are fixed names: write the key as plain text and put the \
                                     computed text in a value",
                                ));
                            }
                        }
                    }
                    _ => key.as_str().to_string(),
                };
                let value = parts
                    .next()
                    .ok_or_else(|| ParseError::new(entry_range, "expected a value"))?;
                let b = build(value)?;
                if entries.iter().any(|(k, _): &(String, Expr)| *k == key) {
                    return Err(ParseError::new(
                        entry_range,
                        format!("duplicate key `{key}` in object"),
                    ));
                }
                depth = depth.max(b.depth);
                entries.push((key, b.expr));
            }
            node(ExprKind::Object(entries), range, depth)
        }
        Rule::jsonpath => Ok(leaf(ExprKind::JsonPath(pair.as_str().to_string()), range)),
        Rule::paren => {
            let inner = pair
                .into_inner()
                .find(|p| p.as_rule() == Rule::expr)
                .ok_or_else(|| internal_at(range))?;
            let mut b = build(inner)?;
            b.expr.range = range;
            Ok(b)
        }
        Rule::name_or_call => {
            let mut inner = pair.into_inner();
            let ident = next(&mut inner, range.end as usize)?;
            let name = ident.as_str().to_string();
            match inner.next() {
                None => Ok(leaf(ExprKind::Name(name), range)),
                Some(args) => {
                    let (args, depth) = build_args(args)?;
                    node(
                        ExprKind::Call {
                            name,
                            name_range: range_of(&ident),
                            args,
                            piped: false,
                        },
                        range,
                        depth,
                    )
                }
            }
        }
        _ => Err(internal(&pair)),
    }
}

fn internal_at(range: TextRange) -> ParseError {
    ParseError::new(range, "internal parser error")
}

fn build_args(pair: Pair<'_, Rule>) -> Result<(Vec<Expr>, usize), ParseError> {
    let mut args = Vec::new();
    let mut depth = 0;
    for p in pair.into_inner().filter(|p| !is_punct(p.as_rule())) {
        let b = build(p)?;
        depth = depth.max(b.depth);
        args.push(b.expr);
    }
    Ok((args, depth))
}

fn apply_postfix(acc: Built, p: Pair<'_, Rule>) -> Result<Built, ParseError> {
    let pr = range_of(&p);
    let r = acc.expr.range.to(pr);
    match p.as_rule() {
        Rule::pipe_call => {
            let mut name = None;
            let mut args = vec![acc.expr];
            let mut depth = acc.depth;
            for part in p.into_inner() {
                match part.as_rule() {
                    Rule::pipe_fn => name = Some((part.as_str().to_string(), range_of(&part))),
                    Rule::call_args => {
                        let (more, d) = build_args(part)?;
                        depth = depth.max(d);
                        args.extend(more);
                    }
                    _ => {}
                }
            }
            let (name, name_range) = name.ok_or_else(|| internal_at(pr))?;
            node(
                ExprKind::Call {
                    name,
                    name_range,
                    args,
                    piped: true,
                },
                r,
                depth,
            )
        }
        Rule::member => {
            let name = p
                .into_inner()
                .next()
                .map(|n| n.as_str().to_string())
                .ok_or_else(|| internal_at(pr))?;
            node(ExprKind::Field(Box::new(acc.expr), name), r, acc.depth)
        }
        Rule::bracket => {
            let mut before = None;
            let mut after = None;
            let mut colon = false;
            for part in p.into_inner() {
                match part.as_rule() {
                    Rule::colon => colon = true,
                    Rule::rbracket => {}
                    _ => {
                        let b = build(part)?;
                        if colon {
                            after = Some(b);
                        } else {
                            before = Some(b);
                        }
                    }
                }
            }
            let depth = acc
                .depth
                .max(before.as_ref().map_or(0, |b| b.depth))
                .max(after.as_ref().map_or(0, |b| b.depth));
            let target = Box::new(acc.expr);
            if colon {
                node(
                    ExprKind::Slice(
                        target,
                        before.map(|b| Box::new(b.expr)),
                        after.map(|b| Box::new(b.expr)),
                    ),
                    r,
                    depth,
                )
            } else {
                let index = before.ok_or_else(|| {
                    ParseError::new(pr, "expected an index inside `[]`")
                        .with_help("write `[0]` for the first element or `[1:]` for a slice")
                })?;
                node(ExprKind::Index(target, Box::new(index.expr)), r, depth)
            }
        }
        _ => Err(internal(&p)),
    }
}

fn negate(n: &serde_json::Number) -> Option<Value> {
    if let Some(i) = n.as_i64() {
        return i.checked_neg().map(Value::from);
    }
    if let Some(u) = n.as_u64() {
        return (u == i64::MIN.unsigned_abs()).then_some(Value::from(i64::MIN));
    }
    n.as_f64()
        .and_then(|f| serde_json::Number::from_f64(-f))
        .map(Value::Number)
}

fn parse_number(text: &str, range: TextRange) -> Result<Value, ParseError> {
    if !text.contains(['.', 'e', 'E'])
        && let Ok(u) = text.parse::<u64>()
    {
        return Ok(Value::from(u));
    }
    text.parse::<f64>()
        .ok()
        .and_then(|f| crate::functions::number(f).ok())
        .ok_or_else(|| ParseError::new(range, format!("number `{text}` is out of range")))
}

/// A string literal: plain text, or text with `${ expr }` parts.
fn string(pair: Pair<'_, Rule>, range: TextRange) -> Result<Built, ParseError> {
    let mut parts: Vec<StrPart> = Vec::new();
    let mut depth = 0;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::dq_chunk | Rule::sq_chunk => {
                let text = unescape_body(p.as_str(), p.as_span().start())?;
                match parts.last_mut() {
                    Some(StrPart::Text(prev)) => prev.push_str(&text),
                    _ => parts.push(StrPart::Text(text)),
                }
            }
            Rule::interp => {
                let inner = p
                    .into_inner()
                    .find(|q| q.as_rule() == Rule::expr)
                    .ok_or_else(|| internal_at(range))?;
                let b = build(inner)?;
                depth = depth.max(b.depth);
                parts.push(StrPart::Expr(b.expr));
            }
            _ => return Err(internal(&p)),
        }
    }
    if !parts.iter().any(|p| matches!(p, StrPart::Expr(_))) {
        let text = match parts.pop() {
            Some(StrPart::Text(t)) => t,
            _ => String::new(),
        };
        return Ok(leaf(ExprKind::Literal(Value::String(text)), range));
    }
    node(ExprKind::Interpolated(parts), range, depth)
}

/// Decodes the escapes of string text that starts at byte offset `base`.
fn unescape_body(body: &str, base: usize) -> Result<String, ParseError> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else {
            return Err(ParseError::new(
                TextRange::new(base + i, base + i + 1),
                "incomplete escape",
            ));
        };
        let decoded = match e {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'b' => '\u{8}',
            'f' => '\u{c}',
            '0' => '\0',
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            '/' => '/',
            // `\${` is a literal `${`.
            '$' => '$',
            'u' => {
                let hi = hex4(body, i + 2).ok_or_else(|| bad_unicode(base + i, body, i))?;
                skip(&mut chars, 4);
                if (0xD800..0xDC00).contains(&hi) {
                    // A surrogate pair: `\uD83D\uDE00`.
                    let lo = body
                        .get(i + 6..i + 8)
                        .filter(|s| *s == "\\u")
                        .and_then(|_| hex4(body, i + 8))
                        .filter(|lo| (0xDC00..0xE000).contains(lo))
                        .ok_or_else(|| bad_unicode(base + i, body, i))?;
                    skip(&mut chars, 6);
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                        .ok_or_else(|| bad_unicode(base + i, body, i))?
                } else {
                    char::from_u32(hi).ok_or_else(|| bad_unicode(base + i, body, i))?
                }
            }
            other => {
                return Err(ParseError::new(
                    TextRange::new(base + i, base + i + 1 + other.len_utf8()),
                    format!("unknown escape `\\{other}`"),
                )
                .with_help(r#"valid escapes: \n \t \r \\ \" \' \$ \uXXXX"#));
            }
        };
        out.push(decoded);
    }
    Ok(out)
}

fn skip(chars: &mut impl Iterator<Item = (usize, char)>, n: usize) {
    for _ in 0..n {
        chars.next();
    }
}

fn hex4(s: &str, at: usize) -> Option<u32> {
    let digits = s.get(at..at + 4)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

fn bad_unicode(at: usize, body: &str, i: usize) -> ParseError {
    let end = body[i..]
        .char_indices()
        .nth(6)
        .map_or(body.len(), |(j, _)| i + j);
    ParseError::new(TextRange::new(at, at + (end - i)), "invalid unicode escape")
        .with_help(r"write `\u` followed by four hex digits, e.g. `\u00e9`")
}

// ------------------------------------------------------------------------------------------
// Error messages.

/// How an expected rule is named in messages, with a rank that orders the list.
fn describe(rule: Rule) -> Option<(u8, &'static str)> {
    Some(match rule {
        Rule::expr
        | Rule::if_prefix
        | Rule::null
        | Rule::boolean
        | Rule::number
        | Rule::string
        | Rule::array
        | Rule::object
        | Rule::jsonpath
        | Rule::paren
        | Rule::name_or_call
        | Rule::ident
        | Rule::op_not
        | Rule::op_neg
        | Rule::kw_if
        | Rule::test_any
        | Rule::test_compare
        | Rule::test_in
        | Rule::test_not_in
        | Rule::test_op
        | Rule::kw_not => (0, "an expression"),
        Rule::pipe_fn => (1, "a function name"),
        Rule::member_name => (1, "a field name"),
        Rule::entry => (1, "an object key"),
        Rule::pipe_call
        | Rule::op_coalesce
        | Rule::op_otherwise
        | Rule::op_or
        | Rule::op_and
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_lt
        | Rule::op_le
        | Rule::op_gt
        | Rule::op_ge
        | Rule::kw_in
        | Rule::op_add
        | Rule::op_sub
        | Rule::op_mul
        | Rule::op_div
        | Rule::op_rem => (2, "an operator"),
        Rule::kw_then => (3, "`then`"),
        Rule::kw_else => (3, "`else`"),
        Rule::colon => (3, "`:`"),
        Rule::comma => (4, "`,`"),
        Rule::rparen => (5, "`)`"),
        Rule::rbracket => (5, "`]`"),
        Rule::rbrace => (5, "`}`"),
        Rule::EOI => (6, "end of input"),
        _ => return None,
    })
}

fn found_at(src: &str, pos: usize) -> (String, TextRange) {
    let Some(rest) = src.get(pos..).filter(|r| !r.is_empty()) else {
        return ("end of input".into(), TextRange::new(src.len(), src.len()));
    };
    let word_len: usize = rest
        .char_indices()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
        .map(|(_, c)| c.len_utf8())
        .sum();
    let len = if word_len > 0 {
        word_len
    } else {
        rest.chars().next().map_or(0, char::len_utf8)
    };
    (
        format!("`{}`", &rest[..len]),
        TextRange::new(pos, pos + len),
    )
}

fn convert(src: &str, err: pest::error::Error<Rule>) -> ParseError {
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let (found, range) = found_at(src, pos);
    let message = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut described: Vec<(u8, &str)> =
                positives.iter().filter_map(|r| describe(*r)).collect();
            described.sort_unstable();
            described.dedup();
            let expected: Vec<&str> = described.into_iter().map(|(_, d)| d).collect();
            if expected.is_empty() {
                format!("unexpected {found}")
            } else {
                format!("expected {}, found {found}", join_or(&expected))
            }
        }
        ErrorVariant::CustomError { message } => message.clone(),
    };
    let word = src
        .get(range.start as usize..range.end as usize)
        .unwrap_or("");
    let rest = src.get(range.start as usize..).unwrap_or("");
    let before = src.get(..range.start as usize).unwrap_or("").trim_end();
    let after_not = before
        .strip_suffix("not")
        .is_some_and(|b| !b.ends_with(|c: char| c.is_alphanumeric() || c == '_'));
    let help = match word {
        "and" => Some("use `&&` for \"and\""),
        "or" => Some("use `||` for \"or\""),
        "not" => Some("use `!` for \"not\""),
        _ if after_not => Some("use `!` for \"not\"; `not in` only works in table cells"),
        _ if rest.starts_with('=') && !rest.starts_with("==") => Some("use `==` to compare"),
        _ if rest.starts_with('?') => Some(
            "use `a ?? b` for a default of null, `a ?| b` for a default of null or empty, or \
             `if c then a else b`",
        ),
        _ => None,
    };
    let mut e = ParseError::new(range, message);
    if let Some(h) = help {
        e = e.with_help(h);
    }
    e
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(src: &str) -> String {
        match parse(src) {
            Ok(e) => e.to_string(),
            Err(e) => format!("error {}..{}: {}", e.range.start, e.range.end, e.message),
        }
    }

    #[test]
    fn precedence() {
        assert_eq!(p("1 + 2 * 3"), "(+ 1 (* 2 3))");
        assert_eq!(p("a || b && c"), "(|| a (&& b c))");
        assert_eq!(p("a ?? b || c"), "(?? a (|| b c))");
        assert_eq!(p("-x.y"), "(- x.y)");
        assert_eq!(p("-1"), "-1");
        assert_eq!(p("a - -1"), "(- a -1)");
        assert_eq!(p("x | f(y)"), "(|f x y)");
        assert_eq!(p("x | f"), "(|f x)");
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(p(r#""a\n\u00e9""#), r#""a\né""#);
        assert_eq!(p(r"'it\'s'"), r#""it's""#);
        assert_eq!(p(r#""\ud83d\ude00""#), "\"😀\"");
        assert!(p(r#""\q""#).starts_with("error 1..3: unknown escape"));
        assert!(p(r#""abc"#).starts_with("error 0..4: unterminated"));
    }

    #[test]
    fn jsonpath_token_ends_at_operators() {
        assert_eq!(p("$.a.b + 1"), "(+ $.a.b 1)");
        assert_eq!(p("f($..id, 2)"), "(f $..id 2)");
        assert_eq!(p("$.items[?@.qty > 1].sku"), "$.items[?@.qty > 1].sku");
        assert_eq!(p("$.price*2"), "(* $.price 2)");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "(".repeat(10_000) + "1" + &")".repeat(10_000);
        assert!(p(&deep).contains("nested too deeply"));
        let long = vec!["a"; 10_000].join(" + ");
        assert!(p(&long).contains("nested too deeply"));
        let bangs = "!".repeat(10_000) + "a";
        assert!(p(&bangs).contains("nested too deeply"));
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;

    /// Inputs at the nesting limits parse on a 1 MiB stack (debug build); anything deeper
    /// is rejected before pest runs.
    #[test]
    fn nesting_at_the_limits_fits_a_small_stack() {
        let n = MAX_NESTING / 2;
        let brackets = "[(".repeat(n) + "1" + &")]".repeat(n);
        let ifs = "if true then ".repeat(MAX_NESTING) + "1" + &" else 2".repeat(MAX_NESTING);
        let else_ifs = "if a then 1 else ".repeat(100) + "2";
        let prefix = "!".repeat(MAX_NESTING) + "a";
        let chain = vec!["a"; MAX_DEPTH - 1].join(" + ");
        let handle = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                [
                    parse(&brackets).is_ok(),
                    parse(&ifs).is_ok(),
                    parse(&else_ifs).is_ok(),
                    parse(&prefix).is_ok(),
                    parse(&chain).is_ok(),
                ]
            });
        let results = handle.map(|h| h.join());
        assert!(
            matches!(results, Ok(Ok([true, true, true, true, true]))),
            "{results:?}"
        );
    }
}
