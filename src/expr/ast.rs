//! The expression syntax tree. Ranges are byte offsets into the expression text; the compiler
//! maps them into the rule file with [`Span::inner`](crate::span::Span::inner).

use serde_json::Value;

/// A byte range inside an expression's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TextRange {
    pub start: u32,
    pub end: u32,
}

impl TextRange {
    pub fn new(start: usize, end: usize) -> Self {
        TextRange {
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn to(self, other: TextRange) -> TextRange {
        TextRange {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// An expression node with its range.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub range: TextRange,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// `null`, `true`, `1.5`, `"text"`, `'text'`.
    Literal(Value),
    /// `[a, b]`.
    Array(Vec<Expr>),
    /// `{key: value, "other key": value}`.
    Object(Vec<(String, Expr)>),
    /// A bare name: a record field, or a binding such as `policy`.
    Name(String),
    /// `target.name`.
    Field(Box<Expr>, String),
    /// `target[index]`; a negative index counts from the end.
    Index(Box<Expr>, Box<Expr>),
    /// `target[start:end]`, either bound optional; works on arrays and strings.
    Slice(Box<Expr>, Option<Box<Expr>>, Option<Box<Expr>>),
    /// `$.a.b[*]`: a JSONPath query over the record, kept as text (compiled by the checker).
    JsonPath(String),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `if c then a else b`.
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `"user-${id}"`: text and interpolated expressions, in order (at least one expression).
    Interpolated(Vec<StrPart>),
    /// `f(a, b)`; a pipe `a | f(b)` is parsed as `f(a, b)` with `piped: true`.
    /// `try(a, b)` is a call too; the checker gives it its meaning (`b` when `a` fails).
    Call {
        name: String,
        name_range: TextRange,
        args: Vec<Expr>,
        piped: bool,
    },
}

/// A piece of an interpolated string.
#[derive(Clone, Debug, PartialEq)]
pub enum StrPart {
    /// Literal text, escapes decoded.
    Text(String),
    /// `${ expr }`.
    Expr(Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `!x`
    Not,
    /// `-x`
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    /// `a ?? b`: `a` unless it is null.
    Coalesce,
    /// `a ?| b`: `a` unless it is empty: null, `""`, `[]` or `{}`.
    Otherwise,
    /// `a in b`: membership in an array, key of an object, substring of a string.
    In,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::Coalesce => "??",
            BinaryOp::Otherwise => "?|",
            BinaryOp::In => "in",
        }
    }
}

/// A policy-table cell: a test applied to the column's input value.
#[derive(Clone, Debug, PartialEq)]
pub struct UnaryTest {
    pub kind: UnaryTestKind,
    pub range: TextRange,
}

#[derive(Clone, Debug, PartialEq)]
pub enum UnaryTestKind {
    /// `-`: matches anything.
    Any,
    /// `"IT"`, `42`, `true`, or any non-boolean expression: input equals the value.
    Equals(Expr),
    /// `< 5`, `>= 80`, `!= "x"`: input compared with the value.
    Compare(BinaryOp, Expr),
    /// `in ["Sales", "Marketing"]`; `not in [...]` is `negated`.
    In { list: Expr, negated: bool },
    /// A boolean expression over the record, e.g. `score > 80 && vip` (the input is ignored).
    Condition(Expr),
}
