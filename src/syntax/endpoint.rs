//! `kind: endpoint` documents: an inbound HTTP endpoint of `rulebridge serve`, declared (see
//! [`EndpointDoc`]).

use super::decode::{Cx, Fields};
use super::doc::{EndpointAuth, EndpointDoc, Spanned};

pub(crate) const KEYS: &[&str] = &[
    "kind",
    "name",
    "description",
    "method",
    "path",
    "auth",
    "require",
    "invalid",
    "tenant",
    "records",
    "with",
    "flow",
    "statuses",
    "result",
    "response",
];

pub(crate) const AUTH_KEYS: &[&str] = &["header", "secret", "unauthorized"];

pub(crate) const REQUIRE_KEYS: &[&str] = &["headers", "body"];

pub(crate) fn decode(
    cx: &mut Cx<'_>,
    f: &Fields<'_>,
    name: Spanned<String>,
) -> Option<EndpointDoc> {
    let description = f.opt(cx, "description", |cx, n, _| cx.string(n).map(|s| s.value));
    let method = f.require(cx, "method", |cx, n, _| cx.string(n));
    let path = f.require(cx, "path", |cx, n, _| cx.string(n));
    let auth = f.opt(cx, "auth", |cx, n, key| {
        let a = cx.fields(n, Some(key), AUTH_KEYS)?;
        let header = a.require(cx, "header", |cx, n, _| cx.string(n));
        let secret = a.require(cx, "secret", |cx, n, _| cx.secret_text(n));
        let unauthorized = a
            .opt(cx, "unauthorized", |cx, n, _| Some(cx.string_map(n, false)))
            .unwrap_or_default();
        Some(EndpointAuth {
            header: header?,
            secret: secret?,
            unauthorized,
        })
    });
    let (require_headers, require_body) = f
        .opt(cx, "require", |cx, n, key| {
            let r = cx.fields(n, Some(key), REQUIRE_KEYS)?;
            let headers = r
                .opt(cx, "headers", |cx, n, _| Some(cx.string_list(n)))
                .unwrap_or_default();
            let body = r
                .opt(cx, "body", |cx, n, _| Some(cx.string_list(n)))
                .unwrap_or_default();
            Some((headers, body))
        })
        .unwrap_or_default();
    let map = |cx: &mut Cx<'_>, key: &str| {
        f.opt(cx, key, |cx, n, _| Some(cx.string_map(n, false)))
            .unwrap_or_default()
    };
    let invalid = map(cx, "invalid");
    let with = map(cx, "with");
    let statuses = map(cx, "statuses");
    let result = map(cx, "result");
    let response = map(cx, "response");
    let tenant = f.opt(cx, "tenant", |cx, n, _| cx.text(n));
    let records = f.require(cx, "records", |cx, n, _| cx.text(n));
    let flow = f.require(cx, "flow", |cx, n, _| cx.string(n));
    Some(EndpointDoc {
        name,
        description,
        method: method?,
        path: path?,
        auth,
        require_headers,
        require_body,
        invalid,
        tenant,
        records: records?,
        with,
        flow: flow?,
        statuses,
        result,
        response,
        span: f.span,
    })
}
