//! Dry runs over NDJSON streams: one outcome line per input line, in input order, with memory
//! bounded by the chunk size (records are never all held at once).
//!
//! Lines are read in chunks; each chunk is evaluated on all cores, then outcomes are checked for
//! duplicate identity keys and written in order by one thread.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::io::{self, BufRead, Write};

use serde::Serialize;

use crate::plan::FlowPlan;

use super::{Evaluation, ExecContext, FailureKind, Outcome, RecordError, Status};

/// Lines evaluated per chunk.
const CHUNK: usize = 4096;

/// Counts of outcomes by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub total: usize,
    pub created: usize,
    pub updated: usize,
    pub skipped: usize,
    pub failed: usize,
    pub dry_run: usize,
}

impl Summary {
    pub fn add(&mut self, status: Status) {
        self.total += 1;
        match status {
            Status::Created => self.created += 1,
            Status::Updated => self.updated += 1,
            Status::Skipped => self.skipped += 1,
            Status::Failed => self.failed += 1,
            Status::DryRun => self.dry_run += 1,
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} records: {} dry_run, {} created, {} updated, {} skipped, {} failed",
            self.total, self.dry_run, self.created, self.updated, self.skipped, self.failed
        )
    }
}

/// One evaluated line, before the in-order duplicate check.
struct Evaluated {
    /// Serialized outcome line (without newline).
    line: Vec<u8>,
    status: Status,
    key: Option<String>,
    /// Hashes of the identity keys (one per match key), when the record mapped.
    identity: Vec<u64>,
}

/// Evaluates every NDJSON line of `input` and writes one outcome per line to `out`.
///
/// Blank lines are skipped (they are not records). `progress` is called with the number of
/// records done after each chunk.
pub fn dry_run(
    flow: &FlowPlan,
    cx: &ExecContext,
    input: impl BufRead,
    mut out: impl Write,
    mut progress: impl FnMut(usize),
) -> io::Result<Summary> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let hasher = IdentityHasher::default();
    // Keys are already hashes: the map stores them as they are (8 + 4 bytes an entry).
    let mut seen: HashMap<u64, u32, BuildHasherDefault<PassThrough>> = HashMap::default();
    let mut summary = Summary::default();
    let mut lines = input.lines();
    let mut index = 0usize;
    let mut chunk: Vec<String> = Vec::with_capacity(CHUNK);
    loop {
        chunk.clear();
        for line in lines.by_ref() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            chunk.push(line);
            if chunk.len() == CHUNK {
                break;
            }
        }
        if chunk.is_empty() {
            break;
        }
        let results = evaluate_chunk(flow, cx, &chunk, index, threads, &hasher);
        for (offset, r) in results.into_iter().enumerate() {
            let i = index + offset;
            // Two records sharing any identity key would resolve to the same target record.
            let r = match r.identity.iter().find_map(|h| seen.get(h)) {
                Some(&first) => duplicate(i, r.key, first as usize),
                None => {
                    for h in &r.identity {
                        seen.insert(*h, u32::try_from(i).unwrap_or(u32::MAX));
                    }
                    r
                }
            };
            summary.add(r.status);
            out.write_all(&r.line)?;
            out.write_all(b"\n")?;
        }
        index += chunk.len();
        progress(index);
    }
    out.flush()?;
    Ok(summary)
}

fn evaluate_chunk(
    flow: &FlowPlan,
    cx: &ExecContext,
    chunk: &[String],
    base: usize,
    threads: usize,
    hasher: &IdentityHasher,
) -> Vec<Evaluated> {
    if threads <= 1 || chunk.len() < 64 {
        return chunk
            .iter()
            .enumerate()
            .map(|(i, l)| evaluate_line(flow, cx, base + i, l, hasher))
            .collect();
    }
    let per = chunk.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = chunk
            .chunks(per)
            .enumerate()
            .map(|(n, part)| {
                s.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, l)| evaluate_line(flow, cx, base + n * per + i, l, hasher))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(chunk.len());
        for (n, h) in handles.into_iter().enumerate() {
            match h.join() {
                Ok(part) => all.extend(part),
                // A panic in evaluation is a bug; keep every record accounted for anyway.
                Err(_) => {
                    let start = n * per;
                    let end = (start + per).min(chunk.len());
                    for i in start..end {
                        let err = RecordError::new(
                            FailureKind::Mapping,
                            "internal error while evaluating this record",
                        );
                        all.push(serialize(Outcome::failed(base + i, None, err), Vec::new()));
                    }
                }
            }
        }
        all
    })
}

fn evaluate_line(
    flow: &FlowPlan,
    cx: &ExecContext,
    index: usize,
    line: &str,
    hasher: &IdentityHasher,
) -> Evaluated {
    let record: serde_json::Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            let err = RecordError::new(
                FailureKind::InvalidRecord,
                format!("line is not valid JSON: {e}"),
            );
            return serialize(Outcome::failed(index, None, err), Vec::new());
        }
    };
    let (outcome, identity) = outcome_for(flow, cx, index, &record);
    let identity = identity
        .iter()
        .enumerate()
        .map(|(n, key)| hasher.hash(n, key))
        .collect();
    serialize(outcome, identity)
}

/// The dry-run outcome of one record, and its normalized identity keys.
pub fn outcome_for(
    flow: &FlowPlan,
    cx: &ExecContext,
    index: usize,
    record: &serde_json::Value,
) -> (Outcome, Vec<String>) {
    match super::evaluate(flow, record, cx) {
        Ok(Evaluation::Mapped {
            payload,
            policy,
            key,
            identity,
        }) => (
            Outcome {
                index,
                key,
                status: Status::DryRun,
                target_id: None,
                payload: Some(super::redact(flow, payload)),
                policy,
                reason: None,
                error: None,
            },
            identity,
        ),
        Ok(Evaluation::Filtered) => (Outcome::filtered(index), Vec::new()),
        Err(e) => (Outcome::failed(index, None, e), Vec::new()),
    }
}

fn serialize(outcome: Outcome, identity: Vec<u64>) -> Evaluated {
    let line = serde_json::to_vec(&outcome).unwrap_or_else(|e| {
        format!(r#"{{"index":{},"status":"failed","error":{{"kind":"mapping","message":"outcome could not be serialized: {e}"}}}}"#, outcome.index).into_bytes()
    });
    Evaluated {
        line,
        status: outcome.status,
        key: outcome.key,
        identity,
    }
}

fn duplicate(index: usize, key: Option<String>, first: usize) -> Evaluated {
    let err = RecordError::new(
        FailureKind::DuplicateKey,
        format!("identity key already used by record {first} of this input; not sent twice"),
    );
    serialize(Outcome::failed(index, key, err), Vec::new())
}

/// 64-bit hashes of identity keys (keyed SipHash), so a million keys take about 16 MB. Two
/// different keys collide with a chance of about 3·10⁻⁸ per million-record input; the
/// second record would then be reported as a duplicate (never lost, never sent twice).
#[derive(Default)]
struct IdentityHasher {
    state: std::hash::RandomState,
}

impl IdentityHasher {
    /// Hash of the `n`th match key's value (keys only collide with the same match key).
    fn hash(&self, n: usize, key: &str) -> u64 {
        let mut h = self.state.build_hasher();
        h.write_usize(n);
        h.write(key.as_bytes());
        h.finish()
    }
}

/// A hasher for keys that are hashes already.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
