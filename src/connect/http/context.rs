//! The values one request's templates read, and the bodies rendered from them.
//!
//! A batch request carries a hundred records' payloads, which the engine's jobs own. A
//! [`Context`] and a rendered body ([`Part`]) borrow them instead of copying them, and the
//! body is serialized straight from the borrowed values; only what a template computes is
//! owned.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

/// A context value or a rendered body: borrowed where it comes from the caller or the plan,
/// owned where a template computed it. Serializes as the JSON value it stands for.
#[derive(Clone, Debug)]
pub(crate) enum Part<'a> {
    Json(&'a Value),
    Str(&'a str),
    Owned(Value),
    List(Vec<Part<'a>>),
    /// An object, in its template's key order.
    Fields(Vec<(&'a str, Part<'a>)>),
    /// One value under several names (a batch's `items`, `inputs` and `records`).
    Ref(&'a Part<'a>),
}

impl Part<'_> {
    pub const NULL: Part<'static> = Part::Owned(Value::Null);
}

impl Serialize for Part<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Part::Json(v) => v.serialize(s),
            Part::Str(t) => s.serialize_str(t),
            Part::Owned(v) => v.serialize(s),
            Part::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Part::Fields(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Part::Ref(p) => p.serialize(s),
        }
    }
}

/// Where a lookup stands: in a part, in a borrowed value, or inside a part's owned value.
enum Node<'r, 'a> {
    Part(&'r Part<'a>),
    Json(&'a Value),
    Inner(&'r Value),
}

impl<'r, 'a: 'r> Node<'r, 'a> {
    /// The member `key` of an object; none for anything else (like [`Value::get`]).
    fn child(self, key: &str) -> Option<Node<'r, 'a>> {
        match self {
            Node::Json(v) => v.get(key).map(Node::Json),
            Node::Inner(v) => v.get(key).map(Node::Inner),
            Node::Part(p) => match p {
                Part::Json(v) => v.get(key).map(Node::Json),
                Part::Owned(v) => v.get(key).map(Node::Inner),
                Part::Fields(f) => f
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, p)| Node::Part(p)),
                Part::Ref(p) => Node::Part(p).child(key),
                Part::Str(_) | Part::List(_) => None,
            },
        }
    }

    fn into_part(self) -> Part<'a> {
        match self {
            Node::Part(p) => p.clone(),
            Node::Json(v) => Part::Json(v),
            Node::Inner(v) => Part::Owned(v.clone()),
        }
    }
}

/// The values one request's templates read: the connector's variables and secrets, under
/// the request's own entries.
pub(crate) struct Context<'a> {
    base: &'a Map<String, Value>,
    entries: Vec<(Cow<'a, str>, Part<'a>)>,
    jinja: OnceLock<minijinja::Value>,
}

impl<'a> Context<'a> {
    pub fn new(base: &'a Map<String, Value>) -> Self {
        Context {
            base,
            entries: Vec::new(),
            jinja: OnceLock::new(),
        }
    }

    /// The context with `name` set to `value` (over a variable or entry of that name).
    pub fn with(mut self, name: impl Into<Cow<'a, str>>, value: Part<'a>) -> Self {
        let name = name.into();
        match self.entries.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((name, value)),
        }
        self.jinja = OnceLock::new();
        self
    }

    /// A batch request's entries: its rendered items under the three names kits use
    /// (`items`, `inputs`, `records`) and the records' own payloads as `payloads`.
    pub fn with_batch(
        self,
        rendered: &'a Part<'a>,
        payloads: impl Iterator<Item = &'a Value>,
    ) -> Self {
        self.with("items", Part::Ref(rendered))
            .with("inputs", Part::Ref(rendered))
            .with("records", Part::Ref(rendered))
            .with("payloads", Part::List(payloads.map(Part::Json).collect()))
    }

    /// The same entries over `base` (variables, secrets read again).
    pub fn rebased<'b>(&self, base: &'b Map<String, Value>) -> Context<'b>
    where
        'a: 'b,
    {
        Context {
            base,
            entries: self.entries.clone(),
            jinja: OnceLock::new(),
        }
    }

    fn entry(&self, name: &str) -> Option<&Part<'a>> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v)
    }

    /// The value at `path` (`payload`, `first.tenant`); null when there is none.
    pub fn lookup(&self, path: &[String]) -> Part<'a> {
        let Some((root, rest)) = path.split_first() else {
            return Part::NULL;
        };
        let mut node = match (self.entry(root), self.base.get(root.as_str())) {
            (Some(p), _) => Node::Part(p),
            (None, Some(v)) => Node::Json(v),
            (None, None) => return Part::NULL,
        };
        for key in rest {
            match node.child(key) {
                Some(n) => node = n,
                None => return Part::NULL,
            }
        }
        node.into_part()
    }

    /// The context as a template value, converted once.
    pub fn jinja(&self) -> minijinja::Value {
        self.jinja
            .get_or_init(|| minijinja::Value::from(minijinja::value::Serde(self)))
            .clone()
    }
}

/// The whole context as one object: the variables in their order (an entry of the same name
/// in a variable's place), then the other entries.
impl Serialize for Context<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.base {
            match self.entry(k) {
                Some(p) => map.serialize_entry(k, p)?,
                None => map.serialize_entry(k, v)?,
            }
        }
        for (k, v) in &self.entries {
            if !self.base.contains_key(k.as_ref()) {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Map<String, Value> {
        match json!({"secrets": {"token": "t"}, "payload": "shadowed", "region": "eu"}) {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    #[test]
    fn entries_cover_variables_and_borrow_payloads() {
        let base = base();
        let payload = json!({"email": "a@x.com", "tenant": {"id": 7}});
        let list = Part::List(vec![Part::Json(&payload)]);
        let cx = Context::new(&base)
            .with("payload", Part::Json(&payload))
            .with("items", Part::Ref(&list))
            .with("match", Part::Owned(json!({"email": "a@x.com"})));
        assert!(
            matches!(cx.lookup(&path("payload.tenant")), Part::Json(v) if *v == json!({"id": 7}))
        );
        assert!(matches!(cx.lookup(&path("secrets.token")), Part::Json(v) if *v == json!("t")));
        assert!(matches!(cx.lookup(&path("match.email")), Part::Owned(v) if v == json!("a@x.com")));
        assert!(matches!(
            cx.lookup(&path("payload.nope")),
            Part::Owned(Value::Null)
        ));
        assert!(matches!(
            cx.lookup(&path("items.email")),
            Part::Owned(Value::Null)
        ));
        let whole = serde_json::to_value(&cx).map_err(|e| e.to_string());
        assert_eq!(
            whole,
            Ok(json!({
                "secrets": {"token": "t"},
                "payload": {"email": "a@x.com", "tenant": {"id": 7}},
                "region": "eu",
                "items": [{"email": "a@x.com", "tenant": {"id": 7}}],
                "match": {"email": "a@x.com"},
            }))
        );
    }

    #[test]
    fn parts_serialize_as_their_values() {
        let payload = json!({"b": 1, "a": [true, null]});
        let body = Part::Fields(vec![
            (
                "inputs",
                Part::List(vec![Part::Json(&payload), Part::Str("k")]),
            ),
            ("n", Part::Owned(json!(2.5))),
        ]);
        let text = serde_json::to_string(&body).map_err(|e| e.to_string());
        assert_eq!(
            text.as_deref(),
            Ok(r#"{"inputs":[{"b":1,"a":[true,null]},"k"],"n":2.5}"#)
        );
    }
}
