-- The state store, version 5 (PostgreSQL): the ledger loses its `updated_at` index, which
-- only `prune` read (it now scans the ledger once) and every claim and settle had to
-- rewrite. (SQLite's version also stores three tables in key order; PostgreSQL's heap
-- tables have no such layout.)

DROP INDEX IF EXISTS rb_ledger_updated;
