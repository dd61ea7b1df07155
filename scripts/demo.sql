-- What scripts/demo shows.  Runs against a fresh preloaded server whose
-- worker id is leased from itself (idgen.worker_id = -1, no coordinator).
\pset footer off
\set ON_ERROR_STOP 1
CREATE EXTENSION idgen;

\echo
\echo '== UUIDv7: strictly increasing; the embedded time matches the clock'
SELECT u AS uuidv7, idgen.uuidv7_time(u) AS embedded_time, clock_timestamp() AS clock
FROM (SELECT idgen.uuidv7() AS u FROM generate_series(1, 5)) s;

\echo '== UUIDv7 for a given time (backfills, range bounds)'
SELECT idgen.uuidv7('2025-01-01 12:00:00.123456+00') AS u,
       idgen.uuidv7_time(idgen.uuidv7('2025-01-01 12:00:00.123456+00')) AS decoded;

\echo '== Waiting for the lease worker to lease a worker id ...'
DO $$
BEGIN
    FOR i IN 1 .. 300 LOOP
        EXIT WHEN (SELECT lease_state FROM idgen.status) = 'held';
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT worker_id, lease_state, lease_expires_at FROM idgen.status;

\echo '== Snowflake IDs and what they decode to'
SELECT id, d.ts, d.worker_id, d.sequence
FROM (SELECT idgen.snowflake_next() AS id FROM generate_series(1, 5)) s,
     LATERAL idgen.snowflake_decode(id) d;

\echo '== Range scan bound: the smallest ID of one minute ago'
SELECT idgen.snowflake_min(now() - interval '1 minute') AS min_id_one_minute_ago;

\echo '== The bit budget in force'
\x on
SELECT * FROM idgen.bit_budget();
\x off

\echo '== Segments: dense increasing numbers per tag (invoice numbers)'
SELECT idgen.segment_create('invoice', start => 1000, step => 100);
SELECT idgen.segment_next('invoice') AS invoice_no FROM generate_series(1, 5);
SELECT tag, step, ranges_buffered, current_start, current_end, last_grant_at FROM idgen.segments;
SELECT event_id, tag, kind, range_start, range_end, timeline FROM idgen.segment_events ORDER BY event_id;

\echo '== Uniqueness probe on a table keyed by Snowflake IDs'
CREATE TABLE orders (id bigint PRIMARY KEY DEFAULT idgen.snowflake_next(), note text);
INSERT INTO orders (note) SELECT 'order ' || g FROM generate_series(1, 1000) g;
SELECT idgen.probe_register('orders', 'id', '1 hour');
SELECT tbl, col, ids_checked, duplicates, kind FROM idgen.probe_run();

\echo '== Status: worker id, lease, time floor, clock discipline'
\x on
SELECT * FROM idgen.status;
\x off

\echo '== Counters (idgen.stats)'
SELECT metric, labels, value FROM idgen.stats WHERE value > 0 ORDER BY metric, labels::text;
