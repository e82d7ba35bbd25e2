//! Static types of expressions, checked at compile time.

use std::fmt;

use serde_json::Value;

/// The static type of an expression.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// Unknown until run time (e.g. a field of an undeclared record).
    Any,
    Null,
    Bool,
    Number,
    String,
    Array(Box<Type>),
    Object,
    /// `T` or null.
    Optional(Box<Type>),
}

impl Type {
    pub fn array(of: Type) -> Type {
        Type::Array(Box::new(of))
    }

    /// `T?`; optional of optional, of null or of any collapses.
    pub fn optional(of: Type) -> Type {
        match of {
            Type::Any | Type::Null | Type::Optional(_) => of,
            other => Type::Optional(Box::new(other)),
        }
    }

    /// The type without its optional wrapper.
    pub fn non_null(&self) -> &Type {
        match self {
            Type::Optional(t) => t,
            t => t,
        }
    }

    pub fn is_optional(&self) -> bool {
        matches!(self, Type::Optional(_) | Type::Null)
    }

    /// Whether a value of type `self` may be used where `expected` is required.
    ///
    /// `Any` is compatible both ways (checked at run time). An optional value is accepted where
    /// a non-optional one is expected only if `allow_null` — functions declare that per parameter.
    pub fn fits(&self, expected: &Type) -> bool {
        match (self, expected) {
            (Type::Any, _) | (_, Type::Any) => true,
            (Type::Null, Type::Optional(_) | Type::Null) => true,
            (Type::Optional(a), Type::Optional(b)) => a.fits(b),
            (a, Type::Optional(b)) => a.fits(b),
            (Type::Array(a), Type::Array(b)) => a.fits(b),
            (a, b) => a == b,
        }
    }

    /// Like [`fits`](Self::fits), but an optional `self` is accepted for a non-optional
    /// `expected` (the null case is then a runtime matter).
    pub fn fits_ignoring_null(&self, expected: &Type) -> bool {
        self.non_null().fits(expected.non_null()) || matches!(self, Type::Null)
    }

    /// The least type covering both (used for `if` branches and array literals).
    pub fn join(&self, other: &Type) -> Type {
        match (self, other) {
            (a, b) if a == b => a.clone(),
            (Type::Null, t) | (t, Type::Null) => Type::optional(t.clone()),
            (Type::Optional(a), b) | (b, Type::Optional(a)) => Type::optional(a.join(b)),
            (Type::Array(a), Type::Array(b)) => Type::array(a.join(b)),
            _ => Type::Any,
        }
    }

    /// The type of a concrete value.
    pub fn of(value: &Value) -> Type {
        match value {
            Value::Null => Type::Null,
            Value::Bool(_) => Type::Bool,
            Value::Number(_) => Type::Number,
            Value::String(_) => Type::String,
            Value::Array(items) => Type::array(
                items
                    .iter()
                    .map(Type::of)
                    .reduce(|a, b| a.join(&b))
                    .unwrap_or(Type::Any),
            ),
            Value::Object(_) => Type::Object,
        }
    }

    /// Parses a type name as written in rule files: `string`, `number?`, `array<string>`.
    pub fn parse(text: &str) -> Option<Type> {
        let text = text.trim();
        if let Some(inner) = text.strip_suffix('?') {
            return Type::parse(inner).map(Type::optional);
        }
        if let Some(inner) = text
            .strip_prefix("array<")
            .and_then(|t| t.strip_suffix('>'))
        {
            return Type::parse(inner).map(Type::array);
        }
        Some(match text {
            "any" => Type::Any,
            "null" => Type::Null,
            "bool" | "boolean" => Type::Bool,
            "number" | "integer" | "int" | "float" => Type::Number,
            "string" | "email" | "phone" | "url" | "date" | "datetime" | "enum" => Type::String,
            "array" => Type::array(Type::Any),
            "object" => Type::Object,
            _ => return None,
        })
    }

    /// The names [`Type::parse`] accepts, for did-you-mean hints.
    pub const NAMES: &'static [&'static str] = &[
        "any", "null", "bool", "boolean", "number", "integer", "string", "email", "phone", "url",
        "date", "datetime", "enum", "array", "object",
    ];

    /// Whether a runtime value conforms to this type.
    pub fn accepts(&self, value: &Value) -> bool {
        match (self, value) {
            (Type::Any, _) => true,
            (Type::Null, Value::Null) => true,
            (Type::Optional(_), Value::Null) => true,
            (Type::Optional(t), v) => t.accepts(v),
            (Type::Bool, Value::Bool(_)) => true,
            (Type::Number, Value::Number(_)) => true,
            (Type::String, Value::String(_)) => true,
            (Type::Object, Value::Object(_)) => true,
            (Type::Array(t), Value::Array(items)) => items.iter().all(|v| t.accepts(v)),
            _ => false,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Any => f.write_str("any"),
            Type::Null => f.write_str("null"),
            Type::Bool => f.write_str("bool"),
            Type::Number => f.write_str("number"),
            Type::String => f.write_str("string"),
            Type::Array(t) if **t == Type::Any => f.write_str("array"),
            Type::Array(t) => write!(f, "array<{t}>"),
            Type::Object => f.write_str("object"),
            Type::Optional(t) => write!(f, "{t}?"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_prints() {
        for t in [
            "string",
            "number?",
            "array<string>",
            "array",
            "object",
            "any",
        ] {
            assert_eq!(Type::parse(t).map(|t| t.to_string()).as_deref(), Some(t));
        }
        assert_eq!(Type::parse("strng"), None);
    }

    #[test]
    fn optional_fits_optional_only() {
        let s = Type::String;
        let os = Type::optional(Type::String);
        assert!(s.fits(&os));
        assert!(!os.fits(&s));
        assert!(os.fits_ignoring_null(&s));
        assert!(Type::Any.fits(&s));
    }

    #[test]
    fn join_widens() {
        assert_eq!(Type::String.join(&Type::Null), Type::optional(Type::String));
        assert_eq!(Type::String.join(&Type::Number), Type::Any);
        assert_eq!(Type::of(&json!(["a", "b"])), Type::array(Type::String));
    }

    #[test]
    fn accepts_values() {
        assert!(Type::optional(Type::Number).accepts(&json!(null)));
        assert!(!Type::Number.accepts(&json!("1")));
        assert!(Type::array(Type::String).accepts(&json!(["x"])));
    }
}
