//! Batch lookups, batch creates and batch updates from kit data, against a local server:
//! results attributed to the values they matched, requests split when their URL is too long or
//! the answer is a first page only, per-record results of creates and updates, and a batch
//! create whose answer was lost failing every record with `outcome_unknown`.

mod http_support;

use http_support::{Reply, Seen, connector, serve, try_provider};
use rulebridge::connect::{Call, Connector, UpdateItem};
use serde_json::{Value, json};

/// The values of a `?in=a,b,c` query.
fn values_of(s: &Seen) -> Vec<String> {
    let q = s.query.clone().unwrap_or_default();
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "in")
        .map(|(_, v)| v.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

fn provider(extra_search: &str) -> String {
    format!(
        r#"kind: provider
name: many
base_url: http://placeholder.invalid
retry: {{ attempts: 2, base: 10ms, max: 20ms, on: [503, network] }}
objects:
  person:
    response: {{ fields: "$.attrs" }}
    operations:
      search: {{ method: GET, path: /people, query: {{ email: "{{{{ key }}}}" }}, results: "$.data[*]" }}
      batch_search:
        method: GET
        path: /people
        query: {{ in: "{{{{ values | join(',') }}}}", by: "{{{{ field }}}}" }}
        results: "$.data[*]"
        max_batch: 50
{extra_search}
      create: {{ method: POST, path: /people, body: "{{{{ payload }}}}" }}
      update: {{ method: PUT, path: "/people/{{{{ id }}}}", body: "{{{{ payload }}}}" }}
      batch_create:
        method: POST
        path: /people/bulk
        item: {{ fields: "{{{{ payload }}}}" }}
        body: {{ records: "{{{{ items }}}}" }}
        results: "$.results[*]"
        max_batch: 2
      batch_update:
        method: PATCH
        path: /people/bulk
        item: {{ id: "{{{{ id }}}}", fields: "{{{{ payload }}}}" }}
        body: {{ records: "{{{{ items }}}}", ids: "{{{{ ids }}}}" }}
        results: "$.results[*]"
"#
    )
}

/// People whose e-mail is one of the values asked for; stored e-mails are mixed-case.
fn people(s: &Seen) -> Vec<Value> {
    values_of(s)
        .iter()
        .filter(|v| !v.starts_with("nobody"))
        .enumerate()
        .map(|(i, v)| json!({"id": format!("p-{v}"), "attrs": {"email": format!(" {} ", v.to_uppercase()), "n": i}}))
        .collect()
}

#[tokio::test]
async fn a_batch_lookup_attributes_every_result_to_its_value() {
    let server = serve(|s, _| {
        let mut data = people(s);
        // A record that matches none of the values is ignored.
        data.push(json!({"id": "stray", "attrs": {"email": "someone@else.com"}}));
        Reply::json(200, json!({"data": data}))
    })
    .await;
    let c = connector(&provider(""), &server, &[]);
    assert_eq!(c.capabilities("person").batch_search, Some(50));
    let values = ["a@x.com", "nobody@x.com", "b@x.com"];
    let found = c
        .search_many(&Call::default(), "person", "email", &values)
        .await
        .expect("lookup");
    let got: Vec<(usize, String)> = found.iter().map(|(i, f)| (*i, f.id.clone())).collect();
    assert_eq!(
        got,
        [(0, "p-a@x.com".to_string()), (2, "p-b@x.com".to_string())]
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "one request");
    assert_eq!(values_of(&seen[0]), values);
    assert!(
        seen[0]
            .query
            .as_deref()
            .is_some_and(|q| q.contains("by=email"))
    );
}

#[tokio::test]
async fn a_lookup_longer_than_the_url_limit_is_split() {
    let server = serve(|s, _| Reply::json(200, json!({"data": people(s)}))).await;
    let c = connector(&provider("        max_url_length: 300"), &server, &[]);
    let values: Vec<String> = (0..40)
        .map(|i| format!("someone{i:02}@example.com"))
        .collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let found = c
        .search_many(&Call::default(), "person", "email", &refs)
        .await
        .expect("lookup");
    let mut got: Vec<usize> = found.iter().map(|(i, _)| *i).collect();
    got.sort_unstable();
    assert_eq!(got, (0..40).collect::<Vec<_>>(), "every value found once");
    let seen = server.seen();
    assert!(seen.len() > 1, "split");
    for s in &seen {
        let target = s.path.len() + 1 + s.query.as_deref().map_or(0, str::len);
        assert!(target <= 300, "{target}: {:?}", s.query);
    }
    let asked: usize = seen.iter().map(|s| values_of(s).len()).sum();
    assert_eq!(asked, 40, "each value asked for once");
}

#[tokio::test]
async fn a_first_page_only_is_looked_up_again_in_halves() {
    // The server answers at most 2 records per request, saying how many matched in all.
    let server = serve(|s, _| {
        let all = people(s);
        let page: Vec<Value> = all.iter().take(2).cloned().collect();
        Reply::json(200, json!({"data": page, "total": all.len()}))
    })
    .await;
    let c = connector(&provider("        total: \"$.total\""), &server, &[]);
    let values = ["a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com"];
    let found = c
        .search_many(&Call::default(), "person", "email", &values)
        .await
        .expect("lookup");
    let mut got: Vec<usize> = found.iter().map(|(i, _)| *i).collect();
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3, 4], "nothing missed");
}

#[tokio::test]
async fn a_matched_path_says_which_value_a_result_matched() {
    let server = serve(|s, _| {
        let data: Vec<Value> = values_of(s)
            .iter()
            .rev()
            .map(|v| json!({"id": format!("p-{v}"), "attrs": {}, "contact": {"mail": v.to_uppercase()}}))
            .collect();
        Reply::json(200, json!({"data": data}))
    })
    .await;
    let c = connector(
        &provider("        matched: \"$.contact.mail\""),
        &server,
        &[],
    );
    let found = c
        .search_many(&Call::default(), "person", "email", &["a@x.com", "b@x.com"])
        .await
        .expect("lookup");
    let mut got: Vec<(usize, String)> = found.iter().map(|(i, f)| (*i, f.id.clone())).collect();
    got.sort();
    assert_eq!(
        got,
        [(0, "p-a@x.com".to_string()), (1, "p-b@x.com".to_string())]
    );
}

#[tokio::test]
async fn batch_creates_and_updates_report_each_record() {
    let server = serve(|s, _| {
        let records = s.body["records"].as_array().cloned().unwrap_or_default();
        let results: Vec<Value> = records
            .iter()
            .map(|r| {
                if r["fields"]["name"] == "bad" {
                    json!({"success": false, "errors": [{"statusCode": 400, "message": "name is bad"}]})
                } else if s.method == "PATCH" {
                    json!({"id": r["id"], "success": true})
                } else {
                    json!({"id": format!("new-{}", r["fields"]["name"].as_str().unwrap_or("")), "success": true})
                }
            })
            .collect();
        Reply::json(200, json!({"results": results}))
    })
    .await;
    let c = connector(&provider(""), &server, &[]);
    let caps = c.capabilities("person");
    assert_eq!((caps.batch_create, caps.batch_update), (Some(2), Some(100)));
    let payloads = [
        json!({"name": "ada"}),
        json!({"name": "bad"}),
        json!({"name": "eve"}),
    ];
    let refs: Vec<&Value> = payloads.iter().collect();
    let out = c.create_batch(&Call::default(), "person", &refs).await;
    let shown: Vec<Result<Option<String>, String>> = out
        .iter()
        .map(|r| {
            r.as_ref()
                .map(|w| w.id.clone())
                .map_err(|e| e.message.clone())
        })
        .collect();
    assert_eq!(
        shown,
        [
            Ok(Some("new-ada".into())),
            Err("name is bad".into()),
            Ok(Some("new-eve".into()))
        ]
    );
    assert_eq!(server.to("/people/bulk").len(), 2, "chunks of max_batch 2");
    let first = &server.to("/people/bulk")[0];
    assert_eq!(first.body["records"][0], json!({"fields": {"name": "ada"}}));

    let items = [
        UpdateItem {
            id: "9",
            payload: &payloads[0],
        },
        UpdateItem {
            id: "8",
            payload: &payloads[2],
        },
    ];
    let out = c.update_batch(&Call::default(), "person", &items).await;
    let shown: Vec<Option<(Option<String>, Option<bool>)>> = out
        .iter()
        .map(|r| r.as_ref().ok().map(|w| (w.id.clone(), w.created)))
        .collect();
    assert_eq!(
        shown,
        [
            Some((Some("9".into()), Some(false))),
            Some((Some("8".into()), Some(false)))
        ]
    );
    let patch = server
        .seen()
        .into_iter()
        .find(|s| s.method == "PATCH")
        .expect("a batch update");
    assert_eq!(patch.body["ids"], json!(["9", "8"]));
    assert_eq!(
        patch.body["records"][1],
        json!({"id": "8", "fields": {"name": "eve"}})
    );
}

#[tokio::test]
async fn a_batch_create_whose_answer_was_lost_is_not_sent_again() {
    let server = serve(|s, _| match s.method.as_str() {
        "POST" => Reply::hang_up(),
        _ => Reply::json(200, json!({"data": []})),
    })
    .await;
    let c = connector(&provider(""), &server, &[]);
    let payloads = [json!({"name": "ada"}), json!({"name": "eve"})];
    let refs: Vec<&Value> = payloads.iter().collect();
    let out = c.create_batch(&Call::default(), "person", &refs).await;
    assert!(
        out.iter()
            .all(|r| r.as_ref().is_err_and(|e| e.outcome_unknown)),
        "{out:?}"
    );
    assert_eq!(server.to("/people/bulk").len(), 1, "sent once");
}

#[tokio::test]
async fn a_batch_create_answer_that_misses_a_record_leaves_it_unknown() {
    // Two records sent, one result back that cannot be placed: either may exist, so they are
    // looked up, not created again.
    let server =
        serve(|_, _| Reply::json(200, json!({"results": [{"id": "1", "success": true}]}))).await;
    let c = connector(&provider(""), &server, &[]);
    let payloads = [json!({"name": "ada"}), json!({"name": "eve"})];
    let refs: Vec<&Value> = payloads.iter().collect();
    let out = c.create_batch(&Call::default(), "person", &refs).await;
    assert!(
        out.iter()
            .all(|r| r.as_ref().is_err_and(|e| e.outcome_unknown)),
        "{out:?}"
    );
}

#[test]
fn batch_operations_must_send_their_batch() {
    let yaml = provider("").replace(
        r#"query: { in: "{{ values | join(',') }}", by: "{{ field }}" }"#,
        r#"query: { by: "{{ field }}" }"#,
    );
    let errors = try_provider(&yaml).expect_err("a batch lookup that never sends its values");
    assert!(errors.iter().any(|e| e.starts_with("RB5008")), "{errors:?}");
    let yaml = provider("").replace(
        r#"body: { records: "{{ items }}" }"#,
        r#"body: { records: [] }"#,
    );
    let errors = try_provider(&yaml).expect_err("a batch create that never sends its items");
    assert!(errors.iter().any(|e| e.starts_with("RB5008")), "{errors:?}");
}

#[tokio::test]
async fn the_hubspot_kit_looks_up_many_emails_in_one_search() {
    let sb = rulebridge_sandbox::start(rulebridge_sandbox::SandboxConfig::default())
        .await
        .expect("sandbox");
    let options = rulebridge::connect::http::HttpOptions {
        base_url: sb.kit_base_url("hubspot"),
        secrets: rulebridge_sandbox::CREDENTIALS
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    rulebridge::secrets::Secret::new(v.to_string()),
                )
            })
            .collect(),
        read_env: false,
        ..rulebridge::connect::http::HttpOptions::default()
    };
    let c = rulebridge::connect::http::HttpConnector::new(&http_support::kit("hubspot"), options)
        .expect("connector");
    for email in ["ada@example.com", "grace@example.com"] {
        c.create(&Call::default(), "contact", &json!({"email": email}))
            .await
            .expect("create");
    }
    let before = sb.state().providers["hubspot"].requests;
    let found = c
        .search_many(
            &Call::default(),
            "contact",
            "email",
            &["grace@example.com", "nobody@example.com", "ada@example.com"],
        )
        .await
        .expect("search");
    let mut got: Vec<usize> = found.iter().map(|(i, _)| *i).collect();
    got.sort_unstable();
    assert_eq!(got, [0, 2]);
    assert_eq!(sb.state().providers["hubspot"].requests - before, 1);
}
