//! `POST /crm/v3/objects/contacts/search`: filter groups, operators, sorting, paging.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::errors::{bad_json, validation};
use super::properties::{Properties, parse_datetime};
use super::state::{Contact, Ctx, default_props, render};
use super::{
    SEARCH_LIMIT, SEARCH_MAX_FILTERS, SEARCH_MAX_FILTERS_PER_GROUP, SEARCH_MAX_GROUPS,
    SEARCH_MAX_RESULTS,
};
use crate::util::{self, json as reply};

#[derive(Debug)]
pub(super) struct Filter {
    pub(super) property: String,
    /// The property's type (`string`, `datetime`, ...), which decides how values compare.
    pub(super) ty: String,
    pub(super) operator: String,
    pub(super) value: Option<String>,
    pub(super) high: Option<String>,
    pub(super) values: Vec<String>,
}

pub(super) fn parse_filters(body: &Value, defs: &Properties) -> Result<Vec<Vec<Filter>>, String> {
    let groups = match body.get("filterGroups") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(g)) => g,
        Some(_) => return Err("filterGroups must be an array".into()),
    };
    if groups.len() > SEARCH_MAX_GROUPS {
        return Err(format!(
            "Too many filter groups: {}. The maximum is {SEARCH_MAX_GROUPS}.",
            groups.len()
        ));
    }
    let mut out = Vec::new();
    let mut total = 0;
    for (gi, g) in groups.iter().enumerate() {
        let filters = match g.get("filters") {
            Some(Value::Array(f)) => f,
            None | Some(Value::Null) => {
                out.push(Vec::new());
                continue;
            }
            Some(_) => return Err(format!("filterGroups[{gi}].filters must be an array")),
        };
        if filters.len() > SEARCH_MAX_FILTERS_PER_GROUP {
            return Err(format!(
                "Too many filters in filterGroups[{gi}]: {}. The maximum is {SEARCH_MAX_FILTERS_PER_GROUP}.",
                filters.len()
            ));
        }
        total += filters.len();
        let mut group = Vec::new();
        for (fi, f) in filters.iter().enumerate() {
            let at = format!("filterGroups[{gi}].filters[{fi}]");
            let property = f
                .get("propertyName")
                .and_then(Value::as_str)
                .ok_or(format!("{at}.propertyName is required"))?
                .to_string();
            let Some(ty) = defs.get(&property).map(|d| d.ty.clone()) else {
                return Err(format!(
                    "{at}.propertyName: Property \"{property}\" does not exist"
                ));
            };
            let operator = f
                .get("operator")
                .and_then(Value::as_str)
                .ok_or(format!("{at}.operator is required"))?
                .to_string();
            const OPS: &[&str] = &[
                "EQ",
                "NEQ",
                "LT",
                "LTE",
                "GT",
                "GTE",
                "BETWEEN",
                "IN",
                "NOT_IN",
                "HAS_PROPERTY",
                "NOT_HAS_PROPERTY",
                "CONTAINS_TOKEN",
                "NOT_CONTAINS_TOKEN",
            ];
            if !OPS.contains(&operator.as_str()) {
                return Err(format!(
                    "{at}.operator: Cannot deserialize value of type `FilterOperatorEnum` from String \"{operator}\": not one of the values accepted for Enum class: [{}]",
                    OPS.join(", ")
                ));
            }
            let value = f.get("value").and_then(util::to_plain_string);
            let high = f.get("highValue").and_then(util::to_plain_string);
            let values: Vec<String> = f
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(util::to_plain_string).collect())
                .unwrap_or_default();
            let needs_value = !matches!(
                operator.as_str(),
                "HAS_PROPERTY" | "NOT_HAS_PROPERTY" | "IN" | "NOT_IN"
            );
            if needs_value && value.is_none() {
                return Err(format!("{at}.value is required for operator {operator}"));
            }
            if operator == "BETWEEN" && high.is_none() {
                return Err(format!("{at}.highValue is required for operator BETWEEN"));
            }
            if matches!(operator.as_str(), "IN" | "NOT_IN") && values.is_empty() {
                return Err(format!("{at}.values is required for operator {operator}"));
            }
            group.push(Filter {
                property,
                ty,
                operator,
                value,
                high,
                values,
            });
        }
        out.push(group);
    }
    if total > SEARCH_MAX_FILTERS {
        return Err(format!(
            "Too many filters: {total}. The maximum is {SEARCH_MAX_FILTERS} across all filter groups."
        ));
    }
    Ok(out)
}

/// A comparable form: numbers and datetimes (as epoch ms) compare numerically.
pub(super) fn ordinal(ty: &str, s: &str) -> Option<f64> {
    if ty == "datetime" || ty == "date" {
        return parse_datetime(s).map(|t| t.timestamp_millis() as f64);
    }
    s.parse::<f64>().ok()
}

pub(super) fn compare(ty: &str, stored: &str, value: &str) -> std::cmp::Ordering {
    match (ordinal(ty, stored), ordinal(ty, value)) {
        (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
        _ => stored.to_lowercase().cmp(&value.to_lowercase()),
    }
}

pub(super) fn eq(ty: &str, stored: &str, value: &str) -> bool {
    compare(ty, stored, value) == std::cmp::Ordering::Equal
}

/// Words of a value (e-mails split at `@` and `.` too).
pub(super) fn tokens(s: &str) -> Vec<String> {
    let lower = s.to_lowercase();
    let mut out: Vec<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    out.push(lower);
    out
}

pub(super) fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(p) => rest = &rest[p + part.len()..],
                None => return false,
            }
        }
    }
    true
}

pub(super) fn contains_token(stored: &str, value: &str) -> bool {
    let v = value.to_lowercase();
    tokens(stored).iter().any(|t| glob(&v, t))
}

pub(super) fn matches(c: &Contact, f: &Filter) -> bool {
    let stored = c.props.get(&f.property).map(String::as_str);
    let value = f.value.as_deref().unwrap_or("");
    match f.operator.as_str() {
        "HAS_PROPERTY" => stored.is_some(),
        "NOT_HAS_PROPERTY" => stored.is_none(),
        "EQ" => stored.is_some_and(|s| eq(&f.ty, s, value)),
        "NEQ" => !stored.is_some_and(|s| eq(&f.ty, s, value)),
        "LT" => stored.is_some_and(|s| compare(&f.ty, s, value).is_lt()),
        "LTE" => stored.is_some_and(|s| compare(&f.ty, s, value).is_le()),
        "GT" => stored.is_some_and(|s| compare(&f.ty, s, value).is_gt()),
        "GTE" => stored.is_some_and(|s| compare(&f.ty, s, value).is_ge()),
        "BETWEEN" => stored.is_some_and(|s| {
            compare(&f.ty, s, value).is_ge()
                && compare(&f.ty, s, f.high.as_deref().unwrap_or("")).is_le()
        }),
        // For string properties HubSpot compares IN values against the lowercased stored
        // value: values must be given in lowercase.
        "IN" => stored.is_some_and(|s| f.values.iter().any(|v| in_match(&f.ty, s, v))),
        "NOT_IN" => !stored.is_some_and(|s| f.values.iter().any(|v| in_match(&f.ty, s, v))),
        "CONTAINS_TOKEN" => stored.is_some_and(|s| contains_token(s, value)),
        "NOT_CONTAINS_TOKEN" => !stored.is_some_and(|s| contains_token(s, value)),
        _ => false,
    }
}

pub(super) fn in_match(ty: &str, stored: &str, v: &str) -> bool {
    match ty {
        "string" => stored.to_lowercase() == v,
        "enumeration" => stored == v,
        _ => eq(ty, stored, v),
    }
}

pub(super) async fn search(State(shared): State<Ctx>, body: Bytes) -> Response {
    let body = match util::parse_json(&body) {
        Ok(v) => v,
        Err(e) => return bad_json(&shared, &e),
    };
    let defs = shared.data().properties.clone();
    let groups = match parse_filters(&body, &defs) {
        Ok(g) => g,
        Err(m) => return validation(&shared, &m),
    };
    let limit = match body.get("limit") {
        None | Some(Value::Null) => 10,
        Some(v) => match v.as_u64() {
            Some(n) if (n as usize) <= SEARCH_LIMIT => n as usize,
            _ => {
                return validation(
                    &shared,
                    &format!("limit must be an integer between 0 and {SEARCH_LIMIT}"),
                );
            }
        },
    };
    let after = match body.get("after") {
        None | Some(Value::Null) => 0,
        Some(v) => match util::to_plain_string(v).and_then(|s| s.parse::<usize>().ok()) {
            Some(n) => n,
            None => return validation(&shared, "after must be a number"),
        },
    };
    if after + limit > SEARCH_MAX_RESULTS {
        return validation(
            &shared,
            &format!(
                "Search results are limited to {SEARCH_MAX_RESULTS} records; narrow the filters"
            ),
        );
    }
    let props: Vec<String> = body
        .get("properties")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .filter(|a| !a.is_empty())
        .unwrap_or_else(default_props);
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .map(str::to_lowercase)
        .filter(|q| !q.is_empty());
    let sort = body
        .get("sorts")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|s| {
            // Either {propertyName, direction} or "-prop" / "prop".
            if let Some(p) = s.as_str() {
                return Some(match p.strip_prefix('-') {
                    Some(p) => (p.to_string(), true),
                    None => (p.to_string(), false),
                });
            }
            let p = s.get("propertyName")?.as_str()?.to_string();
            let desc = s.get("direction").and_then(Value::as_str) == Some("DESCENDING");
            Some((p, desc))
        });
    let lag = shared.cfg.hubspot_search_lag;
    let st = shared.data();
    let now = Instant::now();
    let mut hits: Vec<&Contact> = st
        .contacts
        .values()
        .filter(|c| now.saturating_duration_since(c.written) >= lag)
        .filter(|c| groups.is_empty() || groups.iter().any(|g| g.iter().all(|f| matches(c, f))))
        .filter(|c| {
            query.as_ref().is_none_or(|q| {
                ["email", "firstname", "lastname", "phone", "company"]
                    .iter()
                    .filter_map(|p| c.props.get(*p))
                    .any(|v| v.to_lowercase().contains(q.as_str()))
            })
        })
        .collect();
    if let Some((p, desc)) = &sort {
        let ty = defs.get(p).map(|d| d.ty.as_str()).unwrap_or("string");
        hits.sort_by(|a, b| {
            let o = match (a.props.get(p), b.props.get(p)) {
                (Some(x), Some(y)) => compare(ty, x, y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            let o = if *desc { o.reverse() } else { o };
            o.then(a.id.cmp(&b.id))
        });
    }
    let total = hits.len();
    let results: Vec<Value> = hits
        .iter()
        .skip(after)
        .take(limit)
        .map(|c| render(c, Some(&props)))
        .collect();
    let mut out = json!({ "total": total, "results": results });
    if after + limit < total && limit > 0 {
        out["paging"] = json!({"next": {"after": (after + limit).to_string()}});
    }
    reply(StatusCode::OK, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_globs() {
        assert!(contains_token("Jane Doe", "doe"));
        assert!(contains_token("jane@example.com", "example"));
        assert!(contains_token("jane@example.com", "*@example.com"));
        assert!(contains_token("Jane Doe", "ja*"));
        assert!(!contains_token("Jane Doe", "do"));
    }
}
