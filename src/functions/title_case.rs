use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `title_case(s)`: capitalises each word, lower-cases the rest.
pub struct TitleCase;

fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // Letters seen in the current word; `None` between words.
    let mut word_len: Option<usize> = None;
    for c in s.chars() {
        if c.is_alphanumeric() {
            match word_len {
                None => out.extend(c.to_uppercase()),
                Some(_) => out.extend(c.to_lowercase()),
            }
            word_len = Some(word_len.map_or(1, |n| n + 1));
        } else if (c == '\'' || c == '’') && word_len.is_some() {
            // O'Brien, d'Arc, but don't: a new word only after a one-letter prefix.
            out.push(c);
            word_len = if word_len == Some(1) { None } else { word_len };
        } else {
            out.push(c);
            word_len = None;
        }
    }
    out
}

impl Function for TitleCase {
    fn name(&self) -> &str {
        "title_case"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Upper-cases the first letter of every word and lower-cases the others, for names typed \
         in all capitals or none. Words are separated by anything that is not a letter or a \
         digit; an apostrophe after a single letter starts a new word (`O'Brien`), otherwise it \
         does not (`Don't`). Names such as `McDonald` cannot be recovered from `MCDONALD`."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::String)], Type::String)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a name in capitals",
                source: "title_case(name)",
                record: r#"{"name": "ADA KING-LOVELACE"}"#,
                result: r#""Ada King-Lovelace""#,
            },
            Example {
                title: "apostrophes",
                source: r#"title_case("o'brien's café")"#,
                record: "{}",
                result: r#""O'Brien's Café""#,
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(Value::String(title_case(arg::str(args, 0)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&TitleCase);
    }

    #[test]
    fn words() {
        assert_eq!(title_case("jean-luc  PICARD"), "Jean-Luc  Picard");
        assert_eq!(title_case("DON'T STOP"), "Don't Stop");
        assert_eq!(title_case("d’arc"), "D’Arc");
        assert_eq!(title_case("3rd avenue"), "3rd Avenue");
        assert_eq!(title_case("'quoted'"), "'Quoted'");
        assert_eq!(title_case("ÉMILE ßtraße"), "Émile SStraße");
        assert_eq!(title_case(""), "");
    }
}
