SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idgen;
RESET client_min_messages;
--
-- idgen.convert_to_snowflake(tbl, col) and idgen.convert_to_segment(tbl,
-- col, tag): the conversions and every refusal.  The concurrent conversion
-- and pg_dump/restore are in test/t/071_convert_dump.pl.
--
-- The server runs with test/preload.conf (worker id 1, idgen.database =
-- contrib_regression).  Snowflake IDs depend on the time: only comparisons
-- are printed.
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

-- SQLSTATE, message, detail and hint of a failing statement, with numbers
-- of 15 digits or more (Snowflake IDs of the current time) masked.
CREATE FUNCTION pg_temp.error_of(query text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hnt text;
BEGIN
    EXECUTE query;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    RETURN regexp_replace(format(E'%s: %s\nDETAIL: %s\nHINT: %s', st, msg, det, hnt),
                          '[0-9]{15,}', 'N', 'g');
END
$$;

-- The default of a column, for checks.
CREATE FUNCTION pg_temp.default_of(tbl regclass, col name) RETURNS text
LANGUAGE sql AS $$
    SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
      JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
     WHERE d.adrelid = tbl AND a.attname = col
$$;

--
-- bigserial to Snowflake: the owned sequence is dropped, new IDs are above
-- the old ones.
--
CREATE TABLE orders (id bigserial PRIMARY KEY, note text);
INSERT INTO orders (note) SELECT 'old' FROM generate_series(1, 100);
SELECT idgen.convert_to_snowflake('orders', 'id');
SELECT pg_temp.default_of('orders', 'id');
SELECT to_regclass('orders_id_seq') IS NULL AS sequence_dropped;
INSERT INTO orders (note) SELECT 'new' FROM generate_series(1, 100);
SELECT count(*) AS new_rows,
       min(id) > (SELECT max(id) FROM orders WHERE note = 'old') AS above_old,
       count(DISTINCT id) AS distinct_ids
FROM orders WHERE note = 'new';

--
-- GENERATED ALWAYS AS IDENTITY to Snowflake: the identity (and its
-- sequence) is dropped; the column stays NOT NULL.
--
CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);
INSERT INTO events (note) SELECT 'old' FROM generate_series(1, 10);
SELECT idgen.convert_to_snowflake('events', 'id');
SELECT a.attidentity = '' AS no_identity, a.attnotnull, pg_temp.default_of('events', 'id')
FROM pg_attribute a WHERE a.attrelid = 'events'::regclass AND a.attname = 'id';
SELECT to_regclass('events_id_seq') IS NULL AS sequence_dropped;
INSERT INTO events (note) VALUES ('new');
SELECT (SELECT id FROM events WHERE note = 'new') > (SELECT max(id) FROM events WHERE note = 'old') AS above_old;

--
-- DEFAULT nextval() of a sequence the column does not own: the sequence
-- stays as it is (another table uses it).
--
CREATE SEQUENCE shared_seq;
CREATE TABLE a_side (id bigint DEFAULT nextval('shared_seq') PRIMARY KEY);
CREATE TABLE b_side (id bigint DEFAULT nextval('shared_seq') PRIMARY KEY);
INSERT INTO a_side DEFAULT VALUES;
INSERT INTO b_side DEFAULT VALUES;
SELECT idgen.convert_to_snowflake('a_side', 'id');
SELECT pg_temp.default_of('a_side', 'id') AS a_default, pg_temp.default_of('b_side', 'id') AS b_default;
INSERT INTO b_side DEFAULT VALUES;
SELECT max(id) AS b_max FROM b_side;

--
-- An owned sequence still used by another table is detached and kept.
--
CREATE TABLE owner_side (id bigserial PRIMARY KEY);
CREATE TABLE borrower (id bigint DEFAULT nextval('owner_side_id_seq') PRIMARY KEY);
SELECT idgen.convert_to_snowflake('owner_side', 'id');
SELECT pg_get_serial_sequence('owner_side', 'id') IS NULL AS detached,
       to_regclass('owner_side_id_seq') IS NOT NULL AS kept;
INSERT INTO borrower DEFAULT VALUES;

--
-- bigserial to a segment tag: the tag starts above the largest value of the
-- column and of the sequence (here the sequence went further than the rows:
-- 150 was handed out, 120 is the largest row).
--
CREATE TABLE items (id bigserial PRIMARY KEY, note text);
INSERT INTO items (note) SELECT 'old' FROM generate_series(1, 120);
SELECT setval('items_id_seq', 150);
SELECT idgen.convert_to_segment('items', 'id', 'items_id');
SELECT tag, start_value FROM idgen.segment_alloc WHERE tag = 'items_id';
SELECT to_regclass('items_id_seq') IS NULL AS sequence_dropped;
INSERT INTO items (note) SELECT 'new' FROM generate_series(1, 5);
SELECT id FROM items WHERE note = 'new' ORDER BY id;

-- An identity column to a segment tag; an empty table starts at 1.
CREATE TABLE empty_ident (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY);
SELECT idgen.convert_to_segment('empty_ident', 'id', 'empty_ident');
SELECT start_value FROM idgen.segment_alloc WHERE tag = 'empty_ident';
INSERT INTO empty_ident DEFAULT VALUES RETURNING id;

-- The conversion is one transaction: a rollback leaves everything as it was.
CREATE TABLE undo (id bigserial PRIMARY KEY);
BEGIN;
SELECT idgen.convert_to_segment('undo', 'id', 'undo');
ROLLBACK;
SELECT pg_temp.default_of('undo', 'id'), idgen._segment_exists('undo') AS tag_exists;

--
-- Refusals.
--
-- integer (serial) column: too small for Snowflake IDs.
CREATE TABLE small (id serial PRIMARY KEY);
SELECT idgen.convert_to_snowflake('small', 'id');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- ... and for segment numbers, which are bigint too.
SELECT idgen.convert_to_segment('small', 'id', 'small');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- A column without a sequence, and one already converted.
CREATE TABLE plain (id bigint PRIMARY KEY, other bigint DEFAULT 42);
SELECT idgen.convert_to_snowflake('plain', 'id');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT idgen.convert_to_snowflake('plain', 'other');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT idgen.convert_to_snowflake('orders', 'id');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- A default that uses a sequence but is not just nextval().
CREATE TABLE twisted (id bigint DEFAULT nextval('shared_seq') * 2);
SELECT idgen.convert_to_snowflake('twisted', 'id');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Values at or above the next Snowflake ID.
CREATE TABLE huge (id bigserial PRIMARY KEY);
INSERT INTO huge VALUES (9000000000000000000);
SELECT pg_temp.error_of($$SELECT idgen.convert_to_snowflake('huge', 'id')$$);
SELECT pg_temp.default_of('huge', 'id');
-- ... the sequence alone past the next Snowflake ID counts as well.
CREATE TABLE huge_seq (id bigserial PRIMARY KEY);
SELECT setval('huge_seq_id_seq', 9000000000000000000);
SELECT pg_temp.error_of($$SELECT idgen.convert_to_snowflake('huge_seq', 'id')$$);
-- A tag that already exists.
SELECT idgen.segment_create('taken');
CREATE TABLE tagged (id bigserial PRIMARY KEY);
SELECT idgen.convert_to_segment('tagged', 'id', 'taken');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT idgen.convert_to_segment('tagged', 'id', NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- No such column; not a table.
SELECT idgen.convert_to_snowflake('tagged', 'nope');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE VIEW tagged_view AS SELECT * FROM tagged;
SELECT idgen.convert_to_snowflake('tagged_view', 'id');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

--
-- Privileges: a table the caller does not own; a segment tag without the
-- right to create tags.
--
CREATE ROLE regress_idgen_convert_other;
CREATE ROLE regress_idgen_convert_owner;
GRANT CREATE ON SCHEMA public TO regress_idgen_convert_owner;
GRANT ALL ON tagged TO regress_idgen_convert_other;
SET ROLE regress_idgen_convert_other;
SELECT idgen.convert_to_snowflake('tagged', 'id');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT idgen.convert_to_segment('tagged', 'id', 'tagged');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_idgen_convert_owner;
CREATE TABLE mine (id bigserial PRIMARY KEY);
INSERT INTO mine DEFAULT VALUES;
SELECT idgen.convert_to_segment('mine', 'id', 'mine');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT idgen.convert_to_snowflake('mine', 'id');
RESET ROLE;
SELECT pg_temp.default_of('mine', 'id');
-- With the rights a segment tag needs, the owner converts to one.
CREATE TABLE mine2 (id bigserial PRIMARY KEY);
ALTER TABLE mine2 OWNER TO regress_idgen_convert_owner;
INSERT INTO mine2 DEFAULT VALUES;
GRANT EXECUTE ON FUNCTION idgen.segment_create(text, bigint, integer), idgen.segment_next(text)
    TO regress_idgen_convert_owner;
SET ROLE regress_idgen_convert_owner;
SELECT idgen.convert_to_segment('mine2', 'id', 'mine2');
INSERT INTO mine2 DEFAULT VALUES;
SELECT id FROM mine2 ORDER BY id;
RESET ROLE;
-- Nothing was left behind by the refusals.
SELECT pg_temp.default_of('tagged', 'id'), pg_temp.default_of('small', 'id'),
       pg_temp.default_of('huge', 'id');

-- Volatility and labels of the new functions.
SELECT p.oid::regprocedure, provolatile, proparallel, prosecdef, proconfig
FROM pg_proc p WHERE pronamespace = 'idgen'::regnamespace
  AND proname IN ('convert_to_snowflake', 'convert_to_segment', '_convert_prepare', '_convert_finish')
ORDER BY 1::text;

DROP TABLE mine, mine2;
SELECT idgen.segment_drop(t) FROM unnest(ARRAY['items_id', 'empty_ident', 'taken', 'mine2']) AS t;
REVOKE EXECUTE ON FUNCTION idgen.segment_create(text, bigint, integer), idgen.segment_next(text)
    FROM regress_idgen_convert_owner;
DROP OWNED BY regress_idgen_convert_owner, regress_idgen_convert_other;
DROP ROLE regress_idgen_convert_owner, regress_idgen_convert_other;
