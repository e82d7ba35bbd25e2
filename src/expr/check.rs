//! Type checking and compilation of an [`Expr`] into an evaluable [`Compiled`].
//!
//! Every error is collected (the checker goes on with type `any` where a subtree failed), so
//! one `lint` run reports all problems of an expression.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::diagnostic::{Code, suggest};
use crate::functions::{FixedClock, Registry, Signature};
use crate::types::Type;

use super::ast::{BinaryOp, Expr, ExprKind, StrPart, TextRange, UnaryOp};
use super::error::{CheckError, EvalError};
use super::eval::{self, ArgRule, Call, Env, Node, Part, Root, Step};
use super::jsonpath::JsonPath;
use super::value::NULL;

/// What names mean while checking.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// The functions calls resolve against.
    pub registry: &'a Registry,
    /// Declared record fields; `None` = any field allowed, typed `any`.
    pub record: Option<&'a BTreeMap<String, Type>>,
    /// Root names resolved before record fields, e.g. `("policy", Type::Object)`.
    /// A binding's slot is its index here; [`Env::bindings`] supplies the values in that order.
    pub bindings: &'a [(String, Type)],
}

impl<'a> Scope<'a> {
    /// A scope with an undeclared record and no bindings.
    pub fn new(registry: &'a Registry) -> Self {
        Scope {
            registry,
            record: None,
            bindings: &[],
        }
    }
}

/// A checked expression ready to run. Immutable and cheap to clone and share across threads.
#[derive(Clone)]
pub struct Compiled {
    node: Arc<Node>,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.node.fmt(f)
    }
}

impl Compiled {
    /// Evaluates against one record. Values read from the record or bindings are borrowed.
    pub fn eval<'a>(&'a self, env: &Env<'a>) -> Result<Cow<'a, Value>, EvalError> {
        eval::eval(&self.node, env)
    }

    /// The value, when the expression is a literal or folded to a constant.
    pub fn as_const(&self) -> Option<&Value> {
        self.node.as_const()
    }

    /// An expression that always yields `value` (for defaults built by the engine).
    pub fn constant(value: Value) -> Compiled {
        Compiled {
            node: Arc::new(Node::Const(value)),
        }
    }

    /// Marks the calls whose arguments carry a secret (root names for which `tainted` is
    /// true, unless sealed by a hash or cipher): their errors withhold argument values, so
    /// `normalize_phone(secrets.x)` never quotes the secret. Call right after compiling.
    pub fn mark_secret_calls(&mut self, tainted: &dyn Fn(&str) -> bool) {
        if let Some(node) = Arc::get_mut(&mut self.node) {
            eval::mark_secret_calls(node, tainted);
        }
    }

    pub(crate) fn from_node(node: Node) -> Compiled {
        Compiled {
            node: Arc::new(node),
        }
    }
}

/// Type-checks `expr` and compiles it. Returns every error found.
pub fn compile(expr: &Expr, scope: &Scope) -> Result<(Compiled, Type), Vec<CheckError>> {
    let mut checker = Checker {
        scope,
        errors: Vec::new(),
    };
    let (node, ty) = checker.expr(expr);
    if checker.errors.is_empty() {
        Ok((Compiled::from_node(node), ty))
    } else {
        checker.errors.sort_by_key(|e| e.range.start);
        Err(checker.errors)
    }
}

pub(crate) struct Checker<'s, 'a> {
    pub scope: &'s Scope<'a>,
    pub errors: Vec<CheckError>,
}

/// Coarse type classes for operator rules; `Any` and `Null` act as wildcards.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Any,
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

pub(crate) fn kind(t: &Type) -> Kind {
    match t.non_null() {
        Type::Any | Type::Optional(_) => Kind::Any,
        Type::Null => Kind::Null,
        Type::Bool => Kind::Bool,
        Type::Number => Kind::Number,
        Type::String => Kind::String,
        Type::Array(_) => Kind::Array,
        Type::Object => Kind::Object,
    }
}

/// Whether `k` is one of `allowed` or a wildcard.
fn kind_in(k: Kind, allowed: &[Kind]) -> bool {
    matches!(k, Kind::Any | Kind::Null) || allowed.contains(&k)
}

fn nullable(t: &Type) -> bool {
    matches!(t, Type::Any | Type::Null | Type::Optional(_))
}

/// Whether every value of type `a` is accepted for a parameter of type `p` without a run-time
/// check. At the top level null is handled by propagation or an optional parameter.
fn surely_fits(a: &Type, p: &Type, top: bool) -> bool {
    match (a, p) {
        (_, Type::Any) => true,
        (Type::Null, _) if top => true,
        (Type::Null, Type::Optional(_) | Type::Null) => true,
        (Type::Any, _) => false,
        (Type::Optional(a), Type::Optional(p)) => surely_fits(a, p, false),
        (Type::Optional(a), p) if top => surely_fits(a, p, false),
        (Type::Optional(_), _) => false,
        (a, Type::Optional(p)) => surely_fits(a, p, false),
        (Type::Array(a), Type::Array(p)) => surely_fits(a, p, false),
        (a, p) => a == p,
    }
}

/// `lower(value: string) -> string`.
pub fn signature_text(name: &str, sig: &Signature) -> String {
    let mut params: Vec<String> = sig
        .params
        .iter()
        .map(|p| {
            let q = if p.optional { "?" } else { "" };
            format!("{}{q}: {}", p.name, p.ty)
        })
        .collect();
    if let Some(v) = &sig.variadic {
        params.push(format!("...{}: {}", v.name, v.ty));
    }
    format!("{name}({}) -> {}", params.join(", "), sig.returns)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Evaluates a node whose inputs are all constant.
fn fold(node: Node) -> Node {
    let clock = FixedClock::default_test();
    let env = Env {
        record: &NULL,
        bindings: &[],
        clock: &clock,
    };
    let folded = match eval::eval(&node, &env) {
        Ok(v) => Some(v.into_owned()),
        Err(_) => None,
    };
    match folded {
        Some(v) => Node::Const(v),
        None => node,
    }
}

fn all_const<'n>(nodes: impl IntoIterator<Item = &'n Node>) -> bool {
    nodes.into_iter().all(|n| n.as_const().is_some())
}

const PLACEHOLDER: fn() -> (Node, Type) = || (Node::Const(Value::Null), Type::Any);

impl Checker<'_, '_> {
    fn error(&mut self, e: CheckError) {
        self.errors.push(e);
    }

    fn op_error(&mut self, range: TextRange, message: String, label: String) {
        self.error(CheckError::new(Code::OperatorType, range, message).label(label));
    }

    pub(crate) fn expr(&mut self, e: &Expr) -> (Node, Type) {
        if let Some(result) = self.path(e) {
            return result;
        }
        match &e.kind {
            ExprKind::Literal(v) => (Node::Const(v.clone()), Type::of(v)),
            ExprKind::Array(items) => {
                let mut nodes = Vec::with_capacity(items.len());
                let mut elem: Option<Type> = None;
                for item in items {
                    let (n, t) = self.expr(item);
                    elem = Some(match elem {
                        None => t,
                        Some(prev) => prev.join(&t),
                    });
                    nodes.push(n);
                }
                let ty = Type::array(elem.unwrap_or(Type::Any));
                let node = Node::Array(nodes);
                let node = match &node {
                    Node::Array(n) if all_const(n) => fold(node),
                    _ => node,
                };
                (node, ty)
            }
            ExprKind::Object(entries) => {
                let nodes: Vec<(String, Node)> = entries
                    .iter()
                    .map(|(k, v)| (k.clone(), self.expr(v).0))
                    .collect();
                let is_const = all_const(nodes.iter().map(|(_, n)| n));
                let node = Node::Object(nodes);
                (if is_const { fold(node) } else { node }, Type::Object)
            }
            // Plain names are handled by `path`.
            ExprKind::Name(_) => PLACEHOLDER(),
            ExprKind::Field(target, name) => {
                let (t, tt) = self.expr(target);
                let ty = match field_type(&tt, name) {
                    Ok(ty) => ty,
                    Err((m, h)) => {
                        self.error(
                            CheckError::new(Code::OperatorType, e.range, m)
                                .label(tt.to_string())
                                .help(h),
                        );
                        Type::Any
                    }
                };
                let is_const = t.as_const().is_some();
                let node = Node::Field(Box::new(t), name.as_str().into(), e.range);
                (if is_const { fold(node) } else { node }, ty)
            }
            ExprKind::Index(target, index) => {
                let (t, tt) = self.expr(target);
                let (i, it) = self.expr(index);
                let ty = match index_type(&tt, &it) {
                    Ok(ty) => ty,
                    Err((m, h)) => {
                        self.error(
                            CheckError::new(Code::OperatorType, e.range, m)
                                .label(format!("{tt}[{it}]"))
                                .help(h),
                        );
                        Type::Any
                    }
                };
                let is_const = all_const([&t, &i]);
                let node = Node::Index(Box::new(t), Box::new(i), e.range);
                (if is_const { fold(node) } else { node }, ty)
            }
            ExprKind::Slice(target, start, end) => {
                let (t, tt) = self.expr(target);
                if !kind_in(kind(&tt), &[Kind::Array, Kind::String]) {
                    self.op_error(
                        target.range,
                        format!("cannot slice {tt}; slices work on arrays and strings"),
                        tt.to_string(),
                    );
                }
                let mut bound = |b: &Option<Box<Expr>>| -> Option<Box<Node>> {
                    let b = b.as_ref()?;
                    let (n, bt) = self.expr(b);
                    if !kind_in(kind(&bt), &[Kind::Number]) {
                        self.op_error(
                            b.range,
                            format!("slice bounds must be numbers, found {bt}"),
                            bt.to_string(),
                        );
                    }
                    Some(Box::new(n))
                };
                let (s, en) = (bound(start), bound(end));
                let is_const = t.as_const().is_some()
                    && s.as_deref().is_none_or(|n| n.as_const().is_some())
                    && en.as_deref().is_none_or(|n| n.as_const().is_some());
                let node = Node::Slice(Box::new(t), s, en, e.range);
                let ty = match tt.non_null() {
                    Type::Null => Type::Null,
                    _ => tt.clone(),
                };
                (if is_const { fold(node) } else { node }, ty)
            }
            ExprKind::JsonPath(text) => match JsonPath::compile(text) {
                Ok(q) => {
                    let ty = if q.is_singular() {
                        Type::Any
                    } else {
                        Type::array(Type::Any)
                    };
                    (Node::JsonPath(Box::new(q), e.range), ty)
                }
                Err(err) => {
                    let range = match err.offset {
                        Some(o) => {
                            let start = (e.range.start as usize + o).min(e.range.end as usize);
                            let start = start.min((e.range.end as usize).saturating_sub(1));
                            TextRange::new(start.max(e.range.start as usize), e.range.end as usize)
                        }
                        None => e.range,
                    };
                    self.error(
                        CheckError::new(Code::InvalidJsonPath, range, err.message)
                            .label("not valid JSONPath")
                            .help(Some(
                                "examples: `$.user.emails[0]`, `$.items[*].sku`, `$..id`, \
                                 `$.items[?@.qty > 1]`"
                                    .into(),
                            )),
                    );
                    PLACEHOLDER()
                }
            },
            ExprKind::Unary(op, operand) => {
                let (n, t) = self.expr(operand);
                let k = kind(&t);
                let (node, ty) = match op {
                    UnaryOp::Not => {
                        if !kind_in(k, &[Kind::Bool]) || k == Kind::Null {
                            self.op_error(
                                operand.range,
                                format!("operator `!` needs a bool, found {t}"),
                                t.to_string(),
                            );
                        }
                        (Node::Not(Box::new(n), e.range), Type::Bool)
                    }
                    UnaryOp::Neg => {
                        if !kind_in(k, &[Kind::Number]) {
                            self.op_error(
                                operand.range,
                                format!("operator `-` needs a number, found {t}"),
                                t.to_string(),
                            );
                        }
                        let ty = if t.is_optional() {
                            Type::optional(Type::Number)
                        } else {
                            Type::Number
                        };
                        (Node::Neg(Box::new(n), e.range), ty)
                    }
                };
                let is_const = match &node {
                    Node::Not(n, _) | Node::Neg(n, _) => n.as_const().is_some(),
                    _ => false,
                };
                (if is_const { fold(node) } else { node }, ty)
            }
            ExprKind::Binary(op, a, b) => self.binary(e, *op, a, b),
            ExprKind::If(c, a, b) => {
                let (cn, ct) = self.expr(c);
                if !ct.fits_ignoring_null(&Type::Bool) {
                    self.error(
                        CheckError::new(
                            Code::NonBooleanCondition,
                            c.range,
                            format!("the condition of `if` must be a bool, found {ct}"),
                        )
                        .label(format!("this is {ct}"))
                        .help(Some(
                            "compare explicitly, e.g. `if x != null then ...` or `if x > 0 then ...`"
                                .into(),
                        )),
                    );
                }
                let (an, at) = self.expr(a);
                let (bn, bt) = self.expr(b);
                let ty = at.join(&bt);
                let node = match cn.as_const() {
                    Some(Value::Bool(true)) => an,
                    Some(Value::Bool(false)) => bn,
                    _ => Node::If(Box::new(cn), Box::new(an), Box::new(bn), c.range),
                };
                (node, ty)
            }
            ExprKind::Call {
                name,
                name_range,
                args,
                piped,
            } if name == "try" => self.try_call(e, *name_range, args, *piped),
            ExprKind::Call {
                name,
                name_range,
                args,
                piped,
            } => self.call(e, name, *name_range, args, *piped),
            ExprKind::Interpolated(parts) => self.interpolated(parts),
        }
    }

    /// `"a${x}b"`: each part must be text, a number or a bool; any nullable part makes the
    /// result nullable (a null part makes the string null).
    fn interpolated(&mut self, parts: &[StrPart]) -> (Node, Type) {
        let mut nodes = Vec::with_capacity(parts.len());
        let mut optional = false;
        for part in parts {
            match part {
                StrPart::Text(t) => nodes.push(Part::Text(t.as_str().into())),
                StrPart::Expr(x) => {
                    let (n, t) = self.expr(x);
                    let k = kind(&t);
                    if !kind_in(k, &[Kind::String, Kind::Number, Kind::Bool]) {
                        let help = match k {
                            Kind::Array => "join the items, e.g. `${join(tags, \", \")}`",
                            _ => "write it as JSON with `${to_json(...)}`, or pick a field",
                        };
                        self.error(
                            CheckError::new(
                                Code::InterpolationType,
                                x.range,
                                format!("cannot put {t} into a string"),
                            )
                            .label(format!("this is {t}"))
                            .help(Some(help.into())),
                        );
                    }
                    optional |= nullable(&t);
                    nodes.push(Part::Expr(n, x.range));
                }
            }
        }
        let is_const = nodes.iter().all(|p| match p {
            Part::Text(_) => true,
            Part::Expr(n, _) => n.as_const().is_some(),
        });
        let node = Node::Interpolated(nodes);
        let ty = if optional {
            Type::optional(Type::String)
        } else {
            Type::String
        };
        (if is_const { fold(node) } else { node }, ty)
    }

    /// `try(value, fallback)`: `fallback` when evaluating `value` fails for this record.
    fn try_call(
        &mut self,
        e: &Expr,
        name_range: TextRange,
        args: &[Expr],
        piped: bool,
    ) -> (Node, Type) {
        let [value, fallback] = args else {
            let mut help = "signature: try(value: any, fallback: any) -> any".to_string();
            if piped {
                help.push_str("; the value before `|` is the first argument");
            }
            self.error(
                CheckError::new(
                    Code::WrongArity,
                    TextRange {
                        start: name_range.start,
                        end: e.range.end,
                    },
                    format!(
                        "`try` takes 2 arguments but {}",
                        if args.len() == 1 {
                            "1 was given".to_string()
                        } else {
                            format!("{} were given", args.len())
                        }
                    ),
                )
                .label("expected 2 arguments")
                .help(Some(help)),
            );
            for a in args {
                self.expr(a);
            }
            return PLACEHOLDER();
        };
        let (vn, vt) = self.expr(value);
        let (fnode, ft) = self.expr(fallback);
        let ty = vt.join(&ft);
        // A constant cannot fail.
        let node = match vn.as_const() {
            Some(_) => vn,
            None => Node::Try(Box::new(vn), Box::new(fnode)),
        };
        (node, ty)
    }

    /// Names followed by constant field and index steps.
    fn path(&mut self, e: &Expr) -> Option<(Node, Type)> {
        let mut steps_rev: Vec<(Step, TextRange)> = Vec::new();
        let mut cur = e;
        let (name, name_range) = loop {
            match &cur.kind {
                ExprKind::Name(n) => break (n, cur.range),
                ExprKind::Field(t, f) => {
                    steps_rev.push((Step::Field(f.as_str().into()), cur.range));
                    cur = t;
                }
                ExprKind::Index(t, i) => {
                    match &i.kind {
                        ExprKind::Literal(Value::Number(n)) => {
                            steps_rev.push((Step::Index(n.as_i64()?), cur.range));
                        }
                        ExprKind::Literal(Value::String(s)) => {
                            steps_rev.push((Step::Field(s.as_str().into()), cur.range));
                        }
                        _ => return None,
                    }
                    cur = t;
                }
                _ => return None,
            }
        };
        let Some((root, mut ty, mut steps)) = self.resolve(name, name_range) else {
            return Some(PLACEHOLDER());
        };
        for (step, range) in steps_rev.into_iter().rev() {
            let next = match &step {
                Step::Field(f) => field_type(&ty, f),
                Step::Index(_) => index_type(&ty, &Type::Number),
            };
            match next {
                Ok(t) => ty = t,
                Err((m, h)) => {
                    self.error(
                        CheckError::new(Code::OperatorType, range, m)
                            .label(ty.to_string())
                            .help(h),
                    );
                    return Some(PLACEHOLDER());
                }
            }
            steps.push(step);
        }
        Some((
            Node::Path {
                root,
                name: name.as_str().into(),
                steps: steps.into_boxed_slice(),
                range: e.range,
            },
            ty,
        ))
    }

    /// A root name: a binding, else a record field. `None` after reporting an unknown field.
    fn resolve(&mut self, name: &str, range: TextRange) -> Option<(Root, Type, Vec<Step>)> {
        if let Some(slot) = self.scope.bindings.iter().position(|(n, _)| n == name) {
            let ty = self.scope.bindings[slot].1.clone();
            return Some((Root::Binding(slot), ty, Vec::new()));
        }
        let ty = match self.scope.record {
            None => Type::Any,
            Some(fields) => match fields.get(name) {
                Some(t) => t.clone(),
                None => {
                    let candidates = fields
                        .keys()
                        .map(String::as_str)
                        .chain(self.scope.bindings.iter().map(|(n, _)| n.as_str()));
                    let help = suggest(name, candidates).or_else(|| {
                        Some(format!(
                            "declared fields: {}",
                            fields.keys().cloned().collect::<Vec<_>>().join(", ")
                        ))
                        .filter(|_| !fields.is_empty() && fields.len() <= 12)
                    });
                    self.error(
                        CheckError::new(
                            Code::UnknownField,
                            range,
                            format!("unknown field `{name}`"),
                        )
                        .label("not in the record schema")
                        .help(help),
                    );
                    return None;
                }
            },
        };
        Some((Root::Record, ty, vec![Step::Field(name.into())]))
    }

    fn binary(&mut self, e: &Expr, op: BinaryOp, a: &Expr, b: &Expr) -> (Node, Type) {
        let (an, at) = self.expr(a);
        let (bn, bt) = self.expr(b);
        let (ka, kb) = (kind(&at), kind(&bt));
        let sym = op.symbol();
        let either_optional = at.is_optional() || bt.is_optional();
        let ty = match op {
            BinaryOp::Eq | BinaryOp::Ne => Type::Bool,
            BinaryOp::And | BinaryOp::Or => {
                for (k, t, r) in [(ka, &at, a.range), (kb, &bt, b.range)] {
                    if !kind_in(k, &[Kind::Bool]) {
                        self.op_error(
                            r,
                            format!("operator `{sym}` needs bools, found {t}"),
                            t.to_string(),
                        );
                    }
                }
                Type::Bool
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let mut ok = true;
                for (k, t, r) in [(ka, &at, a.range), (kb, &bt, b.range)] {
                    if !kind_in(k, &[Kind::Number, Kind::String]) {
                        ok = false;
                        self.op_error(
                            r,
                            format!("operator `{sym}` compares numbers or strings, found {t}"),
                            t.to_string(),
                        );
                    }
                }
                if ok
                    && matches!(
                        (ka, kb),
                        (Kind::Number, Kind::String) | (Kind::String, Kind::Number)
                    )
                {
                    self.op_error(
                        e.range,
                        format!("cannot compare {} with {} using `{sym}`", at, bt),
                        format!("{at} {sym} {bt}"),
                    );
                }
                Type::Bool
            }
            BinaryOp::Coalesce | BinaryOp::Otherwise => match ka {
                Kind::Null => bt.clone(),
                _ => at.non_null().join(&bt),
            },
            BinaryOp::In => {
                if !kind_in(kb, &[Kind::Array, Kind::Object, Kind::String]) {
                    self.op_error(
                        b.range,
                        format!("`in` needs an array, object or string on the right, found {bt}"),
                        bt.to_string(),
                    );
                } else if matches!(kb, Kind::String | Kind::Object) && !kind_in(ka, &[Kind::String])
                {
                    self.op_error(
                        a.range,
                        format!(
                            "`in` on {} needs a string on the left, found {at}",
                            if kb == Kind::String {
                                "a string"
                            } else {
                                "an object"
                            }
                        ),
                        at.to_string(),
                    );
                }
                Type::Bool
            }
            BinaryOp::Add => {
                let base = |k: Kind, t: &Type| -> Option<Type> {
                    match k {
                        Kind::Any | Kind::Null => None,
                        _ => Some(t.non_null().clone()),
                    }
                };
                let ty = match (base(ka, &at), base(kb, &bt)) {
                    (None, None) => Some(Type::Any),
                    // With one side unknown, a successful `+` still has the other's kind.
                    (Some(Type::Array(_)), None) | (None, Some(Type::Array(_))) => {
                        Some(Type::array(Type::Any))
                    }
                    (Some(t), None) | (None, Some(t))
                        if matches!(kind(&t), Kind::Number | Kind::String) =>
                    {
                        Some(t)
                    }
                    (Some(Type::Number), Some(Type::Number)) => Some(Type::Number),
                    (Some(Type::String), Some(Type::String)) => Some(Type::String),
                    (Some(Type::Array(x)), Some(Type::Array(y))) => Some(Type::array(x.join(&y))),
                    _ => None,
                };
                match ty {
                    Some(t) if either_optional => Type::optional(t),
                    Some(t) => t,
                    None => {
                        self.op_error(
                            e.range,
                            format!("cannot add {at} and {bt}"),
                            format!("{at} + {bt}"),
                        );
                        Type::Any
                    }
                }
            }
            BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
                for (k, t, r) in [(ka, &at, a.range), (kb, &bt, b.range)] {
                    if !kind_in(k, &[Kind::Number]) {
                        self.op_error(
                            r,
                            format!("operator `{sym}` needs numbers, found {t}"),
                            t.to_string(),
                        );
                    }
                }
                if either_optional {
                    Type::optional(Type::Number)
                } else {
                    Type::Number
                }
            }
        };
        let node = match (op, an.as_const()) {
            (BinaryOp::Coalesce, Some(Value::Null)) => bn,
            (BinaryOp::Coalesce, Some(_)) => an,
            (BinaryOp::Otherwise, Some(v)) if crate::functions::is_empty(v) => bn,
            (BinaryOp::Otherwise, Some(_)) => an,
            _ => {
                let is_const = all_const([&an, &bn]);
                let node = Node::Binary(op, Box::new(an), Box::new(bn), e.range);
                if is_const { fold(node) } else { node }
            }
        };
        (node, ty)
    }

    fn call(
        &mut self,
        e: &Expr,
        name: &str,
        name_range: TextRange,
        args: &[Expr],
        piped: bool,
    ) -> (Node, Type) {
        let errors_before = self.errors.len();
        let compiled: Vec<(Node, Type)> = args.iter().map(|a| self.expr(a)).collect();
        let registry = self.scope.registry;
        let Some(func) = registry.get(name) else {
            self.error(
                CheckError::new(
                    Code::UnknownFunction,
                    name_range,
                    format!("unknown function `{name}`"),
                )
                .label("not a known function")
                .help(suggest(name, registry.names())),
            );
            return PLACEHOLDER();
        };
        let sig = func.signature();
        let (min, max) = sig.arity();
        let n = args.len();
        if n < min || max.is_some_and(|m| n > m) {
            let expected = match max {
                Some(m) if m == min => plural(m, "argument"),
                Some(m) => format!("{min} to {m} arguments"),
                None => format!("at least {}", plural(min, "argument")),
            };
            let given = if n == 1 {
                "1 was given".to_string()
            } else {
                format!("{n} were given")
            };
            let mut help = format!("signature: {}", signature_text(name, &sig));
            if piped {
                help.push_str("; the value before `|` is the first argument");
            }
            self.error(
                CheckError::new(
                    Code::WrongArity,
                    TextRange {
                        start: name_range.start,
                        end: e.range.end,
                    },
                    format!("`{name}` takes {expected} but {given}"),
                )
                .label(format!("expected {expected}"))
                .help(Some(help)),
            );
            return PLACEHOLDER();
        }
        let mut rules = Vec::with_capacity(n);
        let mut optional_result = false;
        for (i, ((_, ty), arg)) in compiled.iter().zip(args).enumerate() {
            let Some(param) = sig.param(i) else {
                rules.push(ArgRule {
                    propagate_null: false,
                    check: None,
                });
                continue;
            };
            if !ty.fits_ignoring_null(&param.ty) {
                let which = if piped && i == 0 {
                    "the piped value".to_string()
                } else {
                    format!("argument {} (`{}`)", i + 1, param.name)
                };
                self.error(
                    CheckError::new(
                        Code::ArgumentType,
                        arg.range,
                        format!("`{name}` expects {} for {which}, found {ty}", param.ty),
                    )
                    .label(format!("expected {}, found {ty}", param.ty))
                    .help(Some(format!("signature: {}", signature_text(name, &sig)))),
                );
                continue;
            }
            let propagate_null = !param.ty.is_optional() && param.ty != Type::Any && nullable(ty);
            // An `any` argument may be null at run time too: the result may then be null.
            optional_result |= propagate_null && nullable(ty);
            rules.push(ArgRule {
                propagate_null,
                check: (!surely_fits(ty, &param.ty, true)).then(|| param.ty.clone()),
            });
        }
        if self.errors.len() > errors_before {
            return PLACEHOLDER();
        }
        let arg_types: Vec<Type> = compiled.iter().map(|(_, t)| t.clone()).collect();
        let mut ty = func.return_type(&arg_types);
        if optional_result {
            ty = Type::optional(ty);
        }
        let (nodes, _): (Vec<Node>, Vec<Type>) = compiled.into_iter().unzip();
        let consts: Vec<Option<&Value>> = nodes.iter().map(Node::as_const).collect();
        let prepared = match func.prepare(&consts) {
            Ok(p) => p,
            Err(message) => {
                let culprit = self.prepare_culprit(func.as_ref(), &consts, args);
                let range = culprit.map_or(e.range, |i| args[i].range);
                self.error(
                    CheckError::new(
                        Code::InvalidArgument,
                        range,
                        format!("invalid argument to `{name}`: {message}"),
                    )
                    .label(format!("rejected by `{name}`")),
                );
                return PLACEHOLDER();
            }
        };
        let call = Call {
            name: name.to_string(),
            func: func.clone(),
            prepared,
            args: nodes,
            rules,
            range: e.range,
            quiet: false,
        };
        (Node::Call(Box::new(call)), ty)
    }

    /// Which constant argument `prepare` rejected: the only constant, or the first one that
    /// fails on its own.
    fn prepare_culprit(
        &self,
        func: &dyn crate::functions::Function,
        consts: &[Option<&Value>],
        args: &[Expr],
    ) -> Option<usize> {
        let const_positions: Vec<usize> =
            (0..consts.len()).filter(|i| consts[*i].is_some()).collect();
        if let [only] = const_positions.as_slice() {
            return Some(*only);
        }
        let culprit = const_positions.iter().copied().find(|&i| {
            let alone: Vec<Option<&Value>> = (0..consts.len())
                .map(|j| if j == i { consts[j] } else { None })
                .collect();
            func.prepare(&alone).is_err()
        });
        culprit.filter(|i| *i < args.len())
    }
}

type TypeError = (String, Option<String>);

/// The type of `target.name`.
pub(crate) fn field_type(target: &Type, name: &str) -> Result<Type, TypeError> {
    match target.non_null() {
        Type::Any | Type::Object | Type::Optional(_) => Ok(Type::Any),
        Type::Null => Ok(Type::Null),
        other => Err((
            format!("cannot read field `{name}` of {other}"),
            Some("only objects have fields".into()),
        )),
    }
}

/// The type of `target[index]`.
pub(crate) fn index_type(target: &Type, index: &Type) -> Result<Type, TypeError> {
    let ik = kind(index);
    if !kind_in(ik, &[Kind::Number, Kind::String]) {
        return Err((
            format!("an index must be an integer or a string key, found {index}"),
            None,
        ));
    }
    match target.non_null() {
        Type::Any | Type::Optional(_) => Ok(Type::Any),
        Type::Null => Ok(Type::Null),
        Type::Array(elem) if ik != Kind::String => Ok(Type::optional((**elem).clone())),
        Type::Array(_) => Err((
            format!("cannot look up a string key in {}", target.non_null()),
            Some("arrays are indexed by position, e.g. `[0]`".into()),
        )),
        Type::Object if ik != Kind::Number => Ok(Type::Any),
        Type::Object => Err((
            "cannot index an object by position".to_string(),
            Some("use a field name, e.g. `x.name` or `x[\"name\"]`".into()),
        )),
        Type::String => Err((
            "cannot index a string".to_string(),
            Some("use a slice: `[0:1]` is the first character".into()),
        )),
        other => Err((format!("cannot index {other}"), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parse;
    use serde_json::json;

    #[test]
    fn runtime_checks_only_where_types_do_not_prove_the_parameter() {
        let s = Type::String;
        let arr = |t| Type::array(t);
        assert!(surely_fits(&s, &s, true));
        assert!(surely_fits(&Type::optional(s.clone()), &s, true));
        assert!(surely_fits(&Type::Null, &s, true));
        assert!(!surely_fits(&Type::Any, &s, true));
        assert!(!surely_fits(&arr(Type::Any), &arr(s.clone()), true));
        assert!(!surely_fits(
            &arr(Type::optional(s.clone())),
            &arr(s.clone()),
            true
        ));
        assert!(surely_fits(&arr(s.clone()), &arr(Type::Any), true));
        assert!(surely_fits(&Type::Number, &Type::Any, true));
    }

    #[test]
    fn bindings_resolve_before_record_fields() {
        let registry = Registry::builtin();
        let fields: BTreeMap<String, Type> = [("policy".to_string(), Type::String)].into();
        let bindings = [
            ("secrets".to_string(), Type::Object),
            ("policy".to_string(), Type::Object),
        ];
        let scope = Scope {
            registry: &registry,
            record: Some(&fields),
            bindings: &bindings,
        };
        let expr = parse("policy.limit").unwrap_or_else(|e| panic!("{e}"));
        let (compiled, ty) = compile(&expr, &scope).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ty, Type::Any);
        let record = json!({"policy": "not this"});
        let (secrets, policy) = (json!({}), json!({"limit": 5}));
        let clock = FixedClock::default_test();
        let env = Env {
            record: &record,
            bindings: &[&secrets, &policy],
            clock: &clock,
        };
        assert_eq!(compiled.eval(&env).map(Cow::into_owned), Ok(json!(5)));
        // A missing binding value is an error, not a panic.
        let env = Env::new(&record, &clock);
        assert!(compiled.eval(&env).is_err());
    }

    #[test]
    fn constants_fold() {
        let registry = Registry::builtin();
        let scope = Scope::new(&registry);
        for (src, value) in [
            ("1 + 2 * 3", json!(7)),
            ("[1, -2][1]", json!(-2)),
            ("if 1 > 2 then x else \"b\"", json!("b")),
            ("null ?? \"d\"", json!("d")),
        ] {
            let expr = parse(src).unwrap_or_else(|e| panic!("{e}"));
            let (compiled, _) = compile(&expr, &scope).unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(compiled.as_const(), Some(&value), "{src}");
        }
        let expr = parse("lower(\"A\")").unwrap_or_else(|e| panic!("{e}"));
        let (compiled, _) = compile(&expr, &scope).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(compiled.as_const(), None, "calls are not folded");
    }
}
