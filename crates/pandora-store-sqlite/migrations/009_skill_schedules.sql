-- A workspace's schedule of a skill (see SkillStore::put_skill_schedule):
-- a cron expression replacing the skill's default (NULL: the default), or
-- the schedule turned off. Skills a workspace never changed have no row.
CREATE TABLE skill_schedules (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    skill        TEXT    NOT NULL,
    cron         TEXT,
    enabled      INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, skill)
) STRICT;
