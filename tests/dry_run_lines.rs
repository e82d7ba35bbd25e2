//! A dry run into an NDJSON output formats outcomes on the evaluation threads, a chunk at a
//! time; into any other output the driver hands over outcomes one by one. Both must print the
//! same lines in input order, whatever the threads, the duplicate rule, a checkpoint or the
//! kinds of lines (blank, invalid, too large, whole chunks of them).

use std::sync::Arc;

use rulebridge::Engine;
use rulebridge::connect::memory::MemoryConnector;
use rulebridge::exec::RunOptions;
use rulebridge::exec::pipeline::NdjsonOutput;

const RULES: &str = r#"
kind: provider
name: crm
base_url: https://crm.example.com
objects:
  contact:
    operations:
      create: { method: POST, path: /contacts }
---
kind: flow
name: sync
source: { require: [email] }
target: { provider: crm, object: contact }
mapping:
  email: lower(trim(email))
  name: name
options: { omit_nulls: true }
duplicates: { match: [email], on_match: update, on_multiple: fail, repeats: REPEATS }
"#;

/// 2,100 lines: records (some repeating an e-mail), blank and invalid lines, a line too
/// large, and lines 1,024–1,535 (a whole reader chunk) with no record to map.
fn input() -> String {
    let mut s = String::new();
    for i in 0..2100 {
        let line = if (1024..1536).contains(&i) {
            if i % 2 == 0 {
                String::new()
            } else {
                "not json".into()
            }
        } else if i % 7 == 3 {
            "   ".into()
        } else if i % 11 == 5 {
            "{\"email\":".into()
        } else if i == 40 {
            format!(
                "{{\"email\":\"big@x.io\",\"name\":\"{}\"}}",
                "x".repeat(300)
            )
        } else {
            format!("{{\"email\":\"u{}@x.io\",\"name\":\"N{i}\"}}", i % 300)
        };
        s.push_str(&line);
        s.push('\n');
    }
    s
}

async fn both(repeats: &str, threads: usize, first_line: usize) {
    let engine = Engine::builder()
        .rules_str("rules.yaml", RULES.replace("REPEATS", repeats))
        .connector("crm", Arc::new(MemoryConnector::new()))
        .build()
        .expect("rules compile");
    let runner = engine.runner("sync").expect("flow");
    let options = RunOptions {
        threads,
        max_record_bytes: 200,
        first_line,
        ..RunOptions::default()
    };
    let input = input();
    let read = || std::io::Cursor::new(input.clone().into_bytes());
    let pipeline = runner.dry_run_pipeline(options);
    let (by_lines, text) = pipeline
        .run(read(), NdjsonOutput(Vec::new()), |_| {})
        .await
        .expect("dry run into lines");
    let (one_by_one, outcomes) = pipeline
        .run(read(), Vec::new(), |_| {})
        .await
        .expect("dry run into outcomes");
    let mut expected = Vec::new();
    for o in &outcomes {
        expected.extend(serde_json::to_vec(o).expect("outcome serializes"));
        expected.push(b'\n');
    }
    let what = format!("repeats: {repeats}, {threads} thread(s), from line {first_line}");
    assert_eq!(by_lines, one_by_one, "{what}");
    assert_eq!(by_lines.total, 2100 - first_line, "{what}");
    assert!(text.0 == expected, "{what}: the lines differ");
    let indexes: Vec<usize> = outcomes.iter().map(|o| o.index).collect();
    assert_eq!(indexes, (first_line..2100).collect::<Vec<_>>(), "{what}");
}

#[tokio::test]
async fn lines_formatted_early_are_the_outcomes_in_input_order() {
    for repeats in ["in_order", "fail", "last_wins"] {
        for threads in [1, 3] {
            for first_line in [0, 3] {
                both(repeats, threads, first_line).await;
            }
        }
    }
}
