use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use crate::functions::{
    CallContext, Category, Example, FnError, Function, Param, Prepared, Signature, arg,
};
use crate::types::Type;

/// `uuid_v5(namespace, name)`: a name-based UUID, the same for the same inputs.
pub struct UuidV5;

fn namespace(text: &str) -> Result<Uuid, String> {
    match text {
        "dns" => Ok(Uuid::NAMESPACE_DNS),
        "url" => Ok(Uuid::NAMESPACE_URL),
        "oid" => Ok(Uuid::NAMESPACE_OID),
        "x500" => Ok(Uuid::NAMESPACE_X500),
        _ => Uuid::parse_str(text.trim()).map_err(|_| {
            format!("invalid namespace {text:?}: use a UUID or one of dns, url, oid, x500")
        }),
    }
}

impl Function for UuidV5 {
    fn name(&self) -> &str {
        "uuid_v5"
    }
    fn category(&self) -> Category {
        Category::Identity
    }
    fn doc(&self) -> &'static str {
        "A version 5 (SHA-1, name-based) UUID of `name` within `namespace`, in lower-case \
         hyphenated form. The same inputs always give the same UUID, which makes it a good \
         idempotency key: retries of one record reuse the key, and no two records share one. \
         `namespace` is a UUID (pick one per rule set) or one of the RFC 9562 names `dns`, \
         `url`, `oid`, `x500`; an invalid literal namespace is a lint error."
    }
    fn signature(&self) -> Signature {
        Signature::new(
            vec![
                Param::new("namespace", Type::String),
                Param::new("name", Type::String),
            ],
            Type::String,
        )
        .fallible()
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "an idempotency key for a record",
                source: r#"uuid_v5("a3bb189e-8bf9-3888-9912-ace4e6543002", join(["lead_to_hubspot", id], ":"))"#,
                record: r#"{"id": "1042"}"#,
                result: r#""ee1c7e6c-637d-5e45-91fd-71d3d0896c82""#,
            },
            Example {
                title: "a standard namespace",
                source: r#"uuid_v5("dns", "python.org")"#,
                record: "{}",
                result: r#""886313e1-3b8a-5372-9b90-0c9aee199e5d""#,
            },
            Example {
                title: "a namespace from a field must be a UUID",
                source: r#"uuid_v5(ns, "x")"#,
                record: r#"{"ns": "tenant-7"}"#,
                result: "error: invalid namespace",
            },
        ]
    }
    fn prepare(&self, consts: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        match consts.first().copied().flatten() {
            Some(Value::String(ns)) => Ok(Some(Arc::new(namespace(ns)?))),
            _ => Ok(None),
        }
    }
    fn call(&self, args: &[Cow<'_, Value>], cx: &CallContext<'_>) -> Result<Value, FnError> {
        let ns = match cx.prepared::<Uuid>() {
            Some(ns) => *ns,
            None => namespace(arg::str(args, 0)?).map_err(FnError)?,
        };
        let name = arg::str(args, 1)?;
        Ok(Value::String(
            Uuid::new_v5(&ns, name.as_bytes()).hyphenated().to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::testing::{call, call_dynamic};
    use serde_json::json;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&UuidV5);
    }

    #[test]
    fn namespaces() {
        let u = |ns: &str, name: &str| call_dynamic(&UuidV5, vec![json!(ns), json!(name)]);
        assert_eq!(
            u("url", "https://crm.example.com/contacts/1042"),
            Ok(json!("0f95c2ec-a1f5-5932-be77-77ff34e3f1e7"))
        );
        assert_eq!(
            u("6ba7b811-9dad-11d1-80b4-00c04fd430c8", "https://crm.example.com/contacts/1042"),
            u("url", "https://crm.example.com/contacts/1042")
        );
        assert_eq!(
            u("A3BB189E-8BF9-3888-9912-ACE4E6543002", "lead_to_hubspot:1042"),
            Ok(json!("ee1c7e6c-637d-5e45-91fd-71d3d0896c82"))
        );
        let e = call(&UuidV5, vec![json!("DNS"), json!("x")]).unwrap_err();
        assert!(e.0.starts_with("prepare: invalid namespace \"DNS\""));
    }
}
