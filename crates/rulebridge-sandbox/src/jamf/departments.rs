//! `/api/v1/departments`: paged list, create, read, rename, delete.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use super::errors::api_error;
use super::rsql::{invalid_filter_field, parse_rsql};
use super::state::Ctx;
use crate::util::{self, json as reply, query_get, query_pairs};

pub(super) fn page_params(pairs: &[(String, String)]) -> Result<(usize, usize), Response> {
    let page = query_get(pairs, "page").unwrap_or("0").parse::<usize>();
    let size = query_get(pairs, "page-size")
        .unwrap_or("100")
        .parse::<usize>();
    match (page, size) {
        (Ok(p), Ok(s)) if (1..=2000).contains(&s) => Ok((p, s)),
        _ => Err(api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            Some("page-size"),
            "page must be >= 0 and page-size between 1 and 2000",
        )),
    }
}

pub(super) async fn list_departments(State(shared): State<Ctx>, RawQuery(q): RawQuery) -> Response {
    let pairs = query_pairs(q.as_deref());
    let (page, size) = match page_params(&pairs) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let filter = match query_get(&pairs, "filter").map(parse_rsql).transpose() {
        Ok(f) => f,
        Err(e) => return e,
    };
    if let Some(f) = &filter
        && let Some(bad) = f.fields().find(|k| *k != "name" && *k != "id")
    {
        return invalid_filter_field(bad);
    }
    let st = shared.data();
    let all: Vec<Value> = st
        .departments
        .iter()
        .map(|(id, name)| json!({"id": id.to_string(), "name": name}))
        .filter(|d| {
            filter
                .as_ref()
                .is_none_or(|f| f.eval(&|k| d.get(k).and_then(Value::as_str).map(str::to_string)))
        })
        .collect();
    let total = all.len();
    let results: Vec<Value> = all.into_iter().skip(page * size).take(size).collect();
    reply(
        StatusCode::OK,
        json!({"totalCount": total, "results": results}),
    )
}

pub(super) fn department_name(body: &[u8]) -> Result<String, Response> {
    let v = util::parse_json(body)
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, "INVALID_JSON", None, &e))?;
    match v.get("name").and_then(Value::as_str).map(str::trim) {
        Some(n) if !n.is_empty() => Ok(n.to_string()),
        _ => Err(api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            Some("name"),
            "name must not be blank",
        )),
    }
}

pub(super) async fn create_department(State(shared): State<Ctx>, body: Bytes) -> Response {
    let name = match department_name(&body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let mut st = shared.data();
    if st
        .departments
        .values()
        .any(|d| d.eq_ignore_ascii_case(&name))
    {
        return api_error(
            StatusCode::BAD_REQUEST,
            "DUPLICATE_FIELD",
            Some("name"),
            &format!("duplicate name: {name}"),
        );
    }
    let id = st.next_department;
    st.next_department += 1;
    st.departments.insert(id, name);
    reply(
        StatusCode::CREATED,
        json!({"id": id.to_string(), "href": format!("http://{}/jamf/api/v1/departments/{id}", shared.addr)}),
    )
}

pub(super) fn department_404(id: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "INVALID_ID",
        Some("id"),
        &format!("Department with id {id} does not exist"),
    )
}

pub(super) async fn get_department(State(shared): State<Ctx>, Path(id): Path<String>) -> Response {
    let st = shared.data();
    match id.parse::<u64>().ok().and_then(|n| st.departments.get(&n)) {
        Some(name) => reply(StatusCode::OK, json!({"id": id, "name": name})),
        None => department_404(&id),
    }
}

pub(super) async fn put_department(
    State(shared): State<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let name = match department_name(&body) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let mut st = shared.data();
    let Some(n) = id
        .parse::<u64>()
        .ok()
        .filter(|n| st.departments.contains_key(n))
    else {
        return department_404(&id);
    };
    if st
        .departments
        .iter()
        .any(|(k, d)| *k != n && d.eq_ignore_ascii_case(&name))
    {
        return api_error(
            StatusCode::BAD_REQUEST,
            "DUPLICATE_FIELD",
            Some("name"),
            &format!("duplicate name: {name}"),
        );
    }
    st.departments.insert(n, name.clone());
    reply(StatusCode::OK, json!({"id": id, "name": name}))
}

pub(super) async fn delete_department(
    State(shared): State<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let mut st = shared.data();
    match id
        .parse::<u64>()
        .ok()
        .and_then(|n| st.departments.remove(&n))
    {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => department_404(&id),
    }
}
