-- Pandora's schema, SQLite dialect (the same logical schema as the PostgreSQL store).
--
-- Encodings (see src/codec.rs):
--   * ids                 16-byte BLOBs (the UUID's bytes);
--   * timestamps          INTEGER microseconds since the Unix epoch (UTC), so they sort as numbers;
--   * amounts             INTEGER amount_e4 = amount x 10^4 (at most 4 decimal places);
--   * dates               TEXT 'YYYY-MM-DD';
--   * JSON                TEXT.
--
-- Every tenant-owned table leads its primary key, unique keys and indexes with
-- workspace_id, and is removed with its workspace (ON DELETE CASCADE; the store
-- turns the foreign_keys pragma on for every connection).
-- Tables are STRICT, so a value of the wrong type is refused instead of stored.

CREATE TABLE workspaces (
    id         BLOB    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    settings   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX workspaces_by_updated ON workspaces (updated_at, id);

CREATE TABLE api_keys (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           BLOB    NOT NULL,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    hash         BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id)
) STRICT;

-- Deployment-wide settings (e.g. the hash of a generated admin token).
CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE connections (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           BLOB    NOT NULL,
    connector    TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    credentials  TEXT,
    config       TEXT    NOT NULL,
    last_sync_at INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, connector)
) STRICT;

CREATE TABLE sync_checkpoints (
    workspace_id  BLOB    NOT NULL,
    connection_id BLOB    NOT NULL,
    stream        TEXT    NOT NULL,
    cursor        TEXT    NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, connection_id, stream),
    FOREIGN KEY (workspace_id, connection_id)
        REFERENCES connections (workspace_id, id) ON DELETE CASCADE
) STRICT;

-- Synced records: one table per record kind, with the common columns
--   workspace_id, id, source, source_id, data (the record as delivered, JSON),
--   content_hash (SHA-256 of data), created_at, updated_at, deleted_at (soft delete)
-- and, for some kinds, promoted columns used by filters and joins.
-- Each table has a partial index on (workspace_id, updated_at, id) over live rows:
-- the order of its list, and what counting live rows reads.

CREATE TABLE users (
    workspace_id      BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id                BLOB    NOT NULL,
    source            TEXT    NOT NULL,
    source_id         TEXT    NOT NULL,
    data              TEXT    NOT NULL,
    content_hash      BLOB    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    deleted_at        INTEGER,
    manager_source_id TEXT,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
) STRICT;
CREATE INDEX users_live_by_updated ON users (workspace_id, updated_at, id) WHERE deleted_at IS NULL;

CREATE TABLE accounts (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           BLOB    NOT NULL,
    source       TEXT    NOT NULL,
    source_id    TEXT    NOT NULL,
    data         TEXT    NOT NULL,
    content_hash BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
) STRICT;
CREATE INDEX accounts_live_by_updated ON accounts (workspace_id, updated_at, id) WHERE deleted_at IS NULL;

CREATE TABLE contacts (
    workspace_id      BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id                BLOB    NOT NULL,
    source            TEXT    NOT NULL,
    source_id         TEXT    NOT NULL,
    data              TEXT    NOT NULL,
    content_hash      BLOB    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    deleted_at        INTEGER,
    account_source_id TEXT,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
) STRICT;
CREATE INDEX contacts_live_by_updated ON contacts (workspace_id, updated_at, id) WHERE deleted_at IS NULL;

CREATE TABLE pipeline_stages (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           BLOB    NOT NULL,
    source       TEXT    NOT NULL,
    source_id    TEXT    NOT NULL,
    data         TEXT    NOT NULL,
    content_hash BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
) STRICT;
CREATE INDEX pipeline_stages_live_by_updated ON pipeline_stages (workspace_id, updated_at, id) WHERE deleted_at IS NULL;

CREATE TABLE deals (
    workspace_id      BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id                BLOB    NOT NULL,
    source            TEXT    NOT NULL,
    source_id         TEXT    NOT NULL,
    data              TEXT    NOT NULL,
    content_hash      BLOB    NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    deleted_at        INTEGER,
    name              TEXT    NOT NULL,
    amount_e4         INTEGER,
    currency          TEXT,
    pipeline          TEXT,
    stage             TEXT,
    stage_category    TEXT    NOT NULL,
    close_date        TEXT,
    owner_source_id   TEXT,
    account_source_id TEXT,
    source_updated_at INTEGER,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
) STRICT;
-- One index per sort key of the deal list, over live rows; the id completes the
-- keyset. NULL sort values sit together at one end of the index, which the store
-- reads as a separate segment to put them last in either direction.
CREATE INDEX deals_live_by_updated ON deals (workspace_id, updated_at, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_live_by_close_date ON deals (workspace_id, close_date, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_live_by_amount ON deals (workspace_id, amount_e4, id) WHERE deleted_at IS NULL;
-- "Deals of this owner", newest change first.
CREATE INDEX deals_live_by_owner ON deals (workspace_id, source, owner_source_id, updated_at, id) WHERE deleted_at IS NULL;

CREATE TABLE deal_contacts (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           BLOB    NOT NULL,
    source       TEXT    NOT NULL,
    source_id    TEXT    NOT NULL,
    data         TEXT    NOT NULL,
    content_hash BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
) STRICT;
CREATE INDEX deal_contacts_live_by_updated ON deal_contacts (workspace_id, updated_at, id) WHERE deleted_at IS NULL;

CREATE TABLE conversations (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           BLOB    NOT NULL,
    source       TEXT    NOT NULL,
    source_id    TEXT    NOT NULL,
    data         TEXT    NOT NULL,
    content_hash BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
) STRICT;
CREATE INDEX conversations_live_by_updated ON conversations (workspace_id, updated_at, id) WHERE deleted_at IS NULL;

CREATE TABLE tasks (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           BLOB    NOT NULL,
    source       TEXT    NOT NULL,
    source_id    TEXT    NOT NULL,
    data         TEXT    NOT NULL,
    content_hash BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
) STRICT;
CREATE INDEX tasks_live_by_updated ON tasks (workspace_id, updated_at, id) WHERE deleted_at IS NULL;

CREATE TABLE documents (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           BLOB    NOT NULL,
    source       TEXT    NOT NULL,
    source_id    TEXT    NOT NULL,
    data         TEXT    NOT NULL,
    content_hash BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, source, source_id)
) STRICT;
CREATE INDEX documents_live_by_updated ON documents (workspace_id, updated_at, id) WHERE deleted_at IS NULL;

-- Deal field history. A change is stored once per (deal, field, changed_at,
-- new_value), a NULL new_value counting as equal to NULL: the unique index keys
-- on "new_value IS NULL" as well as on the value, so NULL and '' stay distinct.
CREATE TABLE deal_changes (
    workspace_id BLOB    NOT NULL,
    id           BLOB    NOT NULL,
    deal_id      BLOB    NOT NULL,
    field        TEXT    NOT NULL,
    old_value    TEXT,
    new_value    TEXT,
    changed_at   INTEGER NOT NULL,
    origin       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, deal_id) REFERENCES deals (workspace_id, id) ON DELETE CASCADE
) STRICT;
CREATE UNIQUE INDEX deal_changes_once
    ON deal_changes (workspace_id, deal_id, field, changed_at, new_value IS NULL, coalesce(new_value, ''));
CREATE INDEX deal_changes_by_deal ON deal_changes (workspace_id, deal_id, changed_at, id);
