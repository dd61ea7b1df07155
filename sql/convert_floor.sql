SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idgen;
RESET client_min_messages;
--
-- The floor of a conversion counts the values the sequence handed out and
-- no row holds yet (an application's pending nextval()).  When the caller
-- cannot read the sequence's last value, the conversion must refuse rather
-- than start the segment tag above max(col) alone: a pending value would
-- then collide with the tag's first numbers.
--
\set SHOW_CONTEXT never
\set VERBOSITY default

-- The segment worker must be connected before numbers are taken (up to 60 s).
DO $$
BEGIN
    FOR i IN 1..600 LOOP
        PERFORM pg_stat_clear_snapshot();
        PERFORM 1 FROM pg_stat_activity
        WHERE backend_type = 'idgen worker' AND datname = current_database();
        EXIT WHEN FOUND;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;

CREATE ROLE cf_owner;
CREATE ROLE cf_app;
GRANT CREATE ON SCHEMA public TO cf_owner;
GRANT EXECUTE ON FUNCTION idgen.segment_create(text, bigint, integer),
                          idgen.segment_next(text) TO cf_owner, cf_app;

-- a sequence the application may use but the table's owner may not read
CREATE SEQUENCE cf_seq;
GRANT USAGE ON SEQUENCE cf_seq TO cf_app;

SET ROLE cf_owner;
CREATE TABLE cf_t (id bigint PRIMARY KEY DEFAULT nextval('cf_seq'), note text);
GRANT INSERT, SELECT ON cf_t TO cf_app;
RESET ROLE;

SET ROLE cf_app;
INSERT INTO cf_t (note) VALUES ('a'), ('b'), ('c');
-- fetched, not inserted yet
SELECT nextval('cf_seq') AS pending;
RESET ROLE;

SET ROLE cf_owner;
SELECT idgen.convert_to_segment('cf_t', 'id', 'cf_tag');
RESET ROLE;

-- the application inserts the value it fetched, then relies on the default
SET ROLE cf_app;
INSERT INTO cf_t (id, note) VALUES (4, 'pending');
INSERT INTO cf_t (note) VALUES ('new');
SELECT count(*) AS rows, count(DISTINCT id) AS distinct_ids FROM cf_t;
RESET ROLE;

-- with the right to read the sequence, the same conversion of another
-- table goes through and starts above the pending value
GRANT SELECT ON SEQUENCE cf_seq TO cf_owner;
SET ROLE cf_owner;
CREATE TABLE cf_u (id bigint PRIMARY KEY DEFAULT nextval('cf_seq'), note text);
GRANT INSERT, SELECT ON cf_u TO cf_app;
RESET ROLE;
SET ROLE cf_app;
INSERT INTO cf_u (note) VALUES ('a');
SELECT nextval('cf_seq') AS pending;
RESET ROLE;
SET ROLE cf_owner;
SELECT idgen.convert_to_segment('cf_u', 'id', 'cf_tag2');
RESET ROLE;
SET ROLE cf_app;
INSERT INTO cf_u (id, note) VALUES (currval('cf_seq'), 'pending');
INSERT INTO cf_u (note) VALUES ('new');
SELECT count(*) AS rows, count(DISTINCT id) AS distinct_ids,
       max(id) > currval('cf_seq') AS above_pending FROM cf_u;
RESET ROLE;

DROP TABLE cf_t, cf_u;
DROP SEQUENCE cf_seq;
SELECT idgen.segment_drop(t) FROM unnest(ARRAY['cf_tag', 'cf_tag2']) t
 WHERE idgen._segment_exists(t);
REVOKE ALL ON FUNCTION idgen.segment_create(text, bigint, integer),
                       idgen.segment_next(text) FROM cf_owner, cf_app;
REVOKE CREATE ON SCHEMA public FROM cf_owner;
DROP ROLE cf_owner;
DROP ROLE cf_app;

--
-- Rows a row-level security policy hides from the caller count too.  With
-- FORCE ROW LEVEL SECURITY the owner sees only its tenant's rows; the
-- other tenant's explicit id 3 must not be reached by the new numbers.
--
CREATE ROLE cf_rls;
GRANT CREATE ON SCHEMA public TO cf_rls;
GRANT EXECUTE ON FUNCTION idgen.segment_create(text, bigint, integer),
                          idgen.segment_next(text) TO cf_rls;
SET ROLE cf_rls;
CREATE TABLE cf_r (id bigserial PRIMARY KEY,
                   tenant text NOT NULL DEFAULT current_setting('cf.tenant'));
ALTER TABLE cf_r ENABLE ROW LEVEL SECURITY;
ALTER TABLE cf_r FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON cf_r USING (tenant = current_setting('cf.tenant'));
SET cf.tenant = 'a';
INSERT INTO cf_r DEFAULT VALUES;
SET cf.tenant = 'b';
INSERT INTO cf_r (id) VALUES (3);
SET cf.tenant = 'a';
SELECT idgen.convert_to_segment('cf_r', 'id', 'cf_rtag');
-- lifted for the conversion's transaction, it goes through above id 3
BEGIN;
ALTER TABLE cf_r NO FORCE ROW LEVEL SECURITY;
SELECT idgen.convert_to_segment('cf_r', 'id', 'cf_rtag2');
ALTER TABLE cf_r FORCE ROW LEVEL SECURITY;
COMMIT;
SET cf.tenant = 'b';
INSERT INTO cf_r DEFAULT VALUES;
INSERT INTO cf_r DEFAULT VALUES;
SELECT count(*) AS rows_of_b, count(*) FILTER (WHERE id > 3) AS above_hidden FROM cf_r;
RESET cf.tenant;
RESET ROLE;
DROP TABLE cf_r;
SELECT idgen.segment_drop(t) FROM unnest(ARRAY['cf_rtag', 'cf_rtag2']) t
 WHERE idgen._segment_exists(t);
REVOKE ALL ON FUNCTION idgen.segment_create(text, bigint, integer),
                       idgen.segment_next(text) FROM cf_rls;
REVOKE CREATE ON SCHEMA public FROM cf_rls;
DROP ROLE cf_rls;
