-- Skills (see SkillStore): runs, per-workspace skill settings, quotas.
--
-- Encodings as in 001: ids 16-byte BLOBs, timestamps INTEGER microseconds,
-- amounts INTEGER amount_e4 (amount x 10^4), JSON as TEXT. status holds the
-- stable strings of RunStatus.

CREATE TABLE skill_runs (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           BLOB    NOT NULL,
    skill        TEXT    NOT NULL,
    -- Canonical period label (e.g. 2026-Q2) and its bounds, [start, end).
    period       TEXT,
    period_start INTEGER,
    period_end   INTEGER,
    -- The time the skill's data was taken as of.
    as_of        INTEGER NOT NULL,
    settings     TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    report       TEXT,
    error        TEXT,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    PRIMARY KEY (workspace_id, id)
) STRICT;

-- A skill's run history, newest first.
CREATE INDEX skill_runs_by_skill ON skill_runs (workspace_id, skill, started_at, id);
-- The latest succeeded run of a skill for a period.
CREATE INDEX skill_runs_succeeded ON skill_runs (workspace_id, skill, period, started_at, id)
    WHERE status = 'succeeded';

-- A workspace's settings of a skill: only the keys it set (the skill's
-- defaults fill in the rest).
CREATE TABLE skill_settings (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    skill        TEXT    NOT NULL,
    settings     TEXT    NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, skill)
) STRICT;

-- Quotas: one amount per (user, period). Removed with the user (and so with
-- the workspace).
CREATE TABLE quotas (
    workspace_id BLOB    NOT NULL,
    user_id      BLOB    NOT NULL,
    period       TEXT    NOT NULL,
    amount_e4    INTEGER NOT NULL,
    currency     TEXT,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, user_id, period),
    FOREIGN KEY (workspace_id, user_id) REFERENCES users (workspace_id, id) ON DELETE CASCADE
) STRICT;

CREATE INDEX quotas_by_period ON quotas (workspace_id, period, user_id);
