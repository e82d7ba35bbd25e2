-- The credential store, version 2: per-tenant credentials sealed with AES-256-GCM. Portable
-- types only, as in version 1.

-- One sealed value per (tenant, provider, name). The ciphertext carries its GCM tag; the
-- associated data (tenant, provider, name) is not stored: it is the row's own key, so a
-- ciphertext moved to another row no longer opens. `key_id` names the master key that
-- sealed it (a short hash of the key), so a rotation can tell what it has re-sealed.
CREATE TABLE rb_credentials (
    tenant TEXT NOT NULL,
    provider TEXT NOT NULL,
    name TEXT NOT NULL,
    ciphertext BYTEA NOT NULL,
    nonce BYTEA NOT NULL,
    key_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, provider, name)
);
CREATE INDEX rb_credentials_key ON rb_credentials (key_id);

-- Settings of the credential store: the salt (base64) from which a passphrase derives the
-- master key with Argon2id, written once by the first process that needs it.
CREATE TABLE rb_credential_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
