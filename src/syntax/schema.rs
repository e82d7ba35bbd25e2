//! A JSON Schema (draft 2020-12) of the rule-file format, for editors (the YAML language
//! server validates and completes rule files with it).
//!
//! The schema is built from the decoder's own tables: every mapping the decoder checks with
//! a key table (`flow::KEYS`, `provider::OPERATION_KEYS`, ...) becomes an object whose
//! `properties` are exactly that table's keys, with `additionalProperties: false`, and every
//! enumerated choice (`hit`, `on_match`, auth types, ...) an `enum` of the decoder's
//! choices. So a key the decoder accepts is never flagged by an editor, and an unknown key
//! the decoder reports (`RB0003`) is flagged too. What each key's *value* looks like is
//! described here, per table and key; a key without a description makes the unit tests fail,
//! so a key added to a decoder table cannot be forgotten.
//!
//! The schema checks shape only: expressions, names and cross-file references are for
//! `rulebridge lint`.

use serde_json::{Map, Value, json};

use super::{KINDS, decode, endpoint, flow, policy, provider, record, testcase};

/// The JSON Schema of one rule document (a YAML file may hold several, each checked on its
/// own by the YAML language server).
pub fn rule_file_schema() -> Value {
    Builder::default().schema()
}

/// Collects the schema and the keys that have no value description.
#[derive(Default)]
struct Builder {
    undescribed: Vec<String>,
}

impl Builder {
    fn schema(&mut self) -> Value {
        let mut defs = Map::new();
        let mut branches = Vec::new();
        for kind in KINDS {
            let keys = match *kind {
                "provider" => provider::KEYS,
                "flow" => flow::KEYS,
                "policy" => policy::KEYS,
                "record" => record::KEYS,
                "endpoint" => endpoint::KEYS,
                _ => testcase::KEYS,
            };
            let required = document_required(kind);
            let doc = self.object(kind, keys, required, |b, key| b.document_value(kind, key));
            defs.insert((*kind).to_string(), doc);
            // A provider with `extends:` is an extension of another one: its own table.
            let then = if *kind == "provider" {
                defs.insert("extension".into(), self.extension());
                defs.insert("sql_provider".into(), self.sql_provider());
                json!({
                    "if": { "required": ["extends"] },
                    "then": { "$ref": "#/$defs/extension" },
                    "else": {
                        "if": { "properties": { "type": { "const": "sql" } }, "required": ["type"] },
                        "then": { "$ref": "#/$defs/sql_provider" },
                        "else": { "$ref": "#/$defs/provider" }
                    }
                })
            } else {
                json!({ "$ref": format!("#/$defs/{kind}") })
            };
            branches.push(json!({
                "if": { "properties": { "kind": { "const": kind } }, "required": ["kind"] },
                "then": then
            }));
        }
        defs.insert("mapping".into(), self.mapping());
        defs.insert("mapping_value".into(), self.mapping_value());
        defs.insert("reference".into(), self.reference());
        defs.insert("field_decls".into(), self.field_decls());
        defs.insert("test_cases".into(), self.test_cases());
        defs.insert("rate".into(), self.rate());
        defs.insert("duration".into(), duration());
        defs.insert("names".into(), names());
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://rulebridge.dev/schema/rule-file.json",
            "title": "rulebridge rule document",
            "description": "One YAML document of a rulebridge rule file: a provider, flow, policy, record or test.",
            "type": "object",
            "required": ["kind"],
            "properties": {
                "kind": { "enum": KINDS, "description": "What this document declares." }
            },
            "allOf": branches,
            "$defs": defs,
        })
    }

    /// An object whose keys are exactly `keys` (a decoder table); `value` describes each.
    fn object(
        &mut self,
        table: &str,
        keys: &[&str],
        required: &[&str],
        mut value: impl FnMut(&mut Self, &str) -> Option<Value>,
    ) -> Value {
        let mut properties = Map::new();
        for key in keys {
            let schema = value(self, key).unwrap_or_else(|| {
                self.undescribed.push(format!("{table}.{key}"));
                json!({})
            });
            properties.insert((*key).to_string(), schema);
        }
        json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }

    fn document_value(&mut self, kind: &str, key: &str) -> Option<Value> {
        Some(match (kind, key) {
            (_, "kind") => json!({ "const": kind }),
            (_, "name") => json!({ "type": ["string", "number", "boolean"], "description": "The document's name, unique among documents of its kind." }),
            (_, "description") => string(),
            ("endpoint", "method") => json!({ "enum": ["POST", "PUT", "PATCH"], "description": "The HTTP method the endpoint answers." }),
            ("endpoint", "path") => json!({ "type": "string", "pattern": "^/", "description": "Where `rulebridge serve` serves it, e.g. /api/internal/sync/users (not under /v1/)." }),
            ("endpoint", "auth") => self.object("endpoint.auth", endpoint::AUTH_KEYS, &["header", "secret"], |_, k| Some(match k {
                "header" => json!({ "type": "string", "description": "The request header holding the key." }),
                "secret" => json!({ "type": "string", "description": "The secret the header must equal, e.g. ${env:INTERNAL_API_KEY}; compared in constant time." }),
                _ => json!({ "type": "object", "additionalProperties": expression(), "description": "The body of the 401 answer: key → expression." }),
            })),
            ("endpoint", "require") => self.object("endpoint.require", endpoint::REQUIRE_KEYS, &[], |_, k| Some(match k {
                "headers" => json!({ "type": "array", "items": string(), "description": "Headers every request must carry (else 400)." }),
                _ => json!({ "type": "array", "items": string(), "description": "Body fields (dotted paths) every request must have (else 400)." }),
            })),
            ("endpoint", "invalid" | "response" | "result" | "with") => json!({ "type": "object", "additionalProperties": expression(), "description": "Key → expression over the request (body, headers, tenant) and, as the key says, the outcomes; a null value is left out." }),
            ("endpoint", "tenant" | "records") => expression(),
            ("endpoint", "flow") => json!({ "type": "string", "description": "The flow the records go through." }),
            ("endpoint", "statuses") => json!({ "type": "object", "propertyNames": { "enum": ["created", "updated", "unchanged", "skipped", "failed"] }, "additionalProperties": string(), "description": "Outcome status → the word of the answer (e.g. unchanged: updated)." }),
            ("flow", "source") => {
                let spec = self.object("flow.source", flow::SOURCE_KEYS, &[], |_, k| {
                    Some(match k {
                        "record" => string(),
                        "require" => ref_to("names"),
                        "filter" => expression(),
                        _ => return None,
                    })
                });
                json!({ "anyOf": [string(), spec] })
            }
            ("flow", "target") => {
                self.object("flow.target", flow::TARGET_KEYS, flow::TARGET_KEYS, |_, k| {
                    matches!(k, "provider" | "object").then(string)
                })
            }
            ("flow", "key" | "policy") => string(),
            ("flow", "depends_on") => ref_to("names"),
            ("flow", "secrets") => json!({
                "type": "object",
                "additionalProperties": scalar(),
                "description": "Named secret references, e.g. `api_key: \"${env:API_KEY}\"`."
            }),
            ("flow", "mapping") => ref_to("mapping"),
            ("flow", "let") => {
                let typed = self.object("flow.let", flow::LET_KEYS, &["expr"], |_, k| {
                    Some(match k {
                        "type" | "description" => string(),
                        "expr" => expression(),
                        _ => return None,
                    })
                });
                json!({
                    "type": "object",
                    "description": "Named values computed once per record: `NAME: EXPR` or `NAME: { type, expr }`.",
                    "additionalProperties": { "anyOf": [expression(), scalar(), typed] }
                })
            }
            ("flow", "options") => self.object("flow.options", flow::OPTIONS_KEYS, &[], |_, k| {
                Some(match k {
                    "omit_nulls" | "audit_payloads" => json!({ "type": "boolean" }),
                    "required" => ref_to("names"),
                    _ => return None,
                })
            }),
            ("flow", "duplicates") => self.object(
                "flow.duplicates",
                flow::DUPLICATES_KEYS,
                &["match"],
                |_, k| {
                    Some(match k {
                        "match" => ref_to("names"),
                        "on_match" => choice(flow::ON_MATCH),
                        "on_multiple" => choice(flow::ON_MULTIPLE),
                        "repeats" => choice(flow::REPEATS),
                        _ => return None,
                    })
                },
            ),
            ("flow" | "policy", "tests") => ref_to("test_cases"),
            ("policy", "hit") => choice(policy::HIT),
            ("policy", "inputs") => ref_to("names"),
            ("policy", "outputs") => {
                let decl = self.object("policy.outputs", policy::OUTPUT_KEYS, &["name"], |_, k| {
                    matches!(k, "name" | "type").then(string)
                });
                json!({ "anyOf": [string(), { "type": "array", "items": { "anyOf": [string(), decl] } }] })
            }
            ("policy", "rows") => {
                let row = self.object("policy.rows", policy::ROW_KEYS, policy::ROW_KEYS, |_, k| {
                    matches!(k, "when" | "then").then(|| json!({}))
                });
                json!({ "type": "array", "items": { "anyOf": [{ "type": "array" }, row] } })
            }
            ("record", "fields") => ref_to("field_decls"),
            ("test", "flow" | "policy") => string(),
            ("test", "cases") => ref_to("test_cases"),
            ("provider", "extends") => json!({ "type": "string", "description": "The provider this document adds fields to (an extension: no `base_url`, `auth` or operations of its own)." }),
            ("provider", "type") => json!({ "enum": ["http", "sql"], "description": "`http` (the default): an HTTP API; `sql`: a database whose objects are tables." }),
            ("provider", "base_url") => json!({ "type": "string", "description": "The API's root URL (`https://...`), or a secret reference or template." }),
            ("provider", "auth") => self.auth(),
            ("provider", "rate_limit") => ref_to("rate"),
            ("provider", "retry") => self.object("provider.retry", provider::RETRY_KEYS, &[], |_, k| {
                Some(match k {
                    "attempts" => json!({ "type": "integer", "minimum": 1 }),
                    "base" | "max" => ref_to("duration"),
                    "on" => json!({ "anyOf": [string(), { "type": "array", "items": { "type": ["integer", "string"] } }] }),
                    "respect_retry_after" => json!({ "type": "boolean" }),
                    "backoff" => json!({ "enum": ["exponential"] }),
                    _ => return None,
                })
            }),
            ("provider", "timeout") => ref_to("duration"),
            ("provider", "headers") => string_map(),
            ("provider", "objects") => self.objects(),
            ("provider", "secrets") => json!({
                "type": "object",
                "additionalProperties": scalar(),
                "description": "Named secret references templates read as `secrets.NAME`."
            }),
            ("provider", "vars") => ref_to("names"),
            ("provider", "rate_limit_headers") => {
                let header = self.object(
                    "provider.rate_limit_headers",
                    provider::RATE_LIMIT_HEADER_KEYS,
                    &[],
                    |_, k| {
                        Some(match k {
                            "unit" => choice(provider::RESET_UNITS),
                            _ => string(),
                        })
                    },
                );
                json!({ "type": "array", "items": header })
            }
            ("provider", "errors") => self.error_rules(),
            ("provider", "connect") => self.object(
                "provider.connect",
                provider::CONNECT_KEYS,
                &["type", "authorize_url", "token_url", "client_id", "client_secret", "redirect_url"],
                |_, k| {
                    Some(match k {
                        "type" => json!({ "enum": provider::CONNECT_TYPES }),
                        "scopes" => json!({ "anyOf": [string(), { "type": "array", "items": string() }] }),
                        "params" => string_map(),
                        _ => string(),
                    })
                },
            ),
            ("provider", "config") => {
                let field = self.object(
                    "provider.config",
                    provider::CONFIG_FIELD_KEYS,
                    &[],
                    |_, k| {
                        Some(match k {
                            "sensitive" | "required" => json!({ "type": "boolean" }),
                            _ => string(),
                        })
                    },
                );
                json!({
                    "type": "object",
                    "additionalProperties": { "anyOf": [string(), field] },
                    "description": "The settings a user enters to connect the kit (a form, `rulebridge creds set PROVIDER`): `NAME: { label, description, sensitive, required }`, or `NAME: LABEL`."
                })
            }
            _ => return None,
        })
    }

    fn mapping(&mut self) -> Value {
        json!({
            "type": "object",
            "description": "Target fields and how each is produced: an expression, a constant, `{ value }`, `{ template }`, `{ expr }`, `{ fields }` or a nested mapping.",
            "additionalProperties": ref_to("mapping_value"),
        })
    }

    fn mapping_value(&mut self) -> Value {
        let mut forms = vec![
            json!({ "type": "string", "description": "An expression over the record." }),
            json!({ "type": ["number", "boolean", "null"] }),
        ];
        for form in flow::VALUE_FORMS {
            let value = match *form {
                "value" => json!({}),
                "template" | "expr" => string(),
                "fields" => ref_to("mapping"),
                _ => {
                    self.undescribed.push(format!("flow.mapping.{form}"));
                    json!({})
                }
            };
            let mut properties = Map::new();
            properties.insert((*form).to_string(), value);
            forms.push(json!({
                "type": "object",
                "properties": properties,
                "required": [form],
                "additionalProperties": false,
            }));
        }
        forms.push(ref_to("reference"));
        forms.push(ref_to("mapping"));
        json!({ "anyOf": forms })
    }

    /// `{ ref: OBJECT, where: { FIELD: EXPR | reference } }`.
    fn reference(&mut self) -> Value {
        let mut properties = Map::new();
        for key in flow::REF_KEYS {
            let value = match *key {
                "ref" => {
                    json!({ "type": "string", "description": "The referenced object of the flow's provider." })
                }
                "where" => json!({
                    "type": "object",
                    "description": "The fields the referenced record is found by (all must match), each an expression or a reference.",
                    "additionalProperties": { "anyOf": [expression(), scalar(), ref_to("reference")] },
                }),
                _ => {
                    self.undescribed.push(format!("flow.mapping.ref.{key}"));
                    json!({})
                }
            };
            properties.insert((*key).to_string(), value);
        }
        json!({
            "type": "object",
            "description": "The target's own id of a record of another object, found by its search operation when the record is sent.",
            "properties": properties,
            "required": flow::REF_KEYS,
            "additionalProperties": false,
        })
    }

    fn field_decls(&mut self) -> Value {
        let decl = self.object("record.fields", record::FIELD_KEYS, &[], |_, k| {
            Some(match k {
                "type" => string(),
                "required" | "sensitive" => json!({ "type": "boolean" }),
                "options" => json!({ "type": "array", "items": scalar() }),
                "label" | "description" => string(),
                _ => return None,
            })
        });
        json!({
            "type": "object",
            "description": "Field names and their types (`email: string`, `stage: { type: enum, options: [...] }`).",
            "additionalProperties": { "anyOf": [string(), decl] },
        })
    }

    fn test_cases(&mut self) -> Value {
        let expect = self.object("tests.expect", testcase::EXPECT_KEYS, &[], |_, k| {
            Some(match k {
                "payload" | "policy" => json!({ "type": "object" }),
                "status" => json!({ "enum": testcase::STATUSES }),
                "error" | "key" | "target_id" => scalar(),
                "record" => json!({ "type": "object" }),
                "match" => choice(testcase::MATCH_MODES),
                _ => return None,
            })
        });
        let case = self.object("tests", testcase::CASE_KEYS, &["name", "expect"], |_, k| {
            Some(match k {
                "name" => scalar(),
                "description" => string(),
                "input" => json!({ "type": "object" }),
                "secrets" => string_map(),
                "existing" => json!({ "type": "array", "items": { "type": "object" } }),
                "expect" => expect.clone(),
                _ => return None,
            })
        });
        json!({ "type": "array", "items": case })
    }

    fn rate(&mut self) -> Value {
        let form = self.object("rate", decode::RATE_KEYS, decode::RATE_KEYS, |_, k| {
            Some(match k {
                "requests" => json!({ "type": "integer", "minimum": 1 }),
                "per" => ref_to("duration"),
                _ => return None,
            })
        });
        json!({ "anyOf": [{ "type": "string", "description": "`100 per 10s`, `4/1s`, `600 per minute`." }, form] })
    }

    /// `auth: none`, or a mapping whose keys depend on its `type`.
    fn auth(&mut self) -> Value {
        let mut branches = Vec::new();
        for ty in provider::AUTH_TYPES {
            let keys = provider::auth_keys(ty).unwrap_or_default();
            let required: Vec<&str> = keys
                .iter()
                .copied()
                .filter(|k| matches!(*k, "type") || auth_key_required(ty, k))
                .collect();
            let table = format!("provider.auth.{ty}");
            let form = self.object(&table, &keys, &required, |_, k| {
                Some(match k {
                    "type" => json!({ "const": ty }),
                    "in" => json!({ "enum": ["header", "query"] }),
                    "scopes" => {
                        json!({ "anyOf": [string(), { "type": "array", "items": string() }] })
                    }
                    "name" | "value" | "token" | "username" | "password" | "token_url"
                    | "client_id" | "client_secret" | "refresh_token" | "expires"
                    | "keep_alive_url" => scalar(),
                    "base_url_from" => json!({ "type": "string", "description": "JSONPath of a URL in the token response whose origin replaces the base URL's." }),
                    _ => return None,
                })
            });
            branches.push(json!({
                "if": { "properties": { "type": { "const": ty } }, "required": ["type"] },
                "then": form,
            }));
        }
        json!({
            "anyOf": [
                { "const": "none" },
                {
                    "type": "object",
                    "required": ["type"],
                    "properties": { "type": { "enum": provider::AUTH_TYPES } },
                    "allOf": branches,
                }
            ]
        })
    }

    fn objects(&mut self) -> Value {
        let operation = self.object(
            "provider.operations",
            provider::OPERATION_KEYS,
            &["method", "path"],
            |s, k| {
                Some(match k {
                    "description" | "path" => string(),
                    "method" => json!({ "type": "string", "examples": provider::METHODS }),
                    "batch" => s.object("provider.operations.batch", provider::BATCH_KEYS, &[], |_, k| {
                        Some(match k {
                            "group_by" => expression(),
                            _ => return None,
                        })
                    }),
                    "query" | "headers" => string_map(),
                    "body" | "item" => json!({}),
                    "id" | "results" | "item_errors" | "created" | "matched" | "total" => {
                        string()
                    }
                    "max_batch" => json!({ "type": "integer", "minimum": 1 }),
                    "max_url_length" => json!({ "type": "integer", "minimum": 256 }),
                    "idempotent" => json!({ "type": "boolean" }),
                    "rate_limit" => ref_to("rate"),
                    "types" => string_map(),
                    "field" => json!({
                        "type": "object",
                        "propertyNames": { "enum": provider::FIELD_MAP_KEYS },
                        "additionalProperties": scalar(),
                        "description": "How a discovered field maps to rulebridge's field model: an expression per key."
                    }),
                    _ => return None,
                })
            },
        );
        let errors = self.error_rules();
        let object = self.object("provider.objects", provider::OBJECT_KEYS, &[], |_, k| {
            Some(match k {
                "description" => string(),
                "fields" => ref_to("field_decls"),
                "operations" => {
                    json!({ "type": "object", "additionalProperties": operation.clone() })
                }
                "errors" => errors.clone(),
                "response" => json!({
                    "type": "object",
                    "propertyNames": { "enum": provider::RESPONSE_KEYS },
                    "additionalProperties": { "anyOf": [string(), { "type": "array", "items": string() }] },
                    "description": "Where a found record's id, modification time and fields are (JSONPath)."
                }),
                _ => return None,
            })
        });
        json!({ "type": "object", "additionalProperties": object })
    }

    /// `kind: provider` with `extends:`: fields added to the base provider's objects.
    fn extension(&mut self) -> Value {
        let object = self.object(
            "provider.extension.objects",
            provider::EXTENSION_OBJECT_KEYS,
            &[],
            |_, k| {
                Some(match k {
                    "description" => string(),
                    "fields" => ref_to("field_decls"),
                    _ => return None,
                })
            },
        );
        self.object(
            "provider.extension",
            provider::EXTENSION_KEYS,
            &["kind", "extends"],
            |b, k| match k {
                "objects" => {
                    Some(json!({ "type": "object", "additionalProperties": object.clone() }))
                }
                _ => b.document_value("provider", k),
            },
        )
    }

    /// `kind: provider` with `type: sql`: a database whose objects are tables.
    fn sql_provider(&mut self) -> Value {
        let table = self.object(
            "provider.sql.objects",
            provider::SQL_OBJECT_KEYS,
            &[],
            |_, k| {
                Some(match k {
                    "description" => string(),
                    "fields" => ref_to("field_decls"),
                    _ => return None,
                })
            },
        );
        let per_backend = self.object(
            "provider.sql.migrations",
            provider::MIGRATION_KEYS,
            &[],
            |_, k| matches!(k, "sqlite" | "postgres").then(string),
        );
        self.object(
            "provider.sql",
            provider::SQL_KEYS,
            &["kind", "name", "type", "database"],
            |b, k| match k {
                "type" => Some(json!({ "const": "sql" })),
                "database" => Some(json!({ "type": "string", "description": "An SQLite file (relative to the rules directory), a `postgres://` URL, or a secret reference to either (`${env:USERS_DB_URL}`)." })),
                "migrations" => Some(json!({
                    "type": "array",
                    "items": { "anyOf": [string(), per_backend.clone()] },
                    "description": "SQL files applied in order when the database is opened: a file for both backends, or `{ sqlite: FILE, postgres: FILE }`."
                })),
                "objects" => Some(json!({ "type": "object", "additionalProperties": { "anyOf": [{ "type": "null" }, table.clone()] }, "description": "The tables written to, by name." })),
                _ => b.document_value("provider", k),
            },
        )
    }

    fn error_rules(&mut self) -> Value {
        let rule = self.object(
            "provider.errors",
            provider::ERROR_RULE_KEYS,
            &["kind"],
            |_, k| {
                Some(match k {
                    "status" => json!({ "anyOf": [{ "type": ["integer", "string"] }, { "type": "array", "items": { "type": ["integer", "string"] } }] }),
                    "contains" | "existing_id" | "message" | "field" | "correlation_id" => string(),
                    "kind" => choice(provider::ERROR_KINDS),
                    _ => return None,
                })
            },
        );
        json!({ "type": "array", "items": rule })
    }
}

/// Fields a document of `kind` cannot do without (the decoder's `require` calls).
fn document_required(kind: &str) -> &'static [&'static str] {
    match kind {
        "provider" => &["kind", "name", "base_url"],
        "flow" => &["kind", "name", "target", "mapping"],
        "policy" => &["kind", "name", "inputs", "outputs", "rows"],
        "record" => &["kind", "name", "fields"],
        "endpoint" => &["kind", "name", "method", "path", "records", "flow"],
        _ => &["kind", "cases"],
    }
}

fn auth_key_required(ty: &str, key: &str) -> bool {
    !matches!(
        (ty, key),
        ("api_key", "in")
            | (_, "scopes" | "base_url_from")
            | ("token_exchange", "token" | "expires" | "keep_alive_url")
    )
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn expression() -> Value {
    json!({ "type": "string", "description": "An expression over the record." })
}

fn scalar() -> Value {
    json!({ "type": ["string", "number", "boolean"] })
}

fn string_map() -> Value {
    json!({ "type": "object", "additionalProperties": scalar() })
}

fn names() -> Value {
    json!({ "anyOf": [string(), { "type": "array", "items": string() }] })
}

fn duration() -> Value {
    json!({ "type": "string", "description": "`500ms`, `10s`, `1m`, `2h` or `1m30s`." })
}

fn ref_to(def: &str) -> Value {
    json!({ "$ref": format!("#/$defs/{def}") })
}

fn choice<T>(choices: &[(&str, T)]) -> Value {
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    json!({ "enum": names })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decoder_key_has_a_value_description() {
        let mut b = Builder::default();
        let _ = b.schema();
        assert!(
            b.undescribed.is_empty(),
            "describe these keys in syntax/schema.rs: {:?}",
            b.undescribed
        );
    }

    #[test]
    fn documents_allow_exactly_the_decoder_keys() {
        let schema = rule_file_schema();
        let flow = &schema["$defs"]["flow"];
        let keys: Vec<&str> = flow["properties"]
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys, flow::KEYS);
        assert_eq!(flow["additionalProperties"], json!(false));
    }
}
