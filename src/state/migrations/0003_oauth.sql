-- OAuth connect, version 3: the `state` values of authorizations in progress. Portable
-- types only, as in version 1.

-- One row per `state` handed out by `GET /v1/oauth/{provider}/start`, stored as its SHA-256
-- (hex): the value itself is only in the user's browser and the vendor's redirect. A state is
-- bound to the tenant and provider it was made for, used at most once, and expires.
CREATE TABLE rb_oauth_states (
    state_hash TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    provider TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX rb_oauth_states_expires ON rb_oauth_states (expires_at);
