-- The state store, version 1. Written once for SQLite and PostgreSQL: portable types only,
-- times as milliseconds since the Unix epoch, no generated ids.

-- One row per run: its counters, how far it has reported (the checkpoint a resumed run
-- continues from) and whether its process is alive (heartbeat).
CREATE TABLE rb_runs (
    run_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    flow TEXT NOT NULL,
    rules_hash TEXT NOT NULL,
    input TEXT,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    ended_at BIGINT,
    checkpoint BIGINT NOT NULL,
    total BIGINT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    failed BIGINT NOT NULL
);
CREATE INDEX rb_runs_flow ON rb_runs (tenant, flow, started_at);

-- Per (flow, record identity): the last successful write (payload hash, target id) and the
-- write in progress (`pending`, held by `owner`), so a crash between the provider's write and
-- ours is reconciled by a lookup instead of a second create.
CREATE TABLE rb_ledger (
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
);
CREATE INDEX rb_ledger_updated ON rb_ledger (updated_at);

-- Source identity (a match key's value) to target id, per provider object: updates and
-- references need no search.
CREATE TABLE rb_idmap (
    tenant TEXT NOT NULL,
    provider TEXT NOT NULL,
    object TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    target_id TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, provider, object, field, value)
);

-- The audit trail: one terminal outcome per record per run.
CREATE TABLE rb_changelog (
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
);
CREATE INDEX rb_changelog_at ON rb_changelog (at);
CREATE INDEX rb_changelog_key ON rb_changelog (tenant, flow, record_key);

-- Failed records with their input, retried by the next run of the flow until they succeed.
CREATE TABLE rb_dead_letters (
    tenant TEXT NOT NULL,
    flow TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    identity TEXT,
    record_key TEXT,
    run_id TEXT NOT NULL,
    record_index BIGINT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    rule_at TEXT,
    provider_message TEXT,
    http_status BIGINT,
    input BYTEA NOT NULL,
    encrypted BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    first_failed_at BIGINT NOT NULL,
    last_failed_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, flow, source_hash)
);
CREATE INDEX rb_dead_letters_identity ON rb_dead_letters (tenant, flow, identity);

-- The latest status per record.
CREATE VIEW rb_snapshot AS
    SELECT tenant, flow, identity, record_key, outcome AS status, target_id, run_id, updated_at
    FROM rb_ledger;
