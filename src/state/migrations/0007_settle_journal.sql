-- The state store, version 7: settled outcomes are appended to a journal, one row per
-- group, and folded into the ledger and the id map later, many groups per transaction.
-- `ledger_rows` and `id_rows` are the JSON arrays a settle binds to its ledger and id-map
-- upserts; a fold binds them again as they are. `(owner, seq)` orders one process's rows.

CREATE TABLE rb_settles (
    owner TEXT NOT NULL,
    seq BIGINT NOT NULL,
    tenant TEXT NOT NULL,
    flow TEXT NOT NULL,
    provider TEXT NOT NULL,
    object TEXT NOT NULL,
    run_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    ledger_rows TEXT NOT NULL,
    id_rows TEXT NOT NULL,
    PRIMARY KEY (owner, seq)
);
CREATE INDEX rb_settles_flow ON rb_settles (tenant, flow);
