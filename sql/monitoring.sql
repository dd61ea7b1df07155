SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idgen;
RESET client_min_messages;
--
-- idgen.stats and idgen.status, and what an unprivileged role may do.
--
-- Counter values depend on what ran before on this server, so only
-- differences between two readings are printed.  Nothing else issues IDs on
-- the test server while this file runs.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

--
-- Shape of the views.
--
SELECT table_name, ordinal_position, column_name, data_type
FROM information_schema.columns
WHERE table_schema = 'idgen' AND table_name IN ('stats', 'status')
ORDER BY table_name, ordinal_position;

-- One row per metric and label set, in a fixed order, all server-wide.
SELECT n, metric, labels, scope
FROM idgen.stats() WITH ORDINALITY AS s(metric, labels, value, scope, help, n)
ORDER BY n;
SELECT count(*) AS n_rows,
       count(DISTINCT (metric, labels)) AS n_distinct_series,
       bool_and(scope = 'server') AS all_server_scope,
       bool_and(value >= 0) AS values_non_negative,
       bool_and(help <> '' AND help IS NOT NULL) AS all_have_help,
       bool_and(metric ~ '^idgen_[a-z_]+_total$') AS prometheus_counter_names,
       bool_and(jsonb_typeof(labels) = 'object') AS labels_are_objects
FROM idgen.stats;
-- The view and the function agree.
SELECT (SELECT count(*) FROM idgen.stats) = (SELECT count(*) FROM idgen.stats()) AS view_matches_function;

--
-- idgen_ids_issued_total{generator="uuidv7"} counts every uuidv7() call
-- exactly once.
--
SELECT value AS u0 FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}' \gset
SELECT count(idgen.uuidv7()) AS generated FROM generate_series(1, 1234);
SELECT value - :u0 AS uuidv7_delta FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}';

-- Few IDs (below any batching threshold), in a separate transaction.
SELECT value AS u1 FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}' \gset
SELECT idgen.uuidv7() IS NOT NULL AS generated;
SELECT value - :u1 AS uuidv7_delta FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}';

-- IDs of a rolled-back transaction were issued all the same.
SELECT value AS u2 FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}' \gset
BEGIN;
SELECT count(idgen.uuidv7()) AS generated FROM generate_series(1, 7);
ROLLBACK;
SELECT value - :u2 AS uuidv7_delta FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}';

-- Read inside the generating transaction and again after its commit:
-- counted once, not twice.
SELECT value AS u3 FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}' \gset
BEGIN;
SELECT count(idgen.uuidv7()) AS generated FROM generate_series(1, 3);
SELECT value - :u3 AS uuidv7_delta_in_xact FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}';
COMMIT;
SELECT value - :u3 AS uuidv7_delta_after_commit FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}';

-- uuidv7(ts) makes UUIDs for given times (backfills, range bounds); it
-- does not issue IDs and is not counted.
SELECT value AS u4 FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}' \gset
SELECT count(idgen.uuidv7('2024-01-01 00:00:00+00')) AS made FROM generate_series(1, 10);
SELECT value - :u4 AS uuidv7_delta FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}';

--
-- idgen_ids_issued_total{generator="snowflake"}
--
SELECT value AS s0 FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "snowflake"}' \gset
SELECT value AS u5 FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}' \gset
SELECT count(idgen.snowflake_next()) AS generated FROM generate_series(1, 600);
SELECT value - :s0 AS snowflake_delta FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "snowflake"}';
-- IDs issued in a parallel worker are counted too (its transaction end
-- shares them).
-- PostgreSQL 16 renamed force_parallel_mode to debug_parallel_query.
SELECT CASE WHEN current_setting('server_version_num')::int < 160000
            THEN 'force_parallel_mode' ELSE 'debug_parallel_query' END AS debug_parallel \gset
SET :debug_parallel = on;
SELECT idgen.snowflake_next() > 0 AS snowflake, idgen.uuidv7() IS NOT NULL AS uuidv7;
RESET :debug_parallel;
SELECT value - :s0 AS snowflake_delta FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "snowflake"}';
SELECT value - :u5 AS uuidv7_delta FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}';
-- Issuing Snowflake IDs needed the durable time floor at least once.
SELECT value > 0 AS floor_written FROM idgen.stats
WHERE metric = 'idgen_time_floor_writes_total';
-- No UUIDv7 or Snowflake refusals or clock step backs on a healthy test
-- server.
SELECT metric, labels, value FROM idgen.stats
WHERE metric IN ('idgen_refusals_total', 'idgen_clock_step_back_total')
  AND labels->>'generator' IN ('uuidv7', 'snowflake') AND value <> 0;

--
-- Counts made in another backend are shared once its transaction ends.
--
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('idgen_other',
                      format('dbname=%s port=%s host=%s', current_database(),
                             current_setting('port'),
                             split_part(current_setting('unix_socket_directories'), ',', 1)))
       AS connected;
SELECT value AS u6 FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}' \gset
SELECT value AS s6 FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "snowflake"}' \gset
SELECT dblink_exec('idgen_other', 'BEGIN');
SELECT * FROM dblink('idgen_other',
                     'SELECT count(idgen.uuidv7()), count(idgen.snowflake_next()) FROM generate_series(1, 100)')
    AS t(uuidv7s bigint, snowflakes bigint);
SELECT dblink_exec('idgen_other', 'COMMIT');
SELECT dblink_exec('idgen_other', 'BEGIN');
SELECT * FROM dblink('idgen_other',
                     'SELECT count(idgen.uuidv7()) FROM generate_series(1, 20)')
    AS t(uuidv7s bigint);
SELECT dblink_exec('idgen_other', 'ROLLBACK');
SELECT u.value - :u6 AS uuidv7_delta, s.value - :s6 AS snowflake_delta
FROM idgen.stats u, idgen.stats s
WHERE u.metric = 'idgen_ids_issued_total' AND u.labels = '{"generator": "uuidv7"}'
  AND s.metric = 'idgen_ids_issued_total' AND s.labels = '{"generator": "snowflake"}';
-- The other backend sees the same server-wide counters.
SELECT remote.value = local.value AS same_counters_in_both_backends
FROM dblink('idgen_other',
            $$SELECT value FROM idgen.stats
              WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}'$$)
         AS remote(value bigint),
     idgen.stats AS local
WHERE local.metric = 'idgen_ids_issued_total' AND local.labels = '{"generator": "uuidv7"}';
SELECT dblink_disconnect('idgen_other');
DROP EXTENSION dblink;

--
-- idgen.status
--
SELECT clock_timestamp() AS t_before \gset
SELECT idgen.snowflake_next() AS last_id \gset
SELECT worker_id,
       lease_state,
       lease_expires_at IS NULL AS no_lease_expiry,
       lease_generation IS NULL AS no_lease_generation,
       lease_deadline_ms IS NULL AS no_lease_deadline,
       lease_error IS NULL AS no_lease_error,
       workers_in_use,
       snowflake_problem IS NULL AS no_problem,
       require_clock_sync,
       last_issued_at = (SELECT d.ts FROM idgen.snowflake_decode(:last_id) AS d)
           AS last_issued_is_last_id,
       last_issued_at BETWEEN date_trunc('milliseconds', :'t_before'::timestamptz)
                          AND clock_timestamp() AS last_issued_recent,
       time_floor >= last_issued_at AS floor_covers_last_issued,
       time_floor <= last_issued_at + interval '500 ms' AS floor_within_reserve,
       clock_state IN ('ok', 'insert leap second', 'delete leap second',
                       'leap second in progress', 'leap second has occurred',
                       'unsynchronised', 'unknown') AS clock_state_known,
       clock_synchronised IS NOT NULL AS has_clock_synchronised,
       leap_second_pending IS NOT NULL AS has_leap_second_pending,
       clock_est_error_us >= 0 AS est_error_non_negative,
       clock_max_error_us >= 0 AS max_error_non_negative
FROM idgen.status;
SELECT count(*) AS n_rows FROM idgen.status;
-- The time floor only ever rises.
SELECT time_floor AS floor1 FROM idgen.status \gset
SELECT count(idgen.snowflake_next()) AS generated FROM generate_series(1, 100);
SELECT time_floor >= :'floor1'::timestamptz AS floor_not_lowered FROM idgen.status;

--
-- An unprivileged role can generate IDs and read the views, and cannot
-- change the extension's schema.  (Privileges on other features' objects
-- are checked by their own tests.)
--
CREATE ROLE regress_idgen_user;
SELECT p.oid::regprocedure AS function,
       has_function_privilege('regress_idgen_user', p.oid, 'EXECUTE') AS can_execute
FROM pg_proc p
WHERE p.pronamespace = 'idgen'::regnamespace
  AND p.proname IN ('uuidv7', 'uuidv7_time', 'snowflake_next', 'snowflake_decode',
                    'snowflake_min', 'bit_budget', 'stats', 'status')
ORDER BY p.oid::regprocedure::text;
SELECT c.relname,
       has_table_privilege('regress_idgen_user', c.oid, 'SELECT') AS can_select,
       has_table_privilege('regress_idgen_user', c.oid, 'INSERT') AS can_insert
FROM pg_class c
WHERE c.relnamespace = 'idgen'::regnamespace AND c.relname IN ('stats', 'status')
ORDER BY c.relname;
SELECT value AS u7 FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}' \gset
SET ROLE regress_idgen_user;
SELECT current_user;
SELECT idgen.uuidv7() IS NOT NULL AS uuidv7,
       idgen.uuidv7_time(idgen.uuidv7('2024-01-01 00:00:00.5+00')) AS uuidv7_at_round_trip,
       idgen.snowflake_next() > 0 AS snowflake_next,
       (SELECT d.worker_id FROM idgen.snowflake_decode(idgen.snowflake_next()) AS d)
           AS decoded_worker,
       idgen.snowflake_min('2024-01-01 00:00:01+00') AS snowflake_min,
       (idgen.bit_budget()).worker_bits AS worker_bits;
SELECT count(*) > 0 AS has_stats_rows, bool_and(scope = 'server') AS server_scope FROM idgen.stats;
SELECT value - :u7 AS uuidv7_delta FROM idgen.stats
WHERE metric = 'idgen_ids_issued_total' AND labels = '{"generator": "uuidv7"}';
SELECT worker_id, lease_state, time_floor >= last_issued_at AS floor_ok FROM idgen.status;
CREATE TABLE idgen.not_allowed (i int);
CREATE FUNCTION idgen.uuidv7(i int) RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid';
RESET ROLE;
SELECT current_user = session_user AS role_reset;
DROP OWNED BY regress_idgen_user;
DROP ROLE regress_idgen_user;
