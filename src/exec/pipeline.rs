//! The record pipeline, one for dry runs, sends and embedders:
//!
//! ```text
//! read (byte-bounded chunks) → evaluate (all cores) → per-identity sequencing → sink → outcomes in input order
//! ```
//!
//! Each evaluation thread reads a chunk of lines in turn and evaluates it; where the sink
//! answers at once (a dry run) and the output takes NDJSON lines, it also makes and formats
//! the chunk's outcomes, so the driver and the writer handle one buffer per chunk, not one
//! outcome per record.
//!
//! Every input line ends in exactly one [`Outcome`] whose `index` is its 0-based line number.
//! Records of different identities go to the sink in parallel and in groups; records sharing
//! an identity are handled as the flow's `duplicates.repeats` says (in input order by default:
//! a later record sees what the earlier one wrote). Memory is bounded by bytes: input is read
//! in bounded chunks, a record larger than the maximum is never held, and no new records are
//! admitted while those read but not yet reported exceed a byte and a count budget.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::io::{self, BufRead};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::connect::Found;
use crate::plan::FlowPlan;
use crate::syntax::doc::Repeats;

use super::known::KnownIdentities;
use super::reader::{DEFAULT_MAX_RECORD, Line, LineReader};
use super::rendered::{Buffers, Text, render};
use super::returns::{Home, Returns};
use super::{Evaluation, ExecContext, FailureKind, Outcome, RecordError, Status};

/// How a run reads, evaluates and sends.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Threads evaluating records (default: the machine's cores, at most 8).
    pub threads: usize,
    /// Sink calls (requests, batches) in flight at once.
    pub concurrency: usize,
    /// A record (input line) larger than this fails as `too_large` without being held.
    pub max_record_bytes: usize,
    /// Input bytes read but not yet reported, at most (a single larger record is admitted
    /// alone).
    pub max_in_flight_bytes: usize,
    /// Time allowed for one record, all retries included; passed into every connector call.
    pub record_deadline: Option<Duration>,
    /// Keep each record's input line until its outcome is reported, in the outcome's
    /// [`Provenance`](super::Provenance) (for dead letters).
    pub keep_source: bool,
    /// Lines of the input to pass over unread (a resumed run's checkpoint); indexes still
    /// count from the input's first line.
    pub first_line: usize,
    /// Identities whose latest write the run keeps (the newest ones), so a later record of
    /// the same identity decides against it without a lookup; one older than that is looked
    /// up at the target like any record. Bounds what a long send holds in memory.
    pub known_identities: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(8),
            concurrency: 8,
            max_record_bytes: DEFAULT_MAX_RECORD,
            max_in_flight_bytes: 32 << 20,
            record_deadline: Some(Duration::from_secs(120)),
            keep_source: false,
            first_line: 0,
            known_identities: super::known::DEFAULT_CAPACITY,
        }
    }
}

/// A mapped record on its way to a sink.
#[derive(Clone, Debug)]
pub struct Job {
    pub index: usize,
    pub key: Option<String>,
    pub payload: Value,
    pub policy: Option<Value>,
    /// Normalized values of the duplicate rule's match keys, in order.
    pub identity: Vec<String>,
    /// What an earlier record of this input wrote for the same identity, when one did: the
    /// sink decides against it instead of looking the record up.
    pub prior: Option<Found>,
    /// No connector call for this record starts after it.
    pub deadline: Option<Instant>,
    /// 0 on the first pass, 1 on the pass at the end of the run.
    pub pass: u8,
    /// An earlier attempt may have created the record (its result was unknown): a record
    /// found now is our own create.
    pub maybe_created: bool,
    /// For a flow whose payload has randomized fields ([`FlowPlan::randomized`]), a hash of
    /// the input line, which the ledger compares in their place (set when the run keeps its
    /// input lines, as recorded runs do).
    pub basis: Option<String>,
    /// The evaluation thread that built the payload, where its memory is freed.
    pub origin: u8,
}

/// The [`Job::origin`] of a payload built elsewhere than on an evaluation thread: it is
/// freed wherever it is dropped.
pub const NO_HOME: u8 = u8::MAX;

/// What the target holds for a record's identity after a write of it.
#[derive(Debug)]
pub struct Wrote {
    /// The job's identity (its match keys' values).
    pub identity: Vec<String>,
    /// The target's id and the fields written.
    pub found: Found,
    /// The job's [`Job::origin`].
    pub origin: u8,
}

/// What a sink did with a job.
#[derive(Debug)]
pub enum Completion {
    /// Final. `written` is what the target now holds for the record's identity, for later
    /// records of the same identity.
    Done {
        outcome: Outcome,
        written: Option<Wrote>,
    },
    /// A transient failure that outlived its retries: the job gets one more pass at the end of
    /// the run; `outcome` stands if that fails too.
    Retry { job: Box<Job>, outcome: Outcome },
}

impl Completion {
    fn index(&self) -> usize {
        match self {
            Completion::Done { outcome, .. } | Completion::Retry { outcome, .. } => outcome.index,
        }
    }
}

/// Where mapped records go: a dry run, a connector, or the embedding application's own.
pub trait Sink: Send + Sync {
    /// Most jobs one [`Sink::write`] call takes.
    fn group_size(&self) -> usize;

    /// Records read and not yet reported, at most, for a sink that answers every group at
    /// once (a dry run): a larger window would only hold more outcomes in memory while the
    /// writer catches up. `None`: concurrency × group size × 4, at least 8,192.
    fn window(&self) -> Option<usize> {
        None
    }

    /// Handles a group of jobs of distinct identities; one completion per job, any order.
    fn write(&self, jobs: Vec<Job>) -> BoxFuture<'_, Vec<Completion>>;

    /// Whether the sink writes nothing and answers every job from the job alone, at once (a
    /// dry run). Under `duplicates.repeats: in_order`, where sequencing would then change
    /// nothing, the pipeline calls [`Sink::answer`] on the evaluation thread that mapped the
    /// record instead of [`Sink::write`].
    fn answers_now(&self) -> bool {
        false
    }

    /// The job's outcome, for a sink that [answers now](Sink::answers_now).
    fn answer(&self, job: Job) -> Outcome {
        lost(job.index, job.key)
    }

    /// Whether the sink decides a job against [`Job::prior`]. One that upserts by the
    /// identity does not: the pipeline then keeps no table of what each identity was
    /// written with, and a state store looks up no stored target ids for it.
    fn reads_prior(&self) -> bool {
        true
    }
}

/// Receives outcomes in input order, on a thread of its own.
pub trait Output: Send {
    fn outcome(&mut self, outcome: &Outcome) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Whether the output writes each outcome as one NDJSON line and nothing else (as
    /// [`NdjsonOutput`] does): the pipeline may then format outcomes on the evaluation
    /// threads and hand over their lines with [`Output::lines`].
    fn takes_lines(&self) -> bool {
        false
    }

    /// Scrubbed NDJSON lines of consecutive outcomes, in input order; called only when
    /// [`Output::takes_lines`] says so.
    fn lines(&mut self, _text: &[u8]) -> io::Result<()> {
        Err(io::Error::other("this output takes outcomes one at a time"))
    }
}

impl<O: Output + ?Sized> Output for Box<O> {
    fn outcome(&mut self, outcome: &Outcome) -> io::Result<()> {
        (**self).outcome(outcome)
    }
    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
    fn takes_lines(&self) -> bool {
        (**self).takes_lines()
    }
    fn lines(&mut self, text: &[u8]) -> io::Result<()> {
        (**self).lines(text)
    }
}

/// NDJSON outcomes on a writer, one line each.
pub struct NdjsonOutput<W>(pub W);

impl<W: io::Write + Send> Output for NdjsonOutput<W> {
    fn outcome(&mut self, outcome: &Outcome) -> io::Result<()> {
        super::ndjson::write_outcome(&mut self.0, outcome)?;
        self.0.write_all(b"\n")
    }
    fn finish(&mut self) -> io::Result<()> {
        self.0.flush()
    }
    fn takes_lines(&self) -> bool {
        true
    }
    fn lines(&mut self, text: &[u8]) -> io::Result<()> {
        self.0.write_all(text)
    }
}

/// Outcomes collected in memory.
impl Output for Vec<Outcome> {
    fn outcome(&mut self, outcome: &Outcome) -> io::Result<()> {
        self.push(outcome.clone());
        Ok(())
    }
}

/// Counts of outcomes by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub total: usize,
    pub created: usize,
    pub updated: usize,
    pub skipped: usize,
    /// Written before with the same payload: no request was made.
    pub unchanged: usize,
    pub failed: usize,
    pub dry_run: usize,
}

impl Summary {
    /// Adds another summary's counts.
    pub fn merge(&mut self, other: &Summary) {
        self.total += other.total;
        self.created += other.created;
        self.updated += other.updated;
        self.skipped += other.skipped;
        self.unchanged += other.unchanged;
        self.failed += other.failed;
        self.dry_run += other.dry_run;
    }

    pub fn add(&mut self, status: Status) {
        self.total += 1;
        match status {
            Status::Created => self.created += 1,
            Status::Updated => self.updated += 1,
            Status::Skipped => self.skipped += 1,
            Status::Unchanged => self.unchanged += 1,
            Status::Failed => self.failed += 1,
            Status::DryRun => self.dry_run += 1,
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} records: {} dry_run, {} created, {} updated, ",
            self.total, self.dry_run, self.created, self.updated
        )?;
        // Only runs that keep state have unchanged records.
        if self.unchanged > 0 {
            write!(f, "{} unchanged, ", self.unchanged)?;
        }
        write!(f, "{} skipped, {} failed", self.skipped, self.failed)
    }
}

/// One flow's pipeline into one sink.
#[derive(Clone)]
pub struct Pipeline {
    flow: Arc<FlowPlan>,
    cx: ExecContext,
    sink: Arc<dyn Sink>,
    options: RunOptions,
}

/// An evaluated line, before sequencing.
enum Evaluated {
    /// Its outcome is known already (failed, filtered, blank).
    Final(Outcome),
    Mapped {
        job: Job,
        /// Hashes of the identity keys, one per match key.
        hashes: Vec<u64>,
        bytes: usize,
        /// The input line, when the run keeps it.
        source: Option<Box<[u8]>>,
    },
}

/// An evaluated chunk of lines, on its way to the driver.
enum Batch {
    Records(Vec<Evaluated>),
    /// Every outcome of the chunk was known on the evaluation thread: their lines.
    Text(Text),
}

/// What the driver hands the writer, in input order.
// Most pieces are single outcomes where outcomes are not formatted early: boxing them would
// allocate once per record.
#[allow(clippy::large_enum_variant)]
enum Piece {
    One(Outcome),
    Text(Text),
}

/// The input, read a chunk at a time by whichever evaluation thread is free.
struct Input<I> {
    lines: LineReader<I>,
    /// Lines still to pass over unread before the first chunk.
    skip: usize,
    seq: usize,
    /// A read error: it ends the input, and the run returns it.
    failed: Option<io::Error>,
}

impl<I: BufRead> Input<I> {
    /// The next chunk and its sequence number; `None` at the end of the input.
    fn next_chunk(&mut self) -> Option<(usize, Vec<Line>)> {
        if self.failed.is_some() {
            return None;
        }
        let read = match std::mem::take(&mut self.skip) {
            0 => self.lines.next_chunk(),
            n => self.lines.skip(n).and_then(|()| self.lines.next_chunk()),
        };
        match read {
            Ok(chunk) if chunk.is_empty() => None,
            Ok(chunk) => {
                self.seq += 1;
                Some((self.seq - 1, chunk))
            }
            Err(e) => {
                self.failed = Some(e);
                None
            }
        }
    }
}

/// What every evaluation thread shares.
struct Stage {
    flow: Arc<FlowPlan>,
    cx: ExecContext,
    sink: Arc<dyn Sink>,
    hasher: IdentityHasher,
    keep_source: bool,
    /// Whether mapped records are answered by [`Sink::answer`] here.
    answer_now: bool,
    /// Where outcomes are formatted on this thread, the spare buffers for their lines.
    render: Option<Buffers>,
}

impl Stage {
    /// Evaluates a chunk on evaluation thread `origin`.
    fn evaluate(&self, chunk: Vec<Line>, origin: u8) -> Batch {
        let mut evaluated: Vec<Evaluated> = chunk
            .into_iter()
            .map(|line| {
                let mut e =
                    evaluate_line(&self.flow, &self.cx, &self.hasher, line, self.keep_source);
                if let Evaluated::Mapped { job, .. } = &mut e {
                    job.origin = origin;
                }
                match e {
                    Evaluated::Mapped { job, source, .. } if self.answer_now => {
                        let mut o = self.sink.answer(job);
                        if let Some(source) = source {
                            o.provenance.get_or_insert_default().source = Some(source);
                        }
                        Evaluated::Final(o)
                    }
                    e => e,
                }
            })
            .collect();
        let Some(buffers) = &self.render else {
            return Batch::Records(evaluated);
        };
        if !evaluated.iter().all(|e| matches!(e, Evaluated::Final(_))) {
            return Batch::Records(evaluated);
        }
        let outcomes = evaluated.iter_mut().filter_map(|e| match e {
            Evaluated::Final(o) => Some(o),
            Evaluated::Mapped { .. } => None,
        });
        match render(outcomes, buffers) {
            Some(text) => Batch::Text(text),
            None => Batch::Records(evaluated),
        }
    }
}

impl Pipeline {
    pub fn new(
        flow: Arc<FlowPlan>,
        cx: ExecContext,
        sink: Arc<dyn Sink>,
        options: RunOptions,
    ) -> Self {
        Pipeline {
            flow,
            cx,
            sink,
            options,
        }
    }

    pub fn flow(&self) -> &FlowPlan {
        &self.flow
    }

    pub fn options(&self) -> &RunOptions {
        &self.options
    }

    /// Runs every line of `input` through the flow into the sink; outcomes go to `output`
    /// in input order, and `output` comes back with the summary when the input is done.
    /// `progress` is called with the number of outcomes reported so far. Must run inside a
    /// Tokio runtime.
    ///
    /// ```
    /// # async fn demo(pipeline: rulebridge::exec::Pipeline) -> std::io::Result<()> {
    /// let input = std::io::Cursor::new(b"{\"email\":\"ada@example.com\"}\n".to_vec());
    /// let (summary, outcomes) = pipeline.run(input, Vec::new(), |_| {}).await?;
    /// assert_eq!(summary.total, outcomes.len());
    /// # Ok(()) }
    /// ```
    pub async fn run<I, O>(
        &self,
        input: I,
        output: O,
        progress: impl FnMut(usize) + Send + 'static,
    ) -> io::Result<(Summary, O)>
    where
        I: BufRead + Send + 'static,
        O: Output + 'static,
    {
        let threads = self.options.threads.max(1);
        let hasher = IdentityHasher::default();
        // Small queues between the stages: what is in flight is bounded by the driver's byte
        // budget plus a chunk or two per stage.
        let (eval_tx, mut eval_rx) = mpsc::channel::<(usize, Batch)>(threads);
        let (out_tx, out_rx) = mpsc::channel::<Vec<Piece>>(1);

        // Each evaluation thread reads a chunk of lines (in turn), evaluates it and, where
        // the sink answers at once and the output takes lines, formats its outcomes: one hand-off
        // per chunk, and the work of a record stays on the thread that read it.
        let input = Arc::new(Mutex::new(Input {
            lines: LineReader::new(input, self.options.max_record_bytes),
            skip: self.options.first_line,
            seq: 0,
            failed: None,
        }));
        let stage = Arc::new(Stage {
            flow: self.flow.clone(),
            cx: self.cx.clone(),
            sink: self.sink.clone(),
            hasher,
            keep_source: self.options.keep_source,
            answer_now: self.sink.answers_now()
                && self
                    .flow
                    .duplicates
                    .as_ref()
                    .map_or(Repeats::InOrder, |d| d.repeats)
                    == Repeats::InOrder,
            render: output.takes_lines().then(Buffers::default),
        });
        let buffers = stage.render.clone();
        // Written payloads come back to the thread that built them to be freed (see
        // `returns`); threads past the 255th free theirs where they are.
        let (returns, homes) = Returns::new(threads.min(usize::from(NO_HOME)));
        let mut homes = homes.into_iter();
        let mut workers = Vec::with_capacity(threads);
        for n in 0..threads {
            let input = input.clone();
            let eval_tx = eval_tx.clone();
            let stage = stage.clone();
            let home: Option<Home<Wrote>> = homes.next();
            let origin = u8::try_from(n).unwrap_or(u8::MAX);
            workers.push(std::thread::spawn(move || {
                loop {
                    if let Some(home) = &home {
                        home.collect();
                    }
                    let next = match input.lock() {
                        Ok(mut input) => input.next_chunk(),
                        Err(_) => break,
                    };
                    let Some((seq, chunk)) = next else { break };
                    if eval_tx
                        .blocking_send((seq, stage.evaluate(chunk, origin)))
                        .is_err()
                    {
                        break;
                    }
                }
                // The input has ended here (the driver sees it end once every thread lets
                // go of its sender); the payloads still in flight come back until the run
                // ends.
                drop(eval_tx);
                if let Some(home) = home {
                    home.until_done();
                }
            }));
        }
        drop(eval_tx);

        // Reporting, in order, on a thread of its own (writing outcomes is real work).
        let writer = std::thread::spawn(move || write_outcomes(out_rx, output, progress, buffers));

        let driven = Driver::new(self, out_tx, returns).drive(&mut eval_rx).await;
        // Stop the evaluators whatever happened (their next send fails), then collect the
        // results.
        drop(eval_rx);
        for w in workers {
            let _ = w.join();
        }
        let read = match input.lock() {
            Ok(mut input) => input.failed.take().map_or(Ok(()), Err),
            Err(_) => Err(io::Error::other("the input reader failed")),
        };
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the outcome writer failed")));
        // A writer that failed stops the driver too; its own error says why.
        let written = written?;
        driven?;
        read?;
        Ok(written)
    }

    /// The outcome of one record alone (no sequencing against other records).
    pub async fn run_one(&self, index: usize, record: &Value) -> Outcome {
        let mut outcome = self.run_one_unscrubbed(index, record).await;
        outcome.scrub();
        outcome
    }

    async fn run_one_unscrubbed(&self, index: usize, record: &Value) -> Outcome {
        let hasher = IdentityHasher::default();
        match evaluate_record(&self.flow, &self.cx, &hasher, index, record, 0) {
            Evaluated::Final(o) => o,
            Evaluated::Mapped { mut job, .. } => {
                job.deadline = self.options.record_deadline.map(|d| Instant::now() + d);
                let mut done = self.sink.write(vec![job]).await;
                match done.pop() {
                    Some(Completion::Done { outcome, .. } | Completion::Retry { outcome, .. }) => {
                        outcome
                    }
                    None => lost(index, None),
                }
            }
        }
    }
}

/// The dry-run outcome of one record alone: its payload and policy result, or why it failed.
pub fn dry_run_outcome(flow: &FlowPlan, cx: &ExecContext, index: usize, record: &Value) -> Outcome {
    let hasher = IdentityHasher::default();
    let mut outcome = match evaluate_record(flow, cx, &hasher, index, record, 0) {
        Evaluated::Final(o) => o,
        Evaluated::Mapped { job, .. } => super::dry_run::DryRunSink::outcome(flow, job),
    };
    outcome.scrub();
    outcome
}

fn write_outcomes<O: Output>(
    mut rx: mpsc::Receiver<Vec<Piece>>,
    mut output: O,
    mut progress: impl FnMut(usize),
    buffers: Option<Buffers>,
) -> io::Result<(Summary, O)> {
    let mut summary = Summary::default();
    while let Some(batch) = rx.blocking_recv() {
        for piece in batch {
            match piece {
                Piece::One(mut o) => {
                    summary.add(o.status);
                    o.scrub();
                    output.outcome(&o)?;
                }
                Piece::Text(text) => {
                    summary.merge(&text.summary);
                    output.lines(&text.bytes)?;
                    if let Some(b) = &buffers {
                        b.give(text.bytes);
                    }
                }
            }
        }
        progress(summary.total);
    }
    output.finish()?;
    Ok((summary, output))
}

fn evaluate_line(
    flow: &FlowPlan,
    cx: &ExecContext,
    hasher: &IdentityHasher,
    line: Line,
    keep_source: bool,
) -> Evaluated {
    match line {
        Line::Blank { index } => Evaluated::Final(Outcome::skipped(index, "blank_line")),
        Line::TooLarge { index, offset, len } => Evaluated::Final(Outcome::failed(
            index,
            None,
            RecordError::new(
                FailureKind::TooLarge,
                format!(
                    "the record is {len} bytes, more than the maximum record size; it was not read"
                ),
            )
            .with_offset(usize::try_from(offset).unwrap_or(usize::MAX)),
        )),
        Line::Record {
            index,
            offset,
            bytes,
        } => {
            let evaluated = match super::parse_record(&bytes) {
                Ok(record) => evaluate_record(flow, cx, hasher, index, &record, bytes.len()),
                Err(e) => {
                    // The parser's offset is within the line; the outcome's is within the input.
                    let at = usize::try_from(offset).unwrap_or(usize::MAX);
                    let within = e.offset().unwrap_or(0);
                    let e = e.with_offset(at.saturating_add(within));
                    Evaluated::Final(Outcome::failed(index, None, e))
                }
            };
            if keep_source {
                with_source(flow, evaluated, bytes.into_boxed_slice())
            } else {
                evaluated
            }
        }
    }
}

/// Keeps the input line with its record (dead letters hold the input as read), and for a
/// flow with randomized fields its hash, which the ledger compares in their place.
fn with_source(flow: &FlowPlan, evaluated: Evaluated, line: Box<[u8]>) -> Evaluated {
    match evaluated {
        Evaluated::Final(mut o) => {
            o.provenance.get_or_insert_default().source = Some(line);
            Evaluated::Final(o)
        }
        Evaluated::Mapped {
            mut job,
            hashes,
            bytes,
            ..
        } => {
            if !flow.randomized.is_empty() {
                job.basis = Some(crate::state::hash_bytes(&line));
            }
            Evaluated::Mapped {
                job,
                hashes,
                bytes,
                source: Some(line),
            }
        }
    }
}

fn evaluate_record(
    flow: &FlowPlan,
    cx: &ExecContext,
    hasher: &IdentityHasher,
    index: usize,
    record: &Value,
    bytes: usize,
) -> Evaluated {
    match super::evaluate(flow, record, cx) {
        Ok(Evaluation::Mapped {
            payload,
            policy,
            key,
            identity,
        }) => {
            let hashes = identity
                .iter()
                .enumerate()
                .map(|(n, k)| hasher.hash(n, k))
                .collect();
            Evaluated::Mapped {
                job: Job {
                    index,
                    key,
                    payload,
                    policy,
                    identity,
                    prior: None,
                    deadline: None,
                    pass: 0,
                    maybe_created: false,
                    basis: None,
                    origin: 0,
                },
                hashes,
                bytes,
                source: None,
            }
        }
        Ok(Evaluation::Filtered) => Evaluated::Final(Outcome::filtered(index)),
        Err(e) => Evaluated::Final(Outcome::failed(index, None, e)),
    }
}

fn lost(index: usize, key: Option<String>) -> Outcome {
    Outcome::failed(
        index,
        key,
        RecordError::new(
            FailureKind::Rejected,
            "the sink returned no outcome for this record",
        ),
    )
}

/// Input bytes of the outcomes handed to the writer at once, at most (a larger record goes
/// alone).
const OUT_BATCH_BYTES: usize = 8 << 20;
/// Outcomes handed to the writer at once, at most. Outcomes handed over no longer count
/// against the driver's window, so this bounds what waits for the writer (a batch queued, a
/// batch being written) to a small part of the window, whatever the records' size.
const OUT_BATCH_RECORDS: usize = 1024;

type HashMapU64<V> = HashMap<u64, V, BuildHasherDefault<PassThrough>>;
/// Maps keyed by record index: the driver touches several per record, and SipHash of an
/// index is most of what such a lookup costs.
type ByIndex<V> = HashMap<usize, V, BuildHasherDefault<IndexHash>>;

/// Whether a group short of the sink's size goes out ([`Driver::dispatch`]).
#[derive(Clone, Copy)]
enum Partial {
    /// More records are evaluated already: fill the group first.
    Wait,
    /// Only when nothing else is on its way (as Nagle's rule for TCP): a request in flight
    /// wakes the driver when it returns, by which time the next records have usually been
    /// evaluated, and vendors' limits count requests, not records.
    WhenIdle,
    /// The input has ended: nothing more is coming.
    Send,
}

/// Per-identity sequencing, dispatch and in-order reporting.
struct Driver<'p> {
    pipeline: &'p Pipeline,
    repeats: Repeats,
    out: mpsc::Sender<Vec<Piece>>,
    /// Outcomes waiting for the ones before them; slot 0 is `next_out`.
    pending_out: VecDeque<Option<Reported>>,
    /// Outcomes next in input order, for the writer.
    outbox: Vec<Piece>,
    next_out: usize,
    /// Records admitted (read and evaluated) so far.
    admitted: usize,
    /// Input bytes of records admitted and not yet reported.
    bytes_in_flight: usize,
    bytes_of: ByIndex<usize>,
    /// Input lines kept until reported (`RunOptions::keep_source`).
    sources: ByIndex<Box<[u8]>>,
    /// The latest record of each identity hash (in_order, fail).
    tails: HashMapU64<u32>,
    /// Records admitted and not yet done, with the records waiting for them.
    successors: ByIndex<Vec<usize>>,
    /// Records waiting for earlier ones of the same identity, with how many they wait for.
    waiting: ByIndex<(Job, Vec<u64>, usize)>,
    hashes_of: ByIndex<Vec<u64>>,
    /// last_wins: the latest record per identity hash, sent when the input ends.
    held: HashMapU64<usize>,
    held_jobs: ByIndex<(Job, Vec<u64>)>,
    known: KnownIdentities,
    /// Whether the sink reads [`Job::prior`] (else `known` stays empty).
    reads_prior: bool,
    /// Where written payloads go to be freed.
    returns: Returns<Wrote>,
    ready: VecDeque<Job>,
    deferred: Vec<(Job, Outcome)>,
    in_flight: FuturesUnordered<BoxFuture<'p, Vec<Completion>>>,
    jobs_in_flight: usize,
}

impl<'p> Driver<'p> {
    fn new(pipeline: &'p Pipeline, out: mpsc::Sender<Vec<Piece>>, returns: Returns<Wrote>) -> Self {
        let repeats = pipeline
            .flow
            .duplicates
            .as_ref()
            .map_or(Repeats::InOrder, |d| d.repeats);
        Driver {
            pipeline,
            repeats,
            out,
            pending_out: VecDeque::new(),
            outbox: Vec::new(),
            // A resumed run's first lines were reported by the run it continues.
            next_out: pipeline.options.first_line,
            admitted: pipeline.options.first_line,
            bytes_in_flight: 0,
            bytes_of: ByIndex::default(),
            sources: ByIndex::default(),
            tails: HashMap::default(),
            successors: ByIndex::default(),
            waiting: ByIndex::default(),
            hashes_of: ByIndex::default(),
            held: HashMap::default(),
            held_jobs: ByIndex::default(),
            known: KnownIdentities::new(pipeline.options.known_identities),
            reads_prior: pipeline.sink.reads_prior(),
            returns,
            ready: VecDeque::new(),
            deferred: Vec::new(),
            in_flight: FuturesUnordered::new(),
            jobs_in_flight: 0,
        }
    }

    /// Records read but not yet reported, at most (besides the byte budget).
    fn window(&self) -> usize {
        if let Some(w) = self.pipeline.sink.window() {
            return w.max(1);
        }
        let group = self.pipeline.sink.group_size().max(1);
        (self.pipeline.options.concurrency.max(1) * group * 4).max(8192)
    }

    fn admitting(&self) -> bool {
        let unreported = self.admitted - self.next_out;
        // last_wins holds records until the input ends: they do not count against the budget,
        // or the input could never end.
        let held = self.held_jobs.len();
        unreported.saturating_sub(held) < self.window()
            && self.bytes_in_flight < self.pipeline.options.max_in_flight_bytes
    }

    async fn drive(mut self, input: &mut mpsc::Receiver<(usize, Batch)>) -> io::Result<()> {
        let mut chunks: HashMap<usize, Batch> = HashMap::new();
        let mut next_chunk = 0usize;
        let mut input_done = false;
        loop {
            // Admit evaluated records in input order while the budget allows.
            while self.admitting() {
                let Some(chunk) = chunks.remove(&next_chunk) else {
                    break;
                };
                next_chunk += 1;
                match chunk {
                    Batch::Records(records) => {
                        for e in records {
                            self.admit(e);
                        }
                    }
                    Batch::Text(text) => self.report_text(text),
                }
            }
            let more_soon = !input_done && self.admitting() && chunks.contains_key(&next_chunk);
            self.dispatch(if more_soon {
                Partial::Wait
            } else if input_done {
                Partial::Send
            } else {
                Partial::WhenIdle
            });
            self.flush_out().await?;

            let idle = self.in_flight.is_empty() && self.ready.is_empty();
            if idle && (input_done || !self.admitting()) && !self.deferred.is_empty() {
                // The end-of-run pass (or an early one when deferred records hold the
                // window): transient failures get one more try, after the others.
                self.retry_deferred();
                continue;
            }
            if input_done && idle && chunks.is_empty() {
                if !self.held_jobs.is_empty() {
                    self.release_held();
                    continue;
                }
                if self.waiting.is_empty() {
                    break;
                }
                // Cannot happen (a record waits only for earlier ones, all admitted); report
                // the stragglers rather than hang.
                let stuck: Vec<usize> = self.waiting.keys().copied().collect();
                for i in stuck {
                    if let Some((job, _, _)) = self.waiting.remove(&i) {
                        self.report(lost(job.index, job.key));
                    }
                }
                continue;
            }

            let want_input = !input_done && self.admitting();
            tokio::select! {
                biased;
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.complete(done);
                }
                next = input.recv(), if want_input => match next {
                    Some((seq, evaluated)) => { chunks.insert(seq, evaluated); }
                    None => input_done = true,
                },
                // Nothing in flight and no input wanted, yet records remain: a bug, reported
                // as an error rather than a hang.
                else => {
                    return Err(io::Error::other(format!(
                        "the pipeline stalled with {} record(s) unreported",
                        self.admitted - self.next_out
                    )));
                }
            }
        }
        self.flush_out().await?;
        Ok(())
    }

    fn admit(&mut self, e: Evaluated) {
        self.admitted += 1;
        match e {
            Evaluated::Final(o) => self.report(o),
            Evaluated::Mapped {
                job,
                hashes,
                bytes,
                source,
            } => {
                self.bytes_in_flight += bytes;
                self.bytes_of.insert(job.index, bytes);
                if let Some(source) = source {
                    self.sources.insert(job.index, source);
                }
                self.sequence(job, hashes);
            }
        }
    }

    /// Places a record relative to earlier records of the same identity.
    fn sequence(&mut self, job: Job, hashes: Vec<u64>) {
        let index = job.index;
        let slot = u32::try_from(index).unwrap_or(u32::MAX);
        match self.repeats {
            Repeats::Fail => {
                if let Some(&first) = hashes.iter().find_map(|h| self.tails.get(h)) {
                    let err = RecordError::new(
                        FailureKind::DuplicateKey,
                        format!(
                            "identity key already used by record {first} of this input; not sent twice (duplicates.repeats: fail)"
                        ),
                    );
                    let mut o = Outcome::failed(index, job.key, err);
                    o.policy = job.policy;
                    self.report(o);
                    return;
                }
                for h in &hashes {
                    self.tails.insert(*h, slot);
                }
                self.successors.insert(index, Vec::new());
                self.hashes_of.insert(index, hashes);
                self.ready.push_back(job);
            }
            Repeats::InOrder => {
                let mut preds: Vec<usize> = hashes
                    .iter()
                    .filter_map(|h| self.tails.get(h).map(|&i| i as usize))
                    .filter(|i| self.successors.contains_key(i))
                    .collect();
                preds.sort_unstable();
                preds.dedup();
                for h in &hashes {
                    self.tails.insert(*h, slot);
                }
                self.successors.insert(index, Vec::new());
                if preds.is_empty() {
                    let job = self.with_prior(job, &hashes);
                    self.hashes_of.insert(index, hashes);
                    self.ready.push_back(job);
                } else {
                    for p in &preds {
                        if let Some(s) = self.successors.get_mut(p) {
                            s.push(index);
                        }
                    }
                    self.waiting.insert(index, (job, hashes, preds.len()));
                }
            }
            Repeats::LastWins => {
                let mut earlier: Vec<usize> = hashes
                    .iter()
                    .filter_map(|h| self.held.get(h).copied())
                    .collect();
                earlier.sort_unstable();
                earlier.dedup();
                for e in earlier {
                    if let Some((old, old_hashes)) = self.held_jobs.remove(&e) {
                        for h in &old_hashes {
                            self.held.remove(h);
                        }
                        let mut o = Outcome::skipped(old.index, "superseded");
                        o.key = old.key;
                        o.policy = old.policy;
                        self.report(o);
                    }
                }
                for h in &hashes {
                    self.held.insert(*h, index);
                }
                // Held until the input ends: outside the byte budget, or the input could never
                // end (last_wins keeps one record per identity in memory, by design).
                if let Some(b) = self.bytes_of.remove(&index) {
                    self.bytes_in_flight -= b;
                }
                self.held_jobs.insert(index, (job, hashes));
            }
        }
    }

    /// last_wins: the input has ended; the records still held are the last of their identity.
    fn release_held(&mut self) {
        let mut jobs: Vec<(Job, Vec<u64>)> = self.held_jobs.drain().map(|(_, j)| j).collect();
        self.held.clear();
        jobs.sort_by_key(|(j, _)| j.index);
        for (job, hashes) in jobs {
            self.successors.insert(job.index, Vec::new());
            self.hashes_of.insert(job.index, hashes);
            self.ready.push_back(job);
        }
    }

    /// What an earlier record of this input wrote for the identity, if any.
    fn with_prior(&self, mut job: Job, hashes: &[u64]) -> Job {
        if !self.reads_prior {
            return job;
        }
        job.prior = hashes.iter().enumerate().find_map(|(n, h)| {
            let k = self.known.get(*h)?;
            // Hashes can collide: only an exact match of the same key counts.
            (k.identity.get(n) == job.identity.get(n)).then(|| k.found.clone())
        });
        job
    }

    /// Sends ready jobs in groups while concurrency allows; `partial` says whether a group
    /// short of the sink's size goes too.
    fn dispatch(&mut self, partial: Partial) {
        let group = self.pipeline.sink.group_size().max(1);
        let concurrency = self.pipeline.options.concurrency.max(1);
        while !self.ready.is_empty() && self.in_flight.len() < concurrency {
            let send_partial = match partial {
                Partial::Wait => false,
                Partial::WhenIdle => self.in_flight.is_empty(),
                Partial::Send => true,
            };
            if self.ready.len() < group && !send_partial {
                break;
            }
            let n = group.min(self.ready.len());
            let deadline = self
                .pipeline
                .options
                .record_deadline
                .map(|d| Instant::now() + d);
            let jobs: Vec<Job> = self
                .ready
                .drain(..n)
                .map(|mut j| {
                    j.deadline = deadline;
                    j
                })
                .collect();
            self.jobs_in_flight += jobs.len();
            let sink = self.pipeline.sink.clone();
            let expected: Vec<(usize, Option<String>)> =
                jobs.iter().map(|j| (j.index, j.key.clone())).collect();
            self.in_flight.push(Box::pin(async move {
                // A sink that loses a job still leaves every record an outcome.
                let mut done = sink.write(jobs).await;
                // Usually one completion per job in job order: checked in one pass; otherwise
                // each job is looked for (a group is a few hundred jobs at most).
                let in_order = done.len() == expected.len()
                    && done
                        .iter()
                        .zip(&expected)
                        .all(|(c, (i, _))| c.index() == *i);
                if !in_order {
                    for (index, key) in expected {
                        if !done.iter().any(|c| c.index() == index) {
                            done.push(Completion::Done {
                                outcome: lost(index, key),
                                written: None,
                            });
                        }
                    }
                }
                done
            }));
        }
    }

    fn complete(&mut self, done: Vec<Completion>) {
        for c in done {
            self.jobs_in_flight = self.jobs_in_flight.saturating_sub(1);
            match c {
                Completion::Retry { job, outcome } if job.pass == 0 => {
                    self.deferred.push((*job, outcome));
                }
                Completion::Retry { outcome, .. } => self.finish(outcome, None),
                Completion::Done { outcome, written } => self.finish(outcome, written),
            }
        }
    }

    fn retry_deferred(&mut self) {
        let mut jobs: Vec<(Job, Outcome)> = std::mem::take(&mut self.deferred);
        jobs.sort_by_key(|(j, _)| j.index);
        for (mut job, _) in jobs {
            job.pass = 1;
            self.ready.push_back(job);
        }
    }

    /// A record is done: report it and release the records of its identity waiting for it.
    fn finish(&mut self, outcome: Outcome, written: Option<Wrote>) {
        let index = outcome.index;
        let hashes = self.hashes_of.remove(&index).unwrap_or_default();
        if self.repeats == Repeats::InOrder {
            // A later record of the identity waits only for records not yet done, so the
            // identity's entry goes once its latest record is: what is kept stays bounded by
            // the records in flight, not by the input's distinct identities.
            let slot = u32::try_from(index).unwrap_or(u32::MAX);
            for h in &hashes {
                if self.tails.get(h) == Some(&slot) {
                    self.tails.remove(h);
                }
            }
        }
        if let Some(wrote) = written {
            let returns = &mut self.returns;
            let mut give_back = |w: Wrote| returns.give_back(usize::from(w.origin), w);
            match hashes.split_last() {
                Some((last, rest)) if self.reads_prior => {
                    for h in rest {
                        let copy = Wrote {
                            identity: wrote.identity.clone(),
                            found: wrote.found.clone(),
                            origin: NO_HOME,
                        };
                        self.known.insert(*h, copy, &mut give_back);
                    }
                    // One match key (the usual case): the written fields move in, uncopied.
                    self.known.insert(*last, wrote, &mut give_back);
                }
                _ => give_back(wrote),
            }
        }
        self.report(outcome);
        for s in self.successors.remove(&index).unwrap_or_default() {
            let ready = match self.waiting.get_mut(&s) {
                Some((_, _, remaining)) => {
                    *remaining -= 1;
                    *remaining == 0
                }
                None => false,
            };
            if ready && let Some((job, hashes, _)) = self.waiting.remove(&s) {
                let job = self.with_prior(job, &hashes);
                self.hashes_of.insert(s, hashes);
                self.ready.push_back(job);
            }
        }
    }

    /// Queues an outcome for in-order reporting (its input bytes count against the budget
    /// until it is handed to the writer).
    fn report(&mut self, mut outcome: Outcome) {
        let index = outcome.index;
        if let Some(source) = self.sources.remove(&index) {
            outcome.provenance.get_or_insert_default().source = Some(source);
        }
        self.place(index, Reported::One(outcome));
    }

    /// Queues the lines of a chunk whose outcomes were all known when it was evaluated;
    /// straight for the writer when every earlier outcome was handed over (a dry run's
    /// usual case: nothing per record here).
    fn report_text(&mut self, text: Text) {
        self.admitted += text.count;
        if self.pending_out.is_empty() && text.first == self.next_out {
            self.next_out += text.count;
            self.outbox.push(Piece::Text(text));
            return;
        }
        let (first, count) = (text.first, text.count);
        self.place(first, Reported::Text(text));
        for index in first + 1..first + count {
            self.place(index, Reported::Covered);
        }
    }

    fn place(&mut self, index: usize, reported: Reported) {
        let Some(slot) = index.checked_sub(self.next_out) else {
            return;
        };
        if self.pending_out.len() <= slot {
            self.pending_out.resize_with(slot + 1, || None);
        }
        self.pending_out[slot] = Some(reported);
    }

    /// Hands the outcomes that are next in input order to the writer, in batches of at most
    /// [`OUT_BATCH_BYTES`] input bytes and [`OUT_BATCH_RECORDS`] outcomes; waits while the
    /// writer is behind.
    async fn flush_out(&mut self) -> io::Result<()> {
        let mut ready = std::mem::take(&mut self.outbox);
        let mut records: usize = ready
            .iter()
            .map(|p| match p {
                Piece::One(_) => 1,
                Piece::Text(t) => t.count,
            })
            .sum();
        let mut bytes = 0usize;
        while let Some(Some(_)) = self.pending_out.front() {
            let Some(Some(reported)) = self.pending_out.pop_front() else {
                break;
            };
            self.next_out += 1;
            match reported {
                Reported::One(o) => {
                    if let Some(b) = self.bytes_of.remove(&o.index) {
                        self.bytes_in_flight -= b;
                        bytes += b;
                    }
                    records += 1;
                    ready.push(Piece::One(o));
                }
                Reported::Text(t) => {
                    records += t.count;
                    bytes += t.bytes.len();
                    ready.push(Piece::Text(t));
                }
                Reported::Covered => continue,
            }
            if bytes >= OUT_BATCH_BYTES || records >= OUT_BATCH_RECORDS {
                self.send_out(std::mem::take(&mut ready)).await?;
                bytes = 0;
                records = 0;
            }
        }
        if ready.is_empty() {
            return Ok(());
        }
        self.send_out(ready).await
    }

    async fn send_out(&self, batch: Vec<Piece>) -> io::Result<()> {
        self.out
            .send(batch)
            .await
            .map_err(|_| io::Error::other("the outcome writer stopped"))
    }
}

/// An outcome waiting in the driver for the ones before it.
// As with `Piece`: single outcomes are the common case, not worth an allocation each.
#[allow(clippy::large_enum_variant)]
enum Reported {
    One(Outcome),
    /// The lines of a chunk, from its first outcome's slot on.
    Text(Text),
    /// A slot whose line is in the [`Reported::Text`] before it.
    Covered,
}

/// 64-bit keyed hashes of identity keys, so a million identities take a few MB. A collision
/// only makes a record wait for an unrelated one (or, under `repeats: fail`, fail as a
/// duplicate: about 3·10⁻⁸ per million-record input); what an earlier record wrote is only
/// reused on an exact match of the key.
#[derive(Clone, Default)]
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

/// A hasher for record indexes: a multiplication spreads consecutive indexes over the
/// table's buckets and control bits.
#[derive(Default)]
struct IndexHash(u64);

impl Hasher for IndexHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64 ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A hasher for keys that are hashes already.
#[derive(Default)]
pub(super) struct PassThrough(u64);

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
