-- The state store, version 6: a claim carries the hash of the payload it is about to write,
-- so one statement both claims the records that changed and leaves alone those whose last
-- successful write had the same payload (no separate read of the ledger first).

ALTER TABLE rb_ledger ADD COLUMN pending_hash TEXT;
