SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idgen;
RESET client_min_messages;
--
-- idgen.segment_next(tag, n): the first of n consecutive numbers reserved
-- for the caller (issue 12, item 5).
--
-- Runs after segment.sql on the same server (test/preload.conf, every
-- segment setting at its default, so each grant made while this file runs
-- doubles the step).  Only this session uses segment tags, so the numbers
-- are deterministic.  Errors print their SQLSTATE.
--
\set SHOW_CONTEXT never

SELECT idgen.segment_create('blk', 1, 100);

--
-- Bad input: n below 1 or NULL, before anything is drawn.
--
SELECT idgen.segment_next('blk', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_next('blk', -5);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_next('blk', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_next(NULL, 10);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_next('', 10);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_next('no_such_tag', 10);
\echo :LAST_ERROR_SQLSTATE
-- Nothing was granted or drawn by these.
SELECT grants, next_value FROM idgen.segment_alloc WHERE tag = 'blk';

--
-- n above the tag's step (100): refused with a hint, the first time once
-- the tag's first range is granted (that is when this server learns the
-- step), and from then on at once.
--
SELECT idgen.segment_next('blk', 101);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_next('blk', 2147483647);
\echo :LAST_ERROR_SQLSTATE
-- The refusals drew nothing: the first range [1, 101) waits untouched in
-- the second buffer.
SELECT ranges_buffered, current_next, next_start, next_end
FROM idgen.segments WHERE tag = 'blk';

--
-- Blocks are consecutive and follow each other; single draws interleave.
--
SELECT idgen.segment_next('blk', 10) AS first_block;          -- 1 .. 10
SELECT idgen.segment_next('blk') AS single;                    -- 11
SELECT idgen.segment_next('blk', 1) AS block_of_one;           -- 12
SELECT idgen.segment_next('blk', 88) AS fills_the_range;       -- 13 .. 100
-- The next range is [101, 301): a block of the whole step fits.
SELECT idgen.segment_next('blk', 100) AS whole_step;           -- 101 .. 200
SELECT idgen.segment_next('blk', 60) AS sixty;                 -- 201 .. 260
-- 40 numbers are left in [101, 301): a block of 41 does not straddle the
-- switch; it comes from the next range, [301, 701), and 261 .. 300 are a gap.
SELECT idgen.segment_next('blk', 41) AS skips_to_next_range;   -- 301 .. 341
SELECT idgen.segment_next('blk') AS single_after_gap;          -- 342
-- The ranges these came from (the prefetch of the next one may or may not
-- have come yet).
SELECT range_start, range_end FROM idgen.segment_events
WHERE tag = 'blk' AND kind = 'grant' AND range_start <= 342 ORDER BY event_id;

--
-- Many blocks of assorted sizes, interleaved with single draws: every
-- number is handed out once, each block lies inside one granted range, and
-- blocks increase in call order.
--
CREATE TEMP TABLE draws AS
SELECT i, CASE WHEN i % 3 = 0 THEN 1 ELSE 1 + (i * 37) % 100 END AS n,
       CASE WHEN i % 3 = 0 THEN idgen.segment_next('blk')
            ELSE idgen.segment_next('blk', 1 + (i * 37) % 100) END AS first
FROM generate_series(1, 3000) AS i;
SELECT count(*) AS draws, sum(n) AS numbers,
       (SELECT count(DISTINCT first + g)
          FROM draws, generate_series(0, n - 1) AS g) AS distinct_numbers
FROM draws;
SELECT count(*) AS overlapping_pairs
FROM draws a JOIN draws b ON a.i < b.i
 AND int8range(a.first, a.first + a.n) && int8range(b.first, b.first + b.n);
SELECT bool_and(first >= prev_end) AS increasing_in_call_order
FROM (SELECT first, lag(first + n) OVER (ORDER BY i) AS prev_end FROM draws) s
WHERE prev_end IS NOT NULL;
SELECT count(*) AS blocks_outside_one_granted_range
FROM draws d
WHERE NOT EXISTS (SELECT 1 FROM idgen.segment_events e
                  WHERE e.tag = 'blk' AND e.kind = 'grant'
                    AND d.first >= e.range_start AND d.first + d.n <= e.range_end);
-- Above the last number drawn before.
SELECT min(first) > 342 AS above_earlier_draws FROM draws;

-- In a rolled-back transaction: the block is not handed out again.
BEGIN;
SELECT idgen.segment_next('blk', 50) AS rb_first \gset
ROLLBACK;
SELECT idgen.segment_next('blk', 50) >= :rb_first + 50 AS above_rolled_back_block;

-- A bulk load: the first number and generate_series.
CREATE TEMP TABLE items (id bigint PRIMARY KEY, label text);
INSERT INTO items (id, label)
SELECT b.first + g, 'item ' || g
FROM (SELECT idgen.segment_next('blk', 100) AS first) b, generate_series(0, 99) AS g;
SELECT count(*) AS rows, max(id) - min(id) AS spread FROM items;

--
-- Privileges: like segment_next(tag), revoked from PUBLIC and granted per
-- role; the one grant does not imply the other.
--
CREATE ROLE regress_block_user;
SET ROLE regress_block_user;
SELECT idgen.segment_next('blk', 5);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT EXECUTE ON FUNCTION idgen.segment_next(text) TO regress_block_user;
SET ROLE regress_block_user;
SELECT idgen.segment_next('blk', 5);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT EXECUTE ON FUNCTION idgen.segment_next(text, integer) TO regress_block_user;
SET ROLE regress_block_user;
SELECT idgen.segment_next('blk', 5) > 0 AS block_for_granted_role;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION idgen.segment_next(text), idgen.segment_next(text, integer)
    FROM regress_block_user;
DROP ROLE regress_block_user;
SELECT p.oid::regprocedure AS function, p.provolatile, p.proparallel, p.prosecdef,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS has_comment
FROM pg_proc p
WHERE p.pronamespace = 'idgen'::regnamespace AND p.proname = 'segment_next'
ORDER BY p.oid::regprocedure::text;

-- A dropped tag: 42704, as for single draws.
SELECT idgen.segment_drop('blk');
SELECT idgen.segment_next('blk', 5);
\echo :LAST_ERROR_SQLSTATE
