-- Computed deal fields (pandora_core::computed), stored with the deal so that
-- lists filter and sort on them, and the per-workspace won-deal baseline they
-- are computed against.
--
-- computed holds the ComputedFields as JSON; risk_score is its risk_score
-- promoted for `min_risk` and `sort=risk`. Both are NULL until the deal is
-- first computed, and are written together by write_batch (for the deals a
-- batch changes or adds history to) and by set_deal_computed. Adding
-- nullable columns without a default rewrites no rows.

ALTER TABLE deals
    ADD COLUMN risk_score SMALLINT CONSTRAINT deals_risk_score_range
        CHECK (risk_score BETWEEN 0 AND 100),
    ADD COLUMN computed JSONB;

-- Keyset pagination by (risk_score, id) over live deals, and the min_risk
-- range. Deals without a score come last in both directions, which a
-- backward scan cannot give, hence one index per direction (as for amount).
CREATE INDEX deals_live_risk_asc_idx
    ON deals (workspace_id, risk_score ASC NULLS LAST, id ASC)
    WHERE deleted_at IS NULL;
CREATE INDEX deals_live_risk_desc_idx
    ON deals (workspace_id, risk_score DESC NULLS LAST, id DESC)
    WHERE deleted_at IS NULL;

-- The cached WorkspaceBaseline and when it was built; replaced whole by
-- each refresh.
CREATE TABLE workspace_baselines (
    workspace_id UUID        PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    baseline     JSONB       NOT NULL,
    computed_at  TIMESTAMPTZ NOT NULL
);
