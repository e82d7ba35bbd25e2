-- API keys, version 4: the keys `rulebridge serve` accepts, one tenant each. Portable types
-- only, as in version 1; independent of every other version but 1 and 2.

-- `hash` is the SHA-256 of the whole key; the key itself is never stored. `id` is the
-- public part of the key (`rbk_<id>_<secret>`), so a request finds its row without a scan
-- and `keys list` / `keys revoke` can name a key without showing it.
CREATE TABLE rb_api_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    label TEXT NOT NULL,
    hash BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX rb_api_keys_tenant ON rb_api_keys (tenant);
