-- The job queue (see JobStore): background work that workers claim with a
-- lease. A sync job's id is the id of the sync run it executes.
--
-- Encodings as in 001: ids 16-byte BLOBs, timestamps INTEGER microseconds,
-- payload TEXT JSON (an object). kind and status hold the stable strings of
-- JobKind and RunStatus. A worker holds a running job until lease_until; past
-- it the job is claimed again (attempts + 1), or failed once attempts reached
-- max_attempts. Claims run in BEGIN IMMEDIATE transactions: one writer at a
-- time, so two claimers never take the same job.

CREATE TABLE jobs (
    workspace_id  BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id            BLOB    NOT NULL,
    kind          TEXT    NOT NULL,
    -- The connection a sync job syncs (NULL for jobs of no connection).
    connection_id BLOB,
    payload       TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    run_after     INTEGER NOT NULL,
    lease_until   INTEGER,
    worker        TEXT,
    last_error    TEXT,
    dedupe_key    TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, connection_id)
        REFERENCES connections (workspace_id, id) ON DELETE CASCADE
) STRICT;

-- At most one job of a workspace ever holds a dedupe key (the scheduler's
-- sync:<connection>:<slot>).
CREATE UNIQUE INDEX jobs_dedupe_key ON jobs (workspace_id, dedupe_key)
    WHERE dedupe_key IS NOT NULL;

-- The claim (deployment-wide, so not led by workspace_id): the first job by
-- (run_after, id) that is queued and due, or running with an expired lease.
-- Only unfinished jobs are in the index, so finished jobs cost the claim
-- nothing; it skips only live running jobs.
CREATE INDEX jobs_claim ON jobs (run_after, id) WHERE status IN ('queued', 'running');

-- A worker's renew / finish / retry of the running job it holds, by id.
CREATE INDEX jobs_running_id ON jobs (id) WHERE status = 'running';

-- cancel_connection_jobs (and the cascade from connections).
CREATE INDEX jobs_by_connection ON jobs (workspace_id, connection_id);

-- The scheduler pages through the connections it syncs, across workspaces.
CREATE INDEX connections_schedulable_id ON connections (id) WHERE status IN ('active', 'error');
