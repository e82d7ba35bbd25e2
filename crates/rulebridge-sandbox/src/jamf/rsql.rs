//! RSQL subset: `field==value`, `!=`, `*` wildcards, `;`/`and` binding tighter than `,`/`or`.

use axum::response::Response;
use http::StatusCode;

use super::errors::api_error;

#[derive(Debug)]
pub(super) struct Rsql {
    /// OR of ANDs of (field, negated, value).
    pub(super) any: Vec<Vec<(String, bool, String)>>,
}

impl Rsql {
    pub(super) fn fields(&self) -> impl Iterator<Item = &str> {
        self.any.iter().flatten().map(|(f, _, _)| f.as_str())
    }

    pub(super) fn eval(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.any.iter().any(|all| {
            all.iter().all(|(f, neg, v)| {
                let hit = get(f).is_some_and(|s| wildcard(&v.to_lowercase(), &s.to_lowercase()));
                hit != *neg
            })
        })
    }
}

pub(super) fn wildcard(p: &str, t: &str) -> bool {
    let p: Vec<char> = p.chars().collect();
    let t: Vec<char> = t.chars().collect();
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

pub(super) fn split_top(s: &str, seps: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && let Some(sep) = seps.iter().find(|sep| rest.starts_with(**sep)) {
            out.push(std::mem::take(&mut cur));
            rest = &rest[sep.len()..];
            continue;
        }
        cur.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.push(cur);
    out
}

pub(super) fn parse_rsql(s: &str) -> Result<Rsql, Response> {
    let bad = || {
        api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_RSQL_FILTER",
            Some("filter"),
            &format!("Invalid RSQL filter: {s}"),
        )
    };
    let mut any = Vec::new();
    for disj in split_top(s, &[",", " or "]) {
        let mut all = Vec::new();
        for conj in split_top(&disj, &[";", " and "]) {
            let conj = conj.trim();
            let (field, neg, value) = if let Some((f, v)) = conj.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = conj.split_once("==") {
                (f, false, v)
            } else {
                return Err(bad());
            };
            let field = field.trim();
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            if field.is_empty() || field.contains(char::is_whitespace) {
                return Err(bad());
            }
            all.push((field.to_string(), neg, value.to_string()));
        }
        any.push(all);
    }
    Ok(Rsql { any })
}

pub(super) fn invalid_filter_field(field: &str) -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        "INVALID_RSQL_FILTER_FIELD",
        Some("filter"),
        &format!("{field} is not a valid filter field"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsql() {
        let f = parse_rsql("general.name==\"Mac-1\";hardware.serialNumber==C02*,udid==x")
            .ok()
            .unwrap();
        assert_eq!(f.any.len(), 2);
        let get = |k: &str| match k {
            "general.name" => Some("mac-1".to_string()),
            "hardware.serialNumber" => Some("C02ABC".to_string()),
            _ => None,
        };
        assert!(f.eval(&get));
        assert!(parse_rsql("general.name").is_err());
    }
}
