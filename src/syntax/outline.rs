//! A readable, line-oriented dump of decoded documents with `line:col` positions, for
//! snapshot tests and debugging (`value @line:col`).

use std::fmt::Write;

use serde_json::Value;

use super::RuleSet;
use super::doc::*;
use crate::span::{SourceMap, Span};

/// The outline of every document of a rule set.
pub fn outline(rules: &RuleSet) -> String {
    let mut w = Writer {
        sources: &rules.sources,
        out: String::new(),
    };
    for doc in &rules.documents {
        w.document(doc);
    }
    w.out
}

struct Writer<'a> {
    sources: &'a SourceMap,
    out: String,
}

impl Writer<'_> {
    fn at(&self, span: Span) -> String {
        let l = self.sources.locate(span);
        format!("@{}:{}", l.line, l.column)
    }

    fn line(&mut self, indent: usize, text: impl AsRef<str>) {
        let _ = writeln!(
            self.out,
            "{:indent$}{}",
            "",
            text.as_ref(),
            indent = indent * 2
        );
    }

    fn s(&self, v: &Spanned<String>) -> String {
        format!("{:?} {}", v.value, self.at(v.span))
    }

    fn opt_s(&self, v: &Option<Spanned<String>>) -> String {
        v.as_ref().map_or("-".to_string(), |v| self.s(v))
    }

    fn json(&self, v: &Spanned<Value>) -> String {
        format!("{} {}", v.value, self.at(v.span))
    }

    fn list(&self, items: &[Spanned<String>]) -> String {
        let items: Vec<String> = items.iter().map(|i| self.s(i)).collect();
        format!("[{}]", items.join(", "))
    }

    fn pairs(&mut self, indent: usize, title: &str, pairs: &[(Spanned<String>, Spanned<String>)]) {
        if pairs.is_empty() {
            return;
        }
        self.line(indent, format!("{title}:"));
        for (k, v) in pairs {
            let text = format!("{} = {}", self.s(k), self.s(v));
            self.line(indent + 1, text);
        }
    }

    fn document(&mut self, doc: &Document) {
        let header = format!("{} {}", doc.kind(), self.s(doc.name()));
        self.line(0, header);
        match doc {
            Document::Flow(d) => self.flow(d),
            Document::Policy(d) => self.policy(d),
            Document::Record(d) => self.record(d),
            Document::Provider(d) => self.provider(d),
            Document::Extension(d) => self.extension(d),
            Document::Tests(d) => self.tests_doc(d),
            Document::Endpoint(d) => {
                let route = format!("{} {}", self.s(&d.method), self.s(&d.path));
                self.line(1, route);
                let flow = format!("flow: {}", self.s(&d.flow));
                self.line(1, flow);
            }
        }
        self.line(0, "");
    }

    fn description(&mut self, d: &Option<String>) {
        if let Some(d) = d {
            self.line(1, format!("description: {d:?}"));
        }
    }

    fn flow(&mut self, d: &FlowDoc) {
        self.description(&d.description);
        let src = format!(
            "source: record={} require={} filter={}",
            self.opt_s(&d.source.record),
            self.list(&d.source.require),
            self.opt_s(&d.source.filter)
        );
        self.line(1, src);
        let target = format!(
            "target: provider={} object={}",
            self.s(&d.target.provider),
            self.s(&d.target.object)
        );
        self.line(1, target);
        if let Some(key) = &d.key {
            let t = format!("key: {}", self.s(key));
            self.line(1, t);
        }
        self.pairs(1, "secrets", &d.secrets);
        if let Some(p) = &d.policy {
            let t = format!("policy: {}", self.s(p));
            self.line(1, t);
        }
        self.line(1, "mapping:");
        self.mapping(2, &d.mapping);
        let opts = format!(
            "options: omit_nulls={} required={}",
            d.options.omit_nulls,
            self.list(&d.options.required)
        );
        self.line(1, opts);
        if let Some(dup) = &d.duplicates {
            let t = format!(
                "duplicates: match={} on_match={:?} {} on_multiple={:?} {}",
                self.list(&dup.match_keys),
                dup.on_match.value,
                self.at(dup.on_match.span),
                dup.on_multiple.value,
                self.at(dup.on_multiple.span),
            );
            self.line(1, t);
        }
        self.cases(1, "tests", &d.tests);
    }

    fn mapping(&mut self, indent: usize, m: &Mapping) {
        for e in &m.entries {
            let target = self.s(&e.target);
            let text = match &e.value {
                MappingValue::Expr(x) => format!("{target} = expr {}", self.s(x)),
                MappingValue::Const(v) => format!("{target} = const {}", self.json(v)),
                MappingValue::Template(t) => format!("{target} = template {}", self.s(t)),
                MappingValue::Nested(_, span) => format!("{target} = nested {}", self.at(*span)),
                MappingValue::Ref(r) => format!("{target} = {}", self.reference(r)),
            };
            self.line(indent, text);
            if let MappingValue::Nested(inner, _) = &e.value {
                self.mapping(indent + 1, inner);
            }
        }
    }

    fn reference(&self, r: &crate::syntax::doc::RefDoc) -> String {
        let by: Vec<String> = r
            .by
            .iter()
            .map(|(field, key)| match key {
                crate::syntax::doc::RefKey::Expr(x) => format!("{}={}", self.s(field), self.s(x)),
                crate::syntax::doc::RefKey::Ref(inner) => {
                    format!("{}=({})", self.s(field), self.reference(inner))
                }
            })
            .collect();
        format!(
            "ref {} where {} {}",
            self.s(&r.object),
            by.join(" "),
            self.at(r.span)
        )
    }

    fn cases(&mut self, indent: usize, title: &str, cases: &[TestCase]) {
        if cases.is_empty() {
            return;
        }
        self.line(indent, format!("{title}:"));
        for c in cases {
            let head = format!("case {} span={}", self.s(&c.name), self.at(c.span));
            self.line(indent + 1, head);
            let input = format!("input: {}", self.json(&c.input));
            self.line(indent + 2, input);
            if !c.secrets.is_empty() {
                self.line(indent + 2, format!("secrets: {:?}", c.secrets));
            }
            let e = &c.expect;
            let mut parts = vec![format!("match={:?}", e.matching)];
            if let Some(p) = &e.payload {
                parts.push(format!("payload={}", self.json(p)));
            }
            if let Some(p) = &e.policy {
                parts.push(format!("policy={}", self.json(p)));
            }
            for (name, v) in [("status", &e.status), ("error", &e.error), ("key", &e.key)] {
                if let Some(v) = v {
                    parts.push(format!("{name}={}", self.s(v)));
                }
            }
            self.line(indent + 2, format!("expect: {}", parts.join(" ")));
        }
    }

    fn policy(&mut self, d: &PolicyDoc) {
        self.description(&d.description);
        let hit = format!("hit: {:?} {}", d.hit.value, self.at(d.hit.span));
        self.line(1, hit);
        let inputs = format!("inputs: {}", self.list(&d.inputs));
        self.line(1, inputs);
        let outputs: Vec<String> = d
            .outputs
            .iter()
            .map(|o| match &o.ty {
                Some(t) => format!("{}: {} {}", self.s(&o.name), t.value, self.at(t.span)),
                None => self.s(&o.name),
            })
            .collect();
        self.line(1, format!("outputs: [{}]", outputs.join(", ")));
        self.line(1, "rows:");
        for r in &d.rows {
            let cells: Vec<String> = r
                .inputs
                .iter()
                .map(|c| match &c.value {
                    Cell::Test(t) => format!("test {t:?} {}", self.at(c.span)),
                    Cell::Const(v) => format!("const {v} {}", self.at(c.span)),
                })
                .collect();
            let outs: Vec<String> = r.outputs.iter().map(|o| self.json(o)).collect();
            let text = format!(
                "row {}: when [{}] then [{}]",
                self.at(r.span),
                cells.join(", "),
                outs.join(", ")
            );
            self.line(2, text);
        }
        self.cases(1, "tests", &d.tests);
    }

    fn fields(&mut self, indent: usize, fields: &[FieldDecl]) {
        for f in fields {
            let mut text = format!(
                "{}: {} ({:?}) {}",
                self.s(&f.name),
                f.ty.value,
                f.format,
                self.at(f.ty.span)
            );
            if f.required {
                text.push_str(" required");
            }
            if !f.options.is_empty() {
                let _ = write!(text, " options={:?}", f.options);
            }
            self.line(indent, text);
        }
    }

    fn record(&mut self, d: &RecordDoc) {
        self.description(&d.description);
        self.line(1, "fields:");
        self.fields(2, &d.fields);
    }

    fn tests_doc(&mut self, d: &TestsDoc) {
        let subject = match &d.subject {
            TestSubject::Flow(f) => format!("flow {}", self.s(f)),
            TestSubject::Policy(p) => format!("policy {}", self.s(p)),
        };
        self.line(1, format!("subject: {subject}"));
        self.cases(1, "cases", &d.cases);
    }

    fn extension(&mut self, d: &ExtensionDoc) {
        self.description(&d.description);
        let base = format!("extends: {}", self.s(&d.base));
        self.line(1, base);
        for o in &d.objects {
            let head = format!("object {}:", self.s(&o.name));
            self.line(1, head);
            self.line(2, "fields:");
            self.fields(3, &o.fields);
        }
    }

    fn provider(&mut self, d: &ProviderDoc) {
        self.description(&d.description);
        let base = format!("base_url: {}", self.s(&d.base_url));
        self.line(1, base);
        if let Some(auth) = &d.auth {
            let head = format!("auth {}:", self.at(auth.span));
            self.line(1, head);
            self.auth(2, &auth.value);
        }
        if let Some(r) = &d.rate_limit {
            let t = format!(
                "rate_limit: {} per {:?} {}",
                r.requests,
                r.per,
                self.at(r.span)
            );
            self.line(1, t);
        }
        if let Some(r) = &d.retry {
            let t = format!(
                "retry {}: attempts={} base={:?} max={:?} on_status={:?} on_network={} respect_retry_after={}",
                self.at(r.span),
                r.attempts,
                r.base,
                r.max,
                r.on_status,
                r.on_network,
                r.respect_retry_after
            );
            self.line(1, t);
        }
        if let Some(t) = &d.timeout {
            let t = format!("timeout: {:?} {}", t.value, self.at(t.span));
            self.line(1, t);
        }
        self.pairs(1, "headers", &d.headers);
        for o in &d.objects {
            let head = format!("object {}:", self.s(&o.name));
            self.line(1, head);
            if !o.fields.is_empty() {
                self.line(2, "fields:");
                self.fields(3, &o.fields);
            }
            for op in &o.operations {
                self.operation(2, op);
            }
            self.error_rules(2, &o.errors);
        }
        self.error_rules(1, &d.errors);
    }

    fn auth(&mut self, indent: usize, auth: &Auth) {
        let lines: Vec<String> = match auth {
            Auth::None => vec!["type: none".into()],
            Auth::ApiKey {
                location,
                name,
                value,
            } => vec![
                "type: api_key".into(),
                format!("in: {location:?}"),
                format!("name: {}", self.s(name)),
                format!("value: {}", self.s(value)),
            ],
            Auth::Bearer { token } => {
                vec!["type: bearer".into(), format!("token: {}", self.s(token))]
            }
            Auth::Basic { username, password } => vec![
                "type: basic".into(),
                format!("username: {}", self.s(username)),
                format!("password: {}", self.s(password)),
            ],
            Auth::OAuth2Refresh {
                token_url,
                client_id,
                client_secret,
                refresh_token,
                scopes,
                ..
            } => vec![
                "type: oauth2_refresh".into(),
                format!("token_url: {}", self.s(token_url)),
                format!("client_id: {}", self.s(client_id)),
                format!("client_secret: {}", self.s(client_secret)),
                format!("refresh_token: {}", self.s(refresh_token)),
                format!("scopes: {scopes:?}"),
            ],
            Auth::OAuth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scopes,
                ..
            } => vec![
                "type: oauth2_client_credentials".into(),
                format!("token_url: {}", self.s(token_url)),
                format!("client_id: {}", self.s(client_id)),
                format!("client_secret: {}", self.s(client_secret)),
                format!("scopes: {scopes:?}"),
            ],
            Auth::TokenExchange {
                token_url,
                username,
                password,
                token,
                expires,
                keep_alive_url,
            } => vec![
                "type: token_exchange".into(),
                format!("token_url: {}", self.s(token_url)),
                format!("username: {}", self.s(username)),
                format!("password: {}", self.s(password)),
                format!("token: {}", self.s(token)),
                format!("expires: {}", self.opt_s(expires)),
                format!("keep_alive_url: {}", self.opt_s(keep_alive_url)),
            ],
        };
        for l in lines {
            self.line(indent, l);
        }
    }

    fn operation(&mut self, indent: usize, op: &Operation) {
        let head = format!(
            "operation {}: {} {}",
            self.s(&op.name),
            self.s(&op.method),
            self.s(&op.path)
        );
        self.line(indent, head);
        self.pairs(indent + 1, "query", &op.query);
        self.pairs(indent + 1, "headers", &op.headers);
        let mut extra = Vec::new();
        if let Some(b) = &op.body {
            extra.push(format!("body: {}", self.json(b)));
        }
        if let Some(i) = &op.item {
            extra.push(format!("item: {}", self.json(i)));
        }
        for (name, v) in [
            ("id", &op.id),
            ("results", &op.results),
            ("item_errors", &op.item_errors),
            ("created", &op.created),
            ("matched", &op.matched),
            ("total", &op.total),
        ] {
            if let Some(v) = v {
                extra.push(format!("{name}: {}", self.s(v)));
            }
        }
        if let Some(m) = &op.max_batch {
            extra.push(format!("max_batch: {} {}", m.value, self.at(m.span)));
        }
        if let Some(m) = &op.max_url_length {
            extra.push(format!("max_url_length: {} {}", m.value, self.at(m.span)));
        }
        if let Some(i) = &op.idempotent {
            extra.push(format!("idempotent: {} {}", i.value, self.at(i.span)));
        }
        if let Some(r) = &op.rate_limit {
            extra.push(format!(
                "rate_limit: {} per {:?} {}",
                r.requests,
                r.per,
                self.at(r.span)
            ));
        }
        for e in extra {
            self.line(indent + 1, e);
        }
    }

    fn error_rules(&mut self, indent: usize, rules: &[ErrorRule]) {
        for r in rules {
            let mut text = format!(
                "error {}: status={:?} kind={:?} {}",
                self.at(r.span),
                r.status,
                r.kind.value,
                self.at(r.kind.span)
            );
            for (name, v) in [
                ("contains", &r.contains),
                ("existing_id", &r.existing_id),
                ("message", &r.message),
            ] {
                if let Some(v) = v {
                    let _ = write!(text, " {name}={}", self.s(v));
                }
            }
            self.line(indent, text);
        }
    }
}
