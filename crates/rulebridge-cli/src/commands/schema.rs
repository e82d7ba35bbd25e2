//! `rulebridge schema`: the JSON Schema of the rule-file format, for editors.

use std::io::Write;

pub fn schema() -> anyhow::Result<u8> {
    let schema = rulebridge::syntax::schema::rule_file_schema();
    let mut out = crate::common::stdout();
    writeln!(out, "{}", serde_json::to_string_pretty(&schema)?)?;
    Ok(0)
}
