//! SARIF 2.1.0 (Static Analysis Results Interchange Format) for code-scanning tools.

use serde_json::{Value, json};

use super::locate;
use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::span::{Location, SourceMap};

pub(super) fn render(diags: &[Diagnostic], sources: &SourceMap) -> String {
    let rules: Vec<Value> = Code::ALL
        .iter()
        .map(|c| {
            json!({
                "id": c.as_str(),
                "shortDescription": { "text": c.summary() },
                "defaultConfiguration": { "level": level(c.default_severity()) },
            })
        })
        .collect();
    let results: Vec<Value> = diags
        .iter()
        .map(|d| {
            let mut text = d.message.clone();
            if let Some(help) = &d.help {
                text.push_str("\nhelp: ");
                text.push_str(help);
            }
            let mut result = json!({
                "ruleId": d.code.as_str(),
                "ruleIndex": Code::ALL.iter().position(|c| *c == d.code),
                "level": level(d.severity),
                "message": { "text": text },
            });
            if let Some(loc) = locate(sources, d.span) {
                result["locations"] = json!([physical(&loc)]);
            }
            let related: Vec<Value> = d
                .related
                .iter()
                .filter_map(|l| {
                    let loc = locate(sources, l.span)?;
                    let mut v = physical(&loc);
                    v["message"] = json!({ "text": l.message });
                    Some(v)
                })
                .collect();
            if !related.is_empty() {
                result["relatedLocations"] = Value::Array(related);
            }
            result
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "rulebridge",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "results": results,
        }],
    });
    let mut out = serde_json::to_string_pretty(&log).unwrap_or_else(|_| "{}".to_string());
    out.push('\n');
    out
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn physical(loc: &Location) -> Value {
    json!({
        "physicalLocation": {
            "artifactLocation": { "uri": uri(&loc.file) },
            "region": {
                "startLine": loc.line,
                "startColumn": loc.column,
                "endLine": loc.end_line,
                "endColumn": loc.end_column,
            }
        }
    })
}

/// A URI for a file path: relative paths stay relative references, absolute ones become
/// `file://` URIs; forward slashes, reserved characters escaped.
fn uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let bytes = path.as_bytes();
    let mut out = String::new();
    if path.starts_with('/') {
        out.push_str("file://");
    } else if bytes.len() > 2 && bytes[1] == b':' && bytes[2] == b'/' {
        out.push_str("file:///");
    }
    for c in path.chars() {
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '.' | '_' | '~' | '/' | ':' => out.push(c),
            _ => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_escaped() {
        assert_eq!(uri("rules/my flows/x.yaml"), "rules/my%20flows/x.yaml");
        assert_eq!(uri("rules\\x.yaml"), "rules/x.yaml");
        assert_eq!(uri("/tmp/r/x.yaml"), "file:///tmp/r/x.yaml");
        assert_eq!(uri("C:\\r\\x.yaml"), "file:///C:/r/x.yaml");
    }
}
