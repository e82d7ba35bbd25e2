//! A SOQL subset for `GET /query`: SELECT fields FROM object WHERE conditions, LIMIT, paging.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::QUERY_BATCH;
use super::errors::err_nofields;
use super::schema::{SObject, sobject};
use super::state::{Ctx, Record, render};
use crate::util::{self, json as reply, query_get, query_pairs};

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Comma,
    LParen,
    RParen,
    Op(&'static str),
}

#[derive(Clone, Debug)]
pub(super) struct Lexed {
    pub(super) tok: Tok,
    /// 1-based column.
    pub(super) col: usize,
}

pub(super) fn lex(q: &str) -> Result<Vec<Lexed>, String> {
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == ',' {
            out.push(Lexed {
                tok: Tok::Comma,
                col,
            });
            i += 1;
        } else if c == '(' {
            out.push(Lexed {
                tok: Tok::LParen,
                col,
            });
            i += 1;
        } else if c == ')' {
            out.push(Lexed {
                tok: Tok::RParen,
                col,
            });
            i += 1;
        } else if c == '=' {
            out.push(Lexed {
                tok: Tok::Op("="),
                col,
            });
            i += 1;
        } else if (c == '!' && chars.get(i + 1) == Some(&'='))
            || (c == '<' && chars.get(i + 1) == Some(&'>'))
        {
            out.push(Lexed {
                tok: Tok::Op("!="),
                col,
            });
            i += 2;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(format!(
                            "line 1:{col} mismatched character '<EOF>' expecting '''"
                        ));
                    }
                    Some('\\') => {
                        let e = chars.get(i + 1).copied().unwrap_or('\\');
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Lexed {
                tok: Tok::Str(s),
                col,
            });
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push(Lexed {
                tok: Tok::Num(chars[start..i].iter().collect()),
                col,
            });
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push(Lexed {
                tok: Tok::Ident(chars[start..i].iter().collect()),
                col,
            });
        } else {
            return Err(format!(
                "line 1:{col} no viable alternative at character '{c}'"
            ));
        }
    }
    Ok(out)
}

#[derive(Debug)]
pub(super) enum Cond {
    Eq(&'static str, Option<String>, bool),
    In(&'static str, Vec<String>, bool),
    Like(&'static str, String),
}

pub(super) struct Soql {
    pub(super) obj: &'static SObject,
    pub(super) fields: Vec<&'static str>,
    pub(super) conds: Vec<Cond>,
    pub(super) any: bool,
    pub(super) order: Option<(&'static str, bool)>,
    pub(super) limit: Option<usize>,
    pub(super) offset: usize,
}

pub(super) enum SoqlError {
    Malformed(String),
    InvalidField(String),
    InvalidType(String),
}

pub(super) fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
}

pub(super) fn parse_soql(q: &str) -> Result<Soql, SoqlError> {
    let toks = lex(q).map_err(SoqlError::Malformed)?;
    let mut p = 0;
    let at = |p: usize| toks.get(p).map(|l| &l.tok);
    let unexpected = |p: usize| {
        let what = match toks.get(p) {
            Some(Lexed {
                tok: Tok::Ident(s), ..
            })
            | Some(Lexed {
                tok: Tok::Str(s), ..
            })
            | Some(Lexed {
                tok: Tok::Num(s), ..
            }) => s.clone(),
            Some(Lexed {
                tok: Tok::Comma, ..
            }) => ",".into(),
            Some(Lexed {
                tok: Tok::LParen, ..
            }) => "(".into(),
            Some(Lexed {
                tok: Tok::RParen, ..
            }) => ")".into(),
            Some(Lexed {
                tok: Tok::Op(o), ..
            }) => o.to_string(),
            None => "<EOF>".into(),
        };
        let col = toks.get(p).map(|l| l.col).unwrap_or(q.len() + 1);
        SoqlError::Malformed(format!(
            "\n{q}\n{}^\nERROR at Row:1:Column:{col}\nunexpected token: {what}",
            " ".repeat(col.saturating_sub(1))
        ))
    };
    if !at(p).is_some_and(|t| is_kw(t, "SELECT")) {
        return Err(unexpected(p));
    }
    p += 1;
    let mut names: Vec<(String, usize)> = Vec::new();
    loop {
        match toks.get(p) {
            Some(Lexed {
                tok: Tok::Ident(s),
                col,
            }) if !s.eq_ignore_ascii_case("FROM") => {
                names.push((s.clone(), *col));
                p += 1;
            }
            _ => return Err(unexpected(p)),
        }
        if at(p) == Some(&Tok::Comma) {
            p += 1;
            continue;
        }
        break;
    }
    if !at(p).is_some_and(|t| is_kw(t, "FROM")) {
        return Err(unexpected(p));
    }
    p += 1;
    let (obj_name, obj_col) = match toks.get(p) {
        Some(Lexed {
            tok: Tok::Ident(s),
            col,
        }) => (s.clone(), *col),
        _ => return Err(unexpected(p)),
    };
    p += 1;
    let _ = obj_col;
    let obj = sobject(&obj_name).ok_or_else(|| {
        SoqlError::InvalidType(format!(
            "\n{q}\n{}^\nERROR at Row:1:Column:{obj_col}\nsObject type '{obj_name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
            " ".repeat(obj_col.saturating_sub(1))
        ))
    })?;
    let field = |name: &str, col: usize| -> Result<&'static str, SoqlError> {
        obj.field(name).map(|f| f.name).ok_or_else(|| {
            SoqlError::InvalidField(format!(
                "\n{q}\n{}^\nERROR at Row:1:Column:{col}\nNo such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                " ".repeat(col.saturating_sub(1)),
                obj.name
            ))
        })
    };
    let mut fields = Vec::new();
    for (n, col) in &names {
        let f = field(n, *col)?;
        if !fields.contains(&f) {
            fields.push(f);
        }
    }
    let mut conds = Vec::new();
    let mut joiner: Option<&str> = None;
    if at(p).is_some_and(|t| is_kw(t, "WHERE")) {
        p += 1;
        loop {
            let (fname, col) = match toks.get(p) {
                Some(Lexed {
                    tok: Tok::Ident(s),
                    col,
                }) => (s.clone(), *col),
                _ => return Err(unexpected(p)),
            };
            let f = field(&fname, col)?;
            p += 1;
            let literal = |p: usize| -> Option<Option<String>> {
                match at(p) {
                    Some(Tok::Str(s)) | Some(Tok::Num(s)) => Some(Some(s.clone())),
                    Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("null") => Some(None),
                    Some(Tok::Ident(s))
                        if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
                    {
                        Some(Some(s.to_lowercase()))
                    }
                    _ => None,
                }
            };
            match at(p) {
                Some(Tok::Op(op)) => {
                    let neg = *op == "!=";
                    p += 1;
                    let Some(v) = literal(p) else {
                        return Err(unexpected(p));
                    };
                    p += 1;
                    conds.push(Cond::Eq(f, v, neg));
                }
                Some(t) if is_kw(t, "LIKE") => {
                    p += 1;
                    let Some(Tok::Str(s)) = at(p) else {
                        return Err(unexpected(p));
                    };
                    conds.push(Cond::Like(f, s.clone()));
                    p += 1;
                }
                Some(t) if is_kw(t, "IN") || is_kw(t, "NOT") => {
                    let neg = is_kw(t, "NOT");
                    p += 1;
                    if neg {
                        if !at(p).is_some_and(|t| is_kw(t, "IN")) {
                            return Err(unexpected(p));
                        }
                        p += 1;
                    }
                    if at(p) != Some(&Tok::LParen) {
                        return Err(unexpected(p));
                    }
                    p += 1;
                    let mut values = Vec::new();
                    loop {
                        let Some(Some(v)) = literal(p) else {
                            return Err(unexpected(p));
                        };
                        values.push(v);
                        p += 1;
                        match at(p) {
                            Some(Tok::Comma) => p += 1,
                            Some(Tok::RParen) => {
                                p += 1;
                                break;
                            }
                            _ => return Err(unexpected(p)),
                        }
                    }
                    conds.push(Cond::In(f, values, neg));
                }
                _ => return Err(unexpected(p)),
            }
            match at(p) {
                Some(t) if is_kw(t, "AND") || is_kw(t, "OR") => {
                    let j = if is_kw(t, "AND") { "AND" } else { "OR" };
                    // SOQL wants parentheses when AND and OR are mixed.
                    if joiner.is_some_and(|prev| prev != j) {
                        return Err(unexpected(p));
                    }
                    joiner = Some(j);
                    p += 1;
                }
                _ => break,
            }
        }
    }
    let mut order = None;
    if at(p).is_some_and(|t| is_kw(t, "ORDER")) {
        p += 1;
        if !at(p).is_some_and(|t| is_kw(t, "BY")) {
            return Err(unexpected(p));
        }
        p += 1;
        let (fname, col) = match toks.get(p) {
            Some(Lexed {
                tok: Tok::Ident(s),
                col,
            }) => (s.clone(), *col),
            _ => return Err(unexpected(p)),
        };
        let f = field(&fname, col)?;
        p += 1;
        let mut desc = false;
        if at(p).is_some_and(|t| is_kw(t, "ASC")) {
            p += 1;
        } else if at(p).is_some_and(|t| is_kw(t, "DESC")) {
            desc = true;
            p += 1;
        }
        order = Some((f, desc));
    }
    let mut limit = None;
    let mut offset = 0;
    for kw in ["LIMIT", "OFFSET"] {
        if at(p).is_some_and(|t| is_kw(t, kw)) {
            p += 1;
            let Some(Tok::Num(n)) = at(p) else {
                return Err(unexpected(p));
            };
            let n: usize = n.parse().map_err(|_| unexpected(p))?;
            if kw == "LIMIT" {
                limit = Some(n);
            } else {
                offset = n;
            }
            p += 1;
        }
    }
    if p < toks.len() {
        return Err(unexpected(p));
    }
    Ok(Soql {
        obj,
        fields,
        conds,
        any: joiner == Some("OR"),
        order,
        limit,
        offset,
    })
}

pub(super) fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('_') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

pub(super) fn value_text(v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(v) => util::to_plain_string(v),
    }
}

pub(super) fn cond_holds(r: &Record, c: &Cond) -> bool {
    match c {
        Cond::Eq(f, v, neg) => {
            let stored = value_text(r.fields.get(f));
            let same = match (&stored, v) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            };
            same != *neg
        }
        Cond::In(f, values, neg) => {
            let stored = value_text(r.fields.get(f));
            let hit = stored.is_some_and(|s| values.iter().any(|v| v.eq_ignore_ascii_case(&s)));
            hit != *neg
        }
        Cond::Like(f, pat) => value_text(r.fields.get(f)).is_some_and(|s| like(pat, &s)),
    }
}

pub(super) async fn query(
    State(shared): State<Ctx>,
    Path(v): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let pairs = query_pairs(q.as_deref());
    let Some(soql) = query_get(&pairs, "q") else {
        return err_nofields(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "A query string has to be specified",
        );
    };
    let parsed = match parse_soql(soql) {
        Ok(p) => p,
        Err(SoqlError::Malformed(m)) => {
            return err_nofields(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", &m);
        }
        Err(SoqlError::InvalidField(m)) => {
            return err_nofields(StatusCode::BAD_REQUEST, "INVALID_FIELD", &m);
        }
        Err(SoqlError::InvalidType(m)) => {
            return err_nofields(StatusCode::BAD_REQUEST, "INVALID_TYPE", &m);
        }
    };
    let st = shared.data();
    let holds = |r: &Record| {
        parsed.conds.is_empty()
            || if parsed.any {
                parsed.conds.iter().any(|c| cond_holds(r, c))
            } else {
                parsed.conds.iter().all(|c| cond_holds(r, c))
            }
    };
    // A conjunction with an equality or IN on an indexed field reads that index.
    let from_index = (!parsed.any)
        .then(|| {
            parsed.conds.iter().find_map(|c| match c {
                Cond::Eq(f, Some(v), false) => st.lookup(parsed.obj, f, [v.as_str()]),
                Cond::In(f, vs, false) => st.lookup(parsed.obj, f, vs.iter().map(String::as_str)),
                _ => None,
            })
        })
        .flatten();
    let all = st.records.get(parsed.obj.name);
    let mut hits: Vec<&Record> = match (all, from_index) {
        (None, _) => Vec::new(),
        (Some(m), Some(ids)) => ids
            .iter()
            .filter_map(|k| m.get(k))
            .filter(|r| holds(r))
            .collect(),
        (Some(m), None) => m.values().filter(|r| holds(r)).collect(),
    };
    if let Some((f, desc)) = parsed.order {
        hits.sort_by(|a, b| {
            let x = value_text(a.fields.get(f)).map(|s| s.to_lowercase());
            let y = value_text(b.fields.get(f)).map(|s| s.to_lowercase());
            // Nulls first when ascending, last when descending (SOQL's defaults).
            let o = x.cmp(&y);
            if desc { o.reverse() } else { o }
        });
    }
    let total: Vec<&Record> = hits
        .into_iter()
        .skip(parsed.offset)
        .take(parsed.limit.unwrap_or(usize::MAX))
        .collect();
    let records: Vec<Value> = total
        .iter()
        .take(QUERY_BATCH)
        .map(|r| render(parsed.obj, r, Some(&parsed.fields), &v))
        .collect();
    reply(
        StatusCode::OK,
        json!({"totalSize": total.len(), "done": total.len() <= QUERY_BATCH, "records": records}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soql_subset() {
        let q = parse_soql("SELECT Id, Email, LastModifiedDate FROM Lead WHERE Email = 'a@b.co' AND Company != null LIMIT 5").ok().unwrap();
        assert_eq!(q.fields, ["Id", "Email", "LastModifiedDate"]);
        assert_eq!(q.conds.len(), 2);
        assert_eq!(q.limit, Some(5));
        let q = parse_soql("select id from lead where email in ('x', 'y') or lastname like 'Sm%'")
            .ok()
            .unwrap();
        assert!(q.any);
        assert!(matches!(
            parse_soql("SELECT Id FROM Lead WHERE Email = 'o'brien@x.com'"),
            Err(SoqlError::Malformed(_))
        ));
        assert!(matches!(
            parse_soql("SELECT Nope FROM Lead"),
            Err(SoqlError::InvalidField(_))
        ));
        assert!(matches!(
            parse_soql("SELECT Id FROM Nope"),
            Err(SoqlError::InvalidType(_))
        ));
        assert!(parse_soql("SELECT Id FROM Lead WHERE A = '1' AND B = '2' OR C = '3'").is_err());
        let q = parse_soql("SELECT Id FROM Lead WHERE Email = 'o\\'brien@x.com'")
            .ok()
            .unwrap();
        assert!(matches!(&q.conds[0], Cond::Eq(_, Some(v), false) if v == "o'brien@x.com"));
        assert!(like("Sm%", "smith") && like("_a%", "jane") && !like("a%", "ba"));
    }
}
