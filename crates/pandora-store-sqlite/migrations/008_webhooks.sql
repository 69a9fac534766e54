-- Webhooks (see WebhookStore and docs/webhooks.md): a workspace's endpoints,
-- the alerts its live skill runs raised, and the deliveries of new alerts.
--
-- Encodings as in 001: ids 16-byte BLOBs, timestamps INTEGER microseconds.
-- A delivery is a jobs row (kind 'webhook', no connection) plus a
-- webhook_deliveries row with the same id: status, attempts and last_error
-- are the job's. The endpoint's signing secret is sealed by the vault
-- (bound to the workspace and the endpoint id), never stored in the clear.

CREATE TABLE webhooks (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           BLOB    NOT NULL,
    url          TEXT    NOT NULL,
    -- The WebhookEvent strings the endpoint wants, sorted, as a JSON array.
    events       TEXT    NOT NULL,
    description  TEXT,
    secret       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id)
) STRICT;

-- Alerts raised and still holding: one per (workspace, event, deal).
CREATE TABLE webhook_alerts (
    workspace_id BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    event        TEXT    NOT NULL,
    deal_id      BLOB    NOT NULL,
    run_id       BLOB    NOT NULL,
    raised_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, event, deal_id)
) STRICT;

-- One POST of new alerts to one endpoint; its job has the same id.
CREATE TABLE webhook_deliveries (
    workspace_id    BLOB    NOT NULL,
    id              BLOB    NOT NULL,
    webhook_id      BLOB    NOT NULL,
    -- The exact bytes every attempt sends.
    body            TEXT    NOT NULL,
    response_status INTEGER,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    PRIMARY KEY (workspace_id, id),
    FOREIGN KEY (workspace_id, webhook_id)
        REFERENCES webhooks (workspace_id, id) ON DELETE CASCADE
) STRICT;

-- An endpoint's deliveries, newest first.
CREATE INDEX webhook_deliveries_by_webhook
    ON webhook_deliveries (workspace_id, webhook_id, created_at, id);
