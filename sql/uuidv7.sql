CREATE EXTENSION IF NOT EXISTS idgen;
--
-- idgen.uuidv7(), idgen.uuidv7(timestamptz), idgen.uuidv7_time(uuid)
--
-- Output must not depend on the current time: only booleans, counts and
-- values computed from fixed inputs are printed.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- Helper: the SQLSTATE a statement fails with ('ok' if it does not fail).
CREATE FUNCTION pg_temp.sqlstate_of(query text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

-- 10,000 IDs from one statement, with the clock read just before and just
-- after each call; i is the generation order.
CREATE TEMP TABLE gen AS
SELECT i,
       clock_timestamp() AS before,
       idgen.uuidv7() AS u,
       clock_timestamp() AS after
FROM generate_series(1, 10000) AS i;

-- Version nibble 7 (text form and raw bytes) and RFC 9562 variant 10.
SELECT count(*) AS n,
       bool_and(substr(u::text, 15, 1) = '7') AS text_version_7,
       bool_and(substr(u::text, 20, 1) IN ('8', '9', 'a', 'b')) AS text_variant_10,
       bool_and(get_byte(uuid_send(u), 6) >> 4 = 7) AS byte_version_7,
       bool_and(get_byte(uuid_send(u), 8) >> 6 = 2) AS byte_variant_10,
       bool_and(length(u::text) = 36) AS canonical_text
FROM gen;

-- All distinct, and strictly increasing in generation order (uuid ordering,
-- which is bytewise).
SELECT count(*) AS n,
       count(DISTINCT u) AS n_distinct,
       bool_and(u > prev) AS strictly_increasing
FROM (SELECT u, lag(u) OVER (ORDER BY i) AS prev FROM gen) s
WHERE prev IS NOT NULL;

-- The same, computed the other way: the rank by value equals the rank by
-- generation order for every row.
SELECT bool_and(by_value = by_order) AS value_order_is_generation_order
FROM (SELECT row_number() OVER (ORDER BY u) AS by_value,
             row_number() OVER (ORDER BY i) AS by_order
      FROM gen) s;

-- Text-sorted order (bytewise, collation "C") equals generation order.
SELECT (array_agg(i ORDER BY u::text COLLATE "C")
        = array_agg(i ORDER BY i)) AS text_order_is_generation_order
FROM gen;

-- The embedded time: never after the clock reading that follows the call,
-- and not before the one that precedes it.  The 12-bit sub-millisecond
-- fraction has steps of 244 ns, and uuidv7_time() rounds down to the
-- microsecond, so the decoded time may sit up to 1 us below a clock reading
-- taken in the same microsecond just before the call.  A generator that
-- dropped the sub-millisecond fraction would fail the lower bound.
SELECT bool_and(idgen.uuidv7_time(u) <= after) AS not_after_call,
       bool_and(idgen.uuidv7_time(u) >= before - interval '1 microsecond') AS not_before_call,
       bool_and(idgen.uuidv7_time(u) IS NOT NULL) AS all_decode
FROM gen;

-- Within 1 ms of clock_timestamp() at the call (rows whose call was not
-- interrupted for 0.5 ms or more by the scheduler; there are always many).
SELECT count(*) > 1000 AS enough_rows,
       bool_and(after - idgen.uuidv7_time(u) < interval '1 millisecond') AS within_1ms
FROM gen
WHERE after - before < interval '0.5 millisecond';

-- Within [t0, clock_timestamp()] for a statement started after t0 was read.
SELECT clock_timestamp() AS t0 \gset
SELECT bool_and(idgen.uuidv7_time(u) BETWEEN :'t0' AND clock_timestamp()) AS within_t0_and_now,
       count(*) AS n
FROM (SELECT idgen.uuidv7() AS u FROM generate_series(1, 1000)) s;

-- A later statement's IDs are all above an earlier statement's.
SELECT bool_and(u > (SELECT u FROM gen ORDER BY u DESC LIMIT 1)) AS later_statement_higher,
       count(*) AS n
FROM (SELECT idgen.uuidv7() AS u FROM generate_series(1, 100)) s;

-- uuidv7() is volatile: one value per call, even in one row.
SELECT idgen.uuidv7() <> idgen.uuidv7() AS two_calls_differ;

-- PARALLEL SAFE: called in a parallel worker, it continues the server-wide
-- order.
SELECT idgen.uuidv7() AS leader_u \gset
-- PostgreSQL 16 renamed force_parallel_mode to debug_parallel_query.
SELECT CASE WHEN current_setting('server_version_num')::int < 160000
            THEN 'force_parallel_mode' ELSE 'debug_parallel_query' END AS debug_parallel \gset
SET :debug_parallel = on;
EXPLAIN (COSTS OFF) SELECT idgen.uuidv7();
SELECT idgen.uuidv7() AS worker_u \gset
RESET :debug_parallel;
SELECT :'worker_u'::uuid > :'leader_u'::uuid AS worker_u_higher,
       idgen.uuidv7() > :'worker_u'::uuid AS next_leader_u_higher;

--
-- uuidv7(ts): round trip with microsecond precision.
--
SELECT ts,
       idgen.uuidv7_time(idgen.uuidv7(ts)) AS decoded,
       idgen.uuidv7_time(idgen.uuidv7(ts)) = ts AS round_trip,
       substr(idgen.uuidv7(ts)::text, 15, 1) AS version,
       get_byte(uuid_send(idgen.uuidv7(ts)), 8) >> 6 AS variant
FROM (VALUES ('1970-01-01 00:00:00+00'::timestamptz),
             ('1970-01-01 00:00:00.000001+00'),
             ('1970-01-01 00:00:00.999999+00'),
             ('1999-12-31 23:59:59.999999+00'),
             ('2000-01-01 00:00:00+00'),
             ('2023-06-30 03:34:18.518455+00'),
             ('2024-02-29 12:00:00.000001+00'),
             ('2038-01-19 03:14:08.123456+00'),
             ('2106-02-07 06:28:16.999999+00'),
             ('10889-08-02 05:31:50.655999+00')) AS v(ts)
ORDER BY ts;

-- Every microsecond of one millisecond (and of its neighbours) round-trips,
-- and the UUIDs rise with the timestamps.
SELECT count(*) AS n,
       bool_and(idgen.uuidv7_time(u) = ts) AS all_round_trip,
       bool_and(u > prev) AS increasing_with_ts
FROM (SELECT ts, u, lag(u) OVER (ORDER BY ts) AS prev
      FROM (SELECT ts, idgen.uuidv7(ts) AS u
            FROM generate_series('2025-03-04 05:06:07.999+00'::timestamptz,
                                 '2025-03-04 05:06:08.002+00'::timestamptz,
                                 interval '1 microsecond') AS ts) s1) s2
WHERE prev IS NOT NULL;

-- Timestamps spread over the whole range, a few hundred years apart.
SELECT count(*) AS n,
       bool_and(idgen.uuidv7_time(u) = ts) AS all_round_trip,
       bool_and(u > prev) AS increasing_with_ts
FROM (SELECT ts, u, lag(u) OVER (ORDER BY ts) AS prev
      FROM (SELECT ts, idgen.uuidv7(ts) AS u
            FROM generate_series('1970-01-01 00:00:00.000001+00'::timestamptz,
                                 '10880-01-01 00:00:00+00'::timestamptz,
                                 interval '97 years 5 months 3 days 01:02:03.456789') AS ts) s1) s2
WHERE prev IS NOT NULL;

-- The random bits differ between calls for the same timestamp, and the
-- timestamp part does not.
SELECT count(DISTINCT u) AS n_distinct,
       count(DISTINCT substr(u::text, 1, 18)) AS n_distinct_time_parts
FROM (SELECT idgen.uuidv7('2024-05-05 12:00:00.5+00') AS u
      FROM generate_series(1, 1000)) s;

-- uuidv7(ts) as a range bound: a millisecond before a generated ID's call
-- it sorts below the ID, a millisecond after the call above it.
SELECT bool_and(idgen.uuidv7(before - interval '1 millisecond') < u) AS earlier_bound_below,
       bool_and(idgen.uuidv7(after + interval '1 millisecond') > u) AS later_bound_above
FROM gen;

--
-- NULL handling: both functions are STRICT.
--
SELECT idgen.uuidv7(NULL::timestamptz) IS NULL AS uuidv7_null,
       idgen.uuidv7_time(NULL) IS NULL AS uuidv7_time_null;

--
-- Errors: times a UUIDv7 cannot hold (class 22, data exception).
--
SELECT idgen.uuidv7('infinity');
SELECT idgen.uuidv7('-infinity');
SELECT idgen.uuidv7('1969-12-31 23:59:59.999999+00');
SELECT idgen.uuidv7('10889-08-02 05:31:50.656+00');
SELECT idgen.uuidv7('10890-01-01+00');
SELECT q, pg_temp.sqlstate_of(q) AS sqlstate
FROM (VALUES ($$SELECT idgen.uuidv7('infinity')$$),
             ($$SELECT idgen.uuidv7('-infinity')$$),
             ($$SELECT idgen.uuidv7('1969-12-31 23:59:59.999999+00')$$),
             ($$SELECT idgen.uuidv7('4713-01-01 00:00:00+00 BC')$$),
             ($$SELECT idgen.uuidv7('10889-08-02 05:31:50.656+00')$$),
             ($$SELECT idgen.uuidv7('10890-01-01+00')$$),
             ($$SELECT idgen.uuidv7('1970-01-01 00:00:00+00')$$),
             ($$SELECT idgen.uuidv7('10889-08-02 05:31:50.655999+00')$$)) AS v(q);

--
-- uuidv7_time() of UUIDs that are not version 7: NULL.
--
SELECT idgen.uuidv7_time(gen_random_uuid()) IS NULL AS v4_is_null,
       idgen.uuidv7_time('00000000-0000-0000-0000-000000000000') IS NULL AS nil_is_null,
       idgen.uuidv7_time('ffffffff-ffff-ffff-ffff-ffffffffffff') IS NULL AS max_is_null,
       -- version 7 nibble but variant 110 (Microsoft) or 0xx (NCS)
       idgen.uuidv7_time('01890a5d-ac96-774b-ccce-b302099a8057') IS NULL AS variant_110_is_null,
       idgen.uuidv7_time('01890a5d-ac96-774b-3cce-b302099a8057') IS NULL AS variant_0xx_is_null,
       -- variant 10 but version 6 or 8
       idgen.uuidv7_time('01890a5d-ac96-674b-bcce-b302099a8057') IS NULL AS version_6_is_null,
       idgen.uuidv7_time('01890a5d-ac96-874b-bcce-b302099a8057') IS NULL AS version_8_is_null;

SELECT count(*) AS n,
       count(*) FILTER (WHERE idgen.uuidv7_time(gen_random_uuid()) IS NULL) AS n_null
FROM generate_series(1, 100);

--
-- uuidv7_time() of hand-made version 7 UUIDs: exact values.
--   01890a5dac96 = 1688096058518 ms since 1970; fraction 0x74b = 1867,
--   1867 * 1000 / 4096 = 455.8 -> 455 us: 2023-06-30 03:34:18.518455+00.
--
SELECT idgen.uuidv7_time('01890a5d-ac96-774b-bcce-b302099a8057') AS known;
SELECT idgen.uuidv7_time('01890a5d-ac96-774b-bcce-b302099a8057')
       = '2023-06-30 03:34:18.518455+00' AS known_exact;
-- The random bits and the variant's second bit do not matter.
SELECT idgen.uuidv7_time('01890a5d-ac96-774b-8000-000000000000')
       = idgen.uuidv7_time('01890a5d-ac96-774b-bfff-ffffffffffff') AS rand_b_ignored;
-- Smallest and largest times: 1970-01-01 and the last microsecond of 2^48 ms.
SELECT idgen.uuidv7_time('00000000-0000-7000-8000-000000000000') AS zero,
       idgen.uuidv7_time('00000000-0000-7001-8000-000000000000') AS one_step,
       idgen.uuidv7_time('00000000-0000-7005-8000-000000000000') AS five_steps,
       idgen.uuidv7_time('00000000-0001-7fff-8000-000000000000') AS ms_1_last_step,
       idgen.uuidv7_time('ffffffff-ffff-7fff-bfff-ffffffffffff') AS max;
-- 0x1000 ms = 4.096 s, with fraction 0x800 = half a millisecond.
SELECT idgen.uuidv7_time('00000000-1000-7800-8000-000000000000') AS half_ms;

-- The decoded time of a uuidv7(ts) is ts, whatever the session time zone.
SET timezone = 'Asia/Kolkata';
SELECT idgen.uuidv7_time(idgen.uuidv7('2024-07-01 10:00:00.123456+05:30'))
       = '2024-07-01 04:30:00.123456+00' AS tz_independent;
RESET timezone;
SET timezone = 'UTC';

--
-- Catalog: the uuidv7 functions' properties.
--
SELECT p.oid::regprocedure AS function, p.provolatile, p.proparallel,
       p.proisstrict, p.prorettype::regtype
FROM pg_proc p
WHERE p.pronamespace = 'idgen'::regnamespace AND p.proname LIKE 'uuidv7%'
ORDER BY p.oid::regprocedure::text;

-- uuidv7_min(ts): the smallest UUIDv7 at or after ts, a safe range bound.
SELECT idgen.uuidv7_min('2023-06-30 03:34:18.518455+00');
SELECT idgen.uuidv7_time(idgen.uuidv7_min('2023-06-30 03:34:18.518455+00'));
CREATE TEMP TABLE min_check AS
SELECT clock_timestamp() AS t0, idgen.uuidv7() AS u FROM generate_series(1, 20000);
SELECT count(*) FILTER (WHERE u < idgen.uuidv7_min(t0)) AS below_bound,
       bool_and(idgen.uuidv7_min(t0) <= idgen.uuidv7(t0)) AS min_below_backfill
FROM min_check;
SELECT idgen.uuidv7_min('infinity');
SELECT idgen.uuidv7_min('1969-12-31 23:59:59+00');
