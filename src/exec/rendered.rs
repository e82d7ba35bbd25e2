//! Outcomes formatted as NDJSON on the evaluation thread that made them, one chunk of input
//! lines at a time. The writer then copies one buffer per chunk instead of serializing and
//! freeing each outcome on its own thread, and the buffer goes back to the evaluation
//! threads for the next chunk: outcomes are freed by the thread that allocated them, and
//! what crosses threads is one buffer per chunk, not a few hundred outcomes.

use std::sync::{Arc, Mutex};

use super::Outcome;
use super::pipeline::Summary;

/// The NDJSON lines of consecutive outcomes, scrubbed, in input order.
pub(super) struct Text {
    /// Index of the first outcome.
    pub first: usize,
    /// Outcomes (lines) held.
    pub count: usize,
    /// Their statuses, counted.
    pub summary: Summary,
    pub bytes: Vec<u8>,
}

/// Spare text buffers, handed back by the writer for the evaluation threads to fill again.
#[derive(Clone, Default)]
pub(super) struct Buffers(Arc<Mutex<Vec<Vec<u8>>>>);

/// Buffers kept at most: a few per evaluation thread cover what is in flight.
const SPARE: usize = 16;
/// A buffer grown larger than this (a chunk of large records) is freed, not kept.
const KEEP_BYTES: usize = 1 << 20;

impl Buffers {
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .ok()
            .and_then(|mut spare| spare.pop())
            .unwrap_or_default()
    }

    pub fn give(&self, mut bytes: Vec<u8>) {
        if bytes.capacity() > KEEP_BYTES {
            return;
        }
        bytes.clear();
        if let Ok(mut spare) = self.0.lock()
            && spare.len() < SPARE
        {
            spare.push(bytes);
        }
    }
}

/// Formats `outcomes` (consecutive, in input order) as NDJSON lines, each scrubbed first.
/// `None` if one could not be formatted: the caller hands the outcomes over as they are,
/// and the writer reports the error.
pub(super) fn render<'a>(
    outcomes: impl Iterator<Item = &'a mut Outcome>,
    buffers: &Buffers,
) -> Option<Text> {
    let scrubber = crate::secrets::scrubber();
    let mut text = Text {
        first: usize::MAX,
        count: 0,
        summary: Summary::default(),
        bytes: buffers.take(),
    };
    for o in outcomes {
        o.scrub_with(&scrubber);
        if super::ndjson::write_outcome(&mut text.bytes, o).is_err() {
            buffers.give(text.bytes);
            return None;
        }
        text.bytes.push(b'\n');
        text.first = text.first.min(o.index);
        text.count += 1;
        text.summary.add(o.status);
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_what_the_ndjson_output_writes() {
        let mut outcomes = vec![
            Outcome::skipped(4, "blank_line"),
            Outcome::filtered(5),
            Outcome::skipped(6, "x\"y"),
        ];
        let buffers = Buffers::default();
        let text = render(outcomes.iter_mut(), &buffers);
        let Some(text) = text else {
            panic!("not rendered")
        };
        let mut expected = Vec::new();
        for o in &outcomes {
            expected.extend(serde_json::to_vec(o).unwrap_or_default());
            expected.push(b'\n');
        }
        assert_eq!(text.bytes, expected);
        assert_eq!((text.first, text.count, text.summary.skipped), (4, 3, 3));
        // The buffer comes back empty, for the next chunk.
        buffers.give(text.bytes);
        assert!(buffers.take().is_empty());
    }
}
