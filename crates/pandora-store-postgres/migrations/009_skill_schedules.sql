-- A workspace's schedule of a skill (see SkillStore::put_skill_schedule):
-- a cron expression replacing the skill's default (NULL: the default), or
-- the schedule turned off. Skills a workspace never changed have no row.
CREATE TABLE skill_schedules (
    workspace_id UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    skill        TEXT        COLLATE "C" NOT NULL,
    cron         TEXT,
    enabled      BOOLEAN     NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, skill)
);
