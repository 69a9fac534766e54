-- Skills (see SkillStore): runs, per-workspace skill settings, quotas.
--
-- status holds the stable strings of RunStatus. Amounts are NUMERIC like
-- deal amounts (at most 4 decimal places, checked by the store).

CREATE TABLE skill_runs (
    workspace_id UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           UUID        NOT NULL,
    skill        TEXT        COLLATE "C" NOT NULL,
    -- Canonical period label (e.g. 2026-Q2) and its bounds, [start, end).
    period       TEXT        COLLATE "C",
    period_start TIMESTAMPTZ,
    period_end   TIMESTAMPTZ,
    -- The time the skill's data was taken as of.
    as_of        TIMESTAMPTZ NOT NULL,
    settings     JSONB       NOT NULL DEFAULT '{}'::jsonb,
    status       TEXT        NOT NULL,
    report       JSONB,
    error        TEXT,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    PRIMARY KEY (workspace_id, id)
);

-- A skill's run history, newest first.
CREATE INDEX skill_runs_by_skill_idx ON skill_runs (workspace_id, skill, started_at, id);
-- The latest succeeded run of a skill for a period.
CREATE INDEX skill_runs_succeeded_idx ON skill_runs (workspace_id, skill, period, started_at, id)
    WHERE status = 'succeeded';

-- A workspace's settings of a skill: only the keys it set (the skill's
-- defaults fill in the rest).
CREATE TABLE skill_settings (
    workspace_id UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    skill        TEXT        COLLATE "C" NOT NULL,
    settings     JSONB       NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, skill)
);

-- Quotas: one amount per (user, period). Removed with the user (and so with
-- the workspace).
CREATE TABLE quotas (
    workspace_id UUID        NOT NULL,
    user_id      UUID        NOT NULL,
    period       TEXT        COLLATE "C" NOT NULL,
    amount       NUMERIC     NOT NULL,
    currency     TEXT,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, user_id, period),
    FOREIGN KEY (workspace_id, user_id) REFERENCES users (workspace_id, id) ON DELETE CASCADE
);

CREATE INDEX quotas_by_period_idx ON quotas (workspace_id, period, user_id);
