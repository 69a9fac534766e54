-- Sync runs: one row per sync of a connection (see SyncRunStore).
--
-- Encodings as in 001: ids 16-byte BLOBs, timestamps INTEGER microseconds,
-- counts TEXT JSON ({"deals": {"inserted": …, …}, …}). status and mode hold the
-- stable strings of RunStatus and SyncMode.
--
-- At most one run per connection is queued or running: the partial unique
-- index below refuses a second one, whichever process inserts it.

CREATE TABLE sync_runs (
    workspace_id  BLOB    NOT NULL,
    id            BLOB    NOT NULL,
    connection_id BLOB    NOT NULL,
    mode          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    counts        TEXT    NOT NULL,
    error         TEXT,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, connection_id)
        REFERENCES connections (workspace_id, id) ON DELETE CASCADE
) STRICT;

-- The one-active-run rule.
CREATE UNIQUE INDEX sync_runs_one_active ON sync_runs (workspace_id, connection_id)
    WHERE status IN ('queued', 'running');

-- A connection's history, newest first (and the cascade from connections).
CREATE INDEX sync_runs_by_connection ON sync_runs (workspace_id, connection_id, created_at, id);
