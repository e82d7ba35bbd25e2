//! The Classic API's computer records (`/JSSResource/computers`, XML).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::errors::classic_page;
use super::state::{Computer, Ctx};
use crate::util;

pub(super) fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

pub(super) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The inner text of the first `<tag>` inside `scope` (`<tag/>` is empty).
pub(super) fn xml_text(scope: &str, tag: &str) -> Option<String> {
    if scope.contains(&format!("<{tag}/>")) || scope.contains(&format!("<{tag} />")) {
        return Some(String::new());
    }
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = scope.find(&open)? + open.len();
    let end = scope[start..].find(&close)? + start;
    Some(xml_unescape(scope[start..end].trim()))
}

pub(super) fn xml_section<'a>(doc: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = doc.find(&open)? + open.len();
    let end = doc[start..].find(&close)? + start;
    Some(&doc[start..end])
}

/// Rough well-formedness: one `<computer>` root with balanced tags.
pub(super) fn well_formed(doc: &str) -> bool {
    let body = doc.trim();
    let body = match body.strip_prefix("<?xml") {
        Some(rest) => match rest.find("?>") {
            Some(i) => rest[i + 2..].trim(),
            None => return false,
        },
        None => body,
    };
    if !(body.starts_with("<computer>") && body.ends_with("</computer>")) {
        return false;
    }
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find('<') {
        let Some(j) = rest[i..].find('>') else {
            return false;
        };
        let tag = &rest[i + 1..i + j];
        rest = &rest[i + j + 1..];
        if tag.ends_with('/') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop() != Some(name.trim()) {
                return false;
            }
        } else {
            stack.push(tag.split_whitespace().next().unwrap_or(""));
        }
    }
    stack.is_empty()
}

pub(super) async fn classic_create(
    State(shared): State<Ctx>,
    Path(_id): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(doc) = std::str::from_utf8(&body) else {
        return classic_page(StatusCode::BAD_REQUEST, "Bad Request");
    };
    if !well_formed(doc) {
        return classic_page(StatusCode::BAD_REQUEST, "Error in XML file");
    }
    let general = xml_section(doc, "general").unwrap_or("");
    let location = xml_section(doc, "location").unwrap_or("");
    let name = xml_text(general, "name").unwrap_or_default();
    if name.is_empty() {
        return classic_page(StatusCode::CONFLICT, "Error: Problem with computer name");
    }
    let serial = xml_text(general, "serial_number").unwrap_or_default();
    let udid = xml_text(general, "udid")
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| shared.uuid().to_uppercase());
    let mut st = shared.data();
    if !serial.is_empty()
        && st
            .computers
            .values()
            .any(|c| c.serial.eq_ignore_ascii_case(&serial))
    {
        return classic_page(StatusCode::CONFLICT, "Error: Duplicate serial number");
    }
    if st
        .computers
        .values()
        .any(|c| c.udid.eq_ignore_ascii_case(&udid))
    {
        return classic_page(StatusCode::CONFLICT, "Error: Duplicate UDID");
    }
    let mut loc = BTreeMap::new();
    for (xml, api) in [
        ("username", "username"),
        ("realname", "realname"),
        ("real_name", "realname"),
        ("email_address", "email"),
        ("position", "position"),
        ("phone", "phone"),
        ("room", "room"),
    ] {
        if let Some(v) = xml_text(location, xml).filter(|v| !v.is_empty()) {
            loc.insert(api, json!(v));
        }
    }
    if let Some(dep) = xml_text(location, "department").filter(|d| !d.is_empty()) {
        match st
            .departments
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(&dep))
        {
            Some((id, _)) => {
                loc.insert("departmentId", json!(id.to_string()));
            }
            None => {
                return classic_page(
                    StatusCode::CONFLICT,
                    "Error: Problem with department in location",
                );
            }
        }
    }
    let id = st.next_computer;
    st.next_computer += 1;
    st.computers.insert(
        id,
        Computer {
            id,
            udid,
            name,
            serial,
            platform: xml_text(general, "platform")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "Mac".into()),
            location: loc,
        },
    );
    (
        StatusCode::CREATED,
        [(http::header::CONTENT_TYPE, "text/xml;charset=UTF-8")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><computer><id>{id}</id></computer>"),
    )
        .into_response()
}

pub(super) fn classic_xml(c: &Computer, departments: &BTreeMap<u64, String>) -> Response {
    let loc = |k: &str| {
        c.location
            .get(k)
            .and_then(util::to_plain_string)
            .map(|s| xml_escape(&s))
            .unwrap_or_default()
    };
    let department = c
        .location
        .get("departmentId")
        .and_then(util::to_plain_string)
        .and_then(|d| d.parse::<u64>().ok())
        .and_then(|d| departments.get(&d))
        .map(|d| xml_escape(d))
        .unwrap_or_default();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><computer><general><id>{}</id><name>{}</name><serial_number>{}</serial_number><udid>{}</udid><platform>{}</platform></general><location><username>{}</username><realname>{}</realname><real_name>{}</real_name><email_address>{}</email_address><position>{}</position><phone>{}</phone><department>{department}</department><room>{}</room></location></computer>",
        c.id,
        xml_escape(&c.name),
        xml_escape(&c.serial),
        xml_escape(&c.udid),
        xml_escape(&c.platform),
        loc("username"),
        loc("realname"),
        loc("realname"),
        loc("email"),
        loc("position"),
        loc("phone"),
        loc("room"),
    );
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "text/xml;charset=UTF-8")],
        xml,
    )
        .into_response()
}

pub(super) fn classic_404() -> Response {
    classic_page(
        StatusCode::NOT_FOUND,
        "The server has not found anything matching the request URI",
    )
}

pub(super) async fn classic_get(State(shared): State<Ctx>, Path(id): Path<String>) -> Response {
    let st = shared.data();
    match id.parse::<u64>().ok().and_then(|n| st.computers.get(&n)) {
        Some(c) => classic_xml(c, &st.departments),
        None => classic_404(),
    }
}

pub(super) async fn classic_get_serial(
    State(shared): State<Ctx>,
    Path(serial): Path<String>,
) -> Response {
    let st = shared.data();
    match st
        .computers
        .values()
        .find(|c| c.serial.eq_ignore_ascii_case(&serial))
    {
        Some(c) => classic_xml(c, &st.departments),
        None => classic_404(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml() {
        let doc = "<?xml version=\"1.0\"?><computer><general><name>A &amp; B</name><serial_number>S1</serial_number></general><location><username/></location></computer>";
        assert!(well_formed(doc));
        assert_eq!(
            xml_text(xml_section(doc, "general").unwrap(), "name").as_deref(),
            Some("A & B")
        );
        assert_eq!(
            xml_text(xml_section(doc, "location").unwrap(), "username").as_deref(),
            Some("")
        );
        assert!(!well_formed("<computer><general></computer>"));
        assert!(!well_formed("not xml"));
    }
}
