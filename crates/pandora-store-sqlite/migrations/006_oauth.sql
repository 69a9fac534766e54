-- OAuth (see OAuthStore): pending authorizations and token-refresh leases.
--
-- Encodings as in 001: ids 16-byte BLOBs, timestamps INTEGER microseconds.
--
-- oauth_authorizations: the server side of a signed OAuth `state`, from the
-- authorize redirect until its callback. The callback deletes the row it
-- consumes (DELETE … RETURNING), so a state is used at most once; rows whose
-- state expired are purged. code_verifier is the flow's PKCE verifier, never
-- put in a URL. Times are the caller's.

CREATE TABLE oauth_authorizations (
    workspace_id  BLOB    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    nonce         BLOB    NOT NULL,
    connector     TEXT    NOT NULL,
    code_verifier TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, nonce)
) STRICT;

-- The deployment-wide purge of expired rows.
CREATE INDEX oauth_authorizations_expiry ON oauth_authorizations (expires_at);

-- token_refresh_leases: at most one process refreshes a connection's OAuth
-- token at a time. A lease is a row with an expiry, not a database lock, so
-- nothing is held while the vendor's token endpoint answers; a holder that
-- died is replaced once lease_until has passed.
CREATE TABLE token_refresh_leases (
    workspace_id  BLOB    NOT NULL,
    connection_id BLOB    NOT NULL,
    holder        TEXT    NOT NULL,
    lease_until   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, connection_id),
    FOREIGN KEY (workspace_id, connection_id)
        REFERENCES connections (workspace_id, id) ON DELETE CASCADE
) STRICT;
