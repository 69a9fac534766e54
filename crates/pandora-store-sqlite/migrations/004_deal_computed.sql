-- Computed deal fields (pandora_core::computed), stored with the deal so that
-- lists filter and sort on them, and the per-workspace won-deal baseline they
-- are computed against.
--
-- computed holds the ComputedFields as TEXT JSON; risk_score is its
-- risk_score promoted for `min_risk` and `sort=risk`. Both are NULL until the
-- deal is first computed, and are written together by write_batch (for the
-- deals a batch changes or adds history to) and by set_deal_computed.

ALTER TABLE deals ADD COLUMN risk_score INTEGER CHECK (risk_score BETWEEN 0 AND 100);
ALTER TABLE deals ADD COLUMN computed TEXT;

-- Keyset pagination by (risk_score, id) over live deals, and the min_risk
-- range. Deals without a score sit together at the low end, which the store
-- reads as a separate segment to put them last in either direction.
CREATE INDEX deals_live_by_risk ON deals (workspace_id, risk_score, id) WHERE deleted_at IS NULL;

-- The cached WorkspaceBaseline (JSON) and when it was built (INTEGER
-- microseconds); replaced whole by each refresh.
CREATE TABLE workspace_baselines (
    workspace_id BLOB    NOT NULL PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    baseline     TEXT    NOT NULL,
    computed_at  INTEGER NOT NULL
) STRICT;
