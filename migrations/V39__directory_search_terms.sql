-- An inverted index of the directory's search text with each word's share of the rank, so a
-- broad search ("lonely older people", matching most of the directory) picks its best few
-- hundred candidates without ranking every match.
--
-- A search of plain words is an OR of their lexemes, and for an OR, `ts_rank_cd(search, query, 1)`
-- is a sum over the query's lexemes: each occurrence of one is a cover of its own, worth its
-- weight (A 1.0, B 0.4, C 0.2, D 0.1), and the sum is divided by ln(1 + the number of positions).
-- `score` is one lexeme's part of that sum. Where positions collide (past 16,383 words) the
-- real rank is lower than the sum, never higher, so the sum stays an upper bound, which is all
-- the search relies on: it ranks the candidates with `ts_rank_cd` itself.
--
-- Rows follow `directory_services.search` by trigger (on every insert, and on every update that
-- changes it), and go with their service (a rebuild's reset deletes the services).
CREATE TABLE directory_search_terms (
    service_id  uuid NOT NULL REFERENCES directory_services (service_id) ON DELETE CASCADE,
    lexeme      text NOT NULL,
    score       real NOT NULL,
    PRIMARY KEY (service_id, lexeme)
);
-- A word's services, best first: read in full (every match) or its best few (each word's top).
CREATE INDEX directory_search_terms_best ON directory_search_terms (lexeme, score DESC)
    INCLUDE (service_id);

-- The rows of one service's search vector.
CREATE FUNCTION directory_search_terms_of(service uuid, search tsvector)
RETURNS TABLE (service_id uuid, lexeme text, score real)
LANGUAGE sql IMMUTABLE AS $$
    SELECT service, t.lexeme,
        (coalesce((SELECT sum(CASE w WHEN 'A' THEN 1.0 WHEN 'B' THEN 0.4 WHEN 'C' THEN 0.2 ELSE 0.1 END)
                   FROM unnest(t.weights) AS w), 0.1) / ln(1 + n.positions))::real
    FROM unnest(search) AS t,
        (SELECT sum(coalesce(array_length(p.positions, 1), 1)) AS positions
         FROM unnest(search) AS p) AS n
$$;

CREATE FUNCTION directory_search_terms_refresh() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM directory_search_terms WHERE service_id = OLD.service_id;
    END IF;
    INSERT INTO directory_search_terms (service_id, lexeme, score)
    SELECT * FROM directory_search_terms_of(NEW.service_id, NEW.search);
    RETURN NULL;
END;
$$;

CREATE TRIGGER directory_search_terms_listed
    AFTER INSERT ON directory_services
    FOR EACH ROW EXECUTE FUNCTION directory_search_terms_refresh();

CREATE TRIGGER directory_search_terms_changed
    AFTER UPDATE OF search ON directory_services
    FOR EACH ROW WHEN (OLD.search IS DISTINCT FROM NEW.search)
    EXECUTE FUNCTION directory_search_terms_refresh();

INSERT INTO directory_search_terms (service_id, lexeme, score)
SELECT t.* FROM directory_services AS d, directory_search_terms_of(d.service_id, d.search) AS t;

GRANT SELECT, INSERT, UPDATE, DELETE ON directory_search_terms TO casebook_app;
