//! The builtin function library, one file per function.
//!
//! Every function declares a [`Signature`] that the type checker uses, documentation, and
//! [`Example`]s that are both rendered into the generated docs and run as tests.
//!
//! # Null propagation
//! When a parameter's declared type is not optional and the argument is `null` at run time, the
//! call returns `null` without running the function (`lower(null)` is `null`), and the type
//! checker makes the result type optional. Functions that handle null themselves (`coalesce`,
//! `default`, `is_empty`, ...) declare parameters typed `T?` or `any`: such parameters receive
//! null ([`Param::accepts_null`]).
//!
//! # Compile once
//! [`Function::prepare`] sees the literal arguments of a call site once, at compile time: regex
//! functions compile their pattern there, date functions their format, `fernet_*` their key, so
//! that an invalid constant is a lint error and the per-record call does no parsing.
//!
//! # Custom functions
//! An embedding service implements [`Function`] and registers it with
//! [`Registry::register`]; custom functions are type-checked like builtins.

use std::any::Any;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::types::Type;

pub mod clock;
pub use clock::{Clock, FixedClock, SystemClock};

pub mod docs;

mod bytes;
mod common;
mod dates;
mod pattern;
mod phone;

// The evaluator shares these rules: `?|` is empty-aware like `default`, and `${}` renders
// scalars like `to_string`.
pub(crate) use common::{lower, scalar_text};
pub(crate) use is_empty::is_empty;

#[cfg(test)]
pub(crate) mod testing;

/// A function's parameter.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: &'static str,
    /// Declared type. A non-optional type means null arguments propagate (see module docs).
    pub ty: Type,
    /// The argument may be left out (only trailing parameters).
    pub optional: bool,
}

impl Param {
    pub fn new(name: &'static str, ty: Type) -> Self {
        Param {
            name,
            ty,
            optional: false,
        }
    }

    /// A trailing parameter that may be omitted.
    pub fn opt(name: &'static str, ty: Type) -> Self {
        Param {
            name,
            ty,
            optional: true,
        }
    }

    /// Whether a null argument reaches the function. When false, a null argument makes the
    /// call evaluate to null without running the function.
    pub fn accepts_null(&self) -> bool {
        self.ty.is_optional() || self.ty == Type::Any
    }
}

/// What a function accepts and returns.
#[derive(Clone, Debug)]
pub struct Signature {
    pub params: Vec<Param>,
    /// A parameter that may repeat after `params` (e.g. `coalesce(a, b, c, ...)`).
    pub variadic: Option<Param>,
    pub returns: Type,
    /// The function can fail on some inputs of the right type (e.g. `to_number("abc")`); such a
    /// failure is a per-record error naming the rule and target field.
    pub fallible: bool,
}

impl Signature {
    pub fn new(params: Vec<Param>, returns: Type) -> Self {
        Signature {
            params,
            variadic: None,
            returns,
            fallible: false,
        }
    }

    pub fn fallible(mut self) -> Self {
        self.fallible = true;
        self
    }

    pub fn variadic(mut self, param: Param) -> Self {
        self.variadic = Some(param);
        self
    }

    /// Smallest and largest accepted argument count (`None`: unbounded).
    pub fn arity(&self) -> (usize, Option<usize>) {
        let min = self.params.iter().filter(|p| !p.optional).count();
        let max = if self.variadic.is_some() {
            None
        } else {
            Some(self.params.len())
        };
        (min, max)
    }

    /// The declared parameter at position `i`, following a variadic tail.
    pub fn param(&self, i: usize) -> Option<&Param> {
        self.params.get(i).or(self.variadic.as_ref())
    }
}

/// Which part of the library a function belongs to (groups the generated docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    String,
    Null,
    Number,
    Date,
    Collection,
    Encoding,
    Identity,
    Json,
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Category::String => "Strings",
            Category::Null => "Null handling",
            Category::Number => "Numbers",
            Category::Date => "Dates",
            Category::Collection => "Collections",
            Category::Encoding => "Encoding and cryptography",
            Category::Identity => "Identity",
            Category::Json => "JSON",
        })
    }
}

/// A documented example that also runs as a test.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    pub title: &'static str,
    /// An expression, e.g. `lower("ADA@Example.com")`.
    pub source: &'static str,
    /// The record the expression runs against, as JSON (`{}` when fields are not used).
    pub record: &'static str,
    /// The expected result as JSON, or `error: <text the error contains>`.
    pub result: &'static str,
}

/// State a function computed once, at compile time, from constant arguments
/// (e.g. a compiled regex). Passed back on every call.
pub type Prepared = Arc<dyn Any + Send + Sync>;

/// What a call sees besides its arguments.
pub struct CallContext<'a> {
    pub clock: &'a dyn Clock,
    pub prepared: Option<&'a Prepared>,
}

impl CallContext<'_> {
    /// The prepared state, downcast to the type the function stored.
    pub fn prepared<T: 'static>(&self) -> Option<&T> {
        self.prepared.and_then(|p| p.downcast_ref::<T>())
    }
}

/// A runtime failure of one call; the engine adds the location and target field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FnError(pub String);

impl FnError {
    pub fn new(msg: impl Into<String>) -> Self {
        FnError(msg.into())
    }
}

/// A function callable from expressions.
pub trait Function: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn category(&self) -> Category;
    /// One paragraph of documentation (Markdown).
    fn doc(&self) -> &'static str;
    fn signature(&self) -> Signature;
    fn examples(&self) -> &'static [Example] {
        &[]
    }

    /// Whether the result depends on the engine's clock (`now()`). A payload field computed
    /// from the clock alone is a time stamp: it does not make a record changed.
    fn reads_clock(&self) -> bool {
        false
    }

    /// Whether the result differs from call to call for the same arguments (a ciphertext
    /// with a random IV). A payload field made with it cannot tell whether the record
    /// changed; the ledger compares the input record instead (see `FlowPlan::randomized`).
    fn randomized(&self) -> bool {
        false
    }

    /// The return type for these (already checked) argument types; refine the declared one,
    /// e.g. `first(array<string>)` is `string?`.
    fn return_type(&self, _args: &[Type]) -> Type {
        self.signature().returns
    }

    /// Validates constant arguments at compile time and precomputes state from them.
    /// `consts[i]` is `Some` when argument `i` is a literal. An `Err` becomes diagnostic RB1009.
    fn prepare(&self, _consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        Ok(None)
    }

    /// Runs the function. Arguments have been checked against the signature (nulls for
    /// non-optional parameters never arrive here).
    fn call(&self, args: &[Cow<'_, Value>], cx: &CallContext<'_>) -> Result<Value, FnError>;

    /// [`Function::call`], free to answer with one of its borrowed arguments unchanged
    /// instead of a copy of it (`trim` of a string with no surrounding white space).
    fn call_cow<'a>(
        &self,
        args: &[Cow<'a, Value>],
        cx: &CallContext<'_>,
    ) -> Result<Cow<'a, Value>, FnError> {
        self.call(args, cx).map(Cow::Owned)
    }
}

/// The functions available to a rule set: the builtins plus any registered by the embedder.
#[derive(Clone)]
pub struct Registry {
    functions: BTreeMap<String, Arc<dyn Function>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.functions.keys()).finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// An empty registry (no builtins).
    pub fn empty() -> Self {
        Registry {
            functions: BTreeMap::new(),
        }
    }

    /// All builtin functions.
    pub fn builtin() -> Self {
        let mut r = Self::empty();
        for f in builtins::all() {
            r.register(f);
        }
        r
    }

    /// Adds (or replaces) a function.
    pub fn register(&mut self, f: Arc<dyn Function>) {
        self.functions.insert(f.name().to_string(), f);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Function>> {
        self.functions.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.functions.keys().map(|k| k.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Function>> {
        self.functions.values()
    }

    pub fn len(&self) -> usize {
        self.functions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }
}

/// A short name for a JSON value's type, for error messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Helpers for function bodies: typed access to checked arguments.
pub(crate) mod arg {
    use super::FnError;
    use serde_json::Value;
    use std::borrow::Cow;

    pub fn str<'v>(args: &'v [Cow<'_, Value>], i: usize) -> Result<&'v str, FnError> {
        match args.get(i).map(|a| a.as_ref()) {
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(FnError(format!(
                "argument {} must be a string, got {}",
                i + 1,
                super::type_name(v)
            ))),
            None => Err(FnError(format!("missing argument {}", i + 1))),
        }
    }

    pub fn num(args: &[Cow<'_, Value>], i: usize) -> Result<f64, FnError> {
        match args.get(i).map(|a| a.as_ref()) {
            Some(Value::Number(n)) => n
                .as_f64()
                .ok_or_else(|| FnError("number out of range".into())),
            Some(v) => Err(FnError(format!(
                "argument {} must be a number, got {}",
                i + 1,
                super::type_name(v)
            ))),
            None => Err(FnError(format!("missing argument {}", i + 1))),
        }
    }

    pub fn array<'v>(args: &'v [Cow<'_, Value>], i: usize) -> Result<&'v [Value], FnError> {
        match args.get(i).map(|a| a.as_ref()) {
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(FnError(format!(
                "argument {} must be an array, got {}",
                i + 1,
                super::type_name(v)
            ))),
            None => Err(FnError(format!("missing argument {}", i + 1))),
        }
    }

    /// A whole number (a fraction is an error), e.g. an index or a count of days.
    pub fn int(args: &[Cow<'_, Value>], i: usize) -> Result<i64, FnError> {
        let n = num(args, i)?;
        if n.fract() != 0.0 || n.abs() >= 9.007_199_254_740_992e15 {
            return Err(FnError(format!(
                "argument {} must be a whole number, got {n}",
                i + 1
            )));
        }
        Ok(n as i64)
    }

    pub fn object<'v>(
        args: &'v [Cow<'_, Value>],
        i: usize,
    ) -> Result<&'v serde_json::Map<String, Value>, FnError> {
        match args.get(i).map(|a| a.as_ref()) {
            Some(Value::Object(o)) => Ok(o),
            Some(v) => Err(FnError(format!(
                "argument {} must be an object, got {}",
                i + 1,
                super::type_name(v)
            ))),
            None => Err(FnError(format!("missing argument {}", i + 1))),
        }
    }

    static NULL: Value = Value::Null;

    /// Any argument, null when missing.
    pub fn any<'v>(args: &'v [Cow<'_, Value>], i: usize) -> &'v Value {
        args.get(i).map(|a| a.as_ref()).unwrap_or(&NULL)
    }

    /// An optional trailing argument, `None` when omitted or null.
    pub fn opt<'v>(args: &'v [Cow<'_, Value>], i: usize) -> Option<&'v Value> {
        args.get(i).map(|a| a.as_ref()).filter(|v| !v.is_null())
    }

    /// An optional trailing string argument, `None` when omitted or null.
    pub fn opt_str<'v>(args: &'v [Cow<'_, Value>], i: usize) -> Result<Option<&'v str>, FnError> {
        match opt(args, i) {
            None => Ok(None),
            Some(_) => str(args, i).map(Some),
        }
    }
}

/// Converts an `f64` result to a JSON number, integers without a fraction.
pub fn number(n: f64) -> Result<Value, FnError> {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        Ok(Value::from(n as i64))
    } else {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| FnError(format!("{n} is not a finite number")))
    }
}

/// Declares the builtin function modules and lists them.
macro_rules! builtins {
    ($($module:ident :: $ty:ident),* $(,)?) => {
        $(mod $module;)*

        mod builtins {
            use std::sync::Arc;
            use super::Function;

            /// Every builtin function.
            pub fn all() -> Vec<Arc<dyn Function>> {
                vec![$(Arc::new(super::$module::$ty)),*]
            }
        }
    };
}

builtins! {
    // Strings
    lower::Lower,
    upper::Upper,
    trim::Trim,
    split::Split,
    join::Join,
    replace::Replace,
    regex_match::RegexMatch,
    regex_capture::RegexCapture,
    regex_replace::RegexReplace,
    substring::Substring,
    starts_with::StartsWith,
    ends_with::EndsWith,
    contains::Contains,
    title_case::TitleCase,
    slugify::Slugify,
    truncate::Truncate,
    pad_start::PadStart,
    to_string::ToString,
    // Null handling
    coalesce::Coalesce,
    default::Default,
    is_empty::IsEmpty,
    is_null::IsNull,
    // Numbers
    to_number::ToNumber,
    round::Round,
    min::Min,
    max::Max,
    abs::Abs,
    floor::Floor,
    ceil::Ceil,
    // Dates
    now::Now,
    parse_date::ParseDate,
    format_date::FormatDate,
    add_days::AddDays,
    date_diff::DateDiff,
    // Collections
    len::Len,
    first::First,
    last::Last,
    unique::Unique,
    sort::Sort,
    reverse::Reverse,
    flatten::Flatten,
    keys::Keys,
    values::Values,
    // Encoding and cryptography
    sha256::Sha256,
    hmac_sha256::HmacSha256,
    base64_encode::Base64Encode,
    base64_decode::Base64Decode,
    base64url_encode::Base64UrlEncode,
    base64url_decode::Base64UrlDecode,
    pbkdf2_sha256::Pbkdf2Sha256,
    fernet_encrypt::FernetEncrypt,
    fernet_decrypt::FernetDecrypt,
    // Identity
    normalize_email::NormalizeEmail,
    normalize_phone::NormalizePhone,
    uuid_v5::UuidV5,
    // JSON
    to_json::ToJson,
    json_dumps::JsonDumps,
    parse_json::ParseJson,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_is_complete_and_documented() {
        let registry = Registry::builtin();
        assert!(registry.len() >= 40, "only {} functions", registry.len());
        assert_eq!(
            registry.len(),
            builtins::all().len(),
            "two functions share a name"
        );
        let mut problems = Vec::new();
        for f in registry.iter() {
            if f.doc().trim().is_empty() {
                problems.push(format!("{}() has no doc", f.name()));
            }
            if f.examples().len() < 2 {
                problems.push(format!("{}() has fewer than 2 examples", f.name()));
            }
            let sig = f.signature();
            let optional_then_required = sig
                .params
                .windows(2)
                .any(|w| w[0].optional && !w[1].optional);
            if optional_then_required {
                problems.push(format!(
                    "{}(): an omittable parameter is not trailing",
                    f.name()
                ));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn names_are_snake_case() {
        for name in Registry::builtin().names() {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
        }
    }

    #[test]
    fn only_optional_and_any_parameters_see_null() {
        assert!(!Param::new("x", Type::String).accepts_null());
        assert!(Param::new("x", Type::optional(Type::String)).accepts_null());
        assert!(Param::new("x", Type::Any).accepts_null());
    }
}
