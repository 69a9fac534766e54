-- Deployment-wide credential maintenance (`pandora credentials …`) pages
-- through connections by id across workspaces: give it an index so each page
-- is a range scan instead of a sort of every connection.
CREATE INDEX connections_credentials_id_idx ON connections (id)
    WHERE credentials IS NOT NULL;
