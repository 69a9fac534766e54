-- Sync runs: one row per sync of a connection (see SyncRunStore).
--
-- status and mode hold the stable strings of RunStatus and SyncMode; counts
-- is the per-table StreamCounts as JSON ({"deals": {"inserted": …, …}, …}).
--
-- At most one run per connection is queued or running: the partial unique
-- index below refuses a second one, whichever process or replica inserts it
-- (a concurrent insert waits for the first to commit, then fails).

CREATE TABLE sync_runs (
    workspace_id  UUID        NOT NULL,
    id            UUID        NOT NULL,
    connection_id UUID        NOT NULL,
    mode          TEXT        NOT NULL,
    status        TEXT        NOT NULL,
    counts        JSONB       NOT NULL DEFAULT '{}'::jsonb,
    error         TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, connection_id)
        REFERENCES connections (workspace_id, id) ON DELETE CASCADE
);

-- The one-active-run rule.
CREATE UNIQUE INDEX sync_runs_one_active_idx ON sync_runs (workspace_id, connection_id)
    WHERE status IN ('queued', 'running');

-- A connection's history, newest first (and the cascade from connections).
CREATE INDEX sync_runs_by_connection_idx
    ON sync_runs (workspace_id, connection_id, created_at, id);
