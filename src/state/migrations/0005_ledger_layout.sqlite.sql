-- The state store, version 5 (SQLite): the ledger, the id map and the changelog are kept in
-- their primary key's order (WITHOUT ROWID), so a write is one b-tree insert instead of a
-- row plus a key index; the ledger loses its `updated_at` index, which only `prune` read
-- (it now scans the ledger once) and every claim and settle had to rewrite.

DROP VIEW rb_snapshot;

CREATE TABLE rb_ledger_v5 (
    tenant TEXT NOT NULL,
    flow TEXT NOT NULL,
    identity TEXT NOT NULL,
    record_key TEXT,
    state TEXT NOT NULL,
    prev_state TEXT,
    owner TEXT,
    done_hash TEXT,
    target_id TEXT,
    outcome TEXT,
    run_id TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, flow, identity)
) WITHOUT ROWID;
INSERT INTO rb_ledger_v5 (tenant, flow, identity, record_key, state, prev_state, owner, done_hash, target_id, outcome, run_id, updated_at)
    SELECT tenant, flow, identity, record_key, state, prev_state, owner, done_hash, target_id, outcome, run_id, updated_at FROM rb_ledger;
DROP TABLE rb_ledger;
ALTER TABLE rb_ledger_v5 RENAME TO rb_ledger;

CREATE TABLE rb_idmap_v5 (
    tenant TEXT NOT NULL,
    provider TEXT NOT NULL,
    object TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    target_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, provider, object, field, value)
) WITHOUT ROWID;
INSERT INTO rb_idmap_v5 (tenant, provider, object, field, value, target_id, updated_at)
    SELECT tenant, provider, object, field, value, target_id, updated_at FROM rb_idmap;
DROP TABLE rb_idmap;
ALTER TABLE rb_idmap_v5 RENAME TO rb_idmap;

CREATE TABLE rb_changelog_v5 (
    run_id TEXT NOT NULL,
    record_index BIGINT NOT NULL,
    tenant TEXT NOT NULL,
    flow TEXT NOT NULL,
    record_key TEXT,
    identity TEXT,
    action TEXT NOT NULL,
    provider TEXT NOT NULL,
    object TEXT NOT NULL,
    target_id TEXT,
    http_status BIGINT,
    correlation_id TEXT,
    duration_ms BIGINT,
    error_kind TEXT,
    error TEXT,
    payload TEXT,
    source_hash TEXT,
    at BIGINT NOT NULL,
    PRIMARY KEY (run_id, record_index)
) WITHOUT ROWID;
INSERT INTO rb_changelog_v5 SELECT run_id, record_index, tenant, flow, record_key, identity, action, provider, object, target_id,
    http_status, correlation_id, duration_ms, error_kind, error, payload, source_hash, at FROM rb_changelog;
DROP TABLE rb_changelog;
ALTER TABLE rb_changelog_v5 RENAME TO rb_changelog;
CREATE INDEX rb_changelog_at ON rb_changelog (at);
CREATE INDEX rb_changelog_key ON rb_changelog (tenant, flow, record_key);

CREATE VIEW rb_snapshot AS
    SELECT tenant, flow, identity, record_key, outcome AS status, target_id, run_id, updated_at
    FROM rb_ledger;
