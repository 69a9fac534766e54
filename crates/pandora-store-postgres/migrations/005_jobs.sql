-- The job queue (see JobStore): background work that workers claim with a
-- lease. A sync job's id is the id of the sync run it executes.
--
-- kind and status hold the stable strings of JobKind and RunStatus; payload
-- is the kind's parameters as a JSON object. A worker holds a running job
-- until lease_until; past it the job is claimed again (attempts + 1), or
-- failed once attempts reached max_attempts.
--
-- Times are those the caller passes in, never the database clock, so that a
-- worker's lease and a retry's backoff are measured on one clock.

CREATE TABLE jobs (
    workspace_id  UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id            UUID        NOT NULL,
    kind          TEXT        NOT NULL,
    -- The connection a sync job syncs (NULL for jobs of no connection).
    connection_id UUID,
    payload       JSONB       NOT NULL DEFAULT '{}'::jsonb,
    status        TEXT        NOT NULL,
    attempts      INTEGER     NOT NULL DEFAULT 0,
    max_attempts  INTEGER     NOT NULL,
    run_after     TIMESTAMPTZ NOT NULL,
    lease_until   TIMESTAMPTZ,
    worker        TEXT,
    last_error    TEXT,
    dedupe_key    TEXT        COLLATE "C",
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, connection_id)
        REFERENCES connections (workspace_id, id) ON DELETE CASCADE
);

-- At most one job of a workspace ever holds a dedupe key (the scheduler's
-- sync:<connection>:<slot>): an insert racing another waits for it to commit,
-- then does nothing, whichever replica made it.
CREATE UNIQUE INDEX jobs_dedupe_key_idx ON jobs (workspace_id, dedupe_key)
    WHERE dedupe_key IS NOT NULL;

-- The claim (deployment-wide, like the credential scans, so not led by
-- workspace_id): the first job by (run_after, id) that is queued and due, or
-- running with an expired lease. Only unfinished jobs are in the index, so
-- however many finished jobs the table holds, a claim reads the index from
-- its start and skips only live running jobs (at most one per busy worker)
-- and rows other claimers have locked.
CREATE INDEX jobs_claim_idx ON jobs (run_after, id)
    WHERE status IN ('queued', 'running');

-- A worker's renew / finish / retry of the running job it holds, by id.
CREATE INDEX jobs_running_id_idx ON jobs (id) WHERE status = 'running';

-- cancel_connection_jobs (and the cascade from connections).
CREATE INDEX jobs_by_connection_idx ON jobs (workspace_id, connection_id);

-- The scheduler pages through the connections it syncs, across workspaces.
CREATE INDEX connections_schedulable_id_idx ON connections (id)
    WHERE status IN ('active', 'error');
