//! The floor of the dry-run benchmark: the least work any NDJSON-to-NDJSON tool in Rust does.
//!
//! Reads the NDJSON file given as the first argument line by line, parses each line into a
//! `serde_json::Value` and writes it back, one line each, to standard output. No mapping, no
//! outcome envelope, one thread. `benches/dry_run.sh` builds it with
//! `cargo build --release --bench floor` and runs it next to `rulebridge run --dry-run`.
//!
//! Started without a file (as `cargo bench` does, passing `--bench`), it only says so.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1).filter(|a| !a.starts_with("--")) else {
        println!("floor: no input file given; run benches/dry_run.sh for the dry-run benchmark");
        return ExitCode::SUCCESS;
    };
    match copy(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn copy(path: &str) -> io::Result<()> {
    let input = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line).map_err(io::Error::other)?;
        serde_json::to_writer(&mut out, &value)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
