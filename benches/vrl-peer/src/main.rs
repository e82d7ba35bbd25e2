//! The dry-run benchmark's VRL peer: runs `lead_to_hubspot.vrl` (the lead_to_hubspot mapping
//! as a VRL program, on the `vrl` crate) over NDJSON leads and prints one outcome line per
//! lead, `{"index", "key", "status", "payload", "policy"}` like `rulebridge run --dry-run`.
//!
//!     vrl-peer LEADS.ndjson > outcomes.ndjson
//!
//! One thread, one compiled program, one runtime state reused for every record.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};

use vrl::compiler::runtime::Runtime;
use vrl::compiler::{TargetValue, TimeZone, compile};
use vrl::value::{Secrets, Value};

const PROGRAM: &str = include_str!("../lead_to_hubspot.vrl");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: vrl-peer LEADS.ndjson")?;
    let functions = vrl::stdlib::all();
    let program = compile(PROGRAM, &functions)
        .map_err(|d| format!("the VRL program does not compile: {d:?}"))?
        .program;
    let input = BufReader::with_capacity(1 << 16, std::fs::File::open(path)?);
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut runtime = Runtime::default();
    let tz = TimeZone::default();
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record: serde_json::Value = serde_json::from_str(&line)?;
        let mut target = TargetValue {
            value: Value::from(record),
            metadata: Value::Object(BTreeMap::new()),
            secrets: Secrets::default(),
        };
        let outcome = runtime
            .resolve(&mut target, &program, &tz)
            .map_err(|e| format!("record {index}: {e}"))?;
        runtime.clear();
        let mut outcome = match outcome {
            Value::Object(map) => map,
            other => return Err(format!("record {index}: the program returned {other}").into()),
        };
        outcome.insert("index".into(), Value::from(index as i64));
        serde_json::to_writer(&mut out, &outcome)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
