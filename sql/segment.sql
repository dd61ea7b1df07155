SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idgen;
RESET client_min_messages;
--
-- idgen.segment_create(), segment_next(), segment_drop(), idgen.segments and
-- the outbox idgen.segment_events.
--
-- The server runs with test/preload.conf: idgen preloaded and
-- idgen.database = 'contrib_regression', every segment setting at its
-- default (step tuning aims at 900 s per range, so every grant made while
-- this file runs doubles the step).  Only this session uses segment tags on
-- the server while this file runs, so which numbers come out is
-- deterministic.  Errors print their SQLSTATE through psql's
-- LAST_ERROR_SQLSTATE.
--
\set SHOW_CONTEXT never
SET timezone = 'UTC';

--
-- Settings (defaults, but idgen.segment_min_range = 0 from
-- test/preload.conf: grant sizes follow doubling alone).
--
SELECT name, setting, unit, context
FROM pg_settings
WHERE name IN ('idgen.database', 'idgen.segment_max_tags',
               'idgen.segment_prefetch_at', 'idgen.segment_duration',
               'idgen.segment_max_step', 'idgen.segment_min_range',
               'idgen.segment_wait_timeout',
               'idgen.segment_burn_steps', 'idgen.segment_burn_window',
               'idgen.segment_interleave_count',
               'idgen.segment_interleave_index')
ORDER BY name;

-- The worker connects to contrib_regression once it exists (it retries every
-- 2 s until then).  Wait for it, up to 60 s, so that the first call below
-- does not race its start.
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
SELECT count(*) AS idgen_workers, min(application_name) AS application_name
FROM pg_stat_activity
WHERE backend_type = 'idgen worker' AND datname = current_database();

--
-- Create a tag: start 1, step 100.
--
SELECT idgen.segment_create('reg', 1, 100);
SELECT tag, start_value, next_value, step, current_step, last_timeline,
       last_grant_at IS NULL AS never_granted, rate_per_second, grants
FROM idgen.segment_alloc ORDER BY tag;
-- Not granted yet: nothing buffered.
SELECT tag, step, ranges_buffered, current_start, current_end, current_next,
       next_start, next_end, next_ungranted, last_grant_at, last_timeline, grants
FROM idgen.segments;

-- The first numbers are 1, 2, 3, ...
SELECT i, idgen.segment_next('reg') AS n FROM generate_series(1, 5) AS i;

-- 1000 more: distinct, strictly increasing in call order and, with a single
-- caller and no restart, dense (6 .. 1005).
CREATE TEMP TABLE nums AS
SELECT i, idgen.segment_next('reg') AS n FROM generate_series(1, 1000) AS i;
SELECT count(*) AS n, count(DISTINCT n) AS n_distinct,
       min(n) AS min_n, max(n) AS max_n,
       bool_and(n = i + 5) AS dense_from_6
FROM nums;
SELECT bool_and(n > prev) AS strictly_increasing, count(*) AS pairs
FROM (SELECT n, lag(n) OVER (ORDER BY i) AS prev FROM nums) s
WHERE prev IS NOT NULL;

-- The worker prefetched the range after [701, 1501) once 10% of it was used
-- (781 was issued).  Wait for it to be buffered (at most 30 s), then the
-- buffers are known exactly.
DO $$
BEGIN
    FOR i IN 1..300 LOOP
        PERFORM 1 FROM idgen.segments WHERE tag = 'reg' AND ranges_buffered = 2;
        EXIT WHEN FOUND;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;
SELECT tag, step, ranges_buffered, current_start, current_end, current_next,
       next_start, next_end, next_ungranted, last_timeline, grants,
       last_grant_at <= now() + interval '1 minute' AS last_grant_at_set
FROM idgen.segments;
-- The table agrees.
SELECT tag, next_value, step, current_step, last_timeline, grants,
       rate_per_second > 0 AS rate_observed
FROM idgen.segment_alloc;
-- Shared-memory view of the buffers (granted to PUBLIC).
SELECT tag, ranges_buffered, current_start, current_end, current_next,
       next_start, next_end, step_in_use, grants, waiters
FROM idgen.segment_buffers();

--
-- The outbox: one 'create' event, then one 'grant' event per range, in
-- event_id order.  The first range is one step; each later one starts
-- where the one before ended and, granted sooner than
-- idgen.segment_duration after it, is twice as long.
--
SELECT kind, range_start, range_end, node, timeline
FROM idgen.segment_events WHERE tag = 'reg' AND kind = 'create';
SELECT kind, range_start, range_end, range_end - range_start AS size, timeline,
       node ~ '^[0-9]+:[0-9]+$' AS node_is_sysid_port
FROM idgen.segment_events WHERE tag = 'reg' AND kind <> 'create'
ORDER BY event_id;
SELECT count(*) AS grant_events,
       bool_and(range_start = coalesce(prev_end, 1)) AS contiguous,
       bool_and(range_start > coalesce(prev_start, 0)) AS increasing,
       bool_and(range_end - range_start = coalesce(2 * prev_size, 100)) AS size_doubles,
       bool_and(at >= prev_at) AS time_ordered
FROM (SELECT range_start, range_end, at,
             lag(range_end) OVER w AS prev_end,
             lag(range_start) OVER w AS prev_start,
             lag(range_end - range_start) OVER w AS prev_size,
             lag(at) OVER w AS prev_at
      FROM idgen.segment_events WHERE tag = 'reg' AND kind = 'grant'
      WINDOW w AS (ORDER BY event_id)) s;
-- Grants and the row agree: one event per counted grant, and the last event
-- ends at the next ungranted number.
SELECT (SELECT count(*) FROM idgen.segment_events WHERE tag = 'reg' AND kind = 'grant')
           = a.grants AS one_event_per_grant,
       (SELECT max(range_end) FROM idgen.segment_events WHERE tag = 'reg')
           = a.next_value AS last_event_ends_at_next_value,
       (SELECT range_end - range_start FROM idgen.segment_events
        WHERE tag = 'reg' AND kind = 'grant' ORDER BY event_id DESC LIMIT 1)
           = a.current_step AS last_event_has_current_step
FROM idgen.segment_alloc a WHERE a.tag = 'reg';
-- Every number issued so far lies in a granted range.
SELECT count(*) AS outside_granted_ranges
FROM nums
WHERE NOT EXISTS (SELECT 1 FROM idgen.segment_events e
                  WHERE e.tag = 'reg' AND e.kind = 'grant'
                    AND nums.n >= e.range_start AND nums.n < e.range_end);

-- Volatile: one number per call.
SELECT idgen.segment_next('reg') AS a, idgen.segment_next('reg') AS b;

--
-- Caller rollback: numbers taken in a rolled-back transaction are not
-- handed out again, also across a range switch.
--
BEGIN;
SELECT max(n) AS rb_max, count(*) AS rb_count
FROM (SELECT idgen.segment_next('reg') AS n FROM generate_series(1, 3)) s \gset
ROLLBACK;
SELECT :rb_max AS rolled_back_max, :rb_count AS rolled_back_count;
SELECT idgen.segment_next('reg') > :rb_max AS next_above_rolled_back;
BEGIN;
SELECT max(n) AS rb_max FROM
  (SELECT idgen.segment_next('reg') AS n FROM generate_series(1, 2000)) s \gset
SELECT :rb_max AS rolled_back_max;
ROLLBACK;
SELECT n > :rb_max AS next_above_rolled_back, n = :rb_max + 1 AS next_is_following
FROM (SELECT idgen.segment_next('reg') AS n) s;
-- A subtransaction rolled back: the same.
BEGIN;
SAVEPOINT sp;
SELECT idgen.segment_next('reg') AS sp_n \gset
ROLLBACK TO SAVEPOINT sp;
SELECT idgen.segment_next('reg') > :sp_n AS above_savepoint_number;
COMMIT;
-- The caller's transaction writes nothing: segment_next() works in a
-- read-only transaction, and the grants it needs commit even though the
-- caller fails afterwards.
SELECT grants AS grants_before FROM idgen.segment_alloc WHERE tag = 'reg' \gset
BEGIN READ ONLY;
SELECT count(DISTINCT idgen.segment_next('reg')) AS read_only_numbers
FROM generate_series(1, 10000);
SELECT 1 / 0;
ROLLBACK;
SELECT grants > :grants_before AS grants_committed_despite_caller_error
FROM idgen.segment_alloc WHERE tag = 'reg';

--
-- Bad input to segment_next().
--
SELECT idgen.segment_next(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_next('');
\echo :LAST_ERROR_SQLSTATE
-- 64 bytes: one more than a tag may have (bytes, not characters).
SELECT idgen.segment_next(repeat('x', 64));
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_next(repeat('é', 32));
\echo :LAST_ERROR_SQLSTATE
-- Unknown tags, including one of the longest length allowed.
SELECT idgen.segment_next('no_such_tag');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_next(repeat('y', 63));
\echo :LAST_ERROR_SQLSTATE
-- Tags are case sensitive.
SELECT idgen.segment_next('REG');
\echo :LAST_ERROR_SQLSTATE
-- An unknown tag keeps no buffers.
SELECT count(*) AS unknown_tags_buffered
FROM idgen.segment_buffers() WHERE tag <> 'reg';

--
-- Bad input to segment_create().
--
SELECT idgen.segment_create(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_create('');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_create(repeat('x', 64));
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_create(repeat('é', 32));
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_create('bad', 1, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_create('bad', 1, -5);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_create('bad', 1, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_create('bad', -1, 100);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_create('bad', NULL, 100);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_create('bad', 9223372036854775807, 100);
\echo :LAST_ERROR_SQLSTATE
-- One step must fit below the largest bigint.
SELECT idgen.segment_create('bad', 9223372036854775708, 100);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_create('reg', 1, 100);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_create('reg');
\echo :LAST_ERROR_SQLSTATE
-- None of these left a row or an event behind.
SELECT count(*) AS rows_left FROM idgen.segment_alloc WHERE tag <> 'reg';
SELECT count(*) AS events_left FROM idgen.segment_events WHERE tag <> 'reg';
SELECT count(*) AS reg_create_events
FROM idgen.segment_events WHERE tag = 'reg' AND kind = 'create';

-- Boundaries that are allowed: a 63-byte tag, start 0, a one-number step,
-- and the highest start that leaves room for one step.
SELECT idgen.segment_create(repeat('z', 63), 0, 1);
SELECT i, idgen.segment_next(repeat('z', 63)) AS n FROM generate_series(1, 3) AS i;
SELECT idgen.segment_drop(repeat('z', 63));
-- Defaults: start 1, step 1000.
SELECT idgen.segment_create('defaults');
SELECT start_value, next_value, step, current_step
FROM idgen.segment_alloc WHERE tag = 'defaults';
SELECT idgen.segment_next('defaults') AS first_default;
SELECT idgen.segment_drop('defaults');
-- The end of the bigint range: the last 100 numbers come out, then a clear
-- error (the step cannot be granted again), never a wrapped or repeated
-- number.
SELECT idgen.segment_create('edge', 9223372036854775707, 100);
SELECT count(*) AS n, min(n) AS min_n, max(n) AS max_n, count(DISTINCT n) AS n_distinct
FROM (SELECT idgen.segment_next('edge') AS n FROM generate_series(1, 100)) s;
SELECT idgen.segment_next('edge');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_next('edge');
\echo :LAST_ERROR_SQLSTATE
SELECT next_value, grants FROM idgen.segment_alloc WHERE tag = 'edge';
SELECT idgen.segment_drop('edge');

--
-- segment_drop().
--
SELECT idgen.segment_drop('no_such_tag');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_drop(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_next('reg') AS before_drop \gset
SELECT idgen.segment_drop('reg');
-- The row and the buffers are gone; the outbox records the drop with the
-- range the tag had granted.
SELECT count(*) AS rows_left FROM idgen.segment_alloc WHERE tag = 'reg';
SELECT count(*) AS buffers_left FROM idgen.segment_buffers() WHERE tag = 'reg';
SELECT count(*) AS in_view FROM idgen.segments WHERE tag = 'reg';
SELECT kind, range_start, range_end = (SELECT max(range_end) FROM idgen.segment_events
                                       WHERE tag = 'reg' AND kind = 'grant') AS range_end_ok,
       node, timeline
FROM idgen.segment_events WHERE tag = 'reg' AND kind = 'drop';
-- A dropped tag is unknown, also to this backend that used it a moment ago.
SELECT idgen.segment_next('reg');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_drop('reg');
\echo :LAST_ERROR_SQLSTATE
-- Re-created, it starts afresh from its new start.
SELECT idgen.segment_create('reg', 1, 100);
SELECT i, idgen.segment_next('reg') AS n FROM generate_series(1, 3) AS i;
-- A drop rolled back keeps the tag, and numbers continue above the ones
-- handed out before (the buffers it threw away are a gap).
SELECT idgen.segment_next('reg') AS before_drop \gset
BEGIN;
SELECT idgen.segment_drop('reg');
ROLLBACK;
SELECT n > :before_drop AS above_before_drop
FROM (SELECT idgen.segment_next('reg') AS n) s;

--
-- Privileges.
--
CREATE ROLE regress_segment_user;
SET ROLE regress_segment_user;
SELECT idgen.segment_next('reg');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_create('user_tag');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_drop('reg');
\echo :LAST_ERROR_SQLSTATE
SELECT idgen._segment_forget('reg');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM idgen.segment_alloc;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM idgen.segment_events;
\echo :LAST_ERROR_SQLSTATE
-- The view and the buffers are readable by everyone.
SELECT tag, ranges_buffered >= 1 AS buffered FROM idgen.segments ORDER BY tag;
SELECT tag FROM idgen.segment_buffers() ORDER BY tag;
RESET ROLE;

GRANT EXECUTE ON FUNCTION idgen.segment_next(text) TO regress_segment_user;
SELECT idgen.segment_next('reg') AS before_user \gset
SET ROLE regress_segment_user;
SELECT n > :before_user AS user_number_above
FROM (SELECT idgen.segment_next('reg') AS n) s;
-- ... but still may not touch the tables or manage tags.
UPDATE idgen.segment_alloc SET next_value = 1 WHERE tag = 'reg';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM idgen.segment_alloc;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO idgen.segment_events (tag, kind, node, timeline) VALUES ('reg', 'grant', 'x', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT idgen.segment_create('user_tag');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Tag management can be granted too (the functions are SECURITY DEFINER).
GRANT EXECUTE ON FUNCTION idgen.segment_create(text, bigint, integer),
    idgen.segment_drop(text) TO regress_segment_user;
SET ROLE regress_segment_user;
SELECT idgen.segment_create('user_tag', 10, 5);
SELECT idgen.segment_next('user_tag') AS user_tag_first;
SELECT idgen.segment_drop('user_tag');
RESET ROLE;
-- (A step of 5 prefetches at once, so the number of grants depends on the
-- worker's timing; only whether there was one is printed.)
SELECT count(*) FILTER (WHERE kind = 'create') AS creates,
       count(*) FILTER (WHERE kind = 'drop') AS drops,
       min(range_start) FILTER (WHERE kind = 'grant') AS first_grant_start,
       bool_or(kind = 'grant') AS granted
FROM idgen.segment_events WHERE tag = 'user_tag';

REVOKE EXECUTE ON FUNCTION idgen.segment_next(text),
    idgen.segment_create(text, bigint, integer),
    idgen.segment_drop(text) FROM regress_segment_user;
SET ROLE regress_segment_user;
SELECT idgen.segment_next('reg');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_segment_user;

-- Privileges as installed.
SELECT p.oid::regprocedure AS function, p.prosecdef AS security_definer,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
FROM pg_proc p
WHERE p.pronamespace = 'idgen'::regnamespace
  AND p.proname IN ('segment_next', 'segment_create', 'segment_drop',
                    'segment_buffers', '_segment_forget')
ORDER BY p.oid::regprocedure::text;
SELECT c.relname,
       has_table_privilege('public', c.oid, 'SELECT') AS public_select,
       has_table_privilege('public', c.oid, 'UPDATE') AS public_update
FROM pg_class c
WHERE c.relnamespace = 'idgen'::regnamespace
  AND c.relname IN ('segment_alloc', 'segment_events', 'segments')
ORDER BY c.relname;

--
-- Clean up.
--
SELECT idgen.segment_drop('reg');
SELECT count(*) AS tags_left FROM idgen.segment_alloc;

--
-- Buffered ranges are forgotten with the table they came from (issue 9,
-- item 7).  This session has the tag's slot cached; after DROP EXTENSION
-- and CREATE EXTENSION its numbers come from the new table only.
--
SELECT idgen.segment_create('lc', 1000, 100);
SELECT idgen.segment_next('lc') AS first, idgen.segment_next('lc') AS second;
DROP EXTENSION idgen CASCADE;
CREATE EXTENSION idgen;
SELECT idgen.segment_create('lc', 5000000, 100);
SELECT idgen.segment_next('lc') AS after_recreate;
-- Created again at the old start: 300 numbers, all distinct, 1000 .. 1299.
DROP EXTENSION idgen CASCADE;
CREATE EXTENSION idgen;
SELECT idgen.segment_create('lc', 1000, 100);
SELECT count(DISTINCT n) AS n_distinct, min(n) AS min_n, max(n) AS max_n
FROM (SELECT idgen.segment_next('lc') AS n FROM generate_series(1, 300)) s;
-- The buffers show only the new tag's ranges.
SELECT tag, current_start, current_end FROM idgen.segment_buffers();
SELECT idgen.segment_drop('lc');
