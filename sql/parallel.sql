SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idgen;
RESET client_min_messages;
--
-- Parallel labels, tried in parallel mode.  Every function labelled
-- PARALLEL SAFE is called under force_parallel_mode = on (a Gather on top
-- of the query: the function runs in a parallel worker, or in the leader in
-- parallel mode when no worker is free) and = regress; each must work
-- there.  Functions that cannot (an exception block is a subtransaction,
-- which parallel mode forbids; writes; GUC changes; backend-local state)
-- are labelled RESTRICTED or UNSAFE, and a query calling them is planned
-- without parallelism: one of each is called too.  test/pgtap/parallel.sql
-- pins every function's label.
--
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- The functions labelled PARALLEL SAFE: exactly the ones tried below.
SELECT p.oid::regprocedure AS parallel_safe
FROM pg_proc p
WHERE p.pronamespace = 'idgen'::regnamespace AND p.proparallel = 's'
ORDER BY p.oid::regprocedure::text COLLATE "C";

CREATE TABLE par_ids (n int);
INSERT INTO par_ids SELECT generate_series(1, 10);
ANALYZE par_ids;
SELECT idgen.segment_create('par_tag', 1, 10);

-- PostgreSQL 16 renamed force_parallel_mode to debug_parallel_query.
SELECT CASE WHEN current_setting('server_version_num')::int < 160000
            THEN 'force_parallel_mode' ELSE 'debug_parallel_query' END AS debug_parallel \gset
SET :debug_parallel = on;
-- A Gather is put on top of a query that calls only parallel-safe
-- functions.
EXPLAIN (COSTS OFF)
SELECT count(DISTINCT idgen.uuidv7()) AS uuidv7,
       count(DISTINCT idgen.uuidv7('2024-01-01 00:00:00+00')) AS uuidv7_at,
       count(DISTINCT idgen.uuidv7_min('2024-01-01 00:00:00+00')) AS uuidv7_min,
       count(DISTINCT idgen.uuidv7_time(idgen.uuidv7('2024-01-01 00:00:00+00'))) AS uuidv7_time,
       count(DISTINCT idgen.snowflake_next()) AS snowflake_next,
       count(DISTINCT idgen.snowflake_min('2024-01-01 00:00:01+00')) AS snowflake_min,
       count(DISTINCT (idgen.bit_budget()).worker_bits) AS bit_budget,
       count(DISTINCT idgen._current_timeline()) AS timeline,
       count(DISTINCT idgen._segment_exists('par_tag')) AS segment_exists
FROM par_ids;
EXPLAIN (COSTS OFF)
SELECT count(d.ts) FROM par_ids,
     LATERAL idgen.snowflake_decode(idgen.snowflake_min('2024-01-01 00:00:01+00') + par_ids.n) d;

SELECT count(DISTINCT idgen.uuidv7()) AS uuidv7,
       count(DISTINCT idgen.uuidv7('2024-01-01 00:00:00+00')) AS uuidv7_at,
       count(DISTINCT idgen.uuidv7_min('2024-01-01 00:00:00+00')) AS uuidv7_min,
       count(DISTINCT idgen.uuidv7_time(idgen.uuidv7('2024-01-01 00:00:00+00'))) AS uuidv7_time,
       count(DISTINCT idgen.snowflake_next()) AS snowflake_next,
       count(DISTINCT idgen.snowflake_min('2024-01-01 00:00:01+00')) AS snowflake_min,
       count(DISTINCT (idgen.bit_budget()).worker_bits) AS bit_budget,
       count(DISTINCT idgen._current_timeline()) AS timeline,
       count(DISTINCT idgen._segment_exists('par_tag')) AS segment_exists
FROM par_ids;
SELECT count(*) AS lease_overlaps FROM idgen.audit_leases() WHERE worker_id < 0;
SELECT count(*) AS segment_overlaps FROM idgen.audit_segments() WHERE tag = 'par_tag';
SELECT count(DISTINCT d.ts) AS decoded, min(d.worker_id) AS worker_id
FROM par_ids, LATERAL idgen.snowflake_decode(idgen.snowflake_min('2024-01-01 00:00:01+00') + par_ids.n) d;

-- The text forms, in parallel workers too.
EXPLAIN (COSTS OFF)
SELECT count(DISTINCT idgen.typeid('par')) AS typeid,
       count(DISTINCT (idgen.typeid_decode(idgen.typeid_encode('par', idgen.uuidv7_min('2024-01-01 00:00:00+00'))))) AS typeid_roundtrip,
       count(DISTINCT idgen.ulid_decode(idgen.ulid_encode(idgen.uuidv7_min('2024-01-01 00:00:00+00')))) AS ulid_roundtrip
FROM par_ids;
SELECT count(DISTINCT idgen.typeid('par')) AS typeid,
       count(DISTINCT (idgen.typeid_decode(idgen.typeid_encode('par', idgen.uuidv7_min('2024-01-01 00:00:00+00'))))) AS typeid_roundtrip,
       count(DISTINCT idgen.ulid_decode(idgen.ulid_encode(idgen.uuidv7_min('2024-01-01 00:00:00+00')))) AS ulid_roundtrip
FROM par_ids;

SET :debug_parallel = regress;
SELECT count(DISTINCT idgen.uuidv7()) AS uuidv7,
       count(DISTINCT idgen.uuidv7('2024-01-01 00:00:00+00')) AS uuidv7_at,
       count(DISTINCT idgen.uuidv7_min('2024-01-01 00:00:00+00')) AS uuidv7_min,
       count(DISTINCT idgen.uuidv7_time(idgen.uuidv7('2024-01-01 00:00:00+00'))) AS uuidv7_time,
       count(DISTINCT idgen.snowflake_next()) AS snowflake_next,
       count(DISTINCT idgen.snowflake_min('2024-01-01 00:00:01+00')) AS snowflake_min,
       count(DISTINCT (idgen.bit_budget()).worker_bits) AS bit_budget,
       count(DISTINCT idgen._current_timeline()) AS timeline,
       count(DISTINCT idgen._segment_exists('par_tag')) AS segment_exists
FROM par_ids;
SELECT count(*) AS lease_overlaps FROM idgen.audit_leases() WHERE worker_id < 0;
SELECT count(*) AS segment_overlaps FROM idgen.audit_segments() WHERE tag = 'par_tag';
SELECT count(DISTINCT d.ts) AS decoded, min(d.worker_id) AS worker_id
FROM par_ids, LATERAL idgen.snowflake_decode(idgen.snowflake_min('2024-01-01 00:00:01+00') + par_ids.n) d;

-- Not parallel safe: no Gather, and they work.
SET :debug_parallel = on;
EXPLAIN (COSTS OFF)
SELECT count(idgen.segment_next('par_tag')) FROM par_ids;
SELECT count(DISTINCT idgen.segment_next('par_tag')) AS segment_next FROM par_ids;
SELECT count(*) > 0 AS has_stats FROM idgen.stats();
SELECT count(*) AS status_rows FROM idgen.status();
SELECT count(*) >= 0 AS buffers FROM idgen.segment_buffers();
CREATE TABLE par_probe (id bigint DEFAULT idgen.snowflake_next());
SELECT idgen.probe_register('par_probe', 'id');
EXPLAIN (COSTS OFF)
SELECT idgen._probe_lower_bound(p) FROM idgen.probes p;
SELECT count(idgen._probe_lower_bound(p)) AS lower_bounds FROM idgen.probes p
WHERE p.tbl = 'par_probe'::regclass;
SELECT count(*) AS probes_run FROM idgen.probe_run() WHERE tbl = 'par_probe'::regclass;
RESET :debug_parallel;

SELECT idgen.probe_unregister('par_probe', 'id');
DROP TABLE par_probe, par_ids;
SELECT idgen.segment_drop('par_tag');
