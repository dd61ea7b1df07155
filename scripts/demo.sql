-- What scripts/demo shows.  Runs against a fresh preloaded server.
\pset footer off
CREATE EXTENSION idgen;

\echo
\echo '== UUIDv7: strictly increasing; the embedded time matches the clock'
SELECT u AS uuidv7, idgen.uuidv7_time(u) AS embedded_time, clock_timestamp() AS clock
FROM (SELECT idgen.uuidv7() AS u FROM generate_series(1, 5)) s;

\echo '== UUIDv7 for a given time (backfills, range bounds)'
SELECT idgen.uuidv7('2025-01-01 12:00:00.123456+00') AS u,
       idgen.uuidv7_time(idgen.uuidv7('2025-01-01 12:00:00.123456+00')) AS decoded;

\echo '== Snowflake IDs (worker 7) and what they decode to'
SELECT id, d.ts, d.worker_id, d.sequence
FROM (SELECT idgen.snowflake_next() AS id FROM generate_series(1, 5)) s,
     LATERAL idgen.snowflake_decode(id) d;

\echo '== Range scan bound: the smallest ID of one minute ago'
SELECT idgen.snowflake_min(now() - interval '1 minute') AS min_id_one_minute_ago;

\echo '== The bit budget in force'
\x on
SELECT * FROM idgen.bit_budget();

\echo '== Status: worker id, time floor, clock discipline'
SELECT * FROM idgen.status;
\x off

\echo '== Counters (idgen.stats)'
SELECT metric, labels, value FROM idgen.stats WHERE value > 0;
