//! The part of a JSON response that is read: a successful batch answer is parsed into only
//! the members its results are read from (ids, `new`, the identity, whole error items), and
//! every other member is skipped without being built. A vendor answers each upserted record
//! with all its properties and timestamps, which the engine never reads.
//!
//! A shape is built from member paths ([`Step`]s); a path's last node is kept whole. The
//! projection of a document selects, for each kept path, exactly what the full document
//! would (the tests check it against [`member_path::select`](crate::plan::member_path)).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::plan::member_path::Step;

/// Which members of a document to build.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Shape {
    /// The node is kept with everything under it.
    whole: bool,
    /// Named members and what to keep of them (with `all`'s shape merged in).
    members: Vec<(String, Shape)>,
    /// What to keep of every element of an array and of every other member of an object.
    all: Option<Box<Shape>>,
}

impl Shape {
    /// A shape that keeps what each path selects, whole.
    pub fn of<'p>(paths: impl IntoIterator<Item = &'p [Step]>) -> Shape {
        let mut shape = Shape::default();
        for steps in paths {
            shape.keep(steps);
        }
        shape.settle();
        shape
    }

    fn keep(&mut self, steps: &[Step]) {
        let Some((first, rest)) = steps.split_first() else {
            self.whole = true;
            return;
        };
        let child = match first {
            Step::All => self.all.get_or_insert_with(Box::default),
            Step::Name(n) => {
                let at = match self.members.iter().position(|(m, _)| m == n) {
                    Some(at) => at,
                    None => {
                        self.members.push((n.clone(), Shape::default()));
                        self.members.len() - 1
                    }
                };
                &mut self.members[at].1
            }
        };
        child.keep(rest);
    }

    /// Folds `all` into each named member (a wildcard selects named members too), so the
    /// parse looks one child up per member.
    fn settle(&mut self) {
        if let Some(all) = &mut self.all {
            all.settle();
        }
        for (_, member) in &mut self.members {
            if let Some(all) = &self.all {
                member.merge(all);
            }
            member.settle();
        }
    }

    fn merge(&mut self, other: &Shape) {
        self.whole |= other.whole;
        for (name, theirs) in &other.members {
            match self.members.iter_mut().find(|(m, _)| m == name) {
                Some((_, mine)) => mine.merge(theirs),
                None => self.members.push((name.clone(), theirs.clone())),
            }
        }
        match (&mut self.all, &other.all) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.all = Some(theirs.clone()),
            _ => {}
        }
    }

    fn member(&self, name: &str) -> Option<&Shape> {
        self.members
            .iter()
            .find(|(m, _)| m == name)
            .map(|(_, s)| s)
            .or(self.all.as_deref())
    }

    /// Parses `bytes` keeping only this shape's members.
    pub fn parse(&self, bytes: &[u8]) -> serde_json::Result<Value> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = self.deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    }
}

impl<'de> DeserializeSeed<'de> for &Shape {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.whole {
            Value::deserialize(d)
        } else {
            d.deserialize_any(ShapeVisitor(self))
        }
    }
}

struct ShapeVisitor<'s>(&'s Shape);

impl<'de> Visitor<'de> for ShapeVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        match self.0.all.as_deref() {
            Some(element) => {
                while let Some(v) = seq.next_element_seed(element)? {
                    out.push(v);
                }
            }
            // No path reads into this array's elements.
            None => while seq.next_element::<IgnoredAny>()?.is_some() {},
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(Key(key)) = map.next_key()? {
            match self.0.member(&key) {
                Some(child) => {
                    let v = map.next_value_seed(child)?;
                    out.insert(key.into_owned(), v);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// A member name, borrowed from the input unless it holds escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }

            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::member_path::{parse, select};
    use serde_json::json;

    fn shape(paths: &[&str]) -> Shape {
        let steps: Vec<Vec<Step>> = paths
            .iter()
            .map(|p| parse(p).unwrap_or_else(|| panic!("{p} is a member path")))
            .collect();
        Shape::of(steps.iter().map(Vec::as_slice))
    }

    /// A HubSpot batch upsert answer (its reference's example, trimmed).
    fn upsert_answer() -> Value {
        json!({
            "status": "COMPLETE",
            "results": [
                {"id": "101", "new": true, "createdAt": "2026-01-01T00:00:00Z", "archived": false,
                 "properties": {"email": "a@x.com", "firstname": "A", "createdate": "2026", "hs_object_id": "101"}},
                {"id": 102, "new": false,
                 "properties": {"email": "b@x.com", "lastname": "B\u{e9}", "nested": {"deep": [1, 2]}}}
            ],
            "errors": [{"status": "error", "message": "bad", "context": {"ids": ["c@x.com"]}, "extra": {"k": 1}}],
            "startedAt": "2026-01-01T00:00:00Z",
            "numbers": [1, -2, 3.5, 18446744073709551615u64]
        })
    }

    /// Whatever a kept path selects from the projection, it selects from the whole
    /// document too, and the other way round.
    #[test]
    fn a_projection_selects_what_the_document_does() {
        let docs = [
            upsert_answer(),
            json!([{"id": "x", "new": true, "junk": {"a": 1}}, {"id": "y"}, 7, "s", null]),
            json!({"results": {"a": {"id": 1, "junk": 2}, "b": {"id": 2}}}),
            json!("text"),
            json!(null),
            json!({"results": []}),
        ];
        let sets: [&[&str]; 5] = [
            &[
                "$.results[*].id",
                "$.results[*].new",
                "$.results[*].properties.email",
                "$.errors",
            ],
            &["$[*].id", "$.results[*].id", "$.errors"],
            &["$.*.id", "$.results.*.properties"],
            &["$.results[*]", "$.results[*].id"],
            &["$"],
        ];
        for doc in &docs {
            let bytes = serde_json::to_vec(doc).expect("json");
            for paths in sets {
                let projected = shape(paths).parse(&bytes).expect("parses");
                for p in paths {
                    let steps = parse(p).expect("member path");
                    let (mut want, mut got) = (Vec::new(), Vec::new());
                    select(&steps, doc, &mut want);
                    select(&steps, &projected, &mut got);
                    assert_eq!(got, want, "{p} over {doc}");
                }
            }
        }
    }

    #[test]
    fn members_no_path_reads_are_not_built() {
        let bytes = serde_json::to_vec(&upsert_answer()).expect("json");
        let projected = shape(&[
            "$.results[*].id",
            "$.results[*].new",
            "$.results[*].properties.email",
            "$.errors",
        ])
        .parse(&bytes)
        .expect("parses");
        assert_eq!(
            projected,
            json!({
                "results": [
                    {"id": "101", "new": true, "properties": {"email": "a@x.com"}},
                    {"id": 102, "new": false, "properties": {"email": "b@x.com"}}
                ],
                "errors": [{"status": "error", "message": "bad", "context": {"ids": ["c@x.com"]}, "extra": {"k": 1}}]
            })
        );
    }

    #[test]
    fn escaped_names_and_values_are_read() {
        let bytes =
            br#"{"re\u0073ults": [{"id": "a\"b", "skip\u00e9": [1, {"x": "\ud83d\ude00"}]}]}"#;
        let projected = shape(&["$.results[*].id"]).parse(bytes).expect("parses");
        assert_eq!(projected, json!({"results": [{"id": "a\"b"}]}));
    }

    #[test]
    fn bad_json_is_an_error_even_where_it_is_skipped() {
        let s = shape(&["$.results[*].id"]);
        for bad in [
            &b"{\"junk\": [1, 2"[..],
            b"{\"results\": []} trailing",
            b"{\"junk\": tru}",
            b"",
        ] {
            assert!(s.parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_wildcard_reaches_named_members_too() {
        let s = shape(&["$.*.id", "$.results.new"]);
        let projected = s
            .parse(br#"{"results": {"id": 1, "new": true, "x": 2}, "other": {"id": 3, "y": 4}}"#)
            .expect("parses");
        assert_eq!(
            projected,
            json!({"results": {"id": 1, "new": true}, "other": {"id": 3}})
        );
    }
}
