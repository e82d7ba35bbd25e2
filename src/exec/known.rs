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

use super::pipeline::{PassThrough, Wrote};

/// Identities kept by default: a few KB each (the written fields as JSON values), about
/// 30 MB at most.
pub(super) const DEFAULT_CAPACITY: usize = 8_192;

/// Identity hash → what was written, the newest `capacity` writes.
pub(super) struct KnownIdentities {
    entries: HashMap<u64, (u64, Wrote), BuildHasherDefault<PassThrough>>,
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

    pub fn get(&self, hash: u64) -> Option<&Wrote> {
        self.entries.get(&hash).map(|(_, k)| k)
    }

    /// Records a write, dropping the oldest entry once more than `capacity` are kept; what
    /// leaves (that entry, or an older write of the same hash) goes to `freed`.
    pub fn insert(&mut self, hash: u64, wrote: Wrote, mut freed: impl FnMut(Wrote)) {
        self.writes += 1;
        if let Some((_, older)) = self.entries.insert(hash, (self.writes, wrote)) {
            freed(older);
        }
        self.order.push_back((hash, self.writes));
        while self.order.len() > self.capacity {
            let Some((old, at)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&old).is_some_and(|(w, _)| *w == at)
                && let Some((_, gone)) = self.entries.remove(&old)
            {
                freed(gone);
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
    use crate::connect::Found;

    fn known(id: &str) -> Wrote {
        Wrote {
            identity: vec![id.to_string()],
            found: Found {
                id: id.to_string(),
                updated_at: None,
                fields: serde_json::Value::Null,
            },
            origin: 0,
        }
    }

    /// Inserts, collecting the ids of what left.
    fn insert(k: &mut KnownIdentities, h: u64, id: &str, gone: &mut Vec<String>) {
        k.insert(h, known(id), |w| gone.push(w.found.id));
    }

    #[test]
    fn keeps_only_the_newest_writes() {
        let mut k = KnownIdentities::new(3);
        let mut gone = Vec::new();
        for h in 0..10u64 {
            insert(&mut k, h, &h.to_string(), &mut gone);
        }
        assert_eq!(k.len(), 3);
        assert!(k.get(6).is_none());
        assert_eq!(k.get(9).map(|k| k.found.id.as_str()), Some("9"));
        assert_eq!(k.get(7).map(|k| k.found.id.as_str()), Some("7"));
        assert_eq!(gone, ["0", "1", "2", "3", "4", "5", "6"]);
    }

    #[test]
    fn an_identity_written_again_stays_as_its_newest_write() {
        let mut k = KnownIdentities::new(2);
        let mut gone = Vec::new();
        insert(&mut k, 1, "first", &mut gone);
        insert(&mut k, 2, "two", &mut gone);
        insert(&mut k, 1, "again", &mut gone);
        assert_eq!(gone, ["first"]);
        // The stale slot of the first write of 1 leaves; the newer entry stays.
        assert_eq!(k.get(1).map(|k| k.found.id.as_str()), Some("again"));
        assert_eq!(k.get(2).map(|k| k.found.id.as_str()), Some("two"));
        insert(&mut k, 3, "three", &mut gone);
        assert!(k.get(2).is_none());
        assert_eq!(k.get(1).map(|k| k.found.id.as_str()), Some("again"));
        assert!(k.len() <= 2);
        assert_eq!(gone, ["first", "two"]);
    }
}
