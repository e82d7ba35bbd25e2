//! Error classification with the provider kits' rules, against vendor-shaped error bodies.

mod http_support;

use http_support::{Reply, kit, options, serve};
use rulebridge::connect::Call;
use rulebridge::connect::http::HttpConnector;
use rulebridge::connect::{Connector, ErrorKind};
use serde_json::json;

#[tokio::test]
async fn hubspot_409_is_a_duplicate_with_the_existing_id() {
    let server = serve(|_, _| {
        Reply::json(
            409,
            json!({"status": "error", "message": "Contact already exists. Existing ID: 2926551",
            "correlationId": "a1b2", "category": "CONFLICT"}),
        )
    })
    .await;
    let c = HttpConnector::new(
        &kit("hubspot"),
        options(&server, &[("HUBSPOT_TOKEN", "pat-1")]),
    )
    .expect("build");
    let e = c
        .create(&Call::default(), "contact", &json!({"email": "a@x.com"}))
        .await
        .expect_err("exists");
    assert_eq!(e.kind, ErrorKind::Duplicate);
    assert_eq!(e.status, Some(409));
    assert_eq!(e.existing_id.as_deref(), Some("2926551"));
    assert_eq!(e.message, "Contact already exists. Existing ID: 2926551");
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn salesforce_duplicate_value_carries_the_id() {
    let server = serve(|s, _| match s.path.as_str() {
        "/services/oauth2/token" => Reply::json(200, json!({"access_token": "00D!x", "instance_url": "https://na1.example.com", "token_type": "Bearer", "issued_at": "1"})),
        _ => Reply::json(400, json!([{"message": "duplicate value found: Email__c duplicates value on record with id: 00Q5e00000AbCdEFGH",
            "errorCode": "DUPLICATE_VALUE", "fields": []}])),
    })
    .await;
    let secrets = [
        ("SALESFORCE_CLIENT_ID", "cid"),
        ("SALESFORCE_CLIENT_SECRET", "cs"),
        ("SALESFORCE_REFRESH_TOKEN", "rt"),
    ];
    let c = HttpConnector::new(&kit("salesforce"), options(&server, &secrets)).expect("build");
    let e = c
        .create(
            &Call::default(),
            "lead",
            &json!({"LastName": "Lovelace", "Company": "AE"}),
        )
        .await
        .expect_err("duplicate");
    assert_eq!(e.kind, ErrorKind::Duplicate);
    assert_eq!(e.status, Some(400));
    assert_eq!(e.existing_id.as_deref(), Some("00Q5e00000AbCdEFGH"));
    assert!(
        e.message.starts_with("duplicate value found"),
        "{}",
        e.message
    );
    // The token came from the (rebased) token URL and was used.
    assert_eq!(server.to("/services/oauth2/token").len(), 1);
    assert_eq!(
        server.to("/services/data/v58.0/sobjects/Lead")[0].header("authorization"),
        Some("Bearer 00D!x")
    );
}

#[tokio::test]
async fn salesforce_other_400s_are_validation_errors() {
    let server = serve(|s, _| match s.path.as_str() {
        "/services/oauth2/token" => Reply::json(200, json!({"access_token": "tok", "token_type": "Bearer"})),
        _ => Reply::json(400, json!([{"message": "Required fields are missing: [Company]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Company"]}])),
    })
    .await;
    let secrets = [
        ("SALESFORCE_CLIENT_ID", "cid"),
        ("SALESFORCE_CLIENT_SECRET", "cs"),
        ("SALESFORCE_REFRESH_TOKEN", "rt"),
    ];
    let c = HttpConnector::new(&kit("salesforce"), options(&server, &secrets)).expect("build");
    let e = c
        .create(&Call::default(), "lead", &json!({"LastName": "L"}))
        .await
        .expect_err("invalid");
    assert_eq!(e.kind, ErrorKind::Validation);
    assert_eq!(e.field.as_deref(), Some("Company"));
    assert_eq!(e.message, "Required fields are missing: [Company]");
}

#[tokio::test]
async fn chatwoot_422_is_a_duplicate_without_an_id() {
    let server = serve(|_, _| {
        Reply::json(
            422,
            json!({"message": "Email has already been taken", "attributes": ["email"]}),
        )
    })
    .await;
    let c = HttpConnector::new(
        &kit("chatwoot"),
        options(
            &server,
            &[("CHATWOOT_API_KEY", "cw"), ("CHATWOOT_ACCOUNT_ID", "1")],
        ),
    )
    .expect("build");
    let e = c
        .create(
            &Call::default(),
            "contact",
            &json!({"email": "a@x.com", "name": "A"}),
        )
        .await
        .expect_err("taken");
    assert_eq!(e.kind, ErrorKind::Duplicate);
    assert_eq!(e.status, Some(422));
    assert_eq!(e.existing_id, None);
    assert_eq!(e.message, "Email has already been taken");
    assert_eq!(server.seen()[0].header("api_access_token"), Some("cw"));
}

#[tokio::test]
async fn defaults_without_a_matching_rule() {
    let server = serve(|s, _| match s.path.as_str() {
        "/contacts/404" => Reply::json(404, json!({"message": "not here"})),
        "/contacts/403" => Reply::json(403, json!({"message": "forbidden"})),
        "/contacts/418" => Reply::raw(418, "text/plain", b"I'm a teapot"),
        // A vendor's Latin-1 message inside JSON ("caf\xe9"): still read as JSON.
        "/contacts/422" => Reply::raw(
            422,
            "application/json",
            b"{\"message\": \"caf\xe9 closed\"}",
        ),
        "/contacts/500" => Reply::raw(500, "text/html", b"<h1>caf\xe9</h1>"),
        _ => Reply::json(200, json!({})),
    })
    .await;
    let yaml = http_support::simple("none", "retry: { attempts: 1 }");
    let c = http_support::connector(&yaml, &server, &[]);
    let kind = |id: &'static str| {
        let c = &c;
        async move {
            c.update(&Call::default(), "contact", id, &json!({}))
                .await
                .map_err(|e| (e.kind, e.message))
        }
    };
    assert_eq!(
        kind("404").await,
        Err((ErrorKind::NotFound, "not here".into()))
    );
    assert_eq!(
        kind("403").await,
        Err((ErrorKind::Auth, "forbidden".into()))
    );
    assert_eq!(
        kind("418").await,
        Err((ErrorKind::Fatal, "I'm a teapot".into()))
    );
    assert_eq!(
        kind("422").await,
        Err((ErrorKind::Validation, "caf\u{fffd} closed".into()))
    );
    assert_eq!(
        kind("500").await,
        Err((ErrorKind::Transient, "<h1>caf\u{fffd}</h1>".into()))
    );
    // An update whose response has no id reports the id it was given.
    let w = c
        .update(&Call::default(), "contact", "77", &json!({}))
        .await;
    assert_eq!(
        w.map(|w| (w.id, w.created)),
        Ok((Some("77".into()), Some(false)))
    );
}

/// A function the application registers: the id after `#` in a message.
struct TicketId;

impl rulebridge::functions::Function for TicketId {
    fn name(&self) -> &str {
        "ticket_id"
    }
    fn category(&self) -> rulebridge::functions::Category {
        rulebridge::functions::Category::String
    }
    fn doc(&self) -> &'static str {
        "The id after `#` in a text."
    }
    fn signature(&self) -> rulebridge::functions::Signature {
        use rulebridge::functions::{Param, Signature};
        use rulebridge::types::Type;
        Signature::new(
            vec![Param::new("text", Type::String)],
            Type::optional(Type::String),
        )
    }
    fn call(
        &self,
        args: &[std::borrow::Cow<'_, serde_json::Value>],
        _cx: &rulebridge::functions::CallContext<'_>,
    ) -> Result<serde_json::Value, rulebridge::functions::FnError> {
        let text = args.first().and_then(|a| a.as_str()).unwrap_or_default();
        Ok(text
            .split_once('#')
            .map_or(serde_json::Value::Null, |(_, id)| json!(id.trim())))
    }
}

#[tokio::test]
async fn error_rules_run_with_the_engines_functions() {
    let server = serve(|_, _| Reply::json(409, json!({"message": "already filed as #T-77"}))).await;
    let rules = r#"kind: provider
name: desk
base_url: http://placeholder.invalid
objects:
  ticket:
    operations:
      create: { method: POST, path: /tickets, body: "{{ payload }}" }
errors:
  - { status: 409, kind: duplicate, existing_id: ticket_id(body.message) }
"#;
    let engine = rulebridge::Engine::builder()
        .rules_str("desk.yaml", rules)
        .function(std::sync::Arc::new(TicketId))
        .build()
        .expect("lint accepts the custom function");
    let c = engine
        .http_connector("desk", Some(&server.url))
        .expect("the connector builds from the compiled provider");
    let e = c
        .create(&Call::default(), "ticket", &json!({"title": "x"}))
        .await
        .expect_err("duplicate");
    assert_eq!(e.kind, ErrorKind::Duplicate);
    assert_eq!(e.existing_id.as_deref(), Some("T-77"));
}
