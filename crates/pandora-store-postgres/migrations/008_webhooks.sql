-- Webhooks (see WebhookStore and docs/webhooks.md): a workspace's endpoints,
-- the alerts its live skill runs raised, and the deliveries of new alerts.
--
-- A delivery is a jobs row (kind 'webhook', no connection) plus a
-- webhook_deliveries row with the same id: status, attempts and last_error
-- are the job's. The endpoint's signing secret is sealed by the vault
-- (bound to the workspace and the endpoint id), never stored in the clear.

CREATE TABLE webhooks (
    workspace_id UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           UUID        NOT NULL,
    url          TEXT        NOT NULL,
    -- The WebhookEvent strings the endpoint wants, sorted.
    events       TEXT[]      NOT NULL,
    description  TEXT,
    secret       TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, id)
);

-- Alerts raised and still holding: one per (workspace, event, deal). A run
-- inserts the new ones (ON CONFLICT DO NOTHING: a concurrent run raising the
-- same alert raises it once) and deletes those whose condition cleared, so a
-- deal that leaves the condition and comes back alerts again.
CREATE TABLE webhook_alerts (
    workspace_id UUID        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    event        TEXT        COLLATE "C" NOT NULL,
    deal_id      UUID        NOT NULL,
    run_id       UUID        NOT NULL,
    raised_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, event, deal_id)
);

-- One POST of new alerts to one endpoint; its job has the same id.
CREATE TABLE webhook_deliveries (
    workspace_id    UUID        NOT NULL,
    id              UUID        NOT NULL,
    webhook_id      UUID        NOT NULL,
    -- The exact bytes every attempt sends (TEXT, not JSONB, so they never change).
    body            TEXT        NOT NULL,
    response_status INTEGER,
    created_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, webhook_id)
        REFERENCES webhooks (workspace_id, id) ON DELETE CASCADE
);

-- An endpoint's deliveries, newest first.
CREATE INDEX webhook_deliveries_by_webhook_idx
    ON webhook_deliveries (workspace_id, webhook_id, created_at, id);
