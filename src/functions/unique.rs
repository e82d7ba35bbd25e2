use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::Value;

use crate::functions::common::{array_type, equal, key};
use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// Arrays up to this long are deduplicated by pairwise comparison instead of hashing.
const SMALL: usize = 16;

/// `unique(array)`: drops repeated elements, keeping the first of each.
pub struct Unique;

impl Function for Unique {
    fn name(&self) -> &str {
        "unique"
    }
    fn category(&self) -> Category {
        Category::Collection
    }
    fn doc(&self) -> &'static str {
        "The array without repeated elements, in order of first occurrence. Elements are equal \
         as in `contains`: numbers by value (`1` and `1.0`), arrays and objects by content. \
         Comparison is exact: combine with `lower` or `trim` first to merge case or spacing \
         variants."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![Param::new("values", Type::array(Type::Any))],
            Type::array(Type::Any),
        )
    }
    fn return_type(&self, args: &[Type]) -> Type {
        array_type(args)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "repeated tags",
                source: "unique(tags)",
                record: r#"{"tags": ["vip", "new", "vip", "partner", "new"]}"#,
                result: r#"["vip", "new", "partner"]"#,
            },
            Example {
                title: "numbers compare by value",
                source: "unique([1, 1.0, 2])",
                record: "{}",
                result: "[1, 2]",
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        let values = arg::array(args, 0)?;
        if values.len() <= SMALL {
            // Comparing with the kept elements beats building a text key per element.
            let mut kept: Vec<Value> = Vec::with_capacity(values.len());
            for v in values {
                if !kept.iter().any(|k| equal(k, v)) {
                    kept.push(v.clone());
                }
            }
            return Ok(Value::Array(kept));
        }
        let mut seen = HashSet::with_capacity(values.len());
        Ok(Value::Array(
            values
                .iter()
                .filter(|v| seen.insert(key(v)))
                .cloned()
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, return_type};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Unique);
    }

    #[test]
    fn values() {
        assert_eq!(call(&Unique, vec![json!([])]), Ok(json!([])));
        assert_eq!(
            call(&Unique, vec![json!([null, {"a": 1}, null, {"a": 1.0}, "1", 1])]),
            Ok(json!([null, {"a": 1}, "1", 1]))
        );
        assert_eq!(
            return_type(&Unique, &[Type::array(Type::String)]),
            "array<string>"
        );
        assert_eq!(return_type(&Unique, &[Type::Any]), "array");
    }

    #[test]
    fn short_and_long_arrays_agree() {
        let items = json!([null, {"a": 1}, null, {"a": 1.0}, "1", 1, 1.0, [2], [2.0], "x", true]);
        let short = call(&Unique, vec![items.clone()]);
        // The same elements repeated past the small-array limit take the hashing path.
        let mut long = items.as_array().cloned().unwrap_or_default();
        long.extend(long.clone());
        assert!(long.len() > SMALL);
        assert_eq!(call(&Unique, vec![Value::Array(long)]), short);
        assert_eq!(
            short,
            Ok(json!([null, {"a": 1}, "1", 1, [2], "x", true]))
        );
    }
}
