-- Pandora's PostgreSQL schema, version 1.
--
-- Conventions (see docs/store-contract.md):
-- * Every tenant-owned table leads its primary key, unique keys and indexes
--   with workspace_id and references workspaces ON DELETE CASCADE (directly,
--   or through the row it belongs to).
-- * Vendor identifiers (source, source_id, *_source_id, pipeline, stage) use
--   the "C" collation: they are opaque keys, so byte order is both the fastest
--   to compare and the same order the SQLite store uses.
-- * Enumerations (status, stage_category, field, origin) are stored as the
--   stable strings of their Rust types, which validate them; no CHECK
--   constraint ties the schema to today's list of values.
-- * Record tables share the columns workspace_id, id, source, source_id,
--   data, content_hash, created_at, updated_at, deleted_at, plus a few
--   promoted columns used for filtering, sorting and joins.

CREATE TABLE workspaces (
    id         UUID        NOT NULL PRIMARY KEY,
    name       TEXT        NOT NULL,
    settings   JSONB       NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX workspaces_updated_at_idx ON workspaces (updated_at, id);

CREATE TABLE api_keys (
    workspace_id UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           UUID        NOT NULL,
    name         TEXT        NOT NULL,
    prefix       TEXT        NOT NULL,
    -- SHA-256 of the key; looked up across workspaces to authenticate.
    hash         BYTEA       NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- Deployment-wide settings (not tenant data).
CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE connections (
    workspace_id UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           UUID        NOT NULL,
    connector    TEXT        COLLATE "C" NOT NULL,
    status       TEXT        NOT NULL,
    -- Sealed by the credential vault before it reaches the store.
    credentials  TEXT,
    config       JSONB       NOT NULL DEFAULT '{}'::jsonb,
    last_sync_at TIMESTAMPTZ,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, connector)
);

CREATE TABLE sync_checkpoints (
    workspace_id  UUID        NOT NULL,
    connection_id UUID        NOT NULL,
    stream        TEXT        COLLATE "C" NOT NULL,
    cursor        JSONB       NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, connection_id, stream),
    FOREIGN KEY (workspace_id, connection_id)
        REFERENCES connections (workspace_id, id) ON DELETE CASCADE
);

-- ---------------------------------------------------------------------------
-- Synced records: one table per RecordKind::table().
-- ---------------------------------------------------------------------------

CREATE TABLE users (
    workspace_id      UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id                UUID        NOT NULL,
    source            TEXT        COLLATE "C" NOT NULL,
    source_id         TEXT        COLLATE "C" NOT NULL,
    data              JSONB       NOT NULL,
    content_hash      BYTEA       NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    deleted_at        TIMESTAMPTZ,
    manager_source_id TEXT        COLLATE "C",
    PRIMARY KEY (workspace_id, id),
    -- Also serves the joins that resolve owners and managers.
    UNIQUE (workspace_id, source, source_id)
);
CREATE INDEX users_live_updated_at_idx ON users (workspace_id, updated_at, id)
    WHERE deleted_at IS NULL;

CREATE TABLE accounts (
    workspace_id UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           UUID        NOT NULL,
    source       TEXT        COLLATE "C" NOT NULL,
    source_id    TEXT        COLLATE "C" NOT NULL,
    data         JSONB       NOT NULL,
    content_hash BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    deleted_at   TIMESTAMPTZ,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
);
CREATE INDEX accounts_live_updated_at_idx ON accounts (workspace_id, updated_at, id)
    WHERE deleted_at IS NULL;

CREATE TABLE contacts (
    workspace_id      UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id                UUID        NOT NULL,
    source            TEXT        COLLATE "C" NOT NULL,
    source_id         TEXT        COLLATE "C" NOT NULL,
    data              JSONB       NOT NULL,
    content_hash      BYTEA       NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    deleted_at        TIMESTAMPTZ,
    account_source_id TEXT        COLLATE "C",
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
);
CREATE INDEX contacts_live_updated_at_idx ON contacts (workspace_id, updated_at, id)
    WHERE deleted_at IS NULL;

CREATE TABLE pipeline_stages (
    workspace_id  UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id            UUID        NOT NULL,
    source        TEXT        COLLATE "C" NOT NULL,
    source_id     TEXT        COLLATE "C" NOT NULL,
    data          JSONB       NOT NULL,
    content_hash  BYTEA       NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    deleted_at    TIMESTAMPTZ,
    pipeline      TEXT        COLLATE "C" NOT NULL,
    stage         TEXT        COLLATE "C" NOT NULL,
    display_order INTEGER,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
);

CREATE TABLE deals (
    workspace_id      UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id                UUID        NOT NULL,
    source            TEXT        COLLATE "C" NOT NULL,
    source_id         TEXT        COLLATE "C" NOT NULL,
    data              JSONB       NOT NULL,
    content_hash      BYTEA       NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    deleted_at        TIMESTAMPTZ,
    name              TEXT        NOT NULL,
    amount            NUMERIC,
    currency          TEXT,
    pipeline          TEXT        COLLATE "C",
    stage             TEXT        COLLATE "C",
    stage_category    TEXT        NOT NULL,
    close_date        DATE,
    owner_source_id   TEXT        COLLATE "C",
    account_source_id TEXT        COLLATE "C",
    source_updated_at TIMESTAMPTZ,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
);
-- Keyset pagination of live deals, one index per sort order. updated_at is
-- never NULL, so one index serves both directions (scanned backwards for
-- DESC). close_date and amount keep NULLs last in both directions, which a
-- backward scan cannot give, hence one index per direction.
CREATE INDEX deals_live_updated_at_idx ON deals (workspace_id, updated_at, id)
    WHERE deleted_at IS NULL;
CREATE INDEX deals_live_close_date_asc_idx
    ON deals (workspace_id, close_date ASC NULLS LAST, id ASC)
    WHERE deleted_at IS NULL;
CREATE INDEX deals_live_close_date_desc_idx
    ON deals (workspace_id, close_date DESC NULLS LAST, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX deals_live_amount_asc_idx
    ON deals (workspace_id, amount ASC NULLS LAST, id ASC)
    WHERE deleted_at IS NULL;
CREATE INDEX deals_live_amount_desc_idx
    ON deals (workspace_id, amount DESC NULLS LAST, id DESC)
    WHERE deleted_at IS NULL;

CREATE TABLE deal_contacts (
    workspace_id UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           UUID        NOT NULL,
    source       TEXT        COLLATE "C" NOT NULL,
    source_id    TEXT        COLLATE "C" NOT NULL,
    data         JSONB       NOT NULL,
    content_hash BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    deleted_at   TIMESTAMPTZ,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
);

CREATE TABLE conversations (
    workspace_id UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           UUID        NOT NULL,
    source       TEXT        COLLATE "C" NOT NULL,
    source_id    TEXT        COLLATE "C" NOT NULL,
    data         JSONB       NOT NULL,
    content_hash BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    deleted_at   TIMESTAMPTZ,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
);

CREATE TABLE tasks (
    workspace_id UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           UUID        NOT NULL,
    source       TEXT        COLLATE "C" NOT NULL,
    source_id    TEXT        COLLATE "C" NOT NULL,
    data         JSONB       NOT NULL,
    content_hash BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    deleted_at   TIMESTAMPTZ,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
);

CREATE TABLE documents (
    workspace_id UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           UUID        NOT NULL,
    source       TEXT        COLLATE "C" NOT NULL,
    source_id    TEXT        COLLATE "C" NOT NULL,
    data         JSONB       NOT NULL,
    content_hash BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    deleted_at   TIMESTAMPTZ,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
);

-- Deal field history. A change is stored once per (deal, field, changed_at,
-- new_value), a NULL new_value counting as equal to NULL. The key hashes
-- new_value so that a long value cannot exceed the btree entry size limit.
CREATE TABLE deal_changes (
    workspace_id UUID        NOT NULL,
    id           UUID        NOT NULL,
    deal_id      UUID        NOT NULL,
    field        TEXT        NOT NULL,
    old_value    TEXT,
    new_value    TEXT,
    changed_at   TIMESTAMPTZ NOT NULL,
    origin       TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, deal_id) REFERENCES deals (workspace_id, id) ON DELETE CASCADE
);
-- Also serves deal_history (prefix workspace_id, deal_id).
CREATE UNIQUE INDEX deal_changes_identity_key ON deal_changes (
    workspace_id, deal_id, field, changed_at, (new_value IS NULL), md5(COALESCE(new_value, ''))
);
