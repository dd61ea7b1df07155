SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idgen;
RESET client_min_messages;
--
-- The uniqueness probe (idgen.probe_register, probe_unregister, probe_run,
-- the view idgen.probe_status), the audits (idgen.audit_leases,
-- idgen.audit_segments) and the probe rows of idgen.stats.
--
-- The server runs with test/preload.conf: idgen preloaded, static
-- idgen.worker_id = 1, idgen.database = 'contrib_regression'.  The
-- background worker runs the probes of this database every
-- idgen.probe_interval seconds; the schedule is turned off while this file
-- runs (and turned back on at its end), so that only the probe_run() calls
-- below run probes and every count printed here is deterministic.  The
-- scheduled runs are tested by test/t/040_probe.pl.
--
-- Snowflake and UUIDv7 values differ from run to run, so the WARNINGs that
-- name duplicate IDs of those columns are silenced (client_min_messages =
-- error) around the probe_run() calls that would print them; their text is
-- checked by the TAP test.  Segment numbers are deterministic here, and their
-- WARNINGs are printed.  Errors print their SQLSTATE.
--
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

ALTER SYSTEM SET idgen.probe_interval = 0;
SELECT pg_reload_conf();

-- The setting.
SELECT name, boot_val, unit, context, min_val, max_val
FROM pg_settings WHERE name = 'idgen.probe_interval';

-- Segment numbers need the worker connected to this database; wait for it
-- (up to 60 s) in case this file runs alone.
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

--
-- Shape of the view and the function's result.
--
SELECT ordinal_position, column_name, data_type
FROM information_schema.columns
WHERE table_schema = 'idgen' AND table_name = 'probe_status'
ORDER BY ordinal_position;
SELECT pg_get_function_arguments('idgen.probe_register'::regproc) AS probe_register_args,
       pg_get_function_result('idgen.probe_run'::regproc) AS probe_run_result;
-- Nothing registered yet.
SELECT count(*) AS probes FROM idgen.probe_status;
SELECT * FROM idgen.probe_run();

--
-- One column of each kind, with a primary key (clean tables).  The kind is
-- told by the column type and, for bigint, by a segment_next() default.
--
CREATE TABLE probe_sf (id bigint PRIMARY KEY DEFAULT idgen.snowflake_next(), note text);
CREATE TABLE probe_uu (id uuid PRIMARY KEY DEFAULT idgen.uuidv7(), note text);
SELECT idgen.segment_create('probe_x', 1, 10);
CREATE TABLE probe_sg (id bigint PRIMARY KEY DEFAULT idgen.segment_next('probe_x'), note text);

SELECT idgen.probe_register('probe_sf', 'id');
SELECT idgen.probe_register('probe_uu', 'id', '30 minutes');
SELECT idgen.probe_register(tbl => 'probe_sg', col => 'id', "window" => '2 hours');
SELECT tbl, col, kind, "window", indexed, last_run_at, ids_checked, duplicates,
       duration_ms, runs, duplicates_found, high_water
FROM idgen.probe_status ORDER BY tbl::text, col;

INSERT INTO probe_sf (note) SELECT 'clean' FROM generate_series(1, 100);
INSERT INTO probe_uu (note) SELECT 'clean' FROM generate_series(1, 200);
INSERT INTO probe_sg (note) SELECT 'clean' FROM generate_series(1, 300);
SELECT min(id), max(id), count(*) FROM probe_sg;

-- Clean tables: no duplicates, and every row (all issued just now, within
-- the window) checked.  The scan starts at the smallest ID of the window's
-- start: the smallest Snowflake ID of that tick, the smallest UUIDv7
-- idgen.uuidv7() can issue at that time (idgen.uuidv7_min); for segment
-- numbers, on the first run, the smallest bigint.
SELECT tbl, col, kind, ids_checked, duplicates,
       CASE kind
           WHEN 'snowflake' THEN lower_bound = idgen.snowflake_min(now() - interval '1 hour')::text
           WHEN 'uuidv7' THEN lower_bound = idgen.uuidv7_min(now() - interval '30 minutes')::text
           ELSE lower_bound = '-9223372036854775808'
       END AS lower_bound_ok,
       duration_ms >= 0 AS has_duration
FROM idgen.probe_run() ORDER BY tbl::text, col;
SELECT s.tbl, s.ids_checked,
       s.ids_checked = CASE s.tbl::text
                           WHEN 'probe_sf' THEN (SELECT count(*) FROM probe_sf)
                           WHEN 'probe_uu' THEN (SELECT count(*) FROM probe_uu)
                           ELSE (SELECT count(*) FROM probe_sg)
                       END AS all_rows_checked,
       s.duplicates, s.runs, s.duplicates_found,
       s.last_run_at > now() - interval '1 minute' AS ran_just_now, s.high_water
FROM idgen.probe_status s ORDER BY s.tbl::text;
-- A segment probe remembers the largest number it saw and starts its next
-- run there: only numbers at or above that high-water mark are checked
-- again (the window is not used for segment columns).
SELECT tbl, ids_checked, duplicates, lower_bound
FROM idgen.probe_run() WHERE kind = 'segment';
INSERT INTO probe_sg (note) SELECT 'clean' FROM generate_series(1, 5);
SELECT tbl, ids_checked, duplicates, lower_bound
FROM idgen.probe_run() WHERE kind = 'segment';
SELECT tbl, runs, duplicates_found, high_water
FROM idgen.probe_status ORDER BY tbl::text;

--
-- Planted duplicates, in tables without a unique constraint (a plain
-- B-tree index each).
--
-- Segment numbers first (their values, and so their WARNINGs, are
-- deterministic): 100 numbers of a new tag, then a repeat of an earlier
-- number and a repeat of the latest.  On the probe's first run both are
-- found; ids_checked counts distinct IDs and duplicates counts IDs that
-- appear more than once (each WARNING says how many times).
--
SELECT idgen.segment_create('probe_y', 1000, 10);
CREATE TABLE probe_sg_dup (id bigint DEFAULT idgen.segment_next('probe_y'), note text);
CREATE INDEX ON probe_sg_dup (id);
SELECT idgen.probe_register('probe_sg_dup', 'id');
INSERT INTO probe_sg_dup (note) SELECT 'issued' FROM generate_series(1, 100);
SELECT min(id), max(id), count(*) FROM probe_sg_dup;
INSERT INTO probe_sg_dup VALUES (1050, 'repeat of an earlier number'),
                                (1099, 'repeat of the latest number'),
                                (1099, 'and again');
SELECT tbl, ids_checked, duplicates, lower_bound FROM idgen.probe_run()
WHERE tbl = 'probe_sg_dup'::regclass;
SELECT tbl, ids_checked, duplicates, runs, duplicates_found, high_water
FROM idgen.probe_status WHERE tbl = 'probe_sg_dup'::regclass;
-- After that run the high-water mark is 1099.  New numbers above it,
-- planted twice, are found; so are repeats of the mark itself, which the
-- next run reads again.  A repeat of a number below the mark (1010) is
-- not: for segment columns the probe promises to check every number at or
-- above the high-water mark of its last run against the whole table, not
-- numbers inserted below it later.
SELECT idgen.segment_next('probe_y') AS new_number \gset
INSERT INTO probe_sg_dup VALUES (:new_number, 'new number'), (:new_number, 'new number, again'),
                                (1010, 'repeat below the mark');
SELECT :new_number AS new_number;
SELECT tbl, ids_checked, duplicates, lower_bound FROM idgen.probe_run()
WHERE tbl = 'probe_sg_dup'::regclass;
SELECT tbl, ids_checked, duplicates, runs, duplicates_found, high_water
FROM idgen.probe_status WHERE tbl = 'probe_sg_dup'::regclass;

--
-- Snowflake and UUIDv7 columns: 100 IDs each, then
--   - a repeat of the latest ID (a recent repeat),
--   - a repeat of the earliest ID (a new ID that repeats an older one),
--   - an ID of 20 minutes ago, twice (an older ID repeated, inside the
--     1-hour window),
--   - an ID of 10 days (Snowflake) or 2 hours (UUIDv7) ago, twice: its value
--     is older than the window, so the probe does not read it at all.  What
--     the probe promises is that every ID whose value falls within the
--     window is checked against every other row with that value, wherever
--     and whenever that row was inserted; a generated ID carries the time it
--     was issued, so a new ID that repeats an old one has a value within the
--     window and is found.
--
CREATE TABLE probe_sf_dup (id bigint DEFAULT idgen.snowflake_next(), note text);
CREATE INDEX ON probe_sf_dup (id);
CREATE TABLE probe_uu_dup (id uuid DEFAULT idgen.uuidv7(), note text);
CREATE INDEX ON probe_uu_dup (id);
SELECT idgen.probe_register('probe_sf_dup', 'id');
SELECT idgen.probe_register('probe_uu_dup', 'id');
INSERT INTO probe_sf_dup (note) SELECT 'issued' FROM generate_series(1, 100);
INSERT INTO probe_uu_dup (note) SELECT 'issued' FROM generate_series(1, 100);
-- Clean so far.
SELECT tbl, ids_checked, duplicates FROM idgen.probe_run()
WHERE tbl IN ('probe_sf_dup'::regclass, 'probe_uu_dup'::regclass) ORDER BY tbl::text;

INSERT INTO probe_sf_dup
SELECT id, 'repeat of the latest' FROM probe_sf_dup ORDER BY id DESC LIMIT 1;
INSERT INTO probe_sf_dup
SELECT id, 'repeat of the earliest' FROM probe_sf_dup ORDER BY id LIMIT 1;
INSERT INTO probe_sf_dup
SELECT idgen.snowflake_min(now() - interval '20 minutes') + 4096 * 1 + 7, 'older, in the window'
FROM generate_series(1, 2);
INSERT INTO probe_sf_dup
SELECT idgen.snowflake_min(now() - interval '10 days') + 4096 * 1 + 7, 'older than the window'
FROM generate_series(1, 2);
SELECT (SELECT d.worker_id FROM idgen.snowflake_decode(id) d) AS worker_id, note, count(*)
FROM probe_sf_dup WHERE note <> 'issued' GROUP BY 1, 2 ORDER BY 2;

INSERT INTO probe_uu_dup
SELECT id, 'repeat of the latest' FROM probe_uu_dup ORDER BY id DESC LIMIT 1;
INSERT INTO probe_uu_dup
SELECT id, 'repeat of the earliest' FROM probe_uu_dup ORDER BY id LIMIT 1;
WITH u AS (SELECT idgen.uuidv7(now() - interval '20 minutes') AS id)
INSERT INTO probe_uu_dup SELECT u.id, 'older, in the window' FROM u, generate_series(1, 2);
WITH u AS (SELECT idgen.uuidv7(now() - interval '2 hours') AS id)
INSERT INTO probe_uu_dup SELECT u.id, 'older than the window' FROM u, generate_series(1, 2);
SELECT note, count(*), count(DISTINCT id) AS distinct_ids
FROM probe_uu_dup WHERE note <> 'issued' GROUP BY note ORDER BY note;

-- 3 duplicates each; ids_checked = the 100 issued IDs plus the one of 20
-- minutes ago.  (The segment probe sees its high-water duplicate again.)
SET client_min_messages = error;
SELECT tbl, kind, ids_checked, duplicates FROM idgen.probe_run() ORDER BY tbl::text;
RESET client_min_messages;
SELECT tbl, kind, ids_checked, duplicates, runs, duplicates_found
FROM idgen.probe_status ORDER BY tbl::text;

-- The same, with a window too short to reach the planted IDs of 20 minutes
-- ago: registering again changes the window and keeps the counts.
SELECT idgen.probe_register('probe_sf_dup', 'id', '10 minutes');
SET client_min_messages = error;
SELECT tbl, ids_checked, duplicates FROM idgen.probe_run()
WHERE tbl = 'probe_sf_dup'::regclass;
RESET client_min_messages;
SELECT tbl, "window", ids_checked, duplicates, runs, duplicates_found
FROM idgen.probe_status WHERE tbl = 'probe_sf_dup'::regclass;

--
-- idgen.stats: each probe's runs, duplicates found (summed over runs) and
-- IDs checked by its last run, labelled with table and column, in this
-- database.
--
SELECT metric, labels, value, scope
FROM idgen.stats
WHERE metric LIKE 'idgen_probe_%'
  AND labels @> '{"table": "probe_sf_dup", "column": "id"}'
ORDER BY metric;
SELECT metric, count(*) AS series, bool_and(scope = 'database') AS database_scope,
       bool_and(help <> '') AS has_help
FROM idgen.stats WHERE metric LIKE 'idgen_probe_%' GROUP BY metric ORDER BY metric;
SELECT value AS runs0 FROM idgen.stats
WHERE metric = 'idgen_probe_runs_total' AND labels @> '{"table": "probe_uu_dup", "column": "id"}' \gset
SELECT value AS dups0 FROM idgen.stats
WHERE metric = 'idgen_probe_duplicates_total' AND labels @> '{"table": "probe_uu_dup", "column": "id"}' \gset
-- One more duplicate in probe_uu_dup, then one run.
INSERT INTO probe_uu_dup SELECT id, 'another repeat' FROM probe_uu_dup WHERE note = 'issued' ORDER BY id LIMIT 1 OFFSET 50;
SET client_min_messages = error;
SELECT count(*) AS probes_run FROM idgen.probe_run();
RESET client_min_messages;
SELECT r.value - :runs0 AS runs_delta, d.value - :dups0 AS duplicates_delta,
       c.value AS ids_checked
FROM idgen.stats r, idgen.stats d, idgen.stats c
WHERE r.metric = 'idgen_probe_runs_total' AND r.labels @> '{"table": "probe_uu_dup", "column": "id"}'
  AND d.metric = 'idgen_probe_duplicates_total' AND d.labels @> '{"table": "probe_uu_dup", "column": "id"}'
  AND c.metric = 'idgen_probe_ids_checked' AND c.labels @> '{"table": "probe_uu_dup", "column": "id"}';

--
-- A table without a usable index: a WARNING that says what the probe can
-- still promise, and the probe works (reading the whole table).
--
CREATE TABLE probe_noidx (id bigint DEFAULT idgen.snowflake_next(), note text);
SELECT idgen.probe_register('probe_noidx', 'id');
INSERT INTO probe_noidx (note) SELECT 'issued' FROM generate_series(1, 50);
INSERT INTO probe_noidx SELECT id, 'repeat' FROM probe_noidx ORDER BY id DESC LIMIT 1;
SET client_min_messages = error;
SELECT tbl, ids_checked, duplicates FROM idgen.probe_run()
WHERE tbl = 'probe_noidx'::regclass;
RESET client_min_messages;
-- Only a B-tree index whose first column is the probed one, without a
-- predicate, is usable.
CREATE TABLE probe_idx_kinds (a bigint, b bigint, c bigint, d uuid, e bigint);
CREATE INDEX ON probe_idx_kinds (a, b);
CREATE INDEX ON probe_idx_kinds USING hash (c);
CREATE INDEX ON probe_idx_kinds (d) WHERE d IS NOT NULL;
CREATE INDEX ON probe_idx_kinds ((e + 0));
SELECT idgen.probe_register('probe_idx_kinds', 'a');
SELECT idgen.probe_register('probe_idx_kinds', 'b');
SELECT idgen.probe_register('probe_idx_kinds', 'c');
SELECT idgen.probe_register('probe_idx_kinds', 'd');
SELECT idgen.probe_register('probe_idx_kinds', 'e');
SELECT col, kind, indexed FROM idgen.probe_status
WHERE tbl = 'probe_idx_kinds'::regclass ORDER BY col;
-- An index created later counts once the probe is registered again.
CREATE INDEX ON probe_idx_kinds (c);
SELECT idgen.probe_register('probe_idx_kinds', 'c');
SELECT col, indexed FROM idgen.probe_status
WHERE tbl = 'probe_idx_kinds'::regclass AND col = 'c';
SELECT idgen.probe_unregister('probe_idx_kinds', c) FROM unnest('{a,b,c,d,e}'::name[]) c;

--
-- The cost of a run is bounded by the window, not the table: with 20000
-- IDs from 10 days ago and 5 new ones, an indexed probe reads through the
-- index (no sequential scan) and checks only the 5; the table without an
-- index is read sequentially (twice: once to count, and once more to list
-- the duplicate it holds).
--
CREATE TABLE probe_big (id bigint PRIMARY KEY DEFAULT idgen.snowflake_next());
INSERT INTO probe_big
SELECT idgen.snowflake_min(now() - interval '10 days') + g FROM generate_series(1, 20000) g;
INSERT INTO probe_big SELECT FROM generate_series(1, 5);
ANALYZE probe_big;
SELECT idgen.probe_register('probe_big', 'id');
SELECT pg_stat_force_next_flush();
SELECT relname, seq_scan AS seq0, idx_scan AS idx0
FROM pg_stat_user_tables WHERE relname = 'probe_big' \gset
SELECT seq_scan AS noidx_seq0 FROM pg_stat_user_tables WHERE relname = 'probe_noidx' \gset
SET client_min_messages = error;
SELECT tbl, ids_checked, duplicates FROM idgen.probe_run()
WHERE tbl IN ('probe_big'::regclass, 'probe_noidx'::regclass) ORDER BY tbl::text;
RESET client_min_messages;
SELECT pg_stat_force_next_flush();
SELECT b.seq_scan - :seq0 AS big_seq_scans, b.idx_scan > :idx0 AS big_read_by_index,
       n.seq_scan - :noidx_seq0 AS noidx_seq_scans
FROM pg_stat_user_tables b, pg_stat_user_tables n
WHERE b.relname = 'probe_big' AND n.relname = 'probe_noidx';

--
-- Quoted identifiers and other schemas.
--
CREATE SCHEMA "Probe Schema";
CREATE TABLE "Probe Schema"."Mixed Table" ("My Id" uuid DEFAULT idgen.uuidv7(), note text);
CREATE INDEX ON "Probe Schema"."Mixed Table" ("My Id");
SELECT idgen.probe_register('"Probe Schema"."Mixed Table"', 'My Id');
INSERT INTO "Probe Schema"."Mixed Table" (note) SELECT 'issued' FROM generate_series(1, 10);
INSERT INTO "Probe Schema"."Mixed Table" SELECT "My Id", 'repeat' FROM "Probe Schema"."Mixed Table" LIMIT 1;
SET client_min_messages = error;
SELECT tbl, col, kind, ids_checked, duplicates FROM idgen.probe_run()
WHERE col = 'My Id';
RESET client_min_messages;
SELECT metric, labels FROM idgen.stats
WHERE metric = 'idgen_probe_runs_total' AND labels->>'column' = 'My Id';
SELECT idgen.probe_unregister('"Probe Schema"."Mixed Table"', 'My Id');

--
-- Bad input.
--
CREATE TABLE probe_bad (t text, i integer, n numeric, u uuid, b bigint);
-- a column of another type
SELECT idgen.probe_register('probe_bad', 't');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.probe_register('probe_bad', 'i');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.probe_register('probe_bad', 'n');
\echo :LAST_ERROR_SQLSTATE
-- a missing column, a system column, a dropped column
SELECT idgen.probe_register('probe_bad', 'no_such_column');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.probe_register('probe_bad', 'ctid');
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE probe_bad DROP COLUMN b;
SELECT idgen.probe_register('probe_bad', 'b');
\echo :LAST_ERROR_SQLSTATE
-- a missing table
SELECT idgen.probe_register('probe_no_such_table', 'id');
\echo :LAST_ERROR_SQLSTATE
-- nulls
SELECT idgen.probe_register(NULL, 'u');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.probe_register('probe_bad', NULL);
\echo :LAST_ERROR_SQLSTATE
-- windows that are not positive
SELECT idgen.probe_register('probe_bad', 'u', '0');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.probe_register('probe_bad', 'u', '-1 hour');
\echo :LAST_ERROR_SQLSTATE
-- a NULL window: 22004, like every NULL argument
SELECT idgen.probe_register('probe_bad', 'u', NULL);
\echo :LAST_ERROR_SQLSTATE
-- windows are at most 10 years (every run computes now() - window)
SELECT idgen.probe_register('probe_bad', 'u', '10000 years');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.probe_register('probe_bad', 'u', '10 years 1 second');
\echo :LAST_ERROR_SQLSTATE
-- unregistering what is not registered
SELECT idgen.probe_unregister('probe_bad', 'u');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.probe_unregister('probe_no_such_table', 'id');
\echo :LAST_ERROR_SQLSTATE
-- None of these registered anything.
SELECT count(*) AS bad_probes FROM idgen.probe_status WHERE tbl = 'probe_bad'::regclass;
-- Ten years is the longest window, and it runs.  (The duplicates planted
-- above are reported again by each run below; their WARNINGs are silenced,
-- and a refused probe's reason is read from probe_status.error.)
SET client_min_messages = error;
SELECT idgen.probe_register('probe_bad', 'u', '10 years');
SELECT tbl, col, ids_checked, duplicates FROM idgen.probe_run() WHERE tbl = 'probe_bad'::regclass;
SELECT "window", runs, error FROM idgen.probe_status WHERE tbl = 'probe_bad'::regclass;
SELECT idgen.probe_unregister('probe_bad', 'u');
-- Nor can the table bypass the check: a window written into the table
-- directly is bounded by its CHECK constraint too.
\set VERBOSITY terse
INSERT INTO idgen.probes (tbl, col, "window", kind, indexed, owner)
VALUES ('probe_bad', 'u', '10000 years', 'uuidv7', false, current_user::regrole);
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE

--
-- Every run checks the table again, and a probe it refuses records why
-- (probe_status.error) and does not stop the others.
--
CREATE TABLE probe_changes (id bigint DEFAULT idgen.snowflake_next(), note text);
CREATE INDEX ON probe_changes (id);
INSERT INTO probe_changes (note) SELECT 'issued' FROM generate_series(1, 3);
SELECT idgen.probe_register('probe_changes', 'id');
SELECT tbl, ids_checked, duplicates FROM idgen.probe_run() WHERE tbl = 'probe_changes'::regclass;
SELECT runs, owner = current_user::regrole AS owner_recorded, error, error_at FROM idgen.probe_status
WHERE tbl = 'probe_changes'::regclass;
-- the column changes type
ALTER TABLE probe_changes ALTER COLUMN id TYPE numeric;
SELECT count(*) AS probes_run, count(*) FILTER (WHERE tbl = 'probe_changes'::regclass) AS this_one
FROM idgen.probe_run();
SELECT runs, error, error_at IS NOT NULL AS has_error_at FROM idgen.probe_status
WHERE tbl = 'probe_changes'::regclass;
-- back to bigint: the next run succeeds and clears the error
ALTER TABLE probe_changes ALTER COLUMN id TYPE bigint;
SELECT tbl, ids_checked FROM idgen.probe_run() WHERE tbl = 'probe_changes'::regclass;
SELECT runs, error, error_at FROM idgen.probe_status WHERE tbl = 'probe_changes'::regclass;
-- the table changes owner
CREATE ROLE regress_probe_owner;
ALTER TABLE probe_changes OWNER TO regress_probe_owner;
SELECT count(*) FROM idgen.probe_run() WHERE tbl = 'probe_changes'::regclass;
SELECT runs, error FROM idgen.probe_status WHERE tbl = 'probe_changes'::regclass;
-- registered again (here by a superuser, which may register any table):
-- it runs, as the new owner
SELECT idgen.probe_register('probe_changes', 'id');
SELECT tbl, ids_checked FROM idgen.probe_run() WHERE tbl = 'probe_changes'::regclass;
SELECT runs, owner, error FROM idgen.probe_status WHERE tbl = 'probe_changes'::regclass;
-- a row naming a view, written into the table directly (as a role given
-- DML on idgen.probes could under 1.0): the run refuses it
CREATE VIEW probe_view AS SELECT '(0,1)'::tid AS ctid, 1::bigint AS id;
INSERT INTO idgen.probes (tbl, col, "window", kind, indexed, owner)
VALUES ('probe_view', 'id', '1 hour', 'snowflake', false, current_user::regrole);
SELECT count(*) FROM idgen.probe_run() WHERE tbl = 'probe_view'::regclass;
SELECT runs, error FROM idgen.probe_status WHERE tbl = 'probe_view'::regclass;
DELETE FROM idgen.probes WHERE tbl = 'probe_view'::regclass;
SELECT idgen.probe_unregister('probe_changes', 'id');
DROP TABLE probe_changes;
DROP VIEW probe_view;
DROP ROLE regress_probe_owner;

--
RESET client_min_messages;
-- _probe_scan() is internal and refuses a caller who may not read the
-- column (it is not granted to PUBLIC either).
--
CREATE TABLE probe_secret (id bigint);
CREATE ROLE regress_probe_nobody;
GRANT EXECUTE ON FUNCTION idgen._probe_scan(regclass, name, text, regrole, text, int8range[])
    TO regress_probe_nobody;
SELECT relowner::regrole AS secret_owner FROM pg_class WHERE oid = 'probe_secret'::regclass \gset
SET ROLE regress_probe_nobody;
SELECT * FROM idgen._probe_scan('probe_secret', 'id', 'snowflake', :'secret_owner', '0', NULL);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE ALL ON FUNCTION idgen._probe_scan(regclass, name, text, regrole, text, int8range[])
    FROM regress_probe_nobody;
DROP ROLE regress_probe_nobody;
DROP TABLE probe_secret;

--
-- Parallel labels: _probe_lower_bound() has an exception block (a
-- subtransaction), which parallel mode forbids, so it is PARALLEL UNSAFE
-- and a query calling it is never run in parallel mode.
--
CREATE TABLE probe_par (id bigint DEFAULT idgen.snowflake_next());
SELECT idgen.probe_register('probe_par', 'id');
-- PostgreSQL 16 renamed force_parallel_mode to debug_parallel_query.
SELECT CASE WHEN current_setting('server_version_num')::int < 160000
            THEN 'force_parallel_mode' ELSE 'debug_parallel_query' END AS debug_parallel \gset
SET :debug_parallel = on;
SELECT count(idgen._probe_lower_bound(p)) FROM idgen.probes p WHERE p.tbl = 'probe_par'::regclass;
RESET :debug_parallel;
SELECT idgen.probe_unregister('probe_par', 'id');
DROP TABLE probe_par;

--
-- probe_unregister() removes the probe, its status and its stats rows.
--
SELECT idgen.probe_unregister('probe_noidx', 'id');
SELECT count(*) AS status_rows FROM idgen.probe_status WHERE tbl = 'probe_noidx'::regclass;
SELECT count(*) AS stats_rows FROM idgen.stats WHERE labels @> '{"table": "probe_noidx"}';
SELECT idgen.probe_unregister('probe_noidx', 'id');
\echo :LAST_ERROR_SQLSTATE
-- Registering again starts from zero.
SELECT idgen.probe_register('probe_noidx', 'id', '1 day');
SELECT tbl, "window", indexed, last_run_at, ids_checked, runs, duplicates_found
FROM idgen.probe_status WHERE tbl = 'probe_noidx'::regclass;
SELECT idgen.probe_unregister('probe_noidx', 'id');

--
-- audit_segments(): granted ranges of one tag that overlap, from the
-- outbox.  The worker's grants of probe_x are adjacent, never overlapping;
-- a grant planted inside the first one is caught (once: it overlaps that
-- grant only).  Events of other kinds, and of other tags, are not grants of
-- this tag.
--
SELECT count(*) > 1 AS several_grants,
       bool_and(range_end > range_start) AS ranges_not_empty
FROM idgen.segment_events WHERE tag = 'probe_x' AND kind = 'grant';
SELECT count(*) AS overlaps FROM idgen.audit_segments() WHERE tag IN ('probe_x', 'probe_y');
SELECT event_id AS first_grant, range_start AS g_start, range_end AS g_end
FROM idgen.segment_events WHERE tag = 'probe_x' AND kind = 'grant'
ORDER BY event_id LIMIT 1 \gset
INSERT INTO idgen.segment_events (tag, kind, range_start, range_end, node, timeline)
VALUES ('probe_x', 'burn', :g_start, :g_end, 'planted', 1),
       ('probe_x_other', 'grant', :g_start, :g_end, 'planted', 1);
SELECT count(*) AS overlaps FROM idgen.audit_segments() WHERE tag LIKE 'probe_x%';
INSERT INTO idgen.segment_events (tag, kind, range_start, range_end, node, timeline)
VALUES ('probe_x', 'grant', :g_start + 2, :g_end - 2, 'planted', 1)
RETURNING event_id AS planted \gset
SELECT tag, event_a = :first_grant AS event_a_is_first_grant, range_a,
       node_a <> 'planted' AS node_a_is_worker, event_b = :planted AS event_b_is_planted,
       range_b, node_b
FROM idgen.audit_segments() WHERE tag LIKE 'probe_x%';
DELETE FROM idgen.segment_events WHERE node = 'planted';
SELECT count(*) AS overlaps FROM idgen.audit_segments() WHERE tag LIKE 'probe_x%';

--
-- audit_leases(): holdings of one worker id by different holders that
-- overlap in time, from the lease records.  This server has a static
-- worker id and no lease, so the records below are all planted (worker ids
-- 900 to 903).  A holding lasts from acquired_at to released_at, or to
-- expires_at if it was never released.
--
SELECT count(*) AS lease_records FROM idgen.lease_history WHERE worker_id >= 900;
INSERT INTO idgen.lease_history (worker_id, generation, holder, acquired_at, renewed_at, expires_at, released_at)
VALUES
  -- 900: the second holder took the id while the first still held it
  (900, 1, 'node-a', '2025-01-01 00:00:00+00', '2025-01-01 00:00:20+00', '2025-01-01 00:00:50+00', NULL),
  (900, 2, 'node-b', '2025-01-01 00:00:30+00', '2025-01-01 00:00:30+00', '2025-01-01 00:01:00+00', NULL),
  -- 901: released before the next holding: clean
  (901, 1, 'node-a', '2025-01-01 00:00:00+00', '2025-01-01 00:00:10+00', '2025-01-01 00:00:40+00', '2025-01-01 00:00:15+00'),
  (901, 2, 'node-b', '2025-01-01 00:00:20+00', '2025-01-01 00:00:20+00', '2025-01-01 00:00:50+00', NULL),
  -- 902: expired (never released) before the next holding: clean
  (902, 1, 'node-a', '2025-01-01 00:00:00+00', '2025-01-01 00:00:00+00', '2025-01-01 00:00:30+00', NULL),
  (902, 2, 'node-b', '2025-01-01 00:00:33+00', '2025-01-01 00:00:33+00', '2025-01-01 00:01:03+00', NULL),
  -- 903: back to back (the next holding starts the moment the first ends): clean
  (903, 1, 'node-a', '2025-01-01 00:00:00+00', '2025-01-01 00:00:00+00', '2025-01-01 00:00:30+00', '2025-01-01 00:00:10+00'),
  (903, 2, 'node-b', '2025-01-01 00:00:10+00', '2025-01-01 00:00:10+00', '2025-01-01 00:00:40+00', NULL);
SELECT * FROM idgen.audit_leases() WHERE worker_id >= 900;
-- A third holding of 901 overlapping the second (renewed past its start).
INSERT INTO idgen.lease_history (worker_id, generation, holder, acquired_at, renewed_at, expires_at, released_at)
VALUES (901, 3, 'node-c', '2025-01-01 00:00:45+00', '2025-01-01 00:00:45+00', '2025-01-01 00:01:15+00', NULL);
SELECT * FROM idgen.audit_leases() WHERE worker_id >= 900;
DELETE FROM idgen.lease_history WHERE worker_id >= 900;

--
-- Privileges: probes and audits are for the DBA; everyone may read the
-- status and the stats.
--
CREATE ROLE regress_probe_user;
SELECT p.oid::regprocedure AS function,
       has_function_privilege('regress_probe_user', p.oid, 'EXECUTE') AS can_execute
FROM pg_proc p
WHERE p.pronamespace = 'idgen'::regnamespace
  AND p.proname IN ('probe_register', 'probe_unregister', 'probe_run', '_probe_lower_bound',
                    'audit_leases', 'audit_segments')
ORDER BY p.oid::regprocedure::text;
SELECT c.relname, has_table_privilege('regress_probe_user', c.oid, 'SELECT') AS can_select,
       has_table_privilege('regress_probe_user', c.oid, 'INSERT') AS can_insert
FROM pg_class c
WHERE c.relnamespace = 'idgen'::regnamespace AND c.relname IN ('probes', 'probe_status', 'stats')
ORDER BY c.relname;
GRANT SELECT ON probe_sf TO regress_probe_user;
SET ROLE regress_probe_user;
SELECT idgen.probe_register('probe_sf', 'id');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM idgen.probe_run();
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM idgen.audit_leases();
\echo :LAST_ERROR_SQLSTATE
UPDATE idgen.probes SET duplicates_found = 0;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) > 0 AS sees_status FROM idgen.probe_status;
SELECT count(*) > 0 AS sees_probe_stats FROM idgen.stats WHERE metric LIKE 'idgen_probe_%';
RESET ROLE;
REVOKE SELECT ON probe_sf FROM regress_probe_user;

-- Only plain tables, and only by their owners: the scheduled run reads them
-- as a superuser, so no view code may run there.
CREATE VIEW probe_view AS SELECT id FROM probe_sf;
SELECT idgen.probe_register('probe_view', 'id');
\echo :LAST_ERROR_SQLSTATE
GRANT EXECUTE ON FUNCTION idgen.probe_register(regclass, name, interval) TO regress_probe_user;
GRANT SELECT, INSERT, UPDATE ON idgen.probes TO regress_probe_user;
SET ROLE regress_probe_user;
SELECT idgen.probe_register('probe_sf', 'id');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE ALL ON idgen.probes FROM regress_probe_user;
REVOKE EXECUTE ON FUNCTION idgen.probe_register(regclass, name, interval) FROM regress_probe_user;
DROP VIEW probe_view;
DROP ROLE regress_probe_user;

--
-- Clean up: unregister every probe (a probe must be unregistered before its
-- table is dropped), drop the tables and tags, turn the schedule back on.
--
SELECT idgen.probe_unregister(tbl, col) FROM idgen.probe_status ORDER BY tbl::text, col;
SELECT count(*) AS probes_left FROM idgen.probe_status;
SELECT count(*) AS probe_stats_left FROM idgen.stats WHERE metric LIKE 'idgen_probe_%';
DROP TABLE probe_sf, probe_uu, probe_sg, probe_sg_dup, probe_sf_dup, probe_uu_dup,
    probe_noidx, probe_idx_kinds, probe_big, probe_bad;
DROP SCHEMA "Probe Schema" CASCADE;
SELECT idgen.segment_drop('probe_x');
SELECT idgen.segment_drop('probe_y');
ALTER SYSTEM RESET idgen.probe_interval;
SELECT pg_reload_conf();
