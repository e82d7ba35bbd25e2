//! What this run wrote per identity, for the later records of the same identity: bounded, so
//! a send's memory does not grow with the input's distinct identities.
//!
//! A later record whose identity was written recently decides against what was written,
//! without a lookup. One whose entry has aged out is looked up at the target like any record
//! (with a state store, the id map answers first); the answer is the same, at the cost of
//! one lookup. Entries leave in the order they were written: duplicates in an input are
//! usually near each other, and the oldest write is the one a search index has most
//! likely caught up with.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;

use crate::connect::Found;

use super::pipeline::PassThrough;

/// Identities kept by default: a few KB each (the written fields as JSON values), about
/// 30 MB at most.
pub(super) const DEFAULT_CAPACITY: usize = 8_192;

/// What the target holds for an identity after a record of this input wrote it.
pub(super) struct Known {
    pub identity: Vec<String>,
    pub found: Found,
}

/// Identity hash → what was written, the newest `capacity` writes.
pub(super) struct KnownIdentities {
    entries: HashMap<u64, (u64, Known), BuildHasherDefault<PassThrough>>,
    /// Writes in order, as (hash, write number); a hash written again has a stale older
    /// slot here, which leaves without removing the newer entry.
    order: VecDeque<(u64, u64)>,
    writes: u64,
    capacity: usize,
}

impl KnownIdentities {
    pub fn new(capacity: usize) -> Self {
        KnownIdentities {
            entries: HashMap::default(),
            order: VecDeque::new(),
            writes: 0,
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, hash: u64) -> Option<&Known> {
        self.entries.get(&hash).map(|(_, k)| k)
    }

    /// Records a write, dropping the oldest entry once more than `capacity` are kept.
    pub fn insert(&mut self, hash: u64, known: Known) {
        self.writes += 1;
        self.entries.insert(hash, (self.writes, known));
        self.order.push_back((hash, self.writes));
        while self.order.len() > self.capacity {
            let Some((old, at)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&old).is_some_and(|(w, _)| *w == at) {
                self.entries.remove(&old);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(id: &str) -> Known {
        Known {
            identity: vec![id.to_string()],
            found: Found {
                id: id.to_string(),
                updated_at: None,
                fields: serde_json::Value::Null,
            },
        }
    }

    #[test]
    fn keeps_only_the_newest_writes() {
        let mut k = KnownIdentities::new(3);
        for h in 0..10u64 {
            k.insert(h, known(&h.to_string()));
        }
        assert_eq!(k.len(), 3);
        assert!(k.get(6).is_none());
        assert_eq!(k.get(9).map(|k| k.found.id.as_str()), Some("9"));
        assert_eq!(k.get(7).map(|k| k.found.id.as_str()), Some("7"));
    }

    #[test]
    fn an_identity_written_again_stays_as_its_newest_write() {
        let mut k = KnownIdentities::new(2);
        k.insert(1, known("first"));
        k.insert(2, known("two"));
        k.insert(1, known("again"));
        // The stale slot of the first write of 1 leaves; the newer entry stays.
        assert_eq!(k.get(1).map(|k| k.found.id.as_str()), Some("again"));
        assert_eq!(k.get(2).map(|k| k.found.id.as_str()), Some("two"));
        k.insert(3, known("three"));
        assert!(k.get(2).is_none());
        assert_eq!(k.get(1).map(|k| k.found.id.as_str()), Some("again"));
        assert!(k.len() <= 2);
    }
}
