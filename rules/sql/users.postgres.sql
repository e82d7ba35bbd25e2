-- The wrapper user sync's users table, as the integration guide creates it (PostgreSQL).
CREATE TABLE users (
  id SERIAL PRIMARY KEY,
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
  created_at TIMESTAMP DEFAULT NOW(),
  updated_at TIMESTAMP DEFAULT NOW()
);

-- Indexes for performance
CREATE INDEX idx_users_email ON users(email);
CREATE INDEX idx_users_tenant_id ON users(tenant_id);
CREATE INDEX idx_users_kinde_user_id ON users(kinde_user_id);
