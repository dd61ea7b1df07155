SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idgen;
RESET client_min_messages;
--
-- idgen.snowflake_next(), snowflake_decode(), snowflake_min(), bit_budget()
--
-- The server runs with test/preload.conf: idgen preloaded, worker id 1, the
-- default layout 41/10/12 with epoch 2024-01-01 and 1 ms ticks.  Only this
-- session issues Snowflake IDs on it while this file runs.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';

CREATE FUNCTION pg_temp.sqlstate_of(query text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

--
-- Settings
--
SHOW idgen.worker_id;
SHOW idgen.epoch;
SHOW idgen.timestamp_bits;
SHOW idgen.worker_bits;
SHOW idgen.sequence_bits;
SHOW idgen.tick;
SHOW idgen.max_clock_wait;
SHOW idgen.time_floor_reserve;
SHOW idgen.require_clock_sync;
SHOW idgen.timestamp_warn_years;
-- The layout and worker id are fixed at server start; clock handling changes
-- on reload only; the prefix is reserved.
SET idgen.worker_id = 2;
SET idgen.epoch = '2025-01-01';
SET idgen.max_clock_wait = 5;
SET idgen.no_such_setting = 1;

--
-- snowflake_next(): 10,000 IDs with the clock read around each call.
--
CREATE TEMP TABLE sf AS
SELECT i,
       clock_timestamp() AS before,
       idgen.snowflake_next() AS id,
       clock_timestamp() AS after
FROM generate_series(1, 10000) AS i;

SELECT count(*) AS n,
       count(DISTINCT id) AS n_distinct,
       bool_and(id > 0) AS all_positive
FROM sf;

-- Strictly increasing in generation order.
SELECT bool_and(id > prev) AS strictly_increasing,
       count(*) AS pairs
FROM (SELECT id, lag(id) OVER (ORDER BY i) AS prev FROM sf) s
WHERE prev IS NOT NULL;

-- Decoded: worker id 1, sequence within 12 bits, time of the tick that was
-- current during the call (ticks start on the millisecond, so the lower
-- bound is the millisecond of the reading before the call).
SELECT count(*) AS n_decoded,
       bool_and(d.worker_id = 1) AS worker_is_1,
       bool_and(d.sequence BETWEEN 0 AND 4095) AS sequence_in_range,
       bool_and(d.ts >= date_trunc('milliseconds', sf.before)) AS not_before_call,
       bool_and(d.ts <= sf.after) AS not_after_call,
       bool_and(d.ts = date_trunc('milliseconds', d.ts)) AS ts_on_tick
FROM sf, LATERAL idgen.snowflake_decode(sf.id) AS d;

-- The same from the bits themselves: sign 0, then 41/10/12.
SELECT bool_and(sf.id >> 63 = 0) AS sign_bit_0,
       bool_and((sf.id >> 12) & 1023 = d.worker_id) AS worker_bits,
       bool_and((sf.id >> 22) = (extract(epoch FROM d.ts - '2024-01-01 00:00:00+00'::timestamptz)
                                 * 1000)::bigint) AS tick_is_ms_since_epoch,
       bool_and(sf.id & 4095 = d.sequence) AS sequence_bits
FROM sf, LATERAL idgen.snowflake_decode(sf.id) AS d;

-- One issuer: within a tick the sequence counts up by one from 0, and each
-- new tick starts again at 0.
SELECT bool_and(CASE WHEN tick = prev_tick THEN seq = prev_seq + 1
                     ELSE tick > prev_tick AND seq = 0 END) AS dense_sequence
FROM (SELECT id >> 22 AS tick, id & 4095 AS seq,
             lag(id >> 22) OVER (ORDER BY i) AS prev_tick,
             lag(id & 4095) OVER (ORDER BY i) AS prev_seq
      FROM sf) s
WHERE prev_tick IS NOT NULL;

-- A later statement's IDs are all above an earlier statement's.
SELECT bool_and(id > (SELECT max(id) FROM sf)) AS later_statement_higher
FROM (SELECT idgen.snowflake_next() AS id FROM generate_series(1, 100)) s;

-- Volatile: one value per call.
SELECT idgen.snowflake_next() <> idgen.snowflake_next() AS two_calls_differ;

-- PARALLEL SAFE: called in a parallel worker, it continues the server-wide
-- sequence.
SELECT idgen.snowflake_next() AS leader_id \gset
-- PostgreSQL 16 renamed force_parallel_mode to debug_parallel_query.
SELECT CASE WHEN current_setting('server_version_num')::int < 160000
            THEN 'force_parallel_mode' ELSE 'debug_parallel_query' END AS debug_parallel \gset
SET :debug_parallel = on;
EXPLAIN (COSTS OFF) SELECT idgen.snowflake_next();
SELECT idgen.snowflake_next() AS worker_id \gset
RESET :debug_parallel;
SELECT :worker_id > :leader_id AS worker_id_higher,
       (SELECT d.worker_id FROM idgen.snowflake_decode(:worker_id) AS d) AS decoded_worker,
       idgen.snowflake_next() > :worker_id AS next_leader_id_higher;

--
-- snowflake_min(ts): the smallest ID of the tick containing ts.
--
SELECT idgen.snowflake_min('2024-01-01 00:00:00+00') AS at_epoch,
       idgen.snowflake_min('2024-01-01 00:00:00.000999+00') AS same_tick,
       idgen.snowflake_min('2024-01-01 00:00:00.001+00') AS next_tick,
       idgen.snowflake_min('2024-01-01 00:00:01+00') AS one_second,
       idgen.snowflake_min('2093-09-06 15:47:35.551999+00') AS last_tick;
SELECT idgen.snowflake_min('2093-09-06 15:47:35.551999+00')
       = ((1::bigint << 41) - 1) << 22 AS last_tick_is_max;
-- The time zone of the input does not matter.
SELECT idgen.snowflake_min('2024-06-01 12:00:00.5+02')
       = idgen.snowflake_min('2024-06-01 10:00:00.5+00') AS tz_independent;
-- decode(min(ts)) gives ts rounded down to the tick, worker 0, sequence 0.
SELECT v.t, d.*
FROM (VALUES ('2024-01-01 00:00:00+00'::timestamptz),
             ('2025-06-15 12:34:56.789999+00'),
             ('2026-02-28 23:59:59.9995+00')) AS v(t),
     LATERAL idgen.snowflake_decode(idgen.snowflake_min(v.t)) AS d
ORDER BY v.t;

-- Range bounds around live IDs: IDs issued before a moment are below
-- snowflake_min() of that moment, IDs issued at or after it are not.
CREATE TEMP TABLE sf_before AS
SELECT idgen.snowflake_next() AS id FROM generate_series(1, 500);
SELECT pg_sleep(0.01);
SELECT clock_timestamp() AS t1 \gset
CREATE TEMP TABLE sf_after AS
SELECT idgen.snowflake_next() AS id FROM generate_series(1, 500);
SELECT (SELECT max(id) FROM sf_before) < idgen.snowflake_min(:'t1') AS before_below_min,
       (SELECT min(id) FROM sf_after) >= idgen.snowflake_min(:'t1') AS after_not_below_min,
       (SELECT min(id) FROM sf_after) < idgen.snowflake_min(clock_timestamp() + interval '1 ms')
           AS after_below_next_ms;
-- Every ID of the first table is in [min(its decoded time), min(+1 tick)).
SELECT bool_and(sf.id >= idgen.snowflake_min(d.ts)
                AND sf.id < idgen.snowflake_min(d.ts + interval '1 ms')) AS id_within_its_tick
FROM sf, LATERAL idgen.snowflake_decode(sf.id) AS d;

--
-- snowflake_decode() of fixed values.
--
SELECT * FROM idgen.snowflake_decode(0);
SELECT * FROM idgen.snowflake_decode((1000::bigint << 22) | (5 << 12) | 7);
SELECT * FROM idgen.snowflake_decode(9223372036854775807);

--
-- NULL handling: STRICT (no row from the table function).
--
SELECT idgen.snowflake_min(NULL) IS NULL AS min_null,
       (SELECT count(*) FROM idgen.snowflake_decode(NULL)) AS decode_null_rows;
-- snowflake_decode() returns a table of exactly one row.
SELECT count(*) AS decode_rows FROM idgen.snowflake_decode(12345);

--
-- Errors, with messages that depend only on the input.
--
SELECT * FROM idgen.snowflake_decode(-1);
SELECT * FROM idgen.snowflake_decode(-9223372036854775808);
SELECT idgen.snowflake_min('infinity');
SELECT idgen.snowflake_min('-infinity');
SELECT idgen.snowflake_min('2023-12-31+00');
SELECT idgen.snowflake_min('2023-12-31 23:59:59.999999+00');
SELECT idgen.snowflake_min('1969-07-20 20:17:40+00');
SELECT idgen.snowflake_min('9999-01-01');
SELECT idgen.snowflake_min('2093-09-06 15:47:35.552+00');
SELECT q, pg_temp.sqlstate_of(q) AS sqlstate
FROM (VALUES ($$SELECT idgen.snowflake_decode(-1)$$),
             ($$SELECT idgen.snowflake_min('infinity')$$),
             ($$SELECT idgen.snowflake_min('-infinity')$$),
             ($$SELECT idgen.snowflake_min('2023-12-31+00')$$),
             ($$SELECT idgen.snowflake_min('9999-01-01')$$),
             ($$SELECT idgen.snowflake_min('2093-09-06 15:47:35.552+00')$$),
             ($$SELECT idgen.snowflake_min('2093-09-06 15:47:35.551999+00')$$),
             ($$SELECT idgen.snowflake_decode(0)$$)) AS v(q);

--
-- bit_budget(): the layout in force.
--
SELECT timestamp_bits, worker_bits, sequence_bits, epoch, tick, exhausted_at,
       ids_per_second_per_worker, worker_capacity, workers_in_use
FROM idgen.bit_budget();
SELECT epoch = '2024-01-01 00:00:00+00' AS epoch_ok,
       tick = interval '1 millisecond' AS tick_ok,
       exhausted_at = '2093-09-06 15:47:35.552+00' AS exhausted_at_ok,
       exhausted_at = epoch + 2199023255552 * interval '1 millisecond' AS exhausted_at_is_2_41_ticks,
       ids_per_second_per_worker = 4096 * 1000 AS rate_ok,
       worker_capacity = 1024 AS capacity_ok,
       -- years from now until exhausted_at: below the 69.7 years there were
       -- at the epoch, and consistent with exhausted_at
       years_left > 0 AND years_left < 69.7 AS years_left_range,
       abs(years_left - extract(epoch FROM exhausted_at - clock_timestamp())
                        / (365.2425 * 86400)) < 0.001 AS years_left_consistent
FROM idgen.bit_budget();
-- The last representable ID decodes to the tick before exhausted_at.
SELECT d.ts + interval '1 ms' = b.exhausted_at AS max_id_is_last_tick
FROM idgen.snowflake_decode(9223372036854775807) AS d, idgen.bit_budget() AS b;

--
-- Catalog: volatility, parallel safety and strictness of the UUIDv7,
-- Snowflake and monitoring functions (other features' functions are checked
-- by their own tests).
--
SELECT p.oid::regprocedure AS function, p.provolatile, p.proparallel,
       p.proisstrict, p.proretset
FROM pg_proc p
WHERE p.pronamespace = 'idgen'::regnamespace
  AND p.proname IN ('uuidv7', 'uuidv7_time', 'snowflake_next', 'snowflake_decode',
                    'snowflake_min', 'bit_budget', 'stats', 'status')
ORDER BY p.oid::regprocedure::text;
