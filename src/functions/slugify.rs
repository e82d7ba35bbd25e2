use std::borrow::Cow;

use serde_json::Value;

use crate::functions::{CallContext, Category, Example, FnError, Function, Param, Signature, arg};
use crate::types::Type;

/// `slugify(s)`: a lower-case, dash-separated identifier.
pub struct Slugify;

/// ASCII spelling of common accented Latin letters (already lower-cased).
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ğ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
        'ł' | 'ľ' | 'ĺ' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ř' | 'ŕ' => "r",
        'ś' | 'š' | 'ş' | 'ș' => "s",
        'ß' => "ss",
        'ť' | 'ţ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_dash = false;
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            match fold(c) {
                Some(ascii) => out.push_str(ascii),
                None => out.push(c),
            }
        } else if c != '\'' && c != '’' {
            // Apostrophes vanish ("O'Brien" is "obrien"); anything else separates words.
            pending_dash = true;
        }
    }
    out
}

impl Function for Slugify {
    fn name(&self) -> &str {
        "slugify"
    }
    fn category(&self) -> Category {
        Category::String
    }
    fn doc(&self) -> &'static str {
        "Turns text into an identifier for URLs, group names or external ids: lower-cased, \
         accented Latin letters spelled in ASCII (`é` → `e`, `ß` → `ss`), apostrophes dropped, \
         and every run of other non-alphanumeric characters replaced by a single `-`, with none \
         at either end. Letters of other scripts are kept (lower-cased)."
    }
    fn signature(&self) -> Signature {
        Signature::new(vec![Param::new("value", Type::String)], Type::String)
    }
    fn examples(&self) -> &'static [Example] {
        &[
            Example {
                title: "a department name",
                source: "slugify(department)",
                record: r#"{"department": "Research & Development"}"#,
                result: r#""research-development""#,
            },
            Example {
                title: "accents and punctuation",
                source: r#"slugify("  Crème Brûlée's (2024)! ")"#,
                record: "{}",
                result: r#""creme-brulees-2024""#,
            },
        ]
    }
    fn call(&self, args: &[Cow<'_, Value>], _cx: &CallContext<'_>) -> Result<Value, FnError> {
        Ok(Value::String(slugify(arg::str(args, 0)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples() {
        crate::functions::testing::run_examples(&Slugify);
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("O'Brien & Sons, Ltd."), "obrien-sons-ltd");
        assert_eq!(slugify("Straße_Nr.5"), "strasse-nr-5");
        assert_eq!(slugify("---"), "");
        assert_eq!(slugify("Ünïcödé ДОМ"), "unicode-дом");
        assert_eq!(slugify("ÆON"), "aeon");
    }
}
