-- A withdrawn service keeps no rows in `directory_search_terms` (V39): no search can return it
-- (every search asks `NOT withdrawn`), and its words would only crowd each word's best list,
-- which a search of plain words picks its candidates from. Its rows go when it is withdrawn
-- and come back when a listing brings it back.
CREATE OR REPLACE FUNCTION directory_search_terms_refresh() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM directory_search_terms WHERE service_id = OLD.service_id;
    END IF;
    IF NOT NEW.withdrawn THEN
        INSERT INTO directory_search_terms (service_id, lexeme, score)
        SELECT * FROM directory_search_terms_of(NEW.service_id, NEW.search);
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER directory_search_terms_changed ON directory_services;

CREATE TRIGGER directory_search_terms_changed
    AFTER UPDATE OF search, withdrawn ON directory_services
    FOR EACH ROW WHEN (OLD.search IS DISTINCT FROM NEW.search
        OR OLD.withdrawn IS DISTINCT FROM NEW.withdrawn)
    EXECUTE FUNCTION directory_search_terms_refresh();

DELETE FROM directory_search_terms AS t
USING directory_services AS d
WHERE d.service_id = t.service_id AND d.withdrawn;
