-- The same users table for SQLite. Two changes from the PostgreSQL file, both because SQLite
-- has no such thing: `SERIAL` becomes `INTEGER PRIMARY KEY` (SQLite's self-numbering rowid
-- key) and `NOW()` becomes `CURRENT_TIMESTAMP`. The type names stay: SQLite keeps them, so
-- `BOOLEAN` and `JSONB` columns are known as such when the connector reads the table.
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  email VARCHAR(255) UNIQUE NOT NULL,
  name VARCHAR(255) NOT NULL,
  kinde_user_id VARCHAR(255),
  tenant_id VARCHAR(255) NOT NULL,
  is_active BOOLEAN DEFAULT true,
  is_admin BOOLEAN DEFAULT false,
  department VARCHAR(100),
  title VARCHAR(100),
  roles JSONB DEFAULT '[]',
  permissions JSONB DEFAULT '[]',
  synced_from VARCHAR(50) DEFAULT 'wrapper',
  last_synced_at TIMESTAMP,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

-- Indexes for performance
CREATE INDEX idx_users_email ON users(email);
CREATE INDEX idx_users_tenant_id ON users(tenant_id);
CREATE INDEX idx_users_kinde_user_id ON users(kinde_user_id);
