-- idgen catalog contract: what CREATE EXTENSION idgen must leave in the
-- catalog.  Function signatures, return types, volatility, strictness,
-- parallel safety and privileges are part of the API: changing one silently
-- changes query plans (an IMMUTABLE uuidv7() would be folded into a single
-- value), breaks callers or widens who may do what, so each one is pinned
-- here.  A deliberate change to the SQL surface updates this file too.
--
-- Runs inside one transaction that is rolled back (the probe role it creates
-- disappears with it).  Run by test/pgtap/run on a preloaded server with
-- idgen.worker_id = 1.

BEGIN;
SELECT plan(160);

-- ---------------------------------------------------------------------------
-- The extension itself
-- ---------------------------------------------------------------------------

SELECT has_schema('idgen', 'schema idgen exists');
SELECT has_extension('idgen', 'idgen', 'extension idgen is installed in schema idgen');
SELECT is((SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'idgen'),
          'idgen', 'pg_extension: idgen lives in schema idgen');
SELECT is((SELECT extrelocatable FROM pg_extension WHERE extname = 'idgen'),
          false, 'pg_extension: idgen is not relocatable');
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'idgen'),
          '1.1', 'pg_extension: installed version is 1.1');
SELECT is((SELECT default_version FROM pg_available_extensions WHERE name = 'idgen'),
          '1.1', 'idgen.control: default_version is 1.1');
SELECT is(
    (SELECT format('relocatable=%s schema=%s superuser=%s trusted=%s',
                   relocatable, schema, superuser, trusted)
       FROM pg_available_extension_versions
      WHERE name = 'idgen' AND version = '1.1'),
    'relocatable=f schema=idgen superuser=t trusted=f',
    'idgen.control: version 1.1 is not relocatable, schema idgen, superuser-only install, not trusted');

-- The whole SQL surface, by name.
SELECT functions_are('idgen',
    ARRAY['uuidv7', 'uuidv7_min', 'uuidv7_time',
          'snowflake_next', 'snowflake_decode', 'snowflake_min', 'bit_budget',
          'segment_next', 'segment_create', 'segment_drop', 'segment_buffers', '_segment_forget',
          '_segment_exists', '_current_timeline',
          'lease_acquire', 'lease_renew', 'lease_release',
          '_lease_lock', '_lease_unlock', '_lease_acquisition_lock', '_lease_take_lock',
          '_lease_acquisition_unlock', '_lease_check_floor', '_lease_check_caller',
          'probe_register', 'probe_unregister', '_probe_register', '_probe_unregister',
          'probe_run', '_probe_lower_bound', '_probe_scan',
          'audit_leases', 'audit_segments',
          'stats', 'status',
          'typeid', 'typeid_encode', 'typeid_decode', 'ulid_encode', 'ulid_decode',
          'convert_to_snowflake', 'convert_to_segment', '_convert_prepare', '_convert_finish'],
    'schema idgen has exactly the documented functions');
SELECT is((SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'idgen'::regnamespace),
          46, 'schema idgen has 46 functions (uuidv7 and segment_next are the overloaded names)');
SELECT views_are('idgen', ARRAY['stats', 'status', 'segments', 'probe_status'],
    'schema idgen has exactly the documented views');
SELECT tables_are('idgen',
    ARRAY['segment_alloc', 'segment_events', 'lease_layout', 'leases', 'lease_history', 'probes'],
    'schema idgen has exactly the documented tables');
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text
        FROM pg_proc p
       WHERE p.pronamespace = 'idgen'::regnamespace
         AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                            AND d.refclassid = 'pg_extension'::regclass
                            AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'idgen')
                            AND d.deptype = 'e')$$,
    'every function in schema idgen is a member of the extension');

-- ---------------------------------------------------------------------------
-- Exact signatures of the generators, decoders and monitoring functions
-- ---------------------------------------------------------------------------

SELECT has_function('idgen', 'uuidv7', ARRAY[]::name[], 'idgen.uuidv7() exists');
SELECT has_function('idgen', 'uuidv7', ARRAY['timestamp with time zone'], 'idgen.uuidv7(timestamptz) exists');
SELECT has_function('idgen', 'uuidv7_min', ARRAY['timestamp with time zone'], 'idgen.uuidv7_min(timestamptz) exists');
SELECT has_function('idgen', 'uuidv7_time', ARRAY['uuid'], 'idgen.uuidv7_time(uuid) exists');
SELECT has_function('idgen', 'snowflake_next', ARRAY[]::name[], 'idgen.snowflake_next() exists');
SELECT has_function('idgen', 'snowflake_decode', ARRAY['bigint'], 'idgen.snowflake_decode(bigint) exists');
SELECT has_function('idgen', 'snowflake_min', ARRAY['timestamp with time zone'], 'idgen.snowflake_min(timestamptz) exists');
SELECT has_function('idgen', 'bit_budget', ARRAY[]::name[], 'idgen.bit_budget() exists');
SELECT has_function('idgen', 'stats', ARRAY[]::name[], 'idgen.stats() exists');
SELECT has_function('idgen', 'status', ARRAY[]::name[], 'idgen.status() exists');

-- ---------------------------------------------------------------------------
-- Return types
-- ---------------------------------------------------------------------------

SELECT function_returns('idgen', 'uuidv7', ARRAY[]::name[], 'uuid');
SELECT function_returns('idgen', 'uuidv7', ARRAY['timestamp with time zone'], 'uuid');
SELECT function_returns('idgen', 'uuidv7_min', ARRAY['timestamp with time zone'], 'uuid');
SELECT function_returns('idgen', 'uuidv7_time', ARRAY['uuid'], 'timestamp with time zone');
SELECT function_returns('idgen', 'snowflake_next', ARRAY[]::name[], 'bigint');
SELECT function_returns('idgen', 'snowflake_decode', ARRAY['bigint'], 'setof record');
SELECT function_returns('idgen', 'snowflake_min', ARRAY['timestamp with time zone'], 'bigint');
SELECT function_returns('idgen', 'bit_budget', ARRAY[]::name[], 'record');
SELECT function_returns('idgen', 'stats', ARRAY[]::name[], 'setof record');
SELECT function_returns('idgen', 'status', ARRAY[]::name[], 'record');
SELECT function_returns('idgen', 'typeid', ARRAY['text'], 'text');
SELECT function_returns('idgen', 'typeid_encode', ARRAY['text', 'uuid'], 'text');
SELECT function_returns('idgen', 'typeid_decode', ARRAY['text'], 'record');
SELECT function_returns('idgen', 'ulid_encode', ARRAY['uuid'], 'text');
SELECT function_returns('idgen', 'ulid_decode', ARRAY['text'], 'uuid');
SELECT function_returns('idgen', 'convert_to_snowflake', ARRAY['regclass', 'name'], 'void');
SELECT function_returns('idgen', 'convert_to_segment', ARRAY['regclass', 'name', 'text'], 'void');

-- Output columns of the record-returning ones, in order.
SELECT is(
    (SELECT string_agg(p.oid::regprocedure::text || ' -> ' ||
                       array_to_string(ARRAY(
                           SELECT a.n || ' ' || format_type(a.t, NULL)
                             FROM unnest(p.proargnames, p.proallargtypes, p.proargmodes)
                                  WITH ORDINALITY AS a(n, t, m, i)
                            WHERE a.m IN ('o', 't') ORDER BY a.i), ', '),
                       E'\n' ORDER BY p.oid::regprocedure::text COLLATE "C")
       FROM pg_proc p
      WHERE p.oid IN ('idgen.snowflake_decode(bigint)'::regprocedure, 'idgen.bit_budget()'::regprocedure,
                      'idgen.stats()'::regprocedure, 'idgen.status()'::regprocedure)),
    E'idgen.bit_budget() -> timestamp_bits integer, worker_bits integer, sequence_bits integer, epoch timestamp with time zone, tick interval, exhausted_at timestamp with time zone, years_left double precision, ids_per_second_per_worker bigint, worker_capacity bigint, workers_in_use integer\n'
    'idgen.snowflake_decode(bigint) -> ts timestamp with time zone, worker_id integer, sequence integer\n'
    'idgen.stats() -> metric text, labels jsonb, value bigint, scope text, help text\n'
    'idgen.status() -> worker_id integer, lease_state text, lease_expires_at timestamp with time zone, lease_generation bigint, lease_deadline_ms bigint, lease_error text, workers_in_use integer, last_issued_at timestamp with time zone, time_floor timestamp with time zone, snowflake_problem text, clock_synchronised boolean, clock_state text, clock_est_error_us bigint, clock_max_error_us bigint, leap_second_pending boolean, require_clock_sync boolean',
    'output columns of bit_budget(), snowflake_decode(), stats() and status()');

-- ---------------------------------------------------------------------------
-- Volatility: the generators must be VOLATILE (one value per row, never
-- folded into a constant); uuidv7_time and uuidv7_min are pure functions of
-- their argument; decode/min depend on the layout settings only (STABLE).
-- ---------------------------------------------------------------------------

SELECT volatility_is('idgen', 'uuidv7', ARRAY[]::name[], 'volatile');
SELECT volatility_is('idgen', 'uuidv7', ARRAY['timestamp with time zone'], 'volatile');
SELECT volatility_is('idgen', 'uuidv7_min', ARRAY['timestamp with time zone'], 'immutable');
SELECT volatility_is('idgen', 'uuidv7_time', ARRAY['uuid'], 'immutable');
SELECT volatility_is('idgen', 'snowflake_next', ARRAY[]::name[], 'volatile');
SELECT volatility_is('idgen', 'snowflake_decode', ARRAY['bigint'], 'stable');
SELECT volatility_is('idgen', 'snowflake_min', ARRAY['timestamp with time zone'], 'stable');
SELECT volatility_is('idgen', 'bit_budget', ARRAY[]::name[], 'volatile');
SELECT volatility_is('idgen', 'stats', ARRAY[]::name[], 'volatile');
SELECT volatility_is('idgen', 'status', ARRAY[]::name[], 'volatile');
SELECT volatility_is('idgen', 'typeid', ARRAY['text'], 'volatile');
SELECT volatility_is('idgen', 'typeid_encode', ARRAY['text', 'uuid'], 'immutable');
SELECT volatility_is('idgen', 'typeid_decode', ARRAY['text'], 'immutable');
SELECT volatility_is('idgen', 'ulid_encode', ARRAY['uuid'], 'immutable');
SELECT volatility_is('idgen', 'ulid_decode', ARRAY['text'], 'immutable');

-- ---------------------------------------------------------------------------
-- Strictness (NULL in, NULL out, without entering the C code)
-- ---------------------------------------------------------------------------

SELECT is_strict('idgen', 'uuidv7', ARRAY['timestamp with time zone']);
SELECT is_strict('idgen', 'uuidv7_min', ARRAY['timestamp with time zone']);
SELECT is_strict('idgen', 'uuidv7_time', ARRAY['uuid']);
SELECT is_strict('idgen', 'snowflake_decode', ARRAY['bigint']);
SELECT is_strict('idgen', 'snowflake_min', ARRAY['timestamp with time zone']);
SELECT is_strict('idgen', 'typeid', ARRAY['text']);
SELECT is_strict('idgen', 'typeid_encode', ARRAY['text', 'uuid']);
SELECT is_strict('idgen', 'typeid_decode', ARRAY['text']);
SELECT is_strict('idgen', 'ulid_encode', ARRAY['uuid']);
SELECT is_strict('idgen', 'ulid_decode', ARRAY['text']);
SELECT isnt_strict('idgen', 'uuidv7', ARRAY[]::name[]);
SELECT isnt_strict('idgen', 'snowflake_next', ARRAY[]::name[]);
SELECT is(idgen.uuidv7(NULL::timestamptz), NULL::uuid, 'uuidv7(NULL) is NULL');
SELECT is(idgen.uuidv7_min(NULL::timestamptz), NULL::uuid, 'uuidv7_min(NULL) is NULL');
SELECT is(idgen.uuidv7_time(NULL::uuid), NULL::timestamptz, 'uuidv7_time(NULL) is NULL');
SELECT is(idgen.snowflake_min(NULL::timestamptz), NULL::bigint, 'snowflake_min(NULL) is NULL');
SELECT is((SELECT count(*)::int FROM idgen.snowflake_decode(NULL::bigint)),
          0, 'snowflake_decode(NULL) returns no rows');

-- ---------------------------------------------------------------------------
-- Language, definer rights
-- ---------------------------------------------------------------------------

SELECT is_empty(
    $$SELECT p.oid::regprocedure::text FROM pg_proc p
       WHERE p.pronamespace = 'idgen'::regnamespace
         AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
         AND p.probin <> '$libdir/idgen'$$,
    'every C function of idgen lives in $libdir/idgen');
SELECT is(
    (SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY p.oid::regprocedure::text COLLATE "C")
       FROM pg_proc p
      WHERE p.pronamespace = 'idgen'::regnamespace
        AND p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c')
        AND (p.proconfig IS NULL OR NOT 'search_path=pg_catalog, pg_temp' = ANY (p.proconfig))),
    NULL,
    'every SQL/PL/pgSQL function of idgen pins search_path = pg_catalog, pg_temp');
SELECT is(
    (SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY p.oid::regprocedure::text COLLATE "C")
       FROM pg_proc p
      WHERE p.pronamespace = 'idgen'::regnamespace AND p.prosecdef),
    'idgen._probe_register(regrole,regclass,name,interval), idgen._probe_unregister(regrole,regclass,name), '
    'idgen._segment_exists(text), idgen.audit_leases(), idgen.audit_segments(), '
    'idgen.lease_acquire(text,integer,integer,integer,integer,integer,bigint,integer,integer,integer,integer,bigint), '
    'idgen.lease_release(integer,bigint,text,bigint), idgen.lease_renew(integer,bigint,text,integer,bigint), '
    'idgen.segment_create(text,bigint,integer), idgen.segment_drop(text)',
    'exactly the delegable functions (segment_create/drop, the audits), the twins probe_register/unregister call for their caller, the three lease functions and the tag lookup _segment_exists() are SECURITY DEFINER');
-- Parallel labels (and every function's volatility): test/pgtap/parallel.sql.

-- ---------------------------------------------------------------------------
-- Privileges: a freshly created role with no grants of its own can use
-- every generator and read the views (through the PUBLIC grants), and
-- nothing else.
-- ---------------------------------------------------------------------------

CREATE ROLE idgen_pgtap_nobody NOLOGIN NOSUPERUSER NOINHERIT;

SELECT schema_privs_are('idgen', 'idgen_pgtap_nobody', ARRAY['USAGE'],
    'fresh role has USAGE (only) on schema idgen');
SELECT function_privs_are('idgen', 'uuidv7', ARRAY[]::name[], 'idgen_pgtap_nobody', ARRAY['EXECUTE']);
SELECT function_privs_are('idgen', 'uuidv7', ARRAY['timestamp with time zone'], 'idgen_pgtap_nobody', ARRAY['EXECUTE']);
SELECT function_privs_are('idgen', 'uuidv7_min', ARRAY['timestamp with time zone'], 'idgen_pgtap_nobody', ARRAY['EXECUTE']);
SELECT function_privs_are('idgen', 'uuidv7_time', ARRAY['uuid'], 'idgen_pgtap_nobody', ARRAY['EXECUTE']);
SELECT function_privs_are('idgen', 'snowflake_next', ARRAY[]::name[], 'idgen_pgtap_nobody', ARRAY['EXECUTE']);
SELECT function_privs_are('idgen', 'snowflake_decode', ARRAY['bigint'], 'idgen_pgtap_nobody', ARRAY['EXECUTE']);
SELECT function_privs_are('idgen', 'snowflake_min', ARRAY['timestamp with time zone'], 'idgen_pgtap_nobody', ARRAY['EXECUTE']);
SELECT function_privs_are('idgen', 'bit_budget', ARRAY[]::name[], 'idgen_pgtap_nobody', ARRAY['EXECUTE']);
SELECT function_privs_are('idgen', 'stats', ARRAY[]::name[], 'idgen_pgtap_nobody', ARRAY['EXECUTE']);
SELECT function_privs_are('idgen', 'status', ARRAY[]::name[], 'idgen_pgtap_nobody', ARRAY['EXECUTE']);
SELECT is(
    (SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY p.oid::regprocedure::text COLLATE "C")
       FROM pg_proc p
      WHERE p.pronamespace = 'idgen'::regnamespace
        AND has_function_privilege('idgen_pgtap_nobody', p.oid, 'EXECUTE')),
    'idgen._convert_finish(regclass,name,regclass,"char",text), idgen._convert_prepare(regclass,name,text), '
    'idgen._segment_exists(text), idgen.bit_budget(), '
    'idgen.convert_to_segment(regclass,name,text), idgen.convert_to_snowflake(regclass,name), '
    'idgen.segment_buffers(), idgen.snowflake_decode(bigint), '
    'idgen.snowflake_min(timestamp with time zone), idgen.snowflake_next(), idgen.stats(), '
    'idgen.status(), idgen.typeid(text), idgen.typeid_decode(text), idgen.typeid_encode(text,uuid), '
    'idgen.ulid_decode(text), idgen.ulid_encode(uuid), idgen.uuidv7(), idgen.uuidv7(timestamp with time zone), '
    'idgen.uuidv7_min(timestamp with time zone), idgen.uuidv7_time(uuid)',
    'a fresh role may execute exactly the generators, decoders, text forms, monitoring functions and the '
    'column conversions (which run with the caller''s rights and check ownership)');
SELECT table_privs_are('idgen', 'stats', 'idgen_pgtap_nobody', ARRAY['SELECT'],
    'fresh role may SELECT (only) from idgen.stats');
SELECT table_privs_are('idgen', 'status', 'idgen_pgtap_nobody', ARRAY['SELECT'],
    'fresh role may SELECT (only) from idgen.status');
SELECT is(
    (SELECT string_agg(c.relname, ', ' ORDER BY c.relname COLLATE "C")
       FROM pg_class c
      WHERE c.relnamespace = 'idgen'::regnamespace
        AND c.relkind IN ('r', 'v', 'm', 'S', 'p', 'f')
        AND (has_table_privilege('idgen_pgtap_nobody', c.oid, 'SELECT')
             OR has_table_privilege('idgen_pgtap_nobody', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE'))),
    'probe_status, segments, stats, status',
    'a fresh role may read exactly the four views, and write nothing');
SELECT ok(has_function_privilege('public', 'idgen.uuidv7()', 'EXECUTE')
          AND has_function_privilege('public', 'idgen.snowflake_next()', 'EXECUTE'),
    'PUBLIC itself holds EXECUTE on the generators');

-- And it really can, as that role.
SET LOCAL ROLE idgen_pgtap_nobody;
SELECT is(current_user::text, 'idgen_pgtap_nobody', 'now running as the fresh role');
SELECT lives_ok('SELECT idgen.uuidv7()', 'fresh role: idgen.uuidv7()');
SELECT lives_ok($$SELECT idgen.uuidv7('2024-01-01 00:00:00+00')$$, 'fresh role: idgen.uuidv7(timestamptz)');
SELECT lives_ok('SELECT idgen.uuidv7_min(now())', 'fresh role: idgen.uuidv7_min(timestamptz)');
SELECT lives_ok('SELECT idgen.uuidv7_time(idgen.uuidv7())', 'fresh role: idgen.uuidv7_time(uuid)');
SELECT lives_ok('SELECT idgen.snowflake_next()', 'fresh role: idgen.snowflake_next()');
SELECT lives_ok('SELECT * FROM idgen.snowflake_decode(idgen.snowflake_next())', 'fresh role: idgen.snowflake_decode(bigint)');
SELECT lives_ok('SELECT idgen.snowflake_min(now())', 'fresh role: idgen.snowflake_min(timestamptz)');
SELECT lives_ok('SELECT * FROM idgen.bit_budget()', 'fresh role: idgen.bit_budget()');
SELECT lives_ok('SELECT * FROM idgen.stats', 'fresh role: SELECT FROM idgen.stats');
SELECT lives_ok('SELECT * FROM idgen.status', 'fresh role: SELECT FROM idgen.status');
SELECT throws_ok($$SELECT idgen.lease_release(1, 1, 'x', 0)$$, '42501', NULL,
    'fresh role: lease_release() is refused (insufficient_privilege)');
SELECT throws_ok('SELECT * FROM idgen.leases', '42501', NULL,
    'fresh role: the leases table is not readable');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Views idgen.stats and idgen.status
-- ---------------------------------------------------------------------------

SELECT has_view('idgen', 'stats', 'view idgen.stats exists');
SELECT has_view('idgen', 'status', 'view idgen.status exists');
SELECT columns_are('idgen', 'stats',
    ARRAY['metric', 'labels', 'value', 'scope', 'help'],
    'idgen.stats has exactly its documented columns');
SELECT columns_are('idgen', 'status',
    ARRAY['worker_id', 'lease_state', 'lease_expires_at', 'lease_generation',
          'lease_deadline_ms', 'lease_error', 'workers_in_use', 'last_issued_at',
          'time_floor', 'snowflake_problem', 'clock_synchronised', 'clock_state',
          'clock_est_error_us', 'clock_max_error_us', 'leap_second_pending',
          'require_clock_sync'],
    'idgen.status has exactly its documented columns');

SELECT has_column('idgen', 'stats', 'metric', 'idgen.stats.metric exists');
SELECT has_column('idgen', 'stats', 'labels', 'idgen.stats.labels exists');
SELECT has_column('idgen', 'stats', 'value', 'idgen.stats.value exists');
SELECT has_column('idgen', 'stats', 'scope', 'idgen.stats.scope exists');
SELECT has_column('idgen', 'stats', 'help', 'idgen.stats.help exists');
SELECT col_type_is('idgen'::name, 'stats'::name, 'metric'::name, 'text'::text, 'idgen.stats.metric is text'::text);
SELECT col_type_is('idgen'::name, 'stats'::name, 'labels'::name, 'jsonb'::text, 'idgen.stats.labels is jsonb'::text);
SELECT col_type_is('idgen'::name, 'stats'::name, 'value'::name, 'bigint'::text, 'idgen.stats.value is bigint'::text);
SELECT col_type_is('idgen'::name, 'stats'::name, 'scope'::name, 'text'::text, 'idgen.stats.scope is text'::text);
SELECT col_type_is('idgen'::name, 'stats'::name, 'help'::name, 'text'::text, 'idgen.stats.help is text'::text);

SELECT has_column('idgen', 'status', 'worker_id', 'idgen.status.worker_id exists');
SELECT has_column('idgen', 'status', 'lease_state', 'idgen.status.lease_state exists');
SELECT has_column('idgen', 'status', 'lease_expires_at', 'idgen.status.lease_expires_at exists');
SELECT has_column('idgen', 'status', 'lease_generation', 'idgen.status.lease_generation exists');
SELECT has_column('idgen', 'status', 'lease_deadline_ms', 'idgen.status.lease_deadline_ms exists');
SELECT has_column('idgen', 'status', 'lease_error', 'idgen.status.lease_error exists');
SELECT has_column('idgen', 'status', 'workers_in_use', 'idgen.status.workers_in_use exists');
SELECT has_column('idgen', 'status', 'last_issued_at', 'idgen.status.last_issued_at exists');
SELECT has_column('idgen', 'status', 'time_floor', 'idgen.status.time_floor exists');
SELECT has_column('idgen', 'status', 'snowflake_problem', 'idgen.status.snowflake_problem exists');
SELECT has_column('idgen', 'status', 'clock_synchronised', 'idgen.status.clock_synchronised exists');
SELECT has_column('idgen', 'status', 'clock_state', 'idgen.status.clock_state exists');
SELECT has_column('idgen', 'status', 'clock_est_error_us', 'idgen.status.clock_est_error_us exists');
SELECT has_column('idgen', 'status', 'clock_max_error_us', 'idgen.status.clock_max_error_us exists');
SELECT has_column('idgen', 'status', 'leap_second_pending', 'idgen.status.leap_second_pending exists');
SELECT has_column('idgen', 'status', 'require_clock_sync', 'idgen.status.require_clock_sync exists');
SELECT col_type_is('idgen'::name, 'status'::name, 'worker_id'::name, 'integer'::text, 'idgen.status.worker_id is integer'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'lease_state'::name, 'text'::text, 'idgen.status.lease_state is text'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'lease_expires_at'::name, 'timestamp with time zone'::text, 'idgen.status.lease_expires_at is timestamptz'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'lease_generation'::name, 'bigint'::text, 'idgen.status.lease_generation is bigint'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'lease_deadline_ms'::name, 'bigint'::text, 'idgen.status.lease_deadline_ms is bigint'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'lease_error'::name, 'text'::text, 'idgen.status.lease_error is text'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'workers_in_use'::name, 'integer'::text, 'idgen.status.workers_in_use is integer'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'last_issued_at'::name, 'timestamp with time zone'::text, 'idgen.status.last_issued_at is timestamptz'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'time_floor'::name, 'timestamp with time zone'::text, 'idgen.status.time_floor is timestamptz'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'snowflake_problem'::name, 'text'::text, 'idgen.status.snowflake_problem is text'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'clock_synchronised'::name, 'boolean'::text, 'idgen.status.clock_synchronised is boolean'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'clock_state'::name, 'text'::text, 'idgen.status.clock_state is text'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'clock_est_error_us'::name, 'bigint'::text, 'idgen.status.clock_est_error_us is bigint'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'clock_max_error_us'::name, 'bigint'::text, 'idgen.status.clock_max_error_us is bigint'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'leap_second_pending'::name, 'boolean'::text, 'idgen.status.leap_second_pending is boolean'::text);
SELECT col_type_is('idgen'::name, 'status'::name, 'require_clock_sync'::name, 'boolean'::text, 'idgen.status.require_clock_sync is boolean'::text);

-- The view shapes exporters rely on: one row per counter, scope 'server'
-- on a preloaded server (no probes registered here), status a single row
-- with the configured worker.
SELECT is((SELECT count(*)::int FROM idgen.stats), (SELECT count(*)::int FROM idgen.stats()),
          'idgen.stats shows exactly the counters of idgen.stats() while no probe is registered');
SELECT ok((SELECT count(*) > 0 FROM idgen.stats), 'idgen.stats is not empty');
SELECT is((SELECT count(DISTINCT (metric, labels))::int FROM idgen.stats),
          (SELECT count(*)::int FROM idgen.stats),
          'idgen.stats rows are distinct by (metric, labels)');
SELECT is((SELECT string_agg(DISTINCT scope, ',') FROM idgen.stats), 'server',
          'idgen.stats scope is server on a preloaded server');
SELECT is_empty($$SELECT metric, labels FROM idgen.stats
                   WHERE metric !~ '^idgen_[a-z_]+$' OR value IS NULL OR value < 0
                      OR help IS NULL OR help = '' OR jsonb_typeof(labels) <> 'object'$$,
          'idgen.stats rows are Prometheus-shaped (idgen_ name, labels object, help, value >= 0)');
SELECT is((SELECT count(*)::int FROM idgen.stats WHERE metric = 'idgen_ids_issued_total'
                                                  AND labels ->> 'generator' IN ('uuidv7', 'snowflake')),
          2, 'idgen.stats has the issued counters of uuidv7 and snowflake');
SELECT is((SELECT count(*)::int FROM idgen.status), 1, 'idgen.status has exactly one row');
SELECT is((SELECT worker_id FROM idgen.status), 1, 'idgen.status.worker_id is the configured idgen.worker_id');

-- ---------------------------------------------------------------------------
-- Documentation: every user-facing generator and decoder and both
-- monitoring views carry a COMMENT (\df+ and \dv+ show it).
-- ---------------------------------------------------------------------------

SELECT is_empty(
    $$SELECT o FROM unnest(ARRAY['idgen.uuidv7()', 'idgen.uuidv7(timestamptz)',
                                 'idgen.uuidv7_min(timestamptz)',
                                 'idgen.uuidv7_time(uuid)', 'idgen.snowflake_next()',
                                 'idgen.snowflake_decode(bigint)',
                                 'idgen.snowflake_min(timestamptz)',
                                 'idgen.bit_budget()']) o
       WHERE obj_description(o::regprocedure, 'pg_proc') IS NULL$$,
    'every generator and decoder has a COMMENT');
SELECT is_empty(
    $$SELECT v FROM unnest(ARRAY['idgen.stats', 'idgen.status']) v
       WHERE obj_description(v::regclass, 'pg_class') IS NULL$$,
    'views idgen.stats and idgen.status have a COMMENT');

SELECT * FROM finish();
ROLLBACK;
