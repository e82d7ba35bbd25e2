//! Transform fixtures: each directory holds `rules.yaml` and `input.ndjson`; the snapshot is
//! the dry-run output (one outcome per line, in input order), with the fixed test clock.

use std::sync::Arc;

use rulebridge::Engine;
use rulebridge::functions::FixedClock;

#[test]
fn transforms() {
    insta::glob!("fixtures/transforms/*/rules.yaml", |path| {
        let dir = path.parent().expect("fixture dir");
        // Relative, so rule locations in outcomes do not depend on the checkout's place.
        let rel = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(path);
        let engine = Engine::builder()
            .rules_dir(rel)
            .clock(Arc::new(FixedClock::default_test()))
            .build()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let input = std::fs::read(dir.join("input.ndjson")).expect("input.ndjson");
        let (summary, out) = engine
            .runner("t")
            .expect("flow t")
            .dry_run(std::io::Cursor::new(input), Vec::new(), |_| {})
            .expect("dry run");
        let text = format!("{}\n{summary}\n", String::from_utf8_lossy(&out));
        let rules = std::fs::read_to_string(path).unwrap_or_default();
        insta::with_settings!({ description => rules, omit_expression => true }, {
            insta::assert_snapshot!(text);
        });
    });
}
